// Replicated heqet electing its leader on a Kubernetes coordination.k8s.io
// Lease (ha.election "kubernetes"; issue 14 item 2's alternative), data on a
// REAL etcd, the Lease on FakeKube's Lease API (each replica with its own
// token, so one can be cut off): one leader among three that followers
// forward to; a leader deposed while cut from the API server has its writes
// refused by etcd (the term fence) with nothing applied; a clean shutdown
// releases the Lease; API server errors show in /metrics; kill -9 of the
// leader process → the next write accepted within the lease duration.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { microTime } from '../db/kube-lease-election.ts'
import { DEFAULT_KUBE_LEASE, type KubeLeaseConfig } from '../src/config.ts'
import { FakeKube } from './e2e/lib/fake-kube.ts'
import { CuttableProxy } from './e2e/lib/tcp-proxy.ts'
import { requireEtcd, startEtcd } from './helpers/etcd.ts'
import {
  call,
  freePort,
  type InProcessReplica,
  leaderView,
  pollQueue,
  spawnReplica,
  startReplica,
  until,
} from './helpers/replicas.ts'

const NS = 'glusterfs'
const LEASE = 'heqet-leader'
const FAST = { leaseDurationSec: 3, renewDeadlineSec: 2, retryPeriodSec: 0.25 }
// tsx compiles the sources at every start: allow for a loaded machine
const START_MS = 120_000
const newPrefix = () => `lease-${randomBytes(5).toString('hex')}`

const dir = mkdtempSync(join(tmpdir(), 'heqet-ha-lease-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

async function electedLeader(replicas: InProcessReplica[], ms = 20_000): Promise<InProcessReplica> {
  await until(
    'one leader, seen by every replica',
    () => {
      const leaders = replicas.filter((r) => r.app.replica!.isLeader())
      return (
        leaders.length === 1 &&
        leaders[0]!.app.replica!.ready &&
        replicas.every((r) => r.app.replica!.leader()?.id === leaders[0]!.name)
      )
    },
    ms,
  )
  return replicas.find((r) => r.app.replica!.isLeader())!
}

t.test('replicas electing on a Kubernetes Lease, data on a real etcd', async (t) => {
  if (!requireEtcd(t)) return
  const etcd = await startEtcd(t)
  const tokens = ['tok-r1', 'tok-r2', 'tok-r3']
  const fake = new FakeKube({ namespace: NS, tokens })
  await fake.start()
  t.teardown(() => fake.stop())
  const kubeconfigs = await Promise.all(
    tokens.map((token) => fake.writeKubeconfig(join(dir, token), { token })),
  )
  const lease = () => fake.leases.get(`${NS}/${LEASE}`)!.spec as Record<string, any>

  /** Replica r<i+1>, with the token tokens[i], reaching etcd at `endpoint`. */
  const replica = (
    t: Test,
    prefix: string,
    i: number,
    times: Partial<KubeLeaseConfig>,
    endpoint = etcd.hostPort,
  ) =>
    startReplica(t, {
      endpoint,
      prefix,
      name: `r${i + 1}`,
      config: {
        haElection: 'kubernetes',
        haKubeLease: {
          ...DEFAULT_KUBE_LEASE,
          ...times,
          namespace: '',
          name: LEASE,
          kubeconfig: kubeconfigs[i]!,
        },
      },
    })

  async function replicas(
    t: Test,
    times: Partial<KubeLeaseConfig> = FAST,
    n = 3,
  ): Promise<InProcessReplica[]> {
    fake.leases.clear()
    const prefix = newPrefix()
    const list: InProcessReplica[] = []
    for (let i = 0; i < n; i++) list.push(await replica(t, prefix, i, times))
    return list
  }

  t.test('three replicas: one leader on the Lease; followers forward; errors in /metrics', async (t) => {
    const started = Date.now()
    const list = await replicas(t)
    const leader = await electedLeader(list)
    t.comment(`three replicas started, one leader in ${Date.now() - started} ms`)
    const [f1, f2] = list.filter((r) => r !== leader) as [InProcessReplica, InProcessReplica]
    t.equal(list.filter((r) => r.app.replica!.isLeader()).length, 1, 'exactly one leader')
    t.equal(lease()['holderIdentity'], leader.name, 'the Lease names it')
    const view = JSON.parse((await call(f1.url, 'GET', '/internal/leader')).body)
    t.same(
      [view.leader, view.leader_id, view.leader_url],
      [false, leader.name, leader.url],
      'a follower names the leader',
    )

    const cluster = await call(f1.url, 'POST', '/clusters', { file: true })
    t.equal(cluster.status, 201, 'a write sent to a follower is forwarded and answered')
    t.ok(f1.app.replica!.forwarded >= 1, 'f1 forwarded it')
    const node = await call(f2.url, 'POST', '/nodes', {
      zone: 1,
      hostnames: { manage: ['k1.example.com'], storage: ['10.7.0.1'] },
      cluster: JSON.parse(cluster.body).id,
    })
    t.equal(node.status, 202)
    t.equal(
      (await pollQueue(f1.url, node.headers.get('location')!)).status,
      303,
      '/queue answered by another follower',
    )

    // the API server misbehaves for a while: counted, visible, no crash, still one leader
    let n = 0
    fake.fault = () => (++n % 3 === 0 ? { status: 500, message: 'etcdserver: request timed out' } : undefined)
    const faultsAt = Date.now()
    await until('some failed calls', () => n > 30, 10_000)
    fake.fault = undefined
    t.comment(`30 calls with faults in ${Date.now() - faultsAt} ms`)
    const metrics = await Promise.all(list.map(async (r) => (await fetch(`${r.url}/metrics`)).text()))
    const failed = metrics
      .map((m) => Number(/^heqet_leader_election_errors\{kind="server"\} (\d+)/m.exec(m)?.[1] ?? 0))
      .reduce((a, b) => a + b)
    t.ok(failed > 0, `heqet_leader_election_errors{kind="server"}: ${failed} over the three replicas`)
    const again = await electedLeader(list)
    t.ok(again, `one leader after the faults (${again.name})`)
  })

  t.test('a leader deposed while cut from the API server: etcd refuses its writes', async (t) => {
    // a long renew deadline: the cut-off leader goes on believing it leads
    const list = await replicas(t, { leaseDurationSec: 30, renewDeadlineSec: 20, retryPeriodSec: 0.25 })
    const a = await electedLeader(list)
    const others = list.filter((r) => r !== a)
    const aToken = tokens[list.indexOf(a)]!
    let hung = 0
    fake.fault = ({ token }) => {
      if (token !== aToken) return undefined
      hung++
      return 'hang'
    }
    t.teardown(() => {
      fake.fault = undefined
    })
    // a's renewal hangs (for its 10 s request timeout): it sees nothing of what follows
    await until("a's renewal to hang", () => hung > 0)
    const transitions = lease()['leaseTransitions'] as number
    // as if a's renewals had stopped reaching the API server a lease duration ago
    fake.editLease(NS, LEASE, (spec) => {
      spec['renewTime'] = microTime(Date.now() - 60_000)
    })
    await until('another replica to lead', () =>
      others.some((r) => r.app.replica!.isLeader() && r.app.replica!.ready),
    )
    const b = others.find((r) => r.app.replica!.isLeader())!
    t.equal(lease()['holderIdentity'], b.name, `${b.name} took the Lease`)
    t.equal(lease()['leaseTransitions'], transitions + 1)
    t.ok(a.app.replica!.isLeader(), 'the cut-off leader still believes it leads (its renew deadline is 20 s)')

    const before = (await call(b.url, 'GET', '/clusters')).body
    const refused = await call(a.url, 'POST', '/clusters', { file: true })
    t.equal(refused.status, 503, 'its write is refused')
    t.match(refused.body, /no longer the leader/)
    const fenced = Number(
      /^heqet_fenced_writes (\d+)/m.exec(await (await fetch(`${a.url}/metrics`)).text())?.[1],
    )
    t.equal(fenced, 1, 'by etcd: heqet_fenced_writes 1')
    await until('the deposed leader to step down', () => !a.app.replica!.isLeader(), 5000)
    t.equal(a.app.replica!.election.depositions, 1, 'a deposition')
    t.equal((await call(b.url, 'GET', '/clusters')).body, before, 'nothing of it was applied')
    t.same(JSON.parse(before).clusters, [])
    t.equal((await call(b.url, 'POST', '/clusters', { file: true })).status, 201, 'the new leader writes')

    fake.fault = undefined
    await until('a to follow b', () => a.app.replica!.leader()?.id === b.name, 15_000)
    t.equal((await call(a.url, 'POST', '/clusters', { file: true })).status, 201, 'a, back, forwards to b')
  })

  t.test('a leader cut off from etcd stops renewing and hands the Lease on', async (t) => {
    fake.leases.clear()
    const prefix = newPrefix()
    const proxy = new CuttableProxy('127.0.0.1', Number(etcd.hostPort.split(':')[1]))
    await proxy.start()
    t.teardown(() => proxy.close())
    // a lease duration well beyond the renew deadline: q leading before it proves p released
    const times = { ...FAST, leaseDurationSec: 6 }
    const p = await replica(t, prefix, 0, times, `127.0.0.1:${proxy.port}`)
    await electedLeader([p])
    const q = await replica(t, prefix, 1, times)
    await electedLeader([p, q])
    const cutAt = Date.now()
    proxy.cut()
    await until('q to lead', () => q.app.replica!.isLeader() && q.app.replica!.ready, 20_000)
    const pe = p.app.replica!.election
    const qe = q.app.replica!.election
    t.notOk(p.app.replica!.isLeader(), 'p no longer leads')
    t.ok(pe.termEndedAt > 0 && pe.termEndedAt < qe.electedAt, 'p stepped down BEFORE q was elected')
    t.comment(
      `etcd cut -> p stepped down after ${pe.termEndedAt - cutAt} ms, q elected after ${qe.electedAt - cutAt} ms (renew deadline 2 s, duration 6 s)`,
    )
    t.ok(
      pe.termEndedAt - cutAt <= times.renewDeadlineSec * 1000 + 1000,
      'p stepped down within the renew deadline',
    )
    t.ok(
      qe.electedAt - cutAt < times.leaseDurationSec * 1000,
      'q led before the Lease could expire: p released it',
    )
    t.ok((pe.errors?.['etcd'] ?? 0) >= 1, `p counted its etcd failures (${JSON.stringify(pe.errors)})`)
    t.equal((await call(q.url, 'POST', '/clusters', { file: true })).status, 201, 'q takes writes')
    await t.rejects(
      p.app.ctx.store.write((tx) => tx.put('attribute', 'x', { key: 'x', value: 'p' })),
      /not the leader/,
      'a write on the cut-off replica is refused',
    )
    proxy.heal()
    await until(
      'p to follow q again',
      () => p.app.replica!.leader()?.id === 'r2' && !p.app.replica!.isLeader(),
    )
    t.equal(
      (await call(p.url, 'POST', '/clusters', { file: true })).status,
      201,
      'p, back, relays writes to q',
    )
    await p.app.close()
  })

  t.test('a clean shutdown releases the Lease: the next leader at its next retry', async (t) => {
    const list = await replicas(t, FAST)
    const leader = await electedLeader(list)
    const closedAt = Date.now()
    await leader.app.close()
    t.equal(lease()['holderIdentity'], '', 'holderIdentity cleared on close')
    const rest = list.filter((r) => r !== leader)
    const next = await electedLeader(rest, 10_000)
    const ms = Date.now() - closedAt
    t.comment(`leader closed -> ${next.name} leads and is ready in ${ms} ms (lease duration 3 s)`)
    t.ok(ms < FAST.leaseDurationSec * 1000, `faster than the lease duration (${ms} ms)`)
    t.equal((await call(rest[0]!.url, 'POST', '/clusters', { file: true })).status, 201)
  })
})

t.test('kill -9 of the leader process: the next write is accepted within the lease duration', async (t) => {
  if (!requireEtcd(t)) return
  const etcd = await startEtcd(t)
  const fake = new FakeKube({ namespace: NS, tokens: ['tok-a', 'tok-b'] })
  await fake.start()
  t.teardown(() => fake.stop())
  const prefix = newPrefix()
  const ha = async (token: string) => ({
    election: 'kubernetes',
    lease_name: LEASE,
    lease_duration_sec: FAST.leaseDurationSec,
    renew_deadline_sec: FAST.renewDeadlineSec,
    retry_period_sec: 0.5,
    kubeconfig: await fake.writeKubeconfig(join(dir, `proc-${token}`), { token }),
  })
  const common = { endpoint: etcd.hostPort, prefix, ttlSec: 2 }
  const a = spawnReplica(t, { ...common, name: 'A', port: await freePort(), ha: await ha('tok-a') })
  await until('A to lead', async () => (await leaderView(a.url))?.ready === true, START_MS).catch((err) => {
    throw new Error(`${(err as Error).message}\n${a.output()}`)
  })
  const b = spawnReplica(t, { ...common, name: 'B', port: await freePort(), ha: await ha('tok-b') })
  await until('B to follow A', async () => (await leaderView(b.url))?.leader_id === 'A', START_MS).catch(
    (err) => {
      throw new Error(`${(err as Error).message}\n${b.output()}`)
    },
  )
  t.equal((await call(b.url, 'POST', '/clusters', { file: true })).status, 201, 'a write through B (A leads)')
  t.equal(fake.leases.get(`${NS}/${LEASE}`)?.spec['holderIdentity'], 'A')

  const killedAt = Date.now()
  process.kill(a.child.pid!, 'SIGKILL')
  await a.exited
  const next = await call(b.url, 'POST', '/clusters', { file: true })
  const acceptedMs = Date.now() - killedAt
  t.equal(next.status, 201, 'the next write is accepted')
  t.equal((await leaderView(b.url))?.leader, true, 'B leads')
  t.equal(fake.leases.get(`${NS}/${LEASE}`)?.spec['holderIdentity'], 'B', 'and holds the Lease')
  t.comment(
    `failover: leader killed -9 -> next write accepted in ${acceptedMs} ms (Lease duration ${FAST.leaseDurationSec} s, retry 0.5 s)`,
  )
  t.ok(
    acceptedMs <= FAST.leaseDurationSec * 1000 + 3000,
    `within the lease duration + retries (${acceptedMs} ms)`,
  )
  t.equal(JSON.parse((await call(b.url, 'GET', '/clusters')).body).clusters.length, 2, 'both clusters there')
})
