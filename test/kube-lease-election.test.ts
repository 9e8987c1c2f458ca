// The Kubernetes Lease election (db/kube-lease-election.ts) through the real
// client-node 1.4 CoordinationV1Api (api/kube-lease.ts) against FakeKube's
// Lease API, with the term key on a REAL etcd: client-go's acquire / renew /
// release semantics, one leader among three, a cut-off leader stepping down
// before anyone may take the Lease, API server faults counted and survived.
// The replicas built on it (forwarding, fencing of store writes, kill -9)
// are in ha-lease.test.ts.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import t, { type Test } from 'tap'
import { kubeLeaseApi } from '../api/kube-lease.ts'
import {
  KubeLeaseElection,
  type LeaseApi,
  LeaseApiError,
  type TermClient,
} from '../db/kube-lease-election.ts'
import { FakeKube } from './e2e/lib/fake-kube.ts'
import { requireEtcd, startEtcd } from './helpers/etcd.ts'
import { until } from './helpers/replicas.ts'

const NS = 'glusterfs'
const LEASE = 'heqet-leader'
const newPrefix = () => `lease-${randomBytes(5).toString('hex')}`

interface Candidate {
  id: string
  token: string
  election: KubeLeaseElection
  logs: string[]
  /** [time, isLeader] at every change */
  changes: { at: number; leading: boolean }[]
}

const dir = mkdtempSync(join(tmpdir(), 'heqet-lease-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

async function apiFor(fake: FakeKube, token: string): Promise<LeaseApi> {
  const kubeconfig = await fake.writeKubeconfig(join(dir, `kubeconfig-${randomBytes(4).toString('hex')}`), {
    token,
  })
  return kubeLeaseApi(
    {
      namespace: '',
      name: LEASE,
      kubeconfig,
      leaseDurationSec: 15,
      renewDeadlineSec: 10,
      retryPeriodSec: 2,
    },
    { env: {}, serviceAccountDir: join(dir, 'none') },
  )
}

t.test('the Lease client: client-node 1.4 against the fake API server', async (t) => {
  const fake = new FakeKube({ namespace: NS, tokens: ['other'] })
  await fake.start()
  t.teardown(() => fake.stop())
  const api = await apiFor(fake, fake.token)
  const signal = () => AbortSignal.timeout(2000)
  t.equal(api.name, `${NS}/${LEASE}`, 'namespace from the kubeconfig context')
  t.equal(await api.get(signal()), undefined, 'a missing Lease reads as undefined (404)')
  const spec = {
    holderIdentity: 'a',
    leaseDurationSeconds: 15,
    acquireTime: '2026-12-07T01:00:00.123456Z',
    renewTime: '2026-12-07T01:00:00.123456Z',
    leaseTransitions: 0,
  }
  const created = await api.create(spec, signal())
  t.match(created, { ...spec, resourceVersion: /^\d+$/ }, 'created: the spec comes back as sent')
  t.same(fake.leases.get(`${NS}/${LEASE}`)?.spec, spec, 'stored with MicroTime text')
  const again = await api.create(spec, signal()).catch((e: unknown) => e)
  t.ok(again instanceof LeaseApiError && again.status === 409, 'a second create: 409 AlreadyExists')
  t.match((again as Error).message, /already exists/)
  const renewed = await api.replace(
    { ...spec, renewTime: '2026-12-07T01:00:02.000000Z' },
    created.resourceVersion,
    signal(),
  )
  t.not(renewed.resourceVersion, created.resourceVersion, 'an update gets a new resourceVersion')
  const stale = await api
    .replace({ ...spec, holderIdentity: 'b' }, created.resourceVersion, signal())
    .catch((e: unknown) => e)
  t.ok(stale instanceof LeaseApiError && stale.status === 409, 'an update with an old resourceVersion: 409')
  t.match((stale as Error).message, /the object has been modified/)
  t.equal((await api.get(signal()))?.holderIdentity, 'a', 'and nothing changed')

  const stranger = await apiFor(fake, 'wrong-token')
  const refused = await stranger.get(signal()).catch((e: unknown) => e)
  t.ok(refused instanceof LeaseApiError && refused.status === 401, 'a wrong bearer token: 401')

  fake.fault = () => ({ status: 500, message: 'etcdserver: request timed out' })
  const failed = await api.get(signal()).catch((e: unknown) => e)
  t.ok(failed instanceof LeaseApiError && failed.status === 500, 'a 500 is a LeaseApiError 500')
  t.match((failed as Error).message, /etcdserver: request timed out/)
  fake.fault = () => 'hang'
  const started = Date.now()
  const hung = await api.get(AbortSignal.timeout(300)).catch((e: unknown) => e)
  t.ok(hung instanceof LeaseApiError && hung.timedOut, 'a request that hangs times out on its signal')
  t.ok(Date.now() - started < 2000, 'promptly')
  fake.fault = () => 'drop'
  const dropped = await api.get(signal()).catch((e: unknown) => e)
  t.ok(
    dropped instanceof LeaseApiError && dropped.status === undefined && !dropped.timedOut,
    'a dropped connection',
  )
  fake.fault = undefined
  t.equal((await api.get(signal()))?.holderIdentity, 'a', 'and it answers again')
})

t.test('election on a Lease, term in a real etcd', async (t) => {
  if (!requireEtcd(t)) return
  const etcd = await startEtcd(t)
  const tokens = ['tok-a', 'tok-b', 'tok-c']
  const fake = new FakeKube({ namespace: NS, tokens })
  await fake.start()
  const etcdClient = new Etcd3({ hosts: etcd.endpoint })
  t.teardown(async () => {
    etcdClient.close()
    await fake.stop()
  })
  const lease = () => fake.leases.get(`${NS}/${LEASE}`)!.spec as Record<string, any>
  const storedTerm = async (prefix: string) =>
    JSON.parse((await etcdClient.get(`${prefix}/_meta/leader-term`).string()) ?? 'null') as {
      term: number
      id: string
      url: string
    } | null

  async function candidates(
    t: Test,
    prefix: string,
    // a renew deadline with a fraction of a millisecond in half of it, as 10/3 s gives
    times = { leaseDurationSec: 3, renewDeadlineMs: 2001, retryPeriodMs: 250 },
  ): Promise<Candidate[]> {
    const list: Candidate[] = []
    for (const [i, token] of tokens.entries()) {
      const id = `r${i + 1}`
      const logs: string[] = []
      const changes: Candidate['changes'] = []
      const log = (level: string) => (m: string) => logs.push(`${level} ${m}`)
      const election: KubeLeaseElection = new KubeLeaseElection({
        api: await apiFor(fake, token),
        client: etcdClient as unknown as TermClient,
        prefix,
        id,
        url: `http://replica-${id}`,
        ...times,
        log: { info: log('info'), warn: log('warn'), error: log('error') },
        onChange: () => {
          const leading = election.isLeader()
          if (changes.at(-1)?.leading !== leading) changes.push({ at: Date.now(), leading })
        },
      })
      list.push({ id, token, election, logs, changes })
    }
    t.teardown(() => Promise.all(list.map((c) => c.election.stop())))
    for (const c of list) c.election.start()
    return list
  }
  const leaders = (list: Candidate[]) => list.filter((c) => c.election.isLeader())
  const agreed = async (list: Candidate[], ms = 10_000) => {
    await until(
      'one leader that every candidate sees',
      () => {
        const l = leaders(list)
        return l.length === 1 && list.every((c) => c.election.leader?.id === l[0]!.id)
      },
      ms,
    )
    return leaders(list)[0]!
  }

  t.test('one leader among three; the Lease as client-go writes it; renewals', async (t) => {
    fake.leases.clear()
    const prefix = newPrefix()
    const list = await candidates(t, prefix)
    const leader = await agreed(list)
    const first = { ...lease() }
    t.equal(first['holderIdentity'], leader.id, 'holderIdentity = the leader')
    t.equal(first['leaseDurationSeconds'], 3)
    t.match(first['acquireTime'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'acquireTime: a MicroTime')
    t.ok(Date.parse(first['acquireTime']) <= Date.parse(first['renewTime']), 'renewTime from acquireTime on')
    const term = await storedTerm(prefix)
    t.same(
      term,
      {
        term: first['leaseTransitions'],
        id: leader.id,
        url: `http://replica-${leader.id}`,
        lease: `${NS}/${LEASE}`,
      },
      'the term in etcd = leaseTransitions, with the leader URL',
    )
    const followers = list.filter((c) => c !== leader)
    t.same(
      followers.map((c) => c.election.leader?.url),
      [`http://replica-${leader.id}`, `http://replica-${leader.id}`],
      'followers know the leader URL',
    )
    await until(
      'two renewals',
      () => Date.parse(lease()['renewTime']) >= Date.parse(first['renewTime']) + 400,
      5000,
    )
    t.equal(lease()['acquireTime'], first['acquireTime'], 'a renewal keeps acquireTime')
    t.equal(lease()['leaseTransitions'], first['leaseTransitions'], 'and leaseTransitions')
    t.equal(leaders(list).length, 1, 'still one leader')
    t.same(
      list.map((c) => c.election.terms).reduce((a, b) => a + b),
      1,
      'one term in all',
    )
    t.same(
      list.map((c) => c.election.depositions),
      [0, 0, 0],
      'no deposition',
    )
    t.ok(
      leader.logs.some((l) => /is the leader \(Lease glusterfs\/heqet-leader, term \d+\)/.test(l)),
      'the leader logs its term',
    )

    // clean shutdown: released, the next one takes over at its next retry
    const stopped = Date.now()
    await leader.election.stop()
    t.equal(lease()['holderIdentity'], '', 'stop() released the Lease (holderIdentity cleared)')
    const next = await agreed(followers, 3000)
    const took = Date.now() - stopped
    t.ok(took < 3000, `another replica led ${took} ms after the release (lease duration 3000 ms)`)
    t.equal(lease()['holderIdentity'], next.id)
    t.equal(lease()['leaseTransitions'], first['leaseTransitions'] + 1, 'leaseTransitions bumped')
    t.equal((await storedTerm(prefix))?.term, first['leaseTransitions'] + 1, 'and the term in etcd with it')
    t.equal(leader.election.depositions, 0, 'a shutdown is no deposition')
  })

  t.test('a leader cut off from the API server steps down before anyone may take the Lease', async (t) => {
    fake.leases.clear()
    const prefix = newPrefix()
    const list = await candidates(t, prefix)
    const leader = await agreed(list)
    const leaderToken = leader.token
    const cutAt = Date.now()
    fake.fault = ({ token }) => (token === leaderToken ? 'hang' : undefined)
    t.teardown(() => {
      fake.fault = undefined
    })
    const others = list.filter((c) => c !== leader)
    const next = await agreed(others, 10_000)
    const steppedDown = leader.changes.find((c) => !c.leading && c.at >= cutAt)?.at
    const elected = next.changes.find((c) => c.leading && c.at >= cutAt)?.at
    t.ok(steppedDown !== undefined && elected !== undefined)
    t.ok(
      steppedDown! < elected!,
      `the cut leader stepped down ${steppedDown! - cutAt} ms after the cut, the next was elected at ${elected! - cutAt} ms`,
    )
    t.ok(steppedDown! - cutAt <= 2000 + 1000, 'within the renew deadline (2 s)')
    t.ok(elected! - cutAt < 3000 + 2 * 550 + 500, 'the next within the lease duration + a retry')
    t.equal(leader.election.depositions, 1, 'a deposition')
    t.ok(
      leader.logs.some((l) => /error .*not renewed within the renew deadline/.test(l)),
      'logged as an error',
    )
    t.ok(
      (leader.election.errors['timeout'] ?? 0) >= 1,
      `its timed-out renewals are counted (${JSON.stringify(leader.election.errors)})`,
    )

    // back in touch: it follows the new leader
    fake.fault = undefined
    await until('the old leader follows', () => leader.election.leader?.id === next.id, 5000).catch((err) => {
      throw new Error(`${(err as Error).message}; its log:\n${leader.logs.join('\n')}`)
    })
    t.notOk(leader.election.isLeader())
  })

  t.test(
    'API server faults (500, timeouts, dropped connections) are counted, logged, survived',
    async (t) => {
      fake.leases.clear()
      const prefix = newPrefix()
      const list = await candidates(t, prefix)
      await agreed(list)
      let n = 0
      fake.fault = () => {
        n++
        if (n % 5 === 0) return { status: 500, message: 'etcdserver: leader changed' }
        if (n % 11 === 0) return 'drop'
        if (n % 13 === 0) return 'hang'
        if (n % 17 === 0) return { status: 429, reason: 'TooManyRequests', message: 'slow down' }
        return undefined
      }
      let most = 0
      const started = Date.now()
      await until('4 s of faults', () => {
        most = Math.max(most, leaders(list).length)
        return Date.now() - started > 4000
      })
      fake.fault = undefined
      t.ok(most <= 1, 'never two leaders at once')
      const errors: Record<string, number> = {}
      for (const c of list)
        for (const [k, v] of Object.entries(c.election.errors)) errors[k] = (errors[k] ?? 0) + v
      t.ok(errors['server']! > 0 && errors['client']! > 0, `500s and 429s counted: ${JSON.stringify(errors)}`)
      t.ok((errors['network'] ?? 0) + (errors['timeout'] ?? 0) > 0, 'dropped and hung calls counted')
      t.ok(
        list.some((c) =>
          c.logs.some((l) => /warn leader election: Lease \w+: HTTP 500: etcdserver: leader changed/.test(l)),
        ),
        'logged with the API server message',
      )
      const leader = await agreed(list, 8000)
      t.ok(leader, `a leader after the faults: ${leader.id}`)
    },
  )

  t.test('a Lease re-created from scratch still yields a newer term', async (t) => {
    fake.leases.clear()
    const prefix = newPrefix()
    const list = await candidates(t, prefix)
    const leader = await agreed(list)
    const before = (await storedTerm(prefix))!.term
    await leader.election.stop()
    await agreed(list.filter((c) => c !== leader))
    const middle = (await storedTerm(prefix))!.term
    t.ok(middle > before)
    // an administrator deletes the Lease: leaseTransitions would start again at 0
    fake.leases.clear()
    const now = Date.now()
    await until(
      'the Lease re-created and the term written',
      async () => (await storedTerm(prefix))!.term > middle,
      8000,
    )
    t.ok(Date.now() - now < 8000)
    t.equal(
      lease()['leaseTransitions'],
      (await storedTerm(prefix))!.term,
      'leaseTransitions continued above the stored term',
    )
    await agreed(list.filter((c) => c !== leader))
  })
})
