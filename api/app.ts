// Composition root: store + executor + domain context + HTTP routes.
import { networkInterfaces } from 'node:os'
import pino, { type Logger } from 'pino'
import { ensureDbAttributes } from '../db/attributes.ts'
import { EtcdStore, isEtcdUrl, parseEtcdUrl } from '../db/etcd.ts'
import { type ElectionClient, EtcdElection, newReplicaId } from '../db/etcd-election.ts'
import type { TermClient } from '../db/kube-lease-election.ts'
import { LmdbStore } from '../db/lmdb.ts'
import type { Store } from '../db/store.ts'
import type { Executor } from '../executors/executor.ts'
import { createExecutor } from '../executors/factory.ts'
import type { Config } from '../src/config.ts'
import type { AppContext } from '../src/context.ts'
import { Errors } from '../src/errors.ts'
import { HealTracker } from '../src/heal.ts'
import { HealthMonitor } from '../src/monitor.ts'
import { markAllStale, startCleaner } from '../src/operations/cleaner.ts'
import { Throttle } from '../src/operations/throttle.ts'
import { brickLimitsFromConfig } from '../src/placement/geometry.ts'
import { TopologyIndex } from '../src/placement/topology-index.ts'
import { RebalanceTracker } from '../src/rebalance.ts'
import { VolumeCommandLock } from '../src/volume-lock.ts'
import type { JobOutcome, JobRecord, JobRecords } from './queue.ts'
import { type Election, Replica } from './replica.ts'
import { registerBlockVolumeRoutes } from './routes/blockvolumes.ts'
import { registerBrickRoutes } from './routes/bricks.ts'
import { registerClusterRoutes } from './routes/clusters.ts'
import { pinoLevel, registerCoreRoutes } from './routes/core.ts'
import { registerDbRoutes } from './routes/db.ts'
import { registerExamineRoutes } from './routes/examine.ts'
import { registerMetricsRoutes } from './routes/metrics.ts'
import { registerOperationRoutes } from './routes/operations.ts'
import { registerReplicaRoutes } from './routes/replica.ts'
import { registerTopologyRoutes } from './routes/topology.ts'
import { registerVolumeRoutes } from './routes/volumes.ts'
import { type Api, createApi } from './server.ts'

export interface AppOptions {
  config: Config
  store?: Store
  executor?: Executor
  logger?: Logger
}

export interface App extends Api {
  close(): Promise<void>
}

export async function buildApp(opts: AppOptions): Promise<App> {
  const { config } = opts
  const log = opts.logger ?? pino({ level: pinoLevel(config.logLevel), name: 'heqet' })
  const onListenerError = (err: Error) => log.error({ err }, 'a commit listener failed; the commit stands')
  // `db` is an LMDB file path, or an etcd URL (db/etcd.ts: etcd://host:port,.../prefix);
  // on etcd the replicas elect a leader (api/replica.ts) unless the db is read-only
  let replica: Replica | undefined
  const replicated = !opts.store && isEtcdUrl(config.dbPath) && !config.dbReadOnly
  const store =
    opts.store ??
    (isEtcdUrl(config.dbPath)
      ? await EtcdStore.open({
          ...parseEtcdUrl(config.dbPath),
          readOnly: config.dbReadOnly,
          onListenerError,
          ...(replicated
            ? {
                fence: () => replica?.fence(),
                onFenced: (err) => {
                  log.error(err.message)
                  const term = replica?.election.term
                  if (term && err.fenceKey === (term.fence?.key ?? term.key))
                    replica?.election.resign(err.message)
                },
              }
            : {}),
        })
      : new LmdbStore({ path: config.dbPath, readOnly: config.dbReadOnly, onListenerError }))
  if (replicated) replica = await startElection(config, store as EtcdStore, log)
  const rawExecutor = opts.executor ?? (await createExecutor(config, log))
  // a replica sends node commands only while it leads, and only for work of its term
  const executor = replica ? replica.gate(rawExecutor) : rawExecutor
  const monitor = new HealthMonitor()
  const ctx: AppContext = {
    store,
    executor,
    config,
    log,
    throttle: new Throttle(config.maxInflightOperations),
    health: monitor,
    heal: new HealTracker(),
    rebalance: new RebalanceTracker(),
    volumeLock: new VolumeCommandLock(),
    running: new Set(),
    counters: { journalWriteFailures: 0 },
    placement: new TopologyIndex(store),
    limits: brickLimitsFromConfig({
      brickMinSizeGiB: config.brickMinSizeGiB,
      brickMaxSizeGiB: config.brickMaxSizeGiB,
      maxBricksPerVolume: config.maxBricksPerVolume,
    }),
  }
  const jobRecords = replica ? etcdJobRecords(store as EtcdStore) : undefined
  const api = createApi(ctx, config.defaultState, { replica, jobRecords })
  registerCoreRoutes(api)
  registerReplicaRoutes(api)
  registerMetricsRoutes(api)
  registerClusterRoutes(api)
  registerTopologyRoutes(api)
  registerVolumeRoutes(api)
  registerBlockVolumeRoutes(api)
  registerOperationRoutes(api)
  registerDbRoutes(api)
  registerBrickRoutes(api)
  registerExamineRoutes(api)
  await api.app.ready()
  let stopCleaner = () => {}
  // nothing survives a restart as running: the cleaner takes it from here
  const startLeaderWork = async () => {
    await ensureDbAttributes(store)
    const stale = await markAllStale(ctx)
    if (stale > 0) log.warn(`${stale} pending operations from a previous run (or leader) marked stale`)
    // rebalance starts a previous process (or leader) owed: nothing to undo, sent again now;
    // rebalances it saw start and not end: followed (and shown) again
    ctx.rebalance.resume(ctx, { includeFailed: true, followStarted: true })
    // a new leader leaves the journal alone one lease time longer: node commands the previous
    // leader sent before it stepped down may still be running (it stops sending new ones
    // before its lease can end; one sent just before goes on). A leader cut off from etcd
    // steps down ~1 s before its lease ends, a killed one stops at once: with this wait the
    // new leader's first clean-up comes at least a lease time after the old leader's last
    // node command started, as after a kill -9.
    const deferSec = replica ? leaseSec(config) : 0
    stopCleaner = config.disableBackgroundCleaner ? () => {} : startCleaner(ctx, deferSec)
    if (!config.disableMonitor) monitor.start(ctx)
  }
  const stopLeaderWork = () => {
    stopCleaner()
    stopCleaner = () => {}
    monitor.stop()
    ctx.heal.stop()
    ctx.rebalance.stop()
  }
  let stopReplica = async () => {}
  if (replica) {
    stopReplica = followElection(replica, api, store as EtcdStore, startLeaderWork, stopLeaderWork)
    // serve once this replica knows whether it leads (a dead predecessor's lease may have to expire first)
    const waitMs = leaderWaitMs(config)
    if (!(await replica.settled(waitMs))) log.warn(`no leader elected within ${waitMs} ms; serving anyway`)
  } else if (!config.dbReadOnly) {
    await startLeaderWork()
  } else {
    stopCleaner = config.disableBackgroundCleaner ? () => {} : startCleaner(ctx)
  }
  return {
    ...api,
    async close() {
      stopLeaderWork()
      await stopReplica()
      await api.app.close()
      await executor.close()
      await store.close()
    },
  }
}

/** This replica's address for forwarded requests: ha.advertise_url, else its first IPv4 address. */
export function advertiseUrl(config: Config): string {
  if (config.haAdvertiseUrl) return config.haAdvertiseUrl.replace(/\/+$/, '')
  const scheme = config.enableTls ? 'https' : 'http'
  const ipv4 = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)
  return `${scheme}://${ipv4?.address ?? '127.0.0.1'}:${config.port}`
}

/** how long a leader's lease (etcd lease TTL, or Kubernetes Lease duration) lasts unrenewed */
function leaseSec(config: Config): number {
  return config.haElection === 'kubernetes' ? config.haKubeLease.leaseDurationSec : config.haLeaseTtlSec
}

/** How long a request (and start-up) waits for a leader: a dead one is replaced within the lease time. */
function leaderWaitMs(config: Config): number {
  return 2 * leaseSec(config) * 1000 + 2000
}

async function startElection(config: Config, store: EtcdStore, log: Logger): Promise<Replica> {
  const id = config.haReplicaId || newReplicaId()
  const url = advertiseUrl(config)
  let replica: Replica | undefined
  const common = {
    prefix: store.prefix,
    id,
    url,
    log: {
      info: (m: string) => log.info(m),
      warn: (m: string) => log.warn(m),
      error: (m: string) => log.error(m),
    },
    onChange: () => replica?.onElectionChange(),
  }
  let election: Election
  if (config.haElection === 'kubernetes') {
    // loaded only in this mode: the Kubernetes client is big
    const { kubeLeaseApi } = await import('./kube-lease.ts')
    const { KubeLeaseElection } = await import('../db/kube-lease-election.ts')
    const lease = config.haKubeLease
    const api = kubeLeaseApi(lease)
    election = new KubeLeaseElection({
      ...common,
      api,
      client: store.client as unknown as TermClient,
      leaseDurationSec: lease.leaseDurationSec,
      renewDeadlineMs: lease.renewDeadlineSec * 1000,
      retryPeriodMs: lease.retryPeriodSec * 1000,
    })
    log.info(
      `replica ${id} (${url}) campaigning on the Kubernetes Lease ${api.name} (duration ${lease.leaseDurationSec} s), data in ${store.prefix}`,
    )
  } else {
    election = new EtcdElection({
      ...common,
      client: store.client as unknown as ElectionClient,
      ttlSec: config.haLeaseTtlSec,
    })
    log.info(`replica ${id} (${url}) campaigning on ${store.prefix} (lease TTL ${config.haLeaseTtlSec} s)`)
  }
  replica = new Replica(election, id, leaderWaitMs(config))
  return replica
}

/**
 * Run the leader's work (cleaner, monitor, queue sweep) exactly while this
 * replica leads. A new leader first catches up with etcd, then marks every
 * journal record it does not run itself stale, as after a crash: its
 * cleaner finishes or undoes the dead leader's operations.
 */
function followElection(
  replica: Replica,
  api: Api,
  store: EtcdStore,
  startLeaderWork: () => Promise<void>,
  stopLeaderWork: () => void,
): () => Promise<void> {
  const { ctx } = api
  const log = ctx.log
  let sweepTimer: NodeJS.Timeout | undefined
  const sweep = () =>
    api.queue
      .sweep((record) => interruptedOutcome(ctx, record))
      .then((n) => {
        if (n > 0) log.warn(`${n} queued requests of an earlier leader completed as interrupted`)
      })
      .catch((err: Error) => {
        api.queue.recordFailures++
        log.error(`queue sweep: ${err.message}`)
      })
  ctx.onOperationCleaned = (id, outcome) => {
    const result: JobOutcome = outcome.finished
      ? outcome.result
        ? { state: 'redirect', location: `/${outcome.result.kind}s/${outcome.result.id}` }
        : { state: 'done' }
      : { state: 'error', message: outcome.error }
    api.queue.completeOperation(id, result).catch((err: Error) => {
      api.queue.recordFailures++
      log.error(`operation ${id}: its queued request was not completed: ${err.message}`)
    })
  }
  let chain = Promise.resolve()
  replica.onRoleChange = (role) => {
    chain = chain.then(async () => {
      if (role === 'follow') {
        if (sweepTimer) clearInterval(sweepTimer)
        stopLeaderWork()
        return
      }
      const generation = replica.generation
      await replica.run(async () => {
        try {
          ctx.heal = new HealTracker()
          ctx.rebalance = new RebalanceTracker()
          await store.sync()
          if (replica.generation !== generation) return
          await startLeaderWork()
          if (replica.generation !== generation) return stopLeaderWork()
          await sweep()
          sweepTimer = setInterval(sweep, QUEUE_SWEEP_MS)
          replica.ready = true
          log.info('leader work started (cleaner, monitor, queue)')
        } catch (err) {
          log.error(`could not start the leader's work: ${(err as Error).message}; resigning`)
          replica.election.resign(`leader start-up failed: ${(err as Error).message}`)
        }
      })
    })
  }
  replica.election.start()
  return async () => {
    if (sweepTimer) clearInterval(sweepTimer)
    await replica.election.stop()
    await chain
  }
}

const QUEUE_SWEEP_MS = 5000

/** A job of a dead leader: left to the cleaner while its operation is journaled, else interrupted. */
function interruptedOutcome(ctx: AppContext, record: JobRecord): JobOutcome | undefined {
  if (record.op && ctx.store.read((tx) => tx.get('pendingop', record.op!))) return undefined
  const detail = record.op
    ? `operation ${record.op} ended without a recorded result; look for its result before retrying`
    : 'its result is unknown; look for it before retrying'
  return { state: 'error', message: Errors.jobInterrupted(detail).message }
}

/** Queue records as etcd side keys: P/_meta/queue/<id>. */
function etcdJobRecords(store: EtcdStore): JobRecords {
  return {
    put: (id, record) => store.putMeta(`queue/${id}`, JSON.stringify(record)),
    get: async (id) => {
      const v = await store.getMeta(`queue/${id}`)
      return v === undefined ? undefined : (JSON.parse(v) as JobRecord)
    },
    delete: (id) => store.deleteMeta(`queue/${id}`),
    list: async () =>
      (await store.listMeta('queue/')).map(({ name, value }) => ({
        id: name.slice('queue/'.length),
        record: JSON.parse(value) as JobRecord,
      })),
  }
}
