// Clusters: plain synchronous records.

import type { BlockVolumeEntry, ClusterEntry, VolumeEntry } from '../db/entries.ts'
import type { ReadTxn } from '../db/store.ts'
import type { AppContext } from './context.ts'
import { Errors } from './errors.ts'
import { newId } from './ids.ts'

export function getCluster(tx: ReadTxn, id: string): ClusterEntry {
  const c = tx.get('cluster', id)
  if (!c) throw Errors.notFound()
  return c
}

export async function createCluster(
  ctx: AppContext,
  flags: { block: boolean; file: boolean },
): Promise<ClusterEntry> {
  const cluster: ClusterEntry = { id: newId(), nodes: [], volumes: [], blockVolumes: [], ...flags }
  await ctx.store.write((tx) => tx.put('cluster', cluster.id, cluster))
  ctx.log.info(`Adding cluster ${cluster.id}`)
  return cluster
}

export async function setClusterFlags(ctx: AppContext, id: string, flags: { block: boolean; file: boolean }) {
  await ctx.store.write((tx) => {
    const c = getCluster(tx, id)
    tx.put('cluster', id, { ...c, ...flags })
  })
}

export async function deleteCluster(ctx: AppContext, id: string): Promise<void> {
  await ctx.store.write((tx) => {
    const c = getCluster(tx, id)
    if (c.nodes.length > 0 || c.volumes.length > 0) throw Errors.clusterNotEmpty(id)
    tx.del('cluster', id)
  })
  ctx.log.info(`Deleted cluster ${id}`)
}

/** Block volumes of a pending operation (create, delete, expand) are hidden and answer 404. */
export function isBlockVolumeVisible(bv: BlockVolumeEntry): boolean {
  return bv.pendingId === ''
}

/**
 * Volumes hidden from lists: those of a pending create, delete or clone
 * target. An expanding volume or a clone source stays listed.
 */
export function isVolumeListed(tx: ReadTxn, vol: VolumeEntry): boolean {
  if (!vol.pendingId) return true
  const op = tx.get('pendingop', vol.pendingId)
  if (!op) return true
  if (op.type === 'create-volume' || op.type === 'delete-volume') return false
  // a hosting volume a block volume create is making
  if (op.type === 'create-block-volume')
    return !op.actions.some((a) => a.change === 'add-volume' && a.id === vol.id)
  if (op.type === 'clone-volume')
    return !op.actions.some((a) => a.change === 'add-volume-clone' && a.id === vol.id)
  return true
}

/** GET /volumes/{id} answers only settled volumes and those being expanded. */
export function isVolumeReadable(tx: ReadTxn, vol: VolumeEntry): boolean {
  if (!vol.pendingId) return true
  const op = tx.get('pendingop', vol.pendingId)
  return op?.type === 'expand-volume'
}
