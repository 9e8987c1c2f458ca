// Composition root: store + executor + domain context + HTTP routes.
import pino, { type Logger } from 'pino'
import { ensureDbAttributes } from '../db/attributes.ts'
import { EtcdStore, isEtcdUrl, parseEtcdUrl } from '../db/etcd.ts'
import { LmdbStore } from '../db/lmdb.ts'
import type { Store } from '../db/store.ts'
import type { Executor } from '../executors/executor.ts'
import { createExecutor } from '../executors/factory.ts'
import type { Config } from '../src/config.ts'
import type { AppContext } from '../src/context.ts'
import { HealTracker } from '../src/heal.ts'
import { HealthMonitor } from '../src/monitor.ts'
import { markAllStale, startCleaner } from '../src/operations/cleaner.ts'
import { Throttle } from '../src/operations/throttle.ts'
import { brickLimitsFromConfig } from '../src/placement/geometry.ts'
import { TopologyIndex } from '../src/placement/topology-index.ts'
import { RebalanceTracker } from '../src/rebalance.ts'
import { registerBlockVolumeRoutes } from './routes/blockvolumes.ts'
import { registerBrickRoutes } from './routes/bricks.ts'
import { registerClusterRoutes } from './routes/clusters.ts'
import { pinoLevel, registerCoreRoutes } from './routes/core.ts'
import { registerDbRoutes } from './routes/db.ts'
import { registerExamineRoutes } from './routes/examine.ts'
import { registerMetricsRoutes } from './routes/metrics.ts'
import { registerOperationRoutes } from './routes/operations.ts'
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
  // `db` is an LMDB file path, or an etcd URL (db/etcd.ts: etcd://host:port,.../prefix)
  const store =
    opts.store ??
    (isEtcdUrl(config.dbPath)
      ? await EtcdStore.open({ ...parseEtcdUrl(config.dbPath), readOnly: config.dbReadOnly, onListenerError })
      : new LmdbStore({ path: config.dbPath, readOnly: config.dbReadOnly, onListenerError }))
  const executor = opts.executor ?? (await createExecutor(config, log))
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
    running: new Set(),
    counters: { journalWriteFailures: 0 },
    placement: new TopologyIndex(store),
    limits: brickLimitsFromConfig({
      brickMinSizeGiB: config.brickMinSizeGiB,
      brickMaxSizeGiB: config.brickMaxSizeGiB,
      maxBricksPerVolume: config.maxBricksPerVolume,
    }),
  }
  const api = createApi(ctx, config.defaultState)
  registerCoreRoutes(api)
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
  // nothing survives a restart as running: the cleaner takes it from here
  if (!config.dbReadOnly) {
    await ensureDbAttributes(store)
    const stale = await markAllStale(ctx)
    if (stale > 0) log.warn(`${stale} pending operations from a previous run marked stale`)
    // rebalance starts a previous process owed: nothing to undo, sent again now
    ctx.rebalance.resume(ctx, { includeFailed: true })
  }
  const stopCleaner = config.disableBackgroundCleaner ? () => {} : startCleaner(ctx)
  if (!config.disableMonitor) monitor.start(ctx)
  return {
    ...api,
    async close() {
      stopCleaner()
      monitor.stop()
      ctx.heal.stop()
      ctx.rebalance.stop()
      await api.app.close()
      await executor.close()
      await store.close()
    },
  }
}
