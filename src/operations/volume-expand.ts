// Volume expand: place new brick sets for the added size, create them,
// add-brick, then grow the recorded size and journal the rebalance start
// (run and followed by src/rebalance.ts after the expand answered).
import type { ReadTxn, WriteTxn } from '../../db/store.ts'
import type { AppContext, JobResult } from '../context.ts'
import { Errors } from '../errors.ts'
import { PlacementError } from '../placement/errors.ts'
import { requestRebalance } from '../rebalance.ts'
import {
  brickRequest,
  createBricks,
  destroyBricks,
  onAnyHost,
  releaseBrick,
  reserveBricks,
  undoHosts,
  volumeBrick,
} from './bricks.ts'
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
    // gluster refuses add-brick while the volume rebalances, or while its lock is held
    await this.ctx.rebalance.whenNotRebalancing(this.ctx, this.volumeId, volumeRequest.name, () =>
      this.ctx.executor.volumeExpand(volumeRequest),
    )
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
    if (this.ctx.executor.rebalanceOnExpansion) requestRebalance(tx, next, this.id)
    return { kind: 'volume', id: volume.id }
  }

  /** How many of the new bricks gluster already serves in the volume. */
  private async bricksInGluster(): Promise<{ served: number; total: number }> {
    const { hosts, name, names } = this.ctx.store.read((tx) => {
      const volume = tx.get('volume', this.volumeId)!
      return {
        hosts: undoHosts(this.ctx, tx, volume.clusterId),
        name: volume.name,
        names: this.newBricks(tx).map((b) => {
          const v = volumeBrick(tx, b)
          return `${v.storageHost}:${v.path}`
        }),
      }
    })
    const info = await onAnyHost(hosts, (h) => this.ctx.executor.volumeInfo(h, name))
    const listed = new Set(info.bricks.map((b) => b.name))
    return { served: names.filter((n) => listed.has(n)).length, total: names.length }
  }

  /**
   * Destroy the new bricks, unless gluster already uses them (add-brick went
   * through before the failure): their mounts are busy and the data they may
   * hold belongs to the volume, so going back is refused and the cleaner
   * finishes the expand instead.
   */
  async undo(): Promise<void> {
    const { served } = await this.bricksInGluster()
    if (served > 0) throw new Error(`volume ${this.volumeId} already serves ${served} of the new bricks`)
    const requests = this.ctx.store.read((tx) => this.newBricks(tx).map((b) => brickRequest(tx, b, 0)))
    await destroyBricks(this.ctx, requests)
  }

  /** After a crash: finish when gluster serves every new brick, undo when it serves none. */
  async clean(): Promise<void> {
    const { served, total } = await this.bricksInGluster()
    if (served > 0 && served < total) {
      throw new Error(`volume ${this.volumeId} serves ${served} of ${total} new bricks: needs an operator`)
    }
    if (served === total && total > 0) {
      await this.ctx.store.write((tx) => {
        this.finalize(tx)
        tx.del('pendingop', this.id)
      })
      this.ctx.rebalance.resume(this.ctx)
      return
    }
    await this.undo()
    await this.ctx.store.write((tx) => {
      this.undoDb(tx)
      tx.del('pendingop', this.id)
    })
  }

  undoDb(tx: WriteTxn): void {
    for (const b of this.newBricks(tx)) releaseBrick(tx, b.id, true)
  }
}
