// A small fake Kubernetes API server that speaks just enough of the real
// protocol for KubeRunner: bearer-token auth, pod list (label selectors),
// pod get, and `pods/{name}/exec` over WebSocket with the v4.channel.k8s.io
// framing (one leading channel byte per binary frame: 1 stdout, 2 stderr,
// 3 status JSON). What runs "inside" a pod is up to the test: a local spawn
// for unit tests, nsenter into a testbed node for the e2e suite.
//
// And for the Kubernetes Lease leader election (db/kube-lease-election.ts):
// coordination.k8s.io/v1 Leases — GET, POST (201; 409 AlreadyExists), PUT
// (optimistic concurrency: a resourceVersion other than the stored one is a
// 409 Conflict; 422 without one; 404 when missing), with the API server's
// Status bodies and its MicroTime format check. `fault` lets a test answer
// any request with an error, hang it, or drop the connection, per token (each
// replica can carry its own token, so one of them can be cut off).

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { type WebSocket, WebSocketServer } from 'ws'

export interface ExecResult {
  code: number
  stdout: string | Buffer
  stderr: string | Buffer
}

export interface ExecContext {
  pod: string
  container: string
  /** aborted when the client goes away (e.g. its timeout), so the process can be killed */
  signal: AbortSignal
}

export type ExecHandler = (argv: string[], ctx: ExecContext) => Promise<ExecResult>

export interface FakePod {
  name: string
  /** default: the FakeKube's namespace */
  namespace?: string
  nodeName?: string
  labels?: Record<string, string>
  /** container names, the first is heketi's target (default ['glusterfs']) */
  containers?: string[]
  exec: ExecHandler
}

/** What a faulty API server does with a request: answer this status, never answer, or drop the connection. */
export type Fault = { status: number; reason?: string; message?: string } | 'hang' | 'drop'

export interface FaultContext {
  method: string
  path: string
  token: string
}

/** A stored Lease, as the API server returns it. */
export interface LeaseObject {
  apiVersion: 'coordination.k8s.io/v1'
  kind: 'Lease'
  metadata: Record<string, unknown> & {
    name: string
    namespace: string
    resourceVersion: string
    uid: string
  }
  spec: Record<string, unknown>
}

export interface FakeKubeOptions {
  pods?: FakePod[]
  /** bearer token every request must carry (default: random) */
  token?: string
  /** more accepted tokens (e.g. one per replica) */
  tokens?: string[]
  /** default namespace of pods and of the written kubeconfig (default 'default') */
  namespace?: string
}

export interface ExecRecord {
  namespace: string
  pod: string
  container: string
  argv: string[]
}

interface Reply {
  code: number
  body: object
}

interface ExecPlan {
  pod: FakePod
  record: ExecRecord
  stdout: boolean
  stderr: boolean
}

const EXEC_PROTOCOL = 'v4.channel.k8s.io'
const STDOUT = 1
const STDERR = 2
const STATUS = 3
/** the real server streams output in pieces; so does the fake, so clients must reassemble */
const FRAME_BYTES = 16 * 1024

const PODS_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+)(?:\/(exec))?)?$/
const LEASES_PATH = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/
/** metav1.MicroTime on the wire: RFC 3339 with six fractional digits */
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/

export class FakeKube {
  readonly token: string
  readonly namespace: string
  /** mutable: tests add, remove or rename pods while the server runs */
  pods: FakePod[]
  /** every authenticated request as `METHOD /path?query` */
  readonly requests: string[] = []
  readonly execs: ExecRecord[] = []
  /** Leases by `namespace/name` (tests may read them; change them with editLease) */
  readonly leases = new Map<string, LeaseObject>()
  /** decides per request whether the server misbehaves (after authentication) */
  fault: ((req: FaultContext) => Fault | undefined) | undefined
  private readonly tokens: Set<string>
  private resourceVersion = 1000
  private readonly server: Server
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has(EXEC_PROTOCOL) ? EXEC_PROTOCOL : false),
  })
  private port = 0

  constructor(opts: FakeKubeOptions) {
    this.token = opts.token ?? randomBytes(16).toString('hex')
    this.tokens = new Set([this.token, ...(opts.tokens ?? [])])
    this.namespace = opts.namespace ?? 'default'
    this.pods = opts.pods ?? []
    // exec puts the whole command into the URL; Go's servers accept 1 MiB of
    // request head where Node's default stops at 16 KiB
    this.server = createServer({ maxHeaderSize: 1 << 20 }, (req, res) => this.handleRequest(req, res))
    this.server.on('upgrade', (req, socket, head) => this.handleUpgrade(req, socket, head))
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
    return this.url
  }

  async stop(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate()
    this.wss.close()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** A kubeconfig for this server, so a client is configured exactly like for a real cluster. */
  async writeKubeconfig(file: string, opts: { token?: string; namespace?: string } = {}): Promise<string> {
    const yaml = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${this.url}`,
      // @kubernetes/client-node refuses plain http unless TLS checks are off
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: fake',
      '  user:',
      `    token: ${opts.token ?? this.token}`,
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: fake',
      `    namespace: ${opts.namespace ?? this.namespace}`,
      'current-context: fake',
      '',
    ].join('\n')
    await writeFile(file, yaml)
    return file
  }

  /** Change a stored Lease as another client would (a new resourceVersion). */
  editLease(namespace: string, name: string, edit: (spec: Record<string, unknown>) => void): LeaseObject {
    const lease = this.leases.get(`${namespace}/${name}`)
    if (!lease) throw new Error(`no Lease ${namespace}/${name}`)
    edit(lease.spec)
    lease.metadata.resourceVersion = String(++this.resourceVersion)
    return lease
  }

  private authorized(req: IncomingMessage): boolean {
    const auth = req.headers.authorization ?? ''
    return auth.startsWith('Bearer ') && this.tokens.has(auth.slice('Bearer '.length))
  }

  private findPod(namespace: string, name: string): FakePod | undefined {
    return this.pods.find((p) => p.name === name && (p.namespace ?? this.namespace) === namespace)
  }

  private handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const reply = this.answer(req, Buffer.concat(chunks).toString('utf8'))
      if (reply === 'hang') return // the client's timeout (or stop()) ends it
      if (reply === 'drop') {
        req.socket.destroy()
        return
      }
      res.writeHead(reply.code, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify(reply.body))
    })
  }

  private answer(req: IncomingMessage, text: string): Reply | 'hang' | 'drop' {
    const url = new URL(req.url ?? '/', 'http://fake')
    if (!this.authorized(req)) return refusal(401, 'Unauthorized', 'Unauthorized')
    this.requests.push(`${req.method} ${url.pathname}${url.search}`)
    const token = (req.headers.authorization ?? '').slice('Bearer '.length)
    const fault = this.fault?.({ method: req.method ?? 'GET', path: url.pathname, token })
    if (fault === 'hang' || fault === 'drop') return fault
    if (fault)
      return refusal(fault.status, fault.reason ?? 'InternalError', fault.message ?? 'injected fault')
    const lease = LEASES_PATH.exec(url.pathname)
    if (lease) {
      const [, namespace, name] = lease.map((s) => (s === undefined ? s : decodeURIComponent(s)))
      return this.leaseAnswer(req.method ?? 'GET', namespace!, name, text)
    }
    const match = PODS_PATH.exec(url.pathname)
    if (!match) return refusal(404, 'NotFound', 'the server could not find the requested resource')
    const [, namespace, name, sub] = match.map((s) => (s === undefined ? s : decodeURIComponent(s)))
    if (sub === 'exec') return refusal(400, 'BadRequest', 'Upgrade request required')
    if (req.method !== 'GET') return refusal(405, 'MethodNotAllowed', 'method not allowed')
    if (name) {
      const pod = this.findPod(namespace, name)
      return pod
        ? { code: 200, body: this.podJson(pod) }
        : refusal(404, 'NotFound', `pods "${name}" not found`)
    }
    const selector = parseSelector(url.searchParams.get('labelSelector') ?? '')
    if (!selector) return refusal(400, 'BadRequest', 'unable to parse requirement')
    const items = this.pods
      .filter((p) => (p.namespace ?? this.namespace) === namespace && selector(p.labels ?? {}))
      .map((p) => this.podJson(p))
    return {
      code: 200,
      body: { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items },
    }
  }

  /** The API server's Lease handling (registry + optimistic concurrency + validation). */
  private leaseAnswer(method: string, namespace: string, name: string | undefined, text: string): Reply {
    const gr = 'leases.coordination.k8s.io'
    const notFound = (n: string) =>
      refusal(404, 'NotFound', `${gr} "${n}" not found`, {
        name: n,
        group: 'coordination.k8s.io',
        kind: 'leases',
      })
    if (method === 'GET' && name) {
      const stored = this.leases.get(`${namespace}/${name}`)
      return stored ? { code: 200, body: stored } : notFound(name)
    }
    if ((method === 'POST' && !name) || (method === 'PUT' && name)) {
      let body: Partial<LeaseObject>
      try {
        body = JSON.parse(text) as Partial<LeaseObject>
      } catch (err) {
        return refusal(
          400,
          'BadRequest',
          `couldn't get version/kind; json parse error: ${(err as Error).message}`,
        )
      }
      if (body.kind !== 'Lease' || body.apiVersion !== 'coordination.k8s.io/v1')
        return refusal(
          400,
          'BadRequest',
          `the API version in the data (${body.apiVersion}) does not match the expected API version (coordination.k8s.io/v1)`,
        )
      const meta = (body.metadata ?? {}) as Record<string, unknown>
      if (meta['namespace'] !== undefined && meta['namespace'] !== namespace)
        return refusal(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        )
      const objectName = typeof meta['name'] === 'string' ? meta['name'] : ''
      if (name && objectName !== name)
        return refusal(
          400,
          'BadRequest',
          'the name of the object (' + objectName + ') does not match the name on the URL (' + name + ')',
        )
      const invalid = invalidLeaseSpec(body.spec ?? {})
      if (!objectName)
        return refusal(
          422,
          'Invalid',
          `Lease.coordination.k8s.io "" is invalid: metadata.name: Required value: name or generateName is required`,
        )
      if (invalid)
        return refusal(422, 'Invalid', `Lease.coordination.k8s.io "${objectName}" is invalid: ${invalid}`)
      const key = `${namespace}/${objectName}`
      const stored = this.leases.get(key)
      if (method === 'POST') {
        if (stored)
          return refusal(409, 'AlreadyExists', `${gr} "${objectName}" already exists`, {
            name: objectName,
            group: 'coordination.k8s.io',
            kind: 'leases',
          })
        if (meta['resourceVersion'])
          return refusal(500, 'InternalError', 'resourceVersion should not be set on objects to be created')
        const created: LeaseObject = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {
            ...meta,
            name: objectName,
            namespace,
            uid: randomBytes(16).toString('hex'),
            resourceVersion: String(++this.resourceVersion),
            creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          },
          spec: { ...(body.spec ?? {}) },
        }
        this.leases.set(key, created)
        return { code: 201, body: created }
      }
      if (!stored) return notFound(objectName)
      if (!meta['resourceVersion'])
        return refusal(
          422,
          'Invalid',
          `Lease.coordination.k8s.io "${objectName}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`,
        )
      if (meta['resourceVersion'] !== stored.metadata.resourceVersion)
        return refusal(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${gr} "${objectName}": the object has been modified; please apply your changes to the latest version and try again`,
          { name: objectName, group: 'coordination.k8s.io', kind: 'leases' },
        )
      const updated: LeaseObject = {
        ...stored,
        metadata: {
          ...meta,
          name: objectName,
          namespace,
          uid: stored.metadata.uid,
          resourceVersion: String(++this.resourceVersion),
        },
        spec: { ...(body.spec ?? {}) },
      }
      this.leases.set(key, updated)
      return { code: 200, body: updated }
    }
    return refusal(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
  }

  private podJson(pod: FakePod) {
    return {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: {
        name: pod.name,
        namespace: pod.namespace ?? this.namespace,
        uid: `uid-${pod.name}`,
        labels: pod.labels ?? {},
      },
      spec: {
        nodeName: pod.nodeName,
        containers: (pod.containers ?? ['glusterfs']).map((name) => ({
          name,
          image: 'gluster/gluster-centos',
        })),
      },
      status: { phase: 'Running' },
    }
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const plan = this.planExec(req)
    if ('code' in plan) {
      refuseUpgrade(socket, plan)
      return
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.execs.push(plan.record)
      void this.runExec(ws, plan)
    })
  }

  /** The checks the API server makes before it upgrades an exec request. */
  private planExec(req: IncomingMessage): Reply | ExecPlan {
    const url = new URL(req.url ?? '/', 'http://fake')
    // like the API server, authenticate before looking at anything else
    if (!this.authorized(req)) return refusal(401, 'Unauthorized', 'Unauthorized')
    this.requests.push(`${req.method} ${url.pathname}${url.search}`)
    const match = PODS_PATH.exec(url.pathname)
    if (match?.[3] !== 'exec')
      return refusal(404, 'NotFound', 'the server could not find the requested resource')
    const [, namespace, name] = match.map((s) => (s === undefined ? s : decodeURIComponent(s)))
    const pod = this.findPod(namespace, name)
    if (!pod) return refusal(404, 'NotFound', `pods "${name}" not found`)
    const containers = pod.containers ?? ['glusterfs']
    const container = url.searchParams.get('container') ?? (containers.length === 1 ? containers[0] : '')
    if (!containers.includes(container)) {
      return refusal(400, 'BadRequest', `container ${container} is not valid for pod ${name}`)
    }
    const argv = url.searchParams.getAll('command')
    if (argv.length === 0) return refusal(400, 'BadRequest', 'you must specify at least 1 command')
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(/\s*,\s*/)
    if (!offered.includes(EXEC_PROTOCOL)) {
      return refusal(400, 'BadRequest', `subprotocol ${EXEC_PROTOCOL} required`)
    }
    return {
      pod,
      record: { namespace, pod: name, container, argv },
      stdout: url.searchParams.get('stdout') === 'true',
      stderr: url.searchParams.get('stderr') === 'true',
    }
  }

  private async runExec(ws: WebSocket, plan: ExecPlan): Promise<void> {
    const { pod, record } = plan
    const abort = new AbortController()
    ws.on('close', () => abort.abort())
    ws.on('error', () => abort.abort())
    let statusJson: object
    try {
      const result = await pod.exec(record.argv, {
        pod: pod.name,
        container: record.container,
        signal: abort.signal,
      })
      if (plan.stdout) sendChannel(ws, STDOUT, Buffer.from(result.stdout))
      if (plan.stderr) sendChannel(ws, STDERR, Buffer.from(result.stderr))
      statusJson =
        result.code === 0 ? { metadata: {}, status: 'Success' } : nonZeroExit(record.argv, result.code)
    } catch (err) {
      // what the kubelet reports when the command could not be run at all
      const message = (err as Error).message ?? String(err)
      statusJson = { metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 }
    }
    if (ws.readyState !== ws.OPEN) return
    ws.send(Buffer.concat([Buffer.from([STATUS]), Buffer.from(JSON.stringify(statusJson))]))
    ws.close(1000)
  }
}

/** Runs argv on this machine: the unit tests' idea of "inside the pod". */
export function spawnLocally(argv: string[], ctx?: { signal?: AbortSignal }): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], signal: ctx?.signal })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    child.on('error', (e: NodeJS.ErrnoException) => {
      // a missing binary: what a container runtime reports, exit 127 like a shell
      if (e.code === 'ENOENT') resolve({ code: 127, stdout: '', stderr: `exec: "${argv[0]}": not found\n` })
    })
    child.on('close', (code, signal) => {
      const signalled = signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : 1
      resolve({ code: code ?? signalled, stdout: Buffer.concat(out), stderr: Buffer.concat(err) })
    })
  })
}

/** `key`, `key=value`, `key==value`, comma-separated (all must hold); null when unsupported. */
function parseSelector(selector: string): ((labels: Record<string, string>) => boolean) | null {
  const tests: ((labels: Record<string, string>) => boolean)[] = []
  for (const term of selector.split(',').map((s) => s.trim())) {
    if (term === '') continue
    const eq = /^([A-Za-z0-9._/-]+)\s*==?\s*([A-Za-z0-9._-]*)$/.exec(term)
    if (eq) {
      const [, key, value] = eq
      tests.push((labels) => labels[key] === value)
    } else if (/^[A-Za-z0-9._/-]+$/.test(term)) {
      tests.push((labels) => Object.hasOwn(labels, term))
    } else {
      return null
    }
  }
  return (labels) => tests.every((test) => test(labels))
}

function nonZeroExit(argv: string[], code: number): object {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${argv.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  }
}

function sendChannel(ws: WebSocket, channel: number, data: Buffer): void {
  for (let at = 0; at < data.length; at += FRAME_BYTES) {
    ws.send(Buffer.concat([Buffer.from([channel]), data.subarray(at, at + FRAME_BYTES)]))
  }
}

function refusal(code: number, reason: string, message: string, details?: object): Reply {
  return {
    code,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      ...(details ? { details } : {}),
      code,
    },
  }
}

/** The API server's Lease spec checks (decoding + validation), or undefined when valid. */
function invalidLeaseSpec(spec: Record<string, unknown>): string | undefined {
  for (const field of ['acquireTime', 'renewTime']) {
    const v = spec[field]
    if (v !== undefined && v !== null && (typeof v !== 'string' || !MICRO_TIME.test(v)))
      return `spec.${field}: ${JSON.stringify(v)} is not a MicroTime (RFC 3339 with 6 fractional digits)`
  }
  // ValidateLeaseSpec: a duration must be positive, the transitions not negative
  for (const [field, min, words] of [
    ['leaseDurationSeconds', 1, 'must be greater than 0'],
    ['leaseTransitions', 0, 'must be greater than or equal to 0'],
  ] as const) {
    const v = spec[field]
    if (v !== undefined && v !== null && !(Number.isInteger(v) && (v as number) >= min))
      return `spec.${field}: Invalid value: ${JSON.stringify(v)}: ${words}`
  }
  if (
    spec['holderIdentity'] !== undefined &&
    spec['holderIdentity'] !== null &&
    typeof spec['holderIdentity'] !== 'string'
  )
    return 'spec.holderIdentity: must be a string'
  return undefined
}

function refuseUpgrade(socket: Duplex, { code, body }: Reply): void {
  const json = JSON.stringify(body)
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code]}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
  )
}
