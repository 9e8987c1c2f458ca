// Brick geometry, exactly as heketi computes it (spec §5.1–§5.4, §5.10):
// limits, bricks per set, brick sizes, and the space a brick takes on a
// device. Pure functions; every size is KiB unless its name says otherwise.

import { arbiterSizeError, placementError } from './errors.ts'

export const GiB_IN_KiB = 1048576
export const TiB_IN_KiB = 1073741824

/** heketi caps the thin-pool metadata LV at 16 GiB. */
export const POOL_METADATA_MAX_KiB = 16 * GiB_IN_KiB
/** Arbiter bricks are never smaller than 16 MiB. */
export const ARBITER_BRICK_MIN_KiB = 16384
export const DEFAULT_AVERAGE_FILE_SIZE_KiB = 64

export interface BrickLimits {
  minBrickSizeKiB: number
  maxBrickSizeKiB: number
  maxBricksPerVolume: number
}

export const DEFAULT_BRICK_LIMITS: Readonly<BrickLimits> = Object.freeze({
  minBrickSizeKiB: GiB_IN_KiB,
  maxBrickSizeKiB: 4 * TiB_IN_KiB,
  maxBricksPerVolume: 32,
})

/** The config keys `brick_min_size_gb`, `brick_max_size_gb`, `max_bricks_per_volume`. */
export interface BrickLimitsConfig {
  brickMinSizeGiB?: number
  brickMaxSizeGiB?: number
  maxBricksPerVolume?: number
}

/** heketi reads the `_gb` keys as GiB, and 0 (or absent) keeps the default. */
export function brickLimitsFromConfig(config: BrickLimitsConfig = {}): BrickLimits {
  const orDefault = (value: number | undefined, fallback: number, unit: number) =>
    value !== undefined && value > 0 ? value * unit : fallback
  return {
    minBrickSizeKiB: orDefault(config.brickMinSizeGiB, DEFAULT_BRICK_LIMITS.minBrickSizeKiB, GiB_IN_KiB),
    maxBrickSizeKiB: orDefault(config.brickMaxSizeGiB, DEFAULT_BRICK_LIMITS.maxBrickSizeKiB, GiB_IN_KiB),
    maxBricksPerVolume: orDefault(config.maxBricksPerVolume, DEFAULT_BRICK_LIMITS.maxBricksPerVolume, 1),
  }
}

/** Effective durability; 0 means "default" as in heketi's internal durability object. */
export type Durability =
  | { type: 'none' }
  | { type: 'replicate'; replica: number }
  | { type: 'disperse'; data: number; redundancy: number }

export const DEFAULT_REPLICA = 2
export const DEFAULT_DISPERSE_DATA = 4
export const DEFAULT_DISPERSE_REDUNDANCY = 2

export function bricksPerSet(durability: Durability): number {
  switch (durability.type) {
    case 'none':
      return 1
    case 'replicate':
      return durability.replica || DEFAULT_REPLICA
    case 'disperse':
      return dataBricksPerSet(durability) + (durability.redundancy || DEFAULT_DISPERSE_REDUNDANCY)
  }
}

/** How many bricks of a set hold distinct data: the divisor of the set's size. */
export function dataBricksPerSet(durability: Durability): number {
  return durability.type === 'disperse' ? durability.data || DEFAULT_DISPERSE_DATA : 1
}

/** Smallest volume the API accepts (§5.2). */
export function minimumVolumeSizeKiB(durability: Durability, limits: BrickLimits): number {
  return limits.minBrickSizeKiB * dataBricksPerSet(durability)
}

export interface BrickSizeCandidate {
  setCount: number
  brickSizeKiB: number
}

/**
 * heketi's generator (§5.3): one set, then doubling the set count whenever
 * the caller comes back for more. Bricks above the maximum are skipped; a
 * brick below the minimum ends it with heketi's error.
 */
export function* heketiBrickSizes(
  sizeKiB: number,
  durability: Durability,
  limits: BrickLimits,
): Generator<BrickSizeCandidate, never> {
  const data = dataBricksPerSet(durability)
  for (let sets = 1; ; sets *= 2) {
    let brick = Math.floor(sizeKiB / sets)
    if (durability.type === 'disperse') brick = Math.floor(brick / data)
    // brick 0 can only happen with a zero minimum, which the config cannot set
    if (brick < limits.minBrickSizeKiB || brick === 0) throw placementError('min-brick-size')
    if (brick <= limits.maxBrickSizeKiB) yield { setCount: sets, brickSizeKiB: brick }
  }
}

/** heketi's brick-count check of one allocation attempt (§5.3). */
export function exceedsMaxBricks(
  setCount: number,
  durability: Durability,
  existingBrickCount: number,
  limits: BrickLimits,
): boolean {
  return setCount * bricksPerSet(durability) + existingBrickCount > limits.maxBricksPerVolume
}

/**
 * The error heketi ends its halving loop with when no attempt finds room:
 * whichever of the two limits its doubling sequence reaches first.
 */
export function heketiExhaustionKind(
  sizeKiB: number,
  durability: Durability,
  existingBrickCount: number,
  limits: BrickLimits,
): 'max-bricks' | 'min-brick-size' {
  try {
    for (const { setCount } of heketiBrickSizes(sizeKiB, durability, limits)) {
      if (exceedsMaxBricks(setCount, durability, existingBrickCount, limits)) return 'max-bricks'
    }
  } catch {
    // the generator only ends by throwing the minimum-size error
  }
  return 'min-brick-size'
}

/**
 * Brick size when `sizeKiB` is split over `setCount` sets. Rounded up (heketi
 * rounds down) so the bricks always add up to at least the requested size;
 * for the power-of-two counts heketi tries on GiB sizes the division is exact
 * and both agree.
 */
export function brickSizeForSetCount(sizeKiB: number, setCount: number, durability: Durability): number {
  return Math.ceil(sizeKiB / (setCount * dataBricksPerSet(durability)))
}

/**
 * Every set count heqet may use, fewest first: bricks within the limits and
 * the volume within the brick-count limit. heketi only tries doublings, so a
 * layout like 9 sets of replica 3 (27 bricks) was never considered (#1860).
 */
export function feasibleSetCounts(
  sizeKiB: number,
  durability: Durability,
  existingBrickCount: number,
  limits: BrickLimits,
): number[] {
  const counts: number[] = []
  const maxSets = Math.floor((limits.maxBricksPerVolume - existingBrickCount) / bricksPerSet(durability))
  for (let n = 1; n <= maxSets; n++) {
    const brick = brickSizeForSetCount(sizeKiB, n, durability)
    if (brick < limits.minBrickSizeKiB || brick === 0) break
    if (brick <= limits.maxBrickSizeKiB) counts.push(n)
  }
  return counts
}

export function roundUpToExtent(sizeKiB: number, extentSizeKiB: number): number {
  if (extentSizeKiB <= 0) return sizeKiB
  const rest = sizeKiB % extentSizeKiB
  return rest === 0 ? sizeKiB : sizeKiB + extentSizeKiB - rest
}

/** heketi stores the factor as float32; widening it to float64 before the product matters (1.2). */
export function thinPoolSizeKiB(brickSizeKiB: number, snapshotFactor: number, extentSizeKiB: number): number {
  return roundUpToExtent(Math.trunc(brickSizeKiB * Math.fround(snapshotFactor)), extentSizeKiB)
}

export function poolMetadataSizeKiB(thinPoolKiB: number, extentSizeKiB: number): number {
  const meta = Math.min(Math.trunc(thinPoolKiB * 0.005), POOL_METADATA_MAX_KiB)
  return roundUpToExtent(meta, extentSizeKiB)
}

export interface BrickSpace {
  tpSizeKiB: number
  poolMetadataSizeKiB: number
  /** what the device gives up: thin pool + its metadata */
  totalKiB: number
}

/** Space one brick takes on a device (§5.4). */
export function brickSpaceOnDevice(
  brickSizeKiB: number,
  snapshotFactor: number,
  extentSizeKiB: number,
): BrickSpace {
  const tp = thinPoolSizeKiB(brickSizeKiB, snapshotFactor, extentSizeKiB)
  const meta = poolMetadataSizeKiB(tp, extentSizeKiB)
  return { tpSizeKiB: tp, poolMetadataSizeKiB: meta, totalKiB: tp + meta }
}

/** heketi's fit rule is strict: a device never ends at exactly zero free. */
export function fitsOnDevice(deviceFreeKiB: number, brickTotalKiB: number): boolean {
  return deviceFreeKiB > brickTotalKiB
}

/**
 * A bound no device can do better than, whatever its extent size: used to
 * skip nodes quickly.
 */
export function brickSpaceLowerBoundKiB(brickSizeKiB: number, snapshotFactor: number): number {
  return Math.trunc(brickSizeKiB * Math.fround(snapshotFactor))
}

/** Arbiter bricks hold only metadata: one KiB per average-sized file (§5.10). */
export function arbiterBrickSizeKiB(dataBrickSizeKiB: number, averageFileSizeKiB: number): number {
  const avg = averageFileSizeKiB > 0 ? averageFileSizeKiB : DEFAULT_AVERAGE_FILE_SIZE_KiB
  if (dataBrickSizeKiB < avg) throw arbiterSizeError(avg, dataBrickSizeKiB)
  return Math.max(Math.floor(dataBrickSizeKiB / avg), ARBITER_BRICK_MIN_KiB)
}
