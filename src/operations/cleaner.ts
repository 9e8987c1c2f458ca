// Crash recovery. At start every journal record becomes `stale` (nothing
// survives a restart as running); the cleaner then undoes (or, for deletes,
// finishes) each stale or failed record, on the nodes and in the DB. A record
// whose clean-up fails stays `failed`, with the reason, and is retried with
// backoff (30 s, 60 s, ... up to the cleaner's refresh interval).

import type { PendingOperationEntry } from '../../db/entries.ts'
import type { AppContext, CleanOutcome } from '../context.ts'
import { Errors } from '../errors.ts'
import { operationFromJournal } from './journal.ts'

/** first retry of a failed clean-up, doubled per failed attempt */
export const CLEAN_RETRY_BASE_SEC = 30

const nowSec = () => Math.floor(Date.now() / 1000)

/**
 * Every record becomes stale: at start, and when a replica takes the lead
 * (work of its earlier term, if still unwinding here, can no longer write or
 * send node commands; the cleaner skips it until it has ended).
 */
export async function markAllStale(ctx: AppContext): Promise<number> {
  return markStaleInChunks(ctx, (op) => op.status !== 'stale')
}

/** Records that are new, older than `ageSec` and not running here become stale. */
export async function markAbandonedStale(ctx: AppContext, ageSec = 60): Promise<void> {
  const now = nowSec()
  await markStaleInChunks(
    ctx,
    (op) => op.status === '' && now - op.timestamp >= ageSec && !ctx.running.has(op.id),
  )
}

/**
 * Mark every matching journal record stale, in as many writes as the store's
 * per-write limit needs (etcd: --max-txn-ops). Marking is idempotent, so a
 * crash between chunks leaves records the next pass marks; each chunk is
 * atomic. Bounded: every pass but the last marks a full chunk.
 */
async function markStaleInChunks(
  ctx: AppContext,
  matches: (op: PendingOperationEntry) => boolean,
): Promise<number> {
  const chunk = ctx.store.maxChangesPerWrite ?? Number.POSITIVE_INFINITY
  let total = 0
  for (;;) {
    const marked = await ctx.store.write((tx) => {
      let n = 0
      for (const op of tx.values('pendingop')) {
        if (n >= chunk) break
        if (matches(op)) {
          tx.put('pendingop', op.id, { ...op, status: 'stale' })
          n++
        }
      }
      return n
    })
    total += marked
    if (marked < chunk) return total
  }
}

export interface CleanReport {
  cleaned: string[]
  failed: { id: string; type: string; error: string }[]
  /** not tried: no background slot was free */
  skipped: { id: string; type: string }[]
}

/** One line per operation that is still pending after a clean-up run. */
export function notCleanedLines(report: CleanReport): string[] {
  return [
    ...report.failed.map((f) => `${f.id} (${f.type}): ${f.error}`),
    ...report.skipped.map((s) => `${s.id} (${s.type}): not tried, server busy; retried later`),
  ]
}

/** Throws heqet's "Unable to clean" error naming every operation the run could not clean. */
export function throwIfNotCleaned(report: CleanReport): void {
  const lines = notCleanedLines(report)
  if (lines.length > 0) throw Errors.operationsNotCleaned(lines)
}

export function retryDelaySec(attempts: number, capSec: number): number {
  return Math.min(capSec, CLEAN_RETRY_BASE_SEC * 2 ** Math.min(20, Math.max(0, attempts - 1)))
}

/**
 * Clean stale/failed records (all, or only `ids`), one at a time, each
 * holding the background slot. `background` runs leave records alone until
 * their retry time; an explicit request tries them all.
 */
export async function cleanOperations(
  ctx: AppContext,
  ids?: string[],
  opts: { background?: boolean } = {},
): Promise<CleanReport> {
  const report: CleanReport = { cleaned: [], failed: [], skipped: [] }
  const now = nowSec()
  const candidates = ctx.store.read((tx) =>
    tx
      .values('pendingop')
      .filter((op) => (op.status === 'stale' || op.status === 'failed') && !ctx.running.has(op.id))
      .filter((op) => !ids || ids.length === 0 || ids.includes(op.id))
      .filter((op) => !opts.background || (op.retryAt ?? 0) <= now),
  )
  for (const entry of candidates) {
    const release = ctx.throttle.tryAcquireBackground()
    if (!release) {
      report.skipped.push({ id: entry.id, type: entry.type })
      continue
    }
    try {
      const outcome = await cleanOne(ctx, entry)
      report.cleaned.push(entry.id)
      ctx.onOperationCleaned?.(entry.id, outcome)
    } catch (err) {
      const error = (err as Error).message
      ctx.log.warn(`clean-up of ${entry.type} ${entry.id} failed, will retry: ${error}`)
      report.failed.push({ id: entry.id, type: entry.type, error })
      await recordCleanFailure(ctx, entry.id, error)
      ctx.onOperationCleaned?.(entry.id, {
        finished: false,
        error: `operation ${entry.type} ${entry.id} was interrupted and its clean-up failed: ${error}`,
      })
    } finally {
      release()
    }
  }
  if (report.failed.length + report.skipped.length > 0) {
    ctx.log.warn(`clean-up left ${report.failed.length} failed, ${report.skipped.length} skipped`)
  }
  return report
}

/** The record stays `failed` with the reason and its next retry time. */
function recordCleanFailure(ctx: AppContext, id: string, error: string): Promise<void> {
  return markRecordFailed(
    ctx,
    id,
    error,
    (attempts) => nowSec() + retryDelaySec(attempts, ctx.config.cleanerRefreshSec),
    `operation ${id}: could not record its failed clean-up`,
  )
}

/**
 * Leave journal record `id` `failed` for the cleaner: its error, one more
 * attempt counted, and when it may be tried again (`retryAt(attempts)`, s
 * since epoch). A refused write is counted (`heqet_journal_write_failures`)
 * and logged with `what`; the record then stays as it was.
 */
export async function markRecordFailed(
  ctx: AppContext,
  id: string,
  error: string,
  retryAt: (attempts: number) => number,
  what: string,
): Promise<void> {
  try {
    await ctx.store.write((tx) => {
      const entry = tx.get('pendingop', id)
      if (!entry) return
      const attempts = (entry.cleanAttempts ?? 0) + 1
      tx.put('pendingop', id, {
        ...entry,
        status: 'failed',
        lastError: error,
        cleanAttempts: attempts,
        retryAt: retryAt(attempts),
      })
    })
  } catch (err) {
    ctx.counters.journalWriteFailures++
    ctx.log.error(`${what}: ${(err as Error).message}`)
  }
}

async function cleanOne(ctx: AppContext, entry: PendingOperationEntry): Promise<CleanOutcome> {
  const op = operationFromJournal(ctx, entry)
  if (!op) throw new Error(`operations of type ${entry.type} cannot be cleaned automatically`)
  ctx.running.add(op.id)
  try {
    let outcome: CleanOutcome
    if (op.clean) {
      await op.clean()
      outcome = { finished: true, result: undefined }
    } else if (op.cleanMode === 'rollforward') {
      await op.exec()
      const result = await ctx.store.write((tx) => {
        const result = op.finalize(tx)
        tx.del('pendingop', op.id)
        return result
      })
      outcome = { finished: true, result }
    } else {
      await op.undo()
      await ctx.store.write((tx) => {
        op.undoDb(tx)
        tx.del('pendingop', op.id)
      })
      outcome = {
        finished: false,
        error: `operation ${entry.type} ${entry.id} was interrupted and has been undone by the cleaner`,
      }
    }
    ctx.log.info(`cleaned up ${entry.type} operation ${entry.id}`)
    return outcome
  } finally {
    ctx.running.delete(op.id)
  }
}

/**
 * Seconds until the next background run: the refresh interval, or sooner
 * for a retry that falls due - but never sooner than the first retry step,
 * so a record skipped for want of a slot does not spin the cleaner.
 */
export function nextCleanDelaySec(ctx: AppContext): number {
  const now = nowSec()
  const due = ctx.store.read((tx) =>
    tx
      .values('pendingop')
      .filter((op) => op.status === 'failed' && op.retryAt !== undefined)
      .map((op) => op.retryAt! - now),
  )
  return Math.min(ctx.config.cleanerRefreshSec, Math.max(CLEAN_RETRY_BASE_SEC, Math.min(...due)))
}

/**
 * The background cleaner: first run after startSec (plus `extraStartSec`),
 * then every refreshSec (sooner for retries).
 */
export function startCleaner(ctx: AppContext, extraStartSec = 0): () => void {
  const cleanerStartSec = ctx.config.cleanerStartSec + extraStartSec
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const tick = async (first: boolean) => {
    let delaySec = ctx.config.cleanerRefreshSec
    try {
      if (!first) await markAbandonedStale(ctx)
      await cleanOperations(ctx, undefined, { background: true })
      delaySec = nextCleanDelaySec(ctx)
    } catch (err) {
      ctx.log.error(`background cleaner: ${(err as Error).message}`)
    }
    if (!stopped) timer = setTimeout(() => tick(false), delaySec * 1000)
  }
  timer = setTimeout(() => tick(true), cleanerStartSec * 1000)
  return () => {
    stopped = true
    if (timer) clearTimeout(timer)
  }
}
