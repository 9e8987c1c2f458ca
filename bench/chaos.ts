// npm run chaos -- --runs N: repeat the kill -9 test N times on a fresh
// testbed; the last line is `N runs, L leaked objects, I inconsistencies`.
import { Command } from 'commander'
import { chaosRuns, loadTopology, startHeqetOnTestbed } from '../test/e2e/lib/chaos.ts'
import { createTestbed, testbedPrerequisites } from '../test/e2e/lib/testbed.ts'

const opts = new Command()
  .option('--runs <n>', 'kill -9 runs', '20')
  .option('--seed <n>', 'random seed (default: time)')
  .parse(process.argv)
  .opts<{ runs: string; seed?: string }>()

const pre = testbedPrerequisites()
if (!pre.ok) {
  console.error(`testbed unavailable: ${pre.why}`)
  process.exit(2)
}
let seed = Number(opts.seed ?? Date.now()) >>> 0
const random = () => {
  // mulberry32: reproducible runs with --seed
  seed = (seed + 0x6d2b79f5) >>> 0
  let x = seed
  x = Math.imul(x ^ (x >>> 15), x | 1)
  x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296
}
console.log(`seed ${seed}`)
const tb = await createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqchaos' })
const server = await startHeqetOnTestbed(tb)
try {
  await loadTopology(server, tb)
  const result = await chaosRuns(tb, server, Number(opts.runs), (l) => console.log(l), random)
  for (const d of result.details.filter((l) => l.startsWith('  '))) console.log(d)
  console.log(
    `${result.runs} runs, ${result.leaked} leaked objects, ${result.inconsistencies} inconsistencies`,
  )
} finally {
  await server.stop()
  await tb.destroy()
}
