// The write path without HTTP: volume creates and deletes run in-process
// (the domain's createVolume/deleteVolume and their jobs, the LMDB store, the
// mock executor), as scenario A does them (6 nodes × 4 devices, 300 × 1 GiB
// replica-3 volumes, concurrency 8). It reports the CPU per create and per
// delete of the whole process and of its main thread alone, which the full
// bench cannot separate from HTTP, polls and the client. Several rounds of
// creates then deletes run on one server; rounds after the first are the
// figures (the first warms the JIT).
//
//   npm run build && node --import tsx bench/write-path.ts [--rounds 6] [--sources] [--root DIR]
//     [--nodes 6 --devices 4 --volumes 300] [--count] [--alloc-prof FILE] [--json]
//
// --root DIR measures another checkout's dist/ (e.g. a build of main).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import pino from 'pino'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    volumes: { type: 'string', default: '300' },
    nodes: { type: 'string', default: '6' },
    devices: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '8' },
    sources: { type: 'boolean', default: false },
    root: { type: 'string' },
    json: { type: 'boolean', default: false },
    /** write an allocation profile (.heapprofile, every allocation sampled, collected or not) of rounds 2.. here */
    'alloc-prof': { type: 'string' },
    /** count what the LMDB store encodes and writes per operation (wraps its databases) */
    count: { type: 'boolean', default: false },
  },
})

const repo = resolve(args.root ?? join(import.meta.dirname, '..'))
const base = args.sources ? repo : join(repo, 'dist')
const ext = args.sources ? '.ts' : '.js'
const load = (path: string) => import(pathToFileURL(join(base, path + ext)).href)

/** ns each thread has run (schedstat), by thread name */
function threadNs(): Map<string, number> {
  const out = new Map<string, number>()
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const name =
        tid === String(process.pid)
          ? 'main'
          : `${readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()}-${tid}`
      const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0])
      out.set(name, (out.get(name) ?? 0) + ns)
    } catch {
      // a thread that ended between the listing and the read: its time is in no phase
    }
  }
  return out
}

/** ns the main thread has run (schedstat), and the process's CPU (µs, all threads). */
function cpuNow(): { mainNs: number; procUs: number; threads: Map<string, number> } {
  const threads = threadNs()
  const u = process.cpuUsage()
  return { mainNs: threads.get('main') ?? 0, procUs: u.user + u.system, threads }
}

async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < n) await fn(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

const { buildApp } = await load('api/app')
const { signToken } = await load('api/auth')
const { parseConfig } = await load('src/config')
const { MockExecutor } = await load('executors/mock')
const { createVolume, deleteVolume } = await load('src/volumes')

// as the full bench: 8 × the average brick load of a device, at least 500 GiB
const deviceGiB = Math.max(
  500,
  Math.ceil((8 * Number(args.volumes) * 3) / (Number(args.nodes) * Number(args.devices))),
)
const dir = mkdtempSync(join(tmpdir(), 'heqet-write-path-'))
const config = {
  ...parseConfig(
    JSON.stringify({
      jwt: { admin: { key: 'a' }, user: { key: 'u' } },
      glusterfs: { executor: 'mock', db: join(dir, 'heqet.db') },
    }),
    { HEKETI_MOCK_DEVICE_SIZE_GB: String(deviceGiB) },
  ),
  disableBackgroundCleaner: true,
  disableMonitor: true,
}
const app = await buildApp({
  config,
  executor: new MockExecutor({ deviceSizeGiB: deviceGiB }),
  logger: pino({ level: 'silent' }),
})
const ctx = app.ctx
const counted = { encodes: 0, bytes: 0, puts: 0, removes: 0 }
if (args.count) {
  // the store's databases (private): every encode, put and remove they do is counted
  const store = ctx.store as unknown as { dbs: Map<string, any>; lists: { db: any } }
  for (const db of [...store.dbs.values(), store.lists.db]) {
    const encoder = db.encoder
    if (encoder && !encoder.counted) {
      const encode = encoder.encode.bind(encoder)
      encoder.encode = (value: unknown, mode: number) => {
        const out = encode(value, mode)
        counted.encodes++
        counted.bytes += out.end !== undefined ? out.end - out.start : out.length
        return out
      }
      encoder.counted = true
    }
    const putSync = db.putSync.bind(db)
    db.putSync = (...a: unknown[]) => {
      counted.puts++
      return putSync(...a)
    }
    const removeSync = db.removeSync.bind(db)
    db.removeSync = (...a: unknown[]) => {
      counted.removes++
      return removeSync(...a)
    }
  }
}
const call = async (method: string, path: string, body?: unknown) => {
  const res = await app.app.inject({
    method,
    url: path,
    headers: { authorization: `bearer ${signToken('admin', 'a', method, path)}` },
    payload: body === undefined ? undefined : JSON.stringify(body),
  })
  return res
}
const run = async (method: string, path: string, body?: unknown) => {
  const first = await call(method, path, body)
  if (first.statusCode !== 202) throw new Error(`${method} ${path}: ${first.statusCode} ${first.body}`)
  for (;;) {
    const poll = await call('GET', first.headers.location as string)
    if (poll.headers['x-pending'] !== 'true') return poll
    await new Promise((r) => setTimeout(r, 2))
  }
}

const cluster = JSON.parse((await call('POST', '/clusters', { block: true, file: true })).body).id
for (let i = 0; i < Number(args.nodes); i++) {
  const node = await run('POST', '/nodes', {
    zone: (i % 3) + 1,
    hostnames: { manage: [`node${i}.example.com`], storage: [`10.0.0.${i + 1}`] },
    cluster,
  })
  const nodeId = String(node.headers.location).split('/').pop()
  for (let d = 0; d < Number(args.devices); d++)
    await run('POST', '/devices', { name: `/dev/sd${String.fromCharCode(98 + d)}`, node: nodeId })
}

const volumes = Number(args.volumes)
const concurrency = Number(args.concurrency)
const request = {
  size: 1,
  name: '',
  clusters: [],
  durability: { type: 'replicate', replicate: { replica: 3 }, disperse: { data: 0, redundancy: 0 } },
  gid: 0,
  glustervolumeoptions: [],
  block: false,
  snapshot: { enable: false, factor: 1 },
}

interface Phase {
  ops: number
  wallMs: number
  mainUs: number
  procUs: number
  /** µs per thread name */
  threads: Record<string, number>
}
const measure = async (fn: () => Promise<void>, ops: number): Promise<Phase> => {
  const t0 = performance.now()
  const c0 = cpuNow()
  const n0 = { ...counted }
  await fn()
  const c1 = cpuNow()
  if (args.count)
    console.log(
      `per op: ${((counted.encodes - n0.encodes) / ops).toFixed(2)} encodes, ${((counted.bytes - n0.bytes) / ops).toFixed(0)} bytes, ${((counted.puts - n0.puts) / ops).toFixed(2)} puts, ${((counted.removes - n0.removes) / ops).toFixed(2)} removes`,
    )
  return {
    ops,
    wallMs: performance.now() - t0,
    mainUs: (c1.mainNs - c0.mainNs) / 1000,
    procUs: c1.procUs - c0.procUs,
    threads: Object.fromEntries(
      [...c1.threads].map(([k, v]) => [k, Math.round((v - (c0.threads.get(k) ?? 0)) / 1000 / ops)]),
    ),
  }
}

const session = args['alloc-prof'] ? new Session() : undefined
const post = (method: string, params?: object) =>
  new Promise<any>((res, rej) =>
    session!.post(method, params ?? {}, (err, out) => (err ? rej(err) : res(out))),
  )
session?.connect()

const rounds: { create: Phase; del: Phase }[] = []
for (let r = 0; r < Number(args.rounds); r++) {
  if (session && r === 1)
    await post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
  const ids: string[] = []
  const create = await measure(
    () =>
      pool(volumes, concurrency, async () => {
        const job = await createVolume(ctx, request)
        const result = await job()
        ids.push(result.id)
      }),
    volumes,
  )
  const del = await measure(
    () =>
      pool(ids.length, concurrency, async (i) => {
        const job = await deleteVolume(ctx, ids[i]!)
        await job()
      }),
    ids.length,
  )
  rounds.push({ create, del })
}
if (session) {
  const { profile } = await post('HeapProfiler.stopSampling')
  writeFileSync(args['alloc-prof']!, JSON.stringify(profile))
  session.disconnect()
}
await app.close()
rmSync(dir, { recursive: true, force: true })

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const per = (p: Phase, k: 'mainUs' | 'procUs') => p[k] / p.ops
const measured = rounds.slice(1)
const summary = {
  root: base,
  load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  coldCreateProcUs: per(rounds[0]!.create, 'procUs'),
  coldDeleteProcUs: per(rounds[0]!.del, 'procUs'),
  createMainUs: median(measured.map((r) => per(r.create, 'mainUs'))),
  createProcUs: median(measured.map((r) => per(r.create, 'procUs'))),
  createPerSec: median(measured.map((r) => (r.create.ops * 1000) / r.create.wallMs)),
  deleteMainUs: median(measured.map((r) => per(r.del, 'mainUs'))),
  deleteProcUs: median(measured.map((r) => per(r.del, 'procUs'))),
  deletePerSec: median(measured.map((r) => (r.del.ops * 1000) / r.del.wallMs)),
}
if (args.json) console.log(JSON.stringify(summary))
else {
  for (const [i, r] of rounds.entries()) {
    console.log(
      `round ${i + 1}${i === 0 ? ' (warm-up)' : ''}: create main ${per(r.create, 'mainUs').toFixed(0)} µs, process ${per(r.create, 'procUs').toFixed(0)} µs, ${((r.create.ops * 1000) / r.create.wallMs).toFixed(0)}/s; delete main ${per(r.del, 'mainUs').toFixed(0)} µs, process ${per(r.del, 'procUs').toFixed(0)} µs, ${((r.del.ops * 1000) / r.del.wallMs).toFixed(0)}/s`,
    )
  }
  console.log(summary)
  console.log(
    'µs per op by thread, last round: create',
    rounds.at(-1)!.create.threads,
    'delete',
    rounds.at(-1)!.del.threads,
  )
}
