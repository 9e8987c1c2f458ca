// heketi's clients against the block volume routes, replaying their exact
// call sequences (heketi-clients.md §2.7, §3.2/3.3, §4, §5.6): heketi-cli
// `blockvolume create/list/info/expand/delete` (Go client: JSON bodies,
// 5-minute tokens, 303 followed with a fresh token), the Python client (no
// Content-Type, `{}` bodies on GET/DELETE, one-second tokens, Location
// appended to the host), and the glusterblock provisioner's reads.
import t, { type Test } from 'tap'
import { signToken } from '../api/auth.ts'
import { ADMIN_KEY, makeApp, makeTopology, type TestApp } from './helpers/app.ts'

interface Sent {
  statusCode: number
  body: string
  headers: Record<string, unknown>
}

/** one request as a client sends it: token over METHOD&path, body and headers as given */
async function send(
  app: TestApp,
  method: string,
  path: string,
  opts: { body?: string; contentType?: string; lifetimeSec?: number } = {},
): Promise<Sent> {
  const token = signToken('admin', ADMIN_KEY, method, path.split('?')[0]!, opts.lifetimeSec ?? 300)
  const res = await app.app.inject({
    method: method as never,
    url: path,
    headers: {
      authorization: `bearer ${token}`,
      ...(opts.contentType ? { 'content-type': opts.contentType } : {}),
    },
    payload: opts.body,
  })
  return { statusCode: res.statusCode, body: res.body, headers: res.headers as Record<string, unknown> }
}

/** Go client: 202 required, poll every 400 ms (here: at once) until no X-Pending, follow a 303 */
async function goAsync(app: TestApp, method: string, path: string, body?: string): Promise<Sent> {
  const first = await send(app, method, path, { body, contentType: 'application/json' })
  if (first.statusCode !== 202) throw new Error(`Go client: ${first.body.trim()}`)
  const location = first.headers['location'] as string
  if (!/^\/queue\/[0-9a-f]{32}$/.test(location)) throw new Error(`bad Location ${location}`)
  for (let i = 0; i < 1000; i++) {
    const poll = await send(app, 'GET', location)
    if (poll.headers['x-pending'] === 'true') {
      if (poll.statusCode !== 200) throw new Error('X-Pending with a non-200 status')
      await new Promise((r) => setTimeout(r, 2))
      continue
    }
    // net/http follows the 303 with a GET and a fresh token (CheckRedirect)
    if (poll.statusCode === 303) return send(app, 'GET', poll.headers['location'] as string)
    return poll
  }
  throw new Error('never finished')
}

/** Python client: no Content-Type, json.dumps separators, `{}` on GET/DELETE, 1 s tokens */
async function pyRequest(app: TestApp, method: string, uri: string, data: unknown = {}): Promise<Sent> {
  const body = JSON.stringify(data).replaceAll('":', '": ').replaceAll(',"', ', "')
  const r = await send(app, method, uri, { body, lifetimeSec: 1 })
  if (r.statusCode >= 400) throw new Error(`HTTPError ${r.statusCode}`)
  if (r.statusCode !== 202) return r
  const location = r.headers['location'] as string
  for (let i = 0; i < 1000; i++) {
    // requests.get(host + location, allow_redirects=False): no body
    const poll = await send(app, 'GET', location, { lifetimeSec: 1 })
    if (poll.statusCode >= 400) throw new Error(`HTTPError ${poll.statusCode}`)
    if ('x-pending' in poll.headers) {
      await new Promise((r) => setTimeout(r, 2))
      continue
    }
    if (poll.statusCode === 303) return pyRequest(app, 'GET', poll.headers['location'] as string)
    return poll
  }
  throw new Error('never finished')
}

/** BlockVolumeInfoResponse decoded by encoding/json and re-encoded by `--json` (Go field order) */
function goBlockVolume(json: Record<string, any>) {
  const str = (v: unknown) => {
    if (v !== undefined && typeof v !== 'string') throw new Error(`not a string: ${v}`)
    return (v as string) ?? ''
  }
  const int = (v: unknown) => {
    if (v !== undefined && !Number.isInteger(v)) throw new Error(`not an int: ${v}`)
    return (v as number) ?? 0
  }
  const bv = json['blockvolume'] ?? {}
  const decoded = {
    size: int(json['size']),
    clusters: (json['clusters'] as string[] | undefined) ?? [],
    name: str(json['name']),
    hacount: int(json['hacount']),
    auth: json['auth'] === true,
    id: str(json['id']),
    blockvolume: {
      hosts: (bv['hosts'] as string[] | null) ?? null,
      iqn: str(bv['iqn']),
      lun: int(bv['lun']),
      username: str(bv['username']),
      password: str(bv['password']),
    },
    cluster: str(json['cluster']),
    blockhostingvolume: str(json['blockhostingvolume']),
    usablesize: int(json['usablesize']),
  }
  const reencoded = JSON.stringify({
    size: decoded.size,
    clusters: decoded.clusters.length > 0 ? decoded.clusters : undefined,
    name: decoded.name,
    hacount: decoded.hacount || undefined,
    auth: decoded.auth || undefined,
    id: decoded.id,
    blockvolume: decoded.blockvolume,
    cluster: decoded.cluster || undefined,
    blockhostingvolume: decoded.blockhostingvolume || undefined,
    usablesize: decoded.usablesize || undefined,
  })
  return { decoded, reencoded }
}

/** heketi-cli's block-volume block (§3.3) */
function cliBlock(d: ReturnType<typeof goBlockVolume>['decoded']): string {
  return [
    `Name: ${d.name}`,
    `Size: ${d.size}`,
    `UsableSize: ${d.usablesize}`,
    `Volume Id: ${d.id}`,
    `Cluster Id: ${d.cluster}`,
    `Hosts: [${(d.blockvolume.hosts ?? []).join(' ')}]`,
    `IQN: ${d.blockvolume.iqn}`,
    `LUN: ${d.blockvolume.lun}`,
    `Hacount: ${d.hacount}`,
    `Username: ${d.blockvolume.username}`,
    `Password: ${d.blockvolume.password}`,
    `Block Hosting Volume: ${d.blockhostingvolume}`,
  ].join('\n')
}

async function blockApp(t: Test) {
  const app = await makeApp(t, {
    config: { autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 100 },
  })
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  return { app, cluster: topo.cluster }
}

t.test('heketi-cli blockvolume create/info/list/expand/delete', async (t) => {
  const { app, cluster } = await blockApp(t)

  // blockvolume create --size=5 --ha=3 --auth --name=bv --clusters=<c>
  const created = await goAsync(
    app,
    'POST',
    '/blockvolumes',
    `{"size":5,"clusters":["${cluster}"],"name":"bv","hacount":3,"auth":true}`,
  )
  t.equal(created.statusCode, 200, 'BlockVolumeCreate: 202, then 200 from the redirect target')
  t.equal(created.headers['content-type'], 'application/json; charset=UTF-8')
  t.ok(created.body.endsWith('}\n'), 'compact JSON and one newline')
  const { decoded, reencoded } = goBlockVolume(JSON.parse(created.body))
  t.equal(reencoded, created.body.trimEnd(), '--json: the re-encoded struct is the server body')
  t.equal(decoded.name, 'bv')
  t.equal(decoded.hacount, 3)
  t.equal(decoded.cluster, cluster)
  t.equal(decoded.blockvolume.hosts?.length, 3)
  const block = cliBlock(decoded)
  t.match(
    block,
    new RegExp(`^Name: bv\nSize: 5\nUsableSize: 5\nVolume Id: ${decoded.id}\nCluster Id: ${cluster}\n`),
  )
  t.match(block, /\nHosts: \[10\.0\.0\.\d 10\.0\.0\.\d 10\.0\.0\.\d\]\nIQN: fakeIQN\nLUN: 0\nHacount: 3\n/)
  t.match(block, /\nUsername: heketi-user\nPassword: secret\nBlock Hosting Volume: [0-9a-f]{32}$/)

  // blockvolume create --size=2 (the CLI always sends name, even empty)
  const plain = await goAsync(app, 'POST', '/blockvolumes', '{"size":2,"name":""}')
  t.equal(plain.statusCode, 200)
  const second = goBlockVolume(JSON.parse(plain.body)).decoded
  t.equal(second.name, `blockvol_${second.id}`)
  t.equal(second.blockvolume.username, '', 'no --auth: empty credentials')

  // blockvolume info <id>
  const info = await send(app, 'GET', `/blockvolumes/${decoded.id}`)
  t.equal(info.statusCode, 200)
  t.equal(info.body, created.body, 'info returns what the create returned')

  // blockvolume list: GET /blockvolumes, then each
  const list = await send(app, 'GET', '/blockvolumes')
  t.equal(list.statusCode, 200)
  const ids = JSON.parse(list.body).blockvolumes as string[]
  t.same(ids, [decoded.id, second.id].sort(), 'sorted ids')
  const lines: string[] = []
  for (const id of ids) {
    const bv = goBlockVolume(JSON.parse((await send(app, 'GET', `/blockvolumes/${id}`)).body)).decoded
    lines.push(`Id:${bv.id.padEnd(35)}Cluster:${bv.cluster.padEnd(35)}Name:${bv.name}`)
  }
  t.match(lines.join('\n'), new RegExp(`Id:${decoded.id}   Cluster:${cluster}   Name:bv`))

  // blockvolume expand --new-size=10 <id>
  const expanded = await goAsync(app, 'POST', `/blockvolumes/${decoded.id}/expand`, '{"new_size":10}')
  t.equal(expanded.statusCode, 200)
  const grown = goBlockVolume(JSON.parse(expanded.body)).decoded
  t.equal(grown.size, 10)
  t.equal(grown.usablesize, 10)

  // blockvolume delete <id> → "Volume <id> deleted"
  const deleted = await goAsync(app, 'DELETE', `/blockvolumes/${decoded.id}`)
  t.equal(deleted.statusCode, 204, 'BlockVolumeDelete: 202, then 204')
  t.equal(deleted.body, '')
  // errors reach the CLI as the trimmed plain-text body
  const again = await send(app, 'DELETE', `/blockvolumes/${decoded.id}`, { contentType: 'application/json' })
  t.equal(again.statusCode, 404)
  t.equal(again.body.trim(), 'Id not found', 'the glusterblock deleter takes this as already gone')
  await t.rejects(goAsync(app, 'POST', '/blockvolumes', '{"size":0,"name":""}'), {
    message: 'Go client: validation failed: size: cannot be blank.',
  })
})

t.test('Python client: block_volume_create/list/info/delete', async (t) => {
  const { app } = await blockApp(t)
  const created = await pyRequest(app, 'POST', '/blockvolumes', { size: 1, hacount: 2, auth: true })
  t.equal(created.statusCode, 200, 'block_volume_create returns JSON iff the final status is 200')
  const bv = JSON.parse(created.body)
  t.equal(bv.size, 1)
  t.equal(bv.hacount, 2)
  const list = await pyRequest(app, 'GET', '/blockvolumes')
  t.equal(list.statusCode, 200)
  t.same(JSON.parse(list.body), { blockvolumes: [bv.id] })
  const info = await pyRequest(app, 'GET', `/blockvolumes/${bv.id}`)
  t.same(JSON.parse(info.body), bv)
  const deleted = await pyRequest(app, 'DELETE', `/blockvolumes/${bv.id}`)
  t.equal(deleted.statusCode, 204, 'block_volume_delete returns True iff the final status is 204')
  t.same(JSON.parse((await pyRequest(app, 'GET', '/blockvolumes')).body), { blockvolumes: [] })
  await t.rejects(pyRequest(app, 'GET', `/blockvolumes/${bv.id}`), { message: 'HTTPError 404' })
})

t.test('glusterblock provisioner: what it reads from the answer', async (t) => {
  const { app } = await blockApp(t)
  // {"size": <GiB>, "name": "<prefix>", "hacount": 3, "auth": true}
  const res = await goAsync(app, 'POST', '/blockvolumes', '{"size":3,"name":"pvc-1","hacount":3,"auth":true}')
  const bv = JSON.parse(res.body)
  t.ok(bv.blockvolume.iqn.length > 0, 'iqn non-empty')
  t.ok(
    bv.blockvolume.hosts.length > 0 && bv.blockvolume.hosts[0].length > 0,
    'hosts[0] non-empty (it indexes it)',
  )
  t.ok(bv.blockvolume.username && bv.blockvolume.password, 'CHAP username and password with auth')
  t.equal(bv.blockvolume.lun, 0)
  t.match(bv.id, /^[0-9a-f]{32}$/)
  t.match(bv.cluster, /^[0-9a-f]{32}$/)
  // delete by id; a second delete's 404 `Id not found` counts as done
  t.equal((await goAsync(app, 'DELETE', `/blockvolumes/${bv.id}`)).statusCode, 204)
  t.equal((await send(app, 'DELETE', `/blockvolumes/${bv.id}`)).body.trim(), 'Id not found')
})
