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
