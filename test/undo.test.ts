// Undo paths succeed or throw (issue 8, items 4-6): a failure during an undo
// keeps the journal record (`failed`) until the nodes and the DB are known to
// agree, and `POST /operations/pending/cleanup` names what it could not
// clean. Node-level faults run against scripted fake nodes behind the real
// RemoteExecutor, with the fault injector between them.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { LmdbStore } from '../db/lmdb.ts'
import { remoteConfigFromHeketi } from '../executors/config.ts'
import { InjectingRunner, type InjectionRule, Injector, injectingExecutor } from '../executors/inject.ts'
import { MockExecutor } from '../executors/mock.ts'
import { RecordingRunner } from '../executors/recording.ts'
import { RemoteExecutor } from '../executors/remote.ts'
import type { AppContext } from '../src/context.ts'
import { cleanOperations, nextCleanDelaySec } from '../src/operations/cleaner.ts'
import { markFailed } from '../src/operations/operation.ts'
import { FakeNodes } from './contract/fake-nodes.ts'
import { makeApp, type TestApp } from './helpers/app.ts'

const HOSTS = ['node0.example.com', 'node1.example.com', 'node2.example.com', 'node3.example.com']
const replica3 = { size: 1, durability: { type: 'replicate', replicate: { replica: 3 } } }

async function fakeNodeApp(t: Test) {
  const nodes = new FakeNodes(HOSTS)
  const injector = new Injector([])
  const runner = new RecordingRunner(nodes.responder)
  const executor = new RemoteExecutor(new InjectingRunner(runner, injector), remoteConfigFromHeketi({}, {}))
  const app = await makeApp(t, { executor })
  const cluster = (await app.call('POST', '/clusters', { file: true, block: true })).json().id as string
  return { app, nodes, injector, runner, cluster }
}

async function addNode(app: TestApp, cluster: string, i: number) {
  return app.run('POST', '/nodes', {
    zone: i + 1,
    hostnames: { manage: [HOSTS[i]], storage: [`10.0.0.${i + 1}`] },
    cluster,
  })
}

const idOf = (location?: string) => location!.split('/').pop()!

async function operations(app: TestApp) {
  return (await app.call('GET', '/operations/pending')).json().pendingoperations as {
    id: string
    type_name: string
    status: string
  }[]
}

t.test('device add: a setup that timed out is undone on the node, not assumed harmless', async (t) => {
  for (const pattern of [' pvcreate ', ' vgcreate ']) {
    const { app, nodes, injector, cluster } = await fakeNodeApp(t)
    const node = idOf((await addNode(app, cluster, 0)).location)
    injector.setRules([{ pattern, action: 'timeout', count: 1 }])
    const res = await app.run('POST', '/devices', { name: '/dev/sdb', node })
    t.equal(injector.fired, 1, `${pattern} timed out`)
    t.equal(res.statusCode, 500)
    t.match(res.body, /SSH command timeout/)
    t.same(nodes.lvmOf(HOSTS[0]!), [], `${pattern}: no PV or VG left on the node`)
    t.same(await operations(app), [], `${pattern}: journal empty`)
  }
})

t.test('device add: a failing undo keeps the record until a cleanup removes the VG', async (t) => {
  const { app, nodes, injector, cluster } = await fakeNodeApp(t)
  const node = idOf((await addNode(app, cluster, 0)).location)
  // setup succeeds, the size query fails, and then the teardown fails too
  const rules: InjectionRule[] = [
    { pattern: 'vgdisplay', action: 'fail', message: 'vgdisplay: boom', count: 1 },
    { pattern: 'vgremove', action: 'fail', message: 'vgremove: device busy', count: 2 },
  ]
  injector.setRules(rules)
  const res = await app.run('POST', '/devices', { name: '/dev/sdb', node })
  t.equal(res.statusCode, 500)
  const ops = await operations(app)
  t.equal(ops.length, 1, 'the record stays')
  t.equal(ops[0]!.type_name, 'add-device')
  t.equal(ops[0]!.status, 'failed')
  t.ok(nodes.lvmOf(HOSTS[0]!).length > 0, 'the VG is still on the node, and the DB says so')
  injector.setRules([])
  const cleanup = await app.run('POST', '/operations/pending/cleanup', {})
  t.equal(cleanup.statusCode, 204)
  t.same(nodes.lvmOf(HOSTS[0]!), [], 'cleanup removed PV and VG')
  t.same(await operations(app), [])
})

t.test('cleanup answers 500 naming the operations it could not clean', async (t) => {
  const { app, injector, cluster } = await fakeNodeApp(t)
  const node = idOf((await addNode(app, cluster, 0)).location)
  injector.setRules([
    { pattern: 'vgdisplay', action: 'fail', message: 'vgdisplay: boom', count: 1 },
    { pattern: 'vgremove', action: 'fail', message: 'vgremove: device busy' },
  ])
  t.equal((await app.run('POST', '/devices', { name: '/dev/sdb', node })).statusCode, 500)
  const [op] = await operations(app)
  const cleanup = await app.run('POST', '/operations/pending/cleanup', {})
  t.equal(cleanup.statusCode, 500)
  t.match(cleanup.body, /^Unable to clean 1 pending operation:\n/)
  t.match(cleanup.body, `${op!.id} (add-device): Failed to delete device`)
  t.match(cleanup.body, /vgremove: device busy\n$/)
  const [after] = await operations(app)
  t.equal(after!.status, 'failed', 'still there for the next run')
  const stored = app.ctx.store.read((tx) => tx.get('pendingop', op!.id))!
  t.equal(stored.cleanAttempts, 1)
  t.match(stored.lastError, /vgremove: device busy/)
  t.ok(stored.retryAt! > Date.now() / 1000, 'retried later, not at once')
  // the background cleaner honours the backoff; an explicit request does not
  const background = await cleanOperations(app.ctx, undefined, { background: true })
  t.same(background, { cleaned: [], failed: [], skipped: [] }, 'background run waits for retryAt')
  const delay = nextCleanDelaySec(app.ctx)
  t.ok(delay >= 29 && delay <= 30, `the next background run comes when the retry is due (${delay} s)`)
  injector.setRules([])
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same(await operations(app), [])
})

t.test('cleanup names what it skipped for want of a slot', async (t) => {
  const { app, injector, cluster } = await fakeNodeApp(t)
  const node = idOf((await addNode(app, cluster, 0)).location)
  injector.setRules([
    { pattern: 'vgdisplay', action: 'fail', message: 'vgdisplay: boom', count: 1 },
    // the executor's own clean-up after the failed size query, then the undo
    { pattern: 'vgremove', action: 'fail', message: 'vgremove: device busy', count: 2 },
  ])
  t.equal((await app.run('POST', '/devices', { name: '/dev/sdb', node })).statusCode, 500)
  const [op] = await operations(app)
  const release = app.ctx.throttle.tryAcquireBackground()!
  const busy = await app.run('POST', '/operations/pending/cleanup', { operations: [op!.id] })
  release()
  t.equal(busy.statusCode, 500)
  t.equal(
    busy.body,
    `Unable to clean 1 pending operation:\n${op!.id} (add-device): not tried, server busy; retried later\n`,
  )
  t.equal((await app.run('POST', '/operations/pending/cleanup', { operations: [op!.id] })).statusCode, 204)
  t.same(await operations(app), [])
})

t.test('volume create: undo with every node marked down still deletes the gluster volume', async (t) => {
  const mock = new MockExecutor()
  let ctx: AppContext | undefined
  const executor = new Proxy(mock, {
    get(target, prop, receiver) {
      if (prop !== 'volumeCreate') return Reflect.get(target, prop, receiver)
      return async (req: Parameters<MockExecutor['volumeCreate']>[0]) => {
        await target.volumeCreate(req)
        // the volume exists; then the monitor loses every node and start fails
        ctx!.health = { isUp: () => false }
        throw new Error('volume start: failed: boom')
      }
    },
  })
  const app = await makeApp(t, { executor, config: { volumeCreateRetries: 0 } })
  ctx = app.ctx
  const cluster = (await app.call('POST', '/clusters', { file: true, block: true })).json().id
  for (let i = 0; i < 3; i++) {
    await addNode(app, cluster, i)
  }
  for (const n of (await app.call('GET', `/clusters/${cluster}`)).json().nodes) {
    t.equal((await app.run('POST', '/devices', { name: '/dev/sdb', node: n })).statusCode, 204)
  }
  const res = await app.run('POST', '/volumes', { ...replica3, name: 'vol_down' })
  t.equal(res.statusCode, 500)
  t.equal(res.body, 'volume start: failed: boom\n')
  t.equal(mock.glusterBricks('vol_down'), undefined, 'the gluster volume was deleted')
  t.same(await operations(app), [])
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('volume clone: a failing volume delete in the undo keeps the record', async (t) => {
  const mock = new MockExecutor()
  const injector = new Injector([])
  const app = await makeApp(t, { executor: injectingExecutor(mock, injector) })
  const cluster = (await app.call('POST', '/clusters', { file: true, block: true })).json().id
  for (let i = 0; i < 3; i++) await addNode(app, cluster, i)
  for (const n of (await app.call('GET', `/clusters/${cluster}`)).json().nodes) {
    await app.run('POST', '/devices', { name: '/dev/sdb', node: n })
  }
  const created = await app.run('POST', '/volumes', replica3)
  t.equal(created.statusCode, 303, created.body)
  const vol = idOf(created.location)
  injector.setRules([
    { pattern: '^volumeClone', action: 'timeout', count: 1 },
    { pattern: '^volumeDestroy', action: 'fail', message: 'volume delete: failed: busy' },
  ])
  const res = await app.run('POST', `/volumes/${vol}/clone`, { name: 'myclone' })
  t.equal(res.statusCode, 500)
  t.ok(mock.glusterBricks('myclone'), 'the clone exists in gluster')
  const ops = await operations(app)
  t.equal(ops.length, 1, 'so its record stays')
  t.equal(ops[0]!.status, 'failed')
  injector.setRules([])
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.equal(mock.glusterBricks('myclone'), undefined, 'cleanup deleted the clone')
  t.same(await operations(app), [])
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('node add: a probe that timed out is detached again', async (t) => {
  const { app, nodes, injector, cluster } = await fakeNodeApp(t)
  await addNode(app, cluster, 0)
  injector.setRules([{ pattern: 'peer probe', action: 'timeout', count: 1 }])
  const res = await addNode(app, cluster, 1)
  t.equal(res.statusCode, 500)
  t.match(res.body, /SSH command timeout/)
  t.same([...nodes.peers], [], 'no peer the DB does not know')
  t.same(await operations(app), [])
  injector.setRules([])
  t.equal((await addNode(app, cluster, 1)).statusCode, 303, 'the hostnames were released')
  t.same([...nodes.peers], ['10.0.0.2'])
})

t.test('node add: a failing detach keeps the record; cleanup detaches', async (t) => {
  const { app, nodes, injector, cluster } = await fakeNodeApp(t)
  await addNode(app, cluster, 0)
  injector.setRules([
    { pattern: 'peer probe', action: 'timeout', count: 1 },
    { pattern: 'peer detach', action: 'fail', message: 'peer detach: failed: busy', count: 1 },
  ])
  t.equal((await addNode(app, cluster, 1)).statusCode, 500)
  const ops = await operations(app)
  t.equal(ops.length, 1)
  t.equal(ops[0]!.type_name, 'add-node')
  t.equal(ops[0]!.status, 'failed')
  t.same([...nodes.peers], ['10.0.0.2'], 'the peer is still there, and the journal says so')
  const refused = await addNode(app, cluster, 1)
  t.equal(refused.statusCode, 409, 'its hostnames stay taken while the record is pending')
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same([...nodes.peers], [])
  t.same(await operations(app), [])
  t.equal((await addNode(app, cluster, 1)).statusCode, 303)
})

t.test('node add: a crash after the probe leaves a record the cleaner detaches', async (t) => {
  const nodes = new FakeNodes(HOSTS)
  const remote = new RemoteExecutor(new RecordingRunner(nodes.responder), remoteConfigFromHeketi({}, {}))
  let hang = false
  const crashing = new Proxy(remote, {
    get(target, prop, receiver) {
      if (prop !== 'peerProbe') return Reflect.get(target, prop, receiver)
      return async (host: string, storage: string) => {
        await target.peerProbe(host, storage)
        if (hang) await new Promise(() => {}) // the process "dies" right after the probe
      }
    },
  })
  const first = await makeApp(t, { executor: crashing })
  const cluster = (await first.call('POST', '/clusters', {})).json().id
  await addNode(first, cluster, 0)
  hang = true
  t.equal(
    (
      await first.call('POST', '/nodes', {
        zone: 2,
        hostnames: { manage: [HOSTS[1]], storage: ['10.0.0.2'] },
        cluster,
      })
    ).statusCode,
    202,
  )
  for (let i = 0; i < 100 && nodes.peers.size === 0; i++) await new Promise((r) => setTimeout(r, 5))
  await first.close()
  t.same([...nodes.peers], ['10.0.0.2'], 'probed before the crash')
  const second = await makeApp(t, { dir: first.dir, executor: remote })
  const [op] = await operations(second)
  t.equal(op!.type_name, 'add-node')
  t.equal(op!.status, 'stale')
  t.equal((await second.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same([...nodes.peers], [], 'the cleaner detached the unknown peer')
  t.equal((await second.call('GET', `/clusters/${cluster}`)).json().nodes.length, 1)
})

t.test('node delete: a failed peer detach fails the delete', async (t) => {
  const { app, nodes, injector, cluster } = await fakeNodeApp(t)
  await addNode(app, cluster, 0)
  const node = idOf((await addNode(app, cluster, 1)).location)
  injector.setRules([{ pattern: 'peer detach', action: 'fail', message: 'peer detach: failed: busy' }])
  const res = await app.run('DELETE', `/nodes/${node}`)
  t.equal(res.statusCode, 500)
  t.match(res.body, /peer detach: failed: busy\n$/)
  t.equal((await app.call('GET', `/nodes/${node}`)).statusCode, 200, 'the node stays, as it does in gluster')
  t.same([...nodes.peers], ['10.0.0.2'])
  t.same(await operations(app), [], 'nothing to finish: nodes and DB agree')
  injector.setRules([])
  t.equal((await app.run('DELETE', `/nodes/${node}`)).statusCode, 204)
  t.same([...nodes.peers], [])
})

t.test('node delete: a detach that timed out is finished by the cleaner', async (t) => {
  const { app, nodes, injector, cluster } = await fakeNodeApp(t)
  await addNode(app, cluster, 0)
  const node = idOf((await addNode(app, cluster, 1)).location)
  injector.setRules([{ pattern: 'peer detach', action: 'timeout', count: 1 }])
  const res = await app.run('DELETE', `/nodes/${node}`)
  t.equal(res.statusCode, 500)
  t.same([...nodes.peers], [], 'the detach went through')
  const [op] = await operations(app)
  t.equal(op!.type_name, 'delete-node')
  t.equal(op!.status, 'failed')
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.equal((await app.call('GET', `/nodes/${node}`)).statusCode, 404, 'the delete was finished')
  t.same(await operations(app), [])
})

t.test('volume delete: a delete that may have gone through is finished, not undone', async (t) => {
  const { app, nodes, injector, cluster } = await fakeNodeApp(t)
  for (let i = 0; i < 3; i++) {
    const node = idOf((await addNode(app, cluster, i)).location)
    t.equal((await app.run('POST', '/devices', { name: '/dev/sdb', node })).statusCode, 204)
  }
  for (const [pattern, action] of [
    ['volume delete', 'timeout'],
    ['volume delete', 'fail'],
  ] as const) {
    const created = await app.run('POST', '/volumes', replica3)
    t.equal(created.statusCode, 303, created.body)
    const id = idOf(created.location)
    const name = (await app.call('GET', `/volumes/${id}`)).json().name
    // on every host, so the delete cannot go round the fault
    injector.setRules([{ pattern, action }])
    t.equal((await app.run('DELETE', `/volumes/${id}`)).statusCode, 500)
    injector.setRules([])
    const [op] = await operations(app)
    t.equal(op?.status, 'failed', `${action}: the record stays for the cleaner`)
    t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
    t.equal((await app.call('GET', `/volumes/${id}`)).statusCode, 404, `${action}: the delete was finished`)
    t.notOk(nodes.volumes.has(name), `${action}: gluster agrees`)
  }
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('markFailed: a failed journal write is logged and counted, not dropped', async (t) => {
  const errors: string[] = []
  const ctx = {
    store: { write: () => Promise.reject(new Error('MDB_MAP_FULL')) },
    counters: { journalWriteFailures: 0 },
    log: { error: (m: string) => errors.push(m) },
  } as unknown as AppContext
  await markFailed(ctx, 'a'.repeat(32), 'undo failed')
  t.equal(ctx.counters.journalWriteFailures, 1)
  t.match(errors[0], /could not mark its record failed: MDB_MAP_FULL/)
})

t.test('lmdb: a throwing commit listener does not turn a commit into a rejection', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-lmdb-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const reported: string[] = []
  const store = new LmdbStore({ path: join(dir, 'x.db'), onListenerError: (e) => reported.push(e.message) })
  t.teardown(() => store.close())
  let second = 0
  store.onCommit(() => {
    throw new Error('index broke')
  })
  store.onCommit(() => second++)
  const entry = { key: 'k', value: 'v' }
  const result = await store.write((tx) => {
    tx.put('attribute', 'k', entry)
    return 'committed'
  })
  t.equal(result, 'committed')
  t.same(
    store.read((tx) => tx.get('attribute', 'k')),
    entry,
  )
  t.equal(second, 1, 'later listeners still run')
  t.equal(store.listenerFailures, 1)
  t.same(reported, ['index broke'])
})

t.test('metrics show listener and journal write failures', async (t) => {
  const app = await makeApp(t)
  const text = (await app.app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(text, /^heqet_commit_listener_failures 0$/m)
  t.match(text, /^heqet_journal_write_failures 0$/m)
})
