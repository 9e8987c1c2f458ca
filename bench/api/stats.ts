// Latency statistics of one phase, and the median of repeated runs.

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

export interface Stats {
  count: number
  seconds: number
  perSec: number
  p50: number
  p99: number
  max: number
}

export function stats(latencies: number[], seconds: number): Stats {
  const sorted = [...latencies].sort((a, b) => a - b)
  return {
    count: sorted.length,
    seconds,
    perSec: sorted.length / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  }
}

/** Element-wise median of the numeric fields of several runs (array rows matched by position). */
export function medianOf<R>(runs: R[]): R {
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  }
  const merge = (values: unknown[]): unknown => {
    const first = values[0]
    if (typeof first === 'number') return med(values as number[])
    if (Array.isArray(first)) return first.map((_, i) => merge(values.map((v) => (v as unknown[])[i])))
    if (first && typeof first === 'object') {
      const out: Record<string, unknown> = {}
      for (const k of Object.keys(first)) out[k] = merge(values.map((v) => (v as Record<string, unknown>)[k]))
      return out
    }
    return first
  }
  return merge(runs) as R
}
