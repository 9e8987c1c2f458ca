// Brick allocation for volume create/expand and brick replacement
// (spec §5, §7, §12.5), heketi-compatible in its rules and error texts, with
// four deliberate improvements: every feasible set count is tried (not only
// doublings), devices are chosen by free space instead of a random ring,
// distinct zones are preferred even when zone checking is off, and when that
// greedy search gives up on alike bricks an exact method decides
// (equal-sets.ts): "No space" only when the sets really do not fit. Where
// alike bricks must repeat zones, moves and trades keep the repeats few.

import { createHash } from 'node:crypto'
import type { Id } from '../../db/entries.ts'
import { parseTagMatchRule } from './device-filters.ts'
import { dealEqualSets, maxEqualSets, type SetUnit, tradeForZones } from './equal-sets.ts'
import { HEKETI_PLACEMENT_TEXT, PlacementError, placementError } from './errors.ts'
import { explainNoDevices, explainNoReplacement, explainShortage, formatKiB } from './explain.ts'
import {
  arbiterBrickSizeKiB,
  type BrickLimits,
  brickSizeForSetCount,
  bricksPerSet,
  type Durability,
  dataBricksPerSet,
  feasibleSetCounts,
  heketiExhaustionKind,
} from './geometry.ts'
import {
  BrickNeed,
  type BrickPick,
  type DeviceFilters,
  findBrickPlace,
  mix32,
  nodeUsable,
  placeBrickSet,
  type SetMembers,
  SpaceOverlay,
} from './set-search.ts'
import { type ClusterView, hashString, type TopologyIndex } from './topology-index.ts'

export { createFailureText, PlacementError, type PlacementErrorKind } from './errors.ts'

export type ZoneChecking = 'none' | 'strict'

/** Filters shared by new allocations and replacements. */
export interface PlacementFilters {
  zoneChecking: ZoneChecking
  /** raw `user.heketi.device-tag-match` rule */
  tagMatch?: string
  /** the node health monitor's view; nodes it does not know are up */
  isNodeUp?: (nodeId: Id) => boolean
  excludeDevices?: Iterable<Id>
  excludeNodes?: Iterable<Id>
  /** retry number: another attempt may land elsewhere and gets new brick ids */
  attempt?: number
  /**
   * Mixed into brick ids only (e.g. the pending operation's id), so re-running
   * a failed operation never reuses the name of an LV a failed undo left behind.
   */
  idSalt?: string
}

export interface AllocationRequest extends PlacementFilters {
  clusterId: Id
  volumeId: Id
  /** amount to allocate: the whole volume on create, the added amount on expand */
  sizeKiB: number
  durability: Durability
  snapshotFactor: number
  existingBrickCount: number
  arbiter: boolean
  averageFileSizeKiB: number
  limits: BrickLimits
}

export interface PlacedBrick {
  brickId: Id
  deviceId: Id
  nodeId: Id
  zone: number
  sizeKiB: number
  tpSizeKiB: number
  poolMetadataSizeKiB: number
  arbiter: boolean
  lvmThinPool: string
}

export interface Allocation {
  brickSizeKiB: number
  /** each set in gluster order; with an arbiter it is position 2 */
  sets: PlacedBrick[][]
}

export interface ReplacementRequest extends PlacementFilters {
  clusterId: Id
  volumeId: Id
  brickToReplace: { brickId: Id; deviceId: Id; nodeId: Id; sizeKiB: number; arbiter: boolean }
  /** the bricks staying in the set; the new brick avoids their nodes (and zones when strict) */
  otherBricksOfSet: readonly { nodeId: Id }[]
  snapshotFactor: number
  /** the volume uses arbiter placement, so device arbiter roles apply */
  arbiter: boolean
}

/** Where heketi's fixed arbiter position is (§5.10). */
const ARBITER_POSITION = 2

/**
 * Places `sizeKiB` as brick sets in one cluster. Synchronous and read-only
 * on the index; throws PlacementError.
 */
export function allocateBricks(index: TopologyIndex, request: AllocationRequest): Allocation {
  const { durability, limits, sizeKiB, existingBrickCount } = request
  const filters = deviceFilters(request, request.arbiter)
  const counts = feasibleSetCounts(sizeKiB, durability, existingBrickCount, limits)
  if (counts.length === 0) throw sizingError(request)
  const cluster = requireCandidates(index, request.clusterId, filters)

  const attempt = request.attempt ?? 0
  const strict = request.zoneChecking === 'strict'
  const volumeSeed = hashString(`${request.volumeId}/${existingBrickCount}/${attempt}`)
  let shortage = { needs: [] as BrickNeed[], setCount: 0, setsPlaced: 0 }
  // Distinct zones matter more than fewer sets: without zone checking heketi
  // only spread zones by chance, so a first pass insists on them and only
  // then are zones allowed to repeat within a set.
  const setSize = bricksPerSet(durability)
  for (const allowSharedZones of strict || setSize === 1 ? [false] : [false, true]) {
    for (const setCount of counts) {
      const needs = setNeeds(request, brickSizeForSetCount(sizeKiB, setCount, durability), attempt)
      if (!allowSharedZones && !enoughZonesWithRoom(cluster, needs)) {
        shortage = { needs, setCount, setsPlaced: 0 }
        continue
      }
      const sets = placeSets(cluster, filters, needs, setCount, volumeSeed, allowSharedZones)
      if (sets.length === setCount) {
        // sets placed one after another may repeat zones a trade of alike bricks avoids
        while (allowSharedZones && !request.arbiter && tradeForZones(sets)) {
          // each trade removed a zone repeat
        }
        return toAllocation(request, needs, sets, attempt)
      }
      shortage = { needs, setCount, setsPlaced: sets.length }
    }
    if (request.arbiter) continue
    // The search above is greedy; for alike bricks there is an exact answer
    // (equal-sets.ts): sets on distinct zones first, then on distinct nodes.
    const by: SetUnit = allowSharedZones ? 'node' : 'zone'
    for (const setCount of counts) {
      const needs = setNeeds(request, brickSizeForSetCount(sizeKiB, setCount, durability), attempt)
      const sets = dealEqualSets(cluster, filters, needs[0]!, setSize, setCount, by)
      if (sets !== undefined) return toAllocation(request, needs, sets, attempt)
    }
  }
  if (!request.arbiter && shortage.needs.length > 0) {
    // say how many sets really fit, not how many the greedy search placed
    const by: SetUnit = strict || setSize === 1 ? 'zone' : 'node'
    shortage.setsPlaced = maxEqualSets(cluster, filters, shortage.needs[0]!, setSize, by)
  }
  const kind = heketiExhaustionKind(sizeKiB, durability, existingBrickCount, limits)
  const detail = explainShortage({ cluster, filters, strictZones: strict, durability, ...shortage })
  throw new PlacementError(kind, HEKETI_PLACEMENT_TEXT[kind], detail)
}

/**
 * A device for a brick replacing `brickToReplace` (§12.5): any candidate but
 * the old device, on none of the other set members' nodes, with room for a
 * brick of the old size. The old brick's node may be reused.
 */
export function placeReplacementBrick(index: TopologyIndex, request: ReplacementRequest): PlacedBrick {
  const old = request.brickToReplace
  const filters = deviceFilters(request, request.arbiter, [old.deviceId])
  const cluster = requireCandidates(index, request.clusterId, filters)
  const attempt = request.attempt ?? 0
  const role = request.arbiter && old.arbiter ? 'arbiter' : 'data'
  const need = new BrickNeed(role, old.sizeKiB, request.snapshotFactor, attempt)
  const members: SetMembers = { nodes: new Set(), zoneUse: new Map() }
  for (const { nodeId } of request.otherBricksOfSet) {
    members.nodes.add(nodeId)
    const zone = index.node(nodeId)?.zone
    if (zone !== undefined) members.zoneUse.set(zone, (members.zoneUse.get(zone) ?? 0) + 1)
  }
  const strict = request.zoneChecking === 'strict'
  const ctx = {
    cluster,
    filters,
    overlay: new SpaceOverlay(),
    seed: hashString(`${request.volumeId}/replace/${old.brickId}/${attempt}`),
  }
  const pick = findBrickPlace(ctx, need, members, strict ? 'distinct' : 'spread')
  if (pick === undefined) {
    throw placementError('no-replacement', explainNoReplacement(cluster, need, filters, members, strict))
  }
  const brickId = derivedBrickId(`${request.volumeId}/replace/${old.brickId}/${attempt}`, request.idSalt)
  return placedBrick(brickId, pick, need)
}

/** KiB each device gives up for an allocation (thin pools + metadata). */
export function spaceTakenByDevice(allocation: Allocation): Map<Id, number> {
  const taken = new Map<Id, number>()
  for (const brick of allocation.sets.flat()) {
    taken.set(brick.deviceId, (taken.get(brick.deviceId) ?? 0) + brick.tpSizeKiB + brick.poolMetadataSizeKiB)
  }
  return taken
}

function deviceFilters(request: PlacementFilters, arbiter: boolean, moreExcluded: Id[] = []): DeviceFilters {
  return {
    tagRule: request.tagMatch === undefined ? undefined : parseTagMatchRule(request.tagMatch),
    useArbiterRoles: arbiter,
    isNodeUp: request.isNodeUp,
    excludeDevices: new Set([...(request.excludeDevices ?? []), ...moreExcluded]),
    excludeNodes: new Set(request.excludeNodes ?? []),
  }
}

/** heketi's cluster-level errors (§5.5), checked before any size is tried. */
function requireCandidates(index: TopologyIndex, clusterId: Id, filters: DeviceFilters): ClusterView {
  const cluster = index.cluster(clusterId)
  if (cluster === undefined || cluster.nodeCount === 0) throw placementError('no-nodes')
  let usableNodes = 0
  for (const zone of cluster.zones) {
    for (const node of zone.nodes) {
      if (!nodeUsable(node, filters)) continue
      usableNodes++
      if (node.devices.some((d) => d.state === 'online' && !filters.excludeDevices.has(d.id))) return cluster
    }
  }
  throw placementError('no-devices', explainNoDevices(index.clusterSummary(clusterId), usableNodes))
}

function sizingError(request: AllocationRequest): PlacementError {
  const { sizeKiB, durability, existingBrickCount, limits } = request
  const kind = heketiExhaustionKind(sizeKiB, durability, existingBrickCount, limits)
  if (kind === 'min-brick-size') {
    const brick = brickSizeForSetCount(sizeKiB, 1, durability)
    return placementError(
      kind,
      `bricks would be ${formatKiB(brick)}, below the ${formatKiB(limits.minBrickSizeKiB)} minimum`,
    )
  }
  const perSet = bricksPerSet(durability)
  const sets = Math.ceil(sizeKiB / (dataBricksPerSet(durability) * limits.maxBrickSizeKiB))
  return placementError(
    kind,
    `${sets * perSet} bricks of at most ${formatKiB(limits.maxBrickSizeKiB)} needed, ` +
      `${existingBrickCount} exist, the limit is ${limits.maxBricksPerVolume}`,
  )
}

/** The bricks of one set in gluster order, the arbiter (if any) at position 2. */
function setNeeds(request: AllocationRequest, brickSizeKiB: number, attempt: number): BrickNeed[] {
  const size = bricksPerSet(request.durability)
  const needs: BrickNeed[] = []
  for (let position = 0; position < size; position++) {
    const isArbiter = request.arbiter && position === ARBITER_POSITION
    const kib = isArbiter ? arbiterBrickSizeKiB(brickSizeKiB, request.averageFileSizeKiB) : brickSizeKiB
    needs.push(new BrickNeed(isArbiter ? 'arbiter' : 'data', kib, request.snapshotFactor, attempt))
  }
  return needs
}

/** Cheap necessary condition for distinct zones: enough zones whose best device could fit a brick. */
function enoughZonesWithRoom(cluster: ClusterView, needs: readonly BrickNeed[]): boolean {
  const smallest = Math.min(...needs.map((n) => n.lowerBoundKiB))
  let zones = 0
  for (const zone of cluster.zones) {
    if (zone.maxOnlineFreeKiB <= smallest) break
    if (++zones >= needs.length) return true
  }
  return false
}

/** Places sets one after the other until one fails; later sets see the space earlier ones took. */
function placeSets(
  cluster: ClusterView,
  filters: DeviceFilters,
  needs: readonly BrickNeed[],
  setCount: number,
  volumeSeed: number,
  allowSharedZones: boolean,
): BrickPick[][] {
  const overlay = new SpaceOverlay()
  const sets: BrickPick[][] = []
  for (let s = 0; s < setCount; s++) {
    const seed = mix32(volumeSeed ^ Math.imul(s + 1, 0x9e3779b1))
    const members: SetMembers = { nodes: new Set(), zoneUse: new Map() }
    const picks = placeBrickSet({ cluster, filters, overlay, seed }, needs, members, allowSharedZones)
    if (picks === undefined) break
    for (const pick of picks) overlay.take(pick.device.id, pick.space.totalKiB)
    sets.push(picks)
  }
  return sets
}

function toAllocation(
  request: AllocationRequest,
  needs: readonly BrickNeed[],
  sets: BrickPick[][],
  attempt: number,
): Allocation {
  return {
    brickSizeKiB: needs[0].brickSizeKiB,
    sets: sets.map((picks, s) =>
      picks.map((pick, position) => {
        // the brick's ordinal in the volume makes ids unique across expansions
        const ordinal = request.existingBrickCount + s * needs.length + position
        const brickId = derivedBrickId(`${request.volumeId}/${ordinal}/${attempt}`, request.idSalt)
        return placedBrick(brickId, pick, needs[position])
      }),
    ),
  }
}

function placedBrick(brickId: Id, pick: BrickPick, need: BrickNeed): PlacedBrick {
  return {
    brickId,
    deviceId: pick.device.id,
    nodeId: pick.node.id,
    zone: pick.node.zone,
    sizeKiB: need.brickSizeKiB,
    tpSizeKiB: pick.space.tpSizeKiB,
    poolMetadataSizeKiB: pick.space.poolMetadataSizeKiB,
    arbiter: need.role === 'arbiter',
    lvmThinPool: `tp_${brickId}`,
  }
}

/** 32 hex digits like heketi's random ids, but reproducible from the request. */
function derivedBrickId(input: string, salt = ''): Id {
  return createHash('sha256')
    .update(salt === '' ? input : `${input}/${salt}`)
    .digest('hex')
    .slice(0, 32)
}
