// Replicated heqet on a REAL etcd (issue 14 items 2-3): one leader among
// three replicas, writes forwarded by followers with heketi's answers
// unchanged, /queue/<id> answered by any replica, fencing (a write whose
// lease is gone is refused by etcd; no node command follows a lost lease).
// The kill -9 failover of real processes is in ha-failover.test.ts.
import { randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import t from 'tap'
import { EtcdStore, type Fence, FencedWriteError } from '../db/etcd.ts'
import type { Executor } from '../executors/executor.ts'
import { MockExecutor } from '../executors/mock.ts'
import { requireEtcd, startEtcd } from './helpers/etcd.ts'
import {
  addTopology,
  call,
  type InProcessReplica,
  pollQueue,
  revokeLease,
  startReplica,
  until,
} from './helpers/replicas.ts'

const newPrefix = () => `ha-${randomBytes(5).toString('hex')}`

/** The one replica that leads, once every replica agrees on it (bounded wait). */
async function electedLeader(replicas: InProcessReplica[]): Promise<InProcessReplica> {
  await until('one leader, seen by every replica', () => {
    const leaders = replicas.filter((r) => r.app.replica!.isLeader())
    return (
      leaders.length === 1 &&
      leaders[0]!.app.replica!.ready &&
      replicas.every((r) => r.app.replica!.leader()?.id === leaders[0]!.name)
    )
  })
  return replicas.find((r) => r.app.replica!.isLeader())!
}

/** A TCP relay to etcd that can be cut (a partition) and restored on the same port. */
async function etcdRelay(target: string) {
  const [host, port] = target.split(':') as [string, string]
  const sockets = new Set<Socket>()
  let server: Server | undefined
  const listen = (onPort: number) =>
    new Promise<number>((resolve, reject) => {
      server = createServer((client) => {
        const up = connect(Number(port), host)
        for (const s of [client, up]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => s.destroy())
        }
        client.pipe(up)
        up.pipe(client)
      })
      server.once('error', reject)
      server.listen(onPort, '127.0.0.1', () => resolve((server!.address() as { port: number }).port))
    })
  const relayPort = await listen(0)
  return {
    hostPort: `127.0.0.1:${relayPort}`,
    async cut() {
      const closing = server
      server = undefined
      if (!closing) return
      await new Promise<void>((resolve) => {
        closing.close(() => resolve())
        for (const s of sockets) s.destroy()
      })
    },
    restore: () => listen(relayPort),
  }
}

/** Records every node command that reaches the mock; `volumeCreate` can be held. */
function recordingExecutor() {
  const inner = new MockExecutor()
  const calls: { method: string; at: number }[] = []
  let hold: Promise<void> | undefined
  let release = () => {}
  let reached = false
  const executor = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function' || prop === 'close') return value
      return async (...args: unknown[]) => {
        calls.push({ method: String(prop), at: Date.now() })
        if (prop === 'volumeCreate' && hold) {
          reached = true
          await hold
        }
        return value.apply(target, args)
      }
    },
  }) as Executor
  return {
    executor,
    calls,
    holdVolumeCreate() {
      hold = new Promise<void>((r) => {
        release = r
      })
    },
    release: () => release(),
    reached: () => reached,
  }
}

const topology = (base: string) => addTopology(base, 'ha', '10.9.0')

t.test('replicas on a real etcd', async (t) => {
  if (!requireEtcd(t)) return
  const etcd = await startEtcd(t)

  t.test(
    'three replicas elect one leader; followers forward writes; any replica answers the queue',
    async (t) => {
      const prefix = newPrefix()
      const replicas = [
        await startReplica(t, { endpoint: etcd.hostPort, prefix, name: 'r1' }),
        await startReplica(t, { endpoint: etcd.hostPort, prefix, name: 'r2' }),
        await startReplica(t, { endpoint: etcd.hostPort, prefix, name: 'r3' }),
      ]
      const leader = await electedLeader(replicas)
      const [f1, f2] = replicas.filter((r) => r !== leader) as [InProcessReplica, InProcessReplica]
      t.equal(replicas.filter((r) => r.app.replica!.isLeader()).length, 1, 'exactly one leader')
      const view = JSON.parse((await call(f1.url, 'GET', '/internal/leader')).body)
      t.same(
        { leader: view.leader, leader_id: view.leader_id, leader_url: view.leader_url },
        { leader: false, leader_id: leader.name, leader_url: leader.url },
        'a follower names the leader',
      )

      const metrics = async (url: string) =>
        (await (await fetch(`${url}/metrics`)).text()).match(/^heqet_leader (\d)/m)?.[1]
      t.same([await metrics(leader.url), await metrics(f1.url)], ['1', '0'], '/metrics: heqet_leader 1 / 0')

      // everything below is sent to followers only
      const clusterId = await topology(f1.url)
      t.ok(f1.app.replica!.forwarded >= 7, `f1 forwarded its writes (${f1.app.replica!.forwarded})`)
      t.equal(leader.app.replica!.forwarded, 0, 'the leader forwards nothing')

      const create = await call(f1.url, 'POST', '/volumes', { size: 1, durability: { type: 'replicate' } })
      t.equal(create.status, 202, 'a create sent to a follower is accepted with 202')
      const location = create.headers.get('location')!
      t.match(location, /^\/queue\/[a-f0-9]{32}$/, 'with a bare /queue/<id> Location')
      t.equal(create.body, '', 'and no body, as heketi')
      const done = await pollQueue(f2.url, location)
      t.equal(done.status, 303, 'the queue entry, polled on ANOTHER follower, ends in 303')
      const volumePath = done.headers.get('location')!
      t.match(volumePath, /^\/volumes\/[a-f0-9]{32}$/)
      t.equal(
        (await call(f2.url, 'GET', location)).status,
        404,
        'a completion is read once (then Id not found)',
      )
      let onFollower: { status: number; body: string } = { status: 0, body: '' }
      await until('the volume in the follower cache', async () => {
        onFollower = await call(f1.url, 'GET', volumePath)
        return onFollower.status === 200
      })
      const onLeader = await call(leader.url, 'GET', volumePath)
      t.equal(
        onFollower.body,
        onLeader.body,
        'a follower answers the volume from its cache, as the leader does',
      )
      t.equal(JSON.parse(onFollower.body).cluster, clusterId)

      // refusals come back unchanged
      const bad = await call(f1.url, 'POST', '/volumes', { size: 0 })
      const badOnLeader = await call(leader.url, 'POST', '/volumes', { size: 0 })
      t.same(
        [bad.status, bad.body],
        [badOnLeader.status, badOnLeader.body],
        'a refusal relayed byte for byte',
      )
      t.equal(bad.headers.get('content-type'), badOnLeader.headers.get('content-type'))
      const missing = await call(f2.url, 'DELETE', '/volumes/0123456789abcdef0123456789abcdef')
      t.same([missing.status, missing.body], [404, 'Id not found\n'])
      const ops = await call(f2.url, 'GET', '/operations')
      t.equal(ops.status, 200, "GET /operations is the leader's (forwarded)")

      const del = await call(f2.url, 'DELETE', volumePath)
      t.equal(del.status, 202)
      t.equal(
        (await pollQueue(f1.url, del.headers.get('location')!)).status,
        204,
        'a delete ends in 204 on any replica',
      )
    },
  )

  t.test('a fenced write is refused by etcd and nothing of it is applied', async (t) => {
    const prefix = newPrefix()
    let fence: Fence | undefined
    const store = await EtcdStore.open({ hosts: [etcd.endpoint], prefix, fence: () => fence })
    t.teardown(() => store.close())
    await t.rejects(
      store.write((tx) => tx.put('attribute', 'a', { key: 'a', value: '1' })),
      /holds no leader lease/,
      'no fence: refused before anything is sent',
    )
    // a stand-in leader key under a lease of our own
    const client = store.client as unknown as {
      lease(ttl: number): { grant(): Promise<string>; revoke(): Promise<void> }
      put(key: string): {
        value(v: string): { lease(id: string): { exec(): Promise<{ header: { revision: string } }> } }
      }
    }
    const lease = client.lease(30)
    const leaseId = await lease.grant()
    const key = `${prefix}/_meta/election/${BigInt(leaseId).toString(16)}`
    const put = await client.put(key).value('{}').lease(leaseId).exec()
    fence = { key, createRevision: put.header.revision }
    await store.write((tx) => tx.put('attribute', 'a', { key: 'a', value: '1' }))
    t.equal(
      store.read((tx) => tx.get('attribute', 'a')?.value),
      '1',
      'with the lease alive the write commits',
    )
    await lease.revoke() // what an expired lease looks like to etcd
    const refused = await store
      .write((tx) => {
        tx.put('attribute', 'a', { key: 'a', value: '2' })
        tx.put('attribute', 'b', { key: 'b', value: '2' })
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      )
    t.type(refused, FencedWriteError, 'the lease is gone: etcd refuses the write')
    t.equal((refused as FencedWriteError).fenceKey, key, 'refused by etcd (the compare), not locally')
    const fresh = await EtcdStore.open({ hosts: [etcd.endpoint], prefix, watch: false })
    t.teardown(() => fresh.close())
    t.same(
      fresh.read((tx) => [tx.get('attribute', 'a')?.value, tx.get('attribute', 'b')]),
      ['1', undefined],
      'nothing of the refused write is in etcd',
    )
    t.equal(store.fencedWrites, 2)
  })

  t.test('a leader whose lease is revoked mid-operation sends no further node command', async (t) => {
    const prefix = newPrefix()
    const rec = recordingExecutor()
    const r = await startReplica(t, { endpoint: etcd.hostPort, prefix, name: 'solo', executor: rec.executor })
    await electedLeader([r])
    await topology(r.url)
    rec.holdVolumeCreate()
    const create = await call(r.url, 'POST', '/volumes', { size: 1, durability: { type: 'replicate' } })
    t.equal(create.status, 202)
    await until('the leader inside gluster volume create', () => rec.reached())
    const term = r.app.replica!.election.term!
    await revokeLease(etcd.endpoint, term.key)
    const noticedMs = await until(
      'the leader to notice',
      () => r.app.replica!.election.term?.key !== term.key,
    )
    t.comment(`lease revoked -> the leader stepped down in ${noticedMs} ms`)
    const before = rec.calls.length
    rec.release()
    // the volume create returns; what the job does next (finalize, or undo
    // on the nodes) is refused: its term is over
    await until('the interrupted job to end here', () => r.app.queue.pending === 0)
    t.same(
      rec.calls.slice(before).map((c) => c.method),
      [],
      'no node command after the lease was lost (the journal keeps the operation)',
    )
    t.ok(r.app.ctx.store.read((tx) => tx.count('pendingop')) >= 1, 'the operation is still journaled')
    // elected again in a new term, its cleaner undoes the operation as after a crash
    await until('a new term', () => r.app.replica!.isLeader() && r.app.replica!.ready)
    t.ok(r.app.replica!.election.terms >= 2, 'the replica leads again, in a new term')
    const cleanup = await call(r.url, 'POST', '/operations/pending/cleanup', {})
    t.equal(cleanup.status, 202)
    t.equal((await pollQueue(r.url, cleanup.headers.get('location')!)).status, 204, 'the clean-up succeeds')
    const outcome = await pollQueue(r.url, create.headers.get('location')!)
    t.equal(outcome.status, 500, "the interrupted create's queue entry ends in an error")
    t.match(outcome.body, /interrupted and has been undone by the cleaner/)
    t.same(JSON.parse((await call(r.url, 'GET', '/volumes')).body).volumes, [], 'the volume is gone')
    t.ok(
      rec.calls.slice(before).some((c) => c.method === 'brickDestroy'),
      'the undo ran on the nodes in the new term',
    )
    t.equal(
      r.app.ctx.store.read((tx) => tx.count('pendingop')),
      0,
      'nothing left in the journal',
    )
  })

  t.test('a leader partitioned from etcd steps down before another replica is elected', async (t) => {
    const prefix = newPrefix()
    const relay = await etcdRelay(etcd.hostPort)
    t.teardown(() => relay.cut())
    const ttlSec = 2
    const p = await startReplica(t, { endpoint: relay.hostPort, prefix, name: 'p', ttlSec })
    await electedLeader([p])
    const q = await startReplica(t, { endpoint: etcd.hostPort, prefix, name: 'q', ttlSec })
    await electedLeader([p, q])
    const cutAt = Date.now()
    await relay.cut()
    await until('q to lead', () => q.app.replica!.isLeader(), 20_000)
    const pe = p.app.replica!.election
    const qe = q.app.replica!.election
    t.ok(!p.app.replica!.isLeader(), 'p no longer leads')
    t.ok(pe.termEndedAt > 0 && pe.termEndedAt < qe.electedAt, 'p stepped down BEFORE q was elected')
    t.comment(
      `partition -> p stepped down after ${pe.termEndedAt - cutAt} ms, q elected after ${qe.electedAt - cutAt} ms (TTL ${ttlSec} s)`,
    )
    t.ok(pe.termEndedAt - cutAt <= ttlSec * 1000, 'p stepped down within the TTL')
    t.ok(pe.depositions >= 1)
    // the cut-off replica cannot write: nothing reaches etcd from it
    await t.rejects(
      p.app.ctx.store.write((tx) => tx.put('attribute', 'x', { key: 'x', value: 'p' })),
      /not the leader/,
      'a write on the partitioned replica is refused',
    )
    t.equal((await call(q.url, 'POST', '/clusters', { file: true })).status, 201, 'q takes writes')
    await relay.restore()
    await until(
      'p to follow q again',
      () => p.app.replica!.leader()?.id === 'q' && !p.app.replica!.isLeader(),
    )
    const forwarded = await call(p.url, 'POST', '/clusters', { file: true })
    t.equal(forwarded.status, 201, 'p, back, relays writes to q')
    // p needs its relay to close cleanly; the relay must not outlive the test
    await p.app.close()
    await relay.cut()
  })
})
