// heketi's JSON export format (`heketi db export`, GET /db/dump), produced
// from heqet's store. The same shape is what a heketi DB migration reads.
import { CHANGE_KINDS, type OperationType } from './entries.ts'
import type { ReadTxn } from './store.ts'

const OPERATION_TYPES: OperationType[] = [
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

const orUndefined = <T>(v: T[] | Record<string, string>) =>
  (Array.isArray(v) ? v.length : Object.keys(v).length) > 0 ? v : undefined

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
        name: v.name,
        durability: {
          type: v.durability.type,
          replicate: v.durability.replicate,
          disperse: v.durability.disperse,
        },
        gid: v.gid || undefined,
        snapshot: v.snapshot,
        clusters: orUndefined(v.requestedClusters),
        block: v.block || undefined,
        id: v.id,
        cluster: v.clusterId,
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
        tags: orUndefined(n.tags),
        id: n.id,
      },
      Devices: n.devices,
    })),
    deviceentries: byId(tx.values('device'), (d) => ({
      State: d.state,
      Info: {
        name: d.name,
        tags: orUndefined(d.tags),
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
