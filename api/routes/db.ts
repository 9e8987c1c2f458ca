// /backup/db, /db/dump, /db/check
import { heketiDump } from '../../db/heketi-export.ts'
import { checkConsistency } from '../../src/dbcheck.ts'
import { Errors } from '../../src/errors.ts'
import { sendError, sendJson } from '../http.ts'
import { type Api, addRoute } from '../server.ts'

/**
 * Backups that overlap share work: while one runs, every request arriving
 * joins the single next one, which starts after it (so it holds every write
 * committed before those requests). At most two copies exist at once.
 */
export class BackupFlight {
  private running: Promise<Buffer> | undefined
  private next: Promise<Buffer> | undefined

  constructor(private readonly backup: () => Promise<Buffer>) {}

  run(): Promise<Buffer> {
    if (!this.running) {
      const started = this.backup()
      this.running = started
      const clear = () => {
        this.running = undefined
      }
      started.then(clear, clear)
      return started
    }
    if (!this.next) {
      const startNext = () => {
        this.next = undefined
        return this.run()
      }
      // the running backup's failure belongs to its own callers
      this.next = this.running.then(startNext, startNext)
    }
    return this.next
  }
}

export function registerDbRoutes(api: Api): void {
  const { ctx } = api
  const backups = new BackupFlight(() => ctx.store.backup())
  addRoute(api, {
    method: 'GET',
    path: '/backup/db',
    handler: async (req, reply) => {
      // heqet streams its own LMDB file; heketi-cli only saves the bytes
      let bytes: Buffer
      try {
        bytes = await backups.run()
      } catch (err) {
        // the message names files; the log keeps it, the answer only the code
        req.log.error({ reqId: req.id, err }, 'database backup failed')
        const code = (err as NodeJS.ErrnoException).code
        return sendError(reply, Errors.backupFailed(typeof code === 'string' ? code : 'see the server log'))
      }
      return reply
        .code(200)
        .header('content-type', 'application/octet-stream')
        .header('content-disposition', 'attachment; filename="heketi.db"')
        .header('content-length', bytes.length)
        .send(bytes)
    },
  })
  addRoute(api, {
    method: 'GET',
    path: '/db/dump',
    handler: async (_req, reply) =>
      sendJson(
        reply,
        200,
        ctx.store.read((tx) => heketiDump(tx)),
        4,
      ),
  })
  addRoute(api, {
    method: 'GET',
    path: '/db/check',
    handler: async (_req, reply) =>
      sendJson(
        reply,
        200,
        ctx.store.read((tx) => checkConsistency(tx)),
        4,
      ),
  })
}
