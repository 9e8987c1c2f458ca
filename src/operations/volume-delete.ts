// Volume delete: stop and delete the gluster volume, destroy the bricks,
// give the space back. Once the gluster volume is gone there is no way
// back, so a failure after that point is finished by the cleaner
// (roll forward) instead of resurrecting a volume without data.
import type { WriteTxn } from '../../db/store.ts'
import type { AppContext, JobResult } from '../context.ts'
import { without } from '../context.ts'
import { Errors } from '../errors.ts'
import { dropRebalanceRecord } from '../rebalance.ts'
import { brickRequest, clusterHosts, destroyBricks, onAnyHost, releaseBrick, undoHosts } from './bricks.ts'
import type { Operation } from './operation.ts'

/** `status` of a started volume in gluster's volume info */
const GLUSTER_VOLUME_STARTED = 1

export class VolumeDeleteOperation implements Operation {
  readonly type = 'delete-volume' as const
  readonly cleanMode = 'rollforward' as const
  private reclaimed = new Set<string>()
  private glusterVolumeGone = false
  /** `volume stop`/`delete` ran (and failed): what they left is not known */
  private destroyTried = false

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly volumeId: string,
  ) {}

  build(tx: WriteTxn) {
    const volume = tx.get('volume', this.volumeId)
    if (!volume) throw Errors.notFound()
    const bricks = volume.bricks.map((id) => tx.get('brick', id))
    if (volume.pendingId || bricks.some((b) => b?.pendingId)) throw Errors.volumeDeleteInUse()
    tx.put('volume', volume.id, { ...volume, pendingId: this.id })
    for (const b of bricks) if (b) tx.put('brick', b.id, { ...b, pendingId: this.id })
    return {
      actions: [
        { change: 'delete-volume' as const, id: volume.id },
        ...volume.bricks.map((id) => ({ change: 'delete-brick' as const, id })),
      ],
      data: { volumeId: volume.id },
    }
  }

  async exec(): Promise<void> {
    const { hosts, name, requests } = this.ctx.store.read((tx) => {
      const volume = tx.get('volume', this.volumeId)!
      return {
        hosts: clusterHosts(this.ctx, tx, volume.clusterId),
        name: volume.name,
        requests: volume.bricks.flatMap((id) => {
          const b = tx.get('brick', id)
          return b ? [brickRequest(tx, b, 0)] : []
        }),
      }
    })
    // after a rebalance start still in glusterd's hands; a running rebalance is stopped first
    const destroy = () =>
      onAnyHost(hosts, (h) => {
        this.destroyTried = true
        return this.ctx.executor.volumeDestroy(h, name)
      })
    await this.ctx.volumeLock.exclusive(name, async () => {
      await this.ctx.rebalance.beforeDelete(this.ctx, this.volumeId, hosts, name)
      try {
        await destroy()
      } catch (err) {
        // a rebalance this process did not follow (started before a restart) blocks the stop
        if (!(await this.ctx.rebalance.stopIfRunning(this.ctx, hosts, name))) throw err
        await destroy()
      }
    })
    this.glusterVolumeGone = true
    this.reclaimed = await destroyBricks(this.ctx, requests)
  }

  finalize(tx: WriteTxn): JobResult {
    const volume = tx.get('volume', this.volumeId)
    if (!volume) return undefined
    for (const id of volume.bricks) releaseBrick(tx, id, this.reclaimed.has(id))
    const cluster = tx.get('cluster', volume.clusterId)
    if (cluster) tx.put('cluster', cluster.id, { ...cluster, volumes: without(cluster.volumes, volume.id) })
    tx.del('volume', volume.id)
    const dropped = dropRebalanceRecord(tx, volume.id)
    if (dropped)
      this.ctx.log.warn(
        `volume ${volume.name} deleted before its rebalance started: record ${dropped} dropped`,
      )
    return undefined
  }

  /**
   * Going back is only right when gluster still serves the volume. Past the
   * point of no return (the volume deleted, or stopped by the failed
   * attempt), or when gluster cannot tell, refuse: the record stays
   * (failed) and the cleaner finishes the delete.
   */
  async undo(): Promise<void> {
    if (this.glusterVolumeGone)
      throw new Error('volume already deleted on the nodes; finishing is left to the cleaner')
    if (!this.destroyTried) return
    const { hosts, name } = this.ctx.store.read((tx) => {
      const volume = tx.get('volume', this.volumeId)
      return { hosts: volume ? undoHosts(this.ctx, tx, volume.clusterId) : [], name: volume?.name ?? '' }
    })
    let status: number
    try {
      status = (await onAnyHost(hosts, (h) => this.ctx.executor.volumeInfo(h, name))).status
    } catch (err) {
      throw new Error(
        `cannot tell whether volume ${name} survived the failed delete (${(err as Error).message}); finishing is left to the cleaner`,
      )
    }
    if (status !== GLUSTER_VOLUME_STARTED)
      throw new Error(`volume ${name} was stopped by the failed delete; finishing is left to the cleaner`)
  }

  undoDb(tx: WriteTxn): void {
    const volume = tx.get('volume', this.volumeId)
    if (!volume) return
    tx.put('volume', volume.id, { ...volume, pendingId: '' })
    for (const id of volume.bricks) {
      const b = tx.get('brick', id)
      if (b?.pendingId === this.id) tx.put('brick', id, { ...b, pendingId: '' })
    }
  }
}
