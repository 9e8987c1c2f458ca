import t from 'tap'
import { Injector, injectingExecutor } from '../executors/inject.ts'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp, makeTopology } from './helpers/app.ts'

const replica3 = { size: 5, durability: { type: 'replicate', replicate: { replica: 3 } } }

async function freeKiB(app: Awaited<ReturnType<typeof makeApp>>, nodes: string[]) {
  let sum = 0
  for (const n of nodes)
    for (const d of (await app.call('GET', `/nodes/${n}`)).json().devices) sum += d.storage.free
  return sum
}

t.test('a failing brick create is rolled back and retried elsewhere', async (t) => {
  const injector = new Injector([
    { pattern: '^brickCreate', action: 'fail', message: 'lvcreate: boom', count: 1 },
  ])
  const app = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  const res = await app.run('POST', '/volumes', replica3)
  t.equal(res.statusCode, 303, 'the retry succeeded')
  t.same((await app.call('GET', '/operations')).json(), {
    total: 0,
    in_flight: 0,
    stale: 0,
    failed: 0,
    new: 0,
  })
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
  void topo
})

t.test('a volume create that always fails leaves nothing behind', async (t) => {
  const injector = new Injector([
    { pattern: '^volumeCreate', action: 'fail', message: 'volume create: failed: boom' },
  ])
  const app = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  const topo = await makeTopology(app, { nodes: 3, devices: 2 })
  const before = await freeKiB(app, topo.nodes)
  const res = await app.run('POST', '/volumes', replica3)
  t.equal(res.statusCode, 500)
  t.equal(res.body, 'volume create: failed: boom\n')
  t.equal(await freeKiB(app, topo.nodes), before, 'space given back')
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [] })
  const check = (await app.call('GET', '/db/check')).json()
  t.equal(check.totalinconsistencies, 0)
  t.equal(check.bricks.total, 0)
  t.equal((await app.call('GET', '/operations')).json().total, 0)
})

t.test('stale operations from a crashed process are cleaned on demand', async (t) => {
  const injector = new Injector([{ pattern: '^volumeCreate', action: 'hang' }])
  const first = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  const topo = await makeTopology(first, { nodes: 3, devices: 1 })
  const before = await freeKiB(first, topo.nodes)
  const started = await first.call('POST', '/volumes', replica3)
  t.equal(started.statusCode, 202)
  const pending = (await first.call('GET', '/operations/pending')).json().pendingoperations
  t.equal(pending.length, 1)
  t.equal(pending[0].type_name, 'create-volume')
  t.equal(pending[0].sub_status, 'in-flight')
  t.same((await first.call('GET', '/volumes')).json(), { volumes: [] }, 'pending volume hidden')
  // "crash": close without letting the hung job finish, reopen the same DB
  await first.close()
  const second = await makeApp(t, { dir: first.dir })
  const ops = (await second.call('GET', '/operations')).json()
  t.same(ops, { total: 1, in_flight: 0, stale: 1, failed: 0, new: 0 })
  const detail = (await second.call('GET', `/operations/pending/${pending[0].id}`)).json()
  t.equal(detail.status, 'stale')
  t.ok(detail.changes.some((c: { description: string }) => c.description === 'Add volume'))
  const cleanup = await second.run('POST', '/operations/pending/cleanup', {})
  t.equal(cleanup.statusCode, 204)
  t.equal((await second.call('GET', '/operations')).json().total, 0)
  t.equal(await freeKiB(second, topo.nodes), before)
  t.equal((await second.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('throttling answers 429 past the in-flight limit', async (t) => {
  const app = await makeApp(t, {
    executor: new MockExecutor({ delayMs: 200 }),
    config: { maxInflightOperations: 2 },
  })
  await makeTopology(app, { nodes: 3, devices: 2 })
  const a = await app.call('POST', '/volumes', replica3)
  const b = await app.call('POST', '/volumes', replica3)
  const c = await app.call('POST', '/volumes', replica3)
  t.equal(a.statusCode, 202)
  t.equal(b.statusCode, 202)
  t.equal(c.statusCode, 429)
  t.equal(c.body, 'Server busy. Retry operation later.\n')
})

t.test('device remove moves its bricks to another node and frees the device', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 4, devices: 1 })
  const created = await app.run('POST', '/volumes', replica3)
  t.equal(created.statusCode, 303)
  const id = created.location!.split('/').pop()!
  const vol = (await app.call('GET', `/volumes/${id}`)).json()
  const victim = vol.bricks[0].device as string
  t.equal((await app.run('POST', `/devices/${victim}/state`, { state: 'offline' })).statusCode, 204)
  const removed = await app.run('POST', `/devices/${victim}/state`, { state: 'failed' })
  t.equal(removed.statusCode, 204, removed.body)
  const dev = (await app.call('GET', `/devices/${victim}`)).json()
  t.equal(dev.state, 'failed')
  t.same(dev.bricks, [])
  t.equal(dev.storage.used, 0)
  const after = (await app.call('GET', `/volumes/${id}`)).json()
  t.equal(after.bricks.length, 3)
  t.notOk(after.bricks.some((b: { device: string }) => b.device === victim))
  t.equal(new Set(after.bricks.map((b: { node: string }) => b.node)).size, 3, 'still three distinct nodes')
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
  t.equal((await app.run('DELETE', `/devices/${victim}`)).statusCode, 204)
  // with only three nodes left there is no replacement for another device
  const second = after.bricks[0].device as string
  await app.run('POST', `/devices/${second}/state`, { state: 'offline' })
  const refused = await app.run('POST', `/devices/${second}/state`, { state: 'failed' })
  t.equal(refused.statusCode, 500)
  t.equal(
    refused.body,
    `Unable to delete device [${second}] as no device was found to replace it: No Replacement was found for resource requested to be removed\n`,
  )
  t.equal((await app.call('GET', `/devices/${second}`)).json().state, 'offline')
  t.equal((await app.call('GET', '/operations')).json().total, 0)
  void topo
})

t.test('a crashed expand whose add-brick went through is finished, not undone', async (t) => {
  const mock = new MockExecutor()
  let hang = false
  const crashing = new Proxy(mock, {
    get(target, prop, receiver) {
      if (prop !== 'volumeExpand') return Reflect.get(target, prop, receiver)
      return async (req: Parameters<MockExecutor['volumeExpand']>[0]) => {
        await target.volumeExpand(req)
        if (hang) await new Promise(() => {}) // the process "dies" after gluster added the bricks
      }
    },
  })
  const first = await makeApp(t, { executor: crashing })
  await makeTopology(first, { nodes: 3, devices: 1 })
  const v = await first.run('POST', '/volumes', replica3)
  const id = v.location!.split('/').pop()!
  hang = true
  t.equal((await first.call('POST', `/volumes/${id}/expand`, { expand_size: 2 })).statusCode, 202)
  await new Promise((r) => setTimeout(r, 50))
  await first.close()
  const second = await makeApp(t, { dir: first.dir, executor: mock })
  t.equal((await second.call('GET', '/operations')).json().stale, 1)
  t.equal((await second.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.equal((await second.call('GET', '/operations')).json().total, 0)
  const info = (await second.call('GET', `/volumes/${id}`)).json()
  t.equal(info.size, 7, 'the expand was finished')
  t.equal(info.bricks.length, 6)
  t.equal(mock.glusterBricks(info.name)!.length, 6, 'gluster and the DB agree')
  t.equal((await second.call('GET', '/db/check')).json().totalinconsistencies, 0)
})
