// Block volume create (heketi allocation §11.2): find a block-hosting volume
// with room, or plan a new one (auto-create) inside the same operation; then
// gluster-block create on one node, exported by `hacount` hosts. The undo
// deletes the block volume on the nodes and, when this operation made the
// hosting volume, that volume and its bricks too.
import type { BlockVolumeEntry, VolumeEntry } from '../../db/entries.ts'
import type { ReadTxn, WriteTxn } from '../../db/store.ts'
import type { AppContext, JobResult } from '../context.ts'
import { insertSorted } from '../context.ts'
import { BlockTexts, Errors } from '../errors.ts'
import { newId } from '../ids.ts'
import { dropBlockVolume } from './block-volume-delete.ts'
import { onAnyHost, undoHosts } from './bricks.ts'
import type { Operation } from './operation.ts'
import { VolumeCreateOperation } from './volume-create.ts'
import { volumeOptionList } from './volume-options.ts'

/** What the journal keeps so the undo works from the record alone. */
export interface BlockCreateData {
  blockVolumeId: string
  blockVolumeName: string
  hostingVolumeId: string
  hostingVolumeName: string
  /** this operation creates the hosting volume (its bricks and volume are in the record too) */
  newHosting: boolean
}

/** heketi keeps 2 % of every hosting volume out of reach of block volumes */
export const usableHostingGiB = (sizeGiB: number) => Math.floor((sizeGiB * 98) / 100)

/** A new block-hosting volume as heketi auto-creates it: replica 3, the configured size and options. */
export function hostingVolumeTemplate(ctx: AppContext, clusters: string[]): VolumeEntry {
  const id = newId()
  const sizeGiB = ctx.config.blockHostingVolumeSizeGiB
  const freeGiB = usableHostingGiB(sizeGiB)
  return {
    id,
    name: `vol_${id}`,
    sizeGiB,
    clusterId: '',
    durability: { type: 'replicate', replicate: { replica: 3 }, disperse: {} },
    gid: 0,
    block: true,
    snapshot: { enable: false, factor: 1 },
    blockInfo: {
      freeSizeGiB: freeGiB,
      reservedSizeGiB: sizeGiB - freeGiB,
      blockVolumes: [],
      restriction: '',
    },
    requestedClusters: clusters,
    glusterVolumeOptions: volumeOptionList(ctx.config, true, []),
    bricks: [],
    pendingId: '',
  }
}

/** Storage hostnames of the cluster's nodes (sorted node ids) with their manage hosts. */
function clusterNodes(tx: ReadTxn, clusterId: string) {
  return (tx.get('cluster', clusterId)?.nodes ?? []).flatMap((id) => {
    const n = tx.get('node', id)
    return n
      ? [{ storage: n.hostnames.storage[0]!, manage: n.hostnames.manage[0]!, online: n.state === 'online' }]
      : []
  })
}

function shuffled<T>(list: T[]): T[] {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

export class BlockVolumeCreateOperation implements Operation {
  readonly type = 'create-block-volume' as const
  readonly cleanMode = 'rollback' as const
  /** set when this operation creates the hosting volume */
  private hosting?: VolumeCreateOperation
  private plan?: BlockCreateData
  /** gluster-block create was sent (in this process): the undo must delete */
  private createTried = false
  private created?: { hosts: string[]; hacount: number; iqn: string; username: string; password: string }

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    /** the block volume as requested (cluster, hosting volume and export filled later) */
    private readonly template: BlockVolumeEntry,
    /** after a crash: the record's data */
    journal?: BlockCreateData,
  ) {
    if (journal) {
      this.plan = journal
      // the node side may have got as far as gluster-block create
      this.createTried = true
      if (journal.newHosting) {
        const stored = ctx.store.read((tx) => tx.get('volume', journal.hostingVolumeId))
        this.hosting = new VolumeCreateOperation(
          ctx,
          id,
          stored ?? ({ id: journal.hostingVolumeId, name: journal.hostingVolumeName } as VolumeEntry),
        )
      }
    }
  }

  /** Non-pending, unrestricted hosting volumes with room and no block volume of this name. */
  private hostingCandidates(tx: ReadTxn, clusters: string[]) {
    const bv = this.template
    return clusters.flatMap((cid) =>
      (tx.get('cluster', cid)?.volumes ?? []).flatMap((vid) => {
        const v = tx.get('volume', vid)
        if (!v?.block || v.pendingId || v.blockInfo.restriction !== '') return []
        if (v.blockInfo.freeSizeGiB < bv.sizeGiB) return []
        if (v.blockInfo.blockVolumes.some((id) => tx.get('blockvolume', id)?.name === bv.name)) return []
        return [v]
      }),
    )
  }

  build(tx: WriteTxn) {
    const bv = this.template
    // a store may run the transaction again (etcd conflict): start from nothing each time
    this.hosting = undefined
    this.plan = undefined
    const requested = bv.requestedClusters.length > 0 ? bv.requestedClusters : tx.keys('cluster')
    const clusters = requested.filter((id) => tx.get('cluster', id)?.block === true)
    const candidates = this.hostingCandidates(tx, clusters)
    let hostingId: string
    let hostingBuilt: ReturnType<VolumeCreateOperation['build']> | undefined
    if (candidates.length > 0) {
      hostingId = candidates[Math.floor(Math.random() * candidates.length)]!.id
    } else {
      const hostingGiB = this.ctx.config.blockHostingVolumeSizeGiB
      const reduced = usableHostingGiB(hostingGiB)
      if (bv.sizeGiB > reduced)
        throw Errors.allocateBlockVolume(BlockTexts.hostingTooSmall(hostingGiB, bv.sizeGiB, reduced))
      // another request's new hosting volume may soon have room: come back later
      const pendingHosting = clusters.some((cid) =>
        (tx.get('cluster', cid)?.volumes ?? []).some((vid) => {
          const v = tx.get('volume', vid)
          return v?.block && v.pendingId && tx.get('pendingop', v.pendingId)?.status === ''
        }),
      )
      if (pendingHosting) throw Errors.busy()
      if (!this.ctx.config.autoCreateBlockHostingVolume)
        throw Errors.allocateBlockVolume(BlockTexts.autoCreateDisabled)
      const template = hostingVolumeTemplate(this.ctx, bv.requestedClusters)
      this.hosting = new VolumeCreateOperation(this.ctx, this.id, template, {
        allocationError: Errors.allocateBlockVolume,
        retries: 0,
      })
      hostingBuilt = this.hosting.build(tx)
      hostingId = template.id
    }
    const hv = tx.get('volume', hostingId)!
    tx.put('volume', hv.id, {
      ...hv,
      blockInfo: {
        ...hv.blockInfo,
        freeSizeGiB: hv.blockInfo.freeSizeGiB - bv.sizeGiB,
        blockVolumes: insertSorted(hv.blockInfo.blockVolumes, bv.id),
      },
    })
    const cluster = tx.get('cluster', hv.clusterId)!
    tx.put('cluster', cluster.id, { ...cluster, blockVolumes: insertSorted(cluster.blockVolumes, bv.id) })
    tx.put('blockvolume', bv.id, {
      ...bv,
      clusterId: hv.clusterId,
      blockHostingVolume: hv.id,
      pendingId: this.id,
    })
    this.plan = {
      blockVolumeId: bv.id,
      blockVolumeName: bv.name,
      hostingVolumeId: hv.id,
      hostingVolumeName: hv.name,
      newHosting: hostingBuilt !== undefined,
    }
    return {
      actions: [...(hostingBuilt?.actions ?? []), { change: 'add-block-volume' as const, id: bv.id }],
      data: { ...(hostingBuilt?.data ?? {}), ...this.plan },
    }
  }

  /** Export hosts: `hacount` of the hosting volume's hosts whose glusterd answers, else all of them. */
  private async exportHosts(nodes: ReturnType<typeof clusterNodes>, hacount: number) {
    if (hacount <= 0 || hacount > nodes.length) return nodes.map((n) => n.storage)
    const chosen: string[] = []
    for (const n of shuffled(nodes)) {
      if (chosen.length === hacount) break
      if (await this.glusterdRunning(n.manage)) chosen.push(n.storage)
    }
    if (chosen.length < hacount) throw new Error(BlockTexts.insufficientHosts)
    return chosen
  }

  private glusterdRunning(host: string): Promise<boolean> {
    return this.ctx.executor.glusterdCheck(host).then(
      () => true,
      (err: Error) => {
        this.ctx.log.warn(`glusterd check on ${host} failed: ${err.message}`)
        return false
      },
    )
  }

  async exec(): Promise<void> {
    const plan = this.plan!
    if (this.hosting) await this.hosting.exec()
    const { bv, nodes } = this.ctx.store.read((tx) => {
      const bv = tx.get('blockvolume', plan.blockVolumeId)!
      return { bv, nodes: clusterNodes(tx, bv.clusterId) }
    })
    const hosts = await this.exportHosts(nodes, bv.hacount)
    let runOn: string | undefined
    for (const n of nodes) {
      if (n.online && (await this.glusterdRunning(n.manage))) {
        runOn = n.manage
        break
      }
    }
    if (!runOn) throw new Error(BlockTexts.noGlusterd)
    this.createTried = true
    const answer = await this.ctx.executor.blockVolumeCreate({
      host: runOn,
      hostingVolume: plan.hostingVolumeName,
      name: plan.blockVolumeName,
      haCount: hosts.length,
      auth: bv.auth,
      hosts,
      sizeGiB: bv.sizeGiB,
    })
    this.created = { hosts, hacount: hosts.length, ...answer }
  }

  finalize(tx: WriteTxn): JobResult {
    const plan = this.plan!
    if (this.hosting) this.hosting.finalize(tx)
    const bv = tx.get('blockvolume', plan.blockVolumeId)!
    const c = this.created!
    tx.put('blockvolume', bv.id, {
      ...bv,
      hosts: c.hosts,
      hacount: c.hacount,
      iqn: c.iqn,
      lun: 0,
      username: c.username,
      password: c.password,
      usableSizeGiB: bv.sizeGiB,
      pendingId: '',
    })
    return { kind: 'blockvolume', id: bv.id }
  }

  async undo(): Promise<void> {
    const plan = this.plan
    if (!plan) return
    if (this.createTried) {
      const hosts = this.ctx.store.read((tx) => {
        const hv = tx.get('volume', plan.hostingVolumeId)
        return hv ? undoHosts(this.ctx, tx, hv.clusterId) : []
      })
      // "does not exist" (the block volume, or a hosting volume never made) counts as done
      await onAnyHost(hosts, (h) =>
        this.ctx.executor.blockVolumeDelete(h, plan.hostingVolumeName, plan.blockVolumeName),
      )
    }
    if (this.hosting) await this.hosting.undo()
  }

  undoDb(tx: WriteTxn): void {
    const plan = this.plan
    if (!plan) return
    const bv = tx.get('blockvolume', plan.blockVolumeId)
    if (bv && bv.pendingId === this.id) {
      dropBlockVolume(tx, bv)
    }
    if (this.hosting) this.hosting.undoDb(tx)
  }
}
