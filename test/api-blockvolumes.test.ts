// The block volume routes against heketi's texts (heketi-api.md §12,
// allocation §11), on the mock executor: create (reusing or auto-creating a
// block-hosting volume), list, info, expand, delete, the validation 400s and
// the build errors, and /db/check clean after each case.
import t, { type Test } from 'tap'
import { MockExecutor } from '../executors/mock.ts'
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

t.test('validation and pre-check texts', async (t) => {
  const app = await makeApp(t)
  const cases: [unknown, number, string][] = [
    [{}, 400, 'validation failed: size: cannot be blank.'],
    [{ size: -1 }, 400, 'validation failed: size: must be no less than 1.'],
    [{ size: 1, name: 'a b' }, 400, 'validation failed: name: must be in a valid format.'],
    [{ size: 1, name: '-x' }, 400, 'validation failed: name: must be in a valid format.'],
    [{ size: 1, name: "x';reboot" }, 400, 'validation failed: name: must be in a valid format.'],
    [{ size: 1, hacount: -2 }, 400, 'validation failed: hacount: must be no less than 1.'],
    [
      { size: 0, name: 'a b', hacount: -1 },
      400,
      'validation failed: hacount: must be no less than 1; name: must be in a valid format; size: cannot be blank.',
    ],
    [{ size: '1' }, 422, 'request unable to be parsed'],
    [{ size: 1, auth: 'yes' }, 422, 'request unable to be parsed'],
    ['', 422, 'request unable to be parsed'],
    [{ size: 1 }, 400, 'No clusters configured'],
  ]
  for (const [body, status, text] of cases) {
    const res = await app.call('POST', '/blockvolumes', body)
    t.equal(res.statusCode, status, JSON.stringify(body))
    t.equal(res.body, `${text}\n`, JSON.stringify(body))
    t.equal(res.headers['content-type'], 'text/plain; charset=utf-8')
  }
  await app.call('POST', '/clusters', { block: true, file: true })
  const unknown = 'ab'.repeat(16)
  t.equal(
    (await app.call('POST', '/blockvolumes', { size: 1, clusters: [unknown] })).body,
    `Cluster id ${unknown} not found\n`,
  )
  // Go's decoder: keys match case-insensitively, unknown keys are ignored
  const res = await app.call('POST', '/blockvolumes', { SIZE: 1, whatever: true })
  t.equal(res.statusCode, 500, 'decoded, then refused at build')
  t.equal(
    res.body,
    'Failed to allocate new block volume: Block Hosting Volume Creation is disabled. Create a Block hosting volume and try again.\n',
  )
  t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [] })
  t.equal((await app.call('GET', `/blockvolumes/${unknown}`)).body, 'Id not found\n')
  t.equal((await app.call('GET', '/blockvolumes/xyz')).body, 'Invalid path or request\n')
  t.equal((await app.call('DELETE', `/blockvolumes/${unknown}`)).body, 'Id not found\n')
  t.equal((await app.call('DELETE', `/blockvolumes/${unknown}`)).statusCode, 404)
  const expand: [unknown, number, string][] = [
    [{}, 400, 'validation failed: new_size: cannot be blank.'],
    [{ new_size: -3 }, 400, 'Invalid block volume size'],
    [{ new_size: 'x' }, 422, 'request unable to be parsed'],
    [{ new_size: 5 }, 404, 'Id not found'],
  ]
  for (const [body, status, text] of expand) {
    const r = await app.call('POST', `/blockvolumes/${unknown}/expand`, body)
    t.equal(r.statusCode, status, JSON.stringify(body))
    t.equal(r.body, `${text}\n`)
  }
  t.equal((await app.call('PUT', '/blockvolumes')).statusCode, 405)
  await dbClean(t, app)
})

t.test('allocation errors: too small, disabled, no block cluster, no space', async (t) => {
  const { app } = await blockApp(t, { blockHostingVolumeSizeGiB: 50 })
  const tooSmall = await app.call('POST', '/blockvolumes', { size: 50 })
  t.equal(tooSmall.statusCode, 500)
  t.equal(
    tooSmall.body,
    'Failed to allocate new block volume: The size configured for automatic creation of block hosting volumes (50) is too small to host the requested block volume of size 50. The available size on this block hosting volume, minus overhead, is 49. Please create a sufficiently large block hosting volume manually.\n',
  )
  t.equal((await app.run('POST', '/blockvolumes', { size: 49 })).statusCode, 303, '49 of 50 fits')
  await dbClean(t, app)

  const off = await makeApp(t)
  await makeTopology(off, { nodes: 3, devices: 1 })
  t.equal(
    (await off.call('POST', '/blockvolumes', { size: 1 })).body,
    'Failed to allocate new block volume: Block Hosting Volume Creation is disabled. Create a Block hosting volume and try again.\n',
  )
  t.same((await off.call('GET', '/volumes')).json(), { volumes: [] }, 'nothing reserved')

  const fileOnly = await makeApp(t, {
    config: { autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 10 },
  })
  const topo = await makeTopology(fileOnly, { nodes: 3, devices: 1 })
  await fileOnly.call('POST', `/clusters/${topo.cluster}/flags`, { block: false, file: true })
  t.equal(
    (await fileOnly.call('POST', '/blockvolumes', { size: 1 })).body,
    'Failed to allocate new block volume: Cluster does not support requested volume type\n',
  )

  const huge = await makeApp(t, {
    config: { autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 5000 },
  })
  await makeTopology(huge, { nodes: 3, devices: 1 })
  const noSpace = await huge.call('POST', '/blockvolumes', { size: 10 })
  t.equal(noSpace.statusCode, 500)
  t.match(noSpace.body, /^Failed to allocate new block volume: No space/)
  t.same((await huge.call('GET', '/operations')).json().total, 0, 'no record left')
  await dbClean(t, huge)
})

t.test(
  'hosting volumes: reused while they have room, reserved space kept, names per hosting volume',
  async (t) => {
    const { app } = await blockApp(t, { blockHostingVolumeSizeGiB: 20 })
    // 20 GiB hosting volume: 19 usable, 1 reserved
    const a = idOf((await app.run('POST', '/blockvolumes', { size: 10, name: 'same' })).location)
    const b = idOf((await app.run('POST', '/blockvolumes', { size: 9, name: 'other' })).location)
    const infoA = (await app.call('GET', `/blockvolumes/${a}`)).json()
    const infoB = (await app.call('GET', `/blockvolumes/${b}`)).json()
    t.equal(infoA.blockhostingvolume, infoB.blockhostingvolume, 'the second one reuses the hosting volume')
    const bhv = (await app.call('GET', `/volumes/${infoA.blockhostingvolume}`)).json()
    t.same(bhv.blockinfo, { reservedsize: 1, blockvolume: [a, b].sort() }, 'free 0 is omitted, reserve kept')
    // no room left (the reserve is never handed out): a second hosting volume
    const c = idOf((await app.run('POST', '/blockvolumes', { size: 1, name: 'third' })).location)
    const infoC = (await app.call('GET', `/blockvolumes/${c}`)).json()
    t.not(infoC.blockhostingvolume, infoA.blockhostingvolume)
    // the same name again goes to another hosting volume than the one holding it
    const d = idOf((await app.run('POST', '/blockvolumes', { size: 1, name: 'third' })).location)
    const infoD = (await app.call('GET', `/blockvolumes/${d}`)).json()
    t.not(infoD.blockhostingvolume, infoC.blockhostingvolume, 'a name is unique within its hosting volume')
    t.equal((await app.call('GET', '/volumes')).json().volumes.length, 3)
    await dbClean(t, app)
  },
)

t.test('restrictions: a locked hosting volume is not used; unlocking makes it usable again', async (t) => {
  const { app } = await blockApp(t, { blockHostingVolumeSizeGiB: 20 })
  const first = idOf((await app.run('POST', '/blockvolumes', { size: 2 })).location)
  const bhv = (await app.call('GET', `/blockvolumes/${first}`)).json().blockhostingvolume
  const locked = await app.run('POST', `/volumes/${bhv}/block-restriction`, { restriction: 'locked' })
  t.equal(locked.statusCode, 303)
  t.equal((await app.call('GET', `/volumes/${bhv}`)).json().blockinfo.restriction, 'locked')
  const second = idOf((await app.run('POST', '/blockvolumes', { size: 2 })).location)
  t.not(
    (await app.call('GET', `/blockvolumes/${second}`)).json().blockhostingvolume,
    bhv,
    'locked is skipped',
  )
  // locked-by-update (set by a DB upgrade) is honoured the same way
  const other = (await app.call('GET', `/blockvolumes/${second}`)).json().blockhostingvolume
  await app.ctx.store.write((tx) => {
    const v = tx.get('volume', other)!
    tx.put('volume', other, { ...v, blockInfo: { ...v.blockInfo, restriction: 'locked-by-update' } })
  })
  const off = await app.call('POST', '/blockvolumes', { size: 2 })
  t.equal(off.statusCode, 202, 'neither is usable: a third hosting volume')
  const third = await app.run('POST', `/volumes/${bhv}/block-restriction`, { restriction: '' })
  t.equal(third.statusCode, 303)
  await dbClean(t, app)
})

t.test('hacount and auth: export hosts, CHAP credentials, omitted fields', async (t) => {
  const app = await makeApp(t, {
    config: { autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 10 },
  })
  await makeTopology(app, { nodes: 4, devices: 1 })
  const two = (
    await app.call(
      'GET',
      `/blockvolumes/${idOf((await app.run('POST', '/blockvolumes', { size: 1, hacount: 2 })).location)}`,
    )
  ).json()
  t.equal(two.hacount, 2)
  t.equal(two.blockvolume.hosts.length, 2, 'hacount hosts export it')
  t.same(two.blockvolume.username, '', 'no auth: empty username, still present')
  t.same(two.blockvolume.password, '')
  t.equal(two.blockvolume.iqn, 'fakeIQN')
  const all = (
    await app.call(
      'GET',
      `/blockvolumes/${idOf((await app.run('POST', '/blockvolumes', { size: 1 })).location)}`,
    )
  ).json()
  t.equal(all.hacount, 4, 'hacount 0: every host of the hosting volume, hacount set to their count')
  t.same([...all.blockvolume.hosts].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'])
  const many = (
    await app.call(
      'GET',
      `/blockvolumes/${idOf((await app.run('POST', '/blockvolumes', { size: 1, hacount: 9 })).location)}`,
    )
  ).json()
  t.equal(many.hacount, 4, 'more than the hosts: all of them')
  t.notOk('clusters' in all || 'auth' in all, 'clusters and auth are never returned')
  t.match(all.name, /^blockvol_[0-9a-f]{32}$/)
  t.equal(all.name, `blockvol_${all.id}`)
  await dbClean(t, app)
})

t.test('expand texts and pending block volumes', async (t) => {
  const { app } = await blockApp(t, { blockHostingVolumeSizeGiB: 20 })
  const id = idOf((await app.run('POST', '/blockvolumes', { size: 5 })).location)
  const expand = (n: number) => app.call('POST', `/blockvolumes/${id}/expand`, { new_size: n })
  t.equal(
    (await expand(5)).body,
    'Failed to allocate block volume expansion: Requested new-size 5 is same as current block volume size 5, nothing to be done.\n',
  )
  t.equal(
    (await expand(4)).body,
    'Failed to allocate block volume expansion: Requested new-size 4 is less than current block volume size 5, shrinking is not allowed.\n',
  )
  t.equal(
    (await expand(20)).body,
    'Failed to allocate block volume expansion: No space\n',
    '19 usable, 5 used',
  )
  t.equal((await expand(19)).statusCode, 202, 'exactly the free size')
  await dbClean(t, app)
})

t.test('node delete drops the node from export hosts; the examiner lists block volumes', async (t) => {
  const { app, topo } = await blockApp(t)
  const extra = await app.run('POST', '/nodes', {
    zone: 4,
    hostnames: { manage: ['node9.example.com'], storage: ['10.0.0.9'] },
    cluster: topo.cluster,
  })
  t.equal(extra.statusCode, 303)
  const id = idOf((await app.run('POST', '/blockvolumes', { size: 1, name: 'bv1' })).location)
  const before = (await app.call('GET', `/blockvolumes/${id}`)).json()
  t.same([...before.blockvolume.hosts].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.9'])
  t.equal(before.hacount, 4)
  const examine = (await app.call('GET', '/internal/state/examine/gluster')).json()
  const bhvName = (await app.call('GET', `/volumes/${before.blockhostingvolume}`)).json().name
  t.same(examine.clusters[0].NodesData[0].BlockVolumeNames, [`${bhvName}/bv1`])
  t.equal((await app.run('DELETE', `/nodes/${idOf(extra.location)}`)).statusCode, 204)
  const after = (await app.call('GET', `/blockvolumes/${id}`)).json()
  t.same([...after.blockvolume.hosts].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
  await dbClean(t, app)
})

t.test('pending block volumes are hidden and refuse a delete', async (t) => {
  const { app, topo } = await blockApp(t)
  const id = idOf((await app.run('POST', '/blockvolumes', { size: 1 })).location)
  const bhv = (await app.call('GET', `/blockvolumes/${id}`)).json().blockhostingvolume
  // mark it pending as a running expand would
  await app.ctx.store.write((tx) => {
    const bv = tx.get('blockvolume', id)!
    tx.put('blockvolume', id, { ...bv, pendingId: 'cd'.repeat(16) })
    tx.put('pendingop', 'cd'.repeat(16), {
      id: 'cd'.repeat(16),
      timestamp: Math.floor(Date.now() / 1000),
      type: 'expand-block-volume',
      actions: [{ change: 'expand-block-volume', id, delta: 2 }],
      status: '',
      doneSteps: [],
      data: {},
    })
  })
  t.equal((await app.call('GET', `/blockvolumes/${id}`)).body, 'Id not found\n')
  t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [] })
  t.same((await app.call('GET', `/clusters/${topo.cluster}`)).json().blockvolumes, [])
  t.same((await app.call('GET', `/volumes/${bhv}`)).json().blockinfo.blockvolume, undefined)
  const del = await app.call('DELETE', `/blockvolumes/${id}`)
  t.equal(del.statusCode, 500)
  t.equal(
    del.body,
    'Failed to set up block volume delete: The target exists, contains other items, or is in use.\n',
  )
  t.equal(
    (await app.call('POST', `/blockvolumes/${id}/expand`, { new_size: 3 })).body,
    'Failed to allocate block volume expansion: The target exists, contains other items, or is in use.\n',
  )
  const ops = (await app.call('GET', '/operations/pending')).json().pendingoperations
  t.same(
    ops.map((o: { type_name: string }) => o.type_name),
    ['expand-block-volume'],
  )
  const detail = (await app.call('GET', `/operations/pending/${'cd'.repeat(16)}`)).json()
  t.same(detail.changes, [{ id, description: 'Expand block volume' }])
})

t.test('throttled: block volume create, expand and delete answer 429 past the in-flight limit', async (t) => {
  const app = await makeApp(t, {
    executor: new MockExecutor({ delayMs: 50 }),
    config: { autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 20, maxInflightOperations: 1 },
  })
  await makeTopology(app, { nodes: 3, devices: 1 })
  const id = idOf((await app.run('POST', '/blockvolumes', { size: 1 })).location)
  const running = await app.call('POST', '/blockvolumes', { size: 1 })
  t.equal(running.statusCode, 202)
  for (const [method, path, body] of [
    ['POST', '/blockvolumes', { size: 1 }],
    ['POST', `/blockvolumes/${id}/expand`, { new_size: 2 }],
    ['DELETE', `/blockvolumes/${id}`, undefined],
  ] as const) {
    const res = await app.call(method, path, body)
    t.equal(res.statusCode, 429, `${method} ${path}`)
    t.equal(res.body, 'Server busy. Retry operation later.\n')
  }
})

t.test('export hosts need a running glusterd: too few, or none at all', async (t) => {
  const down = new Set<string>()
  const executor = new (class extends MockExecutor {
    override async glusterdCheck(...[host]: string[]) {
      if (down.has(host!)) throw new Error(`glusterd is not running on ${host}`)
    }
  })()
  const app = await makeApp(t, {
    executor,
    config: { autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 20 },
  })
  await makeTopology(app, { nodes: 3, devices: 1 })
  down.add('node0.example.com')
  down.add('node1.example.com')
  const few = await app.run('POST', '/blockvolumes', { size: 1, hacount: 2 })
  t.equal(few.statusCode, 500)
  t.equal(few.body, 'insufficient block hosts online\n')
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [] }, 'the new hosting volume is undone')
  const one = await app.run('POST', '/blockvolumes', { size: 1, hacount: 1 })
  t.equal(one.statusCode, 303, 'one host with glusterd is enough for hacount 1')
  const bv = (await app.call('GET', one.location!)).json()
  t.same(bv.blockvolume.hosts, ['10.0.0.3'])
  down.add('node2.example.com')
  const none = await app.run('POST', '/blockvolumes', { size: 1 })
  t.equal(none.statusCode, 500)
  t.equal(none.body, 'None of the nodes in cluster has glusterd running\n')
  t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [bv.id] })
  await dbClean(t, app)
})

t.test('unlocking a hosting volume a DB upgrade locked takes the 2 % reserve first', async (t) => {
  const { app } = await blockApp(t)
  const id = idOf((await app.run('POST', '/blockvolumes', { size: 90 })).location)
  const bhv = (await app.call('GET', `/blockvolumes/${id}`)).json().blockhostingvolume
  // as an upgrade leaves it: no reserve, locked
  const upgraded = async (freeSizeGiB: number) =>
    app.ctx.store.write((tx) => {
      const v = tx.get('volume', bhv)!
      tx.put('volume', bhv, {
        ...v,
        blockInfo: { ...v.blockInfo, freeSizeGiB, reservedSizeGiB: 0, restriction: 'locked-by-update' },
      })
    })
  await upgraded(1)
  const refused = await app.run('POST', `/volumes/${bhv}/block-restriction`, { restriction: '' })
  t.equal(refused.statusCode, 500)
  t.equal(
    refused.body,
    'Failed to set block restriction: Can not unlock volume. 2GiB free space is required, but found 1GiB\n',
  )
  await upgraded(10)
  t.equal((await app.run('POST', `/volumes/${bhv}/block-restriction`, { restriction: '' })).statusCode, 303)
  t.same((await app.call('GET', `/volumes/${bhv}`)).json().blockinfo, {
    freesize: 8,
    reservedsize: 2,
    blockvolume: [id],
  })
  await dbClean(t, app)
})
