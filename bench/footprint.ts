// Memory footprint of the server process: peak RSS (VmHWM) idle after
// start-up, then after a small bounded load (a 3-node topology, volume
// creates, reads, and one /metrics scrape unless --no-scrape), summed over
// the server and every process it started (tsx starts an esbuild service).
//
//   node --import tsx bench/footprint.ts                 # bin/heqet.js of this checkout
//   node --import tsx bench/footprint.ts --bin /other/checkout/bin/heqet.js
//   node --import tsx bench/footprint.ts --volumes 40 --reads 2000 --no-scrape
//
// The figures go to docs/benchmarks.md ("Footprint").
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { signToken } from '../api/auth.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

const { values: args } = parseArgs({
  options: {
    bin: { type: 'string', default: join(ROOT, 'bin', 'heqet.js') },
    volumes: { type: 'string', default: '40' },
    reads: { type: 'string', default: '2000' },
    'no-scrape': { type: 'boolean', default: false },
  },
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer()
    srv.on('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => res(typeof addr === 'object' && addr ? addr.port : 0))
    })
  })
}

/** pid and all its descendants, from /proc */
function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)])
    } catch {
      // the process ended while /proc was read: it has no memory left to count
    }
  }
  const out = [pid]
  for (let i = 0; i < out.length; i++) out.push(...(parents.get(out[i]!) ?? []))
  return out
}

function statusKiB(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`))
  return Number(line?.split(/\s+/)[1] ?? 0)
}

/** peak RSS (MiB) of the server alone and of its whole process tree */
function peak(pid: number): { serverMiB: number; treeMiB: number; processes: number } {
  const tree = processTree(pid)
  const serverMiB = statusKiB(pid, 'VmHWM') / 1024
  const treeMiB = tree.reduce((sum, p) => sum + statusKiB(p, 'VmHWM'), 0) / 1024
  return { serverMiB: round(serverMiB), treeMiB: round(treeMiB), processes: tree.length }
}

const round = (n: number) => Math.round(n * 10) / 10

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-footprint-'))
  const port = await freePort()
  const adminKey = randomBytes(18).toString('base64url')
  const config = join(dir, 'heketi.json')
  writeFileSync(
    config,
    JSON.stringify({
      port: String(port),
      jwt: { admin: { key: adminKey }, user: { key: `${adminKey}u` } },
      glusterfs: { executor: 'mock', db: join(dir, 'heqet.db'), loglevel: 'warning' },
    }),
  )
  const started = performance.now()
  const child: ChildProcess = spawn(process.execPath, [args.bin, `--config=${config}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const pid = child.pid!
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
  const request = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; location: string; body: string }>((res, rej) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method,
          path,
          agent,
          headers: {
            authorization: `bearer ${signToken('admin', adminKey, method, path)}`,
            ...(payload ? { 'content-type': 'application/json' } : {}),
          },
        },
        (r) => {
          let text = ''
          r.on('data', (c) => {
            text += c
          })
          r.on('end', () =>
            res({ status: r.statusCode ?? 0, location: String(r.headers.location ?? ''), body: text }),
          )
        },
      )
      req.on('error', rej)
      req.end(payload)
    })
  /** an async operation, polled to its end; returns the resource path */
  const run = async (method: string, path: string, body?: unknown): Promise<string> => {
    const first = await request(method, path, body)
    if (first.status === 201 || first.status === 200) return first.body
    if (first.status !== 202) throw new Error(`${method} ${path}: ${first.status} ${first.body}`)
    for (let i = 0; i < 10_000; i++) {
      const poll = await request('GET', first.location)
      if (poll.status === 303) return poll.location
      if (poll.status === 204) return ''
      if (poll.status !== 200) throw new Error(`${method} ${path}: ${poll.status} ${poll.body}`)
      await sleep(2)
    }
    throw new Error(`${method} ${path}: still pending`)
  }

  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error('server exited during start-up')
      if (i > 600) throw new Error('no /hello within 60 s')
      const ok = await request('GET', '/hello').then(
        (r) => r.status === 200,
        () => false,
      )
      if (ok) break
      await sleep(100)
    }
    const startMs = Math.round(performance.now() - started)
    await sleep(2000)
    const idle = peak(pid)

    const cluster = JSON.parse(await run('POST', '/clusters', { file: true, block: true })).id as string
    for (let n = 0; n < 3; n++) {
      const nodePath = await run('POST', '/nodes', {
        cluster,
        zone: n + 1,
        hostnames: { manage: [`node${n}`], storage: [`10.0.0.${n + 1}`] },
      })
      const node = nodePath.split('/').pop()
      for (const name of ['/dev/sdb', '/dev/sdc']) await run('POST', '/devices', { node, name })
    }
    const volumes = Number(args.volumes)
    let next = 0
    const creator = async () => {
      while (next < volumes) {
        next++
        await run('POST', '/volumes', {
          size: 1,
          durability: { type: 'replicate', replicate: { replica: 3 } },
        })
      }
    }
    await Promise.all(Array.from({ length: 4 }, creator))
    const reads = Number(args.reads)
    let done = 0
    const reader = async () => {
      while (done < reads) {
        done++
        const r = await request('GET', done % 2 ? '/volumes' : `/clusters/${cluster}`)
        if (r.status !== 200) throw new Error(`read: ${r.status}`)
      }
    }
    await Promise.all(Array.from({ length: 8 }, reader))
    if (!args['no-scrape']) {
      const m = await request('GET', '/metrics')
      if (m.status !== 200) throw new Error(`/metrics: ${m.status}`)
    }
    const loaded = peak(pid)
    console.log(
      JSON.stringify(
        { bin: args.bin, startMs, idle, loaded, volumes, reads, scraped: !args['no-scrape'] },
        null,
        2,
      ),
    )
  } finally {
    agent.destroy()
    const gone = new Promise((r) => child.once('exit', r))
    if (child.exitCode === null) child.kill('SIGTERM')
    await gone
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
