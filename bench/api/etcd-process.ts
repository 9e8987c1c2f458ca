// A one-member etcd for `npm run bench -- --store etcd`: Debian's etcd-server
// binary on free loopback ports, its data in the bench's temp dir (fsync on,
// etcd's defaults otherwise), stopped by PID. `--etcd host:port,...` uses an
// etcd you run instead.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { log } from './log.ts'
import { freePort } from './server-process.ts'

export const ETCD_BINARIES = ['/usr/bin/etcd', '/usr/local/bin/etcd']

export function etcdBinary(): string | undefined {
  return ETCD_BINARIES.find((p) => existsSync(p))
}

export interface BenchEtcd {
  /** host:port,... for a db URL */
  hosts: string
  /** the version line of the binary, or "external" */
  version: string
  stop(): Promise<void>
}

export async function startBenchEtcd(keep: boolean): Promise<BenchEtcd> {
  const bin = etcdBinary()
  if (!bin) throw new Error('etcd not installed (apt-get install etcd-server), or give --etcd host:port')
  const dir = mkdtempSync(join(tmpdir(), 'heqet-bench-etcd-'))
  const client = await freePort()
  const peer = await freePort()
  const child: ChildProcess = spawn(
    bin,
    [
      '--name=bench',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=http://127.0.0.1:${client}`,
      `--advertise-client-urls=http://127.0.0.1:${client}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=bench=http://127.0.0.1:${peer}`,
      '--log-level=error',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  let exited = false
  const gone = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true
      r()
    }),
  )
  const stop = async () => {
    if (!exited && child.pid) process.kill(child.pid, 'SIGTERM')
    await gone
    if (keep) log(`kept ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 20_000
  for (;;) {
    if (exited) throw new Error('etcd exited during start-up')
    try {
      const res = await fetch(`http://127.0.0.1:${client}/health`)
      if (res.ok) break
    } catch {
      // not listening yet (bounded by the deadline)
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error('etcd did not become healthy within 20 s')
    }
    await sleep(50)
  }
  const res = await fetch(`http://127.0.0.1:${client}/version`)
  const version = ((await res.json()) as { etcdserver?: string }).etcdserver ?? '?'
  log(`etcd ${version} (pid ${child.pid}) on 127.0.0.1:${client}, data in ${dir}`)
  return { hosts: `127.0.0.1:${client}`, version: `etcd ${version}, 1 member, loopback`, stop }
}
