// Reads of two or more server variants in alternation, on a shared machine.
// Every variant runs as its own server process (mock executor, LMDB) with the
// same 300 volumes; then, round after round, wrk reads GET /volumes/{id} and
// GET /volumes from each variant in turn (the order reversed every other
// round), so each variant sees the same minutes of load from other work. Per
// window it records req/s, p99, the server's CPU per request (from
// /proc/<pid>/stat, steadier than req/s when other processes take CPU), the
// load average and the other processes' CPU; then the medians, and each
// server's peak RSS (VmHWM) and RSS breakdown at the end.
//
//   node --import tsx bench/ab-reads.ts                                # compiled vs sources
//   node --import tsx bench/ab-reads.ts --rounds 6 --seconds 5 \
//     --variant 'compiled' --variant 'sources:HEQET_RUN_SOURCES=1' \
//     --variant 'semi8:--max-semi-space-size=8'
//
// A variant is `label[:item,item...]`; an item `NAME=value` is an environment
// variable of that server, an item starting with `--` a node option placed
// before bin/heqet.js, an item `@DIR` another checkout (or a copy of one's
// bin/, dist/ and package.json beside a node_modules) whose bin/heqet.js runs:
// code before and after a change, side by side. `npm run build` first: bin/heqet.js runs dist/ unless
// HEQET_RUN_SOURCES=1. Figures and method: docs/benchmarks.md.
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { signToken } from '../api/auth.ts'
import { HeketiClient } from './api/client.ts'
import { freePort, machineBusySec, processCpuSec } from './api/server-process.ts'
import { runWrk } from './api/wrk.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

const { values: args } = parseArgs({
  options: {
    variant: { type: 'string', multiple: true },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '5' },
    volumes: { type: 'string', default: '300' },
    connections: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    wrk: { type: 'string', default: 'wrk' },
    loglevel: { type: 'string', default: 'info' },
    list: { type: 'boolean', default: true },
    'log-dir': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (args.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0])
  process.exit(0)
}

interface Variant {
  label: string
  env: Record<string, string>
  nodeArgs: string[]
  root: string
}

function parseVariant(text: string): Variant {
  const [label, rest] = text.includes(':')
    ? [text.slice(0, text.indexOf(':')), text.slice(text.indexOf(':') + 1)]
    : [text, '']
  const v: Variant = { label: label!, env: {}, nodeArgs: [], root: ROOT }
  for (const item of rest!.split(',').filter(Boolean)) {
    if (item.startsWith('--')) v.nodeArgs.push(item)
    else if (item.startsWith('@')) v.root = resolve(item.slice(1))
    else if (item.includes('=')) v.env[item.slice(0, item.indexOf('='))] = item.slice(item.indexOf('=') + 1)
    else throw new Error(`variant ${label}: ${item} is neither NAME=value nor --option`)
  }
  return v
}

const variants = (args.variant ?? ['compiled', 'sources:HEQET_RUN_SOURCES=1']).map(parseVariant)

class Running {
  child!: ChildProcess
  port = 0
  readonly dir = mkdtempSync(join(tmpdir(), 'heqet-ab-'))
  readonly adminKey = `ab${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`
  volumeIds: string[] = []
  constructor(readonly v: Variant) {}

  async start(): Promise<void> {
    this.port = await freePort()
    const config = join(this.dir, 'heketi.json')
    writeFileSync(
      config,
      JSON.stringify({
        port: String(this.port),
        jwt: { admin: { key: this.adminKey }, user: { key: `${this.adminKey}u` } },
        glusterfs: {
          executor: 'mock',
          db: join(this.dir, 'heqet.db'),
          loglevel: args.loglevel,
          max_inflight_operations: 8,
        },
      }),
    )
    const env: NodeJS.ProcessEnv = {}
    for (const [k, val] of Object.entries(process.env))
      if (!k.startsWith('HEKETI_') && k !== 'NODE_OPTIONS') env[k] = val
    Object.assign(env, this.v.env)
    // the server's output: discarded, or DIR/<label>.log with --log-dir DIR
    const logDir = args['log-dir']
    const out = logDir ? openSync(join(logDir, `${this.v.label}.log`), 'w') : 'ignore'
    this.child = spawn(
      process.execPath,
      [...this.v.nodeArgs, join(this.v.root, 'bin', 'heqet.js'), `--config=${config}`],
      {
        cwd: this.v.root,
        env,
        stdio: ['ignore', out, logDir ? out : 'inherit'],
      },
    )
    if (typeof out === 'number') closeSync(out)
    const client = new HeketiClient(this, 2)
    for (let i = 0; ; i++) {
      if (this.child.exitCode !== null) throw new Error(`${this.v.label}: server exited during start-up`)
      if (i > 600) throw new Error(`${this.v.label}: no /hello within 60 s`)
      const ok = await client.request('GET', '/hello').then(
        (r) => r.status === 200,
        () => false,
      )
      if (ok) break
      await sleep(100)
    }
    const c = await client.request('POST', '/clusters', { block: true, file: true })
    const cluster = (JSON.parse(c.body) as { id: string }).id
    for (let n = 0; n < 6; n++) {
      const r = await client.run('POST', '/nodes', {
        zone: (n % 3) + 1,
        hostnames: { manage: [`node${n}.ab.heqet.test`], storage: [`10.9.0.${n + 1}`] },
        cluster,
      })
      const node = r.location.split('/').pop()!
      for (const d of ['b', 'c', 'd', 'e']) {
        const dr = await client.run('POST', '/devices', { name: `/dev/sd${d}`, node })
        if (dr.status !== 204) throw new Error(`device add: ${dr.status} ${dr.body}`)
      }
    }
    const volumes = Number(args.volumes)
    let next = 0
    const creator = async () => {
      while (next < volumes) {
        next++
        const r = await client.run('POST', '/volumes', {
          size: 1,
          durability: { type: 'replicate', replicate: { replica: 3 } },
        })
        if (r.status !== 303) throw new Error(`create: ${r.status} ${r.body}`)
        this.volumeIds.push(r.location.slice('/volumes/'.length))
      }
    }
    await Promise.all(Array.from({ length: 8 }, creator))
  }

  get pid(): number {
    return this.child.pid!
  }

  memory(): Record<string, number> {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8')
    const kib = (f: string) => Number(new RegExp(`${f}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024
    return { hwm: kib('VmHWM'), rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') }
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGTERM')
    rmSync(this.dir, { recursive: true, force: true })
  }
}

interface Window {
  label: string
  path: string
  reqs: number
  rps: number
  p99: number
  cpuUs: number
  load: number
  otherPct: number
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function window(r: Running, path: 'info' | 'list'): Promise<Window> {
  const lifetime = Number(args.seconds) + 120
  const requests: [string, string][] =
    path === 'info'
      ? r.volumeIds.map((id) => [
          `/volumes/${id}`,
          signToken('admin', r.adminKey, 'GET', `/volumes/${id}`, lifetime),
        ])
      : [['/volumes', signToken('admin', r.adminKey, 'GET', '/volumes', lifetime)]]
  const cpu0 = processCpuSec(r.pid)
  const busy0 = machineBusySec()
  const self0 = process.cpuUsage()
  const res = await runWrk({
    bin: args.wrk,
    port: r.port,
    connections: Number(args.connections),
    threads: Number(args.threads),
    seconds: Number(args.seconds),
    requests,
  })
  const cpu = processCpuSec(r.pid) - cpu0
  const self = process.cpuUsage(self0)
  const other = Math.max(0, machineBusySec() - busy0 - cpu - (self.user + self.system) / 1e6)
  if (res.errors) throw new Error(`${r.v.label} ${path}: ${res.errors} errors from wrk\n${res.raw}`)
  return {
    label: r.v.label,
    path,
    reqs: res.count,
    rps: res.perSec,
    p99: res.p99,
    cpuUs: (cpu * 1e6) / res.count,
    load: loadavg()[0]!,
    // wrk's own CPU is inside "other" here; the column compares windows, not absolute figures
    otherPct: (other / res.seconds) * 100,
  }
}

async function main(): Promise<void> {
  const running = variants.map((v) => new Running(v))
  const stopAll = () => {
    for (const r of running) r.stop()
  }
  process.on('SIGINT', () => {
    stopAll()
    process.exit(130)
  })
  try {
    for (const r of running) await r.start()
    const windows: Window[] = []
    const rounds = Number(args.rounds)
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...running].reverse() : running
      for (const r of order) {
        const w = await window(r, 'info')
        windows.push(w)
        console.error(
          `round ${round + 1} ${w.label} info: ${Math.round(w.rps)} req/s, ${w.cpuUs.toFixed(1)} µs CPU/req, p99 ${w.p99.toFixed(2)} ms, load ${w.load.toFixed(2)}, other+wrk ${Math.round(w.otherPct)} %`,
        )
        if (args.list) {
          const l = await window(r, 'list')
          windows.push(l)
          console.error(
            `round ${round + 1} ${l.label} list: ${Math.round(l.rps)} req/s, ${l.cpuUs.toFixed(1)} µs CPU/req, p99 ${l.p99.toFixed(2)} ms, load ${l.load.toFixed(2)}`,
          )
        }
      }
    }
    console.log(
      '\n| variant | GET /volumes/{id} req/s (median; range) | CPU/req µs | p99 ms | GET /volumes req/s | CPU/req µs | load avg | peak RSS MiB (anon / file at end) |',
    )
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
    for (const r of running) {
      const info = windows.filter((w) => w.label === r.v.label && w.path === 'info')
      const list = windows.filter((w) => w.label === r.v.label && w.path === 'list')
      const m = r.memory()
      const range = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`
      console.log(
        `| ${r.v.label} | ${Math.round(median(info.map((w) => w.rps)))} (${range(info.map((w) => w.rps))}) | ${median(info.map((w) => w.cpuUs)).toFixed(1)} | ${median(info.map((w) => w.p99)).toFixed(2)} | ${list.length ? Math.round(median(list.map((w) => w.rps))) : '–'} | ${list.length ? median(list.map((w) => w.cpuUs)).toFixed(1) : '–'} | ${median(info.map((w) => w.load)).toFixed(1)} | ${m.hwm!.toFixed(1)} (${m.anon!.toFixed(1)} / ${m.file!.toFixed(1)}) |`,
      )
    }
  } finally {
    stopAll()
  }
}

await main()
