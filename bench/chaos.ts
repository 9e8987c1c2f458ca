// npm run chaos -- --runs N: repeat the kill -9 test N times on a fresh
// testbed; the last line is `N runs, L leaked objects, I inconsistencies`.
// npm run chaos -- --ha [--kills N]: the HA failover chaos (3 etcd members,
// 3 replicas, the leader killed N times and partitioned once; test/e2e/lib/ha-chaos.ts);
// the last line is `N failovers, L leaked objects, I inconsistencies, F failed client requests`.
import { Command } from 'commander'
import type { Test } from 'tap'
import { chaosRuns, loadTopology, startHeqetOnTestbed } from '../test/e2e/lib/chaos.ts'
import { HaReplicaSet, haChaos, seededRandom } from '../test/e2e/lib/ha-chaos.ts'
import { createTestbed, testbedPrerequisites } from '../test/e2e/lib/testbed.ts'
import { etcdBinary, startEtcdCluster } from '../test/helpers/etcd.ts'

const opts = new Command()
  .option('--runs <n>', 'kill -9 runs', '20')
  .option('--seed <n>', 'random seed (default: time)')
  .option('--ha', 'the HA failover chaos instead (needs etcd)')
  .option('--kills <n>', 'with --ha: leader kills before the partition', '5')
  .option('--lease-ttl <s>', 'with --ha: the leader lease TTL in seconds', '5')
  .parse(process.argv)
  .opts<{ runs: string; seed?: string; ha?: boolean; kills: string; leaseTtl: string }>()

const pre = testbedPrerequisites()
if (!pre.ok) {
  console.error(`testbed unavailable: ${pre.why}`)
  process.exit(2)
}
const seed = Number(opts.seed ?? Date.now()) >>> 0
console.log(`seed ${seed}`)

if (opts.ha) {
  if (!etcdBinary()) {
    console.error('etcd not installed (apt-get install etcd-server)')
    process.exit(2)
  }
  // the etcd helper ends its processes through a tap-style teardown: run them here
  const cleanups: (() => unknown)[] = []
  const owner = { teardown: (fn: () => unknown) => cleanups.push(fn) } as unknown as Test
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqhachaos' })
  try {
    const etcd = await startEtcdCluster(owner, { members: 3 })
    const ttl = Number(opts.leaseTtl)
    const set = await HaReplicaSet.start(tb, etcd, { replicas: 3, leaseTtlSec: ttl, prefix: `chaos-${seed}` })
    cleanups.push(() => set.stop())
    const first = await set.waitLeader(60_000)
    if (!first) throw new Error('no leader elected')
    await loadTopology(first.server, tb)
    const result = await haChaos(tb, set, {
      seed,
      kills: Number(opts.kills),
      partition: true,
      leaseTtlSec: ttl,
      log: (l) => console.log(l),
    })
    console.log(result.summary)
  } finally {
    for (const fn of cleanups.reverse()) await fn()
    await tb.destroy()
  }
} else {
  const random = seededRandom(seed)
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
}
