// Scale benchmark (issue 12 item 6): 10,000 nodes × 10 devices (100,000
// devices, mock executor) set up through the API, then sequential creates
// (one at a time, the queue polled back to back) up to 10,000 volumes, then
// `GET /volumes` and `GET /clusters/{id}` at that size, and the peak RSS.
// The real server process (`node bin/heqet.js`, LMDB file in a temp dir),
// real HTTP on 127.0.0.1, a fresh JWT per request (bench/api/). Each phase
// reports the server's and the bench's own CPU, the requests sent, RSS and
// the load average (the machine is shared: CPU per operation is the steadier
// figure).
//
//   npm run bench:scale                                  # full size (~3–5 min on 2 vCPU)
//   npm run bench:scale -- --nodes 1000 --volumes 2000   # smaller
//   npm run bench:scale -- --cpu-prof /tmp/prof          # profile the server (bench/cpuprofile.ts)
//   npm run bench:scale -- --heap-snapshot /tmp/snap     # the server's heap after the reads
//
// Figures go to docs/benchmarks.md ("Scale: 10,000 nodes"), with the machine.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { HeketiClient } from './api/client.ts'
import { fmt, log } from './api/log.ts'
import { parseOptions } from './api/options.ts'
import { pool } from './api/scenario.ts'
import { Server, serverForm } from './api/server-process.ts'
import { type Stats, stats } from './api/stats.ts'

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    devices: { type: 'string', default: '10' },
    zones: { type: 'string', default: '10' },
    volumes: { type: 'string', default: '10000' },
    'setup-concurrency': { type: 'string', default: '128' },
    reads: { type: 'string', default: '50' },
    'poll-ms': { type: 'string', default: '0' },
    'setup-poll-ms': { type: 'string', default: '25' },
    'cpu-prof': { type: 'string' },
    'heap-snapshot': { type: 'string' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})
if (args.help) {
  console.log(`npm run bench:scale -- [options]   (the figures: docs/benchmarks.md)

  --nodes N               nodes in the one cluster (10000)
  --devices N             devices per node (10)
  --zones N               failure zones the nodes are spread over (10)
  --volumes N             1 GiB replica-3 volumes created one at a time (10000)
  --setup-concurrency N   node and device adds in flight during the set-up (128)
  --setup-poll-ms N       queue poll interval during the set-up (25)
  --poll-ms N             queue poll interval during the creates (0: back to back)
  --reads N               GET /volumes and GET /clusters/{id} sent at the end (50 each)
  --cpu-prof DIR          profile the server (node --cpu-prof)
  --heap-snapshot DIR     write the server's heap after the reads
  --json FILE             also write the results as JSON
  --keep                  keep the temp directory (config, LMDB file, server log)`)
  process.exit(0)
}
const int = (name: string, v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`)
  return n
}
const NODES = int('nodes', args.nodes)
const DEVICES = int('devices', args.devices)
const ZONES = int('zones', args.zones)
const VOLUMES = int('volumes', args.volumes)
const SETUP_CONCURRENCY = int('setup-concurrency', args['setup-concurrency'])
const READS = int('reads', args.reads)
const POLL_MS = int('poll-ms', args['poll-ms'])
const SETUP_POLL_MS = int('setup-poll-ms', args['setup-poll-ms'])

const opts = parseOptions([
  '--scenario',
  'B',
  '--nodes',
  String(NODES),
  '--devices',
  String(Math.max(1, DEVICES)),
  '--volumes',
  String(Math.max(1, VOLUMES)),
  '--poll-ms',
  String(POLL_MS),
  ...(args['cpu-prof'] ? ['--cpu-prof', args['cpu-prof']] : []),
  ...(args.keep ? ['--keep'] : []),
])

const deviceName = (d: number) => `/dev/sd${String.fromCharCode(98 + (d % 24))}${d >= 24 ? d : ''}`

interface Phase {
  name: string
  wallSec: number
  serverCpuSec: number
  peakRssMiB: number
  /** RSS after the phase: anonymous (heap, malloc) and file-backed (code, the LMDB map) */
  anonMiB: number
  fileMiB: number
  /** HTTP requests the bench sent in the phase, and how many of them were queue polls */
  requests: number
  polls: number
  /** CPU seconds of the bench process (the client) in the phase */
  clientCpuSec: number
  /** 1-minute load average at the end of the phase (the machine is shared) */
  load: number
  /** CLOCK_MONOTONIC µs, the clock of V8's .cpuprofile timestamps (bench/cpuprofile.ts --phases) */
  startUs: number
  endUs: number
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

async function main(): Promise<void> {
  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true })
  const snapDir = args['heap-snapshot']
  if (snapDir) {
    // the server inherits the environment: a heap snapshot on SIGUSR2, written to snapDir
    mkdirSync(snapDir, { recursive: true })
    process.env['NODE_OPTIONS'] =
      `${process.env['NODE_OPTIONS'] ?? ''} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapDir}`.trim()
  }
  // what the server runs, decided now (bin/heqet.js decides at start; sources edited later change nothing)
  const form = serverForm()
  const server = new Server('scale', opts, opts.scale.B)
  const stop = () => server.stop().finally(() => process.exit(130))
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const phases: Phase[] = []
  let failed = false
  try {
    await server.start()
    log(`scale: server pid ${server.pid} on 127.0.0.1:${server.port}, dir ${server.dir}, ${form}`)
    // set-up: 128 adds in flight, so that they share commits, each polling its queue entry every
    // --setup-poll-ms (25; heketi's Go client polls every 400 ms); at 5 ms an add cost ~3 polls.
    // The sequential creates poll back to back (--poll-ms 0).
    const setupClient = new HeketiClient(server, SETUP_POLL_MS)
    const client = new HeketiClient(server, POLL_MS)
    const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      server.assertAlive()
      const cpu0 = server.cpu().cpuSec
      const client0 = process.cpuUsage()
      const req0 = setupClient.requests + client.requests
      const poll0 = setupClient.polls + client.polls
      const startUs = monotonicUs()
      const t0 = performance.now()
      log(`scale: ${name}...`)
      const out = await fn()
      const mem = server.memory()
      const p = {
        name,
        wallSec: (performance.now() - t0) / 1000,
        serverCpuSec: server.cpu().cpuSec - cpu0,
        peakRssMiB: mem.peakMiB,
        anonMiB: mem.anonMiB,
        fileMiB: mem.fileMiB,
        requests: setupClient.requests + client.requests - req0,
        polls: setupClient.polls + client.polls - poll0,
        clientCpuSec: (() => {
          const u = process.cpuUsage(client0)
          return (u.user + u.system) / 1e6
        })(),
        load: loadavg()[0]!,
        startUs,
        endUs: monotonicUs(),
      }
      phases.push(p)
      log(
        `scale: ${name} done in ${fmt(p.wallSec)} s (server CPU ${fmt(p.serverCpuSec)} s, client CPU ${fmt(p.clientCpuSec)} s, ` +
          `${p.requests} requests, ${p.polls} polls, RSS anon ${fmt(p.anonMiB)} MiB, load ${fmt(p.load)})`,
      )
      return out
    }

    let cluster = ''
    const nodeIds: string[] = new Array(NODES)
    await phase(`add cluster + ${NODES} nodes`, async () => {
      const c = await setupClient.request('POST', '/clusters', { block: true, file: true })
      if (c.status !== 201) throw new Error(`POST /clusters: ${c.status} ${c.body.trim()}`)
      cluster = (JSON.parse(c.body) as { id: string }).id
      await pool(
        Array.from({ length: NODES }, (_, i) => i),
        SETUP_CONCURRENCY,
        async (i) => {
          const r = await setupClient.run('POST', '/nodes', {
            zone: (i % ZONES) + 1,
            hostnames: {
              manage: [`node${i}.scale.heqet.test`],
              storage: [`10.${1 + Math.floor(i / 62500)}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`],
            },
            cluster,
          })
          if (r.status !== 303) throw new Error(`node add ${i}: ${r.status} ${r.body.trim()}`)
          nodeIds[i] = r.location.split('/').pop()!
        },
      )
    })
    await phase(`add ${NODES * DEVICES} devices`, async () => {
      const work = nodeIds.flatMap((node) => Array.from({ length: DEVICES }, (_, d) => ({ node, d })))
      await pool(work, SETUP_CONCURRENCY, async ({ node, d }) => {
        const r = await setupClient.run('POST', '/devices', { name: deviceName(d), node })
        if (r.status !== 204)
          throw new Error(`device add ${node} ${deviceName(d)}: ${r.status} ${r.body.trim()}`)
      })
    })
    const setupSec = phases.reduce((s, p) => s + p.wallSec, 0)

    const createLat: number[] = []
    const curve: number[] = []
    let createWall = 0
    await phase(`create ${VOLUMES} volumes one at a time`, async () => {
      const start = performance.now()
      const tenth = Math.max(1, Math.floor(VOLUMES / 10))
      let mark: number[] = []
      for (let i = 0; i < VOLUMES; i++) {
        const t = performance.now()
        const r = await client.run('POST', '/volumes', {
          size: 1,
          durability: { type: 'replicate', replicate: { replica: 3 } },
        })
        if (r.status !== 303) throw new Error(`volume create #${i}: ${r.status} ${r.body.trim()}`)
        const ms = performance.now() - t
        createLat.push(ms)
        mark.push(ms)
        if (mark.length === tenth) {
          curve.push(stats(mark, 1).p50)
          mark = []
        }
        if ((i + 1) % 1000 === 0) log(`scale: ${i + 1} volumes`)
      }
      createWall = (performance.now() - start) / 1000
    })

    const timed = async (path: string): Promise<Stats & { bytes: number }> => {
      const lat: number[] = []
      let bytes = 0
      const t0 = performance.now()
      for (let i = 0; i < READS; i++) {
        const t = performance.now()
        const r = await client.request('GET', path)
        lat.push(performance.now() - t)
        if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.trim()}`)
        bytes = Buffer.byteLength(r.body)
      }
      return { ...stats(lat, (performance.now() - t0) / 1000), bytes }
    }
    const list = await phase(`GET /volumes × ${READS}`, () => timed('/volumes'))
    const info = await phase(`GET /clusters/{id} × ${READS}`, () => timed(`/clusters/${cluster}`))
    const listed = (await client.get<{ volumes: string[] }>('/volumes')).volumes.length
    if (listed !== VOLUMES) throw new Error(`GET /volumes listed ${listed}, expected ${VOLUMES}`)
    client.close()
    setupClient.close()
    // read before the snapshot: writing one takes as much memory again
    const mem = server.memory()
    if (snapDir) log(`scale: heap snapshot ${await heapSnapshot(server.pid, snapDir)}`)

    const result = {
      nodes: NODES,
      devices: NODES * DEVICES,
      volumes: VOLUMES,
      setupSec,
      create: { ...stats(createLat, createWall), p50PerTenth: curve },
      list,
      info,
      peakRssMiB: mem.peakMiB,
      rssEndMiB: mem.rssMiB,
      dbMiB: server.dbSizeMiB(),
      phases,
    }
    const ms = (x: number) => fmt(x)
    const out = [
      `## Scale: ${NODES} nodes × ${DEVICES} devices, ${VOLUMES} volumes (mock executor)`,
      '',
      `Server ${form}.`,
      '',
      '| measurement | value |',
      '|---|---:|',
      `| topology set-up through the API (cluster, ${NODES} node adds, ${NODES * DEVICES} device adds; concurrency ${SETUP_CONCURRENCY}) | ${fmt(setupSec)} s |`,
      `| sequential create p50 / p99 / max, ms | ${ms(result.create.p50)} / ${ms(result.create.p99)} / ${ms(result.create.max)} |`,
      `| create p50 per tenth of the volumes, ms | ${curve.map(ms).join(' → ')} |`,
      `| GET /volumes at ${VOLUMES} volumes, p50 / p99 ms (${fmt(list.bytes / 1024)} KiB) | ${ms(list.p50)} / ${ms(list.p99)} |`,
      `| GET /clusters/{id} at ${VOLUMES} volumes, p50 / p99 ms (${fmt(info.bytes / 1024)} KiB) | ${ms(info.p50)} / ${ms(info.p99)} |`,
      `| server peak RSS (VmHWM) | ${fmt(mem.peakMiB)} MiB |`,
      `| server RSS at the end | ${fmt(mem.rssMiB)} MiB |`,
      `| LMDB file | ${fmt(result.dbMiB)} MiB |`,
      '',
      '| phase | wall, s | server CPU, s | bench client CPU, s | requests (polls) | peak RSS after, MiB | RSS anon / file, MiB | load |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...phases.map(
        (p) =>
          `| ${p.name} | ${fmt(p.wallSec)} | ${fmt(p.serverCpuSec)} | ${fmt(p.clientCpuSec)} | ${p.requests} (${p.polls}) | ` +
          `${fmt(p.peakRssMiB)} | ${fmt(p.anonMiB)} / ${fmt(p.fileMiB)} | ${fmt(p.load)} |`,
      ),
    ]
    process.stdout.write(`\n${out.join('\n')}\n`)
    if (args.json) writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`)
    if (args['cpu-prof']) {
      const file = join(opts.cpuProf!, `phases-scale-${server.pid}.json`)
      writeFileSync(file, `${JSON.stringify(phases, null, 2)}\n`)
      log(`scale: phase boundaries in ${file} (bench/cpuprofile.ts --phases ${file} PROFILE)`)
    }
  } catch (err) {
    failed = true
    console.error(`scale FAILED: ${(err as Error).stack ?? err}\n--- server log ---\n${server.tail(30)}`)
  } finally {
    await server.stop()
  }
  process.exit(failed ? 1 : 0)
}

/** SIGUSR2 (--heapsnapshot-signal) and wait until the snapshot file stops growing. */
async function heapSnapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir))
  process.kill(pid, 'SIGUSR2')
  const deadline = Date.now() + 300_000
  let file = ''
  let size = -1
  while (Date.now() < deadline) {
    await sleep(500)
    file ||= readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f)) ?? ''
    if (!file) continue
    const now = existsSync(join(dir, file)) ? statSync(join(dir, file)).size : 0
    if (now > 0 && now === size) return join(dir, file)
    size = now
  }
  throw new Error(`no heap snapshot in ${dir}`)
}

await main()
