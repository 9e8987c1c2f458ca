// Brick evict: move one brick of a volume to another device. Used by
// POST /bricks/to-evict/{id} and by device/node removal. The replacement is
// chosen after gluster told us which set the brick belongs to, then the new
// brick is created, swapped in with replace-brick, and the old one destroyed.

import type { BrickEntry } from '../../db/entries.ts'
import type { ReadTxn, WriteTxn } from '../../db/store.ts'
import type { BrickRequest, VolumeBrick } from '../../executors/executor.ts'
import type { AppContext, JobResult } from '../context.ts'
import { insertSorted } from '../context.ts'
import { Errors, HeqetError } from '../errors.ts'
import { placeReplacementBrick } from '../placement/allocator.ts'
import { PlacementError } from '../placement/errors.ts'
import { bricksPerSet } from '../placement/geometry.ts'
import {
  brickRequest,
  clusterHosts,
  createBricks,
  destroyBricks,
  onAnyHost,
  releaseBrick,
  reserveBricks,
  volumeBrick,
} from './bricks.ts'
import type { Operation } from './operation.ts'
import { effectiveDurability } from './volume-create.ts'
import { heketiOptions } from './volume-options.ts'

const brickName = (b: VolumeBrick) => `${b.storageHost}:${b.path}`

export class BrickEvictOperation implements Operation {
  readonly type = 'evict-brick' as const
  readonly cleanMode = 'rollback' as const
  private oldReclaimed = false
  /** exec ran in this process (a record rebuilt by the cleaner has not) */
  private execStarted = false
  /** this process sent the replace-brick (whatever its answer) */
  private swapSent = false

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly brickId: string,
    private readonly healcheck: string,
  ) {}

  build(tx: WriteTxn) {
    const brick = tx.get('brick', this.brickId)
    if (!brick) throw Errors.notFound()
    if (brick.pendingId)
      throw Errors.internal(
        `Failed to set up brick eviction: Can not evict brick ${brick.id}: brick is pending`,
      )
    const volume = tx.get('volume', brick.volumeId)
    if (!volume) throw Errors.notFound()
    if (volume.bricks.some((id) => tx.get('brick', id)?.pendingId)) {
      throw Errors.internal(
        `Failed to set up brick eviction: Can not evict brick ${brick.id} from volume ${volume.id}: volume has pending bricks`,
      )
    }
    tx.put('brick', brick.id, { ...brick, pendingId: this.id })
    return {
      actions: [{ change: 'delete-brick' as const, id: brick.id }],
      data: { brickId: brick.id, volumeId: volume.id },
    }
  }

  private newBrick(tx: ReadTxn): BrickEntry | undefined {
    const entry = tx.get('pendingop', this.id)
    const id = entry?.actions.find((a) => a.change === 'add-brick')?.id
    return id ? tx.get('brick', id) : undefined
  }

  /** The set the brick belongs to, from gluster's brick order. */
  private async setMembers(host: string): Promise<BrickEntry[]> {
    const { volume, bricks } = this.ctx.store.read((tx) => {
      const old = tx.get('brick', this.brickId)!
      const volume = tx.get('volume', old.volumeId)!
      const bricks = volume.bricks
        .map((id) => tx.get('brick', id)!)
        .map((b) => ({ b, name: brickName(volumeBrick(tx, b)) }))
      return { volume, bricks }
    })
    const info = await this.ctx.executor.volumeInfo(host, volume.name)
    const setSize = bricksPerSet(effectiveDurability(volume))
    const old = bricks.find((x) => x.b.id === this.brickId)!
    const index = info.bricks.findIndex((g) => g.name === old.name)
    if (index < 0) throw Errors.notFound()
    const start = index - (index % setSize)
    return info.bricks.slice(start, start + setSize).map((g) => {
      const known = bricks.find((x) => x.name === g.name)
      if (!known) throw Errors.notFound()
      return known.b
    })
  }

  /**
   * heketi's heal checks, on fresh heal state: the brick must not be the
   * source of pending heal (beyond heketi: instead of refusing at once, the
   * replacement waits a bounded time for the heal a previous replacement
   * started, re-starting it), and enough peers of its set must be online.
   */
  private async checkHeal(host: string, members: BrickEntry[]): Promise<void> {
    if (this.healcheck === 'disable') return
    const { volume, names } = this.ctx.store.read((tx) => ({
      volume: tx.get('volume', members[0]!.volumeId)!,
      names: new Map(members.map((b) => [b.id, brickName(volumeBrick(tx, b))])),
    }))
    const heal = await this.ctx.heal.waitForSourceHealed(this.ctx, {
      opId: this.id,
      clusterId: volume.clusterId,
      volume: volume.name,
      brick: names.get(this.brickId)!,
      query: () => this.ctx.executor.healInfo(host, volume.name),
      refuse: (entries, waitedMs) =>
        new Error(
          `Cannot replace brick ${this.brickId} as it is source brick for data to be healed` +
            ` (${entries} entries still to heal after waiting ${Math.round(waitedMs / 1000)} s)`,
        ),
    })
    const d = effectiveDurability(volume)
    const quorum =
      d.type === 'replicate'
        ? d.replica < 3
          ? 1
          : Math.floor(d.replica / 2) + 1
        : d.type === 'disperse'
          ? d.data
          : 1
    const peers = members.filter((b) => b.id !== this.brickId)
    // heketi counts a peer listed in heal info as online; a peer listed by
    // name whose status is not "Connected" (e.g. "Transport endpoint is not
    // connected", entries "-") is down and must not count
    const online = peers.filter((b) =>
      heal.some((h) => h.name === names.get(b.id) && h.status === 'Connected'),
    ).length
    if (online < quorum) {
      throw new Error(
        `Cannot replace brick ${this.brickId} as only ${online} of ${quorum} required peer bricks are online`,
      )
    }
  }

  private async workingHost(): Promise<string> {
    const hosts = this.ctx.store.read((tx) => {
      const brick = tx.get('brick', this.brickId)!
      const own = tx.get('node', brick.nodeId)!
      const cluster = tx.get('cluster', own.clusterId)!
      const others = cluster.nodes
        .map((id) => tx.get('node', id)!)
        .filter((n) => n.state === 'online' && n.id !== own.id)
      return [own, ...others].map((n) => n.hostnames.manage[0]!)
    })
    for (const host of hosts) {
      try {
        await this.ctx.executor.glusterdCheck(host)
        return host
      } catch (err) {
        // the next host is tried; heketi's text below names none, so each one is logged
        this.ctx.log.warn(
          `brick evict ${this.brickId}: glusterd on ${host} not usable: ${(err as Error).message}`,
        )
      }
    }
    throw new Error(`no hosts available (${hosts.length} total)`)
  }

  async exec(): Promise<void> {
    this.execStarted = true
    const host = await this.workingHost()
    const members = await this.setMembers(host)
    await this.checkHeal(host, members)
    // placement now that the set is known; the new brick is journaled in the same transaction
    await this.ctx.store.write((tx) => {
      const old = tx.get('brick', this.brickId)!
      const volume = tx.get('volume', old.volumeId)!
      const opts = heketiOptions(volume.glusterVolumeOptions)
      let placed: ReturnType<typeof placeReplacementBrick>
      try {
        placed = placeReplacementBrick(this.ctx.placement, {
          clusterId: volume.clusterId,
          volumeId: volume.id,
          brickToReplace: {
            brickId: old.id,
            deviceId: old.deviceId,
            nodeId: old.nodeId,
            sizeKiB: old.sizeKiB,
            arbiter: old.subType === 'arbiter',
          },
          otherBricksOfSet: members.filter((b) => b.id !== old.id),
          snapshotFactor: volume.snapshot.enable ? volume.snapshot.factor : 1,
          arbiter: opts.arbiter,
          zoneChecking: opts.zoneChecking ?? this.ctx.config.zoneChecking,
          tagMatch: opts.tagMatch,
          isNodeUp: (id) => this.ctx.health.isUp(id),
        })
      } catch (err) {
        if (err instanceof PlacementError) throw Errors.noReplacement()
        throw err
      }
      const [created] = reserveBricks(tx, [placed], volume.id, this.id)
      tx.put('volume', volume.id, { ...volume, bricks: insertSorted(volume.bricks, created!.id) })
      const entry = tx.get('pendingop', this.id)!
      tx.put('pendingop', this.id, {
        ...entry,
        actions: [...entry.actions, { change: 'add-brick', id: created!.id }],
      })
    })
    const { oldReq, newReq, oldBrick, newBrick, volumeName, newHost, clusterId, heals, setSize } =
      this.ctx.store.read((tx) => {
        const old = tx.get('brick', this.brickId)!
        const fresh = this.newBrick(tx)!
        const volume = tx.get('volume', old.volumeId)!
        return {
          oldReq: brickRequest(tx, old, 0),
          newReq: brickRequest(tx, fresh, volume.gid),
          oldBrick: volumeBrick(tx, old),
          newBrick: volumeBrick(tx, fresh),
          volumeName: volume.name,
          clusterId: volume.clusterId,
          // a distribute-only volume has no copy to heal from (and gluster refuses `volume heal`)
          heals: effectiveDurability(volume).type !== 'none',
          setSize: bricksPerSet(effectiveDurability(volume)),
          newHost: brickRequest(tx, fresh, 0).host,
        }
      })
    await createBricks(this.ctx, [newReq])
    // the set may have changed while the brick was made: look again right before the swap
    await this.checkHeal(host, members)
    // after a rebalance start or status, a heal start … of the volume that glusterd still runs (src/volume-lock.ts)
    await this.ctx.volumeLock.exclusive(volumeName, async () => {
      this.swapSent = true
      await this.ctx.executor.replaceBrick(newHost, volumeName, oldBrick, newBrick).catch((err: Error) => {
        throw new HeqetError(
          500,
          `Unable to replace brick ${brickName(oldBrick)} with ${brickName(newBrick)} for volume ${volumeName}: ${err.message}`,
        )
      })
    })
    // beyond heketi: heal now rather than at the self-heal daemon's next crawl
    // (issue 15), while the old brick is destroyed (an unreachable old node is
    // expected when a node has died)
    const [, destroyed] = await Promise.allSettled([
      heals
        ? this.ctx.heal.afterReplace(this.ctx, clusterId, volumeName, { brick: brickName(newBrick), setSize })
        : undefined,
      this.destroyOld(oldReq),
    ])
    if (destroyed.status === 'rejected') throw destroyed.reason
  }

  finalize(tx: WriteTxn): JobResult {
    const fresh = this.newBrick(tx)
    if (fresh) tx.put('brick', fresh.id, { ...fresh, pendingId: '' })
    releaseBrick(tx, this.brickId, this.oldReclaimed)
    return undefined
  }

  /** After a crash: if gluster already uses the new brick, finish; otherwise undo. */
  async clean(): Promise<void> {
    const state = this.ctx.store.read((tx) => {
      const fresh = this.newBrick(tx)
      const old = tx.get('brick', this.brickId)
      const volume = old ? tx.get('volume', old.volumeId) : undefined
      return fresh && old && volume
        ? {
            host: brickRequest(tx, fresh, 0).host,
            name: volume.name,
            brick: volumeBrick(tx, fresh),
            oldReq: brickRequest(tx, old, 0),
          }
        : undefined
    })
    const replaced = state && (await this.glusterServes(state.host, state.name, state.brick))
    if (state && replaced) {
      await this.destroyOld(state.oldReq)
      await this.ctx.store.write((tx) => {
        this.finalize(tx)
        tx.del('pendingop', this.id)
      })
      return
    }
    await this.undo()
    await this.ctx.store.write((tx) => {
      this.undoDb(tx)
      tx.del('pendingop', this.id)
    })
  }

  async undo(): Promise<void> {
    const state = this.ctx.store.read((tx) => {
      const fresh = this.newBrick(tx)
      const old = tx.get('brick', this.brickId)
      const volume = old ? tx.get('volume', old.volumeId) : undefined
      return fresh && volume
        ? { req: brickRequest(tx, fresh, 0), name: volume.name, brick: volumeBrick(tx, fresh) }
        : undefined
    })
    if (!state) return
    // If gluster already serves the new brick, going back would lose it:
    // refuse (the cleaner finishes instead). When this process never sent the
    // replace-brick there is nothing to ask; otherwise an unanswered question
    // is no "no": the undo throws and the record stays for the cleaner.
    if (!this.execStarted || this.swapSent) {
      if (await this.glusterServes(state.req.host, state.name, state.brick)) {
        throw new Error(`brick ${state.req.brickId} already replaced ${this.brickId} in gluster`)
      }
    }
    await destroyBricks(this.ctx, [state.req])
  }

  /**
   * Does gluster list `brick` in the volume? Asked on the given host, then on
   * the cluster's other online hosts; throws when none can tell.
   */
  private async glusterServes(host: string, volume: string, brick: VolumeBrick): Promise<boolean> {
    const hosts = this.ctx.store.read((tx) => {
      const old = tx.get('brick', this.brickId)
      const clusterId = old ? tx.get('volume', old.volumeId)?.clusterId : undefined
      return clusterId ? clusterHosts(this.ctx, tx, clusterId) : []
    })
    try {
      const info = await onAnyHost([host, ...hosts.filter((h) => h !== host)], (h) =>
        this.ctx.executor.volumeInfo(h, volume),
      )
      return info.bricks.some((b) => b.name === brickName(brick))
    } catch (err) {
      throw new Error(
        `cannot tell whether gluster already serves brick ${brickName(brick)} of volume ${volume} (left for the cleaner): ${(err as Error).message}`,
      )
    }
  }

  /** Destroy the replaced brick; an unreachable node (a dead one) is tolerated, any other failure is not. */
  private async destroyOld(oldReq: BrickRequest): Promise<void> {
    try {
      this.oldReclaimed = (await destroyBricks(this.ctx, [oldReq])).has(oldReq.brickId)
    } catch (err) {
      const alive = await this.ctx.executor.glusterdCheck(oldReq.host).then(
        () => true,
        () => false,
      )
      if (alive) throw err
      this.ctx.log.warn(
        `evict ${this.id}: old brick ${oldReq.brickId} on unreachable ${oldReq.host} left in place: ${(err as Error).message}`,
      )
    }
  }

  undoDb(tx: WriteTxn): void {
    const fresh = this.newBrick(tx)
    if (fresh) releaseBrick(tx, fresh.id, true)
    const old = tx.get('brick', this.brickId)
    if (old?.pendingId === this.id) tx.put('brick', old.id, { ...old, pendingId: '' })
  }
}
