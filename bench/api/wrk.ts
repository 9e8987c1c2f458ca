// Read load through wrk (Debian package `wrk`): a fixed set of requests,
// each with a heketi token made beforehand, sent round-robin over N
// keep-alive connections. The client then does no crypto and little CPU, so
// the figure is the server's, not the bench's. wrk's Lua `done` hook prints
// the counts and latency percentiles as one JSON line.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Stats } from './stats.ts'

export const WRK_MISSING = `wrk was not found on PATH (or at --wrk). The read phases of npm run bench use it:
  Debian/Ubuntu: apt-get install -y wrk      (root)
  elsewhere:     https://github.com/wg/wrk, then put it on PATH or pass --wrk /path/to/wrk
or run the reads through the bench's own Node.js client with --reader node
(its figures are the client's limit, not the server's: see docs/benchmarks.md).`

/** wrk's version line, or undefined when the binary cannot be run. */
export function wrkVersion(bin: string): string | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  if (r.error) return undefined
  // wrk prints its version and usage, and exits 1
  const line = `${r.stdout}${r.stderr}`.split('\n').find((l) => l.startsWith('wrk '))
  return line?.split(' [')[0]?.trim() ?? 'wrk (version unknown)'
}

// One request string per line of the request file, formatted once per
// thread; each thread starts at its own offset so the threads do not read
// the same volume at the same moment.
const SCRIPT = `
local reqs = {}
local n = 0
local i = 0
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
init = function(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local path, token = line:match("^([^\\t]+)\\t(.+)$")
    if path then
      n = n + 1
      reqs[n] = wrk.format("GET", path, { ["Authorization"] = "bearer " .. token })
    end
  end
  f:close()
  i = (id * 7919) % n
end
request = function()
  i = i % n + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n@@wrk {"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`

export interface WrkResult extends Stats {
  /** non-2xx/3xx answers, socket errors and timeouts together */
  errors: number
  bytes: number
  raw: string
}

export interface WrkRun {
  bin: string
  port: number
  connections: number
  threads: number
  seconds: number
  /** [path, token] pairs; wrk cycles through them */
  requests: [string, string][]
}

export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-wrk-'))
  try {
    const script = join(dir, 'reads.lua')
    const list = join(dir, 'requests.tsv')
    writeFileSync(script, SCRIPT)
    writeFileSync(list, `${run.requests.map(([p, t]) => `${p}\t${t}`).join('\n')}\n`)
    const args = [
      '-t',
      String(run.threads),
      '-c',
      String(run.connections),
      '-d',
      `${run.seconds}s`,
      '--timeout',
      '5s',
      '-s',
      script,
      `http://127.0.0.1:${run.port}`,
      '--',
      list,
    ]
    const out = await new Promise<string>((res, rej) => {
      const child = spawn(run.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let text = ''
      child.stdout.on('data', (c: Buffer) => {
        text += c.toString('utf8')
      })
      child.stderr.on('data', (c: Buffer) => {
        text += c.toString('utf8')
      })
      child.on('error', rej)
      child.on('close', (code, signal) =>
        code === 0 ? res(text) : rej(new Error(`wrk exited with ${signal ?? code}:\n${text}`)),
      )
    })
    const line = out.split('\n').find((l) => l.startsWith('@@wrk '))
    if (!line) throw new Error(`wrk printed no summary:\n${out}`)
    const j = JSON.parse(line.slice('@@wrk '.length)) as Record<string, number>
    const seconds = j['durationUs']! / 1e6
    const count = j['requests']!
    return {
      count,
      seconds,
      perSec: count / seconds,
      p50: j['p50Us']! / 1000,
      p99: j['p99Us']! / 1000,
      max: j['maxUs']! / 1000,
      errors: j['connect']! + j['read']! + j['write']! + j['status']! + j['timeout']!,
      bytes: j['bytes']!,
      raw: out.replace(/\n@@wrk .*\n?/, '\n').trim(),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
