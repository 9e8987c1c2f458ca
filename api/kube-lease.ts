// The Kubernetes Lease calls of the leader election (db/kube-lease-election.ts)
// through @kubernetes/client-node's CoordinationV1Api, authenticated like
// the kube executor: ha.kubeconfig, else the in-cluster service account,
// else $KUBECONFIG. Imported only when ha.election is "kubernetes" (the
// client costs ~120 MB of memory).
import { CoordinationV1Api, type KubeConfig, Observable, type V1Lease } from '@kubernetes/client-node'
import { type LeaseApi, LeaseApiError, type LeaseRecord, type LeaseSpec } from '../db/kube-lease-election.ts'
import { loadKubeConfig, resolveNamespace, SERVICE_ACCOUNT_DIR } from '../executors/kube.ts'
import { type KubeLeaseConfig, kubeLeaseNameProblem } from '../src/config.ts'

export interface KubeLeaseRuntime {
  env?: NodeJS.ProcessEnv
  serviceAccountDir?: string
}

export function kubeLeaseApi(config: KubeLeaseConfig, runtime: KubeLeaseRuntime = {}): LeaseApi {
  const env = runtime.env ?? process.env
  const dir = runtime.serviceAccountDir ?? SERVICE_ACCOUNT_DIR
  const kc: KubeConfig = loadKubeConfig({ kubeconfig: config.kubeconfig || undefined }, env, dir)
  const namespace = resolveNamespace({ namespace: config.namespace || undefined }, kc, dir)
  const name = config.name
  // again here: the namespace may come from the service account or the kubeconfig context
  const problem = kubeLeaseNameProblem(namespace, name)
  if (problem) throw new Error(`Kubernetes Lease election: ${problem}`)
  const api = kc.makeApiClient(CoordinationV1Api)
  // the last object seen: an update keeps its labels and annotations, as client-go's LeaseLock does
  let last: V1Lease | undefined
  const seen = (lease: V1Lease): LeaseRecord => {
    last = lease
    return toRecord(lease)
  }
  const body = (spec: LeaseSpec, resourceVersion?: string): V1Lease => {
    const metadata =
      last?.metadata?.resourceVersion === resourceVersion && resourceVersion !== undefined
        ? { ...last!.metadata }
        : { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) }
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata,
      // MicroTime travels as its text (client-node passes unknown formats through)
      spec: spec as unknown as V1Lease['spec'],
    }
  }
  return {
    name: `${namespace}/${name}`,
    async get(signal) {
      try {
        return seen(await api.readNamespacedLease({ name, namespace }, withSignal(signal)))
      } catch (err) {
        if ((err as { code?: unknown }).code === 404) return undefined
        throw leaseError('read', err, signal)
      }
    },
    async create(spec, signal) {
      try {
        return seen(await api.createNamespacedLease({ namespace, body: body(spec) }, withSignal(signal)))
      } catch (err) {
        throw leaseError('create', err, signal)
      }
    },
    async replace(spec, resourceVersion, signal) {
      try {
        const lease = body(spec, resourceVersion)
        return seen(await api.replaceNamespacedLease({ name, namespace, body: lease }, withSignal(signal)))
      } catch (err) {
        throw leaseError('update', err, signal)
      }
    },
  }
}

function toRecord(lease: V1Lease): LeaseRecord {
  const spec = (lease.spec ?? {}) as Record<string, unknown>
  const time = (v: unknown) => (typeof v === 'string' ? v : v instanceof Date ? v.toISOString() : undefined)
  return {
    holderIdentity: typeof spec['holderIdentity'] === 'string' ? spec['holderIdentity'] : '',
    leaseDurationSeconds: typeof spec['leaseDurationSeconds'] === 'number' ? spec['leaseDurationSeconds'] : 0,
    acquireTime: time(spec['acquireTime']),
    renewTime: time(spec['renewTime']),
    leaseTransitions: typeof spec['leaseTransitions'] === 'number' ? spec['leaseTransitions'] : 0,
    resourceVersion: lease.metadata?.resourceVersion ?? '',
  }
}

/** Per-call options aborting the request on `signal` (client-node 1.x middleware). */
function withSignal(signal: AbortSignal) {
  return {
    middleware: [
      {
        pre: (ctx: { setSignal(s: AbortSignal): void }) => {
          ctx.setSignal(signal)
          return new Observable(Promise.resolve(ctx))
        },
        post: <T>(res: T) => new Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: 'append' as const,
  } as never
}

/** An ApiException (status + the server's Status message), a timeout, or a transport failure. */
function leaseError(what: string, err: unknown, signal: AbortSignal): LeaseApiError {
  const e = err as { code?: unknown; body?: unknown; message?: string }
  if (typeof e.code === 'number') {
    let message = ''
    try {
      const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body
      if (typeof body?.message === 'string') message = body.message
    } catch {
      // not a Status object: the status code says enough
    }
    return new LeaseApiError(`Lease ${what}: HTTP ${e.code}${message ? `: ${message}` : ''}`, e.code)
  }
  if (signal.aborted) {
    const timedOut = (signal.reason as Error | undefined)?.name === 'TimeoutError'
    return new LeaseApiError(
      `Lease ${what}: ${timedOut ? 'timed out' : 'aborted'}`,
      undefined,
      timedOut ? 'timeout' : 'aborted',
    )
  }
  return new LeaseApiError(`Lease ${what}: ${e.message ?? String(err)}`)
}
