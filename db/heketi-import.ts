// heketi's JSON export → heqet's entries (`heqet db import`). The whole
// document is read, upgraded (db/migrations), converted and checked before
// anything is written; what cannot be taken whole is refused with the entry
// and the reason. Every entry keeps its id; pending operations come in as
// `stale`, for the cleaner.
import { currentAttributes, KNOWN_ATTRIBUTES } from './attributes.ts'
import {
  type BlockVolumeEntry,
  type BrickEntry,
  type BrickSubType,
  CHANGE_KINDS,
  type ClusterEntry,
  type DbAttributeEntry,
  type DeviceEntry,
  type DurabilityRequest,
  type EntityState,
  type NodeEntry,
  type OperationAction,
  type PendingOperationEntry,
  type VolumeEntry,
} from './entries.ts'
import { OPERATION_TYPES } from './heketi-export.ts'
import { type HeketiDb, ImportError, readHeketiExport } from './heketi-format.ts'
import { checkReferences, checkSizes, checkValues, type Entries } from './heketi-import-checks.ts'
import { upgradeHeketiExport } from './migrations/index.ts'
import type { WriteTxn } from './store.ts'

export { ImportError } from './heketi-format.ts'

/** The entries the checks read (`Entries`), plus the DB attributes. */
export interface ImportedDb extends Entries {
  attribute: DbAttributeEntry[]
  /** upgrade steps applied and things the operator should know, one line each */
  notes: string[]
}

const SUBTYPES: BrickSubType[] = ['unknown', 'normal', 'arbiter']
const STATES: EntityState[] = ['online', 'offline', 'failed']
const DURABILITY_TYPES = ['', 'none', 'replicate', 'disperse'] as const
const RESTRICTIONS = ['', 'locked', 'locked-by-update'] as const

const sorted = (ids: string[]) => [...ids].sort()

function oneOf<T extends string>(allowed: readonly T[], value: string, entry: string, what: string): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new ImportError(entry, `${what} ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`)
  return value as T
}

function keyMatchesId(section: Record<string, unknown>, label: string, idOf: (e: never) => string) {
  for (const [key, e] of Object.entries(section)) {
    const id = idOf(e as never)
    if (id !== key)
      throw new ImportError(`${label} ${key}`, `is stored under ${key} but its id is ${JSON.stringify(id)}`)
  }
}

function durability(v: HeketiDb['volumeentries'][string], entry: string): DurabilityRequest {
  const d = v.Info.durability
  if (!(DURABILITY_TYPES as readonly string[]).includes(d.type))
    throw new ImportError(entry, `Not a known volume durability type: ${d.type}`)
  const nonZero = <T extends Record<string, number>>(o: T) =>
    Object.fromEntries(Object.entries(o).filter(([, n]) => n !== 0)) as Partial<T>
  return {
    type: d.type as DurabilityRequest['type'],
    replicate: nonZero(d.replicate),
    disperse: nonZero(d.disperse),
  }
}

/** heqet's journal data for a heketi record, rebuilt from its actions (what the cleaner reads). */
function journalData(type: string, actions: OperationAction[], doc: HeketiDb): Record<string, unknown> {
  const first = (change: OperationAction['change']) => actions.find((a) => a.change === change)?.id
  switch (type) {
    case 'create-volume':
      return { volumeId: first('add-volume') }
    case 'delete-volume':
      return { volumeId: first('delete-volume') }
    case 'expand-volume':
      return { volumeId: first('expand-volume') }
    case 'clone-volume': {
      const cloneId = first('add-volume-clone')
      return {
        sourceId: first('clone-volume'),
        cloneId,
        // heketi keeps a clone's requested name only in memory; its default is the best guess
        cloneName: `vol_${cloneId}`,
        brickIds: actions.filter((a) => a.change === 'add-brick').map((a) => a.id),
      }
    }
    case 'evict-brick': {
      const brickId = first('delete-brick')
      return { brickId, volumeId: brickId ? doc.brickentries[brickId]?.Info.volume : undefined }
    }
    case 'create-block-volume':
    case 'delete-block-volume':
    case 'expand-block-volume': {
      const kind =
        type === 'create-block-volume' ? 'add' : type === 'delete-block-volume' ? 'delete' : 'expand'
      const blockVolumeId = first(`${kind}-block-volume`) ?? ''
      const bv = doc.blockvolumeentries[blockVolumeId]?.Info
      const hostingVolumeId = bv?.blockhostingvolume ?? ''
      const target = {
        blockVolumeId,
        blockVolumeName: bv?.name ?? '',
        hostingVolumeId,
        hostingVolumeName: doc.volumeentries[hostingVolumeId]?.Info.name ?? '',
      }
      if (type === 'create-block-volume') {
        const volumeId = first('add-volume')
        return { ...target, newHosting: volumeId !== undefined, ...(volumeId ? { volumeId } : {}) }
      }
      // heketi changes the size only when the expand finishes
      return type === 'expand-block-volume' ? { ...target, oldSizeGiB: bv?.size ?? 0 } : target
    }
    default:
      return {}
  }
}

/** heketi record types heqet's cleaner can rebuild and finish or undo. */
const CLEANABLE = new Set([
  'create-volume',
  'delete-volume',
  'expand-volume',
  'clone-volume',
  'evict-brick',
  'create-block-volume',
  'delete-block-volume',
  'expand-block-volume',
])

function convert(doc: HeketiDb): Omit<ImportedDb, 'notes' | 'attribute'> & { notes: string[] } {
  const notes: string[] = []
  const cluster = Object.values(doc.clusterentries).map(
    ({ Info: c }): ClusterEntry => ({
      id: c.id,
      nodes: sorted(c.nodes),
      volumes: sorted(c.volumes),
      blockVolumes: sorted(c.blockvolumes),
      block: c.block,
      file: c.file,
    }),
  )
  const node = Object.values(doc.nodeentries).map((n): NodeEntry => {
    const entry = `node ${n.Info.id}`
    return {
      id: n.Info.id,
      clusterId: n.Info.cluster,
      zone: n.Info.zone,
      hostnames: { manage: n.Info.hostnames.manage, storage: n.Info.hostnames.storage },
      tags: n.Info.tags,
      state: oneOf(STATES, n.State, entry, 'state'),
      devices: sorted(n.Devices),
    }
  })
  const device = Object.values(doc.deviceentries).map((d): DeviceEntry => {
    const entry = `device ${d.Info.id}`
    return {
      id: d.Info.id,
      nodeId: d.NodeId,
      name: d.Info.name,
      state: oneOf(STATES, d.State, entry, 'state'),
      storage: { totalKiB: d.Info.storage.total, freeKiB: d.Info.storage.free, usedKiB: d.Info.storage.used },
      extentSizeKiB: d.ExtentSize,
      pvUuid: d.Info.pv_uuid,
      paths: d.Info.paths,
      tags: d.Info.tags,
      bricks: sorted(d.Bricks),
    }
  })
  const brick = Object.values(doc.brickentries).map((b): BrickEntry => {
    const entry = `brick ${b.Info.id}`
    const subType = SUBTYPES[b.SubType]
    if (subType === undefined) throw new ImportError(entry, `SubType ${b.SubType} is not 0, 1 or 2`)
    return {
      id: b.Info.id,
      path: b.Info.path,
      deviceId: b.Info.device,
      nodeId: b.Info.node,
      volumeId: b.Info.volume,
      sizeKiB: b.Info.size,
      tpSizeKiB: b.TpSize,
      poolMetadataSizeKiB: b.PoolMetadataSize,
      pendingId: b.Pending.Id,
      lvmThinPool: b.LvmThinPool,
      lvmLv: b.LvmLv,
      subType,
    }
  })
  const volume = Object.values(doc.volumeentries).map((v): VolumeEntry => {
    const entry = `volume ${v.Info.id}`
    const bi = v.Info.blockinfo
    return {
      id: v.Info.id,
      name: v.Info.name,
      sizeGiB: v.Info.size,
      clusterId: v.Info.cluster,
      durability: durability(v, entry),
      gid: v.Info.gid,
      block: v.Info.block,
      // heketi stores the factor as given and reports 1 when snapshots are off
      snapshot: { enable: v.Info.snapshot.enable, factor: v.Info.snapshot.factor },
      blockInfo: {
        freeSizeGiB: bi.freesize,
        reservedSizeGiB: bi.reservedsize,
        blockVolumes: sorted(bi.blockvolume),
        restriction: oneOf(RESTRICTIONS, bi.restriction, entry, 'block restriction'),
      },
      requestedClusters: v.Info.clusters,
      glusterVolumeOptions: v.GlusterVolumeOptions,
      bricks: sorted(v.Bricks),
      pendingId: v.Pending.Id,
    }
  })
  const blockvolume = Object.values(doc.blockvolumeentries).map(
    ({ Info: b, Pending }): BlockVolumeEntry => ({
      id: b.id,
      name: b.name,
      sizeGiB: b.size,
      usableSizeGiB: b.usablesize,
      hacount: b.hacount,
      auth: b.auth,
      requestedClusters: b.clusters,
      clusterId: b.cluster,
      blockHostingVolume: b.blockhostingvolume,
      hosts: b.blockvolume.hosts,
      iqn: b.blockvolume.iqn,
      lun: b.blockvolume.lun,
      username: b.blockvolume.username,
      password: b.blockvolume.password,
      pendingId: Pending.Id,
    }),
  )
  const pendingop = Object.values(doc.pendingoperations).map((o): PendingOperationEntry => {
    const entry = `pending operation ${o.Id}`
    const type = OPERATION_TYPES[o.Type]
    if (type === undefined) throw new ImportError(entry, `Type ${o.Type} is not a known operation type`)
    oneOf(['', 'stale', 'failed'], o.Status, entry, 'status')
    const actions = o.Actions.map((a, i): OperationAction => {
      const change = CHANGE_KINDS[a.Change]
      if (change === undefined)
        throw new ImportError(entry, `Actions[${i}].Change ${a.Change} is not a known change`)
      return a.Delta === null ? { change, id: a.Id } : { change, id: a.Id, delta: a.Delta }
    })
    if (!CLEANABLE.has(type))
      notes.push(`${entry} (${type}) cannot be cleaned by heqet: finish it with heketi or by hand`)
    return {
      id: o.Id,
      timestamp: o.Timestamp,
      type,
      actions,
      // nothing survives the move as running: the cleaner finishes or undoes it
      status: 'stale',
      doneSteps: [],
      data: journalData(type, actions, doc),
    }
  })
  return { cluster, node, device, brick, volume, blockvolume, pendingop, notes }
}

/**
 * Read, upgrade, convert and check a heketi export. Throws ImportError (entry
 * and reason) for anything heqet cannot take whole; writes nothing.
 */
export function importHeketiExport(text: string, opts: { generationId: string }): ImportedDb {
  const doc = readHeketiExport(text)
  keyMatchesId(doc.clusterentries, 'cluster', (c: HeketiDb['clusterentries'][string]) => c.Info.id)
  keyMatchesId(doc.nodeentries, 'node', (n: HeketiDb['nodeentries'][string]) => n.Info.id)
  keyMatchesId(doc.deviceentries, 'device', (d: HeketiDb['deviceentries'][string]) => d.Info.id)
  keyMatchesId(doc.brickentries, 'brick', (b: HeketiDb['brickentries'][string]) => b.Info.id)
  keyMatchesId(doc.volumeentries, 'volume', (v: HeketiDb['volumeentries'][string]) => v.Info.id)
  keyMatchesId(
    doc.blockvolumeentries,
    'block volume',
    (b: HeketiDb['blockvolumeentries'][string]) => b.Info.id,
  )
  keyMatchesId(doc.pendingoperations, 'pending operation', (o: HeketiDb['pendingoperations'][string]) => o.Id)
  keyMatchesId(doc.dbattributeentries, 'db attribute', (a: HeketiDb['dbattributeentries'][string]) => a.Key)
  for (const key of Object.keys(doc.dbattributeentries)) {
    if (!KNOWN_ATTRIBUTES.includes(key))
      throw new ImportError(
        `db attribute ${key}`,
        'Unable to initialize db, unknown attributes are present (db from a newer version of heketi?)',
      )
  }
  const notes = upgradeHeketiExport(doc)
  const converted = convert(doc)
  checkValues(converted)
  checkReferences(converted)
  checkSizes(converted)
  // every step has run now (all known attributes are step markers or the generation id),
  // and the generation id is new because the contents left heketi's hands
  return {
    ...converted,
    attribute: currentAttributes(opts.generationId),
    notes: [...notes, ...converted.notes],
  }
}

/** Write an imported DB into an empty store (one transaction), hostname registry included. */
export function writeImported(tx: WriteTxn, db: ImportedDb): void {
  for (const c of db.cluster) tx.put('cluster', c.id, c)
  for (const n of db.node) {
    tx.put('node', n.id, n)
    for (const h of n.hostnames.manage) tx.put('hostname', `manage:${h}`, { nodeId: n.id })
    for (const h of n.hostnames.storage) tx.put('hostname', `storage:${h}`, { nodeId: n.id })
  }
  for (const d of db.device) tx.put('device', d.id, d)
  for (const b of db.brick) tx.put('brick', b.id, b)
  for (const v of db.volume) tx.put('volume', v.id, v)
  for (const b of db.blockvolume) tx.put('blockvolume', b.id, b)
  for (const o of db.pendingop) tx.put('pendingop', o.id, o)
  for (const a of db.attribute) tx.put('attribute', a.key, a)
}
