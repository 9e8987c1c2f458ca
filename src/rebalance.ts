// The rebalance after a volume expand (issue 12 item 5). heketi sends
// `gluster volume rebalance <vol> start` inside the expand and waits for it
// (about 10 s in glusterd), although the new bricks serve new capacity as soon
// as `add-brick` returns: rebalance only moves existing files. heqet answers the
// expand after add-brick and leaves the start to this tracker:
//
// * the expand's finalize writes a `rebalance-volume` journal record (one per
//   volume; a second expand before the start went through joins it), so the
//   start is never lost: the record stays until gluster accepted the start;
// * the tracker sends the start (retried 1, 2, 4 … 60 s apart, at most
//   `maxStartAttempts` times; then the record is left `failed` to the cleaner,
//   which retries it on its own schedule), drops the record once gluster
//   accepted it, and follows `rebalance status` until gluster reports it over;
// * at start-up the tracker takes over the records a previous process left;
// * the start and the status polls take glusterd's volume lock, like add-brick
//   of a later expand and a delete: they wait for each other
//   (`ctx.volumeLock`, src/volume-lock.ts).
//
// /operations (`rebalances`), the log and /metrics show each one.

import type { PendingOperationEntry, VolumeEntry } from '../db/entries.ts'
import type { ReadTxn, WriteTxn } from '../db/store.ts'
import type { RebalanceStatus } from '../executors/executor.ts'
import type { AppContext } from './context.ts'
import { newId } from './ids.ts'
import { clusterHosts, onAnyHost } from './operations/bricks.ts'
import { markRecordFailed } from './operations/cleaner.ts'

export type RebalancePhase =
  /** the start is in the journal, not yet accepted by gluster */
  | 'pending'
  /** gluster accepted the start and has not reported the end */
  | 'started'
  | 'completed'
  | 'stopped'
  | 'failed'
  /** the volume was deleted before its rebalance started */
  | 'cancelled'
  /** still running when the follow time ran out (or the server stopped) */
  | 'unfollowed'

export interface RebalanceProgress {
  volumeId: string
  volume: string
  phase: RebalancePhase
  /** the journal record while the start is pending ('' afterwards) */
  recordId: string
  /** ms epoch of the (first) expand that asked for it */
  requestedAt: number
  startedAt?: number
  finishedAt?: number
  /** `rebalance start` sent since it was requested */
  startAttempts: number
  /** gluster's own status text from the last look (`in progress`, `completed` …) */
  gluster: string
  files: number
  failures: number
  lastError: string
}

export interface RebalanceSettings {
  /** first pause after a refused start, doubled per failure */
  retryBaseMs: number
  retryCapMs: number
  /** starts tried here before the record is left `failed` to the cleaner */
  maxStartAttempts: number
  /** period of `rebalance status` while one runs */
  pollMs: number
  /** stop following a rebalance after this long (logged as unfinished) */
  followMs: number
  /** how long a later expand's add-brick waits for a running rebalance (gluster refuses it meanwhile) */
  addBrickWaitMs: number
}

export const DEFAULT_REBALANCE_SETTINGS: RebalanceSettings = {
  retryBaseMs: 1000,
  retryCapMs: 60_000,
  maxStartAttempts: 8,
  pollMs: 2000,
  followMs: 6 * 3600_000,
  addBrickWaitMs: 120_000,
}

export const REBALANCE_OPERATION = 'rebalance-volume' as const

// a rebalance followed in the background never keeps the process alive
const idle = (ms: number) => new Promise((r) => setTimeout(r, ms).unref())

/** The pending start of a volume's rebalance, if any. */
export function rebalanceRecord(tx: ReadTxn, volumeId: string): PendingOperationEntry | undefined {
  return tx
    .values('pendingop')
    .find((op) => op.type === REBALANCE_OPERATION && op.data['volumeId'] === volumeId)
}

/**
 * In the expand's finalize transaction: journal the rebalance start. A start
 * still pending from an earlier expand covers these bricks too (gluster
 * rebalances over every brick the volume has when it starts).
 */
export function requestRebalance(tx: WriteTxn, volume: VolumeEntry, expandId: string): string {
  const existing = rebalanceRecord(tx, volume.id)
  if (existing) {
    const expands = [...((existing.data['expandIds'] as string[] | undefined) ?? []), expandId]
    tx.put('pendingop', existing.id, { ...existing, data: { ...existing.data, expandIds: expands } })
    return existing.id
  }
  const id = newId()
  tx.put('pendingop', id, {
    id,
    timestamp: Math.floor(Date.now() / 1000),
    type: REBALANCE_OPERATION,
    actions: [{ change: 'expand-volume', id: volume.id }],
    status: '',
    doneSteps: [],
    data: { volumeId: volume.id, volumeName: volume.name, expandIds: [expandId] },
  })
  return id
}

/** In a delete's finalize: the volume is gone, its pending start with it (returns the dropped id). */
export function dropRebalanceRecord(tx: WriteTxn, volumeId: string): string | undefined {
  const record = rebalanceRecord(tx, volumeId)
  if (record) tx.del('pendingop', record.id)
  return record?.id
}

export class RebalanceTracker {
  private readonly rebalances = new Map<string, RebalanceProgress>()
  /** one worker per volume id: starts, then follows, then looks for a newer record */
  private readonly workers = new Map<string, Promise<void>>()
  private stopped = false
  readonly settings: RebalanceSettings
  startFailures = 0
  starts = 0
  /** background workers that ended on an error (logged; the journal keeps what is left) */
  workerFailures = 0

  constructor(settings: Partial<RebalanceSettings> = {}) {
    this.settings = { ...DEFAULT_REBALANCE_SETTINGS, ...settings }
  }

  /** Rebalances pending or followed now, or over within the last hour. */
  list(): RebalanceProgress[] {
    const cutoff = Date.now() - 3600_000
    for (const [id, r] of this.rebalances)
      if (r.finishedAt !== undefined && r.finishedAt < cutoff) this.rebalances.delete(id)
    return [...this.rebalances.values()]
  }

  get(volumeId: string): RebalanceProgress | undefined {
    return this.rebalances.get(volumeId)
  }

  stop(): void {
    this.stopped = true
  }

  /** Resolves when every worker (or the one of `volumeId`) has nothing left to do. */
  async settled(volumeId?: string): Promise<void> {
    for (;;) {
      const pending = volumeId ? [this.workers.get(volumeId)] : [...this.workers.values()]
      const live = pending.filter((w): w is Promise<void> => w !== undefined)
      if (live.length === 0) return
      await Promise.all(live)
    }
  }

  /**
   * Take over every pending start not handled here yet: after an expand, after
   * the cleaner finished one, and at start-up (records of a previous process).
   * Records left `failed` belong to the cleaner until it hands them back.
   */
  resume(ctx: AppContext, opts: { includeFailed?: boolean; followStarted?: boolean } = {}): void {
    if (this.stopped) return
    if (opts.followStarted) this.followStarted(ctx)
    const records = ctx.store.read((tx) =>
      tx
        .values('pendingop')
        .filter((op) => op.type === REBALANCE_OPERATION && !ctx.running.has(op.id))
        .filter((op) => opts.includeFailed || op.status !== 'failed'),
    )
    for (const record of records) {
      const volumeId = String(record.data['volumeId'] ?? '')
      this.track(volumeId, String(record.data['volumeName'] ?? ''), record.id)
      if (!this.workers.has(volumeId)) this.spawn(ctx, volumeId, () => this.work(ctx, volumeId))
    }
  }

  /**
   * At start-up: the rebalances a previous process (or leader) saw gluster
   * accept and not end (`rebalanceStartedAt` on the volume) are followed
   * again, and shown, from where they are; a start journaled after one of
   * them is sent once it ended.
   */
  private followStarted(ctx: AppContext): void {
    const started = ctx.store.read((tx) =>
      tx.values('volume').filter((v) => v.rebalanceStartedAt !== undefined),
    )
    for (const v of started) {
      const known = this.rebalances.get(v.id)
      if (known?.phase === 'pending' || known?.phase === 'started') continue
      const at = v.rebalanceStartedAt!
      this.rebalances.set(v.id, {
        volumeId: v.id,
        volume: v.name,
        phase: 'started',
        recordId: '',
        requestedAt: at,
        startedAt: at,
        startAttempts: 0,
        gluster: '',
        files: 0,
        failures: 0,
        lastError: '',
      })
      ctx.log.info(`rebalance of volume ${v.name} (started before this process) followed again`)
      if (!this.workers.has(v.id))
        this.spawn(ctx, v.id, async () => {
          await this.follow(ctx, v.id)
          await this.work(ctx, v.id)
        })
    }
  }

  /**
   * Run a volume's worker in the background. Nobody awaits it, so its failure
   * (a journal write refused, e.g. by the leader fence after this replica lost
   * its lease) is handled here: logged, counted, shown in /operations; the
   * record stays in the journal for the cleaner or the next leader.
   */
  private spawn(ctx: AppContext, volumeId: string, body: () => Promise<void>): void {
    const worker: Promise<void> = body()
      .catch((err: unknown) => this.workerFailed(ctx, volumeId, err))
      .finally(() => {
        if (this.workers.get(volumeId) === worker) this.workers.delete(volumeId)
      })
    this.workers.set(volumeId, worker)
  }

  private workerFailed(ctx: AppContext, volumeId: string, err: unknown): void {
    this.workerFailures++
    const error = err instanceof Error ? err.message : String(err)
    const r = this.rebalances.get(volumeId)
    if (r) {
      r.lastError = error
      if (r.phase === 'started') {
        // started on gluster, no longer followed here
        r.phase = 'unfollowed'
        r.finishedAt = Date.now()
      }
    }
    ctx.log.error(
      `rebalance of volume ${r?.volume ?? volumeId}: stopped here: ${error}; a start still journaled is left to the cleaner (or the next leader)`,
    )
  }

  /** The cleaner's attempt at a record left `failed`: one start now; throws when refused. */
  async startNow(ctx: AppContext, recordId: string): Promise<void> {
    const record = ctx.store.read((tx) => tx.get('pendingop', recordId))
    if (!record) return
    const volumeId = String(record.data['volumeId'] ?? '')
    this.track(volumeId, String(record.data['volumeName'] ?? ''), record.id)
    const outcome = await this.attempt(ctx, record)
    if (outcome.kind === 'refused') throw new Error(outcome.error)
    if (outcome.kind === 'wait')
      throw new Error(`volume ${volumeId} is busy with another operation; tried again later`)
    // accepted (followed from here on) or nothing left to do
    this.resume(ctx)
    if (outcome.kind === 'accepted' && !this.workers.has(volumeId))
      this.spawn(ctx, volumeId, () => this.follow(ctx, volumeId))
  }

  /**
   * A later expand's add-brick (`fn`): gluster refuses it while a rebalance of
   * the volume runs, so it waits (bounded) until the one followed here is
   * over, and runs under `exclusive`, checked again there (a start in flight
   * may have been accepted meanwhile). Past the bound, add-brick is tried
   * anyway and gluster's answer decides.
   */
  async whenNotRebalancing<T>(
    ctx: AppContext,
    volumeId: string,
    name: string,
    fn: () => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + this.settings.addBrickWaitMs
    const running = () =>
      this.rebalances.get(volumeId)?.phase === 'started' && Date.now() < deadline && !this.stopped
    let logged = false
    for (;;) {
      while (running()) {
        if (!logged) {
          ctx.log.info(`expand of volume ${name} waits for the running rebalance to finish`)
          logged = true
        }
        await idle(Math.min(250, this.settings.pollMs))
      }
      const outcome = await ctx.volumeLock.exclusive(name, async () =>
        running() ? { again: true as const } : { again: false as const, value: await fn() },
      )
      if (!outcome.again) return outcome.value
    }
  }

  /**
   * In a delete, under `exclusive` before `volume stop`: a rebalance that
   * runs makes glusterd refuse to stop the volume, so it is stopped first.
   */
  async beforeDelete(ctx: AppContext, volumeId: string, hosts: string[], name: string): Promise<void> {
    const r = this.rebalances.get(volumeId)
    if (r?.phase !== 'started') return
    ctx.log.info(`volume ${name} is deleted while it rebalances: stopping the rebalance`)
    await onAnyHost(hosts, (h) => ctx.executor.rebalanceStop(h, name))
    this.finish(ctx, r, 'stopped', 'stopped by the volume delete')
  }

  /**
   * After a failed delete: if gluster says a rebalance of the volume runs (one
   * this process did not follow), stop it and answer true (the delete is
   * tried again). False when none runs or gluster cannot tell (logged).
   */
  async stopIfRunning(ctx: AppContext, hosts: string[], name: string): Promise<boolean> {
    let running: boolean
    try {
      running = (await onAnyHost(hosts, (h) => ctx.executor.rebalanceStatus(h, name))).running
    } catch (err) {
      ctx.log.warn(`volume ${name}: rebalance status after a failed delete: ${(err as Error).message}`)
      return false
    }
    if (!running) return false
    ctx.log.info(`volume ${name} could not be deleted while it rebalances: stopping the rebalance`)
    await onAnyHost(hosts, (h) => ctx.executor.rebalanceStop(h, name))
    return true
  }

  private track(volumeId: string, volume: string, recordId: string): RebalanceProgress {
    const known = this.rebalances.get(volumeId)
    if (known && (known.phase === 'pending' || known.phase === 'started')) {
      known.recordId = recordId
      return known
    }
    const progress: RebalanceProgress = {
      volumeId,
      volume,
      phase: 'pending',
      recordId,
      requestedAt: Date.now(),
      startAttempts: 0,
      gluster: '',
      files: 0,
      failures: 0,
      lastError: '',
    }
    this.rebalances.set(volumeId, progress)
    return progress
  }

  private async work(ctx: AppContext, volumeId: string): Promise<void> {
    for (;;) {
      const record = ctx.store.read((tx) => rebalanceRecord(tx, volumeId))
      if (!record || this.stopped) {
        // in the same tick as the look: a record written after it finds no worker and gets one
        this.workers.delete(volumeId)
        return
      }
      ctx.running.add(record.id)
      let accepted = false
      try {
        accepted = await this.startPhase(ctx, volumeId, record.id)
      } finally {
        ctx.running.delete(record.id)
      }
      if (!accepted) return
      await this.follow(ctx, volumeId)
    }
  }

  /** Start with backoff; true once gluster accepted. */
  private async startPhase(ctx: AppContext, volumeId: string, recordId: string): Promise<boolean> {
    let refused = 0
    for (;;) {
      if (this.stopped) return false
      const record = ctx.store.read((tx) => tx.get('pendingop', recordId))
      if (!record) {
        const r = this.rebalances.get(volumeId)
        if (r?.phase === 'pending')
          this.finish(ctx, r, 'cancelled', 'the volume was deleted before it started')
        return false
      }
      const outcome = await this.attempt(ctx, record)
      if (outcome.kind === 'accepted') return true
      if (outcome.kind === 'gone') return false
      if (outcome.kind === 'refused') refused++
      if (refused >= this.settings.maxStartAttempts) {
        await this.handToCleaner(ctx, recordId, outcome.kind === 'refused' ? outcome.error : '')
        return false
      }
      const pause = Math.min(
        this.settings.retryCapMs,
        this.settings.retryBaseMs * 2 ** Math.max(0, refused - 1),
      )
      await idle(pause)
    }
  }

  /**
   * One start. `wait`: the volume is busy with another operation (a delete,
   * a brick replacement) and nothing was sent; `gone`: the volume or the
   * record no longer exists (the record, if any, is dropped).
   */
  private async attempt(
    ctx: AppContext,
    record: PendingOperationEntry,
  ): Promise<{ kind: 'accepted' | 'wait' | 'gone' } | { kind: 'refused'; error: string }> {
    const volumeId = String(record.data['volumeId'] ?? '')
    const { volume, hosts } = ctx.store.read((tx) => {
      const v = tx.get('volume', volumeId)
      return { volume: v, hosts: v ? clusterHosts(ctx, tx, v.clusterId) : [] }
    })
    const progress = this.track(volumeId, volume?.name ?? String(record.data['volumeName'] ?? ''), record.id)
    if (!volume) {
      await this.journalWrite(ctx, `rebalance record ${record.id}: could not drop it`, (tx) =>
        tx.del('pendingop', record.id),
      )
      ctx.log.warn(`rebalance of volume ${volumeId} dropped: the volume no longer exists`)
      this.finish(ctx, progress, 'cancelled', 'the volume no longer exists')
      return { kind: 'gone' }
    }
    if (volume.pendingId) return { kind: 'wait' }
    progress.startAttempts++
    try {
      await ctx.volumeLock.exclusive(volume.name, async () => {
        await onAnyHost(hosts, (h) => ctx.executor.rebalanceStart(h, volume.name))
        // under the lock: whoever waits for it already sees the rebalance running
        progress.phase = 'started'
        progress.startedAt = Date.now()
      })
    } catch (err) {
      this.startFailures++
      const error = (err as Error).message
      progress.lastError = error
      ctx.log.warn(
        `rebalance of volume ${volume.name} not started (attempt ${progress.startAttempts}, tried again): ${error}`,
      )
      await this.noteFailure(ctx, record.id, error)
      return { kind: 'refused', error }
    }
    this.starts++
    progress.lastError = ''
    progress.recordId = ''
    // accepted: the record goes, unless an expand joined it meanwhile (then it starts again)
    const expands = JSON.stringify(record.data['expandIds'] ?? [])
    await this.journalWrite(
      ctx,
      `rebalance of volume ${volume.name} was started but its record ${record.id} could not be dropped`,
      (tx) => {
        const now = tx.get('pendingop', record.id)
        if (now && JSON.stringify(now.data['expandIds'] ?? []) === expands) tx.del('pendingop', record.id)
        // a restart from here on follows it again (followStarted)
        const v = tx.get('volume', volumeId)
        if (v) tx.put('volume', v.id, { ...v, rebalanceStartedAt: progress.startedAt })
      },
    )
    ctx.log.info(`rebalance of volume ${volume.name} started`)
    return { kind: 'accepted' }
  }

  /** A journal write whose failure the caller cannot go on from: counted, then thrown. */
  private async journalWrite(ctx: AppContext, what: string, fn: (tx: WriteTxn) => void): Promise<void> {
    try {
      await ctx.store.write(fn)
    } catch (err) {
      ctx.counters.journalWriteFailures++
      throw new Error(`${what}: ${(err as Error).message}`)
    }
  }

  private async noteFailure(ctx: AppContext, recordId: string, error: string): Promise<void> {
    try {
      await ctx.store.write((tx) => {
        const entry = tx.get('pendingop', recordId)
        if (entry) tx.put('pendingop', recordId, { ...entry, lastError: error })
      })
    } catch (err) {
      ctx.counters.journalWriteFailures++
      ctx.log.error(`rebalance record ${recordId}: could not record its failure: ${(err as Error).message}`)
    }
  }

  /** After `maxStartAttempts` refusals the record waits, `failed`, for the cleaner's schedule. */
  private async handToCleaner(ctx: AppContext, recordId: string, error: string): Promise<void> {
    ctx.log.error(
      `rebalance start ${recordId} refused ${this.settings.maxStartAttempts} times; left failed to the cleaner: ${error}`,
    )
    await markRecordFailed(
      ctx,
      recordId,
      error,
      // the cleaner's next run (its first retry step at the soonest) tries again
      () => Math.floor(Date.now() / 1000),
      `rebalance record ${recordId}: could not mark it failed`,
    )
  }

  /** Poll `rebalance status` until gluster reports the end (bounded by followMs). */
  private async follow(ctx: AppContext, volumeId: string): Promise<void> {
    const r = this.rebalances.get(volumeId)
    if (!r) return
    for (;;) {
      if (this.stopped) return
      if (r.phase !== 'started') return
      const startedAt = r.startedAt ?? Date.now()
      if (Date.now() - startedAt > this.settings.followMs) {
        ctx.log.warn(
          `rebalance of volume ${r.volume} still runs after ${Math.round((Date.now() - startedAt) / 1000)} s; no longer followed`,
        )
        r.phase = 'unfollowed'
        r.finishedAt = Date.now()
        this.unmark(ctx, r)
        return
      }
      await idle(this.settings.pollMs)
      if (r.phase !== 'started' || this.stopped) return
      const { volume, hosts } = ctx.store.read((tx) => {
        const v = tx.get('volume', volumeId)
        return { volume: v, hosts: v ? clusterHosts(ctx, tx, v.clusterId) : [] }
      })
      if (!volume) {
        this.finish(ctx, r, 'cancelled', 'the volume was deleted while it rebalanced')
        return
      }
      let status: RebalanceStatus
      try {
        status = await ctx.volumeLock.exclusive(volume.name, () =>
          onAnyHost(hosts, (h) => ctx.executor.rebalanceStatus(h, volume.name)),
        )
      } catch (err) {
        const error = (err as Error).message
        if (error !== r.lastError) ctx.log.warn(`rebalance status of volume ${volume.name}: ${error}`)
        r.lastError = error
        continue
      }
      if (r.phase !== 'started') return
      r.lastError = ''
      const changed = status.state !== r.gluster
      r.gluster = status.state
      r.files = status.files
      r.failures = status.failures
      if (changed)
        ctx.log.info(`rebalance of volume ${volume.name}: ${status.state}, ${status.files} files moved`)
      if (status.done) {
        const phase = status.failed ? 'failed' : /stopped/.test(status.state) ? 'stopped' : 'completed'
        this.finish(ctx, r, phase, status.failed ? `gluster reports the rebalance ${status.state}` : '')
        return
      }
    }
  }

  private finish(ctx: AppContext, r: RebalanceProgress, phase: RebalancePhase, reason: string): void {
    r.phase = phase
    r.finishedAt = Date.now()
    r.recordId = ''
    if (reason) r.lastError = reason
    const seconds = (((r.finishedAt ?? 0) - (r.startedAt ?? r.requestedAt)) / 1000).toFixed(1)
    const line = `rebalance of volume ${r.volume} ${phase} (${seconds} s${reason ? `: ${reason}` : ''})`
    if (phase === 'failed' || phase === 'cancelled') ctx.log.warn(line)
    else ctx.log.info(line)
    this.unmark(ctx, r)
  }

  /** The rebalance is no longer followed: the volume loses its `rebalanceStartedAt`. */
  private unmark(ctx: AppContext, r: RebalanceProgress): void {
    const marked = () =>
      ctx.store.read((tx) => tx.get('volume', r.volumeId)?.rebalanceStartedAt !== undefined)
    if (!marked()) return
    ctx.store
      .write((tx) => {
        const v = tx.get('volume', r.volumeId)
        if (v?.rebalanceStartedAt === undefined) return
        const { rebalanceStartedAt: _ended, ...rest } = v
        tx.put('volume', v.id, rest)
      })
      .catch((err: Error) => {
        // left marked: the next start-up asks gluster again and finds it over
        ctx.counters.journalWriteFailures++
        ctx.log.error(`rebalance of volume ${r.volume}: could not record its end: ${err.message}`)
      })
  }
}
