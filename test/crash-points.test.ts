// kill -9 exactly at the two durability points of an operation (the real
// process, mock executor, LMDB file): HEQET_CRASH_AT makes the server SIGKILL
// itself right after the commit (src/operations/crash-points.ts).
//  * journal: the build and its journal record are committed, no node
//    command has run. After the kill the record is in the file, and the
//    restarted server's clean-up undoes it.
//  * result: the finalize is committed, the queue has not answered. After
//    the kill the result is in the file and served after a restart.
// With group commit (db/lmdb.ts) a write resolves only once its commit is on
// disk; these show that no node command and no answer gets ahead of it.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { signToken } from '../api/auth.ts'
import { LmdbStore } from '../db/lmdb.ts'
import { freePort } from './e2e/lib/server.ts'

const BIN = fileURLToPath(new URL('../bin/heqet.js', import.meta.url))
const ADMIN = 'crash-points-admin'
const START_TIMEOUT_MS = 120_000

interface Server {
  port: number
  child: ChildProcess
  exited: Promise<NodeJS.Signals | number | null>
  output(): string
}

async function start(t: Test, dir: string, crashAt?: string): Promise<Server> {
  const port = await freePort()
  const config = join(dir, 'heketi.json')
  writeFileSync(
    config,
    JSON.stringify({
      port: String(port),
      jwt: { admin: { key: ADMIN }, user: { key: 'crash-points-user' } },
      // the cleaner runs only when asked (POST /operations/pending/cleanup)
      glusterfs: {
        executor: 'mock',
        db: join(dir, 'heketi.db'),
        loglevel: 'info',
        start_time_background_cleaner: 3600,
      },
    }),
  )
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('HEKETI_') && k !== 'HEQET_CRASH_AT') env[k] = v
  env['HEKETI_DISABLE_HEALTH_MONITOR'] = 'true'
  if (crashAt) env['HEQET_CRASH_AT'] = crashAt
  const child = spawn(process.execPath, [BIN, `--config=${config}`], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (d) => {
    out += d
  })
  child.stderr!.on('data', (d) => {
    out += d
  })
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  )
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL')
      await exited
    }
  })
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited early: ${out}`)
    try {
      if ((await fetch(`http://127.0.0.1:${port}/hello`)).status === 200) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not answer /hello: ${out}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { port, child, exited, output: () => out }
}

async function call(s: Server, method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${s.port}${path}`, {
    method,
    redirect: 'manual',
    headers: { authorization: `bearer ${signToken('admin', ADMIN, method, path)}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: res.status, body: await res.text(), location: res.headers.get('location') ?? '' }
}

/** POST/DELETE then poll the queue to the end (bounded); a dropped connection is the answer too. */
async function run(s: Server, method: string, path: string, body?: unknown) {
  const first = await call(s, method, path, body)
  if (first.status !== 202) return first
  for (let i = 0; i < 600; i++) {
    const poll = await call(s, 'GET', first.location)
    if (poll.status !== 200 || poll.body !== '') return poll
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`${method} ${path}: still pending`)
}

/** A cluster of three nodes with one device each. */
async function topology(s: Server): Promise<void> {
  const c = await call(s, 'POST', '/clusters', { file: true, block: true })
  const cluster = (JSON.parse(c.body) as { id: string }).id
  for (let i = 0; i < 3; i++) {
    const n = await run(s, 'POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [`crash${i}.heqet.test`], storage: [`10.9.0.${i + 1}`] },
      cluster,
    })
    if (n.status !== 303) throw new Error(`node add: ${n.status} ${n.body}`)
    const d = await run(s, 'POST', '/devices', { name: '/dev/sdb', node: n.location.split('/').pop() })
    if (d.status !== 204) throw new Error(`device add: ${d.status} ${d.body}`)
  }
}

/** What the file holds (read with the server dead, as the next start would). */
async function onDisk(dir: string) {
  const store = new LmdbStore({ path: join(dir, 'heketi.db'), readOnly: true })
  try {
    return store.read((tx) => ({
      volumes: tx.values('volume'),
      pendingops: tx.values('pendingop'),
      bricks: tx.count('brick'),
      usedKiB: tx.values('device').reduce((sum, d) => sum + d.storage.usedKiB, 0),
    }))
  } finally {
    await store.close()
  }
}

async function crashed(t: Test, s: Server, request: Promise<unknown>): Promise<void> {
  // the request loses its connection when the process dies under it
  await request.then(
    (r) => t.fail(`the request was answered: ${JSON.stringify(r)}`),
    () => t.pass('the request got no answer'),
  )
  t.equal(await s.exited, 'SIGKILL', 'the server killed itself at the crash point')
  t.match(s.output(), /HEQET_CRASH_AT: killing myself/)
}

const VOLUME = { size: 1, durability: { type: 'replicate', replicate: { replica: 3 } } }

t.test(
  'kill -9 right after the journal commit of a create: the record is on disk and undone after restart',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'heqet-crash-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const s = await start(t, dir, 'journal:create-volume')
    await topology(s)
    await crashed(t, s, call(s, 'POST', '/volumes', VOLUME))

    const disk = await onDisk(dir)
    t.equal(disk.pendingops.length, 1, 'the journal record survived')
    t.equal(disk.pendingops[0]?.type, 'create-volume')
    t.equal(disk.volumes.length, 1, 'with the volume it reserved')
    t.ok(disk.volumes[0]?.pendingId, 'marked pending')
    t.equal(disk.bricks, 3)
    t.ok(disk.usedKiB > 0, 'and the space it charged')

    const again = await start(t, dir)
    const cleanup = await run(again, 'POST', '/operations/pending/cleanup', {})
    t.equal(cleanup.status, 204, cleanup.body)
    const list = await call(again, 'GET', '/volumes')
    t.same(JSON.parse(list.body), { volumes: [] }, 'the clean-up undid the create')
    const pending = await call(again, 'GET', '/operations')
    t.match(JSON.parse(pending.body), { total: 0 })
    const after = await onDisk(dir)
    t.equal(after.usedKiB, 0, 'the space is back')
  },
)

t.test('kill -9 right after the result commits: create and delete results survive', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-crash-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const s = await start(t, dir, 'result:create-volume')
  await topology(s)
  await crashed(t, s, run(s, 'POST', '/volumes', VOLUME))

  const disk = await onDisk(dir)
  t.equal(disk.pendingops.length, 0, 'no journal record left')
  t.equal(disk.volumes.length, 1, 'the volume is there')
  t.equal(disk.volumes[0]?.pendingId, '', 'and final')
  const id = disk.volumes[0]!.id

  const deleting = await start(t, dir, 'result:delete-volume')
  const info = await call(deleting, 'GET', `/volumes/${id}`)
  t.equal(info.status, 200, 'served after the restart')
  await crashed(t, deleting, run(deleting, 'DELETE', `/volumes/${id}`))
  const gone = await onDisk(dir)
  t.same(gone.volumes, [], 'the delete survived')
  t.equal(gone.pendingops.length, 0)
  t.equal(gone.bricks, 0)
  t.equal(gone.usedKiB, 0)
})
