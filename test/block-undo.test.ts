// Block volume operations journaled with an undo (issue 13 item 2): every
// gluster-block command failed (or timed out after running) through the
// fault injector in front of scripted fake nodes and the real
// RemoteExecutor; a crash mid-operation left to the cleaner. After each case
// the nodes, the DB and /db/check agree and no record is left.
import t, { type Test } from 'tap'
import { remoteConfigFromHeketi } from '../executors/config.ts'
import { InjectingRunner, Injector, injectingExecutor } from '../executors/inject.ts'
import { MockExecutor } from '../executors/mock.ts'
import { RecordingRunner } from '../executors/recording.ts'
import { RemoteExecutor } from '../executors/remote.ts'
import { FakeNodes } from './contract/fake-nodes.ts'
import { makeApp, makeTopology, type TestApp } from './helpers/app.ts'

const HOSTS = ['node0.example.com', 'node1.example.com', 'node2.example.com']
const BLOCK_CONFIG = { autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 10 }
const gbFail = (errMsg: string) => JSON.stringify({ RESULT: 'FAIL', errCode: 5, errMsg })
const idOf = (location?: string) => location!.split('/').pop()!

function remoteOver(nodes: FakeNodes, injector: Injector) {
  return new RemoteExecutor(
    new InjectingRunner(new RecordingRunner(nodes.responder), injector),
    remoteConfigFromHeketi({}, {}),
  )
}

/** 3 fake nodes with one device each, in one cluster that allows block volumes */
async function blockBed(t: Test, nodes = new FakeNodes(HOSTS), dir?: string) {
  const injector = new Injector([])
  const app = await makeApp(t, { executor: remoteOver(nodes, injector), config: BLOCK_CONFIG, dir })
  if (dir) return { app, nodes, injector }
  const cluster = (await app.call('POST', '/clusters', { file: true, block: true })).json().id as string
  for (let i = 0; i < HOSTS.length; i++) {
    const node = await app.run('POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [HOSTS[i]], storage: [`10.0.0.${i + 1}`] },
      cluster,
    })
    t.equal(
      (await app.run('POST', '/devices', { name: '/dev/sdb', node: idOf(node.location) })).statusCode,
      204,
    )
  }
  return { app, nodes, injector }
}

async function operations(app: TestApp) {
  return (await app.call('GET', '/operations/pending')).json().pendingoperations as {
    id: string
    type_name: string
    status: string
  }[]
}

async function freeKiB(app: TestApp): Promise<number> {
  const dump = (await app.call('GET', '/db/dump')).json()
  return Object.values(dump.deviceentries as Record<string, { Info: { storage: { free: number } } }>).reduce(
    (sum, d) => sum + d.Info.storage.free,
    0,
  )
}

async function agreed(t: Test, app: TestApp, what: string) {
  t.same(await operations(app), [], `${what}: no record left`)
  const check = (await app.call('GET', '/db/check')).json()
  t.equal(check.totalinconsistencies, 0, `${what}: /db/check clean ${JSON.stringify(check.inconsistencies)}`)
}

const hostingOf = async (app: TestApp, id: string) =>
  (await app.call('GET', `/blockvolumes/${id}`)).json().blockhostingvolume as string

t.test(
  'create: a failed gluster-block create leaves no block volume and no auto-created hosting volume',
  async (t) => {
    const { app, nodes, injector } = await blockBed(t)
    const before = await freeKiB(app)
    for (const [action, message] of [
      ['fail', gbFail('failed to configure on 10.0.0.2 : Connection refused')],
      ['fail', 'not json at all'],
      ['timeout', undefined],
    ] as const) {
      injector.setRules([{ pattern: '^gluster-block create', action, message }])
      const res = await app.run('POST', '/blockvolumes', { size: 1, auth: true })
      t.equal(res.statusCode, 500, `${action}: queue 500`)
      if (action === 'fail' && message.startsWith('{'))
        t.equal(
          res.body,
          'Failed to create block volume: failed to configure on 10.0.0.2 : Connection refused\n',
        )
      else if (action === 'fail')
        t.equal(res.body, 'Unparsable error during block volume create: not json at all\n')
      else t.equal(res.body, 'SSH command timeout\n')
      t.equal(injector.fired, 1)
      t.same(nodes.blocks(), [], `${action}: no block volume on the nodes`)
      t.same([...nodes.volumes.keys()], [], `${action}: the auto-created hosting volume is gone`)
      t.equal(await freeKiB(app), before, `${action}: device space back`)
      t.same((await app.call('GET', '/volumes')).json(), { volumes: [] })
      t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [] })
      await agreed(t, app, action)
    }
  },
)

t.test('create: a failure on an existing hosting volume keeps it and gives its space back', async (t) => {
  const { app, nodes, injector } = await blockBed(t)
  const first = idOf((await app.run('POST', '/blockvolumes', { size: 2 })).location)
  const bhv = await hostingOf(app, first)
  const freeBefore = (await app.call('GET', `/volumes/${bhv}`)).json().blockinfo.freesize
  injector.setRules([{ pattern: '^gluster-block create', action: 'fail', message: gbFail('boom') }])
  t.equal((await app.run('POST', '/blockvolumes', { size: 3 })).statusCode, 500)
  const after = (await app.call('GET', `/volumes/${bhv}`)).json().blockinfo
  t.equal(after.freesize, freeBefore, 'free size restored')
  t.same(after.blockvolume, [first])
  t.equal(nodes.blocks().length, 1, 'only the first block volume on the nodes')
  t.equal(nodes.volumes.size, 1, 'the hosting volume stays')
  await agreed(t, app, 'existing hosting volume')
})

t.test('create: a failing undo keeps the record; the cleanup deletes on the nodes', async (t) => {
  const { app, nodes, injector } = await blockBed(t)
  injector.setRules([
    { pattern: '^gluster-block create', action: 'timeout' },
    { pattern: '^gluster-block delete', action: 'fail', message: gbFail('glusterd is busy') },
  ])
  t.equal((await app.run('POST', '/blockvolumes', { size: 1 })).statusCode, 500)
  const [op] = await operations(app)
  t.equal(op?.type_name, 'create-block-volume')
  t.equal(op?.status, 'failed', 'the undo could not delete it: the record stays')
  t.equal(nodes.blocks().length, 1, 'the block volume the timed-out create made is still there')
  t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [] }, 'hidden meanwhile')
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [] }, 'its new hosting volume too')
  const failed = await app.run('POST', '/operations/pending/cleanup', {})
  t.equal(failed.statusCode, 500)
  t.match(failed.body, /\(create-block-volume\): All 3 hosts: glusterd is busy/)
  injector.setRules([])
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same(nodes.blocks(), [])
  t.same([...nodes.volumes.keys()], [])
  await agreed(t, app, 'after cleanup')
})

t.test('create: the 429 while another request creates a hosting volume', async (t) => {
  const { app, injector } = await blockBed(t)
  injector.setRules([{ pattern: 'volume create', action: 'hang', count: 1 }])
  t.equal((await app.call('POST', '/blockvolumes', { size: 1 })).statusCode, 202)
  for (let i = 0; i < 200 && injector.fired === 0; i++) await new Promise((r) => setTimeout(r, 5))
  const busy = await app.call('POST', '/blockvolumes', { size: 1 })
  t.equal(busy.statusCode, 429)
  t.equal(busy.body, 'Server busy. Retry operation later.\n')
  const [op] = await operations(app)
  t.equal(op?.type_name, 'create-block-volume')
  const detail = (await app.call('GET', `/operations/pending/${op!.id}`)).json()
  t.same(detail.changes.map((c: { description: string }) => c.description).sort(), [
    'Add block volume',
    'Add brick',
    'Add brick',
    'Add brick',
    'Add volume',
  ])
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [] }, 'the new hosting volume is hidden')
})

t.test('delete: a failed gluster-block delete brings the block volume back', async (t) => {
  const { app, nodes, injector } = await blockBed(t)
  const id = idOf((await app.run('POST', '/blockvolumes', { size: 2 })).location)
  injector.setRules([{ pattern: '^gluster-block delete', action: 'fail', message: gbFail('target is busy') }])
  const res = await app.run('DELETE', `/blockvolumes/${id}`)
  t.equal(res.statusCode, 500)
  t.equal(res.body, 'All 3 hosts: target is busy\n')
  t.equal((await app.call('GET', `/blockvolumes/${id}`)).statusCode, 200, 'visible again')
  t.equal(nodes.blocks().length, 1)
  await agreed(t, app, 'failed delete')
  injector.setRules([])
  t.equal((await app.run('DELETE', `/blockvolumes/${id}`)).statusCode, 204)
  t.same(nodes.blocks(), [])
  await agreed(t, app, 'delete')
})

t.test('delete: a delete that went through is finished by the cleaner, not undone', async (t) => {
  const { app, nodes, injector } = await blockBed(t)
  const id = idOf((await app.run('POST', '/blockvolumes', { size: 2 })).location)
  const bhv = await hostingOf(app, id)
  // on every host, so the delete cannot go round the fault
  injector.setRules([{ pattern: '^gluster-block delete', action: 'timeout' }])
  t.equal((await app.run('DELETE', `/blockvolumes/${id}`)).statusCode, 500)
  injector.setRules([])
  t.same(nodes.blocks(), [], 'gone on the nodes')
  const [op] = await operations(app)
  t.equal(op?.status, 'failed')
  t.equal((await app.call('GET', `/blockvolumes/${id}`)).statusCode, 404, 'not brought back')
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [] })
  t.equal((await app.call('GET', `/volumes/${bhv}`)).json().blockinfo.freesize, 9, 'space back')
  await agreed(t, app, 'finished delete')
})

t.test(
  'expand: a failed modify gives the space back; one that resized is settled by the cleaner',
  async (t) => {
    const { app, nodes, injector } = await blockBed(t)
    const id = idOf((await app.run('POST', '/blockvolumes', { size: 2 })).location)
    const bhv = await hostingOf(app, id)
    const free = async () => (await app.call('GET', `/volumes/${bhv}`)).json().blockinfo.freesize
    t.equal(await free(), 7)

    injector.setRules([
      { pattern: '^gluster-block modify', action: 'fail', message: gbFail('resize failed') },
    ])
    const failed = await app.run('POST', `/blockvolumes/${id}/expand`, { new_size: 4 })
    t.equal(failed.statusCode, 500)
    t.equal(
      failed.body,
      'All 3 hosts: Failed to expand block volume: resize failed (see logs for details, and retry the operation)\n',
    )
    t.equal(await free(), 7, 'space back')
    t.equal((await app.call('GET', `/blockvolumes/${id}`)).json().size, 2)
    await agreed(t, app, 'failed modify')

    // on every host, so the resize cannot go round the fault
    injector.setRules([{ pattern: '^gluster-block modify', action: 'timeout' }])
    t.equal((await app.run('POST', `/blockvolumes/${id}/expand`, { new_size: 4 })).statusCode, 500)
    injector.setRules([])
    const [op] = await operations(app)
    t.equal(op?.type_name, 'expand-block-volume')
    t.equal(op?.status, 'failed', 'the nodes have the new size: no undo')
    t.equal(nodes.blocks().length, 1)
    t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
    const info = (await app.call('GET', `/blockvolumes/${id}`)).json()
    t.equal(info.size, 4, 'the cleaner kept the size the nodes report')
    t.equal(info.usablesize, 4)
    t.equal(await free(), 5)
    await agreed(t, app, 'settled expand')
  },
)

t.test('crash mid-operation: the cleaner undoes a create and settles an expand', async (t) => {
  const nodes = new FakeNodes(HOSTS)
  const first = await blockBed(t, nodes)
  const kept = idOf((await first.app.run('POST', '/blockvolumes', { size: 2 })).location)
  const before = await freeKiB(first.app)
  // a second hosting volume (the first is too full) whose gluster-block create never answers
  first.injector.setRules([{ pattern: '^gluster-block create', action: 'hang' }])
  t.equal((await first.app.call('POST', '/blockvolumes', { size: 8 })).statusCode, 202)
  for (let i = 0; i < 200 && first.injector.fired === 0; i++) await new Promise((r) => setTimeout(r, 5))
  t.equal(nodes.volumes.size, 2, 'the new hosting volume was made before the crash')
  await first.app.close()

  const second = await blockBed(t, nodes, first.app.dir)
  const [op] = await operations(second.app)
  t.equal(op?.type_name, 'create-block-volume')
  t.equal(op?.status, 'stale')
  t.equal((await second.app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.equal(nodes.volumes.size, 1, 'the hosting volume of the crashed create is gone')
  t.equal(nodes.blocks().length, 1)
  t.equal(await freeKiB(second.app), before)
  t.same((await second.app.call('GET', '/blockvolumes')).json(), { blockvolumes: [kept] })
  await agreed(t, second.app, 'crashed create')
})

t.test('crash mid-operation: the cleaner settles an expand and finishes a delete', async (t) => {
  const nodes = new FakeNodes(HOSTS)
  const injector = new Injector([])
  const remote = remoteOver(nodes, injector)
  let dieAfter: string | undefined
  // the process "dies" right after the node did the work
  const dying = new Proxy(remote, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function' || prop !== dieAfter) return value
      return async (...args: unknown[]) => {
        await value.apply(target, args)
        await new Promise(() => {})
      }
    },
  })
  const first = await makeApp(t, { executor: dying, config: BLOCK_CONFIG })
  const cluster = (await first.call('POST', '/clusters', { file: true, block: true })).json().id
  for (let i = 0; i < HOSTS.length; i++) {
    const node = await first.run('POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [HOSTS[i]], storage: [`10.0.0.${i + 1}`] },
      cluster,
    })
    await first.run('POST', '/devices', { name: '/dev/sdb', node: idOf(node.location) })
  }
  const grown = idOf((await first.run('POST', '/blockvolumes', { size: 2 })).location)
  const gone = idOf((await first.run('POST', '/blockvolumes', { size: 3 })).location)
  const bhv = await hostingOf(first, grown)
  dieAfter = 'blockVolumeExpand'
  t.equal((await first.call('POST', `/blockvolumes/${grown}/expand`, { new_size: 5 })).statusCode, 202)
  for (let i = 0; i < 200 && (await operations(first)).length === 0; i++)
    await new Promise((r) => setTimeout(r, 5))
  dieAfter = 'blockVolumeDelete'
  t.equal((await first.call('DELETE', `/blockvolumes/${gone}`)).statusCode, 202)
  for (let i = 0; i < 200 && nodes.blocks().length === 2; i++) await new Promise((r) => setTimeout(r, 5))
  t.equal(nodes.blocks().length, 1, 'the delete went through on the nodes')
  await first.close()

  const second = await makeApp(t, { dir: first.dir, executor: remote, config: BLOCK_CONFIG })
  const ops = await operations(second)
  t.same(ops.map((o) => `${o.type_name} ${o.status}`).sort(), [
    'delete-block-volume stale',
    'expand-block-volume stale',
  ])
  t.equal((await second.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  const info = (await second.call('GET', `/blockvolumes/${grown}`)).json()
  t.equal(info.size, 5, 'the size the nodes report')
  t.equal(info.usablesize, 5)
  t.equal((await second.call('GET', `/blockvolumes/${gone}`)).statusCode, 404, 'the delete was finished')
  t.same((await second.call('GET', `/volumes/${bhv}`)).json().blockinfo, {
    freesize: 4,
    reservedsize: 1,
    blockvolume: [grown],
  })
  await agreed(t, second, 'after the crash')
})

t.test('inject/mock: a failing blockVolumeCreate action is undone like a node failure', async (t) => {
  const mock = new MockExecutor()
  const injector = new Injector([{ pattern: '^blockVolumeCreate ', action: 'fail', message: 'injected' }])
  const app = await makeApp(t, { executor: injectingExecutor(mock, injector), config: BLOCK_CONFIG })
  await makeTopology(app, { nodes: 3, devices: 1 })
  const res = await app.run('POST', '/blockvolumes', { size: 1 })
  t.equal(res.statusCode, 500)
  t.equal(res.body, 'injected\n')
  t.same(await mock.volumeInfoAll('node0.example.com'), [], 'the hosting volume was removed again')
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [] })
  await agreed(t, app, 'inject/mock')
  injector.setRules([])
  const ok = await app.run('POST', '/blockvolumes', { size: 1, name: 'bv' })
  t.equal(ok.statusCode, 303)
  const bhv = (await app.call('GET', `/volumes/${await hostingOf(app, idOf(ok.location))}`)).json().name
  t.same(await mock.blockVolumeList('node0.example.com', bhv), ['bv'])
})
