// A real etcd for a test: Debian's `etcd-server` binary on free loopback
// ports with temporary data dirs, ended by PID in teardown. One member
// (startEtcd) or an N-member cluster (startEtcdCluster), plain or TLS
// (makeEtcdCerts + `tls`), optionally with user auth enabled (`rootPassword`).
//
//   if (!requireEtcd(t)) return
//   const etcd = await startEtcd(t)
//   const store = await EtcdStore.open({ hosts: [etcd.endpoint], prefix: 'x' })
//
//   const cluster = await startEtcdCluster(t, { members: 3 })
//   const db = `etcd://${cluster.hostList}/heqet`   // h1:p1,h2:p2,h3:p3
//   await cluster.members[0]!.kill()               // SIGKILL by PID
//   await cluster.members[0]!.start()              // same name, ports and data
//
// Without the binary the test is skipped — or fails under HEQET_E2E_REQUIRED=1
// (.ci/run), so CI cannot pass without running it (.ci/e2e-deps.sh installs it).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort } from './free-port.ts'
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

/** PEM files for a TLS etcd: one CA, a server cert for 127.0.0.1/localhost, a client cert. */
export interface EtcdCerts {
  dir: string
  cacert: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
}

export interface EtcdOptions {
  /** etcd's --max-txn-ops (default: etcd's own, 128) */
  maxTxnOps?: number
  /** serve clients (and peers) over TLS with these certs; clients must present a cert */
  tls?: EtcdCerts
  /**
   * enable etcd user auth: a `root` user with this password is created and
   * `auth enable` run before the test sees the cluster
   */
  rootPassword?: string
}

export interface TestEtcdMember {
  name: string
  /** http(s)://127.0.0.1:port */
  endpoint: string
  /** 127.0.0.1:port, as written in a db URL */
  hostPort: string
  /** PID of the running process (changes after start()) */
  pid: number
  running(): boolean
  /** SIGKILL by PID; resolves when the process is gone */
  kill(): Promise<void>
  /** start again after kill()/stop() with the same name, ports and data dir */
  start(): Promise<void>
  /** SIGTERM by PID; resolves when the process is gone */
  stop(): Promise<void>
}

/** a single member: the member itself plus its (only) endpoint */
export interface TestEtcd extends TestEtcdMember {}

export interface TestEtcdCluster {
  members: TestEtcdMember[]
  /** every member's client URL */
  endpoints: string[]
  /** `127.0.0.1:p1,127.0.0.1:p2,…`: the host list of a db URL */
  hostList: string
  /** end every member (SIGKILL by PID) and remove the data dirs (also run in teardown) */
  stop(): Promise<void>
}

export { freePort }

/** Make a CA and server + client certs with openssl in a fresh temp dir (removed in teardown). */
export function makeEtcdCerts(t: Test): EtcdCerts {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-etcd-certs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const f = (name: string) => join(dir, name)
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=heqet-test-ca',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  ])
  const issue = (name: string, cn: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext)
    openssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
    ])
    openssl([
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.pem`),
    ])
  }
  issue(
    'server',
    'heqet-test-etcd',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  )
  issue('client', 'heqet-test-client', 'extendedKeyUsage=clientAuth\n')
  return {
    dir,
    cacert: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  }
}

/** One member listening on 127.0.0.1. */
export async function startEtcd(t: Test, opts: EtcdOptions = {}): Promise<TestEtcd> {
  const cluster = await startEtcdCluster(t, { ...opts, members: 1 })
  return cluster.members[0]!
}

/** An N-member cluster on loopback (all members started at once, healthy when this resolves). */
export async function startEtcdCluster(
  t: Test,
  opts: EtcdOptions & { members: number },
): Promise<TestEtcdCluster> {
  const bin = etcdBinary()
  if (!bin) throw new Error('etcd binary not found')
  if (opts.members < 1 || opts.members > 7) throw new Error('etcd cluster: 1..7 members')
  const root = mkdtempSync(join(tmpdir(), 'heqet-etcd-'))
  const scheme = opts.tls ? 'https' : 'http'
  const token = `heqet-test-${randomBytes(4).toString('hex')}`
  const specs: { name: string; client: number; peer: number }[] = []
  for (let i = 0; i < opts.members; i++) {
    specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort() })
  }
  const initialCluster = specs.map((s) => `${s.name}=${scheme}://127.0.0.1:${s.peer}`).join(',')
  const members = specs.map((s) => makeMember(bin, root, s, initialCluster, token, opts))
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    // SIGKILL: the data dirs are thrown away, and a graceful stop of a
    // cluster member waits seconds for leadership transfer to peers also stopping
    await Promise.all(members.map((m) => m.kill()))
    rmSync(root, { recursive: true, force: true })
  }
  t.teardown(stop)
  try {
    await Promise.all(members.map((m) => m.start()))
    if (opts.rootPassword !== undefined) await enableAuth(members[0]!.endpoint, opts)
  } catch (err) {
    await stop()
    throw err
  }
  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    hostList: members.map((m) => m.hostPort).join(','),
    stop,
  }
}

function makeMember(
  bin: string,
  root: string,
  spec: { name: string; client: number; peer: number },
  initialCluster: string,
  token: string,
  opts: EtcdOptions,
): TestEtcdMember {
  const scheme = opts.tls ? 'https' : 'http'
  const endpoint = `${scheme}://127.0.0.1:${spec.client}`
  const args = [
    '--name',
    spec.name,
    '--data-dir',
    join(root, spec.name),
    '--listen-client-urls',
    endpoint,
    '--advertise-client-urls',
    endpoint,
    '--listen-peer-urls',
    `${scheme}://127.0.0.1:${spec.peer}`,
    '--initial-advertise-peer-urls',
    `${scheme}://127.0.0.1:${spec.peer}`,
    '--initial-cluster',
    initialCluster,
    '--initial-cluster-token',
    token,
    '--initial-cluster-state',
    'new',
    '--log-level',
    'error',
  ]
  if (opts.maxTxnOps !== undefined) args.push('--max-txn-ops', String(opts.maxTxnOps))
  if (opts.tls) {
    const c = opts.tls
    args.push('--cert-file', c.serverCert, '--key-file', c.serverKey, '--trusted-ca-file', c.cacert)
    args.push('--client-cert-auth')
    args.push('--peer-cert-file', c.serverCert, '--peer-key-file', c.serverKey)
    args.push('--peer-trusted-ca-file', c.cacert, '--peer-client-cert-auth')
  }
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let stderr = ''
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null
  const end = async (signal: NodeJS.Signals) => {
    if (running()) process.kill(child!.pid!, signal)
    await exited
  }
  const member: TestEtcdMember = {
    name: spec.name,
    endpoint,
    hostPort: `127.0.0.1:${spec.client}`,
    pid: 0,
    running,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    async start() {
      if (running()) return
      stderr = ''
      const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
      child = proc
      proc.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000)
      })
      exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
      member.pid = proc.pid!
      // healthy when /health answers (the member sees a leader); bounded: 300 x 50 ms = 15 s
      for (let i = 0; ; i++) {
        if (!running()) throw new Error(`etcd ${spec.name} exited (${proc.exitCode}): ${stderr}`)
        if (await healthy(endpoint, opts.tls)) return
        if (i >= 300) {
          await end('SIGTERM')
          throw new Error(`etcd ${spec.name} did not become healthy in 15 s: ${stderr}`)
        }
        await new Promise((r) => setTimeout(r, 50))
      }
    },
  }
  return member
}

async function healthy(endpoint: string, tls: EtcdCerts | undefined): Promise<boolean> {
  if (!tls) {
    try {
      const res = await fetch(`${endpoint}/health`)
      return res.ok && ((await res.json()) as { health?: string }).health === 'true'
    } catch {
      return false // not listening yet: the caller's loop is bounded
    }
  }
  return new Promise((resolve) => {
    const req = httpsRequest(
      `${endpoint}/health`,
      {
        ca: readFileSync(tls.cacert),
        cert: readFileSync(tls.clientCert),
        key: readFileSync(tls.clientKey),
        timeout: 2000,
      },
      (res) => {
        let body = ''
        res.on('data', (d: Buffer) => {
          body += d.toString()
        })
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')))
      },
    )
    req.on('error', () => resolve(false)) // not listening yet: the caller's loop is bounded
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

/** `etcdctl user add root; auth enable` through the v3 API (etcd3's auth client). */
async function enableAuth(endpoint: string, opts: EtcdOptions): Promise<void> {
  const { Etcd3 } = (await import('etcd3')) as typeof import('etcd3')
  const tls = opts.tls
  const client = new Etcd3({
    hosts: [endpoint],
    credentials: tls
      ? {
          rootCertificate: readFileSync(tls.cacert),
          certChain: readFileSync(tls.clientCert),
          privateKey: readFileSync(tls.clientKey),
        }
      : undefined,
  })
  try {
    // granting `root` needs no role entry: etcd treats the root role as built in
    await client.user('root').create(opts.rootPassword!)
    await client.user('root').addRole('root')
    await client.auth.authEnable()
  } finally {
    client.close()
  }
}
