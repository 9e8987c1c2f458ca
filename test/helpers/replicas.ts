// heqet replicas on one real etcd for the HA tests: in-process apps listening
// on free loopback ports, real `heqet` processes (killed by PID), an HTTP
// client that signs tokens as heketi's clients do, and heketi's Go client's
// queue polling (until 303/204/other, bounded).
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { signToken } from '../../api/auth.ts'
import type { Executor } from '../../executors/executor.ts'
import type { Config } from '../../src/config.ts'
import { ADMIN_KEY, makeApp, type TestApp, USER_KEY } from './app.ts'
import { freePort } from './etcd.ts'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))

export { freePort }

export interface Answer {
  status: number
  body: string
  headers: Headers
}

/** One request to a replica, signed as admin with a qsh over METHOD&path. */
export async function call(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `bearer ${signToken('admin', ADMIN_KEY, method, path.split('?')[0]!)}` },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    redirect: 'manual',
  })
  return { status: res.status, body: await res.text(), headers: res.headers }
}

/** heketi's Go client: poll the queue until it is no longer pending (bounded). */
export async function pollQueue(
  base: string | (() => string),
  location: string,
  opts: { maxPolls?: number; delayMs?: number } = {},
): Promise<Answer & { polls: number }> {
  const max = opts.maxPolls ?? 1500
  for (let polls = 1; polls <= max; polls++) {
    const res = await call(typeof base === 'string' ? base : base(), 'GET', location)
    if (res.status !== 200 || res.headers.get('x-pending') !== 'true') return { ...res, polls }
    await new Promise((r) => setTimeout(r, opts.delayMs ?? 20))
  }
  throw new Error(`${location} still pending after ${max} polls`)
}

/** Wait (bounded) until `check` holds; returns how long it took (ms). */
/**
 * A file+block cluster of three nodes (zones 1..3), one /dev/sdb each, added through a
 * replica's API; `host` names the nodes (`<host>0.example.com`) and `subnet` their storage
 * addresses (`<subnet>.1`…), so tests sharing a mock do not collide.
 */
export async function addTopology(base: string, host: string, subnet: string): Promise<string> {
  const cluster = await call(base, 'POST', '/clusters', { file: true, block: true })
  if (cluster.status !== 201) throw new Error(`cluster: ${cluster.status} ${cluster.body}`)
  const clusterId = JSON.parse(cluster.body).id as string
  for (let i = 0; i < 3; i++) {
    const node = await call(base, 'POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [`${host}${i}.example.com`], storage: [`${subnet}.${i + 1}`] },
      cluster: clusterId,
    })
    if (node.status !== 202) throw new Error(`node: ${node.status} ${node.body}`)
    const added = await pollQueue(base, node.headers.get('location')!)
    if (added.status !== 303) throw new Error(`node: ${added.status} ${added.body}`)
    const nodeId = added.headers.get('location')!.split('/').pop()!
    const dev = await call(base, 'POST', '/devices', { name: '/dev/sdb', node: nodeId })
    const devDone = await pollQueue(base, dev.headers.get('location')!)
    if (devDone.status !== 204) throw new Error(`device: ${devDone.status} ${devDone.body}`)
  }
  return clusterId
}

export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 20_000,
): Promise<number> {
  const start = Date.now()
  for (;;) {
    if (await check()) return Date.now() - start
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

export interface InProcessReplica {
  app: TestApp
  url: string
  name: string
}

/** An in-process replica listening on a free loopback port (closed at teardown). */
export async function startReplica(
  t: Test,
  opts: {
    endpoint: string
    prefix: string
    name: string
    ttlSec?: number
    executor?: Executor
    config?: Partial<Config>
  },
): Promise<InProcessReplica> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const app = await makeApp(t, {
    executor: opts.executor,
    config: {
      dbPath: `etcd://${opts.endpoint}/${opts.prefix}`,
      port,
      haAdvertiseUrl: url,
      haReplicaId: opts.name,
      haLeaseTtlSec: opts.ttlSec ?? 2,
      ...opts.config,
    },
  })
  await app.app.listen({ port, host: '127.0.0.1' })
  return { app, url, name: opts.name }
}

export interface ProcessReplica {
  child: ChildProcess
  url: string
  name: string
  exited: Promise<void>
  output(): string
}

/** A real `heqet` process on etcd with the (optionally fault-injecting) mock executor. */
export function spawnReplica(
  t: Test,
  opts: {
    endpoint: string
    prefix: string
    name: string
    port: number
    ttlSec: number
    injection?: { pattern: string; action: 'hang' | 'fail' }[]
    /** more glusterfs.ha keys (e.g. the Kubernetes Lease election's) */
    ha?: Record<string, unknown>
  },
): ProcessReplica {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-replica-'))
  const url = `http://127.0.0.1:${opts.port}`
  const config = {
    port: String(opts.port),
    jwt: { admin: { key: ADMIN_KEY }, user: { key: USER_KEY } },
    glusterfs: {
      executor: opts.injection ? 'inject/mock' : 'mock',
      db: `etcd://${opts.endpoint}/${opts.prefix}`,
      loglevel: 'warning',
      start_time_background_cleaner: 1,
      refresh_time_background_cleaner: 30,
      ha: { advertise_url: url, replica_id: opts.name, lease_ttl_sec: opts.ttlSec, ...opts.ha },
      ...(opts.injection ? { injectexec: { command_injection: opts.injection } } : {}),
    },
  }
  const file = join(dir, 'heketi.json')
  writeFileSync(file, JSON.stringify(config))
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('HEKETI_') && !k.startsWith('HEQET_')) env[k] = v
  const child = spawn(process.execPath, [join(ROOT, 'bin/heqet.js'), `--config=${file}`], {
    cwd: ROOT,
    env: { ...env, HEKETI_DISABLE_HEALTH_MONITOR: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-20_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })
  return { child, url, name: opts.name, exited, output: () => out }
}

/** GET /internal/leader of a replica, or undefined while it does not answer. */
export async function leaderView(
  url: string,
): Promise<{ id: string; leader: boolean; ready: boolean; leader_id?: string } | undefined> {
  try {
    const res = await call(url, 'GET', '/internal/leader')
    return res.status === 200 ? JSON.parse(res.body) : undefined
  } catch {
    return undefined // not listening (yet, or any more)
  }
}

/** Revoke an etcd lease through etcd's HTTP gateway (what an expired or partitioned lease looks like). */
export async function revokeLease(endpoint: string, electionKey: string): Promise<void> {
  const id = BigInt(`0x${electionKey.split('/').pop()}`).toString()
  const res = await fetch(`${endpoint}/v3/lease/revoke`, { method: 'POST', body: JSON.stringify({ ID: id }) })
  if (!res.ok) throw new Error(`lease revoke: ${res.status} ${await res.text()}`)
}
