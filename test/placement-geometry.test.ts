// Brick geometry against the spec's worked examples (§5.1–§5.4, §5.10).

import t from 'tap'
import { PlacementError } from '../src/placement/errors.ts'
import {
  arbiterBrickSizeKiB,
  brickLimitsFromConfig,
  brickSizeForSetCount,
  brickSpaceOnDevice,
  bricksPerSet,
  DEFAULT_BRICK_LIMITS,
  type Durability,
  exceedsMaxBricks,
  feasibleSetCounts,
  fitsOnDevice,
  GiB_IN_KiB,
  heketiBrickSizes,
  heketiExhaustionKind,
  minimumVolumeSizeKiB,
  poolMetadataSizeKiB,
  roundUpToExtent,
  TiB_IN_KiB,
  thinPoolSizeKiB,
} from '../src/placement/geometry.ts'

const replica3: Durability = { type: 'replicate', replica: 3 }
const ec42: Durability = { type: 'disperse', data: 4, redundancy: 2 }
const limits = DEFAULT_BRICK_LIMITS

function firstSizes(sizeGiB: number, durability: Durability, count: number) {
  const out: { setCount: number; brickSizeKiB: number }[] = []
  const gen = heketiBrickSizes(sizeGiB * GiB_IN_KiB, durability, limits)
  for (let i = 0; i < count; i++) out.push(gen.next().value)
  return out
}

t.test('limits: defaults, GiB config, 0 keeps the default', async (t) => {
  t.same(DEFAULT_BRICK_LIMITS, {
    minBrickSizeKiB: 1048576,
    maxBrickSizeKiB: 4294967296,
    maxBricksPerVolume: 32,
  })
  t.same(brickLimitsFromConfig({}), DEFAULT_BRICK_LIMITS)
  t.same(
    brickLimitsFromConfig({ brickMinSizeGiB: 0, brickMaxSizeGiB: 0, maxBricksPerVolume: 0 }),
    DEFAULT_BRICK_LIMITS,
  )
  t.same(brickLimitsFromConfig({ brickMinSizeGiB: 2, brickMaxSizeGiB: 100, maxBricksPerVolume: 6 }), {
    minBrickSizeKiB: 2 * GiB_IN_KiB,
    maxBrickSizeKiB: 100 * GiB_IN_KiB,
    maxBricksPerVolume: 6,
  })
})

t.test('bricks per set and minimum volume size', async (t) => {
  t.equal(bricksPerSet({ type: 'none' }), 1)
  t.equal(bricksPerSet(replica3), 3)
  t.equal(bricksPerSet({ type: 'replicate', replica: 0 }), 2, 'replica defaults to 2')
  t.equal(bricksPerSet(ec42), 6)
  t.equal(bricksPerSet({ type: 'disperse', data: 8, redundancy: 3 }), 11)
  t.equal(bricksPerSet({ type: 'disperse', data: 0, redundancy: 0 }), 6, 'EC defaults to 4+2')
  t.equal(minimumVolumeSizeKiB(replica3, limits), GiB_IN_KiB)
  t.equal(minimumVolumeSizeKiB({ type: 'none' }, limits), GiB_IN_KiB)
  t.equal(minimumVolumeSizeKiB(ec42, limits), 4 * GiB_IN_KiB)
})

t.test("heketi's brick size generator", async (t) => {
  t.same(firstSizes(100, replica3, 1), [{ setCount: 1, brickSizeKiB: 104857600 }])
  t.same(firstSizes(5120, replica3, 1), [{ setCount: 2, brickSizeKiB: 2684354560 }], '5 TiB > max: 2 sets')
  t.same(firstSizes(100, ec42, 1), [{ setCount: 1, brickSizeKiB: 26214400 }])
  t.same(firstSizes(100, replica3, 3), [
    { setCount: 1, brickSizeKiB: 104857600 },
    { setCount: 2, brickSizeKiB: 52428800 },
    { setCount: 4, brickSizeKiB: 26214400 },
  ])
  const gen = heketiBrickSizes(GiB_IN_KiB, replica3, limits)
  t.same(gen.next().value, { setCount: 1, brickSizeKiB: GiB_IN_KiB })
  t.throws(() => gen.next(), {
    message: 'Minimum brick size limit reached.  Out of space.',
    kind: 'min-brick-size',
  })
  t.throws(() => heketiBrickSizes(GiB_IN_KiB / 2, replica3, limits).next(), PlacementError)
})

t.test('brick-count limit and the error heketi ends with', async (t) => {
  t.notOk(exceedsMaxBricks(10, replica3, 2, limits))
  t.ok(exceedsMaxBricks(11, replica3, 0, limits))
  t.equal(
    heketiExhaustionKind(4 * GiB_IN_KiB, replica3, 0, limits),
    'min-brick-size',
    '8 sets: 0.5 GiB bricks',
  )
  t.equal(heketiExhaustionKind(100 * GiB_IN_KiB, replica3, 0, limits), 'max-bricks', '16 sets: 48 bricks')
  t.equal(heketiExhaustionKind(600 * GiB_IN_KiB, replica3, 0, limits), 'max-bricks', '16 sets = 48 bricks')
  const three = { ...limits, maxBricksPerVolume: 3 }
  t.equal(heketiExhaustionKind(10 * GiB_IN_KiB, replica3, 3, three), 'max-bricks', 'expand past the limit')
  t.equal(heketiExhaustionKind(GiB_IN_KiB, replica3, 0, limits), 'min-brick-size')
})

t.test('every feasible set count, fewest first', async (t) => {
  t.same(feasibleSetCounts(100 * GiB_IN_KiB, replica3, 0, limits), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  t.same(feasibleSetCounts(100 * GiB_IN_KiB, replica3, 27, limits), [1])
  t.same(feasibleSetCounts(9 * 1024 * GiB_IN_KiB, replica3, 0, limits).slice(0, 2), [3, 4], '3 sets of 3 TiB')
  t.same(feasibleSetCounts(3 * GiB_IN_KiB, { type: 'none' }, 0, limits), [1, 2, 3])
  t.same(feasibleSetCounts(GiB_IN_KiB / 2, replica3, 0, limits), [])
  t.equal(brickSizeForSetCount(100 * GiB_IN_KiB, 2, replica3), 52428800, 'exact like heketi')
  t.equal(brickSizeForSetCount(100 * GiB_IN_KiB, 3, replica3), 34952534, 'rounded up, never short')
  t.equal(brickSizeForSetCount(100 * GiB_IN_KiB, 1, ec42), 26214400)
})

t.test('space on a device (§5.4)', async (t) => {
  t.same(brickSpaceOnDevice(104857600, 1, 4096), {
    tpSizeKiB: 104857600,
    poolMetadataSizeKiB: 524288,
    totalKiB: 105381888,
  })
  t.same(brickSpaceOnDevice(10485760, 1.5, 4096), {
    tpSizeKiB: 15728640,
    poolMetadataSizeKiB: 81920,
    totalKiB: 15810560,
  })
  // float32 1.2 is 1.2000000476837158: 104857600 × it = 125829125, not 125829120
  t.equal(thinPoolSizeKiB(104857600, 1.2, 4096), 125833216)
  t.equal(thinPoolSizeKiB(104857600, 1.2, 1), 125829125)
  t.equal(poolMetadataSizeKiB(4 * TiB_IN_KiB, 4096), 16777216, 'capped at 16 GiB')
  t.equal(poolMetadataSizeKiB(1000, 4096), 4096, '5 KiB rounds up to one extent')
  t.equal(roundUpToExtent(8192, 4096), 8192)
  t.equal(roundUpToExtent(8193, 4096), 12288)
  t.equal(roundUpToExtent(8193, 0), 8193, 'no extent size recorded: no rounding')
  t.notOk(fitsOnDevice(105381888, 105381888), 'equal is not enough')
  t.ok(fitsOnDevice(105381889, 105381888))
})

t.test('arbiter brick size (§5.10)', async (t) => {
  t.equal(arbiterBrickSizeKiB(104857600, 64), 1638400)
  t.equal(arbiterBrickSizeKiB(GiB_IN_KiB, 64), 16384)
  t.equal(arbiterBrickSizeKiB(500000, 64), 16384, 'never below 16 MiB')
  t.equal(arbiterBrickSizeKiB(104857600, 0), 1638400, '0 means the 64 KiB default')
  t.throws(() => arbiterBrickSizeKiB(100, 1024), {
    kind: 'arbiter-size',
    message: 'Average file size (1024) is greater than Brick size (100)',
  })
})
