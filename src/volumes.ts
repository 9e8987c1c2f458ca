// Volume requests after wire validation: build the entry, check what needs
// the DB, and start the operation.

import type { DurabilityRequest, VolumeEntry } from '../db/entries.ts'
import { isVolumeReadable } from './clusters.ts'
import { requireValid, volumeNameProblems, volumeOptionProblems } from './command-values.ts'
import type { AppContext, Job } from './context.ts'
import { Errors } from './errors.ts'
import { newId } from './ids.ts'
import { newOperationId, startOperation } from './operations/operation.ts'
import { VolumeCloneOperation } from './operations/volume-clone.ts'
import { effectiveDurability, VolumeCreateOperation } from './operations/volume-create.ts'
import { VolumeDeleteOperation } from './operations/volume-delete.ts'
import { VolumeExpandOperation } from './operations/volume-expand.ts'
import { volumeOptionList } from './operations/volume-options.ts'

export interface VolumeCreateRequest {
  size: number
  name: string
  clusters: string[]
  durability: DurabilityRequest
  gid: number
  glustervolumeoptions: string[]
  block: boolean
  snapshot: { enable: boolean; factor: number }
}

export function getReadableVolume(ctx: AppContext, id: string): VolumeEntry {
  return ctx.store.read((tx) => {
    const v = tx.get('volume', id)
    if (!v || !isVolumeReadable(tx, v)) throw Errors.notFound()
    return v
  })
}

export async function createVolume(ctx: AppContext, req: VolumeCreateRequest): Promise<Job> {
  const { config, limits } = ctx
  requireValid(volumeNameProblems(req.name))
  ctx.store.read((tx) => {
    if (tx.count('cluster') === 0) throw Errors.noClusters()
    for (const id of req.clusters) if (!tx.get('cluster', id)) throw Errors.clusterNotFound(id)
  })
  const minKiB =
    req.durability.type === 'disperse'
      ? 1048576 * (req.durability.disperse.data || 4)
      : limits.minBrickSizeKiB
  if (req.size * 1048576 < minKiB) throw Errors.volumeTooSmall(req.size, minKiB)

  const existing = req.name ? sameVolumeByName(ctx, req) : undefined
  if (existing) return awaitExisting(ctx, existing)

  const id = newId()
  const options = volumeOptionList(config, req.block, req.glustervolumeoptions)
  requireValid(volumeOptionProblems(options))
  const freeGiB = req.block ? Math.floor((req.size * 98) / 100) : 0
  const template: VolumeEntry = {
    id,
    name: req.name || `vol_${id}`,
    sizeGiB: req.size,
    clusterId: '',
    durability: { ...req.durability, type: req.durability.type || 'none' },
    gid: req.gid,
    block: req.block,
    snapshot: req.snapshot.enable
      ? { enable: true, factor: req.snapshot.factor }
      : { enable: false, factor: 1 },
    blockInfo: {
      freeSizeGiB: freeGiB,
      reservedSizeGiB: req.block ? req.size - freeGiB : 0,
      blockVolumes: [],
      restriction: '',
    },
    requestedClusters: req.clusters,
    glusterVolumeOptions: options,
    bricks: [],
    pendingId: '',
  }
  return startOperation(ctx, new VolumeCreateOperation(ctx, newOperationId(), template))
}

/**
 * A retried create (the Kubernetes external provisioner retries after its own
 * timeout): a volume of that name, size and durability that exists or is
 * being created is answered instead of a second volume or a name clash.
 */
function sameVolumeByName(ctx: AppContext, req: VolumeCreateRequest): VolumeEntry | undefined {
  const wanted = JSON.stringify(effectiveDurability({ durability: req.durability } as VolumeEntry))
  return ctx.store.read((tx) =>
    tx.values('volume').find((v) => {
      if (v.name !== req.name || v.sizeGiB !== req.size || v.block !== req.block) return false
      if (req.clusters.length > 0 && !req.clusters.includes(v.clusterId)) return false
      if (JSON.stringify(effectiveDurability(v)) !== wanted) return false
      const op = v.pendingId ? tx.get('pendingop', v.pendingId) : undefined
      return !op || op.type === 'create-volume' || op.type === 'expand-volume'
    }),
  )
}

/** The job of a retried create: wait for the original to settle, then point at it. */
function awaitExisting(ctx: AppContext, volume: VolumeEntry): Job {
  return async () => {
    for (;;) {
      const current = ctx.store.read((tx) => tx.get('volume', volume.id))
      if (!current)
        throw Errors.allocateVolume(`Volume name '${volume.name}' was being created and has failed`)
      if (
        !current.pendingId ||
        ctx.store.read((tx) => tx.get('pendingop', current.pendingId))?.type !== 'create-volume'
      ) {
        return { kind: 'volume', id: current.id }
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

export async function deleteVolume(ctx: AppContext, id: string): Promise<Job> {
  const volume = ctx.store.read((tx) => tx.get('volume', id))
  if (!volume) throw Errors.notFound()
  if (volume.name === 'heketidbstorage') throw Errors.dbVolumeDelete()
  if (volume.block && volume.blockInfo.blockVolumes.length > 0) throw Errors.blockHostingNotEmpty()
  return startOperation(ctx, new VolumeDeleteOperation(ctx, newOperationId(), id))
}

export async function expandVolume(ctx: AppContext, id: string, addGiB: number): Promise<Job> {
  getReadableVolume(ctx, id)
  const job = await startOperation(ctx, new VolumeExpandOperation(ctx, newOperationId(), id, addGiB))
  return async () => {
    const result = await job()
    // the answer goes out now; the rebalance start it journaled runs behind it
    ctx.rebalance.resume(ctx)
    return result
  }
}

export async function cloneVolume(ctx: AppContext, id: string, name: string): Promise<Job> {
  requireValid(volumeNameProblems(name))
  const source = getReadableVolume(ctx, id)
  if (source.pendingId) throw Errors.notFound()
  const cloneId = newId()
  return startOperation(
    ctx,
    new VolumeCloneOperation(ctx, newOperationId(), id, cloneId, name || `vol_${cloneId}`),
  )
}

export async function setBlockRestriction(
  ctx: AppContext,
  id: string,
  restriction: '' | 'locked',
): Promise<Job> {
  const volume = getReadableVolume(ctx, id)
  if (volume.pendingId) throw Errors.notFound()
  if (!volume.block)
    throw Errors.blockRestriction('Block restrictions can only be set on block hosting volumes')
  const release = ctx.throttle.acquire()
  return async () => {
    try {
      await ctx.store.write((tx) => {
        const v = tx.get('volume', id)
        if (!v) throw Errors.notFound()
        let { freeSizeGiB, reservedSizeGiB } = v.blockInfo
        // unlocking what a DB upgrade locked first takes heketi's 2 % reserve from the free size
        if (restriction === '' && v.blockInfo.restriction === 'locked-by-update' && reservedSizeGiB === 0) {
          const need = v.sizeGiB - Math.floor((v.sizeGiB * 98) / 100)
          if (freeSizeGiB < need) {
            throw Errors.blockRestriction(
              `Can not unlock volume. ${need}GiB free space is required, but found ${freeSizeGiB}GiB`,
            )
          }
          freeSizeGiB -= need
          reservedSizeGiB = need
        }
        tx.put('volume', id, {
          ...v,
          blockInfo: { ...v.blockInfo, freeSizeGiB, reservedSizeGiB, restriction },
        })
      })
      return { kind: 'volume', id }
    } finally {
      release()
    }
  }
}
