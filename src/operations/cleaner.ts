// Crash recovery. At start every journal record becomes `stale` (nothing
// survives a restart as running); the cleaner then undoes (or, for deletes,
// finishes) each stale or failed record, on the nodes and in the DB.

import type { PendingOperationEntry } from '../../db/entries.ts'
import type { AppContext } from '../context.ts'
import { operationFromJournal } from './journal.ts'

export async function markAllStale(ctx: AppContext): Promise<number> {
  return ctx.store.write((tx) => {
    let n = 0
    for (const op of tx.values('pendingop')) {
      if (op.status !== 'stale') {
        tx.put('pendingop', op.id, { ...op, status: 'stale' })
        n++
      }
    }
    return n
  })
}

/** Records that are new, older than `ageSec` and not running here become stale. */
export async function markAbandonedStale(ctx: AppContext, ageSec = 60): Promise<void> {
  const now = Math.floor(Date.now() / 1000)
  await ctx.store.write((tx) => {
    for (const op of tx.values('pendingop')) {
      if (op.status === '' && now - op.timestamp >= ageSec && !ctx.running.has(op.id)) {
        tx.put('pendingop', op.id, { ...op, status: 'stale' })
      }
    }
  })
}

export interface CleanReport {
  cleaned: string[]
  failed: { id: string; error: string }[]
  skipped: string[]
}

/** Clean stale/failed records (all, or only `ids`), one at a time, each holding the background slot. */
export async function cleanOperations(ctx: AppContext, ids?: string[]): Promise<CleanReport> {
  const report: CleanReport = { cleaned: [], failed: [], skipped: [] }
  const candidates = ctx.store.read((tx) =>
    tx
      .values('pendingop')
      .filter((op) => (op.status === 'stale' || op.status === 'failed') && !ctx.running.has(op.id))
      .filter((op) => !ids || ids.length === 0 || ids.includes(op.id)),
  )
  for (const entry of candidates) {
    const release = ctx.throttle.tryAcquireBackground()
    if (!release) {
      report.skipped.push(entry.id)
      continue
    }
    try {
      await cleanOne(ctx, entry)
      report.cleaned.push(entry.id)
    } catch (err) {
      ctx.log.warn(`clean-up of ${entry.type} ${entry.id} failed, will retry: ${(err as Error).message}`)
      report.failed.push({ id: entry.id, error: (err as Error).message })
    } finally {
      release()
    }
  }
  return report
}

async function cleanOne(ctx: AppContext, entry: PendingOperationEntry): Promise<void> {
  const op = operationFromJournal(ctx, entry)
  if (!op) throw new Error(`operations of type ${entry.type} cannot be cleaned automatically`)
  ctx.running.add(op.id)
  try {
    if (op.clean) {
      await op.clean()
    } else if (op.cleanMode === 'rollforward') {
      await op.exec()
      await ctx.store.write((tx) => {
        op.finalize(tx)
        tx.del('pendingop', op.id)
      })
    } else {
      await op.undo()
      await ctx.store.write((tx) => {
        op.undoDb(tx)
        tx.del('pendingop', op.id)
      })
    }
    ctx.log.info(`cleaned up ${entry.type} operation ${entry.id}`)
  } finally {
    ctx.running.delete(op.id)
  }
}

/** The background cleaner: first run after startSec, then every refreshSec. */
export function startCleaner(ctx: AppContext): () => void {
  const { cleanerStartSec, cleanerRefreshSec } = ctx.config
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const tick = async (first: boolean) => {
    try {
      if (!first) await markAbandonedStale(ctx)
      await cleanOperations(ctx)
    } catch (err) {
      ctx.log.error(`background cleaner: ${(err as Error).message}`)
    }
    if (!stopped) timer = setTimeout(() => tick(false), cleanerRefreshSec * 1000)
  }
  timer = setTimeout(() => tick(true), cleanerStartSec * 1000)
  return () => {
    stopped = true
    if (timer) clearTimeout(timer)
  }
}
