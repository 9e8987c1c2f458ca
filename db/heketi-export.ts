// heketi's JSON export format (`heketi db export`, GET /db/dump), produced
// from heqet's store: field order, omitted-when-empty rules and sorted map
// keys as heketi's Go structs write them. db/heketi-import.ts reads it back.
import { CHANGE_KINDS, type DurabilityRequest, type OperationType, type VolumeEntry } from './entries.ts'
import type { ReadTxn } from './store.ts'

/** heketi's persisted operation type numbers (the index). */
export const OPERATION_TYPES: readonly OperationType[] = [
  'unknown',
  'create-volume',
  'delete-volume',
  'expand-volume',
  'create-block-volume',
  'delete-block-volume',
  'remove-device',
  'clone-volume',
  'evict-brick',
  'expand-block-volume',
]
const SUBTYPES = { unknown: 0, normal: 1, arbiter: 2 } as const

const orUndefined = <T>(v: T[]) => (v.length > 0 ? v : undefined)

/** Go writes map keys sorted; omitted when empty */
function sortedTags(tags: Record<string, string>): Record<string, string> | undefined {
  const keys = Object.keys(tags).sort()
  return keys.length > 0 ? Object.fromEntries(keys.map((k) => [k, tags[k]!])) : undefined
}

/** the request as stored, zero numbers and an empty type omitted (Go's omitempty) */
function durability(d: DurabilityRequest) {
  return {
    type: d.type || undefined,
    replicate: { replica: d.replicate.replica || undefined },
    disperse: { data: d.disperse.data || undefined, redundancy: d.disperse.redundancy || undefined },
  }
}

/** heketi keeps the mount info of the last update; it is what every read recomputes */
export function volumeMount(tx: ReadTxn, v: VolumeEntry) {
  const cluster = tx.get('cluster', v.clusterId)
  const hosts = (cluster?.nodes ?? []).flatMap((id) => {
    const n = tx.get('node', id)
    return n ? [n.hostnames.storage[0]!] : []
  })
  return {
    glusterfs: {
      hosts,
      device: `${hosts[0] ?? ''}:${v.name}`,
      options: { 'backup-volfile-servers': hosts.slice(1).join(',') },
    },
  }
}

export function heketiDump(tx: ReadTxn): Record<string, Record<string, unknown>> {
  const byId = <T extends { id: string }>(list: T[], f: (x: T) => unknown) =>
    Object.fromEntries(list.map((x) => [x.id, f(x)]))
  return {
    clusterentries: byId(tx.values('cluster'), (c) => ({
      Info: {
        id: c.id,
        nodes: c.nodes,
        volumes: c.volumes,
        block: c.block,
        file: c.file,
        blockvolumes: c.blockVolumes,
      },
    })),
    volumeentries: byId(tx.values('volume'), (v) => ({
      Info: {
        size: v.sizeGiB,
        clusters: orUndefined(v.requestedClusters),
        name: v.name,
        durability: durability(v.durability),
        gid: v.gid || undefined,
        block: v.block || undefined,
        snapshot: { enable: v.snapshot.enable, factor: v.snapshot.factor },
        id: v.id,
        cluster: v.clusterId,
        mount: volumeMount(tx, v),
        blockinfo: {
          freesize: v.blockInfo.freeSizeGiB || undefined,
          reservedsize: v.blockInfo.reservedSizeGiB || undefined,
          blockvolume: orUndefined(v.blockInfo.blockVolumes),
          restriction: v.blockInfo.restriction || undefined,
        },
      },
      Bricks: v.bricks,
      GlusterVolumeOptions: v.glusterVolumeOptions,
      Pending: { Id: v.pendingId },
    })),
    brickentries: byId(tx.values('brick'), (b) => ({
      Info: {
        id: b.id,
        path: b.path,
        device: b.deviceId,
        node: b.nodeId,
        volume: b.volumeId,
        size: b.sizeKiB,
      },
      TpSize: b.tpSizeKiB,
      PoolMetadataSize: b.poolMetadataSizeKiB,
      Pending: { Id: b.pendingId },
      LvmThinPool: b.lvmThinPool,
      LvmLv: b.lvmLv,
      SubType: SUBTYPES[b.subType],
    })),
    nodeentries: byId(tx.values('node'), (n) => ({
      State: n.state,
      Info: {
        zone: n.zone,
        hostnames: n.hostnames,
        cluster: n.clusterId,
        tags: sortedTags(n.tags),
        id: n.id,
      },
      Devices: n.devices,
    })),
    deviceentries: byId(tx.values('device'), (d) => ({
      State: d.state,
      Info: {
        name: d.name,
        tags: sortedTags(d.tags),
        storage: { total: d.storage.totalKiB, free: d.storage.freeKiB, used: d.storage.usedKiB },
        id: d.id,
        paths: orUndefined(d.paths),
        pv_uuid: d.pvUuid || undefined,
      },
      Bricks: d.bricks,
      NodeId: d.nodeId,
      ExtentSize: d.extentSizeKiB,
    })),
    blockvolumeentries: byId(tx.values('blockvolume'), (b) => ({
      Info: {
        size: b.sizeGiB,
        name: b.name,
        clusters: orUndefined(b.requestedClusters),
        hacount: b.hacount || undefined,
        auth: b.auth || undefined,
        id: b.id,
        blockvolume: { hosts: b.hosts, iqn: b.iqn, lun: b.lun, username: b.username, password: b.password },
        cluster: b.clusterId,
        blockhostingvolume: b.blockHostingVolume,
        usablesize: b.usableSizeGiB || undefined,
      },
      Pending: { Id: b.pendingId },
    })),
    dbattributeentries: Object.fromEntries(
      tx.values('attribute').map((a) => [a.key, { Key: a.key, Value: a.value }]),
    ),
    pendingoperations: byId(tx.values('pendingop'), (o) => ({
      Id: o.id,
      Timestamp: o.timestamp,
      Type: Math.max(0, OPERATION_TYPES.indexOf(o.type)),
      Actions: o.actions.map((a) => ({
        Change: CHANGE_KINDS.indexOf(a.change),
        Id: a.id,
        Delta: a.delta ?? null,
      })),
      Status: o.status,
    })),
  }
}
