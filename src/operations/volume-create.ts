// Volume create: pick a cluster, place bricks, create them, build and start
// the gluster volume. Retried with a fresh placement (same id and name).

import type { BrickEntry, VolumeEntry } from '../../db/entries.ts'
import type { ReadTxn, WriteTxn } from '../../db/store.ts'
import type { VolumeDurability } from '../../executors/executor.ts'
import type { AppContext, JobResult } from '../context.ts'
import { insertSorted, without } from '../context.ts'
import { Errors, type HeqetError } from '../errors.ts'
import { allocateBricks } from '../placement/allocator.ts'
import { createFailureText, PlacementError } from '../placement/errors.ts'
import type { Durability } from '../placement/geometry.ts'
import { volumeNames } from '../volume-names.ts'
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
import { heketiOptions } from './volume-options.ts'

export function effectiveDurability(v: VolumeEntry): Durability {
  const d = v.durability
  if (d.type === 'replicate') return { type: 'replicate', replica: d.replicate.replica || 2 }
  if (d.type === 'disperse')
    return { type: 'disperse', data: d.disperse.data || 4, redundancy: d.disperse.redundancy || 2 }
  return { type: 'none' }
}

export function executorDurability(v: VolumeEntry): VolumeDurability {
  const d = effectiveDurability(v)
  if (d.type === 'replicate') return { ...d, arbiter: heketiOptions(v.glusterVolumeOptions).arbiter }
  return d
}

/** The allocation request for `sizeKiB` more space in the volume's (or a candidate) cluster. */
export function allocationFor(
  ctx: AppContext,
  v: VolumeEntry,
  clusterId: string,
  sizeKiB: number,
  existing: number,
  attempt = 0,
) {
  const opts = heketiOptions(v.glusterVolumeOptions)
  return allocateBricks(ctx.placement, {
    clusterId,
    volumeId: v.id,
    sizeKiB,
    durability: effectiveDurability(v),
    snapshotFactor: v.snapshot.enable ? v.snapshot.factor : 1,
    existingBrickCount: existing,
    zoneChecking: opts.zoneChecking ?? ctx.config.zoneChecking,
    tagMatch: opts.tagMatch,
    arbiter: opts.arbiter,
    averageFileSizeKiB: opts.averageFileSizeKiB ?? ctx.config.averageFileSizeKiB,
    limits: ctx.limits,
    isNodeUp: (id) => ctx.health.isUp(id),
    attempt,
  })
}

function joinClusterErrors(header: string, errors: [string, string][]): string {
  return [header, ...errors.map(([id, e]) => `Cluster ${id}: ${e}`)].join('\n')
}

/** The brick creates and the gluster request for `bricks` (in gluster order) of a volume. */
export function brickWork(tx: ReadTxn, volume: VolumeEntry, bricks: BrickEntry[], options: string[]) {
  return {
    requests: bricks.map((b) => brickRequest(tx, b, volume.gid)),
    volumeRequest: {
      host: brickRequest(tx, bricks[0]!, 0).host,
      id: volume.id,
      name: volume.name,
      durability: executorDurability(volume),
      bricks: bricks.map((b) => volumeBrick(tx, b)),
      options,
    },
  }
}

export class VolumeCreateOperation implements Operation {
  readonly type = 'create-volume' as const
  readonly cleanMode = 'rollback' as const
  readonly retries: number
  private attempt = 0

  private readonly allocationError: (reason: string) => HeqetError

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    /** the volume as it will be stored (cluster and bricks filled by build) */
    private readonly template: VolumeEntry,
    /** a block volume create that plans its hosting volume: its own error prefix, no retries */
    opts: { allocationError?: (reason: string) => HeqetError; retries?: number } = {},
  ) {
    this.retries = opts.retries ?? ctx.config.volumeCreateRetries
    this.allocationError = opts.allocationError ?? Errors.allocateVolume
  }

  private eligibleClusters(tx: ReadTxn): string[] {
    const v = this.template
    const candidates = v.requestedClusters.length > 0 ? v.requestedClusters : tx.keys('cluster')
    if (candidates.length === 0) throw this.allocationError('No clusters configured')
    const problems: [string, string][] = []
    const eligible = candidates.filter((id) => {
      const c = tx.get('cluster', id)
      if (!c) return false
      let problem: string | undefined
      if (!c.block && !c.file) problem = 'Cluster has disabled all volume types'
      else if (v.block ? !c.block : !c.file) problem = 'Cluster does not support requested volume type'
      else if (nameTaken(tx, volumeNames(this.ctx.store).idsNamed(v.name), v.name, id, v.id)) {
        problem = `Volume name '${v.name}' already in use`
      } else if (
        this.ctx.config.maxVolumesPerCluster >= 0 &&
        c.volumes.length >= this.ctx.config.maxVolumesPerCluster
      ) {
        problem = `Cluster has ${c.volumes.length} volumes and limit is ${this.ctx.config.maxVolumesPerCluster}`
      }
      if (problem) problems.push([id, problem])
      return problem === undefined
    })
    if (eligible.length > 0) return eligible
    if (problems.length === 1) throw this.allocationError(problems[0]![1])
    if (problems.length > 1)
      throw this.allocationError(joinClusterErrors('No eligible cluster for volume', problems))
    throw this.allocationError('No space')
  }

  build(tx: WriteTxn) {
    const v = this.template
    const failures: [string, string][] = []
    for (const clusterId of this.eligibleClusters(tx)) {
      let allocation: ReturnType<typeof allocateBricks>
      try {
        allocation = allocationFor(this.ctx, v, clusterId, v.sizeGiB * 1048576, 0, this.attempt++)
      } catch (err) {
        if (!(err instanceof PlacementError)) throw err
        if (err.kind === 'bad-tag-rule' || err.kind === 'arbiter-size')
          throw this.allocationError(err.message)
        failures.push([clusterId, createFailureText(err)])
        continue
      }
      const placed = allocation.sets.flat()
      const bricks = reserveBricks(tx, placed, v.id, this.id)
      const volume: VolumeEntry = {
        ...v,
        clusterId,
        bricks: bricks.map((b) => b.id).sort(),
        pendingId: this.id,
      }
      tx.put('volume', v.id, volume)
      const cluster = tx.get('cluster', clusterId)!
      tx.put('cluster', clusterId, { ...cluster, volumes: insertSorted(cluster.volumes, v.id) })
      return {
        actions: [
          ...bricks.map((b) => ({ change: 'add-brick' as const, id: b.id })),
          { change: 'add-volume' as const, id: v.id },
        ],
        data: { volumeId: v.id, glusterOrder: placed.map((p) => p.brickId) },
      }
    }
    if (failures.length === 1) throw this.allocationError(failures[0]![1])
    throw this.allocationError(joinClusterErrors('Unable to create volume on any cluster:', failures))
  }

  async exec(): Promise<void> {
    const { requests, volumeRequest } = this.ctx.store.read((tx) => {
      const volume = tx.get('volume', this.template.id)!
      const order = (tx.get('pendingop', this.id)?.data['glusterOrder'] as string[]) ?? volume.bricks
      return brickWork(
        tx,
        volume,
        order.map((id) => tx.get('brick', id)!),
        volume.glusterVolumeOptions,
      )
    })
    await createBricks(this.ctx, requests)
    await this.ctx.executor.volumeCreate(volumeRequest)
  }

  finalize(tx: WriteTxn): JobResult {
    const volume = tx.get('volume', this.template.id)!
    for (const id of volume.bricks) {
      const b = tx.get('brick', id)!
      tx.put('brick', id, { ...b, pendingId: '' })
    }
    tx.put('volume', volume.id, { ...volume, pendingId: '' })
    return { kind: 'volume', id: volume.id }
  }

  /** The bricks this operation reserved (read from the store: works after a crash too). */
  private ownBricks(tx: ReadTxn) {
    const volume = tx.get('volume', this.template.id)
    return (volume?.bricks ?? []).map((id) => tx.get('brick', id)).filter((b) => b && b.pendingId === this.id)
  }

  async undo(): Promise<void> {
    const { hosts, name, requests } = this.ctx.store.read((tx) => {
      const volume = tx.get('volume', this.template.id)
      return {
        hosts: volume ? undoHosts(this.ctx, tx, volume.clusterId) : [],
        name: volume?.name ?? this.template.name,
        requests: this.ownBricks(tx).map((b) => brickRequest(tx, b!, 0)),
      }
    })
    // even with no node up the volume may exist: onAnyHost throws rather than skip
    await onAnyHost(hosts, (h) => this.ctx.executor.volumeDestroy(h, name))
    await destroyBricks(this.ctx, requests)
  }

  undoDb(tx: WriteTxn): void {
    for (const b of this.ownBricks(tx)) releaseBrick(tx, b!.id, true)
    const volume = tx.get('volume', this.template.id)
    if (!volume || volume.pendingId !== this.id) return
    const cluster = tx.get('cluster', volume.clusterId)
    if (cluster) tx.put('cluster', cluster.id, { ...cluster, volumes: without(cluster.volumes, volume.id) })
    tx.del('volume', volume.id)
  }
}

/** Another volume of `clusterId` already has this name (candidates from the name index, checked in `tx`). */
function nameTaken(
  tx: ReadTxn,
  candidates: ReadonlySet<string>,
  name: string,
  clusterId: string,
  selfId: string,
): boolean {
  for (const id of candidates) {
    if (id === selfId) continue
    const other = tx.get('volume', id)
    if (other && other.name === name && other.clusterId === clusterId) return true
  }
  return false
}
