// GET /metrics: heketi's gauges (all computed on scrape) plus the process
// metrics of prom-client's default collectors. prom-client (~12 MB of
// memory) is loaded at the first scrape: a server nobody scrapes never pays.
import type { Registry } from 'prom-client'
import { isVolumeListed } from '../../src/clusters.ts'
import type { AppContext } from '../../src/context.ts'
import { logStats } from '../log-destination.ts'
import type { AsyncQueue } from '../queue.ts'
import type { Replica } from '../replica.ts'
import { type Api, addRoute } from '../server.ts'

export function registerMetricsRoutes(api: Api): void {
  let metrics: Promise<Metrics> | undefined
  addRoute(api, {
    method: 'GET',
    path: '/metrics',
    handler: async (_req, reply) => {
      metrics ??= createMetrics(api.ctx, api.replica, api.queue)
      const { registry, refresh } = await metrics
      return reply
        .code(200)
        .header('content-type', registry.contentType)
        .send(await refresh())
    },
  })
}

interface Metrics {
  registry: Registry
  /** fill every gauge from the store; resolves to the exposition text */
  refresh(): Promise<string>
}

async function createMetrics(
  ctx: AppContext,
  replica: Replica | undefined,
  queue: AsyncQueue,
): Promise<Metrics> {
  const { collectDefaultMetrics, Gauge, Registry } = await import('prom-client')
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [registry] })

  const up = gauge('heketi_up', 'Is heketi running?')
  const clusters = gauge('heketi_cluster_count', 'Number of clusters')
  const volumes = gauge('heketi_volumes_count', 'Number of volumes on cluster', ['cluster'])
  const blockVolumes = gauge('heketi_block_volumes_count', 'Number of block volumes on cluster', ['cluster'])
  const nodes = gauge('heketi_nodes_count', 'Number of nodes on cluster', ['cluster'])
  const deviceLabels = ['cluster', 'hostname', 'storage_hostname']
  const devices = gauge('heketi_device_count', 'Number of devices on host', deviceLabels)
  const full = [...deviceLabels, 'id', 'device', 'pv_uuid']
  const size = gauge('heketi_device_size', 'Total size of the device', full)
  const free = gauge('heketi_device_free', 'Amount of Free space available on the device', full)
  const used = gauge('heketi_device_used', 'Amount of space used on the device', full)
  const sizeB = gauge('heketi_device_size_bytes', 'Total size of the device in bytes', full)
  const freeB = gauge(
    'heketi_device_free_bytes',
    'Amount of Free space available on the device in bytes',
    full,
  )
  const usedB = gauge('heketi_device_used_bytes', 'Amount of space used on the device in bytes', full)
  const bricks = gauge('heketi_device_brick_count', 'Number of bricks on device', full)
  const stale = gauge('heketi_operations_stale_count', 'Number of Stale Operations')
  const failed = gauge('heketi_operations_failed_count', 'Number of Failed Operations')
  const fresh = gauge('heketi_operations_new_count', 'Number of New Operations')
  const total = gauge('heketi_operations_total_count', 'Total Number of Operations')
  const inFlight = gauge('heketi_operations_inFlight_count', 'Number of in flight Operations')
  const listenerFailures = gauge(
    'heqet_commit_listener_failures',
    'Commit listeners (in-memory indexes) that threw since start; the commits stood',
  )
  const storeWrites = gauge('heqet_store_writes', 'Store writes applied since start')
  const storeCommits = gauge(
    'heqet_store_commits',
    'Store commits since start: below the writes when concurrent writes shared a commit (LMDB)',
  )
  const journalFailures = gauge(
    'heqet_journal_write_failures',
    'Journal updates (failed marks, clean-up results) that could not be written since start',
  )
  const queueRecordFailures = gauge(
    'heqet_queue_record_failures_total',
    'Queue records (replicated /queue entries) that could not be written or deleted since start (each logged)',
  )
  // beyond heketi: self-heal after brick replacements (issue 15)
  const healPending = gauge(
    'heqet_volume_heal_pending_entries',
    'Entries pending self-heal on a volume whose bricks were replaced (-1 before the first look)',
    ['volume'],
  )
  const healSeconds = gauge(
    'heqet_volume_heal_seconds',
    'Seconds since the brick replacement that started the heal (until it finished)',
    ['volume'],
  )
  const healWaiting = gauge(
    'heqet_brick_replacements_waiting_for_heal',
    'Brick replacements held back because their brick is still a heal source',
  )
  const replacements = gauge('heqet_brick_replacements_total', 'Bricks replaced (replace-brick) since start')
  const healStartFailures = gauge(
    'heqet_heal_start_failures_total',
    '`volume heal` starts refused on every host (tried again until one goes through)',
  )
  const healFollowerFailures = gauge(
    'heqet_heal_follower_failures_total',
    'Self-heal followers (after a brick replacement) that ended on an error since start (logged; the heal is no longer followed)',
  )
  // beyond heketi: the rebalance after an expand (issue 12)
  const rebalancePhase = gauge(
    'heqet_volume_rebalance',
    'Rebalances after an expand, by volume and state (1 per volume; pending = start journaled, not yet accepted)',
    ['volume', 'state'],
  )
  const rebalanceSeconds = gauge(
    'heqet_volume_rebalance_seconds',
    'Seconds since the rebalance was started (or requested, while pending), until gluster reported its end',
    ['volume'],
  )
  const rebalanceStarts = gauge(
    'heqet_rebalance_starts_total',
    '`volume rebalance start` accepted by gluster since start',
  )
  const rebalanceStartFailures = gauge(
    'heqet_rebalance_start_failures_total',
    '`volume rebalance start` refused on every host (each retried; the start stays journaled)',
  )
  const rebalanceWorkerFailures = gauge(
    'heqet_rebalance_worker_failures_total',
    'Rebalance workers (start, then follow) that ended on an error since start (logged; the error is in /operations, a start still journaled is left to the cleaner)',
  )
  const perScrape = [
    rebalancePhase,
    rebalanceSeconds,
    healPending,
    healSeconds,
    volumes,
    blockVolumes,
    nodes,
    devices,
    size,
    free,
    used,
    sizeB,
    freeB,
    usedB,
    bricks,
  ]

  function fill(): void {
    for (const g of perScrape) g.reset()
    for (const h of ctx.heal.list()) {
      healPending.set({ volume: h.volume }, Number.isNaN(h.pendingEntries) ? -1 : h.pendingEntries)
      healSeconds.set({ volume: h.volume }, ((h.finishedAt ?? Date.now()) - h.startedAt) / 1000)
    }
    for (const r of ctx.rebalance.list()) {
      rebalancePhase.set({ volume: r.volume, state: r.phase }, 1)
      const since = r.startedAt ?? r.requestedAt
      rebalanceSeconds.set({ volume: r.volume }, ((r.finishedAt ?? Date.now()) - since) / 1000)
    }
    rebalanceStarts.set(ctx.rebalance.starts)
    rebalanceStartFailures.set(ctx.rebalance.startFailures)
    rebalanceWorkerFailures.set(ctx.rebalance.workerFailures)
    healWaiting.set(ctx.heal.waiting.size)
    replacements.set(ctx.heal.replacements)
    healStartFailures.set(ctx.heal.healStartFailures)
    healFollowerFailures.set(ctx.heal.followerFailures)
    queueRecordFailures.set(queue.recordFailures)
    ctx.store.read((tx) => {
      const ops = tx.values('pendingop')
      stale.set(ops.filter((o) => o.status === 'stale').length)
      failed.set(ops.filter((o) => o.status === 'failed').length)
      fresh.set(ops.filter((o) => o.status === '').length)
      total.set(ops.length)
      inFlight.set(ctx.throttle.inFlight)
      listenerFailures.set(ctx.store.listenerFailures)
      if (ctx.store.writes !== undefined) storeWrites.set(ctx.store.writes)
      if (ctx.store.commits !== undefined) storeCommits.set(ctx.store.commits)
      journalFailures.set(ctx.counters.journalWriteFailures)
      const all = tx.values('cluster')
      clusters.set(all.length)
      for (const c of all) {
        const cluster = c.id
        volumes.set(
          { cluster },
          c.volumes.filter((id) => {
            const v = tx.get('volume', id)
            return v !== undefined && isVolumeListed(tx, v)
          }).length,
        )
        blockVolumes.set(
          { cluster },
          c.blockVolumes.filter((id) => !tx.get('blockvolume', id)?.pendingId).length,
        )
        nodes.set({ cluster }, c.nodes.length)
        for (const nodeId of c.nodes) {
          const node = tx.get('node', nodeId)
          if (!node) continue
          const host = {
            cluster,
            hostname: node.hostnames.manage[0]!,
            storage_hostname: node.hostnames.storage[0]!,
          }
          devices.set(host, node.devices.length)
          for (const deviceId of node.devices) {
            const d = tx.get('device', deviceId)
            if (!d) continue
            const labels = { ...host, id: d.id, device: d.name, pv_uuid: d.pvUuid }
            size.set(labels, d.storage.totalKiB)
            free.set(labels, d.storage.freeKiB)
            used.set(labels, d.storage.usedKiB)
            sizeB.set(labels, d.storage.totalKiB * 1024)
            freeB.set(labels, d.storage.freeKiB * 1024)
            usedB.set(labels, d.storage.usedKiB * 1024)
            bricks.set(labels, d.bricks.length)
          }
        }
      }
    })
  }

  // beyond heketi: replicas on etcd (api/replica.ts); one server always leads
  const leader = gauge('heqet_leader', 'Whether this replica is the leader (1) or a follower (0)')
  const forwarded = gauge(
    'heqet_forwarded_requests',
    'Requests this replica relayed to the leader since start',
  )
  const terms = gauge('heqet_leader_terms', 'Terms this replica led since start')
  const depositions = gauge(
    'heqet_leader_depositions',
    'Terms that ended because the lease was lost or late (not a shutdown) since start',
  )
  const electionErrors = gauge(
    'heqet_leader_election_errors',
    'Failed leader election calls since start (Kubernetes Lease election), by kind: conflict, server, client, timeout, network, etcd, stale, other',
    ['kind'],
  )
  // beyond heketi: the log on stdout (api/log-destination.ts)
  const logDropped = gauge(
    'heqet_log_lines_dropped_total',
    'Log lines not written to stdout since start (stdout slower than the log past the bound, a closed pipe, a write error)',
  )
  const logWriteErrors = gauge(
    'heqet_log_write_errors_total',
    'Writes of the log to stdout that failed since start (EPIPE: stdout is a closed pipe)',
  )
  const fencedWrites = gauge(
    'heqet_fenced_writes',
    'Store writes refused because this replica was not (or no longer) the leader',
  )

  async function refresh(): Promise<string> {
    leader.set(replica ? Number(replica.isLeader()) : 1)
    if (replica) {
      forwarded.set(replica.forwarded)
      terms.set(replica.election.terms)
      depositions.set(replica.election.depositions)
      for (const [kind, n] of Object.entries(replica.election.errors ?? {})) electionErrors.set({ kind }, n)
    }
    logDropped.set(logStats.droppedLines)
    logWriteErrors.set(logStats.writeErrors)
    fencedWrites.set((ctx.store as { fencedWrites?: number }).fencedWrites ?? 0)
    try {
      fill()
      up.set(1)
    } catch (err) {
      ctx.log.error({ err }, 'metrics: unable to read the topology')
      up.set(0)
    }
    return registry.metrics()
  }
  return { registry, refresh }
}
