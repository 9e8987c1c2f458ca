// The operation framework. Every multi-step change is an Operation with
// explicit phases: build (one transaction: validate, reserve space, mark
// objects pending, write the journal record), exec (node commands),
// finalize (one transaction), and undo (node side, idempotent, able to run
// from the journal alone after a crash) + undoDb. The journal record is the
// pending-operation entry heketi's API exposes under /operations.

import type { OperationAction, OperationType, PendingOperationEntry } from '../../db/entries.ts'
import type { WriteTxn } from '../../db/store.ts'
import { UnsafeCommandArgumentError } from '../../executors/commands/validate.ts'
import type { AppContext, Job, JobResult } from '../context.ts'
import { newId } from '../ids.ts'
import { crashPoint } from './crash-points.ts'

export interface Operation {
  readonly id: string
  readonly type: OperationType
  /** Validate and reserve inside one transaction; returns the journal's actions and data. */
  build(tx: WriteTxn): { actions: OperationAction[]; data: Record<string, unknown> }
  exec(): Promise<void>
  finalize(tx: WriteTxn): JobResult
  /** Undo what exec did on the nodes. Idempotent; reads what it needs from the store. */
  undo(): Promise<void>
  /** Undo what build wrote. */
  undoDb(tx: WriteTxn): void
  /**
   * How a stale record of this type is cleaned: 'rollback' runs undo + undoDb,
   * 'rollforward' runs exec + finalize (a delete that lost its process is finished).
   */
  readonly cleanMode: 'rollback' | 'rollforward'
  /** Custom crash clean-up (decides itself between finishing and undoing); overrides cleanMode. */
  clean?(): Promise<void>
  /** extra build attempts after a failed exec was undone (volume create) */
  readonly retries?: number
}

function journalEntry(op: Operation, built: ReturnType<Operation['build']>): PendingOperationEntry {
  return {
    id: op.id,
    timestamp: Math.floor(Date.now() / 1000),
    type: op.type,
    actions: built.actions,
    status: '',
    doneSteps: [],
    data: built.data,
  }
}

export function newOperationId(): string {
  return newId()
}

/**
 * Synchronous part: take a throttle slot (429 when busy) and build. Any
 * error comes back on the HTTP request and leaves nothing behind.
 */
export async function startOperation(
  ctx: AppContext,
  op: Operation,
  opts: { throttled?: boolean } = {},
): Promise<Job> {
  const release = opts.throttled === false ? () => {} : ctx.throttle.acquire()
  try {
    await ctx.store.write((tx) => {
      const built = op.build(tx)
      tx.put('pendingop', op.id, journalEntry(op, built))
    })
  } catch (err) {
    release()
    throw err
  }
  crashPoint('journal', op.type)
  ctx.running.add(op.id)
  const job = async () => {
    try {
      return await execute(ctx, op)
    } finally {
      ctx.running.delete(op.id)
      release()
    }
  }
  return Object.assign(job, { operationId: op.id })
}

async function execute(ctx: AppContext, op: Operation): Promise<JobResult> {
  const attempts = 1 + (op.retries ?? 0)
  for (let attempt = 1; ; attempt++) {
    try {
      await op.exec()
      const result = await ctx.store.write((tx) => {
        const result = op.finalize(tx)
        tx.del('pendingop', op.id)
        return result
      })
      crashPoint('result', op.type)
      return result
    } catch (err) {
      ctx.log.warn(`operation ${op.type} ${op.id} failed (attempt ${attempt}): ${(err as Error).message}`)
      const undone = await rollback(ctx, op)
      // a value the command builders refuse is refused again on any placement
      if (!undone || attempt >= attempts || err instanceof UnsafeCommandArgumentError) throw err
      // retry with a fresh placement under the same journal id
      try {
        await ctx.store.write((tx) => {
          const built = op.build(tx)
          tx.put('pendingop', op.id, journalEntry(op, built))
        })
      } catch (buildErr) {
        ctx.log.warn(
          `operation ${op.type} ${op.id}: no new placement for a retry: ${(buildErr as Error).message}`,
        )
        throw err
      }
    }
  }
}

/**
 * Undo on the nodes then in the DB, and drop the record: only when both
 * succeeded are nodes and DB known to agree. Otherwise the record stays,
 * marked `failed` with the reason, for the cleaner.
 */
export async function rollback(ctx: AppContext, op: Operation): Promise<boolean> {
  try {
    await op.undo()
    await ctx.store.write((tx) => {
      op.undoDb(tx)
      tx.del('pendingop', op.id)
    })
    return true
  } catch (undoErr) {
    const reason = (undoErr as Error).message
    ctx.log.error(`rollback of ${op.type} ${op.id} failed, left for the cleaner: ${reason}`)
    await markFailed(ctx, op.id, reason)
    return false
  }
}

/**
 * Mark a record `failed` with the reason. If even that write fails the
 * record keeps its old status (the cleaner's stale marking still finds it);
 * the failure is logged and counted, never dropped.
 */
export async function markFailed(ctx: AppContext, id: string, reason: string): Promise<void> {
  try {
    await ctx.store.write((tx) => {
      const entry = tx.get('pendingop', id)
      if (entry) tx.put('pendingop', id, { ...entry, status: 'failed', lastError: reason })
    })
  } catch (err) {
    ctx.counters.journalWriteFailures++
    ctx.log.error(`operation ${id}: could not mark its record failed: ${(err as Error).message}`)
  }
}
