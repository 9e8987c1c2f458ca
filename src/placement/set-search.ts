// Finding devices for the bricks of one set. Replaces heketi's random device
// ring: each brick goes to the eligible node with the most free space (its
// best device), preferring zones the set does not use yet, with ties broken
// by a hash of the request so equal clusters still spread.

import type { Id } from '../../db/entries.ts'
import {
  arbiterRole,
  type BrickRole,
  matchesTagRule,
  roleAccepts,
  type TagMatchRule,
} from './device-filters.ts'
import { type BrickSpace, brickSpaceLowerBoundKiB, brickSpaceOnDevice } from './geometry.ts'
import type { ClusterView, DeviceView, NodeView, ZoneView } from './topology-index.ts'

/** What decides whether a device may take a brick at all, whatever its size. */
export interface DeviceFilters {
  tagRule?: TagMatchRule
  /** arbiter volumes honour the `arbiter` tag roles; other volumes ignore them */
  useArbiterRoles: boolean
  isNodeUp?: (nodeId: Id) => boolean
  excludeDevices: ReadonlySet<Id>
  excludeNodes: ReadonlySet<Id>
  /** only `arbiter: required` devices: heketi feeds arbiters from those first */
  requiredArbiterOnly?: boolean
}

/** One brick to place: its role, size, and the space it takes per extent size. */
export class BrickNeed {
  readonly lowerBoundKiB: number
  /** free space differences below this count as equal, so ties can rotate */
  readonly quantumKiB: number
  private readonly spaceByExtent = new Map<number, BrickSpace>()

  constructor(
    readonly role: BrickRole,
    readonly brickSizeKiB: number,
    readonly snapshotFactor: number,
    attempt: number,
  ) {
    this.lowerBoundKiB = brickSpaceLowerBoundKiB(brickSizeKiB, snapshotFactor)
    // Quantising by the brick itself makes "free" read as "bricks of this size
    // that still fit"; each retry doubles the band so it can land elsewhere.
    this.quantumKiB = Math.max(1, this.lowerBoundKiB) * 2 ** Math.min(attempt, 40)
  }

  spaceOn(extentSizeKiB: number): BrickSpace {
    let space = this.spaceByExtent.get(extentSizeKiB)
    if (space === undefined) {
      space = brickSpaceOnDevice(this.brickSizeKiB, this.snapshotFactor, extentSizeKiB)
      this.spaceByExtent.set(extentSizeKiB, space)
    }
    return space
  }
}

/** Space already promised during one allocation; the index itself is never touched. */
export class SpaceOverlay {
  private readonly takenKiB = new Map<Id, number>()

  freeKiB(device: DeviceView): number {
    return device.freeKiB - (this.takenKiB.get(device.id) ?? 0)
  }

  take(deviceId: Id, kib: number): void {
    this.takenKiB.set(deviceId, (this.takenKiB.get(deviceId) ?? 0) + kib)
  }
}

export interface BrickPick {
  node: NodeView
  device: DeviceView
  space: BrickSpace
}

/** Nodes and zones already holding a brick of the set being placed. */
export interface SetMembers {
  nodes: Set<Id>
  zoneUse: Map<number, number>
}

export type ZoneMode = 'distinct' | 'spread'

export interface SearchContext {
  cluster: ClusterView
  filters: DeviceFilters
  overlay: SpaceOverlay
  /** per-set hash input for tie-breaks */
  seed: number
}

export function nodeUsable(node: NodeView, filters: DeviceFilters): boolean {
  return (
    node.state === 'online' && !filters.excludeNodes.has(node.id) && (filters.isNodeUp?.(node.id) ?? true)
  )
}

export function deviceAccepts(
  node: NodeView,
  device: DeviceView,
  role: BrickRole,
  filters: DeviceFilters,
): boolean {
  if (device.state !== 'online' || filters.excludeDevices.has(device.id)) return false
  if (filters.tagRule !== undefined && !matchesTagRule(filters.tagRule, node.tags, device.tags)) return false
  if (!filters.useArbiterRoles) return true
  const deviceRole = arbiterRole(node.tags, device.tags)
  if (filters.requiredArbiterOnly && deviceRole !== 'required') return false
  return roleAccepts(deviceRole, role)
}

/** The device of `node` with the most free space that accepts and fits the brick. */
export function bestDeviceOn(
  node: NodeView,
  need: BrickNeed,
  filters: DeviceFilters,
  overlay: SpaceOverlay,
): { device: DeviceView; space: BrickSpace; freeKiB: number } | undefined {
  let best: { device: DeviceView; space: BrickSpace; freeKiB: number } | undefined
  for (const device of node.devices) {
    // devices are ordered by indexed free space, which the overlay only lowers
    if (device.freeKiB <= need.lowerBoundKiB || (best !== undefined && device.freeKiB <= best.freeKiB)) break
    if (!deviceAccepts(node, device, need.role, filters)) continue
    const free = overlay.freeKiB(device)
    const space = need.spaceOn(device.extentSizeKiB)
    if (free > space.totalKiB && (best === undefined || free > best.freeKiB)) {
      best = { device, space, freeKiB: free }
    }
  }
  return best
}

interface Candidate extends BrickPick {
  key: number
  tie: number
}

/**
 * How many equally good nodes are weighed before taking the one the request's
 * hash prefers. In an evenly filled cluster almost every node ties; weighing a
 * few keeps a request cheap, and since chosen nodes drop down the order the
 * next requests move on to others.
 */
const TIED_CANDIDATES = 8

/**
 * The best node for one brick among the zones `zoneAllowed` accepts. Zones
 * and nodes come most-free first, so the scan stops once nothing further can
 * beat the best found: a request usually touches a handful of nodes.
 */
function bestInZones(
  ctx: SearchContext,
  need: BrickNeed,
  members: SetMembers,
  zoneAllowed: (zone: ZoneView) => boolean,
): Candidate | undefined {
  let best: Candidate | undefined
  let tied = 0
  const keyOf = (free: number) => Math.floor(free / need.quantumKiB)
  // nothing at or below `bound` can win any more
  const done = (bound: number) =>
    best !== undefined && (keyOf(bound) < best.key || (keyOf(bound) === best.key && tied >= TIED_CANDIDATES))
  for (const zone of ctx.cluster.zones) {
    if (zone.maxOnlineFreeKiB <= need.lowerBoundKiB || done(zone.maxOnlineFreeKiB)) break
    if (!zoneAllowed(zone)) continue
    for (const node of zone.nodes) {
      if (node.maxOnlineFreeKiB <= need.lowerBoundKiB || done(node.maxOnlineFreeKiB)) break
      if (members.nodes.has(node.id) || !nodeUsable(node, ctx.filters)) continue
      const found = bestDeviceOn(node, need, ctx.filters, ctx.overlay)
      if (found === undefined) continue
      const key = keyOf(found.freeKiB)
      if (best !== undefined && key < best.key) continue
      tied = best !== undefined && key === best.key ? tied + 1 : 1
      const tie = mix32(node.idHash ^ ctx.seed)
      if (best === undefined || key > best.key || tie < best.tie) {
        best = { node, device: found.device, space: found.space, key, tie }
      }
    }
  }
  return best
}

/**
 * One brick: in `distinct` mode only zones the set has not used; in `spread`
 * mode the least-used zones that can take it (distinct nodes always). Within
 * a zone level an arbiter goes to `arbiter: required` devices first, as in
 * heketi, so data devices keep their room; zone spread still comes first.
 */
export function findBrickPlace(
  ctx: SearchContext,
  need: BrickNeed,
  members: SetMembers,
  mode: ZoneMode,
): BrickPick | undefined {
  const useOf = (zone: ZoneView) => members.zoneUse.get(zone.zone) ?? 0
  const levels = mode === 'distinct' ? [0] : [0, ...new Set(members.zoneUse.values())].sort((a, b) => a - b)
  const dedicated =
    need.role === 'arbiter' && ctx.filters.useArbiterRoles
      ? { ...ctx, filters: { ...ctx.filters, requiredArbiterOnly: true } }
      : undefined
  for (const level of levels) {
    const inLevel = (zone: ZoneView) => useOf(zone) === level
    const found =
      (dedicated && bestInZones(dedicated, need, members, inLevel)) ??
      bestInZones(ctx, need, members, inLevel)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * Places one set; `needs` is in gluster order. Bricks are picked one by one;
 * with an arbiter, arbiter-first can take the only zone a data brick could
 * use and data-first the only arbiter-capable one, so both orders are tried
 * (one of them succeeds whenever any assignment exists). Each order first
 * insists on distinct zones; `allowSharedZones` then lets zones repeat.
 */
export function placeBrickSet(
  ctx: SearchContext,
  needs: readonly BrickNeed[],
  members: SetMembers,
  allowSharedZones: boolean,
): BrickPick[] | undefined {
  const arbiterAt = needs.findIndex((n) => n.role === 'arbiter')
  const natural = needs.map((_, i) => i)
  const orders =
    arbiterAt < 0
      ? [natural]
      : [
          [arbiterAt, ...natural.filter((i) => i !== arbiterAt)],
          [...natural.filter((i) => i !== arbiterAt), arbiterAt],
        ]
  const modes: ZoneMode[] = allowSharedZones ? ['distinct', 'spread'] : ['distinct']
  for (const mode of modes) {
    for (const order of orders) {
      const picks = placeInOrder(ctx, needs, members, order, mode)
      if (picks !== undefined) return picks
    }
  }
  return undefined
}

function placeInOrder(
  ctx: SearchContext,
  needs: readonly BrickNeed[],
  initial: SetMembers,
  order: readonly number[],
  mode: ZoneMode,
): BrickPick[] | undefined {
  const members: SetMembers = { nodes: new Set(initial.nodes), zoneUse: new Map(initial.zoneUse) }
  const picks: BrickPick[] = new Array(needs.length)
  for (const position of order) {
    const pick = findBrickPlace(ctx, needs[position], members, mode)
    if (pick === undefined) return undefined
    picks[position] = pick
    members.nodes.add(pick.node.id)
    members.zoneUse.set(pick.node.zone, (members.zoneUse.get(pick.node.zone) ?? 0) + 1)
  }
  return picks
}

/** murmur3's finaliser: spreads a 32-bit value evenly. */
export function mix32(value: number): number {
  let h = value >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
