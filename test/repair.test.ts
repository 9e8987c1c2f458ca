// POST /internal/state/repair on the mock executor (the testbed test breaks
// real nodes): dry run lists, repair removes orphans, mounts nothing that is
// fine, reports gone LVs and unknown gluster volumes without touching them.
import t from 'tap'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp, makeTopology } from './helpers/app.ts'

const replica3 = { size: 5, durability: { type: 'replicate', replicate: { replica: 3 } } }
const ORPHAN = 'ab'.repeat(16)

t.test('repair lists, then removes orphans and reports the rest', async (t) => {
  const mock = new MockExecutor()
  const app = await makeApp(t, { executor: mock })
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  const v = (await app.call('GET', (await app.run('POST', '/volumes', replica3)).location!)).json()
  const clean = (await app.call('POST', '/internal/state/repair?dry_run=true')).json()
  t.equal(clean.dry_run, true)
  t.equal(clean.nodes.length, 3)
  for (const n of clean.nodes) {
    t.same([n.removed, n.remounted, n.missing, n.errors], [[], [], [], []], `node ${n.host}: nothing to do`)
  }
  t.same(clean.unknown_gluster_volumes, [])

  const node0 = (await app.call('GET', `/nodes/${topo.nodes[0]}`)).json()
  const device = node0.devices[0].id as string
  const host = node0.hostnames.manage[0] as string
  // an orphan brick (its DB entry lost), a DB brick whose LV is gone, a foreign gluster volume
  await mock.brickCreate({
    host,
    brickId: ORPHAN,
    deviceId: device,
    path: `/var/lib/heketi/mounts/vg_${device}/brick_${ORPHAN}/brick`,
    sizeKiB: 1024,
    tpSizeKiB: 1024,
    poolMetadataSizeKiB: 8,
    lvmThinPool: `tp_${ORPHAN}`,
    lvmLv: '',
    gid: 0,
    arbiter: false,
  })
  const lost = v.bricks.find((b: { node: string }) => b.node === topo.nodes[1])
  const host1 = (await app.call('GET', `/nodes/${topo.nodes[1]}`)).json().hostnames.manage[0]
  await mock.brickDestroy({
    ...lost,
    host: host1,
    brickId: lost.id,
    deviceId: lost.device,
    lvmLv: '',
    lvmThinPool: '',
  })
  await mock.volumeCreate({
    host,
    id: 'x',
    name: 'vol_foreign',
    durability: { type: 'none' },
    bricks: [],
    options: [],
  })

  const dry = (await app.call('POST', '/internal/state/repair?dry_run=true')).json()
  const at = (h: string) => dry.nodes.find((n: { host: string }) => n.host === h)
  t.same(at(host).removed, [`vg_${device}/brick_${ORPHAN}`], 'the orphan is listed')
  t.same(at(host).orphans.brick_dirs, [`/var/lib/heketi/mounts/vg_${device}/brick_${ORPHAN}`])
  t.match(at(host1).missing, [new RegExp(`brick ${lost.id}: LV .* is gone`)], 'the lost brick is reported')
  t.same(dry.unknown_gluster_volumes, [{ cluster: topo.cluster, volumes: ['vol_foreign'] }])
  t.equal((await mock.nodeInventory(host)).brickDirs.length, 2, 'a dry run changes nothing')

  const fixed = await app.call('POST', '/internal/state/repair')
  t.equal(fixed.statusCode, 200)
  t.same(fixed.json().nodes.find((n: { host: string }) => n.host === host).errors, [])
  t.equal((await mock.nodeInventory(host)).brickDirs.length, 1, 'the orphan is gone, the volume brick stays')
  t.ok(mock.glusterBricks('vol_foreign'), 'the foreign gluster volume is never deleted')
  const again = (await app.call('POST', '/internal/state/repair?dry_run=true')).json()
  t.same(
    again.nodes.flatMap((n: { removed: string[] }) => n.removed),
    [],
    'nothing left to remove',
  )
  t.equal((await app.call('POST', '/internal/state/repair?dry_run=yes')).statusCode, 400)
  t.equal((await app.call('POST', '/internal/state/repair', undefined, { iss: 'user' })).statusCode, 401)
})

t.test(
  'bricks of a started volume that do not run are listed, then started with volume start force',
  async (t) => {
    const mock = new MockExecutor()
    const stopped = new Set<string>()
    const forced: string[] = []
    let startWorks = true
    const executor = new Proxy(mock, {
      get(target, prop, receiver) {
        if (prop === 'volumeStatus')
          return async (host: string, name: string) =>
            (await mock.volumeStatus(host, name)).map((b) => ({ ...b, online: !stopped.has(b.name) }))
        if (prop === 'volumeStartForce')
          return async (_host: string, name: string) => {
            forced.push(name)
            if (startWorks) stopped.clear()
          }
        return Reflect.get(target, prop, receiver)
      },
    })
    const app = await makeApp(t, { executor })
    await makeTopology(app, { nodes: 3, devices: 1 })
    const v = (await app.call('GET', (await app.run('POST', '/volumes', replica3)).location!)).json()
    const nodeOf = async (id: string) => (await app.call('GET', `/nodes/${id}`)).json().hostnames.storage[0]
    const addr = async (b: { node: string; path: string }) => `${await nodeOf(b.node)}:${b.path}`
    const nothing = (await app.call('POST', '/internal/state/repair')).json()
    t.same(nothing.offline_bricks, [], 'every brick runs: nothing listed')
    t.same(forced, [], 'and nothing started')

    const [a, b] = [await addr(v.bricks[0]), await addr(v.bricks[1])]
    stopped.add(a)
    stopped.add(b)
    const dry = (await app.call('POST', '/internal/state/repair?dry_run=true')).json()
    t.same(dry.offline_bricks, [{ cluster: v.cluster, volume: v.name, bricks: [a, b].sort(), restarted: [] }])
    t.same(forced, [], 'a dry run starts nothing')

    const fixed = (await app.call('POST', '/internal/state/repair')).json()
    t.same(fixed.offline_bricks, [
      { cluster: v.cluster, volume: v.name, bricks: [a, b].sort(), restarted: [a, b].sort() },
    ])
    t.same(forced, [v.name], 'volume start force once')
    t.same(fixed.errors, [])

    // a brick that does not come up is an error, not a silent success
    startWorks = false
    stopped.add(a)
    const { BRICK_START_LOOKS } = await import('../src/repair.ts')
    Object.assign(BRICK_START_LOOKS, { count: 3, pauseMs: 1 })
    const failed = (await app.call('POST', '/internal/state/repair')).json()
    t.same(failed.offline_bricks, [{ cluster: v.cluster, volume: v.name, bricks: [a], restarted: [] }])
    t.same(failed.errors, [`volume ${v.name}: still not running after volume start force: ${a}`])
    t.same(
      forced,
      Array(1 + BRICK_START_LOOKS.rounds).fill(v.name),
      'started again in each round, then given up',
    )
  },
)
