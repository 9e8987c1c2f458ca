import t from 'tap'
import { makeApp, makeTopology } from './helpers/app.ts'

t.test('hello needs no token, clusters do', async (t) => {
  const app = await makeApp(t)
  const hello = await app.app.inject({ method: 'GET', url: '/hello' })
  t.equal(hello.statusCode, 200)
  t.equal(hello.body, 'Hello from Heketi')
  t.equal(hello.headers['content-type'], 'text/plain; charset=UTF-8')
  const noAuth = await app.app.inject({ method: 'GET', url: '/clusters' })
  t.equal(noAuth.statusCode, 401)
  t.equal(noAuth.body, 'Required authorization token not found\n')
  t.equal(noAuth.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(noAuth.headers['x-content-type-options'], 'nosniff')
})

t.test('cluster lifecycle', async (t) => {
  const app = await makeApp(t)
  t.equal((await app.call('POST', '/clusters')).statusCode, 422)
  const created = await app.call('POST', '/clusters', {})
  t.equal(created.statusCode, 201)
  t.equal(created.headers['content-type'], 'application/json; charset=UTF-8')
  const c = created.json()
  t.match(c.id, /^[0-9a-f]{32}$/)
  t.equal(
    created.body,
    `{"id":"${c.id}","nodes":[],"volumes":[],"block":false,"file":false,"blockvolumes":[]}\n`,
  )
  t.same((await app.call('GET', '/clusters')).json(), { clusters: [c.id] })
  const flags = await app.call('POST', `/clusters/${c.id}/flags`, { block: true, file: true })
  t.equal(flags.statusCode, 200)
  t.equal(flags.body, '')
  t.same((await app.call('GET', `/clusters/${c.id}`)).json().file, true)
  t.equal((await app.call('GET', `/clusters/${'0'.repeat(32)}`)).body, 'Id not found\n')
  t.equal((await app.call('GET', '/clusters/xyz')).body, 'Invalid path or request\n')
  t.equal((await app.call('DELETE', `/clusters/${c.id}`)).statusCode, 200)
  t.same((await app.call('GET', '/clusters')).json(), { clusters: [] })
})

t.test('nodes and devices', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 3, devices: 2 })
  const node = (await app.call('GET', `/nodes/${topo.nodes[0]}`)).json()
  t.equal(node.state, 'online')
  t.equal(node.devices.length, 2)
  t.same(node.devices[0].storage, { total: 524288000, free: 524288000, used: 0 })
  t.notOk('tags' in node)
  const dup = await app.call('POST', '/nodes', {
    zone: 1,
    hostnames: { manage: ['node0.example.com'], storage: ['10.9.9.9'] },
    cluster: topo.cluster,
  })
  t.equal(dup.statusCode, 409)
  t.equal(dup.body, `Hostname node0.example.com already used by node with id ${topo.nodes[0]}\n\n`)
  const bad = await app.call('POST', '/nodes', {
    zone: 0,
    hostnames: { manage: [], storage: ['a b'] },
    cluster: 'x',
  })
  t.equal(bad.statusCode, 400)
  t.equal(
    bad.body,
    'validation failed: cluster: x is not a valid UUID; hostnames: (manage: cannot be blank; storage: [a b] is not a valid storage hostname.); zone: cannot be blank.\n',
  )
  const del = await app.call('DELETE', `/clusters/${topo.cluster}`)
  t.equal(del.statusCode, 409)
  const devDel = await app.run('DELETE', `/devices/${topo.devices[0]}`)
  t.equal(devDel.statusCode, 400)
  t.equal(devDel.body, `device: ${topo.devices[0]} is not in failed state\n`)
  t.equal((await app.run('POST', `/devices/${topo.devices[0]}/state`, { state: 'offline' })).statusCode, 204)
  t.equal((await app.run('POST', `/devices/${topo.devices[0]}/state`, { state: 'failed' })).statusCode, 204)
  t.equal((await app.run('DELETE', `/devices/${topo.devices[0]}`)).statusCode, 204)
  const tags = await app.call('POST', `/nodes/${topo.nodes[0]}/tags`, {
    change_type: 'set',
    tags: { z: '1', a: '2' },
  })
  t.equal(tags.body, '{"a":"2","z":"1"}\n')
})

t.test('node add needs a live peer when the cluster has nodes', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 1, devices: 0 })
  t.equal((await app.run('POST', `/nodes/${topo.nodes[0]}/state`, { state: 'offline' })).statusCode, 204)
  const res = await app.call('POST', '/nodes', {
    zone: 1,
    hostnames: { manage: ['late.example.com'], storage: ['10.0.9.9'] },
    cluster: topo.cluster,
  })
  t.equal(res.statusCode, 400)
  t.equal(res.body, 'None of the nodes in cluster has glusterd running\n')
  // the refused add left no hostname registration behind
  t.equal((await app.run('POST', `/nodes/${topo.nodes[0]}/state`, { state: 'online' })).statusCode, 204)
  const again = await app.run('POST', '/nodes', {
    zone: 1,
    hostnames: { manage: ['late.example.com'], storage: ['10.0.9.9'] },
    cluster: topo.cluster,
  })
  t.equal(again.statusCode, 303)
})
