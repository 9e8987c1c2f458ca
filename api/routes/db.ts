// /backup/db, /db/dump, /db/check
import { heketiDump } from '../../db/heketi-export.ts'
import { checkConsistency } from '../../src/dbcheck.ts'
import { sendJson } from '../http.ts'
import { type Api, addRoute } from '../server.ts'

export function registerDbRoutes(api: Api): void {
  const { ctx } = api
  addRoute(api, {
    method: 'GET',
    path: '/backup/db',
    handler: async (_req, reply) => {
      // heqet streams its own LMDB file; heketi-cli only saves the bytes
      const bytes = await ctx.store.backup()
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
