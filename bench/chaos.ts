// npm run chaos -- --runs N: repeat the kill -9 test N times on a fresh
// testbed; the last line is `N runs, L leaked objects, I inconsistencies`.
// npm run chaos -- --ha [--kills N]: the HA failover chaos (3 etcd members,
// 3 replicas, the leader killed N times and partitioned once; test/e2e/lib/ha-chaos.ts);
// the last line is `N failovers, L leaked objects, I inconsistencies, F failed client requests`.
// --election kubernetes: the replicas elect on a Kubernetes Lease served by
// test/e2e/lib/fake-kube.ts (duration = the lease TTL, renew deadline 2/3 of it).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import type { Test } from 'tap'
import { chaosRuns, loadTopology, startHeqetOnTestbed } from '../test/e2e/lib/chaos.ts'
import { FakeKube } from '../test/e2e/lib/fake-kube.ts'
import { HaReplicaSet, haChaos, seededRandom } from '../test/e2e/lib/ha-chaos.ts'
import { createTestbed, testbedPrerequisites } from '../test/e2e/lib/testbed.ts'
import { etcdBinary, startEtcdCluster } from '../test/helpers/etcd.ts'

const opts = new Command()
  .option('--runs <n>', 'kill -9 runs', '20')
  .option('--seed <n>', 'random seed (default: time)')
  .option('--ha', 'the HA failover chaos instead (needs etcd)')
  .option('--kills <n>', 'with --ha: leader kills before the partition', '5')
  .option('--lease-ttl <s>', 'with --ha: the leader lease TTL in seconds', '5')
  .option('--election <kind>', 'with --ha: etcd, or kubernetes (a Lease on a fake API server)', 'etcd')
  .parse(process.argv)
  .opts<{ runs: string; seed?: string; ha?: boolean; kills: string; leaseTtl: string; election: string }>()

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
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqhachs' })
  try {
    const etcd = await startEtcdCluster(owner, { members: 3 })
    const ttl = Number(opts.leaseTtl)
    let ha: ((id: string) => Record<string, unknown>) | undefined
    if (opts.election === 'kubernetes') {
      const fake = new FakeKube({ namespace: 'glusterfs' })
      await fake.start()
      cleanups.push(() => fake.stop())
      const dir = mkdtempSync(join(tmpdir(), 'heqet-chaos-kube-'))
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
      const kubeconfig = await fake.writeKubeconfig(join(dir, 'kubeconfig'))
      ha = () => ({
        election: 'kubernetes',
        kubeconfig,
        lease_duration_sec: ttl,
        renew_deadline_sec: (ttl * 2) / 3,
        retry_period_sec: Math.max(0.25, ttl / 10),
      })
    }
    const set = await HaReplicaSet.start(tb, etcd, {
      replicas: 3,
      leaseTtlSec: ttl,
      prefix: `chaos-${seed}`,
      ha,
    })
    cleanups.push(() => set.stop())
    const first = await set.waitLeader(60_000)
    if (!first)
      throw new Error(
        `no leader elected\n${set.replicas.map((r) => `--- ${r.id}:\n${r.server.output.slice(-3000)}`).join('\n')}`,
      )
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
