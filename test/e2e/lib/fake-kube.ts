// A small fake Kubernetes API server that speaks just enough of the real
// protocol for KubeRunner: bearer-token auth, pod list (label selectors),
// pod get, and `pods/{name}/exec` over WebSocket with the v4.channel.k8s.io
// framing (one leading channel byte per binary frame: 1 stdout, 2 stderr,
// 3 status JSON). What runs "inside" a pod is up to the test: a local spawn
// for unit tests, nsenter into a testbed node for the e2e suite.

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

export interface FakeKubeOptions {
  pods: FakePod[]
  /** bearer token every request must carry (default: random) */
  token?: string
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

export class FakeKube {
  readonly token: string
  readonly namespace: string
  /** mutable: tests add, remove or rename pods while the server runs */
  pods: FakePod[]
  /** every authenticated request as `METHOD /path?query` */
  readonly requests: string[] = []
  readonly execs: ExecRecord[] = []
  private readonly server: Server
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has(EXEC_PROTOCOL) ? EXEC_PROTOCOL : false),
  })
  private port = 0

  constructor(opts: FakeKubeOptions) {
    this.token = opts.token ?? randomBytes(16).toString('hex')
    this.namespace = opts.namespace ?? 'default'
    this.pods = opts.pods
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

  private authorized(req: IncomingMessage): boolean {
    return req.headers.authorization === `Bearer ${this.token}`
  }

  private findPod(namespace: string, name: string): FakePod | undefined {
    return this.pods.find((p) => p.name === name && (p.namespace ?? this.namespace) === namespace)
  }

  private handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const { code, body } = this.answer(req)
    res.writeHead(code, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  private answer(req: IncomingMessage): Reply {
    const url = new URL(req.url ?? '/', 'http://fake')
    if (!this.authorized(req)) return refusal(401, 'Unauthorized', 'Unauthorized')
    this.requests.push(`${req.method} ${url.pathname}${url.search}`)
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

function refusal(code: number, reason: string, message: string): Reply {
  return {
    code,
    body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code },
  }
}

function refuseUpgrade(socket: Duplex, { code, body }: Reply): void {
  const json = JSON.stringify(body)
  socket.end(
    `HTTP/1.1 ${code} ${STATUS_CODES[code]}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
  )
}
