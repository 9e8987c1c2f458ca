// Property tests: random topologies and requests against independent,
// brute-force oracles; and the index against a rebuild after random commits
// through a real LMDB store. Each property prints its seed (replay with
// HEQET_PROPERTY_SEED, test/helpers/property.ts).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import t, { type Test } from 'tap'
import type { EntityState } from '../db/entries.ts'
import { LmdbStore } from '../db/lmdb.ts'
import type { WriteTxn } from '../db/store.ts'
import { type AllocationRequest, allocateBricks, PlacementError } from '../src/placement/allocator.ts'
import { dealEqualSets } from '../src/placement/equal-sets.ts'
import {
  arbiterBrickSizeKiB,
  type BrickLimits,
  brickSizeForSetCount,
  brickSpaceOnDevice,
  bricksPerSet,
  DEFAULT_BRICK_LIMITS,
  type Durability,
  dataBricksPerSet,
  feasibleSetCounts,
  GiB_IN_KiB,
} from '../src/placement/geometry.ts'
import { BrickNeed } from '../src/placement/set-search.ts'
import { TopologyIndex } from '../src/placement/topology-index.ts'
import { MemoryStore } from './fixtures/memory-store.ts'
import { clusterEntry, deviceEntry, type NodeSpec, nodeEntry, seedCluster } from './fixtures/topology.ts'
import { propertySeed } from './helpers/property.ts'

const FILE = 'test/placement-properties.test.ts'

const state = fc.constantFrom<EntityState>('online', 'online', 'online', 'online', 'offline', 'failed')
const tier = fc.constantFrom(undefined, 'gold', 'silver')
const arbiterTag = fc.constantFrom(undefined, undefined, 'required', 'disabled', 'supported')
const tagsOf = (t: string | undefined, a: string | undefined) => ({
  ...(t === undefined ? {} : { tier: t }),
  ...(a === undefined ? {} : { arbiter: a }),
})

const deviceArb = fc.record({
  freeKiB: fc.oneof(
    fc.integer({ min: 0, max: 600 * GiB_IN_KiB }),
    // exactly one brick's worth (factor 1, 4 MiB extents), where the strict fit rule matters
    fc.constantFrom(5, 10, 25, 50, 100).map((g) => brickSpaceOnDevice(g * GiB_IN_KiB, 1, 4096).totalKiB),
  ),
  state,
  tags: fc.tuple(tier, arbiterTag).map(([t, a]) => tagsOf(t, a)),
  extentSizeKiB: fc.constantFrom(4096, 4096, 1024, 32768),
})

const topologyArb = fc
  .record({
    zones: fc.integer({ min: 1, max: 8 }),
    nodes: fc.array(
      fc.record({
        zonePick: fc.nat(),
        state,
        up: fc.constantFrom(true, true, true, true, false),
        tags: fc.tuple(tier, arbiterTag).map(([t, a]) => tagsOf(t, a)),
        devices: fc.array(deviceArb, { minLength: 1, maxLength: 4 }),
      }),
      { minLength: 2, maxLength: 12, size: 'max' },
    ),
  })
  .map(({ zones, nodes }) => ({
    down: new Set(nodes.flatMap((n, i) => (n.up ? [] : [`n${i}`]))),
    nodes: nodes.map(
      (n, i): NodeSpec => ({
        id: `n${i}`,
        zone: (n.zonePick % zones) + 1,
        state: n.state,
        tags: n.tags,
        devices: n.devices.map((d, j) => ({ id: `n${i}d${j}`, ...d })),
      }),
    ),
  }))

const durabilities: Durability[] = [
  { type: 'none' },
  { type: 'replicate', replica: 2 },
  { type: 'replicate', replica: 3 },
  { type: 'replicate', replica: 3 },
  { type: 'disperse', data: 2, redundancy: 1 },
  { type: 'disperse', data: 4, redundancy: 2 },
]
const limitsChoices: BrickLimits[] = [
  DEFAULT_BRICK_LIMITS,
  { minBrickSizeKiB: GiB_IN_KiB, maxBrickSizeKiB: 32 * GiB_IN_KiB, maxBricksPerVolume: 32 },
  { minBrickSizeKiB: GiB_IN_KiB, maxBrickSizeKiB: 64 * GiB_IN_KiB, maxBricksPerVolume: 12 },
]

const requestArb = fc
  .record({
    sizeGiB: fc.oneof(fc.integer({ min: 1, max: 250 }), fc.constantFrom(10, 50, 100)),
    durability: fc.constantFrom(...durabilities),
    arbiter: fc.boolean(),
    snapshotFactor: fc.constantFrom(1, 1, 1.2, 1.5),
    strict: fc.constantFrom(false, false, true),
    tagMatch: fc.constantFrom(undefined, undefined, 'tier=gold', 'tier!=gold'),
    limits: fc.constantFrom(...limitsChoices),
    existingBrickCount: fc.integer({ min: 0, max: 6 }),
    attempt: fc.integer({ min: 0, max: 3 }),
    averageFileSizeKiB: fc.constantFrom(64, 64, 4096),
  })
  .map((r) => ({
    ...r,
    // arbiter placement is meant for replica 3
    arbiter: r.arbiter && r.durability.type === 'replicate' && r.durability.replica === 3,
  }))

type Topology = { down: Set<string>; nodes: NodeSpec[] }
type Req = typeof requestArb extends fc.Arbitrary<infer R> ? R : never

function toRequest(r: Req, topo: Topology): AllocationRequest {
  return {
    clusterId: 'c1',
    volumeId: 'vol-prop',
    sizeKiB: r.sizeGiB * GiB_IN_KiB,
    durability: r.durability,
    snapshotFactor: r.snapshotFactor,
    existingBrickCount: r.existingBrickCount,
    zoneChecking: r.strict ? 'strict' : 'none',
    tagMatch: r.tagMatch,
    arbiter: r.arbiter,
    averageFileSizeKiB: r.averageFileSizeKiB,
    limits: r.limits,
    isNodeUp: (id) => !topo.down.has(id),
    attempt: r.attempt,
  }
}

// ---- the oracle: eligibility written out again, independently ----

type Role = 'data' | 'arbiter'
interface Need {
  role: Role
  sizeKiB: number
}

function eligible(node: NodeSpec, dev: NodeSpec['devices'][0], role: Role, r: Req, topo: Topology): boolean {
  if (node.state !== 'online' || topo.down.has(node.id) || dev.state !== 'online') return false
  const merged: Record<string, string> = { ...node.tags, ...dev.tags }
  if (r.tagMatch === 'tier=gold' && merged.tier !== 'gold') return false
  if (r.tagMatch === 'tier!=gold' && merged.tier === 'gold') return false
  if (!r.arbiter) return true
  return role === 'arbiter' ? merged.arbiter !== 'disabled' : merged.arbiter !== 'required'
}

const spaceOf = (need: Need, r: Req, extent: number) =>
  brickSpaceOnDevice(need.sizeKiB, r.snapshotFactor, extent)

function setNeeds(r: Req, brickSizeKiB: number): Need[] {
  return Array.from({ length: bricksPerSet(r.durability) }, (_, p) =>
    r.arbiter && p === 2
      ? { role: 'arbiter' as const, sizeKiB: arbiterBrickSizeKiB(brickSizeKiB, r.averageFileSizeKiB) }
      : { role: 'data' as const, sizeKiB: brickSizeKiB },
  )
}

/** Brute force: can the set go on distinct nodes (and zones) given what remains free? */
function setFits(
  topo: Topology,
  r: Req,
  needs: Need[],
  free: Map<string, number>,
  distinctZones: boolean,
): boolean {
  const options = needs.map((need) =>
    topo.nodes.filter((n) =>
      n.devices.some(
        (d) =>
          eligible(n, d, need.role, r, topo) && free.get(d.id)! > spaceOf(need, r, d.extentSizeKiB!).totalKiB,
      ),
    ),
  )
  const usedNodes = new Set<string>()
  const usedZones = new Set<number>()
  const search = (p: number, minIndex: number): boolean => {
    if (p === needs.length) return true
    const list = options[p]
    // positions with the same role are interchangeable: pick their nodes in order
    const start = p > 0 && needs[p - 1].role === needs[p].role ? minIndex : 0
    for (let i = start; i < list.length; i++) {
      const n = list[i]
      if (usedNodes.has(n.id) || (distinctZones && usedZones.has(n.zone))) continue
      usedNodes.add(n.id)
      usedZones.add(n.zone)
      const ok = search(p + 1, i + 1)
      usedNodes.delete(n.id)
      usedZones.delete(n.zone)
      if (ok) return true
    }
    return false
  }
  return search(0, 0)
}

/** how many bricks of `need` a device takes one after another (each must leave free > 0) */
function deviceCapacity(freeKiB: number, totalKiB: number): number {
  return freeKiB > totalKiB ? Math.floor((freeKiB - 1) / totalKiB) : 0
}

/**
 * Exact, for sets of equal bricks (no arbiter): `setCount` sets of k bricks,
 * each set on k distinct nodes (zones, when strict), fit iff
 * Σ min(capacity, setCount) ≥ k · setCount over the nodes (zones). Necessary:
 * a node takes at most one brick per set. Sufficient: list each node
 * min(capacity, setCount) times and deal the list round-robin over the sets.
 */
function equalSetsFit(topo: Topology, r: Req, brickSizeKiB: number, setCount: number): boolean {
  const need: Need = { role: 'data', sizeKiB: brickSizeKiB }
  const capacity = new Map<string | number, number>()
  for (const node of topo.nodes) {
    let c = 0
    for (const d of node.devices) {
      if (eligible(node, d, 'data', r, topo))
        c += deviceCapacity(d.freeKiB!, spaceOf(need, r, d.extentSizeKiB!).totalKiB)
    }
    const unit = r.strict ? node.zone : node.id
    capacity.set(unit, (capacity.get(unit) ?? 0) + c)
  }
  let slots = 0
  for (const c of capacity.values()) slots += Math.min(c, setCount)
  return slots >= bricksPerSet(r.durability) * setCount
}

function initialFree(topo: Topology): Map<string, number> {
  return new Map(topo.nodes.flatMap((n) => n.devices.map((d) => [d.id, d.freeKiB!] as [string, number])))
}

async function indexOf(topo: Topology): Promise<TopologyIndex> {
  const store = new MemoryStore()
  await seedCluster(store, 'c1', topo.nodes)
  return new TopologyIndex(store)
}

t.test('allocations respect every placement rule', async (t) => {
  let successes = 0
  let failures = 0
  await fc.assert(
    fc.asyncProperty(topologyArb, requestArb, async (topo, r) => {
      const index = await indexOf(topo)
      const before = index.snapshot()
      const request = toRequest(r, topo)
      let alloc: ReturnType<typeof allocateBricks>
      try {
        alloc = allocateBricks(index, request)
      } catch (err) {
        failures++
        checkFailure(t, err, topo, r, request)
        return
      }
      successes++
      t.same(index.snapshot(), before, 'index untouched')
      t.same(allocateBricks(index, request), alloc, 'deterministic')
      const nodes = new Map(topo.nodes.map((n) => [n.id, n]))
      const deviceNode = new Map(topo.nodes.flatMap((n) => n.devices.map((d) => [d.id, n] as const)))
      const k = bricksPerSet(r.durability)
      const { limits } = r
      const brick = alloc.brickSizeKiB
      t.ok(brick >= limits.minBrickSizeKiB && brick <= limits.maxBrickSizeKiB, 'brick size within limits')
      t.ok(alloc.sets.length * k + r.existingBrickCount <= limits.maxBricksPerVolume, 'brick count limit')
      t.ok(
        alloc.sets.length * dataBricksPerSet(r.durability) * brick >= request.sizeKiB,
        'at least the request',
      )
      const free = initialFree(topo)
      const needs = setNeeds(r, brick)
      for (const set of alloc.sets) {
        t.equal(set.length, k)
        t.equal(new Set(set.map((b) => b.nodeId)).size, k, 'one brick per node in a set')
        const zones = new Set(set.map((b) => b.zone)).size
        if (r.strict) t.equal(zones, k, 'strict: distinct zones')
        else if (zones < k && r.arbiter)
          t.notOk(setFits(topo, r, needs, free, true), 'distinct zones whenever possible')
        else if (zones < k)
          t.notOk(
            feasibleSetCounts(request.sizeKiB, r.durability, r.existingBrickCount, limits).some((n) =>
              equalSetsFit(
                topo,
                { ...r, strict: true },
                brickSizeForSetCount(request.sizeKiB, n, r.durability),
                n,
              ),
            ),
            'zones shared only when no allocation has distinct zones in every set',
          )
        set.forEach((b, p) => {
          const node = deviceNode.get(b.deviceId)!
          const dev = node.devices.find((d) => d.id === b.deviceId)!
          const space = spaceOf(needs[p], r, dev.extentSizeKiB!)
          t.equal(b.nodeId, node.id)
          t.equal(b.zone, nodes.get(b.nodeId)!.zone)
          t.equal(b.sizeKiB, needs[p].sizeKiB)
          t.equal(b.arbiter, needs[p].role === 'arbiter')
          t.same([b.tpSizeKiB, b.poolMetadataSizeKiB], [space.tpSizeKiB, space.poolMetadataSizeKiB])
          t.ok(eligible(node, dev, needs[p].role, r, topo), 'eligible device')
          t.ok(free.get(dev.id)! > space.totalKiB, 'device has room (strictly greater)')
          free.set(dev.id, free.get(dev.id)! - space.totalKiB)
        })
      }
    }),
    { numRuns: 400, seed: propertySeed(t, FILE) },
  )
  t.ok(successes > 50 && failures > 20, `both outcomes exercised (${successes} ok, ${failures} failed)`)
})

// Tight topologies where only the number of bricks each device can still take
// matters: every device holds 0–3 bricks of exactly one size, and the limits
// allow exactly one set count. The allocator must place the sets whenever the
// exact oracle above says they fit, and must refuse only when they do not;
// without zone checking, zones must be spread as far as what is left allows.
const BRICK_GiB = 10
const tightArb = fc.record({
  zones: fc.integer({ min: 1, max: 4 }),
  nodes: fc.array(
    fc.record({
      zonePick: fc.nat(),
      devices: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }),
    }),
    { minLength: 2, maxLength: 8 },
  ),
  durability: fc.constantFrom<Durability>(
    { type: 'none' },
    { type: 'replicate', replica: 2 },
    { type: 'replicate', replica: 3 },
    { type: 'disperse', data: 2, redundancy: 1 },
  ),
  setCount: fc.integer({ min: 1, max: 6 }),
  strict: fc.boolean(),
  extentSizeKiB: fc.constantFrom(4096, 1024),
})
type Tight = typeof tightArb extends fc.Arbitrary<infer G> ? G : never

/** the topology of a tight case: each device takes exactly its number of bricks */
function tightTopology(g: Tight): { topo: Topology; brickKiB: number; total: number } {
  const brickKiB = BRICK_GiB * GiB_IN_KiB
  const total = brickSpaceOnDevice(brickKiB, 1, g.extentSizeKiB).totalKiB
  const topo: Topology = {
    down: new Set(),
    nodes: g.nodes.map((n, i) => ({
      id: `n${i}`,
      zone: (n.zonePick % g.zones) + 1,
      state: 'online',
      tags: {},
      devices: n.devices.map((bricks, j) => ({
        id: `n${i}d${j}`,
        state: 'online',
        tags: {},
        freeKiB: bricks * total + 1,
        extentSizeKiB: g.extentSizeKiB,
      })),
    })),
  }
  return { topo, brickKiB, total }
}

t.test('equal bricks: the sets are placed exactly when they fit', async (t) => {
  let placed = 0
  let refused = 0
  await fc.assert(
    fc.asyncProperty(tightArb, async (g) => {
      const { topo, brickKiB, total } = tightTopology(g)
      const r: Req = {
        sizeGiB: g.setCount * dataBricksPerSet(g.durability) * BRICK_GiB,
        durability: g.durability,
        arbiter: false,
        snapshotFactor: 1,
        strict: g.strict,
        tagMatch: undefined,
        limits: { minBrickSizeKiB: brickKiB, maxBrickSizeKiB: brickKiB, maxBricksPerVolume: 64 },
        existingBrickCount: 0,
        attempt: 0,
        averageFileSizeKiB: 64,
      }
      const fits = equalSetsFit(topo, r, brickKiB, g.setCount)
      let alloc: ReturnType<typeof allocateBricks> | undefined
      try {
        alloc = allocateBricks(await indexOf(topo), toRequest(r, topo))
      } catch (err) {
        if (!(err instanceof PlacementError)) throw err
        if (fits) throw new Error(`refused although ${g.setCount} sets fit: ${err.message}`)
        refused++
        return
      }
      if (!fits) throw new Error('placed sets the oracle says cannot fit')
      if (alloc.sets.length !== g.setCount) throw new Error(`${alloc.sets.length} sets`)
      if (!g.strict)
        checkZoneSpread(
          topo,
          alloc.sets.map((set) => set.map((b) => b.deviceId)),
          total,
        )
      placed++
    }),
    { numRuns: 500, seed: propertySeed(t, FILE) },
  )
  t.ok(placed > 50 && refused > 50, `both outcomes exercised (${placed} placed, ${refused} refused)`)
})

t.test('equal bricks dealt on distinct nodes spread zones as far as moves and trades can', async (t) => {
  let repeated = 0
  await fc.assert(
    fc.asyncProperty(tightArb, async (g) => {
      const { topo, brickKiB, total } = tightTopology(g)
      const index = await indexOf(topo)
      const filters = {
        useArbiterRoles: false,
        excludeDevices: new Set<string>(),
        excludeNodes: new Set<string>(),
      }
      const need = new BrickNeed('data', brickKiB, 1, 0)
      const k = bricksPerSet(g.durability)
      const sets = dealEqualSets(index.cluster('c1')!, filters, need, k, g.setCount, 'node')
      if (sets === undefined) return
      const deviceSets = sets.map((set) => set.map((p) => p.device.id))
      for (const set of sets) {
        if (new Set(set.map((p) => p.node.id)).size !== k) throw new Error('a set shares a node')
      }
      checkZoneSpread(topo, deviceSets, total)
      if (sets.some((set) => zoneRepeats(set.map((p) => p.node.zone)) > 0)) repeated++
    }),
    { numRuns: 500, seed: propertySeed(t, FILE) },
  )
  t.ok(repeated > 20, `sets that must repeat a zone exercised (${repeated})`)
})

const zoneRepeats = (zones: number[]) => zones.length - new Set(zones).size

/**
 * zone_checking none, alike bricks: a set may repeat a zone only when nothing
 * better is left. No device of a zone the set lacks can still take a brick,
 * and no trade of one brick with another set keeps nodes distinct and repeats
 * fewer zones in the two sets together.
 */
function checkZoneSpread(topo: Topology, deviceSets: string[][], brickTotalKiB: number): void {
  const zoneOf = new Map(topo.nodes.map((n) => [n.id, n.zone]))
  const nodeOf = new Map(topo.nodes.flatMap((n) => n.devices.map((d) => [d.id, n.id] as const)))
  const left = new Map(
    topo.nodes.flatMap((n) =>
      n.devices.map((d) => [d.id, deviceCapacity(d.freeKiB!, brickTotalKiB)] as const),
    ),
  )
  for (const d of deviceSets.flat()) left.set(d, left.get(d)! - 1)
  if ([...left.values()].some((n) => n < 0))
    throw new Error('a device takes more bricks than it has room for')
  const sets = deviceSets.map((set) => set.map((d) => nodeOf.get(d)!))
  const repeats = (nodes: string[]) => zoneRepeats(nodes.map((n) => zoneOf.get(n)!))
  for (const [s, set] of sets.entries()) {
    if (repeats(set) === 0) continue
    const zones = new Set(set.map((n) => zoneOf.get(n)))
    const room = topo.nodes.find((n) => !zones.has(n.zone) && n.devices.some((d) => left.get(d.id)! > 0))
    if (room !== undefined) throw new Error(`set ${s} [${set}] repeats a zone while ${room.id} has room`)
    for (const [o, other] of sets.entries()) {
      if (o === s) continue
      for (let i = 0; i < set.length; i++) {
        for (let j = 0; j < other.length; j++) {
          const a = set.map((n, k) => (k === i ? other[j]! : n))
          const b = other.map((n, k) => (k === j ? set[i]! : n))
          if (new Set(a).size !== a.length || new Set(b).size !== b.length) continue
          if (repeats(a) + repeats(b) < repeats(set) + repeats(other))
            throw new Error(`sets ${s} [${set}] and ${o} [${other}] repeat fewer zones as [${a}] and [${b}]`)
        }
      }
    }
  }
}

/** A failure must be legitimate: a single set or a distribute layout the oracle can place means a bug. */
function checkFailure(t: Test, err: unknown, topo: Topology, r: Req, request: AllocationRequest): void {
  if (!(err instanceof PlacementError)) throw err
  const counts = feasibleSetCounts(request.sizeKiB, r.durability, r.existingBrickCount, r.limits)
  if (err.kind === 'no-devices') {
    const any = topo.nodes.some(
      (n) => n.state === 'online' && !topo.down.has(n.id) && n.devices.some((d) => d.state === 'online'),
    )
    t.notOk(any, 'no-devices only without candidates')
    return
  }
  if (err.kind === 'arbiter-size') {
    t.ok(r.arbiter, 'arbiter-size only for arbiter volumes')
    return
  }
  t.ok(err.kind === 'max-bricks' || err.kind === 'min-brick-size', `kind ${err.kind}`)
  t.notMatch(err.message, /\n/, 'one line')
  if (counts.length === 0) return
  const free = initialFree(topo)
  if (counts[0] === 1) {
    const needs = setNeeds(r, brickSizeForSetCount(request.sizeKiB, 1, r.durability))
    t.notOk(setFits(topo, r, needs, free, r.strict), 'one set would have fit')
  }
  if (!r.arbiter) {
    // every set count the limits allow must be impossible, not just the ones tried
    for (const n of counts) {
      const brick = brickSizeForSetCount(request.sizeKiB, n, r.durability)
      t.notOk(equalSetsFit(topo, r, brick, n), `${n} sets of ${bricksPerSet(r.durability)} would have fit`)
    }
    checkExplanation(t, err, topo, r, request, counts)
  }
}

/**
 * heqet's line after heketi's text must be true. It speaks of the last set
 * count tried (the most sets, so the smallest bricks).
 */
function checkExplanation(
  t: Test,
  err: PlacementError,
  topo: Topology,
  r: Req,
  request: AllocationRequest,
  counts: number[],
): void {
  const k = bricksPerSet(r.durability)
  const last = counts.at(-1)!
  const brick = brickSizeForSetCount(request.sizeKiB, last, r.durability)
  const sets = err.detail.match(/ needs (\d+) sets of .* bricks(?: in distinct zones)?: room for only (\d+)$/)
  const nodes = err.detail.match(/ needs (\d+) nodes(?: in distinct zones)? with ≥ .* free.*: found (\d+)/)
  if (sets) {
    const [wanted, room] = [Number(sets[1]), Number(sets[2])]
    t.equal(wanted, last, 'explains the last set count tried')
    let most = 0
    while (most < wanted && equalSetsFit(topo, r, brick, most + 1)) most++
    t.equal(room, most, `"room for only ${room}": the oracle fits ${most}`)
  } else if (nodes) {
    const [wanted, found] = [Number(nodes[1]), Number(nodes[2])]
    t.equal(wanted, k, 'names the set size')
    const need: Need = { role: 'data', sizeKiB: brick }
    const withRoom = topo.nodes.filter((n) =>
      n.devices.some(
        (d) => eligible(n, d, 'data', r, topo) && d.freeKiB! > spaceOf(need, r, d.extentSizeKiB!).totalKiB,
      ),
    )
    const counted = r.strict ? new Set(withRoom.map((n) => n.zone)).size : withRoom.length
    t.equal(found, counted, `"found ${found}": the oracle counts ${counted}`)
    t.ok(found < wanted, 'fewer than needed')
  } else {
    t.fail(`an explanation the test does not know: ${err.detail}`)
  }
}

// ---- the index follows commits exactly ----

const ids = (prefix: string, n: number) =>
  fc.constantFrom(...Array.from({ length: n }, (_, i) => `${prefix}${i}`))
const opArb = fc.oneof(
  fc.record({ op: fc.constant('cluster' as const), id: ids('c', 2) }),
  fc.record({
    op: fc.constant('node' as const),
    id: ids('n', 6),
    cluster: ids('c', 2),
    zone: fc.integer({ min: 1, max: 3 }),
    state,
    tags: fc.tuple(tier, arbiterTag).map(([t, a]) => tagsOf(t, a)),
  }),
  fc.record({ op: fc.constant('device' as const), id: ids('d', 10), node: ids('n', 7), device: deviceArb }),
  fc.record({
    op: fc.constant('free' as const),
    id: ids('d', 10),
    freeKiB: fc.integer({ min: 0, max: 1e9 }),
  }),
  fc.record({
    op: fc.constantFrom('del-cluster' as const, 'del-node' as const, 'del-device' as const),
    id: fc.nat(9),
  }),
)
type Op = typeof opArb extends fc.Arbitrary<infer O> ? O : never

function applyOp(tx: WriteTxn, o: Op): void {
  if (o.op === 'cluster') tx.put('cluster', o.id, clusterEntry(o.id, []))
  else if (o.op === 'node') {
    tx.put(
      'node',
      o.id,
      nodeEntry(o.cluster, { id: o.id, zone: o.zone, state: o.state, tags: o.tags, devices: [] }),
    )
  } else if (o.op === 'device') tx.put('device', o.id, deviceEntry(o.node, { id: o.id, ...o.device }))
  else if (o.op === 'free') {
    const d = tx.get('device', o.id)
    if (d !== undefined) tx.put('device', o.id, { ...d, storage: { ...d.storage, freeKiB: o.freeKiB } })
  } else if (o.op === 'del-cluster') tx.del('cluster', `c${o.id}`)
  else if (o.op === 'del-node') tx.del('node', `n${o.id}`)
  else tx.del('device', `d${o.id}`)
}

t.test('the index equals a rebuild after random commits (LMDB)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-placement-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let run = 0
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 10 }),
      async (commits) => {
        const store = new LmdbStore({ path: join(dir, `run${run++}.mdb`) })
        try {
          const index = new TopologyIndex(store)
          for (const ops of commits) {
            await store.write((tx) => {
              for (const o of ops) applyOp(tx, o)
            })
            // read in between so lazy re-sorting happens at varied points
            if (ops.length % 2 === 0) index.cluster('c0')
          }
          const rebuilt = new TopologyIndex(store)
          t.same(index.snapshot(), rebuilt.snapshot())
          for (const clusterId of ['c0', 'c1'])
            t.same(index.clusterSummary(clusterId), rebuilt.clusterSummary(clusterId))
        } finally {
          await store.close()
        }
      },
    ),
    { numRuns: 30, seed: propertySeed(t, FILE) },
  )
})
