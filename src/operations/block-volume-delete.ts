// Block volume delete (heketi allocation §11.3): gluster-block delete on one
// live host ("does not exist" counts as done), then the size goes back to
// the hosting volume. The hosting volume stays, even when it becomes empty.
// A delete that may have gone through is finished by the cleaner, never
// undone into a block volume the nodes no longer have.
import type { BlockVolumeEntry } from '../../db/entries.ts'
import type { WriteTxn } from '../../db/store.ts'
import type { AppContext, JobResult } from '../context.ts'
import { without } from '../context.ts'
import { Errors } from '../errors.ts'
import { clusterHosts, onAnyHost, undoHosts } from './bricks.ts'
import type { Operation } from './operation.ts'

export interface BlockTarget {
  blockVolumeId: string
  blockVolumeName: string
  hostingVolumeId: string
  hostingVolumeName: string
}

/** The block volume and its hosting volume's gluster name, for the journal. */
export function blockTarget(tx: WriteTxn, blockVolumeId: string): BlockTarget {
  const bv = tx.get('blockvolume', blockVolumeId)
  if (!bv) throw Errors.notFound()
  return {
    blockVolumeId: bv.id,
    blockVolumeName: bv.name,
    hostingVolumeId: bv.blockHostingVolume,
    hostingVolumeName: tx.get('volume', bv.blockHostingVolume)?.name ?? '',
  }
}

export class BlockVolumeDeleteOperation implements Operation {
  readonly type = 'delete-block-volume' as const
  readonly cleanMode = 'rollforward' as const
  private target?: BlockTarget
  private deleteTried = false

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly blockVolumeId: string,
    journal?: BlockTarget,
  ) {
    this.target = journal
  }

  build(tx: WriteTxn) {
    this.target = blockTarget(tx, this.blockVolumeId)
    const bv = tx.get('blockvolume', this.blockVolumeId)!
    if (bv.pendingId) throw Errors.blockVolumeDeleteInUse()
    tx.put('blockvolume', bv.id, { ...bv, pendingId: this.id })
    return { actions: [{ change: 'delete-block-volume' as const, id: bv.id }], data: { ...this.target } }
  }

  private hosts(all: boolean): string[] {
    return blockVolumeHosts(this.ctx, this.blockVolumeId, all)
  }

  async exec(): Promise<void> {
    const t = this.target!
    await onAnyHost(this.hosts(false), (h) => {
      this.deleteTried = true
      return this.ctx.executor.blockVolumeDelete(h, t.hostingVolumeName, t.blockVolumeName)
    })
  }

  finalize(tx: WriteTxn): JobResult {
    const bv = tx.get('blockvolume', this.blockVolumeId)
    if (!bv) return undefined
    dropBlockVolume(tx, bv)
    return undefined
  }

  /**
   * Going back is right only while gluster-block still has the block volume;
   * when it is gone, or nobody can tell, the record stays (failed) and the
   * cleaner finishes the delete.
   */
  async undo(): Promise<void> {
    if (!this.deleteTried) return
    const t = this.target!
    let info: Awaited<ReturnType<AppContext['executor']['blockVolumeInfo']>>
    try {
      info = await onAnyHost(this.hosts(true), (h) =>
        this.ctx.executor.blockVolumeInfo(h, t.hostingVolumeName, t.blockVolumeName),
      )
    } catch (err) {
      throw new Error(
        `cannot tell whether block volume ${t.blockVolumeName} survived the failed delete (${(err as Error).message}); finishing is left to the cleaner`,
      )
    }
    if (!info)
      throw new Error(
        `block volume ${t.blockVolumeName} already deleted on the nodes; finishing is left to the cleaner`,
      )
  }

  undoDb(tx: WriteTxn): void {
    const bv = tx.get('blockvolume', this.blockVolumeId)
    if (bv?.pendingId === this.id) tx.put('blockvolume', bv.id, { ...bv, pendingId: '' })
  }
}

/** Take a block volume out of the DB: its record, its cluster's list, its hosting volume's room. */
export function dropBlockVolume(tx: WriteTxn, bv: BlockVolumeEntry): void {
  const cluster = tx.get('cluster', bv.clusterId)
  if (cluster)
    tx.put('cluster', cluster.id, { ...cluster, blockVolumes: without(cluster.blockVolumes, bv.id) })
  const hv = tx.get('volume', bv.blockHostingVolume)
  if (hv?.blockInfo.blockVolumes.includes(bv.id)) {
    tx.put('volume', hv.id, {
      ...hv,
      blockInfo: {
        ...hv.blockInfo,
        freeSizeGiB: hv.blockInfo.freeSizeGiB + bv.sizeGiB,
        blockVolumes: without(hv.blockInfo.blockVolumes, bv.id),
      },
    })
  }
  tx.del('blockvolume', bv.id)
}

/** Hosts to run a block volume's gluster-block command on: the cluster's, or (all) every host an undo may try. */
export function blockVolumeHosts(ctx: AppContext, blockVolumeId: string, all: boolean): string[] {
  return ctx.store.read((tx) => {
    const clusterId = tx.get('blockvolume', blockVolumeId)?.clusterId ?? ''
    return all ? undoHosts(ctx, tx, clusterId) : clusterHosts(ctx, tx, clusterId)
  })
}
