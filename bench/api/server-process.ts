// The heqet server under test as a child process: config in a temp dir,
// start and wait for /hello, memory and CPU from /proc, stop by PID.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { runtimeEnv } from '../../deploy/image-steps.ts'
import { log } from './log.ts'
import type { Options, Scale } from './options.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const SERVER_BIN = join(ROOT, 'bin', 'heqet.js')
const CLK_TCK = 100 // Linux USER_HZ: /proc/<pid>/stat times are in 1/100 s

interface ProcTimes {
  cpuSec: number
  /** of it, the main thread's (the event loop; the rest is V8's compiler and GC threads and libuv's pool) */
  mainCpuSec: number
}

export class Server {
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
    /** an etcd db URL (bench/api/etcd-process.ts); default: an LMDB file in the temp dir */
    readonly dbUrl?: string,
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
        db: this.dbUrl ?? this.dbFile,
        loglevel: this.opts.logLevel,
        max_inflight_operations: this.opts.inflight,
        ...(this.maxVolumesPerCluster ? { max_volumes_per_cluster: this.maxVolumesPerCluster } : {}),
      },
    }
    const configFile = join(this.dir, 'heketi.json')
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEKETI_')) env[k] = v
    // the image's ENV (malloc settings among them), as a container starts the server
    if (this.opts.imageEnv) Object.assign(env, runtimeEnv())
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
    return { cpuSec: processCpuSec(this.pid), mainCpuSec: threadCpuSec(this.pid, this.pid) }
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

export function freePort(): Promise<number> {
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

/** busy CPU seconds of the whole machine, from /proc/stat */
export function machineBusySec(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal
  const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!
  return busy / CLK_TCK
}

/**
 * CPU seconds of the bench itself and of the children it has waited for
 * (wrk runs), from /proc/self/stat: utime + stime + cutime + cstime. The
 * server is a child too, but it is counted only once it has exited.
 */
export function benchCpuSec(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK
}

/** What bin/heqet.js runs: the compiled dist/ when it is there and not older than the sources. */
export function serverForm(): string {
  const compiled = join(ROOT, 'dist', 'api', 'main.js')
  if (process.env['HEQET_RUN_SOURCES'] === '1' || !existsSync(compiled))
    return 'from the TypeScript sources through tsx (no dist/: npm run build)'
  let newest = 0
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name)
      if (e.isDirectory()) walk(path)
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs)
    }
  }
  for (const d of ['api', 'src', 'db', 'executors']) if (existsSync(join(ROOT, d))) walk(join(ROOT, d))
  return newest <= statSync(compiled).mtimeMs
    ? 'compiled (dist/)'
    : 'from the TypeScript sources through tsx (dist/ is older than the sources: npm run build)'
}

/** CPU seconds one thread of a live process has run so far, from its schedstat (ns) */
export function threadCpuSec(pid: number, tid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e9
}

/** user+system CPU seconds of a live process so far, from /proc/<pid>/stat */
export function processCpuSec(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state); utime = field 14, stime = field 15
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}
