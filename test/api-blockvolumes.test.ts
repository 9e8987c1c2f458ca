// The block volume routes against heketi's texts (heketi-api.md §12,
// allocation §11), on the mock executor: create (reusing or auto-creating a
// block-hosting volume), list, info, expand, delete, the validation 400s and
// the build errors, and /db/check clean after each case.
import t, { type Test } from 'tap'
import { makeApp, makeTopology, type TestApp } from './helpers/app.ts'

const idOf = (location?: string) => location!.split('/').pop()!

async function dbClean(t: Test, app: TestApp) {
  const check = (await app.call('GET', '/db/check')).json()
  t.equal(check.totalinconsistencies, 0, `/db/check clean ${JSON.stringify(check.inconsistencies ?? [])}`)
}

async function blockApp(t: Test, config: Record<string, unknown> = {}) {
  const app = await makeApp(t, {
    config: { autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 100, ...config },
  })
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  return { app, topo }
}

t.test('create with an auto-created hosting volume, info, list, expand, delete', async (t) => {
  const { app, topo } = await blockApp(t)
  const created = await app.run('POST', '/blockvolumes', { size: 5, name: 'pvc-1', hacount: 3, auth: true })
  t.equal(created.statusCode, 303, created.body)
  t.match(created.location, /^\/blockvolumes\/[0-9a-f]{32}$/)
  const id = idOf(created.location)
  const res = await app.call('GET', `/blockvolumes/${id}`)
  t.equal(res.statusCode, 200)
  const info = res.json()
  t.same(Object.keys(info), [
    'size',
    'name',
    'hacount',
    'id',
    'blockvolume',
    'cluster',
    'blockhostingvolume',
    'usablesize',
  ])
  t.equal(info.size, 5)
  t.equal(info.name, 'pvc-1')
  t.equal(info.hacount, 3)
  t.equal(info.cluster, topo.cluster)
  t.equal(info.usablesize, 5)
  t.same(info.blockvolume, {
    hosts: info.blockvolume.hosts,
    iqn: 'fakeIQN',
    lun: 0,
    username: 'heketi-user',
    password: 'secret',
  })
  t.same([...info.blockvolume.hosts].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
  const bhv = (await app.call('GET', `/volumes/${info.blockhostingvolume}`)).json()
  t.equal(bhv.block, true)
  t.equal(bhv.size, 100)
  t.same(bhv.blockinfo, { freesize: 93, reservedsize: 2, blockvolume: [id] })
  t.same(bhv.glustervolumeoptions, ['', 'group gluster-block', ''])
  t.same(bhv.durability, { type: 'replicate', replicate: { replica: 3 }, disperse: {} })
  t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [id] })
  t.same((await app.call('GET', `/clusters/${topo.cluster}`)).json().blockvolumes, [id])
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [bhv.id] })
  await dbClean(t, app)

  const expanded = await app.run('POST', `/blockvolumes/${id}/expand`, { new_size: 10 })
  t.equal(expanded.statusCode, 303, expanded.body)
  t.equal(expanded.location, `/blockvolumes/${id}`)
  const after = (await app.call('GET', `/blockvolumes/${id}`)).json()
  t.equal(after.size, 10)
  t.equal(after.usablesize, 10)
  t.equal((await app.call('GET', `/volumes/${bhv.id}`)).json().blockinfo.freesize, 88)
  await dbClean(t, app)

  const busy = await app.call('DELETE', `/volumes/${bhv.id}`)
  t.equal(busy.statusCode, 409)
  t.equal(busy.body, 'Cannot delete a block hosting volume containing block volumes\n')

  const del = await app.run('DELETE', `/blockvolumes/${id}`)
  t.equal(del.statusCode, 204, del.body)
  t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [] })
  t.equal((await app.call('GET', `/blockvolumes/${id}`)).body, 'Id not found\n')
  t.equal((await app.call('DELETE', `/blockvolumes/${id}`)).body, 'Id not found\n')
  const kept = (await app.call('GET', `/volumes/${bhv.id}`)).json()
  t.same(kept.blockinfo, { freesize: 98, reservedsize: 2 }, 'the hosting volume stays, space back')
  await dbClean(t, app)
  t.equal((await app.run('DELETE', `/volumes/${bhv.id}`)).statusCode, 204, 'then it can be deleted')
  await dbClean(t, app)
})
