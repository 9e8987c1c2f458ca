// Entities rendered in heketi's wire shapes: field order, omitted-when-empty
// rules and sorted map keys exactly as heketi's Go structs produce them.

import type {
  BlockVolumeEntry,
  BrickEntry,
  ClusterEntry,
  DeviceEntry,
  NodeEntry,
  VolumeEntry,
} from '../db/entries.ts'
import { volumeMount } from '../db/heketi-export.ts'
import type { ReadTxn } from '../db/store.ts'
import { isBlockVolumeVisible, isVolumeListed } from '../src/clusters.ts'

export function sortedMap(map: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const key of Object.keys(map).sort()) out[key] = map[key]!
  return out
}

const nonEmptyMap = (m: Record<string, string>) => (Object.keys(m).length > 0 ? sortedMap(m) : undefined)
const nonEmpty = <T>(list: T[]) => (list.length > 0 ? list : undefined)

export function clusterView(tx: ReadTxn, c: ClusterEntry) {
  return {
    id: c.id,
    nodes: c.nodes,
    volumes: c.volumes.filter((id) => {
      const v = tx.get('volume', id)
      return v !== undefined && isVolumeListed(tx, v)
    }),
    block: c.block,
    file: c.file,
    blockvolumes: c.blockVolumes.filter((id) => {
      const bv = tx.get('blockvolume', id)
      return bv !== undefined && isBlockVolumeVisible(bv)
    }),
  }
}

export function brickView(b: BrickEntry) {
  return { id: b.id, path: b.path, device: b.deviceId, node: b.nodeId, volume: b.volumeId, size: b.sizeKiB }
}

export function deviceView(tx: ReadTxn, d: DeviceEntry) {
  return {
    name: d.name,
    tags: nonEmptyMap(d.tags),
    storage: { total: d.storage.totalKiB, free: d.storage.freeKiB, used: d.storage.usedKiB },
    id: d.id,
    paths: nonEmpty(d.paths),
    pv_uuid: d.pvUuid || undefined,
    state: d.state,
    bricks: d.bricks.flatMap((id) => {
      const b = tx.get('brick', id)
      return b ? [brickView(b)] : []
    }),
  }
}

export function nodeView(tx: ReadTxn, n: NodeEntry) {
  return {
    zone: n.zone,
    hostnames: { manage: n.hostnames.manage, storage: n.hostnames.storage },
    cluster: n.clusterId,
    tags: nonEmptyMap(n.tags),
    id: n.id,
    state: n.state,
    devices: n.devices.flatMap((id) => {
      const d = tx.get('device', id)
      return d ? [deviceView(tx, d)] : []
    }),
  }
}

/** Mount info recomputed from the cluster's current nodes, as heketi does on every read. */
export const mountView = volumeMount

export function volumeView(tx: ReadTxn, v: VolumeEntry) {
  const d = v.durability
  const bi = v.blockInfo
  return {
    size: v.sizeGiB,
    name: v.name,
    durability: {
      type: d.type || 'none',
      // heketi echoes the request, so a replicate request without a count
      // showed `"replicate":{}` and heketi-cli divided by zero; heqet shows
      // the counts actually used for the type in effect
      replicate: d.replicate.replica || d.type === 'replicate' ? { replica: d.replicate.replica || 2 } : {},
      disperse: {
        ...(d.disperse.data || d.type === 'disperse' ? { data: d.disperse.data || 4 } : {}),
        ...(d.disperse.redundancy || d.type === 'disperse' ? { redundancy: d.disperse.redundancy || 2 } : {}),
      },
    },
    gid: v.gid || undefined,
    glustervolumeoptions: nonEmpty(v.glusterVolumeOptions),
    block: v.block || undefined,
    snapshot: { enable: v.snapshot.enable, factor: v.snapshot.factor },
    id: v.id,
    cluster: v.clusterId,
    mount: mountView(tx, v),
    blockinfo: {
      freesize: bi.freeSizeGiB || undefined,
      reservedsize: bi.reservedSizeGiB || undefined,
      blockvolume: nonEmpty(
        bi.blockVolumes.filter((id) => {
          const bv = tx.get('blockvolume', id)
          return bv !== undefined && isBlockVolumeVisible(bv)
        }),
      ),
      restriction: bi.restriction || undefined,
    },
    bricks: v.bricks.flatMap((id) => {
      const b = tx.get('brick', id)
      return b ? [brickView(b)] : []
    }),
  }
}

/**
 * BlockVolumeInfoResponse: `clusters` and `auth` are never returned;
 * `hacount`, `cluster`, `blockhostingvolume`, `usablesize` omitted when
 * empty; `blockvolume.*` always present; usable size 0 reads as the size.
 */
export function blockVolumeView(bv: BlockVolumeEntry) {
  return {
    size: bv.sizeGiB,
    name: bv.name,
    hacount: bv.hacount || undefined,
    id: bv.id,
    blockvolume: {
      hosts: bv.hosts,
      iqn: bv.iqn,
      lun: bv.lun,
      username: bv.username,
      password: bv.password,
    },
    cluster: bv.clusterId || undefined,
    blockhostingvolume: bv.blockHostingVolume || undefined,
    usablesize: bv.usableSizeGiB || bv.sizeGiB || undefined,
  }
}
