// Volume expand: place new brick sets for the added size, create them,
// add-brick (+ rebalance), then grow the recorded size.
import type { ReadTxn, WriteTxn } from '../../db/store.ts'
import type { AppContext, JobResult } from '../context.ts'
import { Errors } from '../errors.ts'
import { PlacementError } from '../placement/errors.ts'
import { brickRequest, createBricks, destroyBricks, releaseBrick, reserveBricks } from './bricks.ts'
import type { Operation } from './operation.ts'
import { allocationFor, brickWork } from './volume-create.ts'

export class VolumeExpandOperation implements Operation {
  readonly type = 'expand-volume' as const
  readonly cleanMode = 'rollback' as const

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly volumeId: string,
    private readonly addGiB: number,
  ) {}

  build(tx: WriteTxn) {
    const volume = tx.get('volume', this.volumeId)
    if (!volume || volume.pendingId) throw Errors.notFound()
    let placed: ReturnType<typeof allocationFor>
    try {
      placed = allocationFor(this.ctx, volume, volume.clusterId, this.addGiB * 1048576, volume.bricks.length)
    } catch (err) {
      if (err instanceof PlacementError) throw Errors.allocateExpansion(err.message)
      throw err
    }
    const order = placed.sets.flat()
    const bricks = reserveBricks(tx, order, volume.id, this.id)
    tx.put('volume', volume.id, { ...volume, bricks: [...volume.bricks, ...bricks.map((b) => b.id)].sort() })
    return {
      actions: [
        { change: 'expand-volume' as const, id: volume.id, delta: this.addGiB },
        ...bricks.map((b) => ({ change: 'add-brick' as const, id: b.id })),
      ],
      data: { volumeId: volume.id, glusterOrder: order.map((p) => p.brickId) },
    }
  }

  private newBricks(tx: ReadTxn) {
    const volume = tx.get('volume', this.volumeId)
    const order =
      (tx.get('pendingop', this.id)?.data['glusterOrder'] as string[] | undefined) ?? volume?.bricks ?? []
    return order
      .map((id) => tx.get('brick', id))
      .filter((b) => b && b.pendingId === this.id)
      .map((b) => b!)
  }

  async exec(): Promise<void> {
    const { requests, volumeRequest } = this.ctx.store.read((tx) =>
      brickWork(tx, tx.get('volume', this.volumeId)!, this.newBricks(tx), []),
    )
    await createBricks(this.ctx, requests)
    await this.ctx.executor.volumeExpand(volumeRequest)
  }

  finalize(tx: WriteTxn): JobResult {
    const volume = tx.get('volume', this.volumeId)!
    for (const b of this.newBricks(tx)) tx.put('brick', b.id, { ...b, pendingId: '' })
    const next = { ...volume, sizeGiB: volume.sizeGiB + this.addGiB }
    if (volume.block) {
      const free = Math.floor((this.addGiB * 98) / 100)
      next.blockInfo = {
        ...volume.blockInfo,
        freeSizeGiB: volume.blockInfo.freeSizeGiB + free,
        reservedSizeGiB: volume.blockInfo.reservedSizeGiB + this.addGiB - free,
      }
    }
    tx.put('volume', volume.id, next)
    return { kind: 'volume', id: volume.id }
  }

  async undo(): Promise<void> {
    const requests = this.ctx.store.read((tx) => this.newBricks(tx).map((b) => brickRequest(tx, b, 0)))
    await destroyBricks(this.ctx, requests)
  }

  undoDb(tx: WriteTxn): void {
    for (const b of this.newBricks(tx)) releaseBrick(tx, b.id, true)
  }
}
