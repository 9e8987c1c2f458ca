// Block volume expand (heketi allocation §11.4): the added size is taken from
// the hosting volume's free size at build, gluster-block modify runs on one
// live host, and the block volume takes its new size at finalize. A failed
// or interrupted resize is settled from what `gluster-block info` reports.
import type { WriteTxn } from '../../db/store.ts'
import type { AppContext, JobResult } from '../context.ts'
import { BlockTexts, Errors } from '../errors.ts'
import { type BlockTarget, blockTarget, blockVolumeHosts } from './block-volume-delete.ts'
import { onAnyHost } from './bricks.ts'
import type { Operation } from './operation.ts'

export interface BlockExpandData extends BlockTarget {
  oldSizeGiB: number
}

export class BlockVolumeExpandOperation implements Operation {
  readonly type = 'expand-block-volume' as const
  readonly cleanMode = 'rollback' as const
  private target?: BlockExpandData
  private modifyTried = false

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly blockVolumeId: string,
    private readonly newSizeGiB: number,
    journal?: BlockExpandData,
  ) {
    this.target = journal
  }

  build(tx: WriteTxn) {
    const target = blockTarget(tx, this.blockVolumeId)
    const bv = tx.get('blockvolume', this.blockVolumeId)!
    const hv = tx.get('volume', bv.blockHostingVolume)
    const refuse = (reason: string) => Errors.allocateBlockExpansion(reason)
    if (bv.pendingId || !hv || hv.pendingId) throw refuse(BlockTexts.inUse)
    const usable = bv.usableSizeGiB || bv.sizeGiB
    if (this.newSizeGiB < bv.sizeGiB) throw refuse(BlockTexts.shrink(this.newSizeGiB, bv.sizeGiB))
    // the same size again only re-runs a resize that did not reach every host
    if (this.newSizeGiB === bv.sizeGiB && usable === bv.sizeGiB)
      throw refuse(BlockTexts.sameSize(this.newSizeGiB, bv.sizeGiB))
    const delta = this.newSizeGiB - bv.sizeGiB
    if (hv.blockInfo.freeSizeGiB < delta) throw refuse(BlockTexts.noSpace)
    tx.put('volume', hv.id, {
      ...hv,
      blockInfo: { ...hv.blockInfo, freeSizeGiB: hv.blockInfo.freeSizeGiB - delta },
    })
    tx.put('blockvolume', bv.id, { ...bv, pendingId: this.id })
    this.target = { ...target, oldSizeGiB: bv.sizeGiB }
    return {
      actions: [{ change: 'expand-block-volume' as const, id: bv.id, delta: this.newSizeGiB }],
      data: { ...this.target },
    }
  }

  private hosts(all: boolean): string[] {
    return blockVolumeHosts(this.ctx, this.blockVolumeId, all)
  }

  async exec(): Promise<void> {
    const t = this.target!
    await onAnyHost(this.hosts(false), (h) => {
      this.modifyTried = true
      return this.ctx.executor.blockVolumeExpand(h, t.hostingVolumeName, t.blockVolumeName, this.newSizeGiB)
    })
  }

  finalize(tx: WriteTxn): JobResult {
    return this.settle(tx, this.newSizeGiB)
  }

  /** The new size stands: `usableGiB` is what every host can serve. */
  private settle(tx: WriteTxn, usableGiB: number): JobResult {
    const bv = tx.get('blockvolume', this.blockVolumeId)!
    tx.put('blockvolume', bv.id, {
      ...bv,
      sizeGiB: this.newSizeGiB,
      usableSizeGiB: usableGiB,
      pendingId: '',
    })
    return { kind: 'blockvolume', id: bv.id }
  }

  /** What gluster-block reports now; throws when no host can tell. */
  private async nodeInfo() {
    const t = this.target!
    try {
      return await onAnyHost(this.hosts(true), (h) =>
        this.ctx.executor.blockVolumeInfo(h, t.hostingVolumeName, t.blockVolumeName),
      )
    } catch (err) {
      throw new Error(
        `cannot tell the size of block volume ${t.blockVolumeName} after the resize (${(err as Error).message})`,
      )
    }
  }

  /**
   * Undo only while gluster-block still reports the old size: a resize that
   * reached the nodes cannot be taken back (no shrinking); the record stays
   * and the cleaner settles the size from `gluster-block info`.
   */
  async undo(): Promise<void> {
    if (!this.modifyTried) return
    const t = this.target!
    const info = await this.nodeInfo()
    if (!info) throw new Error(`block volume ${t.blockVolumeName} is gone from the nodes: needs an operator`)
    if (info.sizeGiB !== t.oldSizeGiB)
      throw new Error(
        `block volume ${t.blockVolumeName} reports ${info.sizeGiB} GiB after the failed resize; the cleaner settles its size`,
      )
  }

  undoDb(tx: WriteTxn): void {
    const t = this.target!
    const bv = tx.get('blockvolume', this.blockVolumeId)
    if (!bv || bv.pendingId !== this.id) return
    const hv = tx.get('volume', bv.blockHostingVolume)
    if (hv) {
      const delta = this.newSizeGiB - t.oldSizeGiB
      tx.put('volume', hv.id, {
        ...hv,
        blockInfo: { ...hv.blockInfo, freeSizeGiB: hv.blockInfo.freeSizeGiB + delta },
      })
    }
    tx.put('blockvolume', bv.id, { ...bv, pendingId: '' })
  }

  /**
   * After a crash: a size other than the requested one gives the delta back;
   * the requested size stands, usable as far as `RESIZE FAILED ON` allows.
   */
  async clean(): Promise<void> {
    const t = this.target!
    const info = await this.nodeInfo()
    if (!info) throw new Error(`block volume ${t.blockVolumeName} is gone from the nodes: needs an operator`)
    await this.ctx.store.write((tx) => {
      if (info.sizeGiB !== this.newSizeGiB) this.undoDb(tx)
      else this.settle(tx, info.usableSizeGiB)
      tx.del('pendingop', this.id)
    })
  }
}
