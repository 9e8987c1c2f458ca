// The rebalance after an expand (issue 12 item 5), on the mock executor: the
// expand answers after add-brick, the start is journaled until gluster
// accepted it, retried, resumed after a crash, dropped with the volume, and
// followed until gluster reports the end.
import t, { type Test } from 'tap'
import type { Executor } from '../executors/executor.ts'
import { Injector, injectingExecutor } from '../executors/inject.ts'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp, makeTopology, type TestApp } from './helpers/app.ts'

const replica3 = { size: 2, durability: { type: 'replicate', replicate: { replica: 3 } } }

/** Records every executor call; `hold` makes rebalanceStart wait for `release()`. */
function recording(inner: Executor) {
  const calls: { action: string; args: unknown[] }[] = []
  let gate: Promise<void> | undefined
  let open: () => void = () => {}
  const executor = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      return async (...args: unknown[]) => {
        calls.push({ action: String(prop), args })
        if (prop === 'rebalanceStart' && gate) await gate
        return value.apply(target, args)
      }
    },
  })
  return {
    executor,
    calls: (action: string) => calls.filter((c) => c.action === action),
    hold() {
      gate = new Promise((r) => {
        open = r
      })
    },
    release() {
      gate = undefined
      open()
    },
  }
}

/** Poll (bounded) until `check` holds; fails the test with the last value otherwise. */
async function eventually<T>(t: Test, what: string, read: () => Promise<T>, check: (v: T) => boolean) {
  let last: T | undefined
  for (let i = 0; i < 500; i++) {
    last = await read()
    if (check(last)) return last
    await new Promise((r) => setTimeout(r, 10))
  }
  t.fail(`${what}: never happened; last seen ${JSON.stringify(last)}`)
  return last as T
}

function fast(app: TestApp) {
  Object.assign(app.ctx.rebalance.settings, { retryBaseMs: 5, retryCapMs: 20, pollMs: 5 })
}

const operations = async (app: TestApp) => (await app.call('GET', '/operations')).json()
const pending = async (app: TestApp) =>
  (await app.call('GET', '/operations/pending')).json().pendingoperations as {
    id: string
    type_name: string
    status: string
  }[]

async function volumeWithTopology(app: TestApp) {
  await makeTopology(app, { nodes: 3, devices: 2 })
  const created = await app.run('POST', '/volumes', replica3)
  return created.location!.split('/').pop()!
}

t.test('the expand answers before the rebalance starts; started → completed in /operations', async (t) => {
  const rec = recording(new MockExecutor())
  const app = await makeApp(t, { executor: rec.executor })
  fast(app)
  const id = await volumeWithTopology(app)
  const before = (await app.call('GET', `/volumes/${id}`)).json()
  rec.hold()
  const expanded = await app.run('POST', `/volumes/${id}/expand`, { expand_size: 2 })
  t.equal(expanded.statusCode, 303, 'expand answered while rebalance start is held')
  const info = (await app.call('GET', `/volumes/${id}`)).json()
  t.same(Object.keys(info), Object.keys(before), 'volume info: the same fields as before (heketi JSON)')
  t.equal(info.size, 4)
  t.equal(info.bricks.length, 6)
  // the start is journaled and shown while gluster has not accepted it
  const records = await pending(app)
  t.same(
    records.map((r) => r.type_name),
    ['rebalance-volume'],
  )
  const ops = await operations(app)
  t.equal(ops.total, 1)
  t.match(ops.rebalances, [{ volume: info.name, volume_id: id, state: 'pending', operation: records[0]!.id }])
  t.equal(rec.calls('rebalanceStart').length, 1, 'the start was sent')
  rec.release()
  const done = await eventually(
    t,
    'rebalance completed',
    () => operations(app),
    (o) => o.rebalances?.[0]?.state === 'completed',
  )
  t.equal(done.total, 0, 'the record went once gluster accepted the start')
  t.match(done.rebalances[0], { gluster_status: 'completed', start_attempts: 1, error: '' })
  t.ok(
    rec.calls('rebalanceStatus').length >= 2,
    'followed through gluster status (in progress, then completed)',
  )
  const metrics = (await app.call('GET', '/metrics')).body
  t.match(metrics, new RegExp(`heqet_volume_rebalance\\{volume="${info.name}",state="completed"\\} 1`))
  t.match(metrics, /heqet_rebalance_starts_total 1/)
})

t.test('a refused start stays journaled with its error and succeeds on retry', async (t) => {
  const injector = new Injector([
    // refused on all three hosts, twice
    { pattern: '^rebalanceStart', action: 'fail', message: 'Another transaction is in progress', count: 6 },
  ])
  const app = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  Object.assign(app.ctx.rebalance.settings, { retryBaseMs: 200, retryCapMs: 200, pollMs: 5 })
  const id = await volumeWithTopology(app)
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  const refused = await eventually(
    t,
    'first refusal recorded',
    () => operations(app),
    (o) => o.rebalances?.[0]?.error !== '' && o.rebalances?.[0]?.error !== undefined,
  )
  t.match(refused.rebalances[0], { state: 'pending', error: /Another transaction is in progress/ })
  const record = app.ctx.store.read((tx) => tx.values('pendingop'))
  t.equal(record.length, 1, 'still in the journal')
  t.match(record[0]!.lastError, /Another transaction is in progress/)
  const done = await eventually(
    t,
    'completed after the retries',
    () => operations(app),
    (o) => o.rebalances?.[0]?.state === 'completed',
  )
  t.equal(done.total, 0)
  t.equal(done.rebalances[0].start_attempts, 3)
  t.equal(app.ctx.rebalance.startFailures, 2)
  t.match((await app.call('GET', '/metrics')).body, /heqet_rebalance_start_failures_total 2/)
})

t.test('a start refused past the retries is left failed to the cleaner, which starts it', async (t) => {
  const injector = new Injector([{ pattern: '^rebalanceStart', action: 'fail', message: 'glusterd: boom' }])
  const app = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  Object.assign(app.ctx.rebalance.settings, { retryBaseMs: 1, retryCapMs: 2, pollMs: 5, maxStartAttempts: 3 })
  const id = await volumeWithTopology(app)
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  await eventually(
    t,
    'record failed',
    async () => pending(app),
    (p) => p[0]?.status === 'failed',
  )
  await app.ctx.rebalance.settled()
  const cleanup = await app.run('POST', '/operations/pending/cleanup', {})
  t.equal(cleanup.statusCode, 500, 'still refused: the cleanup names it')
  t.match(cleanup.body, /rebalance-volume.*glusterd: boom/)
  injector.setRules([])
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same(await pending(app), [], 'accepted: the record went')
  await eventually(
    t,
    'completed',
    () => operations(app),
    (o) => o.rebalances?.[0]?.state === 'completed',
  )
})

t.test('a crash between add-brick and the rebalance start: resumed after the restart', async (t) => {
  const injector = new Injector([{ pattern: '^rebalanceStart', action: 'hang' }])
  const first = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  const id = await volumeWithTopology(first)
  t.equal((await first.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  t.same(
    (await pending(first)).map((p) => p.type_name),
    ['rebalance-volume'],
  )
  await first.close() // the process "dies" while the start hangs
  const rec = recording(new MockExecutor())
  const second = await makeApp(t, { dir: first.dir, executor: rec.executor })
  fast(second)
  const name = (await second.call('GET', `/volumes/${id}`)).json().name
  await eventually(
    t,
    'record gone after the resumed start',
    () => pending(second),
    (p) => p.length === 0,
  )
  t.same(
    rec.calls('rebalanceStart').map((c) => c.args[1]),
    [name],
    'the new process sent the start',
  )
  t.equal((await second.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test(
  'a crash after add-brick, before the expand finished: the cleaner finishes it and starts the rebalance',
  async (t) => {
    const mock = new MockExecutor()
    const crashing = injectingExecutor(
      mock,
      new Injector([{ pattern: '^volumeExpand', action: 'timeout', message: 'SSH command timeout' }]),
    )
    // a timeout after add-brick went through: the undo refuses (gluster serves the bricks)
    const first = await makeApp(t, { executor: crashing })
    const id = await volumeWithTopology(first)
    t.equal((await first.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 500)
    t.same(
      (await pending(first)).map((p) => [p.type_name, p.status]),
      [['expand-volume', 'failed']],
    )
    await first.close()
    const rec = recording(mock)
    const second = await makeApp(t, { dir: first.dir, executor: rec.executor })
    fast(second)
    t.equal((await second.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
    t.equal((await second.call('GET', `/volumes/${id}`)).json().size, 3, 'expand finished')
    await eventually(
      t,
      'rebalance started and record gone',
      () => pending(second),
      (p) => p.length === 0,
    )
    t.equal(rec.calls('rebalanceStart').length, 1)
  },
)

t.test('a delete while the start is pending drops it; no failure left behind', async (t) => {
  const injector = new Injector([{ pattern: '^rebalanceStart', action: 'fail', message: 'not yet' }])
  const app = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  Object.assign(app.ctx.rebalance.settings, { retryBaseMs: 20, retryCapMs: 20, pollMs: 5 })
  const id = await volumeWithTopology(app)
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  t.equal((await pending(app)).length, 1)
  t.equal((await app.run('DELETE', `/volumes/${id}`)).statusCode, 204)
  t.same(await pending(app), [], 'the record went with the volume')
  const ops = await eventually(
    t,
    'cancelled',
    () => operations(app),
    (o) => o.rebalances?.[0]?.state === 'cancelled',
  )
  t.match(ops.rebalances[0], { error: /deleted/ })
  await app.ctx.rebalance.settled()
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('a delete while gluster rebalances stops the rebalance first', async (t) => {
  const rec = recording(new MockExecutor())
  const app = await makeApp(t, { executor: rec.executor })
  // the first status look says "in progress"; the next one comes much later
  Object.assign(app.ctx.rebalance.settings, { pollMs: 60_000 })
  const id = await volumeWithTopology(app)
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  await eventually(
    t,
    'started',
    () => operations(app),
    (o) => o.rebalances?.[0]?.state === 'started',
  )
  t.equal((await app.run('DELETE', `/volumes/${id}`)).statusCode, 204)
  t.equal(rec.calls('rebalanceStop').length, 1, 'rebalance stopped before the volume')
  const order = ['rebalanceStop', 'volumeDestroy'].map((a) => rec.calls(a).length)
  t.same(order, [1, 1])
  t.match((await operations(app)).rebalances[0], { state: 'stopped' })
})

t.test('a second expand while the first start is pending joins its record', async (t) => {
  // refused on all three hosts once
  const injector = new Injector([{ pattern: '^rebalanceStart', action: 'fail', message: 'busy', count: 3 }])
  const app = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  Object.assign(app.ctx.rebalance.settings, { retryBaseMs: 300, retryCapMs: 300, pollMs: 5 })
  const id = await volumeWithTopology(app)
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  await eventually(
    t,
    'first start refused',
    () => operations(app),
    (o) => /busy/.test(o.rebalances?.[0]?.error ?? ''),
  )
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  const records = app.ctx.store.read((tx) => tx.values('pendingop'))
  t.equal(records.length, 1, 'one pending start per volume')
  t.equal((records[0]!.data['expandIds'] as string[]).length, 2)
  await eventually(
    t,
    'completed',
    () => operations(app),
    (o) => o.rebalances?.[0]?.state === 'completed' && o.total === 0,
  )
  t.equal((await app.call('GET', `/volumes/${id}`)).json().size, 4)
})

t.test('rebalance_on_expansion off: no record, no start', async (t) => {
  const rec = recording(new MockExecutor({ rebalanceOnExpansion: false }))
  const app = await makeApp(t, { executor: rec.executor })
  const id = await volumeWithTopology(app)
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  t.same(await pending(app), [])
  t.same(await operations(app), { total: 0, in_flight: 0, stale: 0, failed: 0, new: 0 })
  t.equal(rec.calls('rebalanceStart').length, 0)
})

t.test(
  'a delete refused because of a rebalance this process never followed stops it and deletes',
  async (t) => {
    // gluster still rebalances a volume expanded before a restart: stop is refused until the rebalance stops
    let rebalancing = true
    const calls: string[] = []
    const mock = new MockExecutor()
    const executor = new Proxy(mock, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver)
        if (typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          calls.push(String(prop))
          if (prop === 'volumeDestroy' && rebalancing)
            throw new Error('volume stop: failed: rebalance session is in progress for the volume')
          if (prop === 'rebalanceStatus')
            return {
              state: rebalancing ? 'in progress' : 'completed',
              running: rebalancing,
              done: !rebalancing,
              failed: false,
              files: 0,
              failures: 0,
              runtimeSec: 0,
            }
          if (prop === 'rebalanceStop') rebalancing = false
          return value.apply(target, args)
        }
      },
    })
    const app = await makeApp(t, { executor: executor as MockExecutor })
    const id = await volumeWithTopology(app)
    t.equal(app.ctx.rebalance.get(id), undefined, 'nothing followed here')
    t.equal((await app.run('DELETE', `/volumes/${id}`)).statusCode, 204)
    t.same(
      calls.filter((c) => c.startsWith('rebalance') || c === 'volumeDestroy'),
      [
        'volumeDestroy',
        'volumeDestroy',
        'volumeDestroy',
        'rebalanceStatus',
        'rebalanceStop',
        'volumeDestroy',
      ],
      'refused on the three hosts, asked gluster, stopped the rebalance, deleted',
    )
    const plain = await makeApp(t)
    const other = await volumeWithTopology(plain)
    t.equal(
      (await plain.run('DELETE', `/volumes/${other}`)).statusCode,
      204,
      'without a rebalance: as before',
    )
  },
)

t.test('a second expand while gluster still rebalances waits for the end before add-brick', async (t) => {
  const seen: string[] = []
  let app: TestApp | undefined
  let volumeId = ''
  const mock = new MockExecutor()
  const executor = new Proxy(mock, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      return async (...args: unknown[]) => {
        // what heqet knew of the rebalance when it sent add-brick
        if (prop === 'volumeExpand') seen.push(app?.ctx.rebalance.get(volumeId)?.phase ?? 'none')
        return value.apply(target, args)
      }
    },
  })
  app = await makeApp(t, { executor: executor as MockExecutor })
  // the first status look (in progress) comes 300 ms after the start, the next one (completed) 300 ms later
  Object.assign(app.ctx.rebalance.settings, { pollMs: 300 })
  volumeId = await volumeWithTopology(app)
  t.equal((await app.run('POST', `/volumes/${volumeId}/expand`, { expand_size: 1 })).statusCode, 303)
  await eventually(
    t,
    'started',
    () => operations(app!),
    (o) => o.rebalances?.[0]?.state === 'started',
  )
  t.equal((await app.run('POST', `/volumes/${volumeId}/expand`, { expand_size: 1 })).statusCode, 303)
  t.same(seen, ['none', 'completed'], 'the second add-brick went out after the first rebalance completed')
  // (the tracker's timers never keep a process alive: poll from here)
  await eventually(
    t,
    'the second rebalance completed',
    () => operations(app!),
    (o) => o.rebalances?.[0]?.state === 'completed' && o.total === 0,
  )
  t.equal(app.ctx.rebalance.starts, 2, 'and its own rebalance started after it')
})

t.test('a rebalance running when the server stopped is shown and followed after the restart', async (t) => {
  // gluster's side outlives the process: it rebalances until `rebalancing` goes false
  let rebalancing = true
  const glusterStatus = (inner: MockExecutor) =>
    new Proxy(inner, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver)
        if (prop !== 'rebalanceStatus') return typeof value === 'function' ? value.bind(target) : value
        return async () => ({
          state: rebalancing ? 'in progress' : 'completed',
          running: rebalancing,
          done: !rebalancing,
          failed: false,
          files: 7,
          failures: 0,
          runtimeSec: 1,
        })
      },
    })
  const first = await makeApp(t, { executor: glusterStatus(new MockExecutor()) })
  fast(first)
  const id = await volumeWithTopology(first)
  t.equal((await first.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  const running = await eventually(
    t,
    'started in the first process',
    () => operations(first),
    (o) => o.rebalances?.[0]?.state === 'started' && o.rebalances[0].gluster_status === 'in progress',
  )
  const info = (await first.call('GET', `/volumes/${id}`)).body
  await first.close()

  const second = await makeApp(t, { dir: first.dir, executor: glusterStatus(new MockExecutor()) })
  fast(second)
  const shown = (await operations(second)).rebalances
  t.same(
    shown?.map((r: { volume_id: string; state: string; started: number }) => [
      r.volume_id,
      r.state,
      r.started,
    ]),
    [[id, 'started', running.rebalances[0].started]],
    'shown at once after the restart, started when gluster accepted it',
  )
  t.same(await pending(second), [], 'no journal record: nothing to start again')
  t.equal((await second.call('GET', `/volumes/${id}`)).body, info, 'volume info JSON unchanged')
  await eventually(
    t,
    'followed: gluster status seen',
    () => operations(second),
    (o) => o.rebalances?.[0]?.gluster_status === 'in progress',
  )
  rebalancing = false
  await eventually(
    t,
    'completed after the restart',
    () => operations(second),
    (o) => o.rebalances?.[0]?.state === 'completed' && o.rebalances[0].files === 7,
  )
  await eventually(
    t,
    'the volume no longer marked',
    async () => second.ctx.store.read((tx) => tx.get('volume', id)?.rebalanceStartedAt),
    (at) => at === undefined,
  )
  t.equal((await second.call('GET', '/db/check')).json().totalinconsistencies, 0)
  await second.close()

  const third = await makeApp(t, { dir: first.dir, executor: glusterStatus(new MockExecutor()) })
  t.same(
    await operations(third),
    { total: 0, in_flight: 0, stale: 0, failed: 0, new: 0 },
    'over: not followed again by the next process',
  )
})

t.test('a clone does not inherit the running rebalance of its source', async (t) => {
  const rec = recording(new MockExecutor())
  const app = await makeApp(t, { executor: rec.executor })
  fast(app)
  const id = await volumeWithTopology(app)
  await app.ctx.store.write((tx) => {
    const v = tx.get('volume', id)!
    tx.put('volume', id, { ...v, rebalanceStartedAt: Date.now() })
  })
  const res = await app.run('POST', `/volumes/${id}/clone`, { name: 'copy' })
  t.equal(res.statusCode, 303)
  const cloneId = res.location!.split('/').pop()!
  t.equal(
    app.ctx.store.read((tx) => tx.get('volume', cloneId)?.rebalanceStartedAt),
    undefined,
  )
})

t.test('a worker that ends on a refused journal write is counted in /metrics', async (t) => {
  const rec = recording(new MockExecutor())
  const app = await makeApp(t, { executor: rec.executor })
  fast(app)
  const id = await volumeWithTopology(app)
  rec.hold()
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  await eventually(
    t,
    'the start reached the node',
    async () => rec.calls('rebalanceStart').length,
    (n) => n > 0,
  )
  // gluster accepts the start; dropping its record is refused (as by the leader fence)
  const store = app.ctx.store
  const write = store.write.bind(store)
  store.write = () => Promise.reject(new Error('refused for the test'))
  rec.release()
  await app.ctx.rebalance.settled()
  store.write = write
  t.equal(app.ctx.rebalance.workerFailures, 1)
  const metrics = (await app.call('GET', '/metrics')).body
  t.match(metrics, /^heqet_rebalance_worker_failures_total 1$/m, 'the failed worker is in /metrics')
  t.match((await operations(app)).rebalances?.[0], { error: /refused for the test/ })
  t.equal((await pending(app)).length, 1, 'the record stays for the cleaner')
})
