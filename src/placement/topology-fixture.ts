// Compact topology descriptions turned into real cluster/node/device entries,
// for placement's tests and benchmark.

import type { Store } from '../../db/store.ts'
import type { ClusterEntry, DeviceEntry, EntityState, Id, NodeEntry } from '../entries.ts'
import { GiB_IN_KiB } from './geometry.ts'

export interface DeviceSpec {
  id: Id
  freeGiB?: number
  /** overrides freeGiB when set */
  freeKiB?: number
  state?: EntityState
  extentSizeKiB?: number
  tags?: Record<string, string>
}

export interface NodeSpec {
  id: Id
  zone: number
  state?: EntityState
  tags?: Record<string, string>
  devices: DeviceSpec[]
}

export function clusterEntry(id: Id, nodes: readonly NodeSpec[]): ClusterEntry {
  return { id, nodes: nodes.map((n) => n.id).sort(), volumes: [], blockVolumes: [], block: false, file: true }
}

export function nodeEntry(clusterId: Id, spec: NodeSpec): NodeEntry {
  return {
    id: spec.id,
    clusterId,
    zone: spec.zone,
    hostnames: { manage: [`${spec.id}.manage`], storage: [`${spec.id}.storage`] },
    tags: { ...spec.tags },
    state: spec.state ?? 'online',
    devices: spec.devices.map((d) => d.id).sort(),
  }
}

export function deviceEntry(nodeId: Id, spec: DeviceSpec): DeviceEntry {
  const freeKiB = spec.freeKiB ?? (spec.freeGiB ?? 100) * GiB_IN_KiB
  return {
    id: spec.id,
    nodeId,
    name: `/dev/${spec.id}`,
    state: spec.state ?? 'online',
    storage: { totalKiB: freeKiB, freeKiB, usedKiB: 0 },
    extentSizeKiB: spec.extentSizeKiB ?? 4096,
    pvUuid: '',
    paths: [],
    tags: { ...spec.tags },
    bricks: [],
  }
}

/** Writes one cluster with its nodes and devices in a single commit. */
export async function seedCluster(store: Store, clusterId: Id, nodes: readonly NodeSpec[]): Promise<void> {
  await store.write((tx) => {
    tx.put('cluster', clusterId, clusterEntry(clusterId, nodes))
    for (const node of nodes) {
      tx.put('node', node.id, nodeEntry(clusterId, node))
      for (const device of node.devices) tx.put('device', device.id, deviceEntry(node.id, device))
    }
  })
}
