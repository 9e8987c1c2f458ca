// The journal side of a pending `rebalance start` (src/rebalance.ts): a
// record written by the expand's finalize, never built through
// startOperation. The tracker runs it; the cleaner only meets records the
// tracker left `failed` after its retries, and tries one start through it.
import type { WriteTxn } from '../../db/store.ts'
import type { AppContext, JobResult } from '../context.ts'
import { REBALANCE_OPERATION } from '../rebalance.ts'
import type { Operation } from './operation.ts'

export class VolumeRebalanceOperation implements Operation {
  readonly type = REBALANCE_OPERATION
  readonly cleanMode = 'rollforward' as const

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
  ) {}

  build(): never {
    throw new Error('a rebalance record is written by the expand that needs it')
  }

  async exec(): Promise<void> {
    await this.ctx.rebalance.startNow(this.ctx, this.id)
  }

  finalize(_tx: WriteTxn): JobResult {
    return undefined
  }

  /** nothing to undo: the bricks are in the volume; only the start is owed */
  async undo(): Promise<void> {}

  undoDb(_tx: WriteTxn): void {}

  /** one start now: the record goes once gluster accepted it; throws when refused */
  async clean(): Promise<void> {
    await this.ctx.rebalance.startNow(this.ctx, this.id)
  }
}
