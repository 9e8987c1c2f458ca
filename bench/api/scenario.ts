// One scenario run: setup, creates, reads, topology walk, deletes, each a
// timed phase with the CPU it cost the server, the client and the rest.
import { performance } from 'node:perf_hooks'
import { signToken } from '../../api/auth.ts'
import { HeketiClient } from './client.ts'
import { measureFloor } from './floor.ts'
import { fmt, log } from './log.ts'
import type { Options, Scale } from './options.ts'
import { benchCpuSec, machineBusySec, type Server } from './server-process.ts'
import { type Stats, stats } from './stats.ts'
import { runWrk } from './wrk.ts'

export async function pool<T>(
  items: T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0
  let failed: unknown
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++
      try {
        await fn(items[i]!, i)
      } catch (err) {
        failed ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  if (failed !== undefined) throw failed
}

/** Run fn repeatedly from `concurrency` workers for `seconds`; returns latencies (ms) and wall time (s). */
export async function loopFor(
  seconds: number,
  concurrency: number,
  fn: (i: number) => Promise<void>,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = []
  const start = performance.now()
  const end = start + seconds * 1000
  let n = 0
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      await fn(n++)
      latencies.push(performance.now() - t0)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { latencies, seconds: (performance.now() - start) / 1000 }
}

/** a read phase: latency figures, and who sent the load */
export type ReadStats = Stats & {
  reader: string
  connections: number
  errors: number
  /** mean body size of the checked answers */
  bodyBytes: number
  /** server CPU (user + system) per request over the phase, µs */
  serverCpuUs: number
}

/**
 * One read phase over `paths`: each answer is checked once through the Node.js
 * client (`check` throws on a wrong body), then the load runs for `seconds`,
 * from wrk with tokens made beforehand (one per path), or from the Node.js
 * client with a fresh token per request (--reader node).
 */
async function readPhase(
  opts: Options,
  server: Server,
  client: HeketiClient,
  seconds: number,
  paths: string[],
  check: (path: string, body: string) => void,
): Promise<ReadStats> {
  const sample = paths.length <= 50 ? paths : paths.filter((_, i) => i % Math.ceil(paths.length / 50) === 0)
  let bodyBytes = 0
  for (const path of sample) {
    const r = await client.request('GET', path)
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.trim()}`)
    check(path, r.body)
    bodyBytes += Buffer.byteLength(r.body) / sample.length
  }
  const cpu0 = server.cpu().cpuSec
  const connections = opts.readConcurrency
  if (opts.reader === 'node') {
    let failure: unknown
    const run = await loopFor(seconds, connections, async (i) => {
      const path = paths[(i * 7919) % paths.length]!
      const r = await client.request('GET', path)
      if (r.status !== 200) failure ??= new Error(`GET ${path}: ${r.status} ${r.body.trim()}`)
    })
    if (failure) throw failure
    const st = stats(run.latencies, run.seconds)
    const serverCpuUs = ((server.cpu().cpuSec - cpu0) * 1e6) / st.count
    return { ...st, reader: 'node', connections, errors: 0, bodyBytes, serverCpuUs }
  }
  // tokens live long enough for the phase; the server checks expiry on every request
  const lifetime = Math.ceil(seconds) + 120
  const requests = paths.map(
    (path) => [path, signToken('admin', server.adminKey, 'GET', path, lifetime)] as [string, string],
  )
  const r = await runWrk({
    bin: opts.wrk,
    port: server.port,
    connections,
    threads: opts.wrkThreads,
    seconds,
    requests,
  })
  if (r.errors > 0)
    throw new Error(`wrk: ${r.errors} failed requests (non-2xx/3xx, socket errors or timeouts)\n${r.raw}`)
  const serverCpuUs = ((server.cpu().cpuSec - cpu0) * 1e6) / r.count
  const { raw: _raw, bytes: _bytes, ...figures } = r
  return {
    ...figures,
    reader: `wrk -t${opts.wrkThreads} -c${connections}`,
    connections,
    bodyBytes,
    serverCpuUs,
  }
}

export interface Phase {
  name: string
  wallSec: number
  serverCpuSec: number
  /** of it, on the server's main thread */
  serverMainCpuSec: number
  clientCpuSec: number
  /** CPU seconds used by everything else on the machine (other processes share the vCPUs) */
  otherCpuSec: number
  /** CLOCK_MONOTONIC µs, the clock of V8's .cpuprofile timestamps (bench/cpuprofile.ts --phases) */
  startUs: number
  endUs: number
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

export interface ScenarioResult {
  name: string
  scale: Scale
  deviceSizeGiB: number
  maxVolumesPerCluster: number
  setup: { clusterNodesSec: number; devicesSec: number; nodesPerSec: number; devicesPerSec: number }
  create: Stats & {
    pollsPerCreate: number
    busyRetries: number
    curve: number[]
    /** server CPU (all threads) per create, µs */
    serverCpuUs: number
    /** of it, the server's main thread (the rest: V8's compiler and GC threads, libuv's pool with the LMDB commits) */
    serverMainCpuUs: number
    /** store writes and commits per create (--store-counts) */
    store?: StoreCounts
  }
  info: ReadStats
  /** bare node:http with wrk right after the info phase (see floor.ts); absent with --no-floor or --reader node */
  floor: (Stats & { serverCpuUs: number }) | undefined
  list: ReadStats & { ids: number }
  walk: {
    seconds: number
    requests: number
    volumes: number
    nodes: number
    devices: number
    bricks: number
    bytes: number
  }
  del: Stats & {
    busyRetries: number
    pollsPerDelete: number
    serverCpuUs: number
    serverMainCpuUs: number
    store?: StoreCounts
  }
  peakRssMiB: number
  rssStartMiB: number
  rssEndMiB: number
  rssEndAnonMiB: number
  rssEndFileMiB: number
  rssAfterCreatesMiB: number
  dbMiB: number
  phases: Phase[]
}

export interface StoreCounts {
  writes: number
  commits: number
}

/** heqet_store_writes and heqet_store_commits from /metrics (public) */
async function storeCounters(client: HeketiClient): Promise<StoreCounts> {
  const r = await client.request('GET', '/metrics')
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`)
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(r.body)?.[1] ?? Number.NaN)
  return { writes: metric('heqet_store_writes'), commits: metric('heqet_store_commits') }
}

const perOp = (before: StoreCounts | undefined, after: StoreCounts | undefined, n: number) =>
  before && after
    ? { writes: (after.writes - before.writes) / n, commits: (after.commits - before.commits) / n }
    : undefined

interface VolumeInfo {
  id: string
  cluster: string
  bricks: unknown[]
}
interface NodeInfo {
  id: string
  devices: { bricks: unknown[] }[]
}
interface ClusterInfo {
  id: string
  nodes: string[]
  volumes: string[]
}

const deviceName = (d: number) => {
  // sdb, sdc, ... sdz, sdaa, sdab, ...
  let n = d + 1
  let s = ''
  do {
    s = String.fromCharCode(97 + (n % 26)) + s
    n = Math.floor(n / 26) - 1
  } while (n >= 0)
  return `/dev/sd${s}`
}

export async function runScenario(name: 'A' | 'B', opts: Options, server: Server): Promise<ScenarioResult> {
  const sc = opts.scale[name]
  const client = new HeketiClient(server, opts.pollMs)
  const phases: Phase[] = []
  const rssStartMiB = server.memory().rssMiB
  const phase = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    server.assertAlive()
    const { cpuSec: cpu0, mainCpuSec: main0 } = server.cpu()
    const client0 = benchCpuSec()
    const machine0 = machineBusySec()
    const startUs = monotonicUs()
    const t0 = performance.now()
    log(`${name}: ${label}...`)
    const out = await fn()
    const wallSec = (performance.now() - t0) / 1000
    const cpu1 = server.cpu()
    const serverCpuSec = cpu1.cpuSec - cpu0
    const serverMainCpuSec = cpu1.mainCpuSec - main0
    const clientCpuSec = benchCpuSec() - client0
    const otherCpuSec = Math.max(0, machineBusySec() - machine0 - serverCpuSec - clientCpuSec)
    phases.push({
      name: label,
      wallSec,
      serverCpuSec,
      serverMainCpuSec,
      clientCpuSec,
      otherCpuSec,
      startUs,
      endUs: monotonicUs(),
    })
    log(
      `${name}: ${label} done in ${fmt(wallSec)} s (server CPU ${fmt(serverCpuSec)} s, bench client CPU ${fmt(clientCpuSec)} s)`,
    )
    server.assertAlive()
    return out
  }

  try {
    // --- setup: cluster, nodes, devices
    let cluster = ''
    const nodeIds: string[] = new Array(sc.nodes)
    const t0 = performance.now()
    await phase(`add cluster + ${sc.nodes} nodes`, async () => {
      const c = await client.request('POST', '/clusters', { block: true, file: true })
      if (c.status !== 201) throw new Error(`POST /clusters: ${c.status} ${c.body.trim()}`)
      cluster = (JSON.parse(c.body) as { id: string }).id
      const indexes = Array.from({ length: sc.nodes }, (_, i) => i)
      await pool(indexes, sc.setupConcurrency, async (i) => {
        const r = await client.run('POST', '/nodes', {
          zone: (i % sc.zones) + 1,
          hostnames: {
            manage: [`node${i}.bench.heqet.test`],
            storage: [`10.${1 + Math.floor(i / 62500)}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`],
          },
          cluster,
        })
        if (r.status !== 303) throw new Error(`node add ${i}: ${r.status} ${r.body.trim()}`)
        nodeIds[i] = r.location.split('/').pop()!
      })
    })
    const clusterNodesSec = (performance.now() - t0) / 1000
    const t1 = performance.now()
    await phase(`add ${sc.nodes * sc.devices} devices`, async () => {
      const work = nodeIds.flatMap((node) => Array.from({ length: sc.devices }, (_, d) => ({ node, d })))
      await pool(work, sc.setupConcurrency, async ({ node, d }) => {
        const r = await client.run('POST', '/devices', { name: deviceName(d), node })
        if (r.status !== 204)
          throw new Error(`device add ${node} ${deviceName(d)}: ${r.status} ${r.body.trim()}`)
      })
    })
    const devicesSec = (performance.now() - t1) / 1000

    // --- creates
    const volumeIds: string[] = new Array(sc.volumes)
    const createLat: number[] = []
    const polls0 = client.polls
    const busy0 = client.busy
    let createWall = 0
    // creates/s over each tenth of the volumes: shows whether creates slow down as the DB grows
    const createCurve: number[] = []
    const tenth = Math.max(1, Math.floor(sc.volumes / 10))
    let created = 0
    const store0 = opts.storeCounts ? await storeCounters(client) : undefined
    await phase(`create ${sc.volumes} volumes`, async () => {
      const start = performance.now()
      let mark = start
      await pool(volumeIds, opts.concurrency, async (_v, i) => {
        const t = performance.now()
        const r = await client.run('POST', '/volumes', {
          size: 1,
          durability: { type: 'replicate', replicate: { replica: 3 } },
          ...(opts.named ? { name: `bench_${name}_${i}` } : {}),
        })
        if (r.status !== 303 || !r.location.startsWith('/volumes/'))
          throw new Error(`volume create #${i}: ${r.status} ${r.body.trim()}`)
        createLat.push(performance.now() - t)
        volumeIds[i] = r.location.slice('/volumes/'.length)
        created++
        if (created % tenth === 0 && createCurve.length < 10) {
          const now = performance.now()
          createCurve.push(tenth / ((now - mark) / 1000))
          mark = now
        }
        if (created % 1000 === 0) log(`${name}: ${created} volumes`)
      })
      createWall = (performance.now() - start) / 1000
    })
    const createCpuSec = phases.at(-1)!.serverCpuSec
    const createMainCpuSec = phases.at(-1)!.serverMainCpuSec
    const store1 = opts.storeCounts ? await storeCounters(client) : undefined
    const rssAfterCreatesMiB = server.memory().rssMiB
    const create = {
      ...stats(createLat, createWall),
      pollsPerCreate: (client.polls - polls0) / sc.volumes,
      busyRetries: client.busy - busy0,
      curve: createCurve,
      serverCpuUs: (createCpuSec * 1e6) / sc.volumes,
      serverMainCpuUs: (createMainCpuSec * 1e6) / sc.volumes,
      store: perOp(store0, store1, sc.volumes),
    }

    // --- reads
    const info = await phase(`GET /volumes/{id} for ${sc.infoSeconds} s`, () =>
      readPhase(
        opts,
        server,
        client,
        sc.infoSeconds,
        volumeIds.map((id) => `/volumes/${id}`),
        (path, body) => {
          const v = JSON.parse(body) as VolumeInfo
          if (`/volumes/${v.id}` !== path) throw new Error(`GET ${path} returned volume ${v.id}`)
        },
      ),
    )
    let floor: (Stats & { serverCpuUs: number }) | undefined
    if (opts.reader === 'wrk' && opts.floor) {
      const bytes = Math.round(info.bodyBytes)
      floor = await phase(`bare node:http floor (${bytes}-byte body) for ${sc.infoSeconds} s`, () =>
        measureFloor({
          wrk: opts.wrk,
          bodyBytes: bytes,
          connections: opts.readConcurrency,
          threads: opts.wrkThreads,
          seconds: sc.infoSeconds,
        }),
      )
    }
    let listed = 0
    const list = await phase(`GET /volumes for ${sc.listSeconds} s`, () =>
      readPhase(opts, server, client, sc.listSeconds, ['/volumes'], (_path, body) => {
        listed = (JSON.parse(body) as { volumes: string[] }).volumes.length
      }),
    )
    if (listed !== sc.volumes)
      throw new Error(`GET /volumes listed ${listed} volumes, expected ${sc.volumes}`)

    // --- topology walk, exactly as heketi-cli topology info (Go client TopologyInfo): sequential
    const walk = { seconds: 0, requests: 0, volumes: 0, nodes: 0, devices: 0, bricks: 0, bytes: 0 }
    await phase('topology walk', async () => {
      const start = performance.now()
      const get = async <T>(path: string): Promise<T> => {
        const r = await client.request('GET', path)
        walk.requests++
        walk.bytes += Buffer.byteLength(r.body)
        if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.trim()}`)
        return JSON.parse(r.body) as T
      }
      const list = await get<{ clusters: string[] }>('/clusters')
      for (const cid of list.clusters) {
        const c = await get<ClusterInfo>(`/clusters/${cid}`)
        for (const vid of c.volumes) {
          const v = await get<VolumeInfo>(`/volumes/${vid}`)
          if (v.cluster === c.id) walk.volumes++
        }
        for (const nid of c.nodes) {
          const n = await get<NodeInfo>(`/nodes/${nid}`)
          walk.nodes++
          walk.devices += n.devices.length
          for (const d of n.devices) walk.bricks += d.bricks.length
        }
      }
      walk.seconds = (performance.now() - start) / 1000
    })
    if (walk.volumes !== sc.volumes || walk.nodes !== sc.nodes || walk.bricks !== sc.volumes * 3)
      throw new Error(
        `topology walk saw ${walk.volumes} volumes / ${walk.nodes} nodes / ${walk.bricks} bricks, ` +
          `expected ${sc.volumes} / ${sc.nodes} / ${sc.volumes * 3}`,
      )

    // --- deletes
    const delLat: number[] = []
    const busy1 = client.busy
    let delWall = 0
    const victims = volumeIds.slice(0, sc.deletes)
    const polls1 = client.polls
    const store2 = opts.storeCounts ? await storeCounters(client) : undefined
    await phase(`delete ${victims.length} volumes`, async () => {
      const start = performance.now()
      await pool(victims, opts.concurrency, async (id) => {
        const t = performance.now()
        const r = await client.run('DELETE', `/volumes/${id}`)
        if (r.status !== 204) throw new Error(`volume delete ${id}: ${r.status} ${r.body.trim()}`)
        delLat.push(performance.now() - t)
      })
      delWall = (performance.now() - start) / 1000
    })
    const delCpuSec = phases.at(-1)!.serverCpuSec
    const delMainCpuSec = phases.at(-1)!.serverMainCpuSec
    const pollsPerDelete = (client.polls - polls1) / Math.max(1, victims.length)
    const store3 = opts.storeCounts ? await storeCounters(client) : undefined
    const remaining = (await client.get<{ volumes: string[] }>('/volumes')).volumes.length
    if (remaining !== sc.volumes - victims.length)
      throw new Error(`after deletes ${remaining} volumes listed, expected ${sc.volumes - victims.length}`)

    const mem = server.memory()
    return {
      name,
      scale: sc,
      deviceSizeGiB: server.deviceSizeGiB,
      maxVolumesPerCluster: server.maxVolumesPerCluster,
      setup: {
        clusterNodesSec,
        devicesSec,
        nodesPerSec: sc.nodes / clusterNodesSec,
        devicesPerSec: (sc.nodes * sc.devices) / devicesSec,
      },
      create,
      info,
      floor,
      list: { ...list, ids: listed },
      walk,
      del: {
        ...stats(delLat, delWall),
        busyRetries: client.busy - busy1,
        pollsPerDelete,
        serverCpuUs: (delCpuSec * 1e6) / Math.max(1, victims.length),
        serverMainCpuUs: (delMainCpuSec * 1e6) / Math.max(1, victims.length),
        store: perOp(store2, store3, Math.max(1, victims.length)),
      },
      peakRssMiB: mem.peakMiB,
      rssStartMiB,
      rssEndMiB: mem.rssMiB,
      rssEndAnonMiB: mem.anonMiB,
      rssEndFileMiB: mem.fileMiB,
      rssAfterCreatesMiB,
      dbMiB: server.dbSizeMiB(),
      phases,
    }
  } finally {
    client.close()
  }
}
