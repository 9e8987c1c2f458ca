// heqet benchmark: starts the real server (`node bin/heqet.js --config=FILE`,
// mock executor, LMDB file in a temp dir) and drives it over real HTTP on
// 127.0.0.1 with a fresh JWT per request, the way heketi's clients do.
//
//   npm run bench                      # scenario A (heketi's comparison load) + B (scale)
//   npm run bench -- --scenario A      # only A
//   npm run bench -- --quick           # ~1 minute smoke run of both, small scale
//   npm run bench -- --scenario B --nodes 200 --devices 10 --volumes 2000
//
// See docs/benchmarks.md for the flags, the method and the measured figures.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { signToken } from '../api/auth.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SERVER_BIN = join(ROOT, 'bin', 'heqet.js')
const CLK_TCK = 100 // Linux USER_HZ: /proc/<pid>/stat times are in 1/100 s

/** heketi v10.4.1, scenario A, measured on the same machines (see docs/benchmarks.md) */
const HEKETI = {
  createsPerSec: 24.7,
  createP99Ms: 537,
  infoPerSec: 784,
  infoP99Ms: 62,
  listPerSec: 1079,
  topologyWalkSec: 1.14,
  deletesPerSec: 106,
  peakRssMiB: 39,
}

// ---------------------------------------------------------------------------
// options

interface Scale {
  nodes: number
  devices: number
  zones: number
  volumes: number
  /** how many volumes the delete phase removes (<= volumes) */
  deletes: number
  /** concurrency of node/device adds during setup */
  setupConcurrency: number
  infoSeconds: number
  listSeconds: number
}

interface Options {
  scenarios: ('A' | 'B')[]
  quick: boolean
  concurrency: number
  readConcurrency: number
  pollMs: number
  inflight: number
  logLevel: string
  cpuProf: string | undefined
  json: string | undefined
  keep: boolean
  repeat: number
  named: boolean
  scale: Record<'A' | 'B', Scale>
}

const USAGE = `usage: npm run bench -- [options]
  --scenario A|B|all     which scenario(s) to run (default all)
  --quick                ~1 minute smoke run (small scale, short read phases)
  --nodes N              nodes (overrides the selected scenario(s))
  --devices N            devices per node
  --zones N              zones (nodes get zone i % N + 1)
  --volumes N            1 GiB replica-3 volumes to create
  --deletes N            volumes to delete at the end (default: all for A, a sample of 1000 for B)
  --concurrency N        create/delete concurrency (default 8)
  --read-concurrency N   GET concurrency (default 16)
  --info-seconds S       duration of the GET /volumes/{id} phase (default 5)
  --list-seconds S       duration of the GET /volumes phase (default 3)
  --poll-ms N            /queue polling interval in ms (default 5)
  --inflight N           server max_inflight_operations (default 8, heketi's default; 429s are retried)
  --loglevel L           server glusterfs.loglevel (default info, as heketi)
  --cpu-prof DIR         run the server with node --cpu-prof, profiles written to DIR
  --json FILE            also write the results as JSON
  --named                give every volume a name (as Kubernetes provisioners do); default unnamed
  --repeat N             run each scenario N times (fresh server each) and add a median table
  --keep                 keep the temp directory (DB, config, server log)`

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'all' },
      quick: { type: 'boolean', default: false },
      nodes: { type: 'string' },
      devices: { type: 'string' },
      zones: { type: 'string' },
      volumes: { type: 'string' },
      deletes: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
      'read-concurrency': { type: 'string', default: '16' },
      'info-seconds': { type: 'string' },
      'list-seconds': { type: 'string' },
      'poll-ms': { type: 'string', default: '5' },
      inflight: { type: 'string', default: '8' },
      loglevel: { type: 'string', default: 'info' },
      'cpu-prof': { type: 'string' },
      json: { type: 'string' },
      keep: { type: 'boolean', default: false },
      repeat: { type: 'string', default: '1' },
      named: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const int = (name: string, v: string | undefined, min = 0): number | undefined => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`)
    return n
  }
  const num = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`)
    return n
  }
  const sc = values.scenario.toUpperCase()
  if (!['A', 'B', 'ALL'].includes(sc)) throw new Error('--scenario must be A, B or all')
  const scenarios: ('A' | 'B')[] = sc === 'ALL' ? ['A', 'B'] : [sc as 'A' | 'B']
  const quick = values.quick
  const scale: Record<'A' | 'B', Scale> = {
    A: {
      nodes: 6,
      devices: 4,
      zones: 3,
      volumes: quick ? 100 : 300,
      deletes: Number.POSITIVE_INFINITY,
      setupConcurrency: 1,
      infoSeconds: quick ? 1 : 5,
      listSeconds: quick ? 1 : 3,
    },
    B: {
      nodes: quick ? 50 : 1000,
      devices: 10,
      zones: 10,
      volumes: quick ? 500 : 10000,
      // full deletion of 10 000 volumes adds minutes; a sample of 1000 is timed
      deletes: quick ? Number.POSITIVE_INFINITY : 1000,
      setupConcurrency: 16,
      infoSeconds: quick ? 1 : 5,
      listSeconds: quick ? 1 : 3,
    },
  }
  for (const s of scenarios) {
    const x = scale[s]
    x.nodes = int('nodes', values.nodes, 1) ?? x.nodes
    x.devices = int('devices', values.devices, 1) ?? x.devices
    x.zones = int('zones', values.zones, 1) ?? x.zones
    x.volumes = int('volumes', values.volumes, 1) ?? x.volumes
    x.deletes = int('deletes', values.deletes, 0) ?? x.deletes
    x.infoSeconds = num('info-seconds', values['info-seconds']) ?? x.infoSeconds
    x.listSeconds = num('list-seconds', values['list-seconds']) ?? x.listSeconds
    x.deletes = Math.min(x.deletes, x.volumes)
  }
  return {
    scenarios,
    quick,
    concurrency: int('concurrency', values.concurrency, 1)!,
    readConcurrency: int('read-concurrency', values['read-concurrency'], 1)!,
    pollMs: int('poll-ms', values['poll-ms'], 0)!,
    inflight: int('inflight', values.inflight, 1)!,
    logLevel: values.loglevel,
    cpuProf: values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined,
    json: values.json,
    keep: values.keep,
    repeat: int('repeat', values.repeat, 1)!,
    named: values.named,
    scale,
  }
}

// ---------------------------------------------------------------------------
// statistics and small helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

interface Stats {
  count: number
  seconds: number
  perSec: number
  p50: number
  p99: number
  max: number
}

function stats(latencies: number[], seconds: number): Stats {
  const sorted = [...latencies].sort((a, b) => a - b)
  return {
    count: sorted.length,
    seconds,
    perSec: sorted.length / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  }
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

function fmt(n: number, digits?: number): string {
  if (!Number.isFinite(n)) return '–'
  const d = digits ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2)
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
}

/** Run fn over items with at most `concurrency` in flight; the first error stops the others. */
async function pool<T>(
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
async function loopFor(
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

// ---------------------------------------------------------------------------
// the server process

interface ProcTimes {
  cpuSec: number
}

class Server {
  private child: ChildProcess | undefined
  private exited = false
  private exitInfo = ''
  readonly dir: string
  readonly logFile: string
  readonly dbFile: string
  readonly adminKey = randomBytes(24).toString('base64url')
  readonly userKey = randomBytes(24).toString('base64url')
  port = 0

  constructor(
    readonly name: string,
    private readonly opts: Options,
    private readonly scale: Scale,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `heqet-bench-${name}-`))
    this.logFile = join(this.dir, 'server.log')
    this.dbFile = join(this.dir, 'heqet.db')
  }

  get pid(): number {
    return this.child?.pid ?? 0
  }

  /** GiB per mock device: 8× the average brick load, at least 500 (heketi's mock default) */
  get deviceSizeGiB(): number {
    const perDevice = (this.scale.volumes * 3) / (this.scale.nodes * this.scale.devices)
    return Math.max(500, Math.ceil(perDevice * 8))
  }

  /** heketi's default limit is 1000 volumes per cluster; lifted (-1) when the scale needs more */
  get maxVolumesPerCluster(): number {
    return this.scale.volumes > 1000 ? -1 : 0
  }

  async start(): Promise<void> {
    this.port = await freePort()
    const config = {
      port: String(this.port),
      jwt: { admin: { key: this.adminKey }, user: { key: this.userKey } },
      glusterfs: {
        executor: 'mock',
        db: this.dbFile,
        loglevel: this.opts.logLevel,
        max_inflight_operations: this.opts.inflight,
        ...(this.maxVolumesPerCluster ? { max_volumes_per_cluster: this.maxVolumesPerCluster } : {}),
      },
    }
    const configFile = join(this.dir, 'heketi.json')
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEKETI_')) env[k] = v
    env['HEKETI_MOCK_DEVICE_SIZE_GB'] = String(this.deviceSizeGiB)
    env['HEKETI_MAX_INFLIGHT_OPERATIONS'] = String(this.opts.inflight)
    const nodeArgs = this.opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${this.opts.cpuProf}`] : []
    const logFd = openSync(this.logFile, 'a')
    try {
      this.child = spawn(process.execPath, [...nodeArgs, SERVER_BIN, `--config=${configFile}`], {
        cwd: ROOT,
        env,
        stdio: ['ignore', logFd, logFd],
      })
    } finally {
      closeSync(logFd)
    }
    this.child.on('exit', (code, signal) => {
      this.exited = true
      this.exitInfo = signal ? `signal ${signal}` : `exit code ${code}`
    })
    const deadline = Date.now() + 60_000
    for (;;) {
      if (this.exited) throw new Error(`server exited during start-up (${this.exitInfo})\n${this.tail()}`)
      if (Date.now() > deadline) throw new Error(`server did not answer /hello within 60 s\n${this.tail()}`)
      const ok = await new Promise<boolean>((res) => {
        const req = http.get({ host: '127.0.0.1', port: this.port, path: '/hello', agent: false }, (r) => {
          r.resume()
          res(r.statusCode === 200)
        })
        req.on('error', () => res(false))
      })
      if (ok) return
      await sleep(50)
    }
  }

  assertAlive(): void {
    if (this.exited) throw new Error(`server died (${this.exitInfo})\n${this.tail()}`)
  }

  /** last lines of the server log, for error reports */
  tail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
    } catch {
      return '(no server log)'
    }
  }

  private status(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const line of readFileSync(`/proc/${this.pid}/status`, 'utf8').split('\n')) {
      const i = line.indexOf(':')
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim()
    }
    return out
  }

  /** VmHWM (peak RSS), VmRSS and its anonymous / file-backed parts, in MiB */
  memory(): { peakMiB: number; rssMiB: number; anonMiB: number; fileMiB: number } {
    const s = this.status()
    const kib = (v: string | undefined) => Number((v ?? '0 kB').split(/\s+/)[0]) / 1024
    return {
      peakMiB: kib(s['VmHWM']),
      rssMiB: kib(s['VmRSS']),
      anonMiB: kib(s['RssAnon']),
      fileMiB: kib(s['RssFile']),
    }
  }

  /** user+system CPU seconds of the server process so far */
  cpu(): ProcTimes {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); utime = field 14, stime = field 15
    return { cpuSec: (Number(fields[11]) + Number(fields[12])) / CLK_TCK }
  }

  dbSizeMiB(): number {
    return existsSync(this.dbFile) ? statSync(this.dbFile).size / 1048576 : 0
  }

  /** SIGTERM by PID, SIGKILL after 10 s; then remove the temp dir (unless --keep). */
  async stop(): Promise<void> {
    const child = this.child
    if (child && !this.exited && child.pid) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()))
      try {
        process.kill(child.pid, 'SIGTERM')
      } catch {}
      const timer = setTimeout(() => {
        if (!this.exited && child.pid) {
          try {
            process.kill(child.pid, 'SIGKILL')
          } catch {}
        }
      }, 10_000)
      await gone
      clearTimeout(timer)
    }
    if (this.opts.keep) log(`kept ${this.dir}`)
    else rmSync(this.dir, { recursive: true, force: true })
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => res(port))
    })
  })
}

// ---------------------------------------------------------------------------
// the client: heketi-style requests, one fresh token per request

interface Res {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

class HeketiClient {
  private readonly agent: http.Agent
  requests = 0
  polls = 0
  busy = 0

  constructor(
    private readonly server: Server,
    private readonly pollMs: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
  }

  request(method: string, path: string, body?: unknown): Promise<Res> {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const headers: http.OutgoingHttpHeaders = {
      authorization: `bearer ${signToken('admin', this.server.adminKey, method, path)}`,
    }
    if (payload !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = Buffer.byteLength(payload)
    }
    this.requests++
    return new Promise((res, rej) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.server.port, method, path, headers, agent: this.agent },
        (r) => {
          const chunks: Buffer[] = []
          r.on('data', (c: Buffer) => chunks.push(c))
          r.on('end', () =>
            res({
              status: r.statusCode ?? 0,
              headers: r.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          )
          r.on('error', rej)
        },
      )
      req.on('error', rej)
      req.end(payload)
    })
  }

  /** GET expecting 200 JSON */
  async get<T>(path: string): Promise<T> {
    const r = await this.request('GET', path)
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.trim()}`)
    return JSON.parse(r.body) as T
  }

  /**
   * Start an async operation and poll its queue entry until it is final
   * (the Python client's way: no redirect following). 429 is retried after
   * a short sleep and counted.
   */
  async run(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; location: string; body: string }> {
    let first: Res
    for (;;) {
      first = await this.request(method, path, body)
      if (first.status !== 429) break
      this.busy++
      await sleep(this.pollMs || 1)
    }
    if (first.status !== 202) return { status: first.status, location: '', body: first.body }
    const queue = String(first.headers.location ?? '')
    if (!queue.startsWith('/queue/'))
      throw new Error(`${method} ${path}: 202 without /queue Location (${queue})`)
    for (;;) {
      if (this.pollMs > 0) await sleep(this.pollMs)
      else await new Promise<void>((r) => setImmediate(r))
      this.polls++
      const poll = await this.request('GET', queue)
      if (poll.headers['x-pending'] === 'true') continue
      return { status: poll.status, location: String(poll.headers.location ?? ''), body: poll.body }
    }
  }

  close(): void {
    this.agent.destroy()
  }
}

// ---------------------------------------------------------------------------
// the scenario

interface Phase {
  name: string
  wallSec: number
  serverCpuSec: number
  clientCpuSec: number
  /** CPU seconds used by everything else on the machine (other processes share the vCPUs) */
  otherCpuSec: number
  /** CLOCK_MONOTONIC µs, the clock of V8's .cpuprofile timestamps (bench/cpuprofile.ts --phases) */
  startUs: number
  endUs: number
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

/** busy CPU seconds of the whole machine, from /proc/stat */
function machineBusySec(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!
  return busy / CLK_TCK
}

interface ScenarioResult {
  name: string
  scale: Scale
  deviceSizeGiB: number
  maxVolumesPerCluster: number
  setup: { clusterNodesSec: number; devicesSec: number; nodesPerSec: number; devicesPerSec: number }
  create: Stats & { pollsPerCreate: number; busyRetries: number; curve: number[] }
  info: Stats
  list: Stats & { ids: number }
  walk: {
    seconds: number
    requests: number
    volumes: number
    nodes: number
    devices: number
    bricks: number
    bytes: number
  }
  del: Stats & { busyRetries: number }
  peakRssMiB: number
  rssStartMiB: number
  rssEndMiB: number
  rssEndAnonMiB: number
  rssEndFileMiB: number
  rssAfterCreatesMiB: number
  dbMiB: number
  phases: Phase[]
}

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

async function runScenario(name: 'A' | 'B', opts: Options, server: Server): Promise<ScenarioResult> {
  const sc = opts.scale[name]
  const client = new HeketiClient(server, opts.pollMs)
  const phases: Phase[] = []
  const rssStartMiB = server.memory().rssMiB
  const phase = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    server.assertAlive()
    const cpu0 = server.cpu().cpuSec
    const client0 = process.cpuUsage()
    const machine0 = machineBusySec()
    const startUs = monotonicUs()
    const t0 = performance.now()
    log(`${name}: ${label}...`)
    const out = await fn()
    const wallSec = (performance.now() - t0) / 1000
    const serverCpuSec = server.cpu().cpuSec - cpu0
    const cu = process.cpuUsage(client0)
    const clientCpuSec = (cu.user + cu.system) / 1e6
    const otherCpuSec = Math.max(0, machineBusySec() - machine0 - serverCpuSec - clientCpuSec)
    phases.push({
      name: label,
      wallSec,
      serverCpuSec,
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
    const rssAfterCreatesMiB = server.memory().rssMiB
    const create = {
      ...stats(createLat, createWall),
      pollsPerCreate: (client.polls - polls0) / sc.volumes,
      busyRetries: client.busy - busy0,
      curve: createCurve,
    }

    // --- reads
    const infoRun = await phase(`GET /volumes/{id} for ${sc.infoSeconds} s`, () =>
      loopFor(sc.infoSeconds, opts.readConcurrency, async (i) => {
        const id = volumeIds[(i * 7919) % volumeIds.length]!
        const v = await client.get<VolumeInfo>(`/volumes/${id}`)
        if (v.id !== id) throw new Error(`GET /volumes/${id} returned ${v.id}`)
      }),
    )
    let listed = 0
    const listRun = await phase(`GET /volumes for ${sc.listSeconds} s`, () =>
      loopFor(sc.listSeconds, opts.readConcurrency, async () => {
        const l = await client.get<{ volumes: string[] }>('/volumes')
        listed = l.volumes.length
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
      info: stats(infoRun.latencies, infoRun.seconds),
      list: { ...stats(listRun.latencies, listRun.seconds), ids: listed },
      walk,
      del: { ...stats(delLat, delWall), busyRetries: client.busy - busy1 },
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

// ---------------------------------------------------------------------------
// report

function ratio(ours: number, theirs: number, higherIsBetter: boolean): string {
  const r = ours / theirs
  const better = higherIsBetter ? r >= 1 : r <= 1
  const factor = r >= 1 ? r : 1 / r
  return `${fmt(r, 2)} (${fmt(factor, factor >= 10 ? 0 : 1)}× ${better ? 'better' : 'worse'})`
}

function report(r: ScenarioResult, opts: Options, suffix = ''): string {
  const sc = r.scale
  const lines: string[] = []
  const title = r.name === 'A' ? `Scenario A — heketi's comparison load` : `Scenario B — scale`
  lines.push(
    `### ${title}: ${sc.nodes} nodes × ${sc.devices} devices (zones 1..${sc.zones}), ${sc.volumes} × 1 GiB replica-3 volumes${suffix}`,
  )
  lines.push('')
  const withHeketi = r.name === 'A'
  lines.push(
    withHeketi ? '| measurement | heqet | heketi v10.4.1 | ratio heqet/heketi |' : '| measurement | heqet |',
  )
  lines.push(withHeketi ? '|---|---:|---:|---|' : '|---|---:|')
  const row = (label: string, ours: string, theirs?: number, oursN?: number, higher?: boolean) => {
    if (!withHeketi) lines.push(`| ${label} | ${ours} |`)
    else if (theirs === undefined || oursN === undefined || higher === undefined)
      lines.push(`| ${label} | ${ours} | – | |`)
    else lines.push(`| ${label} | ${ours} | ${fmt(theirs)} | ${ratio(oursN, theirs, higher)} |`)
  }
  const c = opts.concurrency
  const rc = opts.readConcurrency
  if (r.name === 'B') {
    row(
      `setup: cluster + ${sc.nodes} node adds (conc ${sc.setupConcurrency})`,
      `${fmt(r.setup.clusterNodesSec)} s (${fmt(r.setup.nodesPerSec)}/s)`,
    )
    row(
      `setup: ${sc.nodes * sc.devices} device adds (conc ${sc.setupConcurrency})`,
      `${fmt(r.setup.devicesSec)} s (${fmt(r.setup.devicesPerSec)}/s)`,
    )
    row(`setup: ${sc.volumes} volume creates (conc ${c})`, `${fmt(r.create.seconds)} s`)
  }
  row(
    `volume create, creates/s (conc ${c})`,
    fmt(r.create.perSec),
    HEKETI.createsPerSec,
    r.create.perSec,
    true,
  )
  row('volume create latency p50, ms', fmt(r.create.p50))
  row('volume create latency p99, ms', fmt(r.create.p99), HEKETI.createP99Ms, r.create.p99, false)
  row(
    `volume info GET /volumes/{id}, req/s (conc ${rc})`,
    fmt(r.info.perSec),
    HEKETI.infoPerSec,
    r.info.perSec,
    true,
  )
  row('volume info latency p50, ms', fmt(r.info.p50))
  row('volume info latency p99, ms', fmt(r.info.p99), HEKETI.infoP99Ms, r.info.p99, false)
  row(
    `volume list GET /volumes, req/s (conc ${rc})`,
    fmt(r.list.perSec),
    HEKETI.listPerSec,
    r.list.perSec,
    true,
  )
  row('volume list latency p99, ms', fmt(r.list.p99))
  row(
    `topology walk (${r.walk.requests} sequential GETs), s`,
    fmt(r.walk.seconds, 3),
    HEKETI.topologyWalkSec,
    r.walk.seconds,
    false,
  )
  const delLabel =
    sc.deletes < sc.volumes
      ? `volume delete (sample of ${sc.deletes}), deletes/s`
      : 'volume delete, deletes/s'
  row(`${delLabel} (conc ${c})`, fmt(r.del.perSec), HEKETI.deletesPerSec, r.del.perSec, true)
  row('volume delete latency p99, ms', fmt(r.del.p99))
  row('server peak RSS (VmHWM), MiB', fmt(r.peakRssMiB, 1), HEKETI.peakRssMiB, r.peakRssMiB, false)
  lines.push('')
  lines.push(
    `Details: ${opts.named ? 'named' : 'unnamed'} volumes; queue poll interval ${opts.pollMs} ms (${fmt(r.create.pollsPerCreate, 1)} polls per create); ` +
      `creates/s per tenth of the volumes ${r.create.curve.map((x) => fmt(x)).join(' → ')}; ` +
      `max_inflight_operations ${opts.inflight}` +
      (opts.inflight === 8 ? ' (heketi default, not raised)' : ' (raised)') +
      `; 429 answers retried after ${opts.pollMs || 1} ms: ${r.create.busyRetries} during creates, ${r.del.busyRetries} during deletes; ` +
      `mock device size ${r.deviceSizeGiB} GiB; ` +
      (r.maxVolumesPerCluster < 0
        ? 'max_volumes_per_cluster lifted to unlimited (heketi default 1000); '
        : '') +
      `server RSS idle after start ${fmt(r.rssStartMiB, 1)} MiB, after creates ${fmt(r.rssAfterCreatesMiB, 1)} MiB, ` +
      `at end ${fmt(r.rssEndMiB, 1)} MiB (anon ${fmt(r.rssEndAnonMiB, 1)}, file-backed ${fmt(r.rssEndFileMiB, 1)}); ` +
      `LMDB file ${fmt(r.dbMiB, 1)} MiB; topology walk ${r.walk.volumes} volumes, ${r.walk.nodes} nodes, ` +
      `${r.walk.devices} devices, ${r.walk.bricks} bricks, ${fmt(r.walk.bytes / 1048576, 1)} MiB of JSON.`,
  )
  lines.push('')
  lines.push(
    '| phase | wall, s | server CPU, s (% of wall) | bench client CPU, s (% of wall) | other processes CPU, s (% of wall) |',
  )
  lines.push('|---|---:|---:|---:|---:|')
  const pct = (cpu: number, wall: number) => `${fmt(cpu)} (${fmt((cpu / wall) * 100, 0)} %)`
  for (const p of r.phases)
    lines.push(
      `| ${p.name} | ${fmt(p.wallSec)} | ${pct(p.serverCpuSec, p.wallSec)} | ${pct(p.clientCpuSec, p.wallSec)} | ${pct(p.otherCpuSec, p.wallSec)} |`,
    )
  lines.push('')
  return lines.join('\n')
}

// ---------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  let opts: Options
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    process.exit(2)
  }
  const servers = new Set<Server>()
  let interrupted = false
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = true
    log(`${sig}: stopping the server(s)`)
    Promise.all([...servers].map((s) => s.stop())).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true })
  const results: ScenarioResult[] = []
  let failed = false
  for (const name of opts.scenarios) {
    const runs: ScenarioResult[] = []
    for (let run = 1; run <= opts.repeat && !failed; run++) {
      const server = new Server(name, opts, opts.scale[name])
      servers.add(server)
      try {
        await server.start()
        log(
          `${name}: run ${run}/${opts.repeat}, server pid ${server.pid} on 127.0.0.1:${server.port}, dir ${server.dir}`,
        )
        const r = await runScenario(name, opts, server)
        runs.push(r)
        results.push(r)
        const suffix = opts.repeat > 1 ? ` (run ${run} of ${opts.repeat})` : ''
        process.stdout.write(`\n${report(r, opts, suffix)}\n`)
        if (opts.cpuProf) {
          const file = join(opts.cpuProf, `phases-${name}-${server.pid}.json`)
          writeFileSync(file, `${JSON.stringify(r.phases, null, 2)}\n`)
          log(`${name}: phase boundaries in ${file} (bench/cpuprofile.ts --phases ${file} PROFILE)`)
        }
      } catch (err) {
        failed = true
        if (interrupted) break
        console.error(`\nScenario ${name} FAILED: ${(err as Error).stack ?? err}`)
        console.error(`--- last server log lines (${server.logFile}) ---\n${server.tail(30)}`)
      } finally {
        await server.stop()
        servers.delete(server)
      }
    }
    if (runs.length > 1) {
      process.stdout.write(`\n${report(medianResult(runs), opts, ` (median of ${runs.length} runs)`)}\n`)
    }
    if (failed) break
  }
  process.stdout.write(
    `\nMachine: ${cpus().length} vCPU (${cpus()[0]?.model ?? '?'}), node ${process.version}, ` +
      `load average at end ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; client and server on the same machine, HTTP/1.1 keep-alive on 127.0.0.1, ` +
      `one HS256 token per request.\n`,
  )
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ heketi: HEKETI, results }, null, 2)}\n`)
  process.exit(failed ? 1 : 0)
}

/** Element-wise median of the numeric fields of several runs (phase rows matched by position). */
function medianResult(runs: ScenarioResult[]): ScenarioResult {
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  }
  const merge = (values: unknown[]): unknown => {
    const first = values[0]
    if (typeof first === 'number') return med(values as number[])
    if (Array.isArray(first)) return first.map((_, i) => merge(values.map((v) => (v as unknown[])[i])))
    if (first && typeof first === 'object') {
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(first)) out[k] = merge(values.map((v) => (v as Record<string, unknown>)[k]))
      return out
    }
    return first
  }
  return merge(runs) as ScenarioResult
}

await main()
