// Property runs with a fresh seed per run, printed so any failure can be
// replayed: HEQET_PROPERTY_SEED=<seed> npx tap <file>. The run is bounded by
// time as well as by count: it stops after `numRuns` or `timeLimitMs`,
// whichever comes first, and fails when fewer than `minRuns` fitted.
import { randomInt } from 'node:crypto'
import fc from 'fast-check'
import type { Test } from 'tap'

export const SEED_ENV = 'HEQET_PROPERTY_SEED'

export function propertySeed(t: Test, file: string): number {
  const fixed = process.env[SEED_ENV]
  const seed = fixed !== undefined && fixed !== '' ? Number(fixed) : randomInt(2 ** 31 - 1)
  if (!Number.isSafeInteger(seed)) throw new Error(`${SEED_ENV} must be an integer, got ${fixed}`)
  t.comment(`seed ${seed}; replay: ${SEED_ENV}=${seed} npx tap ${file}`)
  return seed
}

export async function checkProperty<Ts extends unknown[]>(
  t: Test,
  property: fc.IAsyncPropertyWithHooks<Ts> | fc.IAsyncProperty<Ts>,
  opts: {
    file: string
    numRuns: number
    minRuns: number
    timeLimitMs: number
    /** inputs run first, whatever the seed (cases that must always be exercised) */
    examples?: Ts[]
  },
): Promise<void> {
  const seed = propertySeed(t, opts.file)
  const started = performance.now()
  const details = await fc.check(property, {
    seed,
    numRuns: opts.numRuns,
    interruptAfterTimeLimit: opts.timeLimitMs,
    markInterruptAsFailure: false,
    examples: opts.examples ?? [],
  })
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  t.comment(`${details.numRuns} runs in ${seconds} s${details.interrupted ? ' (time limit)' : ''}`)
  const why = details.errorInstance instanceof Error ? `\n${details.errorInstance.message}` : ''
  t.notOk(
    details.failed,
    details.failed ? `${fc.defaultReportMessage(details) ?? 'failed'}${why}` : 'property holds',
  )
  t.ok(
    details.failed || details.numRuns >= opts.minRuns,
    `at least ${opts.minRuns} runs within ${opts.timeLimitMs} ms (${details.numRuns})`,
  )
}
