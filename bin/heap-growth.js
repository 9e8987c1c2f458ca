// Keeps V8's old generation close to what is live. After each full garbage
// collection V8 lets the heap grow to its live size times a factor it picks
// from how fast collection is (up to 4); a server that allocates steadily
// (every request, every commit) then carries up to several times its live
// data as garbage between collections. At 10,000 nodes the node-add phase
// of `npm run bench:scale` peaked at 288 MiB RSS with V8's factor and at
// 154 MiB with a fixed 1.2 (`--heap-growing-percent=20`), for ~30 % more
// server CPU in that allocation-heavy phase (docs/benchmarks.md, "Scale,
// second pass").
//
// V8 reads the flag at every collection, so setting it here at start-up
// (v8.setFlagsFromString) works. A `--heap-growing-percent` on the command
// line or in NODE_OPTIONS wins; HEQET_HEAP_GROWING_PERCENT sets another
// value (0 leaves V8's own factor).
import v8 from 'node:v8'

export const DEFAULT_HEAP_GROWING_PERCENT = 20

/** the percent to set, or 0 when V8's own factor applies */
export function heapGrowingPercent(env = process.env, execArgv = process.execArgv) {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)]
  if (given.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return 0
  const raw = env.HEQET_HEAP_GROWING_PERCENT
  const percent = raw === undefined || raw === '' ? DEFAULT_HEAP_GROWING_PERCENT : Number(raw)
  if (!Number.isInteger(percent) || percent < 0) {
    throw new Error(
      `HEQET_HEAP_GROWING_PERCENT must be a whole number of percent (0 = V8's own factor), not ${raw}`,
    )
  }
  return percent
}

/** Set the old generation's growing factor to 1 + percent/100 (nothing for 0). */
export function capHeapGrowth(percent = heapGrowingPercent()) {
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${percent}`)
  return percent
}
