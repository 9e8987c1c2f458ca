// Block volume requests after wire validation: the DB checks heketi makes
// before the operation, then the operation itself.
import type { BlockVolumeEntry } from '../db/entries.ts'
import { isBlockVolumeVisible } from './clusters.ts'
import { requireValid, volumeNameProblems } from './command-values.ts'
import type { AppContext, Job } from './context.ts'
import { Errors } from './errors.ts'
import { newId } from './ids.ts'
import { BlockVolumeCreateOperation } from './operations/block-volume-create.ts'
import { BlockVolumeDeleteOperation } from './operations/block-volume-delete.ts'
import { BlockVolumeExpandOperation } from './operations/block-volume-expand.ts'
import { newOperationId, startOperation } from './operations/operation.ts'

export interface BlockVolumeCreateRequest {
  size: number
  name: string
  clusters: string[]
  hacount: number
  auth: boolean
}

/** A settled block volume; missing or pending is 404 `Id not found`. */
export function getVisibleBlockVolume(ctx: AppContext, id: string): BlockVolumeEntry {
  return ctx.store.read((tx) => {
    const bv = tx.get('blockvolume', id)
    if (!bv || !isBlockVolumeVisible(bv)) throw Errors.notFound()
    return bv
  })
}

export async function createBlockVolume(ctx: AppContext, req: BlockVolumeCreateRequest): Promise<Job> {
  requireValid(volumeNameProblems(req.name))
  if (req.size < 1) throw Errors.invalidVolumeSize()
  ctx.store.read((tx) => {
    if (tx.count('cluster') === 0) throw Errors.noClusters()
    for (const id of req.clusters) if (!tx.get('cluster', id)) throw Errors.clusterNotFound(id)
  })
  const id = newId()
  const template: BlockVolumeEntry = {
    id,
    name: req.name || `blockvol_${id}`,
    sizeGiB: req.size,
    usableSizeGiB: 0,
    hacount: req.hacount,
    auth: req.auth,
    requestedClusters: req.clusters,
    clusterId: '',
    blockHostingVolume: '',
    hosts: [],
    iqn: '',
    lun: 0,
    username: '',
    password: '',
    pendingId: '',
  }
  return startOperation(ctx, new BlockVolumeCreateOperation(ctx, newOperationId(), template))
}

export async function deleteBlockVolume(ctx: AppContext, id: string): Promise<Job> {
  if (!ctx.store.read((tx) => tx.get('blockvolume', id))) throw Errors.notFound()
  return startOperation(ctx, new BlockVolumeDeleteOperation(ctx, newOperationId(), id))
}

export async function expandBlockVolume(ctx: AppContext, id: string, newSizeGiB: number): Promise<Job> {
  if (!ctx.store.read((tx) => tx.get('blockvolume', id))) throw Errors.notFound()
  return startOperation(ctx, new BlockVolumeExpandOperation(ctx, newOperationId(), id, newSizeGiB))
}
