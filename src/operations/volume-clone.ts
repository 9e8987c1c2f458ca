// Volume clone: gluster snapshot + clone of the source. The clone's bricks
// live in the source's thin pools, so they take no space of their own.

import type { BrickEntry, VolumeEntry } from '../../db/entries.ts'
import type { WriteTxn } from '../../db/store.ts'
import type { AppContext, JobResult } from '../context.ts'
import { insertSorted, without } from '../context.ts'
import { Errors } from '../errors.ts'
import { newId } from '../ids.ts'
import { clusterHosts, onAnyHost, releaseBrick, undoHosts } from './bricks.ts'
import type { Operation } from './operation.ts'

export class VolumeCloneOperation implements Operation {
  readonly type = 'clone-volume' as const
  readonly cleanMode = 'rollback' as const
  private cloneInfo?: Awaited<ReturnType<AppContext['executor']['volumeClone']>>

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly sourceId: string,
    private readonly cloneId: string,
    private readonly cloneName: string,
  ) {}

  build(tx: WriteTxn) {
    const source = tx.get('volume', this.sourceId)
    if (!source || source.pendingId) throw Errors.notFound()
    if (source.block) throw Errors.cloneBlockHosting(source.id)
    tx.put('volume', source.id, { ...source, pendingId: this.id })
    const cluster = tx.get('cluster', source.clusterId)!
    tx.put('cluster', cluster.id, { ...cluster, volumes: insertSorted(cluster.volumes, this.cloneId) })
    const brickIds = source.bricks.map(() => newId())
    return {
      actions: [
        { change: 'clone-volume' as const, id: source.id },
        { change: 'add-volume-clone' as const, id: this.cloneId },
        ...brickIds.map((id) => ({ change: 'add-brick' as const, id })),
      ],
      data: { sourceId: source.id, cloneId: this.cloneId, cloneName: this.cloneName, brickIds },
    }
  }

  async exec(): Promise<void> {
    const host = this.ctx.store.read((tx) => {
      const source = tx.get('volume', this.sourceId)!
      return clusterHosts(this.ctx, tx, source.clusterId)[0]
    })
    if (!host) throw new Error('no hosts available (0 total)')
    const name = this.ctx.store.read((tx) => tx.get('volume', this.sourceId)!.name)
    this.cloneInfo = await this.ctx.executor.volumeClone({
      host,
      source: name,
      clone: this.cloneName,
      snapshotId: newId(),
    })
  }

  finalize(tx: WriteTxn): JobResult {
    const source = tx.get('volume', this.sourceId)!
    const entry = tx.get('pendingop', this.id)!
    const brickIds = entry.data['brickIds'] as string[]
    const sourceBricks = source.bricks.map((id) => tx.get('brick', id)!)
    const lv = `${(this.cloneInfo?.id ?? '').replaceAll('-', '')}_0`
    const clonePaths = this.cloneInfo?.bricks.map((b) => b.name.slice(b.name.indexOf(':') + 1)) ?? []
    const bricks: BrickEntry[] = sourceBricks.map((sb, i) => ({
      ...sb,
      id: brickIds[i]!,
      volumeId: this.cloneId,
      path: clonePaths[i] ?? sb.path,
      lvmLv: lv,
      pendingId: '',
    }))
    for (const b of bricks) {
      tx.put('brick', b.id, b)
      const d = tx.get('device', b.deviceId)!
      tx.put('device', d.id, { ...d, bricks: insertSorted(d.bricks, b.id) })
    }
    const { rebalanceStartedAt: _notTheClones, ...copied } = source
    const clone: VolumeEntry = {
      ...copied,
      id: this.cloneId,
      name: this.cloneName,
      bricks: bricks.map((b) => b.id).sort(),
      pendingId: '',
    }
    tx.put('volume', clone.id, clone)
    tx.put('volume', source.id, { ...source, pendingId: '' })
    return { kind: 'volume', id: clone.id }
  }

  /** Delete the clone's gluster volume (gone already is fine); throws when no host could. */
  async undo(): Promise<void> {
    const hosts = this.ctx.store.read((tx) => {
      const source = tx.get('volume', this.sourceId)
      return source ? undoHosts(this.ctx, tx, source.clusterId) : []
    })
    await onAnyHost(hosts, (h) => this.ctx.executor.volumeDestroy(h, this.cloneName))
  }

  /** heketi leaves the clone's brick entries and cluster reference behind; heqet removes them. */
  undoDb(tx: WriteTxn): void {
    const source = tx.get('volume', this.sourceId)
    if (source?.pendingId === this.id) tx.put('volume', source.id, { ...source, pendingId: '' })
    const entry = tx.get('pendingop', this.id)
    for (const id of (entry?.data['brickIds'] as string[] | undefined) ?? []) {
      if (tx.get('brick', id)) releaseBrick(tx, id, false)
    }
    if (source) {
      const cluster = tx.get('cluster', source.clusterId)
      if (cluster)
        tx.put('cluster', cluster.id, { ...cluster, volumes: without(cluster.volumes, this.cloneId) })
    }
  }
}
