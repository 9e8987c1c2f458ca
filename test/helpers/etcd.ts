// A real, single-member etcd for a test: Debian's `etcd-server` binary on two
// free loopback ports with a temporary data dir, ended by PID in teardown.
//
//   if (!requireEtcd(t)) return
//   const etcd = await startEtcd(t)
//   const store = await EtcdStore.open({ hosts: [etcd.endpoint], prefix: 'x' })
//
// Without the binary the test is skipped — or fails under HEQET_E2E_REQUIRED=1
// (.ci/run), so CI cannot pass without running it (.ci/e2e-deps.sh installs it).
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { requirePrerequisite } from './prerequisite.ts'

const CANDIDATES = ['/usr/bin/etcd', '/usr/local/bin/etcd']

export function etcdBinary(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p))
}

export function requireEtcd(t: Test): boolean {
  return requirePrerequisite(
    t,
    etcdBinary() ? undefined : 'etcd not installed (apt-get install etcd-server; .ci/e2e-deps.sh)',
  )
}

export interface TestEtcd {
  /** http://127.0.0.1:port */
  endpoint: string
  /** host:port, as written in a db URL */
  hostPort: string
  pid: number
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

export async function startEtcd(t: Test, opts: { maxTxnOps?: number } = {}): Promise<TestEtcd> {
  const bin = etcdBinary()
  if (!bin) throw new Error('etcd binary not found')
  const dir = mkdtempSync(join(tmpdir(), 'heqet-etcd-'))
  const client = await freePort()
  const peer = await freePort()
  const args = [
    '--name',
    'heqet-test',
    '--data-dir',
    join(dir, 'data'),
    '--listen-client-urls',
    `http://127.0.0.1:${client}`,
    '--advertise-client-urls',
    `http://127.0.0.1:${client}`,
    '--listen-peer-urls',
    `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls',
    `http://127.0.0.1:${peer}`,
    '--initial-cluster',
    `heqet-test=http://127.0.0.1:${peer}`,
    '--log-level',
    'error',
  ]
  if (opts.maxTxnOps !== undefined) args.push('--max-txn-ops', String(opts.maxTxnOps))
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const pid = child.pid!
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  t.teardown(stop)
  const endpoint = `http://127.0.0.1:${client}`
  // ready when /health answers (bounded: 200 tries x 50 ms = 10 s)
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`etcd exited (${child.exitCode}): ${stderr}`)
    try {
      const res = await fetch(`${endpoint}/health`)
      if (res.ok) break
    } catch {
      // not listening yet: the loop is bounded and throws below
    }
    if (i >= 200) {
      await stop()
      throw new Error(`etcd did not become healthy in 10 s: ${stderr}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { endpoint, hostPort: `127.0.0.1:${client}`, pid, stop }
}
