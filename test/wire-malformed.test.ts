// Malformed requests get a 4xx in plain text, as heketi's Go stack answers
// them, never a 5xx: oversized bodies, odd Content-Types, non-canonical paths
// holding encoded bytes, requests node's own HTTP parser refuses (sent over a
// raw socket, since inject() bypasses that parser), and concurrent backups.
import { readdirSync } from 'node:fs'
import { type AddressInfo, connect } from 'node:net'
import t, { type Test } from 'tap'
import { signToken } from '../api/auth.ts'
import { ADMIN_KEY, makeApp, makeTopology, type TestApp } from './helpers/app.ts'
import { type RawResponse, rawRequest } from './helpers/raw-http.ts'

function plainText(t: Test, headers: Record<string, unknown>, what: string) {
  t.equal(headers['content-type'], 'text/plain; charset=utf-8', `${what}: plain text`)
}

async function listen(app: TestApp): Promise<number> {
  await app.app.listen({ port: 0, host: '127.0.0.1' })
  return (app.app.server.address() as AddressInfo).port
}

function bearer(method: string, path: string): string {
  return `bearer ${signToken('admin', ADMIN_KEY, method, path)}`
}

/** The raw bytes of a request; Host and Content-Length are added unless given. */
function requestBytes(
  method: string,
  target: string,
  headers: Record<string, string>,
  body: Buffer | string = '',
): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body)
  const all: Record<string, string> = { host: 'localhost', ...headers }
  if (bytes.length > 0 && !('content-length' in all) && !('transfer-encoding' in all))
    all['content-length'] = String(bytes.length)
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), bytes])
}

t.test('a body over the limit is 413 in plain text, with Connection: close', async (t) => {
  const app = await makeApp(t)
  const big = `{"file":true,"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`
  const res = await app.app.inject({
    method: 'POST',
    url: '/clusters',
    headers: { authorization: bearer('POST', '/clusters'), 'content-type': 'application/json' },
    payload: big,
  })
  t.equal(res.statusCode, 413)
  t.equal(res.body, 'Request body is too large\n')
  plainText(t, res.headers, '413')

  // over a socket, announced by Content-Length or only seen while streaming chunks
  const port = await listen(app)
  const announced = await rawRequest(
    port,
    requestBytes('POST', '/clusters', { authorization: bearer('POST', '/clusters') }, big),
  )
  t.equal(announced.status, 413)
  t.equal(announced.body.toString(), 'Request body is too large\n')
  t.equal(announced.headers['connection'], 'close')
  const chunk = Buffer.from('x'.repeat(256 * 1024))
  const chunks = Array.from({ length: 6 }, () =>
    Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
  )
  const streamed = await rawRequest(
    port,
    requestBytes(
      'POST',
      '/clusters',
      { authorization: bearer('POST', '/clusters'), 'transfer-encoding': 'chunked' },
      Buffer.concat([...chunks, Buffer.from('0\r\n\r\n')]),
    ),
  )
  t.equal(streamed.status, 413)
  t.equal(streamed.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal((await app.call('GET', '/clusters')).json().clusters.length, 0, 'nothing was created')
})

t.test('any Content-Type, even a malformed one, is read as JSON like heketi', async (t) => {
  const app = await makeApp(t)
  const types = [
    ';;;',
    '"',
    'application/json, text/plain',
    'application/json; charset=',
    'application/json; charset="utf-8',
    '',
    ' ',
    '/',
    'text/plain; charset=latin1',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    '\u00e9/\u00e9',
  ]
  for (const type of types) {
    const res = await app.app.inject({
      method: 'POST',
      url: '/clusters',
      headers: { authorization: bearer('POST', '/clusters'), 'content-type': type },
      payload: '{"block":true}',
    })
    t.equal(res.statusCode, 201, `Content-Type ${JSON.stringify(type)}`)
    t.equal(res.json().block, true)
  }
  // a route that decodes nothing still answers as usual
  const res = await app.app.inject({
    method: 'DELETE',
    url: '/clusters/0123',
    headers: { authorization: bearer('DELETE', '/clusters/0123'), 'content-type': ';;;' },
    payload: '{}',
  })
  t.equal(res.statusCode, 404)
  t.equal(res.body, 'Id not found\n')
})

t.test('the 301 for a non-canonical path percent-encodes its Location', async (t) => {
  const app = await makeApp(t)
  const port = await listen(app)
  const cases: [string, string][] = [
    ['//volumes%E2%82%AC', '/volumes%E2%82%AC'],
    ['/a/../volumes%0d%0aX-Injected:%20yes', '/volumes%0D%0AX-Injected:%20yes'],
    ['//clusters/%00?x=%0d%0a', '/clusters/%00?x=%0d%0a'],
    ['//a%20b/./c%3Fd', '/a%20b/c%3Fd'],
    ['/x/..//%2e%2e/%E2%82%AC', '/%E2%82%AC'],
    ["//keep/-_.~$&+,;=:@!'()*", '/keep/-_.~$&+,;=:@%21%27%28%29%2A'],
  ]
  for (const [target, location] of cases) {
    const raw = await rawRequest(port, requestBytes('GET', target, {}))
    t.equal(raw.status, 301, target)
    t.equal(raw.headers['location'], location, `${target} → ${location}`)
    t.notOk(raw.headers['x-injected'], 'no header injected')
  }
  // the API router's trailing-slash redirect (after authentication) too
  const res = await app.app.inject({
    method: 'GET',
    url: '/volumes%E2%82%AC/',
    headers: { authorization: bearer('GET', '/volumes\u20ac/') },
  })
  t.equal(res.statusCode, 301)
  t.equal(res.headers['location'], '/volumes%E2%82%AC')
  // following the Location lands on the cleaned path: no redirect loop
  const followed = await app.app.inject({
    method: 'GET',
    url: '/volumes%E2%82%AC',
    headers: { authorization: bearer('GET', '/volumes\u20ac') },
  })
  t.equal(followed.statusCode, 404)
  t.equal(followed.body, 'Invalid path or request\n')
})

t.test('a path with a broken percent escape is 400 Bad Request, as Go refuses it', async (t) => {
  const app = await makeApp(t)
  const port = await listen(app)
  for (const target of ['/volumes%ZZ', '/volumes%', '//volumes%4', '/clusters/%G0']) {
    const res = await rawRequest(port, requestBytes('GET', target, {}))
    t.equal(res.status, 400, target)
    t.equal(res.body.toString(), '400 Bad Request')
    t.equal(res.headers['connection'], 'close')
    plainText(t, res.headers, target)
  }
  // a valid escape of an invalid UTF-8 byte is no error: it is just no route
  const res = await app.app.inject({
    method: 'GET',
    url: '/volumes%FF',
    headers: { authorization: bearer('GET', '/volumes\ufffd') },
  })
  t.equal(res.statusCode, 404)
})

t.test('targets the router could not take: long ids, `*`, absolute form, QUERY, two Hosts', async (t) => {
  const app = await makeApp(t)
  const port = await listen(app)
  const longId = 'a'.repeat(300)
  const long = await app.app.inject({
    method: 'GET',
    url: `/clusters/${longId}`,
    headers: { authorization: bearer('GET', `/clusters/${longId}`) },
  })
  t.equal(long.statusCode, 404, 'any hex length reaches the handler')
  t.equal(long.body, 'Id not found\n')

  const star = await rawRequest(port, requestBytes('OPTIONS', '*', {}))
  t.equal(star.status, 301, '`*` is cleaned like any path')
  t.equal(star.headers['location'], '/%2A')

  const absolute = await rawRequest(
    port,
    requestBytes('GET', 'http://example.com/clusters', { authorization: bearer('GET', '/clusters') }),
  )
  t.equal(absolute.status, 200, 'an absolute-form target is served by its path')
  t.same(JSON.parse(absolute.body.toString()), { clusters: [] })

  const query = await rawRequest(
    port,
    requestBytes('QUERY', '/volumes', { authorization: bearer('QUERY', '/volumes') }),
  )
  t.equal(query.status, 405, 'QUERY on a known path is a wrong method')
  t.equal(query.body.length, 0)
  const queryUnknown = await rawRequest(
    port,
    requestBytes('QUERY', '/nope', { authorization: bearer('QUERY', '/nope') }),
  )
  t.equal(queryUnknown.status, 404)
  t.equal(queryUnknown.body.toString(), 'Invalid path or request\n')

  // node leaves CONNECT to a listener; Go routes it like any method
  const connect = await rawRequest(port, requestBytes('CONNECT', '/volumes', {}))
  t.equal(connect.status, 401, 'CONNECT is authenticated like any request')
  t.equal(connect.body.toString(), 'Required authorization token not found\n')
  const connectAuthed = await rawRequest(
    port,
    requestBytes('CONNECT', '/volumes', { authorization: bearer('CONNECT', '/volumes') }),
  )
  t.equal(connectAuthed.status, 405, 'then answered as a wrong method')
  t.ok(connectAuthed.closed, 'and the connection closes')

  const twoHosts = await rawRequest(port, 'GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')
  t.equal(twoHosts.status, 400)
  t.equal(twoHosts.body.toString(), '400 Bad Request: too many Host headers')
  t.equal(twoHosts.headers['connection'], 'close')
})

t.test('a request body whose last transfer coding is not chunked is refused, not waited for', async (t) => {
  const app = await makeApp(t)
  const port = await listen(app)
  // found by the fuzz (seed 1254695112): an authorized DELETE with
  // `transfer-encoding: gzip` and no body was never answered
  for (const te of ['gzip', 'identity', 'deflate, gzip']) {
    const path = '/nodes/076f42aff3495d0713786c3aaea16239'
    const res = await rawRequest(
      port,
      requestBytes('DELETE', path, { authorization: bearer('DELETE', path), 'transfer-encoding': te }),
    )
    t.equal(res.status, 400, `${te}: 400`)
    t.equal(res.body.toString(), '400 Bad Request: unsupported transfer encoding', `${te}: Go-style text`)
    t.equal(res.headers['connection'], 'close', `${te}: the connection closes`)
  }
  const chunked = await rawRequest(
    port,
    requestBytes(
      'POST',
      '/clusters',
      { authorization: bearer('POST', '/clusters'), 'transfer-encoding': 'chunked' },
      '2\r\n{}\r\n0\r\n\r\n',
    ),
  )
  t.equal(chunked.status, 201, 'a chunked body is still read')
})

t.test('concurrent backups all succeed and leave no temporary file', async (t) => {
  const app = await makeApp(t)
  await makeTopology(app, { nodes: 1, devices: 1 })
  const before = readdirSync(app.dir).sort()
  const answers = await Promise.all(
    Array.from({ length: 24 }, () =>
      app.app.inject({
        method: 'GET',
        url: '/backup/db',
        headers: { authorization: bearer('GET', '/backup/db') },
      }),
    ),
  )
  const statuses = answers.map((r) => r.statusCode)
  t.same(new Set(statuses), new Set([200]), `statuses: ${statuses.join(',')}`)
  for (const r of answers) {
    t.ok(r.rawPayload.length > 0)
    t.equal(Number(r.headers['content-length']), r.rawPayload.length)
  }
  t.same(readdirSync(app.dir).sort(), before, 'no temporary file left beside the DB')
})

t.test('a failed backup is a 500 that names no file', async (t) => {
  const app = await makeApp(t)
  app.ctx.store.backup = async () => {
    const err = new Error(
      `ENOSPC: no space left on device, copyfile '${app.dir}/heqet.db'`,
    ) as NodeJS.ErrnoException
    err.code = 'ENOSPC'
    throw err
  }
  const res = await app.call('GET', '/backup/db')
  t.equal(res.statusCode, 500)
  plainText(t, res.headers, 'backup failure')
  t.notMatch(res.body, app.dir, 'the DB directory is not revealed')
  t.notMatch(res.body, '/', 'no path at all')
  t.match(res.body, /ENOSPC/, 'the cause is named')
})

function expectParserAnswer(t: Test, res: RawResponse, status: number, body: string, what: string) {
  t.equal(res.status, status, what)
  t.equal(res.body.toString(), body, `${what}: body`)
  plainText(t, res.headers, what)
  t.equal(res.headers['connection'], 'close', `${what}: Connection: close`)
  t.ok(res.closed, `${what}: connection closed`)
}

t.test('requests the HTTP parser refuses: Go-style plain text, then the connection closes', async (t) => {
  const app = await makeApp(t)
  const port = await listen(app)
  const bad = [
    'GET /volumes HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n',
    'GET /volumes HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    'POST /clusters HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET /volumes HTTP/9.9\r\nHost: x\r\n\r\n',
    'GET /vol umes HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /volumes\x01 HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /volumes HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n',
    'FOO /volumes HTTP/1.1\r\nHost: x\r\n\r\n',
    '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
  ]
  for (const request of bad) {
    const res = await rawRequest(port, Buffer.from(request, 'latin1'))
    expectParserAnswer(t, res, 400, '400 Bad Request', JSON.stringify(request))
  }
  const huge = await rawRequest(port, requestBytes('GET', '/volumes', { 'x-big': 'y'.repeat(64 * 1024) }))
  expectParserAnswer(t, huge, 431, '431 Request Header Fields Too Large', 'header too large')

  // a body the parser refuses halfway, on a route that reads it: heketi's
  // body read fails, so its decoding error; then the connection closes
  const brokenChunk = await rawRequest(
    port,
    `POST /clusters HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer('POST', '/clusters')}\r\n` +
      'Transfer-Encoding: chunked\r\n\r\n5\r\n{"fil\r\nzz\r\n',
  )
  t.equal(brokenChunk.status, 422)
  t.equal(brokenChunk.body.toString(), 'request unable to be parsed\n')
  t.ok(brokenChunk.closed, 'connection closed')
  t.equal((await app.call('GET', '/clusters')).json().clusters.length, 0, 'nothing was created')

  const noHost = await rawRequest(port, 'GET /hello HTTP/1.1\r\n\r\n')
  expectParserAnswer(t, noHost, 400, '400 Bad Request: missing required Host header', 'no Host')
  const http10 = await rawRequest(port, 'GET /hello HTTP/1.0\r\n\r\n')
  t.equal(http10.status, 200, 'HTTP/1.0 needs no Host')

  // a refusal after an answered request on the same connection comes after that answer
  const pipelined = await rawRequest(
    port,
    'GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nBad\r\n\r\n',
  )
  t.equal(pipelined.status, 200, 'the first answer arrives whole')
  t.equal(pipelined.body.toString(), 'Hello from Heketi')

  t.equal((await app.call('GET', '/hello')).statusCode, 200, 'the server still answers')
})

/** Send `request`, read until `answered` says so, then half-close and keep the socket open. */
function answeredThenHalfClosed(port: number, request: string, answered: (text: string) => boolean) {
  return new Promise<{ text: string; destroy: () => void }>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let text = ''
    socket.on('error', reject)
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
      if (answered(text)) {
        // more bytes, then the close: a socket nobody reads buffers them and never ends
        socket.end('more bytes')
        resolve({ text, destroy: () => socket.destroy() })
      }
    })
    socket.write(request)
  })
}

t.test('connections answered outside the router still let the server close', async (t) => {
  // a socket node stopped reading never saw the client's close, and held server.close() forever
  for (const [what, request, done] of [
    ['CONNECT', 'CONNECT /volumes HTTP/1.1\r\nHost: x\r\n\r\n', (s: string) => s.endsWith('not found\n')],
    [
      'parser refusal',
      'GET /volumes HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n',
      (s: string) => s.endsWith('400 Bad Request'),
    ],
  ] as const) {
    const app = await makeApp(t)
    const port = await listen(app)
    const client = await answeredThenHalfClosed(port, request, done)
    t.match(client.text, /^HTTP\/1\.1 4\d\d /, `${what}: answered`)
    let timer: NodeJS.Timeout | undefined
    const outcome = await Promise.race([
      app.app.close().then(() => 'closed'),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve('still open after 5 s'), 5000)
      }),
    ])
    clearTimeout(timer)
    client.destroy()
    t.equal(outcome, 'closed', `${what}: the server closes`)
  }
})
