// heketi's wire rules, seen through app.inject(): routing quirks, body
// decoding, content types and escaping, the async queue protocol, admin
// modes, logging, metrics, DB routes, state transitions, tags and the
// synchronous 409s.
import t, { type Test } from 'tap'
import { signToken } from '../api/auth.ts'
import { MockExecutor } from '../executors/mock.ts'
import { ADMIN_KEY, makeApp, makeTopology, type TestApp } from './helpers/app.ts'

const HEX32 = /^[0-9a-f]{32}$/
const UNKNOWN = '0123456789abcdef0123456789abcdef'

interface SendOptions {
  body?: string
  headers?: Record<string, string>
  remoteAddress?: string
  /** sign no token */
  anonymous?: boolean
}

/** A raw admin request: the body is sent as given, with only the headers given. */
async function send(app: TestApp, method: string, url: string, opts: SendOptions = {}) {
  const path = url.split('?')[0]!
  const auth = opts.anonymous
    ? {}
    : { authorization: `bearer ${signToken('admin', ADMIN_KEY, method, path)}` }
  return app.app.inject({
    method: method as never,
    url,
    headers: { ...auth, ...opts.headers },
    payload: opts.body,
    ...(opts.remoteAddress ? { remoteAddress: opts.remoteAddress } : {}),
  })
}

/** Poll a /queue/<id> Location until it stops answering X-Pending. */
async function poll(app: TestApp, location: string) {
  for (;;) {
    const res = await app.call('GET', location)
    if (res.headers['x-pending'] !== 'true') return res
    await new Promise((r) => setTimeout(r, 5))
  }
}

function isPlainError(t: Test, res: { headers: Record<string, unknown> }) {
  t.equal(res.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(res.headers['x-content-type-options'], 'nosniff')
}

t.test('routing: 404, 405, 301 and id patterns', async (t) => {
  const app = await makeApp(t)
  const unknown = await send(app, 'GET', '/no/such/path')
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.body, 'Invalid path or request\n')
  isPlainError(t, unknown)

  const put = await send(app, 'PUT', '/volumes')
  t.equal(put.statusCode, 405)
  t.equal(put.body, '')
  t.notOk(put.headers['content-type'], 'no content type on 405')
  t.equal((await send(app, 'PATCH', `/clusters/${UNKNOWN}`)).statusCode, 405)
  t.equal((await send(app, 'DELETE', '/clusters')).statusCode, 405)

  // POST /hello is not the public route: it is authenticated, then no
  // route of the API router matches it
  const postHello = await send(app, 'POST', '/hello', { body: '{}' })
  t.equal(postHello.statusCode, 404, 'POST /hello falls through to the API router')
  t.equal(postHello.body, 'Invalid path or request\n')
  t.equal((await send(app, 'POST', '/metrics', { body: '{}' })).statusCode, 404, 'POST /metrics too')

  const slash = await send(app, 'GET', '/volumes/')
  t.equal(slash.statusCode, 301)
  t.equal(slash.headers['location'], '/volumes')
  const double = await send(app, 'GET', '//volumes')
  t.equal(double.statusCode, 301)
  t.equal(double.headers['location'], '/volumes')
  // `/a/../volumes` is checked over real HTTP in server-process.test.ts (inject resolves dot segments)
  t.equal((await send(app, 'GET', '//volumes', { anonymous: true })).statusCode, 301, 'cleaned before auth')

  for (const path of ['/volumes/xyz', '/clusters/not-hex', `/nodes/${UNKNOWN}g`, '/queue/zz']) {
    const res = await send(app, 'GET', path)
    t.equal(res.statusCode, 404, path)
    t.equal(res.body, 'Invalid path or request\n')
  }
  const del = await send(app, 'DELETE', '/volumes/xyz')
  t.equal(del.body, 'Invalid path or request\n')
  const missing = await send(app, 'DELETE', `/volumes/${UNKNOWN}`)
  t.equal(missing.statusCode, 404)
  t.equal(missing.body, 'Id not found\n')
  isPlainError(t, missing)

  const cluster = (await app.call('POST', '/clusters', {})).json().id as string
  t.equal((await send(app, 'GET', `/clusters/${cluster}`)).statusCode, 200)
  const upper = await send(app, 'GET', `/clusters/${cluster.toUpperCase()}`)
  t.equal(upper.statusCode, 404, 'upper-case ids match the route but are not found')
  t.equal(upper.body, 'Id not found\n')
  t.equal(
    (await send(app, 'GET', '/clusters/abc')).body,
    'Id not found\n',
    'any hex length reaches the handler',
  )
})

t.test('request bodies: any content type, Go decoding', async (t) => {
  const app = await makeApp(t)
  const contentTypes: Record<string, string>[] = [
    {},
    { 'content-type': 'text/plain' },
    { 'content-type': 'application/json' },
  ]
  for (const headers of contentTypes) {
    const res = await send(app, 'POST', '/clusters', { body: '{"file":true}', headers })
    t.equal(res.statusCode, 201, JSON.stringify(headers))
    t.equal(res.json().file, true)
    t.equal(res.json().block, false)
  }
  const odd = await send(app, 'POST', '/clusters', {
    body: '{"block":true}',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  })
  t.equal(odd.statusCode, 201, 'even a form content type is read as JSON')
  t.equal(odd.json().block, true)

  const upper = await send(app, 'POST', '/clusters', { body: '{"FILE":true,"Block":true,"extra":1}' })
  t.equal(upper.statusCode, 201)
  t.equal(upper.json().file, true, 'keys match case-insensitively')
  t.equal(upper.json().block, true)

  const nulls = await send(app, 'POST', '/clusters', { body: '{"file":null}' })
  t.equal(nulls.statusCode, 201)
  t.equal(nulls.json().file, false)

  for (const body of ['', '   ', 'not json', '{"file":"yes"}', '[]', '{"file":true']) {
    const res = await send(app, 'POST', '/clusters', {
      body,
      headers: { 'content-type': 'application/json' },
    })
    t.equal(res.statusCode, 422, JSON.stringify(body))
    t.equal(res.body, 'request unable to be parsed\n')
    isPlainError(t, res)
  }
  t.equal((await send(app, 'POST', '/clusters')).statusCode, 422, 'no body at all')

  // the Python client sends {} on GET and DELETE
  const list = await send(app, 'GET', '/clusters', { body: '{}' })
  t.equal(list.statusCode, 200)
  const id = upper.json().id as string
  t.equal((await send(app, 'GET', `/clusters/${id}`, { body: '{}' })).statusCode, 200)
  t.equal((await send(app, 'GET', '/volumes', { body: 'not even json' })).statusCode, 200)
  const del = await send(app, 'DELETE', `/clusters/${id}`, { body: '{}' })
  t.equal(del.statusCode, 200)
  t.equal(del.body, '')
  t.notOk(del.headers['content-type'], 'cluster delete has no content type')
})

t.test('response bodies: content types, newline, escaping', async (t) => {
  const app = await makeApp(t)
  const created = await app.call('POST', '/clusters', { block: true, file: true })
  t.equal(created.headers['content-type'], 'application/json; charset=UTF-8')
  t.ok(created.body.endsWith('}\n'))
  t.notOk(created.body.endsWith('\n\n'))
  t.notOk(created.body.includes('\n  '), 'compact')
  const list = await app.call('GET', '/clusters')
  t.equal(list.headers['content-type'], 'application/json; charset=UTF-8')
  t.equal(list.body, `{"clusters":["${created.json().id}"]}\n`)

  const flags = await app.call('POST', `/clusters/${created.json().id}/flags`, { block: false, file: true })
  t.equal(flags.statusCode, 200)
  t.equal(flags.body, '')
  t.equal(flags.headers['content-type'], 'application/json; charset=UTF-8')

  const topo = await makeTopology(app, { nodes: 1, devices: 1 })
  const tags = await app.call('POST', `/nodes/${topo.nodes[0]}/tags`, {
    change_type: 'set',
    tags: { zeta: 'a<b&c>', alpha: '"quoted"' },
  })
  t.equal(tags.statusCode, 200)
  t.equal(tags.body, '{"alpha":"\\"quoted\\"","zeta":"a\\u003cb\\u0026c\\u003e"}\n', 'escaped, keys sorted')
  t.same(tags.json(), { alpha: '"quoted"', zeta: 'a<b&c>' })
  const node = await app.call('GET', `/nodes/${topo.nodes[0]}`)
  t.ok(node.body.includes('"tags":{"alpha":"\\"quoted\\"","zeta":"a\\u003cb\\u0026c\\u003e"}'))
  t.notOk(/[<>&]/.test(node.body), 'no raw <, > or & anywhere')

  const hello = await app.app.inject({ method: 'GET', url: '/hello' })
  t.equal(hello.headers['content-type'], 'text/plain; charset=UTF-8')
  t.equal(hello.body, 'Hello from Heketi')
})

t.test('queue protocol', async (t) => {
  const app = await makeApp(t, { executor: new MockExecutor({ delayMs: 300 }) })
  const cluster = (await app.call('POST', '/clusters', { block: true, file: true })).json().id as string
  const hostnames = (i: number) => ({ manage: [`node${i}.example.com`], storage: [`10.0.0.${i + 1}`] })
  const first = await app.run('POST', '/nodes', { zone: 1, hostnames: hostnames(0), cluster })
  t.equal(first.statusCode, 303)
  const firstNode = first.location!.split('/').pop()!

  // the second node is peer-probed from the first: the job takes 300 ms
  const started = await app.call('POST', '/nodes', { zone: 2, hostnames: hostnames(1), cluster })
  t.equal(started.statusCode, 202)
  t.equal(started.body, '')
  t.notOk(started.headers['content-type'], 'no body, no content type')
  const location = started.headers['location'] as string
  t.match(location, /^\/queue\/[0-9a-f]{32}$/)

  const pending = await app.call('GET', location)
  t.equal(pending.statusCode, 200)
  t.equal(pending.headers['x-pending'], 'true')
  t.equal(pending.body, '')

  const done = await poll(app, location)
  t.equal(done.statusCode, 303)
  t.notOk(done.headers['x-pending'], 'no X-Pending on completion')
  const nodeLocation = done.headers['location'] as string
  t.match(nodeLocation, /^\/nodes\/[0-9a-f]{32}$/)
  t.equal(done.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(done.body, `<a href="${nodeLocation}">See Other</a>.\n\n`)
  t.equal((await app.call('GET', nodeLocation)).statusCode, 200)

  const again = await app.call('GET', location)
  t.equal(again.statusCode, 404)
  t.equal(again.body, 'Id not found\n')
  isPlainError(t, again)
  t.equal((await app.call('GET', `/queue/${UNKNOWN}`)).body, 'Id not found\n')

  // no result: 204 without body, reported once
  const nodeId = nodeLocation.split('/').pop()!
  const adding = await app.call('POST', '/devices', { name: '/dev/sdb', node: nodeId })
  t.equal(adding.statusCode, 202)
  const addPending = await app.call('GET', adding.headers['location'] as string)
  t.equal(addPending.headers['x-pending'], 'true')
  const added = await poll(app, adding.headers['location'] as string)
  t.equal(added.statusCode, 204)
  t.equal(added.body, '')
  t.notOk(added.headers['location'])
  t.equal((await app.call('GET', adding.headers['location'] as string)).statusCode, 404)

  // a failure is reported once as 500 + text
  const failing = await app.call('POST', `/nodes/${nodeId}/state`, { state: 'failed' })
  t.equal(failing.statusCode, 202)
  const failed = await poll(app, failing.headers['location'] as string)
  t.equal(failed.statusCode, 500)
  t.equal(failed.body, `Node must be offline before remove operation is performed, node:${nodeId}\n`)
  isPlainError(t, failed)
  t.equal((await app.call('GET', failing.headers['location'] as string)).statusCode, 404)

  const deleting = await app.call('DELETE', `/nodes/${firstNode}`)
  t.equal(deleting.statusCode, 202)
  t.equal((await poll(app, deleting.headers['location'] as string)).statusCode, 204)
})

t.test('device resync: a GET that answers 202 with an HTML body', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 1, devices: 1 })
  const res = await app.call('GET', `/devices/${topo.devices[0]}/resync`)
  t.equal(res.statusCode, 202)
  const location = res.headers['location'] as string
  t.match(location, /^\/queue\/[0-9a-f]{32}$/)
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(res.body, `<a href="${location}">Accepted</a>.\n\n`)
  t.equal((await poll(app, location)).statusCode, 204)
  const missing = await app.call('GET', `/devices/${UNKNOWN}/resync`)
  t.equal(missing.statusCode, 404)
  t.equal(missing.body, 'Id not found\n')
})

t.test('admin state: read-only', async (t) => {
  const app = await makeApp(t)
  t.equal((await app.call('GET', '/admin')).body, '{"state":"normal"}\n')
  const set = await app.call('POST', '/admin', { state: 'read-only' })
  t.equal(set.statusCode, 204)
  t.equal(set.body, '')
  t.equal((await app.call('GET', '/admin')).body, '{"state":"read-only"}\n')

  const write = await app.call('POST', '/clusters', {})
  t.equal(write.statusCode, 503)
  t.equal(write.body, 'Service disabled for maintenance\n')
  isPlainError(t, write)
  t.equal((await app.call('GET', '/clusters')).statusCode, 200)
  t.equal((await app.call('DELETE', `/volumes/${UNKNOWN}`)).statusCode, 503)
  const back = await app.call('POST', '/admin', { state: 'normal' })
  t.equal(back.statusCode, 503, 'even POST /admin is refused')
  t.equal(back.body, 'Service disabled for maintenance\n')

  const badToken = await send(app, 'POST', '/clusters', { anonymous: true, body: '{}' })
  t.equal(badToken.statusCode, 401, 'authentication before the gate')
  t.equal((await app.app.inject({ method: 'GET', url: '/hello' })).statusCode, 200)
  t.equal((await app.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200)
})

t.test('admin state: local-client', async (t) => {
  const app = await makeApp(t)
  t.equal((await app.call('POST', '/admin', { state: 'local-client' })).statusCode, 204)
  const local = await send(app, 'POST', '/clusters', { body: '{}' })
  t.equal(local.statusCode, 201, 'inject comes from 127.0.0.1')
  const remote = await send(app, 'POST', '/clusters', { body: '{}', remoteAddress: '10.1.2.3' })
  t.equal(remote.statusCode, 503)
  t.equal(remote.body, 'Service disabled for maintenance\n')
  t.equal((await send(app, 'GET', '/clusters', { remoteAddress: '10.1.2.3' })).statusCode, 200)
  const forwarded = await send(app, 'POST', '/clusters', {
    body: '{}',
    remoteAddress: '10.1.2.3',
    headers: { 'x-forwarded-for': '127.0.0.1' },
  })
  t.equal(forwarded.statusCode, 503, 'X-Forwarded-For is not trusted')
  t.equal((await send(app, 'POST', '/clusters', { body: '{}', remoteAddress: '::1' })).statusCode, 201)
  t.equal(
    (await send(app, 'POST', '/admin', { body: '{"state":"normal"}', remoteAddress: '10.1.2.3' })).statusCode,
    503,
  )
  t.equal((await send(app, 'POST', '/admin', { body: '{"state":"normal"}' })).statusCode, 204)
  t.equal((await send(app, 'POST', '/clusters', { body: '{}', remoteAddress: '10.1.2.3' })).statusCode, 201)
})

t.test('admin state: request errors', async (t) => {
  const app = await makeApp(t)
  const bad = await app.call('POST', '/admin', { state: 'bogus' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.body, 'validation failed: state: must be a valid value.\n')
  isPlainError(t, bad)
  const blank = await app.call('POST', '/admin', {})
  t.equal(blank.statusCode, 400)
  t.equal(blank.body, 'validation failed: state: cannot be blank.\n')
  const notJson = await app.call('POST', '/admin', 'state=normal')
  t.equal(notJson.statusCode, 400)
  t.match(notJson.body, /^request unable to be parsed: .+\n$/)
  const empty = await app.call('POST', '/admin', '')
  t.equal(empty.statusCode, 400)
  t.match(empty.body, /^request unable to be parsed: /)
  t.equal((await app.call('GET', '/admin')).body, '{"state":"normal"}\n')
})

t.test('/internal/logging', async (t) => {
  const app = await makeApp(t)
  const get = await app.call('GET', '/internal/logging')
  t.equal(get.statusCode, 200)
  t.equal(get.body, '{"loglevel":{"glusterfs":"info"}}\n')
  t.equal(get.headers['content-type'], 'application/json; charset=UTF-8')

  const other = await app.call('POST', '/internal/logging', { loglevel: { foo: 'debug' } })
  t.equal(other.statusCode, 422)
  t.equal(other.body, 'Only "glusterfs" logger may be modified\n')
  isPlainError(t, other)
  const none = await app.call('POST', '/internal/logging', {})
  t.equal(none.statusCode, 422)
  t.equal(none.body, 'Only "glusterfs" logger may be modified\n')
  const loud = await app.call('POST', '/internal/logging', { loglevel: { glusterfs: 'loud' } })
  t.equal(loud.statusCode, 422)
  t.equal(loud.body, 'invalid log level: loud\n')
  const garbage = await app.call('POST', '/internal/logging', 'loud please')
  t.equal(garbage.statusCode, 400)
  t.match(garbage.body, /^request unable to be parsed: .+\n$/)

  // levels that keep the silent test logger quiet
  const critical = await app.call('POST', '/internal/logging', { loglevel: { glusterfs: 'critical' } })
  t.equal(critical.statusCode, 200)
  t.equal(critical.body, '{"loglevel":{"glusterfs":"critical"}}\n')
  const unchanged = await app.call('POST', '/internal/logging', { loglevel: { glusterfs: '' } })
  t.equal(unchanged.body, '{"loglevel":{"glusterfs":"critical"}}\n', '"" changes nothing')
  t.equal((await app.call('POST', '/internal/logging', { loglevel: { glusterfs: 'none' } })).statusCode, 200)
  t.equal((await app.call('GET', '/internal/logging')).body, '{"loglevel":{"glusterfs":"none"}}\n')
})

t.test('/metrics needs no token and carries heketi series', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 1, devices: 1 })
  const res = await app.app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = res.body
  t.match(text, /^heketi_up 1$/m)
  t.match(text, /^# HELP heketi_up Is heketi running\?$/m)
  t.match(text, /^# TYPE heketi_up gauge$/m)
  t.match(text, /^heketi_cluster_count 1$/m)
  t.match(text, /^heketi_operations_inFlight_count 0$/m)
  t.match(text, /^heketi_operations_total_count 0$/m)
  t.match(text, new RegExp(`^heketi_nodes_count\\{cluster="${topo.cluster}"\\} 1$`, 'm'))
  const free = /^heketi_device_free\{([^}]*)\} (\S+)$/m.exec(text)
  t.ok(free, 'a heketi_device_free series')
  const labels = Object.fromEntries(
    [...free![1]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!] as [string, string]),
  )
  t.same(Object.keys(labels).sort(), ['cluster', 'device', 'hostname', 'id', 'pv_uuid', 'storage_hostname'])
  t.same(labels, {
    cluster: topo.cluster,
    hostname: 'node0.example.com',
    storage_hostname: '10.0.0.1',
    id: topo.devices[0],
    device: '/dev/sdb',
    pv_uuid: '',
  })
  t.equal(Number(free![2]), 524288000)
  t.match(text, /^heketi_device_free_bytes\{[^}]*\} /m)
  t.match(text, /^heketi_device_brick_count\{[^}]*\} 0$/m)
  t.match(text, /^heketi_device_count\{[^}]*\} 1$/m)
})

t.test('DB routes', async (t) => {
  const app = await makeApp(t)
  await makeTopology(app, { nodes: 1, devices: 1 })
  const backup = await app.call('GET', '/backup/db')
  t.equal(backup.statusCode, 200)
  t.equal(backup.headers['content-type'], 'application/octet-stream')
  t.equal(backup.headers['content-disposition'], 'attachment; filename="heketi.db"')
  const raw = await send(app, 'GET', '/backup/db')
  t.ok(raw.rawPayload.length > 0)
  t.equal(Number(raw.headers['content-length']), raw.rawPayload.length)

  const dump = await app.call('GET', '/db/dump')
  t.equal(dump.statusCode, 200)
  t.equal(dump.headers['content-type'], 'application/json; charset=UTF-8')
  const parsed = dump.json()
  t.same(Object.keys(parsed).sort(), [
    'blockvolumeentries',
    'brickentries',
    'clusterentries',
    'dbattributeentries',
    'deviceentries',
    'nodeentries',
    'pendingoperations',
    'volumeentries',
  ])
  t.ok(dump.body.startsWith('{\n    "'), '4-space indentation')
  t.equal(dump.body, `${JSON.stringify(parsed, null, 4)}\n`)
  t.equal(Object.keys(parsed.clusterentries).length, 1)
  t.equal(Object.keys(parsed.nodeentries).length, 1)
  t.equal(Object.keys(parsed.deviceentries).length, 1)

  const check = await app.call('GET', '/db/check')
  t.equal(check.statusCode, 200)
  t.ok(check.body.startsWith('{\n    "'), '4-space indentation')
  t.equal(check.json().totalinconsistencies, 0)
})

t.test('node state transitions (heketi-api §9.4)', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 1, devices: 2 })
  const node = topo.nodes[0]!
  const state = async () => (await app.call('GET', `/nodes/${node}`)).json().state as string
  const to = (s: string, healcheck?: string) =>
    app.run('POST', `/nodes/${node}/state`, healcheck === undefined ? { state: s } : { state: s, healcheck })

  t.equal((await to('online')).statusCode, 204, 'online → online is a no-op')
  const onlineToFailed = await to('failed')
  t.equal(onlineToFailed.statusCode, 500)
  t.equal(onlineToFailed.body, `Node must be offline before remove operation is performed, node:${node}\n`)
  t.equal(await state(), 'online')
  t.equal((await to('offline')).statusCode, 204)
  t.equal(await state(), 'offline')
  t.equal((await to('offline')).statusCode, 204, 'offline → offline')
  t.equal((await to('online')).statusCode, 204)
  t.equal(await state(), 'online')
  t.equal((await to('offline', 'disable')).statusCode, 204)
  t.equal((await to('failed', 'enable')).statusCode, 204, 'offline → failed removes the (empty) devices')
  t.equal(await state(), 'failed')
  for (const d of (await app.call('GET', `/nodes/${node}`)).json().devices) t.equal(d.state, 'failed')
  t.equal((await to('failed')).statusCode, 204, 'failed → failed')
  const toOnline = await to('online')
  t.equal(toOnline.statusCode, 500)
  t.equal(toOnline.body, 'Cannot move a failed/removed node to online state\n')
  const toOffline = await to('offline')
  t.equal(toOffline.statusCode, 500)
  t.equal(toOffline.body, 'Cannot move a failed/removed node to offline state\n')
  t.equal(await state(), 'failed')

  const cases: [unknown, string][] = [
    [{}, 'validation failed: state: cannot be blank.'],
    [{ state: 'broken' }, 'validation failed: state: broken is not valid state.'],
    [
      { state: 'online', healcheck: 'maybe' },
      'validation failed: healcheck: maybe is not valid heal info check.',
    ],
    [
      { state: 'x', healcheck: 'y' },
      'validation failed: healcheck: y is not valid heal info check; state: x is not valid state.',
    ],
  ]
  for (const [body, text] of cases) {
    const res = await app.call('POST', `/nodes/${node}/state`, body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.equal(res.body, `${text}\n`)
  }
  t.equal((await app.call('POST', `/nodes/${node}/state`, '')).statusCode, 422)
  const missing = await app.call('POST', `/nodes/${UNKNOWN}/state`, { state: 'offline' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.body, 'Id not found\n')
})

t.test('device state transitions (heketi-api §10.4)', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 1, devices: 1 })
  const device = topo.devices[0]!
  const state = async () => (await app.call('GET', `/devices/${device}`)).json().state as string
  const to = (s: string) => app.run('POST', `/devices/${device}/state`, { state: s })

  t.equal((await to('online')).statusCode, 204)
  const onlineToFailed = await to('failed')
  t.equal(onlineToFailed.statusCode, 500)
  t.equal(
    onlineToFailed.body,
    `Device must be offline before remove operation is performed, device:${device}\n`,
  )
  t.equal((await to('offline')).statusCode, 204)
  t.equal(await state(), 'offline')
  t.equal((await to('online')).statusCode, 204)
  t.equal(await state(), 'online')
  t.equal((await to('offline')).statusCode, 204)
  t.equal((await to('failed')).statusCode, 204, 'offline → failed with no bricks')
  t.equal(await state(), 'failed')
  t.equal((await to('failed')).statusCode, 204, 'failed → failed')
  const toOnline = await to('online')
  t.equal(toOnline.statusCode, 500)
  t.equal(toOnline.body, 'Cannot move a failed/removed device to online state\n')
  t.equal((await to('offline')).statusCode, 204, 'failed → offline is allowed for devices')
  t.equal(await state(), 'offline')

  const bad = await app.call('POST', `/devices/${device}/state`, { state: 'gone' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.body, 'validation failed: state: gone is not valid state.\n')
  t.equal((await app.call('POST', `/devices/${UNKNOWN}/state`, { state: 'offline' })).body, 'Id not found\n')
})

t.test('removing a device or node whose bricks cannot move', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  const vol = await app.run('POST', '/volumes', {
    size: 1,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  t.equal(vol.statusCode, 303, vol.body)
  const device = topo.devices[0]!
  t.equal((await app.run('POST', `/devices/${device}/state`, { state: 'offline' })).statusCode, 204)
  const res = await app.run('POST', `/devices/${device}/state`, { state: 'failed' })
  t.equal(res.statusCode, 500)
  t.equal(
    res.body,
    `Unable to delete device [${device}] as no device was found to replace it: No Replacement was found for resource requested to be removed\n`,
  )
  t.equal((await app.call('GET', `/devices/${device}`)).json().state, 'offline', 'left offline')

  const node = topo.nodes[1]!
  const nodeDevice = (await app.call('GET', `/nodes/${node}`)).json().devices[0].id as string
  t.equal((await app.run('POST', `/nodes/${node}/state`, { state: 'offline' })).statusCode, 204)
  const nodeRes = await app.run('POST', `/nodes/${node}/state`, { state: 'failed' })
  t.equal(nodeRes.statusCode, 500)
  t.equal(
    nodeRes.body,
    `Unable to remove node [${node}] as no device was found to replace device [${nodeDevice}]\n`,
  )
})

t.test('tags: set, update, delete and validation', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 1, devices: 1 })
  for (const [kind, id] of [
    ['nodes', topo.nodes[0]!],
    ['devices', topo.devices[0]!],
  ] as const) {
    const tag = (body: unknown) => app.call('POST', `/${kind}/${id}/tags`, body)
    const set = await tag({ change_type: 'set', tags: { b: '2', a: '1' } })
    t.equal(set.statusCode, 200)
    t.equal(set.body, '{"a":"1","b":"2"}\n')
    t.equal(
      (await tag({ change_type: 'update', tags: { b: '3', c: '4' } })).body,
      '{"a":"1","b":"3","c":"4"}\n',
    )
    t.equal(
      (await tag({ change_type: 'delete', tags: { a: 'ignored', zz: '' } })).body,
      '{"b":"3","c":"4"}\n',
    )
    t.same((await app.call('GET', `/${kind}/${id}`)).json().tags, { b: '3', c: '4' })
    t.equal((await tag({ change_type: 'set' })).body, '{}\n', 'set without tags clears')
    t.notOk('tags' in (await app.call('GET', `/${kind}/${id}`)).json(), 'tags omitted when empty')

    const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`t${i}`, 'v']))
    const tooMany = await tag({ change_type: 'update', tags: many })
    t.equal(tooMany.statusCode, 400)
    t.equal(tooMany.body, 'validation failed: tags: too many tags specified (33), up to 32 supported.\n')
    const cases: [unknown, string][] = [
      [{ tags: { a: '1' } }, 'validation failed: change_type: cannot be blank.'],
      [{ change_type: 'merge' }, 'validation failed: change_type: must be a valid value.'],
      [
        { change_type: 'set', tags: { 'a b': '1' } },
        'validation failed: tags: invalid characters in tag name a b.',
      ],
      [
        { change_type: 'set', tags: { ['k'.repeat(33)]: '1' } },
        `validation failed: tags: tag name ${'k'.repeat(33)}: the length must be between 1 and 32.`,
      ],
      [
        { change_type: 'set', tags: { k: 'v'.repeat(65) } },
        'validation failed: tags: value of tag k: the length must be no more than 64.',
      ],
    ]
    for (const [body, text] of cases) {
      const res = await tag(body)
      t.equal(res.statusCode, 400, JSON.stringify(body))
      t.equal(res.body, `${text}\n`)
    }
    t.equal((await tag({ change_type: 'set', tags: { k: 'v'.repeat(64) } })).statusCode, 200, '64 chars ok')
    t.equal(
      (await app.call('POST', `/${kind}/${UNKNOWN}/tags`, { change_type: 'set' })).body,
      'Id not found\n',
    )
  }
})

t.test('synchronous 409s: cluster, node and device delete', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })

  const cluster = await app.call('DELETE', `/clusters/${topo.cluster}`)
  t.equal(cluster.statusCode, 409)
  t.equal(
    cluster.body,
    `Unable to delete cluster [${topo.cluster}] because it contains volumes and/or nodes\n`,
  )
  isPlainError(t, cluster)

  const node = await app.call('DELETE', `/nodes/${topo.nodes[0]}`)
  t.equal(node.statusCode, 409)
  t.equal(node.body, `Unable to delete node [${topo.nodes[0]}] because it contains devices\n`)

  const vol = await app.run('POST', '/volumes', {
    size: 1,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  t.equal(vol.statusCode, 303, vol.body)
  const device = topo.devices[0]!
  const online = await app.call('DELETE', `/devices/${device}`)
  t.equal(online.statusCode, 400)
  t.equal(online.body, `device: ${device} is not in failed state\n`)
  // a failed device that still holds bricks (as after an import, or a
  // removal that left a brick behind): set up directly in the store
  await app.ctx.store.write((tx) => {
    const d = tx.get('device', device)!
    tx.put('device', device, { ...d, state: 'failed' })
  })
  const withBricks = await app.call('DELETE', `/devices/${device}`)
  t.equal(withBricks.statusCode, 409)
  t.equal(withBricks.body, `Unable to delete device [${device}] because it contains bricks\n`)

  const missing = await app.call('DELETE', `/devices/${UNKNOWN}`)
  t.equal(missing.statusCode, 404)
  t.equal(missing.body, 'Id not found\n')
  t.match((await app.call('GET', '/volumes')).json().volumes[0], HEX32)
})
