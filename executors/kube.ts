// Runs batches of command strings inside GlusterFS pods through the
// Kubernetes `pods/exec` subresource, the way heketi's kubeexec does
// (node commands spec §1.3). Beyond heketi, heqet can also run outside the
// cluster from a kubeconfig file.

import { existsSync, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { Writable } from 'node:stream'
import { CoreV1Api, Exec, KubeConfig, type V1Pod, type V1Status } from '@kubernetes/client-node'
import { HostQueue } from './host-queue.ts'
import type { BatchOptions, CommandResult, CommandRunner } from './runner.ts'

const GLUSTER_LABEL_KEY = 'glusterfs-node'
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'
const DEFAULT_MAX_CONNECTIONS = 64
/** exit status of coreutils `timeout` when it had to kill the command */
const TIMEOUT_EXIT_CODE = 124
const MINUTE_MS = 60_000

/** `glusterfs.kubeexec` after env overrides; input of KubeRunner */
export interface KubeExecConfig {
  /** undefined: service-account namespace file, else the kubeconfig context's */
  namespace?: string
  glusterDaemonset: boolean
  usePodNames: boolean
  /** concurrent exec streams; negative = unlimited */
  maxConnections: number
  disableTimeoutPrefix: boolean
  /** heqet only: kubeconfig file to use instead of the in-cluster service account */
  kubeconfig?: string
}

/** Process surroundings, injectable so tests need neither a pod nor patience. */
export interface KubeRunnerRuntime {
  /** KUBECONFIG, KUBERNETES_SERVICE_HOST/PORT are read from here (default process.env) */
  env?: NodeJS.ProcessEnv
  serviceAccountDir?: string
  /** how long a pod lookup per host is reused (default 30 s, 0 = never) */
  podCacheMs?: number
  /** the client gives up this long after the remote `timeout` should have fired (heketi: 1 min) */
  clientGraceMs?: number
}

/**
 * Reads heketi's `glusterfs.kubeexec` object plus the HEKETI_KUBE_* overrides.
 * Legacy keys (host, cert, insecure, user, password) are ignored like heketi does.
 */
export function kubeConfigFromHeketi(
  kubeexec: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
): KubeExecConfig {
  const key = <T extends 'string' | 'boolean' | 'number'>(name: string, type: T) => {
    const v = kubeexec[name]
    if (v === undefined || v === null) return undefined
    // like Go's JSON decoder, a value of the wrong type is a configuration error
    if (typeof v !== type) throw new Error(`kubeexec.${name} must be a ${type}`)
    return v as T extends 'string' ? string : T extends 'boolean' ? boolean : number
  }
  // an absent (zero) value means the default, as with heketi's numeric keys
  const maxConnections = key('max_connections', 'number') || DEFAULT_MAX_CONNECTIONS
  const config: KubeExecConfig = {
    namespace: env.HEKETI_KUBE_NAMESPACE || key('namespace', 'string') || undefined,
    glusterDaemonset: heketiEnvBool(env.HEKETI_KUBE_GLUSTER_DAEMONSET, key('gluster_daemonset', 'boolean')),
    usePodNames: heketiEnvBool(env.HEKETI_KUBE_USE_POD_NAMES, key('use_pod_names', 'boolean')),
    maxConnections: Math.trunc(maxConnections),
    disableTimeoutPrefix: key('disable_timeout_prefix', 'boolean') ?? false,
  }
  const kubeconfig = key('kubeconfig', 'string')
  if (kubeconfig) config.kubeconfig = kubeconfig
  return config
}

/** heketi's env booleans: first character y/1 → true, n/0 → false, anything else keeps the JSON value */
function heketiEnvBool(value: string | undefined, fromJson: boolean | undefined): boolean {
  const first = value?.toLowerCase()[0]
  if (first === 'y' || first === '1') return true
  if (first === 'n' || first === '0') return false
  return fromJson ?? false
}

interface PodTarget {
  pod: string
  container: string
}

/** The exec session never started, so no command ran: safe to retry in a freshly looked-up pod. */
class SessionSetupError extends Error {}

export class KubeRunner implements CommandRunner {
  readonly namespace: string
  private readonly config: KubeExecConfig
  private readonly core: CoreV1Api
  private readonly exec: Exec
  private readonly podCacheMs: number
  private readonly clientGraceMs: number
  private readonly podCache = new Map<string, { target: PodTarget; expiresAt: number }>()
  private readonly hostQueue = new HostQueue()
  private readonly sockets = new Set<{ terminate(): void }>()
  private activeExecs = 0
  private closed = false

  /** Throws heketi's start-up errors when there is no usable configuration or namespace. */
  constructor(config: KubeExecConfig, runtime: KubeRunnerRuntime = {}) {
    const env = runtime.env ?? process.env
    const serviceAccountDir = runtime.serviceAccountDir ?? SERVICE_ACCOUNT_DIR
    const kc = loadKubeConfig(config, env, serviceAccountDir)
    this.config = config
    this.namespace = resolveNamespace(config, kc, serviceAccountDir)
    this.core = kc.makeApiClient(CoreV1Api)
    this.exec = new Exec(kc)
    this.podCacheMs = runtime.podCacheMs ?? 30_000
    this.clientGraceMs = runtime.clientGraceMs ?? MINUTE_MS
  }

  runBatch(host: string, commands: string[], opts: BatchOptions): Promise<CommandResult[]> {
    if (this.closed) return Promise.reject(new Error('kube runner is closed'))
    return this.serialized(host, () => this.runSerialized(host, commands, opts))
  }

  async close(): Promise<void> {
    this.closed = true
    for (const socket of this.sockets) socket.terminate()
    this.sockets.clear()
  }

  /** heketi's per-host 1-slot semaphore: batches on one host run one after another. */
  private serialized<T>(host: string, fn: () => Promise<T>): Promise<T> {
    return this.hostQueue.run(host, fn)
  }

  private async runSerialized(
    host: string,
    commands: string[],
    opts: BatchOptions,
  ): Promise<CommandResult[]> {
    // batches queued behind the one that was running when close() came
    if (this.closed) throw new Error('kube runner is closed')
    let { target, cached } = await this.targetFor(host)
    const results: CommandResult[] = []
    for (const command of commands) {
      let result: CommandResult
      try {
        result = await this.execOne(target, command, opts)
      } catch (err) {
        this.podCache.delete(host)
        // A cached pod may have been replaced (daemonset pods get new names on
        // restart); look it up again once, but only before anything has run.
        if (!(err instanceof SessionSetupError && cached && results.length === 0)) throw err
        target = await this.findPod(host)
        cached = false
        this.remember(host, target)
        result = await this.execOne(target, command, opts)
      }
      results.push(result)
      if (result.exitCode !== 0) break
    }
    return results
  }

  private async targetFor(host: string): Promise<{ target: PodTarget; cached: boolean }> {
    const hit = this.podCache.get(host)
    if (hit && hit.expiresAt > Date.now()) return { target: hit.target, cached: true }
    const target = await this.findPod(host)
    this.remember(host, target)
    return { target, cached: false }
  }

  private remember(host: string, target: PodTarget): void {
    if (this.podCacheMs > 0) this.podCache.set(host, { target, expiresAt: Date.now() + this.podCacheMs })
  }

  /** heketi's three rules for finding the pod that stands for `host`. */
  private async findPod(host: string): Promise<PodTarget> {
    if (this.config.usePodNames) {
      let pod: V1Pod
      try {
        pod = await this.core.readNamespacedPod({ name: host, namespace: this.namespace })
      } catch (err) {
        throw new Error(`Unable to get pod spec for ${host}: ${apiErrorText(err)}`, { cause: err })
      }
      return podTarget(pod)
    }
    if (this.config.glusterDaemonset) {
      const pods = await this.listPods(GLUSTER_LABEL_KEY)
      // heketi keeps the last match when several pods claim the node
      const pod = pods.filter((p) => p.spec?.nodeName === host).at(-1)
      if (!pod) {
        throw new Error(
          `Unable to find a GlusterFS pod on host ${host} with a label key ${GLUSTER_LABEL_KEY}`,
        )
      }
      return podTarget(pod)
    }
    const pods = await this.listPods(`${GLUSTER_LABEL_KEY}==${host}`)
    const label = `'${GLUSTER_LABEL_KEY}=${host}'`
    if (pods.length === 0) throw new Error(`No pods with the label ${label} were found`)
    if (pods.length > 1) {
      const names = pods.map((p) => p.metadata?.name).join(', ')
      throw new Error(`Found ${pods.length} pods sharing the same label ${label}: ${names}`)
    }
    return podTarget(pods[0])
  }

  private async listPods(labelSelector: string): Promise<V1Pod[]> {
    try {
      const list = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector })
      return list.items
    } catch (err) {
      // heketi only logs the cause; heqet has no logger here, so the text carries it
      throw new Error(`Failed to get list of pods: ${apiErrorText(err)}`, { cause: err })
    }
  }

  private async execOne(target: PodTarget, command: string, opts: BatchOptions): Promise<CommandResult> {
    // heketi trims spaces only (strings.Trim(command, " ")), not other whitespace
    const trimmed = command.replace(/^ +| +$/g, '')
    const shell = ['bash', '-c', trimmed]
    const argv = this.config.disableTimeoutPrefix ? shell : ['timeout', `${opts.timeoutMinutes}m`, ...shell]
    const { status, stdout, stderr } = await this.stream(target, argv, opts.timeoutMinutes)
    const exitCode = exitCodeFromStatus(status)
    if (exitCode === TIMEOUT_EXIT_CODE && !this.config.disableTimeoutPrefix) throw new Error('timeout')
    // heketi reports a failed command by its stderr, else by client-go's error
    // text; the runner contract has only stderr to carry that text.
    return {
      command,
      exitCode,
      stdout,
      stderr: exitCode !== 0 && stderr === '' ? failureText(status) : stderr,
    }
  }

  /** One exec session: resolves when the server has sent the status and closed. */
  private async stream(
    target: PodTarget,
    argv: string[],
    timeoutMinutes: number,
  ): Promise<{ status: V1Status; stdout: string; stderr: string }> {
    const max = this.config.maxConnections
    if (max >= 0 && this.activeExecs >= max) {
      throw new Error(`Too many kube exec connections active (${this.activeExecs})`)
    }
    this.activeExecs++
    const stdout = new Collector()
    const stderr = new Collector()
    let status: V1Status | undefined
    const { pod, container } = target
    const opened = this.exec
      .exec(this.namespace, pod, container, argv, stdout, stderr, null, false, (s) => {
        status = s
      })
      .catch((err: unknown) => {
        throw new SessionSetupError(`Unable to setup a session with ${pod}: ${socketErrorText(err)}`)
      })
    try {
      await deadline(
        opened.then((ws) => untilClosed(ws, this.sockets)),
        timeoutMinutes * MINUTE_MS + this.clientGraceMs,
      )
    } catch (err) {
      // on the client's own timeout, hang up so the remote side gets killed too
      opened.then(
        (ws) => ws.terminate(),
        () => {},
      )
      throw err
    } finally {
      this.activeExecs--
    }
    if (!status)
      throw new Error(`Unable to execute command on ${pod}: connection closed without an exit status`)
    return { status, stdout: stdout.text(), stderr: stderr.text() }
  }
}

type ExecSocket = Awaited<ReturnType<Exec['exec']>>

/** Resolves once the socket is closed (the exec client closes it after the status frame). */
function untilClosed(ws: ExecSocket, open: Set<{ terminate(): void }>): Promise<void> {
  open.add(ws)
  return new Promise((resolve) => {
    const done = () => {
      open.delete(ws)
      resolve()
    }
    if (ws.readyState === ws.CLOSED) done()
    else ws.once('close', done)
  })
}

function deadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), ms)
  })
  return Promise.race([work, expired]).finally(() => clearTimeout(timer))
}

/** Exit code from the v4 status channel; 1 when the status does not say (as heketi). */
function exitCodeFromStatus(status: V1Status): number {
  if (status.status === 'Success') return 0
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode')
    const code = Number.parseInt(cause?.message ?? '', 10)
    if (Number.isInteger(code)) return code
  }
  return 1
}

/** client-go's error for a failed exec, which heketi shows when stderr is empty */
function failureText(status: V1Status): string {
  if (status.reason === 'NonZeroExitCode')
    return `command terminated with exit code ${exitCodeFromStatus(status)}`
  return status.message ?? 'command failed without an exit status'
}

function podTarget(pod: V1Pod): PodTarget {
  const name = pod.metadata?.name ?? ''
  const container = pod.spec?.containers?.[0]?.name
  if (!container) throw new Error(`Unable to get pod spec for ${name}: pod has no containers`)
  return { pod: name, container }
}

/**
 * heketi runs only in-cluster; heqet prefers an explicit kubeconfig, then in-cluster, then KUBECONFIG.
 * Also used by the Kubernetes Lease election (api/kube-lease.ts).
 */
export function loadKubeConfig(
  config: Pick<KubeExecConfig, 'kubeconfig'>,
  env: NodeJS.ProcessEnv,
  serviceAccountDir: string,
): KubeConfig {
  const kc = new KubeConfig()
  try {
    if (config.kubeconfig) {
      kc.loadFromFile(config.kubeconfig)
    } else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
      loadInCluster(kc, env.KUBERNETES_SERVICE_HOST, env.KUBERNETES_SERVICE_PORT, serviceAccountDir)
    } else if (env.KUBECONFIG) {
      // KUBECONFIG is a path list; like kubectl, the first file wins on conflicts
      const [first, ...rest] = env.KUBECONFIG.split(delimiter).filter(Boolean)
      kc.loadFromFile(first)
      for (const file of rest) {
        const more = new KubeConfig()
        more.loadFromFile(file)
        kc.mergeConfig(more, true)
      }
    } else {
      // client-go's wording, which heketi wraps
      throw new Error(
        'unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined',
      )
    }
    if (!kc.getCurrentCluster()) throw new Error('no current cluster in the kubeconfig')
  } catch (err) {
    throw new Error(`Unable to create configuration for Kubernetes: ${(err as Error).message}`, {
      cause: err,
    })
  }
  return kc
}

/** KubeConfig.loadFromCluster reads process.env itself; this takes the injected env. */
function loadInCluster(kc: KubeConfig, host: string, port: string, serviceAccountDir: string): void {
  const tokenFile = join(serviceAccountDir, 'token')
  if (!existsSync(tokenFile)) throw new Error(`open ${tokenFile}: no such file or directory`)
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`
  kc.loadFromClusterAndUser(
    { name: 'inCluster', server, caFile: join(serviceAccountDir, 'ca.crt'), skipTLSVerify: false },
    // the tokenFile auth provider re-reads the file, so rotated tokens keep working
    { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile } } },
  )
}

export function resolveNamespace(
  config: Pick<KubeExecConfig, 'namespace'>,
  kc: KubeConfig,
  serviceAccountDir: string,
): string {
  if (config.namespace) return config.namespace
  // a kubeconfig's context namespace is an explicit choice for that cluster
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace
  if (contextNamespace) return contextNamespace
  const file = join(serviceAccountDir, 'namespace')
  if (!existsSync(file))
    throw new Error(`Namespace must be provided in configuration: File ${file} not found`)
  return readFileSync(file, 'utf8').trim() || 'default'
}

/** Short text for a client-node ApiException: its multi-line message also dumps headers. */
function apiErrorText(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string }
  if (typeof e?.code !== 'number') return e?.message ?? String(err)
  let message = /^Message: (.*)$/m.exec(e.message ?? '')?.[1] ?? ''
  try {
    // the API server's Status body says more than the generic status line
    const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body
    if (typeof body?.message === 'string' && body.message) message = body.message
  } catch {
    // not JSON: keep the status line
  }
  return message ? `HTTP ${e.code}: ${message}` : `HTTP ${e.code}`
}

/** The ws client rejects with an ErrorEvent (message + error), not an Error. */
function socketErrorText(err: unknown): string {
  const e = err as { message?: string; error?: { message?: string } }
  return e?.error?.message ?? e?.message ?? String(err)
}

/** Collects a stream's bytes; the exec client calls end() when the status arrives. */
class Collector extends Writable {
  private readonly chunks: Buffer[] = []
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk)
    done()
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8')
  }
}
