// The allocator on small hand-made topologies: heketi's behaviour where it
// must match, heqet's improvements where it may differ.

import t from 'tap'
import {
  type AllocationRequest,
  allocateBricks,
  createFailureText,
  PlacementError,
  placeReplacementBrick,
  type ReplacementRequest,
  spaceTakenByDevice,
} from '../src/placement/allocator.ts'
import { DEFAULT_BRICK_LIMITS, GiB_IN_KiB } from '../src/placement/geometry.ts'
import { TopologyIndex } from '../src/placement/topology-index.ts'
import { MemoryStore } from './fixtures/memory-store.ts'
import { type NodeSpec, seedCluster } from './fixtures/topology.ts'

async function indexOf(nodes: NodeSpec[]): Promise<TopologyIndex> {
  const store = new MemoryStore()
  await seedCluster(store, 'c1', nodes)
  return new TopologyIndex(store)
}

/** A node with one device per free size given (GiB). */
function node(id: string, zone: number, freeGiB: number[], extra: Partial<NodeSpec> = {}): NodeSpec {
  return { id, zone, devices: freeGiB.map((free, i) => ({ id: `${id}-d${i}`, freeGiB: free })), ...extra }
}

function request(over: Partial<AllocationRequest> = {}): AllocationRequest {
  return {
    clusterId: 'c1',
    volumeId: 'vol1',
    sizeKiB: 100 * GiB_IN_KiB,
    durability: { type: 'replicate', replica: 3 },
    snapshotFactor: 1,
    existingBrickCount: 0,
    zoneChecking: 'none',
    arbiter: false,
    averageFileSizeKiB: 64,
    limits: DEFAULT_BRICK_LIMITS,
    ...over,
  }
}

function failure(fn: () => unknown): PlacementError {
  try {
    fn()
  } catch (err) {
    if (err instanceof PlacementError) return err
    throw err
  }
  throw new Error('expected a PlacementError')
}

const nodesOf = (set: { nodeId: string }[]) => set.map((b) => b.nodeId)
const zonesOf = (set: { zone: number }[]) => new Set(set.map((b) => b.zone)).size

t.test('100 GiB replica 3 on three 500 GiB devices (spec test idea 1)', async (t) => {
  const index = await indexOf([node('a', 1, [500]), node('b', 2, [500]), node('c', 3, [500])])
  const before = index.snapshot()
  const alloc = allocateBricks(index, request())
  t.equal(alloc.brickSizeKiB, 104857600)
  t.equal(alloc.sets.length, 1)
  t.same(nodesOf(alloc.sets[0]).sort(), ['a', 'b', 'c'])
  for (const brick of alloc.sets[0]) {
    t.match(brick, { sizeKiB: 104857600, tpSizeKiB: 104857600, poolMetadataSizeKiB: 524288, arbiter: false })
    t.match(brick.brickId, /^[0-9a-f]{32}$/)
    t.equal(brick.lvmThinPool, `tp_${brick.brickId}`)
  }
  t.same([...spaceTakenByDevice(alloc).values()], [105381888, 105381888, 105381888])
  t.same(index.snapshot(), before, 'the index is not touched')
  t.same(allocateBricks(index, request()), alloc, 'deterministic')
})

t.test('5 TiB replica 3 → 2 sets of 2.5 TiB; disperse 4+2 → 6 bricks of 25 GiB', async (t) => {
  const big = await indexOf(['a', 'b', 'c'].map((id, i) => node(id, i + 1, [6000, 6000])))
  const alloc = allocateBricks(big, request({ sizeKiB: 5120 * GiB_IN_KiB }))
  t.equal(alloc.sets.length, 2)
  t.equal(alloc.brickSizeKiB, 2684354560)
  const six = await indexOf(['a', 'b', 'c', 'd', 'e', 'f'].map((id, i) => node(id, i + 1, [50])))
  const ec = allocateBricks(six, request({ durability: { type: 'disperse', data: 4, redundancy: 2 } }))
  t.equal(ec.brickSizeKiB, 26214400)
  t.equal(new Set(nodesOf(ec.sets[0])).size, 6)
})

t.test('halving when space runs short, any count not only doublings', async (t) => {
  // heketi idea 4: six nodes of 60 GiB, 100 GiB replica 3 → 2 sets of 50 GiB
  const six = await indexOf(['a', 'b', 'c', 'd', 'e', 'f'].map((id, i) => node(id, (i % 3) + 1, [60])))
  const alloc = allocateBricks(six, request())
  t.equal(alloc.sets.length, 2)
  t.equal(alloc.brickSizeKiB, 52428800)
  t.same(
    nodesOf(alloc.sets.flat()).sort(),
    ['a', 'b', 'c', 'd', 'e', 'f'],
    'second set avoids the full nodes',
  )
  // 100 GiB distribute on three 40 GiB nodes: heketi tries 4 sets, heqet 3
  const three = await indexOf([node('a', 1, [40]), node('b', 1, [40]), node('c', 1, [40])])
  const dist = allocateBricks(three, request({ durability: { type: 'none' } }))
  t.equal(dist.sets.length, 3)
  t.ok(dist.sets.length * dist.brickSizeKiB >= 100 * GiB_IN_KiB, 'never short of the request')
  // with a 3-brick limit heketi fails (1, 2, 4 sets); 3 sets fit (#1860)
  const limited = { ...DEFAULT_BRICK_LIMITS, maxBricksPerVolume: 3 }
  t.equal(allocateBricks(three, request({ durability: { type: 'none' }, limits: limited })).sets.length, 3)
})

t.test('zone checking', async (t) => {
  const oneZone = await indexOf([node('a', 1, [500]), node('b', 1, [500]), node('c', 1, [500])])
  const strict = failure(() => allocateBricks(oneZone, request({ zoneChecking: 'strict' })))
  t.equal(strict.kind, 'max-bricks')
  t.match(
    createFailureText(strict),
    /^No space: replica 3 needs 3 nodes in distinct zones with ≥ 10\.1 GiB free: found 1 \(zone 1: node a\)$/,
  )
  t.equal(allocateBricks(oneZone, request()).sets.length, 1, 'none: same zone allowed')

  // Non-strict still spreads zones when it can, whichever nodes have most room.
  const four = await indexOf([
    node('a', 1, [900]),
    node('b', 1, [800]),
    node('c', 2, [500]),
    node('d', 3, [500]),
  ])
  const spread = allocateBricks(four, request())
  t.equal(zonesOf(spread.sets[0]), 3)
  t.same(nodesOf(spread.sets[0]).sort(), ['a', 'c', 'd'])
  const strictOk = allocateBricks(four, request({ zoneChecking: 'strict' }))
  t.equal(zonesOf(strictOk.sets[0]), 3)

  // Zone 3 cannot hold one 100 GiB brick but can hold two 50 GiB ones:
  // distinct zones beat fewer sets (heketi would put two bricks in zone 1).
  const tight = await indexOf([
    node('a', 1, [900]),
    node('b', 1, [800]),
    node('c', 2, [500]),
    node('d', 3, [60, 60]),
  ])
  const split = allocateBricks(tight, request())
  t.equal(split.sets.length, 2)
  for (const set of split.sets) t.equal(zonesOf(set), 3)
  // When zone 3 cannot help at all, non-strict shares a zone, strict refuses.
  const full = await indexOf([
    node('a', 1, [900]),
    node('b', 1, [800]),
    node('c', 2, [500]),
    node('d', 3, [10]),
  ])
  const shared = allocateBricks(full, request())
  t.equal(shared.sets.length, 1)
  t.same(nodesOf(shared.sets[0]).sort(), ['a', 'b', 'c'])
  t.match(failure(() => allocateBricks(full, request({ zoneChecking: 'strict' }))).message, /distinct zones/)
})

t.test('tag matching rules (§5.9)', async (t) => {
  const index = await indexOf([
    node('a', 1, [500], { tags: { tier: 'gold' } }),
    {
      id: 'b',
      zone: 2,
      tags: { tier: 'gold' },
      devices: [{ id: 'b-d0', freeGiB: 900, tags: { tier: 'silver' } }],
    },
    {
      id: 'c',
      zone: 3,
      devices: [
        { id: 'c-d0', freeGiB: 500, tags: { tier: 'gold' } },
        { id: 'c-d1', freeGiB: 900 },
      ],
    },
    node('d', 4, [500]),
    node('e', 5, [500], { tags: { tier: 'gold' } }),
  ])
  const gold = allocateBricks(index, request({ tagMatch: 'tier=gold' }))
  t.same(
    gold.sets[0].map((b) => b.deviceId).sort(),
    ['a-d0', 'c-d0', 'e-d0'],
    'device tag overrides node tag',
  )
  const notGold = allocateBricks(index, request({ tagMatch: 'tier!=gold' }))
  t.same(notGold.sets[0].map((b) => b.deviceId).sort(), ['b-d0', 'c-d1', 'd-d0'], 'untagged devices pass !=')
  const bad = failure(() => allocateBricks(index, request({ tagMatch: 'a-b=c' })))
  t.equal(bad.kind, 'bad-tag-rule')
  t.equal(bad.message, 'Invalid tag matching rule: Invalid tag match rule: a-b=c')
  t.equal(failure(() => allocateBricks(index, request({ tagMatch: '' }))).kind, 'bad-tag-rule')
  // greedy key: `tier=x=gold` reads as key `tier=x`, which nothing has
  const odd = failure(() => allocateBricks(index, request({ tagMatch: 'tier=x=gold' })))
  t.match(odd.message, /on devices matching tier=x=gold: found 0$/)
})

t.test('arbiter roles and sizes (§5.10)', async (t) => {
  const index = await indexOf([
    node('a', 1, [500]),
    node('b', 2, [500]),
    node('c', 3, [900], { tags: { arbiter: 'disabled' } }),
    node('r', 4, [50], { tags: { arbiter: 'required' } }),
  ])
  const alloc = allocateBricks(index, request({ arbiter: true }))
  const [d0, d1, arb] = alloc.sets[0]
  t.match(arb, { nodeId: 'r', arbiter: true, sizeKiB: 1638400 })
  t.notOk(
    [d0, d1].some((b) => b.nodeId === 'r' || b.arbiter),
    'data never on arbiter:required',
  )
  t.ok([d0.nodeId, d1.nodeId].includes('c'), 'the disabled node takes data')
  t.equal(alloc.sets[0].filter((b) => b.arbiter).length, 1)
  // Without arbiter the tags mean nothing.
  t.ok(nodesOf(allocateBricks(index, request({ sizeKiB: 10 * GiB_IN_KiB })).sets[0]).includes('c'))

  // Arbiter-first on the node with most room would starve the data bricks:
  // only c is too small for data, so it must take the arbiter.
  const small = await indexOf([node('a', 1, [900]), node('b', 2, [800]), node('c', 3, [20])])
  const fixed = allocateBricks(small, request({ arbiter: true }))
  t.equal(fixed.sets[0][2].nodeId, 'c')
  t.equal(
    failure(() => allocateBricks(small, request({ arbiter: true, averageFileSizeKiB: 200 * GiB_IN_KiB })))
      .kind,
    'arbiter-size',
  )
})

t.test('offline, down and excluded nodes or devices are skipped', async (t) => {
  const index = await indexOf([
    node('a', 1, [900], { state: 'offline' }),
    {
      id: 'b',
      zone: 2,
      devices: [
        { id: 'b-d0', freeGiB: 900, state: 'failed' },
        { id: 'b-d1', freeGiB: 300 },
      ],
    },
    node('c', 3, [800]),
    node('d', 4, [700]),
    node('e', 5, [600]),
    node('f', 6, [500]),
  ])
  const alloc = allocateBricks(index, request({ isNodeUp: (id) => id !== 'c', excludeNodes: ['d'] }))
  t.same(alloc.sets[0].map((b) => b.deviceId).sort(), ['b-d1', 'e-d0', 'f-d0'])
  const noB = allocateBricks(index, request({ excludeDevices: ['b-d1'] }))
  t.same(nodesOf(noB.sets[0]).sort(), ['c', 'd', 'e'])
})

t.test('cluster-level errors keep heketi texts', async (t) => {
  const empty = await indexOf([])
  t.equal(failure(() => allocateBricks(empty, request())).message, 'No nodes in cluster')
  t.equal(failure(() => allocateBricks(empty, request({ clusterId: 'nope' }))).kind, 'no-nodes')
  const down = await indexOf([node('a', 1, [500], { state: 'offline' }), node('b', 2, [500])])
  const err = failure(() => allocateBricks(down, request({ isNodeUp: () => false })))
  t.equal(err.kind, 'no-devices')
  t.match(err.message, /^No online storage devices in cluster: 2 nodes \(1 online, 0 usable\)/)
})

t.test('no space: heketi kinds, one explanatory line', async (t) => {
  const two = await indexOf([node('a', 1, [500]), node('b', 2, [500])])
  const err = failure(() => allocateBricks(two, request()))
  t.equal(err.kind, 'max-bricks')
  t.equal(err.heketiMessage, 'Maximum number of bricks reached.')
  t.equal(
    createFailureText(err),
    'No space: replica 3 needs 3 nodes with ≥ 10.1 GiB free: found 2 (zone 1: node a, zone 2: node b)',
  )
  t.notMatch(err.message, /\n/)
  const small = failure(() => allocateBricks(two, request({ sizeKiB: 4 * GiB_IN_KiB })))
  t.equal(small.kind, 'min-brick-size')
  t.match(small.message, /^Minimum brick size limit reached\. {2}Out of space\. replica 3 needs 3 nodes/)
  t.match(
    failure(() => allocateBricks(two, request({ sizeKiB: GiB_IN_KiB / 2 }))),
    {
      kind: 'min-brick-size',
      message:
        'Minimum brick size limit reached.  Out of space. bricks would be 512 MiB, below the 1 GiB minimum',
    },
  )
  // expand past the brick limit (spec test idea 5)
  const three = await indexOf([node('a', 1, [500]), node('b', 2, [500]), node('c', 3, [500])])
  const limits = { ...DEFAULT_BRICK_LIMITS, maxBricksPerVolume: 3 }
  const expand = failure(() => allocateBricks(three, request({ existingBrickCount: 3, limits })))
  t.equal(expand.kind, 'max-bricks')
  t.match(expand.message, /^Maximum number of bricks reached\. /)
})

t.test('a device must have strictly more free space than the brick takes', async (t) => {
  const exact = { freeKiB: 105381888 }
  const index = await indexOf([
    { id: 'a', zone: 1, devices: [{ id: 'a-d0', ...exact }] },
    { id: 'b', zone: 2, devices: [{ id: 'b-d0', ...exact }] },
    { id: 'c', zone: 3, devices: [{ id: 'c-d0', freeKiB: exact.freeKiB + 1 }] },
  ])
  const alloc = allocateBricks(index, request({ durability: { type: 'none' } }))
  t.same(
    alloc.sets.map((s) => s.map((b) => b.deviceId)),
    [['c-d0']],
  )
  t.equal(alloc.brickSizeKiB, 104857600)
})

t.test('balance by free space; retries may land elsewhere', async (t) => {
  const index = await indexOf([
    node('a', 1, [100]),
    node('b', 1, [900]),
    node('c', 2, [200]),
    node('d', 2, [800]),
    node('e', 3, [700]),
    node('f', 3, [300]),
  ])
  t.same(nodesOf(allocateBricks(index, request({ sizeKiB: 10 * GiB_IN_KiB })).sets[0]).sort(), [
    'b',
    'd',
    'e',
  ])
  const equal = await indexOf(Array.from({ length: 9 }, (_, i) => node(`n${i}`, (i % 3) + 1, [500])))
  const placements = new Set<string>()
  for (let attempt = 0; attempt < 6; attempt++) {
    placements.add(nodesOf(allocateBricks(equal, request({ attempt })).sets[0]).join())
  }
  t.ok(placements.size > 1, 'ties are broken by a hash of volume and attempt')
  const ids0 = allocateBricks(equal, request()).sets[0].map((b) => b.brickId)
  const ids1 = allocateBricks(equal, request({ attempt: 1 })).sets[0].map((b) => b.brickId)
  t.notSame(ids0, ids1)
  const expand = allocateBricks(equal, request({ existingBrickCount: 3 })).sets[0].map((b) => b.brickId)
  t.equal(new Set([...ids0, ...expand]).size, 6, 'expansion bricks get new ids')
  const salted = allocateBricks(equal, request({ idSalt: 'op1' }))
  t.same(nodesOf(salted.sets[0]), nodesOf(allocateBricks(equal, request()).sets[0]), 'salt changes ids only')
  t.notSame(
    salted.sets[0].map((b) => b.brickId),
    ids0,
  )
})

t.test('replacement brick (§12.5)', async (t) => {
  const index = await indexOf([
    node('a', 1, [500]),
    node('b', 2, [500]),
    node('c', 3, [500]),
    node('d', 3, [400]),
    node('e', 1, [900]),
  ])
  const base: ReplacementRequest = {
    clusterId: 'c1',
    volumeId: 'vol1',
    brickToReplace: { brickId: 'old', deviceId: 'c-d0', nodeId: 'c', sizeKiB: 104857600, arbiter: false },
    otherBricksOfSet: [{ nodeId: 'a' }, { nodeId: 'b' }],
    snapshotFactor: 1,
    zoneChecking: 'strict',
    arbiter: false,
  }
  const strict = placeReplacementBrick(index, base)
  t.match(strict, { nodeId: 'd', zone: 3, sizeKiB: 104857600, tpSizeKiB: 104857600 })
  t.equal(strict.lvmThinPool, `tp_${strict.brickId}`)
  t.equal(
    placeReplacementBrick(index, { ...base, zoneChecking: 'none' }).nodeId,
    'd',
    'a free zone is still preferred',
  )
  const sameNode = placeReplacementBrick(index, { ...base, excludeNodes: ['d'], zoneChecking: 'none' })
  t.equal(sameNode.nodeId, 'e', 'shares zone 1 rather than fail')
  const none = failure(() => placeReplacementBrick(index, { ...base, excludeNodes: ['d'] }))
  t.equal(none.kind, 'no-replacement')
  t.match(
    none.message,
    /^No Replacement was found for resource requested to be removed: needs a node other than/,
  )
  // the old brick's node may take the new brick on another device
  const two = await indexOf([node('a', 1, [500]), node('b', 2, [500]), node('c', 3, [500, 300])])
  const back = placeReplacementBrick(two, base)
  t.match(back, { nodeId: 'c', deviceId: 'c-d1' })
  // an arbiter keeps its role and size
  const arb = await indexOf([
    node('a', 1, [500]),
    node('b', 2, [500]),
    node('r', 3, [50], { tags: { arbiter: 'required' } }),
  ])
  const old = { brickId: 'old', deviceId: 'x', nodeId: 'x', sizeKiB: 1638400, arbiter: true }
  t.match(placeReplacementBrick(arb, { ...base, arbiter: true, brickToReplace: old }), {
    nodeId: 'r',
    arbiter: true,
    sizeKiB: 1638400,
  })
})
