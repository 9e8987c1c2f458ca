// A leader cut off from etcd (issue 14 item 3), on a REAL etcd with
// in-process replicas: what the HA chaos run on the testbed found
// (test/e2e/ha-chaos.test.ts, partition phase).
//   - work a leader started in the background (the rebalance after an
//     expand) whose journal write is refused once the term is over: handled,
//     logged and counted, never an unhandled rejection that ends the process;
//   - a leader black-holed from etcd (no reset, no answer: a dropped link)
//     is replaced within about the lease time, and a write sent to a
//     follower while the cut leader still looked alive does not hang.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { Executor } from '../executors/executor.ts'
import { MockExecutor } from '../executors/mock.ts'
import { CuttableProxy } from './e2e/lib/tcp-proxy.ts'
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

const newPrefix = () => `hap-${randomBytes(5).toString('hex')}`

/** The mock executor, with one node command that can be held until released. */
function holdingExecutor(method: string) {
  const inner = new MockExecutor()
  let hold: Promise<void> | undefined
  let release = () => {}
  let reached = 0
  const executor = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function' || prop === 'close') return value
      return async (...args: unknown[]) => {
        if (prop === method && hold) {
          reached++
          await hold
        }
        return value.apply(target, args)
      }
    },
  }) as Executor
  return {
    executor,
    hold() {
      hold = new Promise<void>((r) => {
        release = r
      })
    },
    release: () => {
      hold = undefined
      release()
    },
    reached: () => reached,
  }
}

const topology = (base: string) => addTopology(base, 'hp', '10.8.0')

/** Every error line the replica's context logs (its pino logger is silent in tests). */
function errorLines(r: InProcessReplica): string[] {
  const lines: string[] = []
  const log = r.app.ctx.log as unknown as { error: (...a: unknown[]) => void }
  const original = log.error.bind(log)
  log.error = (...args: unknown[]) => {
    lines.push(args.map((a) => (typeof a === 'string' ? a : '')).join(' '))
    original(...args)
  }
  return lines
}

t.test('a leader cut off from etcd, on a real etcd', async (t) => {
  if (!requireEtcd(t)) return
  const etcd = await startEtcd(t)

  t.test('background work whose journal write the fence refuses ends logged, not unhandled', async (t) => {
    const unhandled: unknown[] = []
    const onUnhandled = (err: unknown) => unhandled.push(err)
    process.on('unhandledRejection', onUnhandled)
    t.teardown(() => {
      process.off('unhandledRejection', onUnhandled)
    })
    const prefix = newPrefix()
    const held = holdingExecutor('rebalanceStart')
    const r = await startReplica(t, {
      endpoint: etcd.hostPort,
      prefix,
      name: 'solo',
      executor: held.executor,
    })
    await until('solo to lead', () => r.app.replica!.isLeader() && r.app.replica!.ready)
    await topology(r.url)
    const created = await call(r.url, 'POST', '/volumes', { size: 1, durability: { type: 'replicate' } })
    const done = await pollQueue(r.url, created.headers.get('location')!)
    t.equal(done.status, 303, 'volume created')
    const volumePath = done.headers.get('location')!
    const errors = errorLines(r)
    held.hold()
    const expand = await call(r.url, 'POST', `${volumePath}/expand`, { expand_size: 1 })
    t.equal((await pollQueue(r.url, expand.headers.get('location')!)).status, 303, 'expand answered')
    // the rebalance start runs behind the answer: hold it on the node, then end the term
    await until('the rebalance start to reach the node', () => held.reached() > 0)
    const tracker = r.app.ctx.rebalance
    const term = r.app.replica!.election.term!
    const failuresBefore = r.app.ctx.counters.journalWriteFailures
    await revokeLease(etcd.endpoint, term.key)
    await until('the leader to step down', () => r.app.replica!.election.term?.key !== term.key)
    held.release()
    // gluster accepted the start; dropping its journal record is refused (the term is over)
    await until(
      'the old term’s rebalance worker to end',
      () => tracker.workerFailures > 0 || unhandled.length > 0,
    )
    await tracker.settled()
    await new Promise((resolve) => setImmediate(resolve))
    t.same(
      unhandled.map((e) => (e as Error).message),
      [],
      'no unhandled rejection',
    )
    t.equal(tracker.workerFailures, 1, 'the failed worker is counted')
    t.ok(
      r.app.ctx.counters.journalWriteFailures > failuresBefore,
      'the refused journal write is counted (heqet_journal_write_failures)',
    )
    t.match(
      errors.join('\n'),
      /rebalance of volume \S+: stopped here: rebalance of volume \S+ was started but its record \S+ could not be dropped: not the leader/,
      'the failure is logged with its cause',
    )
    const progress = tracker.list()[0]
    t.match(progress?.lastError ?? '', /not the leader/, '/operations shows why it stopped')
    // the record stayed: the replica, elected again, takes it up like any earlier leader's
    await until('solo leads again', () => r.app.replica!.isLeader() && r.app.replica!.ready)
    await r.app.ctx.rebalance.settled()
    t.equal(
      r.app.ctx.store.read(
        (tx) => tx.values('pendingop').filter((op) => op.type === 'rebalance-volume').length,
      ),
      0,
      'the next term started the rebalance again and dropped the record',
    )
  })

  t.test('a leader black-holed from etcd is replaced within about the lease time', async (t) => {
    const prefix = newPrefix()
    const ttlSec = 2
    const replicas: (InProcessReplica & { proxy: CuttableProxy })[] = []
    for (const name of ['a', 'b', 'c']) {
      const [host, port] = etcd.hostPort.split(':') as [string, string]
      const proxy = new CuttableProxy(host, Number(port))
      await proxy.start()
      t.teardown(() => proxy.close())
      const r = await startReplica(t, { endpoint: `127.0.0.1:${proxy.port}`, prefix, name, ttlSec })
      replicas.push({ ...r, proxy })
      await until(`${name} to know its place`, () => r.app.replica!.leader() !== undefined)
    }
    const leader = replicas.find((r) => r.app.replica!.isLeader())!
    await until('the leader to be ready', () => leader.app.replica!.ready)
    const others = replicas.filter((r) => r !== leader)
    await topology(leader.url)
    const cutAt = Date.now()
    leader.proxy.cut()
    // a write sent to a follower right away still goes to the cut leader
    const early = Promise.race([
      call(others[0]!.url, 'POST', '/clusters', { file: true }).then((a) => ({
        ...a,
        at: Date.now() - cutAt,
      })),
      new Promise<{ status: number; body: string; at: number }>((resolve) =>
        setTimeout(() => resolve({ status: 0, body: 'no answer', at: Date.now() - cutAt }), 30_000).unref(),
      ),
    ])
    const electedMs = await until(
      'another replica to lead',
      () => others.some((r) => r.app.replica!.isLeader() && r.app.replica!.ready),
      10 * ttlSec * 1000,
    )
    t.comment(`black hole -> another replica leads and is ready after ${electedMs} ms (TTL ${ttlSec} s)`)
    t.ok(electedMs <= 2 * ttlSec * 1000 + 1000, 'within about the lease time')
    const le = leader.app.replica!.election
    const next = others.find((r) => r.app.replica!.isLeader())!
    t.ok(
      le.termEndedAt > 0 && le.termEndedAt < next.app.replica!.election.electedAt,
      'the cut leader stepped down first',
    )
    await until(
      'a write through a follower to be accepted',
      async () =>
        (await call(others.find((r) => r !== next)!.url, 'POST', '/clusters', { file: true })).status === 201,
      10 * ttlSec * 1000,
    )
    t.comment(`black hole -> next write accepted after ${Date.now() - cutAt} ms`)
    // a poll reaching the cut replica cannot read the entry: "retry", not the job's failure
    const poll = await call(leader.url, 'GET', `/queue/${randomBytes(16).toString('hex')}`)
    t.equal(poll.status, 503, 'a queue poll on the cut replica: 503')
    t.match(poll.body, /^Unable to read the queue entry from etcd: .*Retry operation later\.\n?$/)
    const first = await early
    t.comment(`the write sent at the cut: ${first.status} after ${first.at} ms: ${first.body.trim()}`)
    t.ok(first.at <= 4 * ttlSec * 1000 + 2000, 'the write sent at the cut got an answer, bounded')
    t.ok([201, 502, 503].includes(first.status), 'created, or refused with a retryable status')
    leader.proxy.heal()
    await until(
      'the cut replica to follow again',
      () => !leader.app.replica!.isLeader() && leader.app.replica!.leader()?.id === next.name,
      10 * ttlSec * 1000,
    )
  })

  t.test('the new leader does not undo while the cut leader’s last node command may still run', async (t) => {
    const prefix = newPrefix()
    const ttlSec = 3
    // one set of "nodes" for both replicas; each replica's calls recorded apart
    const nodes = new MockExecutor()
    const calls: { who: string; method: string; at: number }[] = []
    let hold: Promise<void> | undefined
    let release = () => {}
    let reached = false
    const through = (who: string) =>
      new Proxy(nodes, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver)
          if (typeof value !== 'function' || prop === 'close') return value
          return async (...args: unknown[]) => {
            calls.push({ who, method: String(prop), at: Date.now() })
            if (who === 'a' && prop === 'volumeCreate' && hold) {
              reached = true
              await hold
            }
            return value.apply(target, args)
          }
        },
      }) as Executor
    const cleaner = { disableBackgroundCleaner: false, cleanerStartSec: 1, cleanerRefreshSec: 30 }
    const [host, port] = etcd.hostPort.split(':') as [string, string]
    const proxy = new CuttableProxy(host, Number(port))
    await proxy.start()
    t.teardown(() => proxy.close())
    const a = await startReplica(t, {
      endpoint: `127.0.0.1:${proxy.port}`,
      prefix,
      name: 'a',
      ttlSec,
      executor: through('a'),
      config: cleaner,
    })
    await until('a to lead', () => a.app.replica!.isLeader() && a.app.replica!.ready)
    const b = await startReplica(t, {
      endpoint: etcd.hostPort,
      prefix,
      name: 'b',
      ttlSec,
      executor: through('b'),
      config: cleaner,
    })
    await until('b to follow a', () => b.app.replica!.leader()?.id === 'a')
    await topology(a.url)
    hold = new Promise<void>((r) => {
      release = r
    })
    const create = await call(a.url, 'POST', '/volumes', { size: 1, durability: { type: 'replicate' } })
    t.equal(create.status, 202)
    await until('a inside gluster volume create', () => reached)
    proxy.cut()
    await until('b to lead', () => b.app.replica!.isLeader() && b.app.replica!.ready, 10 * ttlSec * 1000)
    const electedAt = b.app.replica!.election.electedAt
    // a's volume create, sent while it led, ends on the node 2 s after b took over: later than
    // a single server's cleaner would start (1 s), sooner than a new leader's (1 s + one TTL)
    await until('2 s after b was elected', () => Date.now() >= electedAt + 2000, 10_000)
    const bBefore = calls.filter((c) => c.who === 'b' && c.at <= Date.now()).map((c) => c.method)
    release()
    t.same(bBefore, [], 'b sent no node command (no undo) while a’s last command could still run')
    await until(
      'b’s cleaner to undo the create',
      () => b.app.ctx.store.read((tx) => tx.count('pendingop')) === 0,
      10 * ttlSec * 1000,
    )
    const outcome = await pollQueue(b.url, create.headers.get('location')!)
    t.equal(outcome.status, 500)
    t.match(outcome.body, /interrupted and has been undone by the cleaner/)
    const left = (nodes as unknown as { volumes: Map<string, unknown> }).volumes
    t.same([...left.keys()], [], 'no gluster volume left on the nodes (the undo came after a’s create)')
    t.ok(
      calls.filter((c) => c.who === 'a' && c.at > electedAt && c.method !== 'volumeCreate').length === 0,
      'a sent no node command after b was elected',
    )
    proxy.heal()
    await until(
      'a to follow b',
      () => a.app.replica!.leader()?.id === 'b' && !a.app.replica!.isLeader(),
      20_000,
    )
  })
})
