// Keeps V8's young generation ("new space") of the heqet process at 8 MiB
// (two 4 MiB semi-spaces) instead of V8's default ceiling of 32 MiB on
// 64-bit. Under a steady read load the new space grows to its ceiling and
// stays resident: 32 MiB of a ~112 MiB server. At 8 MiB the server's peak RSS
// in `npm run bench -- --scenario A` is 15–20 MiB lower, with no difference in
// CPU per request that the alternating runs could measure (docs/benchmarks.md,
// "Footprint"); 1 MiB semi-spaces cost ~10–25 % more CPU per request (more
// scavenges, more objects promoted to the old space).
//
// `--max-semi-space-size` is read only when the heap is created, so setting
// it here (v8.setFlagsFromString) changes nothing. V8 does read
// `--semi-space-growth-factor` each time it grows the new space, so the
// growth is stopped (factor 1) once the new space has reached the target,
// and allowed again (factor 2, V8's default) if V8 has shrunk it below, after
// each garbage collection (a `gc` performance entry; delivered after the task
// that ran the collection, so one long synchronous task can still grow the
// new space a step further — the next check stops it there).
//
// A `--max-semi-space-size` given on the command line or in NODE_OPTIONS
// wins: then nothing is done here. HEQET_YOUNG_GENERATION_MIB sets another
// target (MiB of new space, both semi-spaces; 0 leaves V8's default).
import { PerformanceObserver } from 'node:perf_hooks'
import v8 from 'node:v8'

export const DEFAULT_NEW_SPACE_MIB = 8

/** the target in bytes, or 0 when V8's own sizing applies */
export function newSpaceTarget(env = process.env, execArgv = process.execArgv) {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)]
  if (given.some((a) => /^--max[-_]semi[-_]space[-_]size\b/.test(a))) return 0
  const raw = env.HEQET_YOUNG_GENERATION_MIB
  const mib = raw === undefined || raw === '' ? DEFAULT_NEW_SPACE_MIB : Number(raw)
  if (!Number.isFinite(mib) || mib < 0) {
    throw new Error(`HEQET_YOUNG_GENERATION_MIB must be a number of MiB (0 = V8's default), not ${raw}`)
  }
  return Math.round(mib * 1024 * 1024)
}

function newSpaceSize() {
  for (const space of v8.getHeapSpaceStatistics()) {
    if (space.space_name === 'new_space') return space.space_size
  }
  return 0
}

/** Start keeping the new space at the target; returns a function that stops it. */
export function capYoungGeneration(target = newSpaceTarget()) {
  if (!target) return () => {}
  let factor = 0
  const check = () => {
    const want = newSpaceSize() >= target ? 1 : 2
    if (want !== factor) {
      v8.setFlagsFromString(`--semi-space-growth-factor=${want}`)
      factor = want
    }
  }
  check()
  const observer = new PerformanceObserver(check)
  observer.observe({ entryTypes: ['gc'] })
  return () => {
    observer.disconnect()
    v8.setFlagsFromString('--semi-space-growth-factor=2')
  }
}
