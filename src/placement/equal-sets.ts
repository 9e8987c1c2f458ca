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
//
// When the sets only fit on distinct nodes (not zones), the dealt sets are
// then improved for zones (zone_checking none, where heqet prefers distinct
// zones): a brick on a zone its set uses twice moves to free room in a zone
// the set lacks, or trades places with a brick of another set, whenever that
// lowers the number of zone repeats. Both keep every set on distinct nodes
// and every device within its room, so the exactness above is unchanged.

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

  const sets: Slot[][] = Array.from({ length: setCount }, () => [])
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
    sets[s]!.push(slot)
  }
  if (by === 'node')
    spreadZones(
      sets,
      units.flatMap((u) => u.slots),
    )
  return sets.map((set) =>
    set.map((slot) => ({
      node: slot.node,
      device: slot.device,
      space: need.spaceOn(slot.device.extentSizeKiB),
    })),
  )
}

/** How many bricks of a set sit in a zone another brick of the set already uses. */
export function zoneRepeats(zones: readonly number[]): number {
  return zones.length - new Set(zones).size
}

/**
 * Lowers the zone repeats of dealt sets by moves into free room and trades
 * between sets, until neither helps. Each step removes at least one repeat,
 * so this ends after at most as many steps as there were repeats.
 */
function spreadZones(sets: Slot[][], slots: readonly Slot[]): void {
  const moveOnce = (): boolean => {
    for (const set of sets) {
      for (let i = 0; i < set.length; i++) {
        const zone = set[i]!.node.zone
        if (set.filter((x) => x.node.zone === zone).length < 2) continue
        // free room on a node of a zone this set lacks
        const zones = new Set(set.map((x) => x.node.zone))
        const free = slots.find((x) => x.left > 0 && !zones.has(x.node.zone))
        if (free === undefined) continue
        set[i]!.left++
        free.left--
        set[i] = free
        return true
      }
    }
    return false
  }
  while (moveOnce() || tradeForZones(sets)) {
    // each pass removed a repeat
  }
}

/**
 * One trade of alike bricks between two sets (each keeps distinct nodes)
 * that lowers their zone repeats together; false when there is none. The
 * bricks keep their devices, so no device takes more than before.
 */
export function tradeForZones<T extends { node: { id: Id; zone: number } }>(sets: T[][]): boolean {
  const repeats = (set: readonly T[]) => zoneRepeats(set.map((x) => x.node.zone))
  const onNodeOf = (set: readonly T[], except: number, pick: T) =>
    set.some((x, i) => i !== except && x.node.id === pick.node.id)
  for (const set of sets) {
    if (repeats(set) === 0) continue
    for (let i = 0; i < set.length; i++) {
      const mine = set[i]!
      if (set.filter((x) => x.node.zone === mine.node.zone).length < 2) continue
      for (const other of sets) {
        if (other === set) continue
        for (let j = 0; j < other.length; j++) {
          const theirs = other[j]!
          if (onNodeOf(set, i, theirs) || onNodeOf(other, j, mine)) continue
          const before = repeats(set) + repeats(other)
          set[i] = theirs
          other[j] = mine
          if (repeats(set) + repeats(other) < before) return true
          set[i] = mine
          other[j] = theirs
        }
      }
    }
  }
  return false
}
