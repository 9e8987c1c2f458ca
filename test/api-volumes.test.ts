import t from 'tap'
import { makeApp, makeTopology } from './helpers/app.ts'

t.test('volume lifecycle on the mock executor', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 3, devices: 2 })
  const created = await app.run('POST', '/volumes', {
    size: 10,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  t.equal(created.statusCode, 303, created.body)
  const id = created.location!.split('/').pop()!
  const info = (await app.call('GET', `/volumes/${id}`)).json()
  t.equal(info.size, 10)
  t.equal(info.name, `vol_${id}`)
  t.same(info.glustervolumeoptions, ['', ''])
  t.same(info.blockinfo, {})
  t.same(info.snapshot, { enable: false, factor: 1 })
  t.same(info.durability, { type: 'replicate', replicate: { replica: 3 }, disperse: {} })
  t.equal(info.bricks.length, 3)
  t.equal(new Set(info.bricks.map((b: { node: string }) => b.node)).size, 3)
  t.equal(info.bricks[0].size, 10485760)
  t.equal(info.mount.glusterfs.hosts.length, 3)
  t.notOk('gid' in info)
  t.notOk('clusters' in info)
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [id] })
  t.same((await app.call('GET', `/clusters/${topo.cluster}`)).json().volumes, [id])

  const expanded = await app.run('POST', `/volumes/${id}/expand`, { expand_size: 5 })
  t.equal(expanded.statusCode, 303, expanded.body)
  const after = (await app.call('GET', `/volumes/${id}`)).json()
  t.equal(after.size, 15)
  t.equal(after.bricks.length, 6)

  const node = (await app.call('GET', `/nodes/${topo.nodes[0]}`)).json()
  const used = node.devices.reduce((s: number, d: { storage: { used: number } }) => s + d.storage.used, 0)
  t.ok(used > 0)

  const del = await app.run('DELETE', `/volumes/${id}`)
  t.equal(del.statusCode, 204, del.body)
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [] })
  const node2 = (await app.call('GET', `/nodes/${topo.nodes[0]}`)).json()
  for (const d of node2.devices) t.same(d.storage, { total: 524288000, free: 524288000, used: 0 })
  t.equal((await app.call('DELETE', `/volumes/${id}`)).body, 'Id not found\n')
})

t.test('volume create validation', async (t) => {
  const app = await makeApp(t)
  const cases: [unknown, number, string][] = [
    [{ size: 0 }, 400, 'validation failed: size: cannot be blank.'],
    [{ size: 1, name: 'a b' }, 400, 'validation failed: name: must be in a valid format.'],
    [{ size: 1, gid: -1 }, 400, 'Bad group id less than zero'],
    [{ size: 1, gid: 2147483647 }, 400, 'Bad group id equal or greater than 2**32'],
    [{ size: 1, durability: { type: 'replicate', replicate: { replica: 4 } } }, 400, 'Invalid replica value'],
    [
      { size: 1, durability: { type: 'disperse', disperse: { data: 3, redundancy: 1 } } },
      400,
      'Invalid dispersion combination: 3+1',
    ],
    [{ size: 1, snapshot: { enable: true } }, 400, 'Invalid snapshot factor'],
    [{ size: 1, durability: { type: 'x' } }, 400, 'Unknown durability type'],
    [{ size: 1 }, 400, 'No clusters configured'],
    [{ size: '1' }, 422, 'request unable to be parsed'],
  ]
  for (const [body, status, text] of cases) {
    const res = await app.call('POST', '/volumes', body)
    t.equal(res.statusCode, status, JSON.stringify(body))
    t.equal(res.body, `${text}\n`)
  }
  const c = (await app.call('POST', '/clusters', {})).json().id
  const res = await app.call('POST', '/volumes', { size: 1 })
  t.equal(res.body, 'Failed to allocate new volume: Cluster has disabled all volume types\n')
  t.equal(
    (await app.call('POST', '/volumes', { size: 1, clusters: ['ab'] })).body,
    'Cluster id ab not found\n',
  )
  void c
})

t.test('no space says why', async (t) => {
  const app = await makeApp(t)
  await makeTopology(app, { nodes: 2, devices: 1 })
  const res = await app.call('POST', '/volumes', {
    size: 10,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  t.equal(res.statusCode, 500)
  t.match(res.body, /^Failed to allocate new volume: No space/)
})

t.test('a retried create with the same name answers the same volume', async (t) => {
  const app = await makeApp(t)
  await makeTopology(app, { nodes: 3, devices: 1 })
  const body = { size: 2, name: 'pvc_retry', durability: { type: 'replicate', replicate: { replica: 3 } } }
  const [a, b] = await Promise.all([app.run('POST', '/volumes', body), app.run('POST', '/volumes', body)])
  t.equal(a.statusCode, 303)
  t.equal(b.statusCode, 303)
  t.equal(a.location, b.location)
  t.equal((await app.call('GET', '/volumes')).json().volumes.length, 1)
  const c = await app.run('POST', '/volumes', body)
  t.equal(c.location, a.location, 'also after it finished')
  const other = await app.call('POST', '/volumes', { ...body, size: 3 })
  t.equal(other.statusCode, 500)
  t.equal(other.body, "Failed to allocate new volume: Volume name 'pvc_retry' already in use\n")
})

t.test('the exact bodies heketi-cli and the Kubernetes provisioner send', async (t) => {
  const app = await makeApp(t)
  await makeTopology(app, { nodes: 6, devices: 1 })
  const bodies = [
    '{"size":10,"name":"","durability":{"type":"replicate","replicate":{"replica":3},"disperse":{"data":4,"redundancy":2}},"snapshot":{"enable":false,"factor":0}}',
    '{"size":2,"name":"","durability":{"type":"replicate","replicate":{"replica":3},"disperse":{}},"gid":2000,"snapshot":{"enable":true,"factor":1}}',
    '{"size":4,"name":"","durability":{"type":"disperse","replicate":{},"disperse":{"data":4,"redundancy":2}},"gid":2000,"snapshot":{"enable":true,"factor":1}}',
    '{"size":2,"name":"","durability":{"type":"none","replicate":{},"disperse":{}},"gid":2000,"snapshot":{"enable":true,"factor":1}}',
    '{"size":2,"name":"","durability":{"replicate":{},"disperse":{}},"gid":2000,"snapshot":{"enable":true,"factor":1}}',
  ]
  const bricksPerVolume = [3, 3, 6, 1, 1]
  for (const [i, body] of bodies.entries()) {
    const res = await app.run('POST', '/volumes', body)
    t.equal(res.statusCode, 303, `${body} → ${res.body}`)
    const info = (await app.call('GET', res.location!)).json()
    t.equal(info.bricks.length, bricksPerVolume[i])
    t.match(info.name, /^vol_[0-9a-f]{32}$/)
    if (body.includes('"gid":2000')) t.equal(info.gid, 2000)
  }
  const noType = (await app.call('GET', '/volumes')).json().volumes.length
  t.equal(noType, 5)
})

t.test('clone, block restriction and the protected names', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  const src = await app.run('POST', '/volumes', {
    size: 2,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  const srcId = src.location!.split('/').pop()!
  const clone = await app.run('POST', `/volumes/${srcId}/clone`, { name: 'myclone' })
  t.equal(clone.statusCode, 303, clone.body)
  const cloneId = clone.location!.split('/').pop()!
  t.not(cloneId, srcId)
  const info = (await app.call('GET', `/volumes/${cloneId}`)).json()
  t.equal(info.name, 'myclone')
  t.equal(info.bricks.length, 3)
  t.same((await app.call('GET', `/clusters/${topo.cluster}`)).json().volumes.sort(), [srcId, cloneId].sort())
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
  t.equal((await app.call('POST', `/volumes/${srcId}/clone`)).statusCode, 422, 'a body is required')
  const restrict = await app.run('POST', `/volumes/${srcId}/block-restriction`, { restriction: 'locked' })
  t.equal(restrict.statusCode, 500)
  t.equal(
    restrict.body,
    'Failed to set block restriction: Block restrictions can only be set on block hosting volumes\n',
  )
  t.equal(
    (await app.call('POST', `/volumes/${srcId}/block-restriction`, { restriction: 'x' })).statusCode,
    400,
  )
  t.equal((await app.run('DELETE', `/volumes/${cloneId}`)).statusCode, 204)
  t.equal((await app.run('DELETE', `/volumes/${srcId}`)).statusCode, 204)
  const db = await app.run('POST', '/volumes', { size: 1, name: 'heketidbstorage' })
  const dbId = db.location!.split('/').pop()!
  const refused = await app.call('DELETE', `/volumes/${dbId}`)
  t.equal(refused.statusCode, 409)
  t.equal(refused.body, 'Cannot delete volume containing the Heketi database\n')
  const block = await app.run('POST', '/volumes', { size: 10, block: true })
  const blockId = block.location!.split('/').pop()!
  const bi = (await app.call('GET', `/volumes/${blockId}`)).json()
  t.same(bi.blockinfo, { freesize: 9, reservedsize: 1 })
  t.same(bi.glustervolumeoptions, ['', 'group gluster-block', ''])
  t.equal(
    (await app.run('POST', `/volumes/${blockId}/block-restriction`, { restriction: 'locked' })).statusCode,
    303,
  )
  t.equal((await app.call('GET', `/volumes/${blockId}`)).json().blockinfo.restriction, 'locked')
  t.equal(
    (await app.run('POST', `/volumes/${blockId}/clone`, {})).body,
    `Failed clone volume ${blockId}: Cloning of block hosting volumes is not supported\n`,
  )
})

t.test('the read body cache never outlives a commit', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  const created = await app.run('POST', '/volumes', {
    size: 1,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  t.equal(created.statusCode, 303, created.body)
  const id = created.location!.split('/').pop()!
  const first = await app.call('GET', `/volumes/${id}`)
  const hits = app.bodies.hits
  const again = await app.call('GET', `/volumes/${id}`)
  t.equal(app.bodies.hits, hits + 1, 'the second read came from the cache')
  t.equal(again.body, first.body, 'byte for byte')
  t.equal((await app.call('GET', '/volumes')).json().volumes.length, 1)

  // a commit that touches only a node changes the volume's mount hosts
  const node = await app.run('POST', '/nodes', {
    zone: 1,
    hostnames: { manage: ['node9.example.com'], storage: ['10.0.0.99'] },
    cluster: topo.cluster,
  })
  t.equal(node.statusCode, 303, node.body)
  const hosts = (await app.call('GET', `/volumes/${id}`)).json().mount.glusterfs.hosts
  t.ok(hosts.includes('10.0.0.99'), 'the new node is in the mount hosts right after its commit')

  // a delete: the list and the volume answer the new state at once
  t.equal((await app.run('DELETE', `/volumes/${id}`)).statusCode, 204)
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [] })
  t.equal((await app.call('GET', `/volumes/${id}`)).statusCode, 404)
})
