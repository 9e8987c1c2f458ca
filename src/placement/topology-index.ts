// The placement view of the topology, built once from the store and kept
// current from its commit stream, so a placement request never scans the
// database. Per cluster: zones → nodes → devices, each level ordered by the
// largest free space of an online device below it, so the allocator can stop
// scanning as soon as nothing further down the list can hold a brick.

import type { ClusterEntry, DeviceEntry, EntityState, Id, NodeEntry } from '../../db/entries.ts'
import type { Change, ReadTxn, Store } from '../../db/store.ts'
import { followStore } from '../store-follower.ts'

type Tags = Readonly<Record<string, string>>

export interface DeviceView {
  readonly id: Id
  readonly nodeId: Id
  readonly state: EntityState
  readonly freeKiB: number
  readonly extentSizeKiB: number
  readonly tags: Tags
}

export interface NodeView {
  readonly id: Id
  readonly clusterId: Id
  readonly zone: number
  readonly state: EntityState
  readonly tags: Tags
  /** all devices of the node, most free first (ties by id) */
  readonly devices: readonly DeviceView[]
  /** free KiB of its best online device; -1 when the node or all its devices are not online */
  readonly maxOnlineFreeKiB: number
  /** stable hash of the id, for deterministic tie-breaks */
  readonly idHash: number
}

export interface ZoneView {
  readonly zone: number
  /** nodes by maxOnlineFreeKiB, largest first (ties by id) */
  readonly nodes: readonly NodeView[]
  readonly maxOnlineFreeKiB: number
}

export interface ClusterView {
  readonly id: Id
  /** false when nodes name a cluster the store does not (yet) hold */
  readonly exists: boolean
  readonly nodeCount: number
  /** zones by maxOnlineFreeKiB, largest first (ties by zone number) */
  readonly zones: readonly ZoneView[]
}

export interface ClusterSummary {
  clusterId: Id
  nodes: number
  onlineNodes: number
  zones: number
  devices: number
  /** online devices on online nodes: what placement may use */
  onlineDevices: number
  /** free KiB summed over those devices */
  freeKiB: number
  largestFreeKiB: number
}

/**
 * A device as placement sees it: the stored entry itself (entries are
 * immutable; a commit hands the index the new one), so 100,000 devices are
 * not held twice.
 */
class Device implements DeviceView {
  constructor(public entry: DeviceEntry) {}
  get id(): Id {
    return this.entry.id
  }
  get nodeId(): Id {
    return this.entry.nodeId
  }
  get state(): EntityState {
    return this.entry.state
  }
  get freeKiB(): number {
    return this.entry.storage.freeKiB
  }
  get extentSizeKiB(): number {
    return this.entry.extentSizeKiB
  }
  get tags(): Tags {
    return this.entry.tags
  }
}

interface Node {
  id: Id
  clusterId: Id
  zone: number
  state: EntityState
  tags: Tags
  devices: Device[]
  maxOnlineFreeKiB: number
  idHash: number
}

interface Zone {
  zone: number
  cluster: Cluster
  nodes: Node[]
  maxOnlineFreeKiB: number
}

interface Cluster {
  id: Id
  exists: boolean
  nodeCount: number
  zones: Zone[]
  zoneByNumber: Map<number, Zone>
}

export class TopologyIndex {
  private readonly clusters = new Map<Id, Cluster>()
  private readonly nodes = new Map<Id, Node>()
  private readonly devices = new Map<Id, Device>()
  /** kept apart from nodes so a device committed before its node still lands on it */
  private readonly devicesByNode = new Map<Id, Device[]>()
  // Re-sorting is deferred to the next read: a commit touches few nodes,
  // and one allocation reads many times.
  private readonly dirtyNodes = new Set<Node>()
  private readonly dirtyZones = new Set<Zone>()
  private readonly dirtyClusters = new Set<Cluster>()

  /** Reads the whole topology once, then follows every commit of `store`. */
  constructor(store: Pick<Store, 'read' | 'onCommit'>) {
    followStore(
      store,
      (s) => this.load(s),
      (changes) => this.apply(changes),
    )
  }

  private load(store: Pick<Store, 'read'>): void {
    for (const m of [this.clusters, this.nodes, this.devices, this.devicesByNode]) m.clear()
    for (const s of [this.dirtyNodes, this.dirtyZones, this.dirtyClusters]) s.clear()
    store.read((tx: ReadTxn) => {
      for (const c of tx.values('cluster')) this.putCluster(c)
      for (const n of tx.values('node')) this.putNode(n)
      for (const d of tx.values('device')) this.putDevice(d)
    })
  }

  /** Applies committed changes; called by the store after each commit. */
  apply(changes: readonly Change[]): void {
    for (const { bucket, key, value } of changes) {
      if (bucket === 'cluster')
        value === undefined ? this.deleteCluster(key) : this.putCluster(value as ClusterEntry)
      else if (bucket === 'node')
        value === undefined ? this.deleteNode(key) : this.putNode(value as NodeEntry)
      else if (bucket === 'device')
        value === undefined ? this.deleteDevice(key) : this.putDevice(value as DeviceEntry)
    }
  }

  cluster(clusterId: Id): ClusterView | undefined {
    this.refresh()
    return this.clusters.get(clusterId)
  }

  node(nodeId: Id): NodeView | undefined {
    this.refresh()
    return this.nodes.get(nodeId)
  }

  device(deviceId: Id): DeviceView | undefined {
    return this.devices.get(deviceId)
  }

  clusterIds(): Id[] {
    return [...this.clusters.keys()].sort()
  }

  /** Counts for error messages and the capacity dashboard; O(devices of the cluster). */
  clusterSummary(clusterId: Id): ClusterSummary {
    const summary: ClusterSummary = {
      clusterId,
      nodes: 0,
      onlineNodes: 0,
      zones: 0,
      devices: 0,
      onlineDevices: 0,
      freeKiB: 0,
      largestFreeKiB: 0,
    }
    const cluster = this.cluster(clusterId)
    if (cluster === undefined) return summary
    summary.zones = cluster.zones.length
    for (const zone of cluster.zones) {
      for (const node of zone.nodes) {
        summary.nodes++
        summary.devices += node.devices.length
        if (node.state !== 'online') continue
        summary.onlineNodes++
        for (const d of node.devices) {
          if (d.state !== 'online') continue
          summary.onlineDevices++
          summary.freeKiB += d.freeKiB
          summary.largestFreeKiB = Math.max(summary.largestFreeKiB, d.freeKiB)
        }
      }
    }
    return summary
  }

  /** A canonical plain copy of everything indexed, in index order (tests compare it with a rebuild). */
  snapshot(): unknown {
    this.refresh()
    return this.clusterIds().map((id) => {
      const c = this.clusters.get(id)!
      return {
        id,
        exists: c.exists,
        nodeCount: c.nodeCount,
        zones: c.zones.map((z) => ({
          zone: z.zone,
          maxOnlineFreeKiB: z.maxOnlineFreeKiB,
          nodes: z.nodes.map((n) => ({
            id: n.id,
            state: n.state,
            tags: sortedTags(n.tags),
            maxOnlineFreeKiB: n.maxOnlineFreeKiB,
            devices: n.devices.map((d) => ({
              id: d.id,
              state: d.state,
              freeKiB: d.freeKiB,
              extentSizeKiB: d.extentSizeKiB,
              tags: sortedTags(d.tags),
            })),
          })),
        })),
      }
    })
  }

  private clusterFor(id: Id): Cluster {
    let c = this.clusters.get(id)
    if (c === undefined) {
      c = { id, exists: false, nodeCount: 0, zones: [], zoneByNumber: new Map() }
      this.clusters.set(id, c)
    }
    return c
  }

  private putCluster(entry: ClusterEntry): void {
    this.clusterFor(entry.id).exists = true
  }

  private deleteCluster(id: Id): void {
    const c = this.clusters.get(id)
    if (c === undefined) return
    c.exists = false
    if (c.nodeCount === 0) this.clusters.delete(id)
  }

  private putNode(entry: NodeEntry): void {
    const old = this.nodes.get(entry.id)
    if (old !== undefined && (old.clusterId !== entry.clusterId || old.zone !== entry.zone)) {
      this.detachNode(old)
    }
    const node: Node = old ?? {
      id: entry.id,
      clusterId: entry.clusterId,
      zone: entry.zone,
      state: entry.state,
      tags: {},
      devices: this.devicesFor(entry.id),
      maxOnlineFreeKiB: -1,
      idHash: hashString(entry.id),
    }
    const attach = old === undefined || old.clusterId !== entry.clusterId || old.zone !== entry.zone
    node.clusterId = entry.clusterId
    node.zone = entry.zone
    node.state = entry.state
    node.tags = entry.tags
    this.nodes.set(node.id, node)
    if (attach) this.attachNode(node)
    this.dirtyNodes.add(node)
  }

  private deleteNode(id: Id): void {
    const node = this.nodes.get(id)
    if (node === undefined) return
    this.detachNode(node)
    this.nodes.delete(id)
    this.dirtyNodes.delete(node)
  }

  private attachNode(node: Node): void {
    const cluster = this.clusterFor(node.clusterId)
    let zone = cluster.zoneByNumber.get(node.zone)
    if (zone === undefined) {
      zone = { zone: node.zone, cluster, nodes: [], maxOnlineFreeKiB: -1 }
      cluster.zoneByNumber.set(node.zone, zone)
      cluster.zones.push(zone)
    }
    zone.nodes.push(node)
    cluster.nodeCount++
    this.dirtyZones.add(zone)
  }

  private detachNode(node: Node): void {
    const cluster = this.clusters.get(node.clusterId)
    const zone = cluster?.zoneByNumber.get(node.zone)
    if (cluster === undefined || zone === undefined) return
    zone.nodes.splice(zone.nodes.indexOf(node), 1)
    cluster.nodeCount--
    if (zone.nodes.length === 0) {
      cluster.zoneByNumber.delete(zone.zone)
      cluster.zones.splice(cluster.zones.indexOf(zone), 1)
      this.dirtyZones.delete(zone)
      this.dirtyClusters.add(cluster)
    } else {
      this.dirtyZones.add(zone)
    }
    if (cluster.nodeCount === 0 && !cluster.exists) {
      this.clusters.delete(cluster.id)
      this.dirtyClusters.delete(cluster)
    }
  }

  private devicesFor(nodeId: Id): Device[] {
    let list = this.devicesByNode.get(nodeId)
    if (list === undefined) {
      list = []
      this.devicesByNode.set(nodeId, list)
    }
    return list
  }

  private putDevice(entry: DeviceEntry): void {
    let device = this.devices.get(entry.id)
    if (device !== undefined && device.nodeId !== entry.nodeId) {
      this.deleteDevice(entry.id)
      device = undefined
    }
    if (device === undefined) {
      device = new Device(entry)
      this.devices.set(device.id, device)
      this.devicesFor(device.nodeId).push(device)
    }
    device.entry = entry
    this.touchNodeOf(device)
  }

  private deleteDevice(id: Id): void {
    const device = this.devices.get(id)
    if (device === undefined) return
    this.devices.delete(id)
    const list = this.devicesFor(device.nodeId)
    list.splice(list.indexOf(device), 1)
    if (list.length === 0 && !this.nodes.has(device.nodeId)) this.devicesByNode.delete(device.nodeId)
    this.touchNodeOf(device)
  }

  private touchNodeOf(device: Device): void {
    const node = this.nodes.get(device.nodeId)
    if (node !== undefined) this.dirtyNodes.add(node)
  }

  private refresh(): void {
    if (this.dirtyNodes.size === 0 && this.dirtyZones.size === 0 && this.dirtyClusters.size === 0) return
    // dirtyZones holds the zones that gained or lost nodes (sorted whole below);
    // in any other zone a changed node moves to its place (a create changes
    // three nodes of zones holding thousands)
    const resorted = new Set(this.dirtyZones)
    for (const node of this.dirtyNodes) {
      const before = node.maxOnlineFreeKiB
      node.devices.sort(byFreeThenId)
      node.maxOnlineFreeKiB = -1
      if (node.state === 'online') {
        for (const d of node.devices) {
          if (d.state === 'online') {
            node.maxOnlineFreeKiB = d.freeKiB
            break
          }
        }
      }
      const zone = this.clusters.get(node.clusterId)?.zoneByNumber.get(node.zone)
      if (zone === undefined || resorted.has(zone)) continue
      if (node.maxOnlineFreeKiB !== before) moveToPlace(zone.nodes, node, before)
      zone.maxOnlineFreeKiB = zone.nodes[0]?.maxOnlineFreeKiB ?? -1
      this.dirtyClusters.add(zone.cluster)
    }
    for (const zone of this.dirtyZones) {
      zone.nodes.sort(byMaxFreeThenId)
      zone.maxOnlineFreeKiB = zone.nodes[0]?.maxOnlineFreeKiB ?? -1
      this.dirtyClusters.add(zone.cluster)
    }
    for (const cluster of this.dirtyClusters) cluster.zones.sort(byMaxFreeThenZone)
    this.dirtyNodes.clear()
    this.dirtyZones.clear()
    this.dirtyClusters.clear()
  }
}

function byFreeThenId(a: Device, b: Device): number {
  return b.freeKiB - a.freeKiB || compareIds(a.id, b.id)
}

function byMaxFreeThenId(a: Node, b: Node): number {
  return b.maxOnlineFreeKiB - a.maxOnlineFreeKiB || compareIds(a.id, b.id)
}

/**
 * `nodes` is ordered by byMaxFreeThenId with `node` still at the place of
 * its old key `beforeKiB`: move it to the place of its current key.
 */
function moveToPlace(nodes: Node[], node: Node, beforeKiB: number): void {
  const old = { ...node, maxOnlineFreeKiB: beforeKiB }
  let at = lowerBound(nodes, old)
  if (nodes[at] !== node) at = nodes.indexOf(node)
  nodes.splice(at, 1)
  nodes.splice(lowerBound(nodes, node), 0, node)
}

/** first index whose node does not sort before `probe` */
function lowerBound(nodes: readonly Node[], probe: Node): number {
  let lo = 0
  let hi = nodes.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (byMaxFreeThenId(nodes[mid]!, probe) < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

function byMaxFreeThenZone(a: Zone, b: Zone): number {
  return b.maxOnlineFreeKiB - a.maxOnlineFreeKiB || a.zone - b.zone
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function sortedTags(tags: Tags): [string, string][] {
  return Object.entries(tags).sort(([a], [b]) => compareIds(a, b))
}

/** FNV-1a, 32 bit: cheap, stable across processes. */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
