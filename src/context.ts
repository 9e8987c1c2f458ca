// What every domain module is handed: the store, the executor and settings.
// No HTTP in here (api/ translates), no LMDB (db/ implements Store).
import type { Logger } from 'pino'
import type { Store } from '../db/store.ts'
import type { Executor } from '../executors/executor.ts'
import type { Config } from './config.ts'
import type { HealTracker } from './heal.ts'
import type { Throttle } from './operations/throttle.ts'
import type { BrickLimits } from './placement/geometry.ts'
import type { TopologyIndex } from './placement/topology-index.ts'
import type { RebalanceTracker } from './rebalance.ts'
import type { VolumeCommandLock } from './volume-lock.ts'

export interface HealthView {
  /** false only for nodes the monitor has seen down; unknown nodes count as up */
  isUp(nodeId: string): boolean
}

export interface AppContext {
  store: Store
  executor: Executor
  config: Config
  log: Logger
  throttle: Throttle
  health: HealthView
  /** self-heal after brick replacements: started, followed, shown */
  heal: HealTracker
  /** the rebalance start an expand leaves behind: journaled, started, followed, shown */
  rebalance: RebalanceTracker
  /** gluster commands that take glusterd's volume lock run one at a time per volume */
  volumeLock: VolumeCommandLock
  /** in-memory placement index, kept current by store commits */
  placement: TopologyIndex
  limits: BrickLimits
  /** ids of pending operations running in this process */
  running: Set<string>
  /** failures that left no trace in the DB, for /metrics */
  counters: { journalWriteFailures: number }
  /**
   * Told when the cleaner finished or undid an operation (replicated: the
   * dead leader's queue entry for it gets this outcome).
   */
  onOperationCleaned?: (operationId: string, outcome: CleanOutcome) => void
}

/** What a clean-up made of an interrupted operation. */
export type CleanOutcome = { finished: true; result: JobResult } | { finished: false; error: string }

/**
 * A job to run in the background after the synchronous checks passed;
 * `operationId` names the journaled operation it runs, if it runs one.
 */
export type Job = (() => Promise<JobResult>) & { operationId?: string }
/** What a finished job points at (303), or undefined (204). */
export type JobResult = { kind: 'node' | 'volume' | 'blockvolume'; id: string } | undefined

/** `list` sorted (every id list of an entry is): a copy with `id` at its place, or `list` if it holds it. */
export function insertSorted(list: string[], id: string): string[] {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (list[mid]! < id) lo = mid + 1
    else hi = mid
  }
  if (list[lo] === id) return list
  const out = list.slice(0, lo)
  out.push(id)
  for (let i = lo; i < list.length; i++) out.push(list[i]!)
  return out
}

export function without(list: string[], id: string): string[] {
  return list.filter((x) => x !== id)
}
