// kill -9 the real server process at random moments of volume operations on
// the testbed, 20 times; after each restart and clean-up the nodes and the
// DB must agree with nothing leaked. (`npm run chaos -- --runs N` for more.)
import t from 'tap'
import { chaosRuns, loadTopology, startHeqetOnTestbed } from './lib/chaos.ts'
import { createTestbed, requireTestbed } from './lib/testbed.ts'

const RUNS = Number(process.env['HEQET_CHAOS_RUNS'] ?? 20)

t.test(`kill -9 during operations, ${RUNS} runs`, async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqkill' })
  t.teardown(() => tb.destroy())
  const server = await startHeqetOnTestbed(tb)
  t.teardown(() => server.stop())
  await loadTopology(server, tb)
  const result = await chaosRuns(tb, server, RUNS, (line) => t.comment(line))
  for (const d of result.details.filter((l) => l.startsWith('  '))) t.comment(d)
  t.equal(result.runs, RUNS)
  t.equal(result.leaked, 0, 'no leaked objects')
  t.equal(result.inconsistencies, 0, 'no inconsistencies')
  t.comment(`${result.runs} runs, ${result.leaked} leaked objects, ${result.inconsistencies} inconsistencies`)
})
