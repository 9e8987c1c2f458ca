// CSI sizes (bytes, a range) ↔ heqet sizes (whole GiB).
import { CsiErrors } from './errors.ts'
import type { CapacityRange } from './messages.ts'

export const GiB = 1024 ** 3

/**
 * The GiB to ask heqet for: the required bytes rounded up (as the in-tree
 * plugin did), at least `minGiB`; OUT_OF_RANGE when no whole GiB fits the limit.
 */
export function sizeGiBFor(range: CapacityRange | null | undefined, minGiB: number): number {
  const required = range?.required_bytes ?? 0
  const limit = range?.limit_bytes ?? 0
  if (required < 0 || limit < 0) throw CsiErrors.invalid('capacity_range bytes may not be negative')
  if (limit > 0 && required > limit) {
    throw CsiErrors.invalid(`capacity_range: required_bytes ${required} exceed limit_bytes ${limit}`)
  }
  const gib = Math.max(minGiB, Math.ceil(required / GiB))
  if (limit > 0 && gib * GiB > limit) {
    throw CsiErrors.outOfRange(
      `heqet volumes come in whole GiB of at least ${minGiB} GiB: ${gib} GiB exceeds limit_bytes ${limit}`,
    )
  }
  return gib
}

/** Whether a volume of `sizeGiB` satisfies the range (for idempotent retries). */
export function fitsRange(sizeGiB: number, range: CapacityRange | null | undefined): boolean {
  const bytes = sizeGiB * GiB
  if (range?.required_bytes && bytes < range.required_bytes) return false
  if (range?.limit_bytes && bytes > range.limit_bytes) return false
  return true
}
