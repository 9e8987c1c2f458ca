// Exact placement for sets whose bricks are all alike (no arbiter). The
// brick-by-brick search (set-search.ts) spreads zones and free space well but
// is greedy: a node with two small devices can be passed over for one with a
// single larger device, and the last sets then find too few nodes although a
// placement exists. When it gives up, this decides exactly:
//
//   n sets of k bricks, each set on k distinct units (nodes, or zones when
//   zones must differ), fit  ⇔  Σ over units of min(capacity, n) ≥ k·n
//
// where a unit's capacity is how many of these bricks its devices can still
// take. Necessary: a unit holds at most one brick per set. Sufficient: list
// each unit min(capacity, n) times and deal the first k·n entries round-robin
// over the sets; a unit's entries are consecutive and at most n, so they land
// in distinct sets.

import type { Id } from '../../db/entries.ts'
import {
  type BrickNeed,
  type BrickPick,
  type DeviceFilters,
  deviceAccepts,
  nodeUsable,
} from './set-search.ts'
import type { ClusterView, DeviceView, NodeView } from './topology-index.ts'

export type SetUnit = 'node' | 'zone'

interface Slot {
  node: NodeView
  device: DeviceView
  /** bricks of this need the device can still take */
  left: number
}

interface Unit {
  key: string
  zone: number
  slots: Slot[]
  capacity: number
}

/** How many bricks of `need` fit one after another (each must leave free > 0). */
export function bricksThatFit(freeKiB: number, brickTotalKiB: number): number {
  return freeKiB > brickTotalKiB ? Math.floor((freeKiB - 1) / brickTotalKiB) : 0
}

function unitsOf(cluster: ClusterView, filters: DeviceFilters, need: BrickNeed, by: SetUnit): Unit[] {
  const units = new Map<string, Unit>()
  for (const zone of cluster.zones) {
    for (const node of zone.nodes) {
      if (!nodeUsable(node, filters)) continue
      for (const device of node.devices) {
        if (!deviceAccepts(node, device, need.role, filters)) continue
        const left = bricksThatFit(device.freeKiB, need.spaceOn(device.extentSizeKiB).totalKiB)
        if (left === 0) continue
        const key = by === 'zone' ? `z${zone.zone}` : `n${node.id}`
        let unit = units.get(key)
        if (unit === undefined) {
          unit = { key, zone: zone.zone, slots: [], capacity: 0 }
          units.set(key, unit)
        }
        unit.slots.push({ node, device, left })
        unit.capacity += left
      }
    }
  }
  // by zone, so a set's members (dealt setCount entries apart) differ in zone where they can
  return [...units.values()].sort((a, b) => a.zone - b.zone || b.capacity - a.capacity || cmp(a.key, b.key))
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** The most sets of `setSize` such bricks the cluster can hold on distinct units. */
export function maxEqualSets(
  cluster: ClusterView,
  filters: DeviceFilters,
  need: BrickNeed,
  setSize: number,
  by: SetUnit,
): number {
  const capacities = unitsOf(cluster, filters, need, by).map((u) => u.capacity)
  const total = capacities.reduce((a, b) => a + b, 0)
  // Σ min(c, n) - k·n only decreases once n passes the point where it turns negative
  let best = 0
  for (let n = 1; n * setSize <= total; n++) {
    if (capacities.reduce((a, c) => a + Math.min(c, n), 0) >= setSize * n) best = n
    else break
  }
  return best
}

/** `setCount` sets of `setSize` bricks of `need`, or undefined when they cannot fit. */
export function dealEqualSets(
  cluster: ClusterView,
  filters: DeviceFilters,
  need: BrickNeed,
  setSize: number,
  setCount: number,
  by: SetUnit,
): BrickPick[][] | undefined {
  const units = unitsOf(cluster, filters, need, by)
  const entries: Unit[] = []
  for (const unit of units) for (let i = 0; i < Math.min(unit.capacity, setCount); i++) entries.push(unit)
  if (entries.length < setSize * setCount) return undefined

  const sets: BrickPick[][] = Array.from({ length: setCount }, () => [])
  const used: Set<Id>[] = Array.from({ length: setCount }, () => new Set())
  for (let j = 0; j < setSize * setCount; j++) {
    const s = j % setCount
    const unit = entries[j]!
    // within a zone unit, another set member may already be on a node of a
    // different zone only; nodes of this zone are all free for this set
    const slot = unit.slots
      .filter((x) => x.left > 0 && !used[s]!.has(x.node.id))
      .sort((a, b) => b.left - a.left || cmp(a.device.id, b.device.id))[0]
    if (slot === undefined) throw new Error(`equal-sets: no slot left in ${unit.key} (a bug)`)
    slot.left--
    used[s]!.add(slot.node.id)
    sets[s]!.push({ node: slot.node, device: slot.device, space: need.spaceOn(slot.device.extentSizeKiB) })
  }
  return sets
}
