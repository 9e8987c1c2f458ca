// GET /volumes and GET /volumes/{id} answered before fastify (api/hot-reads.ts):
// over real HTTP, every request gets the same bytes with the fast path on as
// through fastify (fast path off), Date aside; the fast path answers exactly
// the ordinary requests and leaves every other one to fastify; and it writes
// the access line the onResponse hook writes.
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { buildApp } from '../api/app.ts'
import { signToken } from '../api/auth.ts'
import { MockExecutor } from '../executors/mock.ts'
import { parseConfig } from '../src/config.ts'
import { ADMIN_KEY, USER_KEY } from './helpers/app.ts'

/** Send one request on a new connection; the answer's bytes, up to its Content-Length or the close. */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => done(new Error('no answer in 10 s')), 10_000)
    const done = (err?: Error) => {
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolve(buf.toString('latin1'))
    }
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = buf.subarray(0, end).toString('latin1')
      const length = /\r\ncontent-length: (\d+)/i.exec(head)
      const bodyless = request.startsWith('HEAD ') || /^HTTP\/1\.[01] (1\d\d|204|304)/.test(head)
      const want = bodyless ? 0 : length ? Number(length[1]) : undefined
      if (want !== undefined && buf.length >= end + 4 + want) done()
    })
    socket.on('end', () => done())
    socket.on('error', done)
    socket.write(request)
  })
}

const lines: Record<string, unknown>[] = []
const dir = mkdtempSync(join(tmpdir(), 'heqet-hot-'))
const config = {
  ...parseConfig(
    JSON.stringify({
      jwt: { admin: { key: ADMIN_KEY }, user: { key: USER_KEY } },
      glusterfs: { executor: 'mock', db: join(dir, 'heqet.db') },
    }),
    {},
  ),
  disableBackgroundCleaner: true,
  disableMonitor: true,
}
const logStream = new Writable({
  write(chunk, _enc, cb) {
    for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line))
    cb()
  },
})
const app = await buildApp({
  config,
  executor: new MockExecutor({ deviceSizeGiB: config.mockDeviceSizeGiB }),
  logger: pino({ level: 'info' }, logStream),
})
t.teardown(async () => {
  await app.close()
  rmSync(dir, { recursive: true, force: true })
})
await app.app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.app.server.address() as AddressInfo).port

const auth = (method: string, path: string, iss = 'admin', lifetimeSec = 300) =>
  `Authorization: bearer ${signToken(iss, iss === 'user' ? USER_KEY : ADMIN_KEY, method, path, lifetimeSec)}\r\n`
const admin = (method: string, path: string) => auth(method, path)

async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; location: string; body: string }> {
  const text = body === undefined ? '' : JSON.stringify(body)
  const res = await exchange(
    port,
    `${method} ${path} HTTP/1.1\r\nHost: x\r\n${admin(method, path)}Content-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`,
  )
  return {
    body: res.slice(res.indexOf('\r\n\r\n') + 4),
    status: Number(res.slice(9, 12)),
    location: /\r\nlocation: ([^\r]+)/i.exec(res)?.[1] ?? '',
  }
}

/** an async operation to its end; the final Location */
async function run(method: string, path: string, body?: unknown): Promise<string> {
  const first = await call(method, path, body)
  if (first.status !== 202) throw new Error(`${method} ${path}: ${first.status} ${first.body}`)
  for (let i = 0; i < 2000; i++) {
    const poll = await exchange(
      port,
      `GET ${first.location} HTTP/1.1\r\nHost: x\r\n${admin('GET', first.location)}Connection: close\r\n\r\n`,
    )
    if (!/\r\nx-pending: true/i.test(poll)) return /\r\nlocation: ([^\r]+)/i.exec(poll)?.[1] ?? ''
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error(`${method} ${path}: still pending`)
}

// a cluster of 3 nodes with a device each, and two volumes
const clusterRes = await exchange(
  port,
  `POST /clusters HTTP/1.1\r\nHost: x\r\n${admin('POST', '/clusters')}Content-Length: 26\r\nConnection: close\r\n\r\n{"block":true,"file":true}`,
)
const cluster = JSON.parse(clusterRes.slice(clusterRes.indexOf('\r\n\r\n') + 4)).id as string
for (let i = 0; i < 3; i++) {
  const node = (
    await run('POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [`node${i}.example.com`], storage: [`10.0.0.${i + 1}`] },
      cluster,
    })
  )
    .split('/')
    .pop()!
  await run('POST', '/devices', { name: '/dev/sdb', node })
}
const volumes: string[] = []
for (let i = 0; i < 2; i++) {
  const where = await run('POST', '/volumes', {
    size: 1,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  volumes.push(where.split('/').pop()!)
}
const [v1, v2] = volumes as [string, string]

/** the answer with the fast path on and off; how many the fast path answered */
async function both(request: string): Promise<{ fast: string; fastify: string; answered: number }> {
  const before = app.hot.answered
  app.hot.enabled = true
  const fast = await exchange(port, request)
  const answered = app.hot.answered - before
  app.hot.enabled = false
  const fastify = await exchange(port, request)
  app.hot.enabled = true
  const noDate = (s: string) => s.replace(/\r\nDate: [^\r]*/, '\r\nDate: -')
  return { fast: noDate(fast), fastify: noDate(fastify), answered }
}

const get = (path: string, headers: string) => `GET ${path} HTTP/1.1\r\nHost: heqet\r\n${headers}\r\n`

const cases: { name: string; request: string; fast: boolean; status: number }[] = [
  { name: 'volume list, admin', request: get('/volumes', admin('GET', '/volumes')), fast: true, status: 200 },
  {
    name: 'volume list, user',
    request: get('/volumes', auth('GET', '/volumes', 'user')),
    fast: true,
    status: 200,
  },
  {
    name: 'volume info',
    request: get(`/volumes/${v1}`, admin('GET', `/volumes/${v1}`)),
    fast: true,
    status: 200,
  },
  {
    name: 'other volume info',
    request: get(`/volumes/${v2}`, admin('GET', `/volumes/${v2}`)),
    fast: true,
    status: 200,
  },
  {
    name: 'connection: close',
    request: get(`/volumes/${v1}`, `${admin('GET', `/volumes/${v1}`)}Connection: close\r\n`),
    fast: true,
    status: 200,
  },
  {
    name: 'first of two Authorization headers counts',
    request: get(`/volumes/${v1}`, `${admin('GET', `/volumes/${v1}`)}Authorization: bearer x.y.z\r\n`),
    fast: true,
    status: 200,
  },
  {
    name: 'volume info as user',
    request: get(`/volumes/${v1}`, auth('GET', `/volumes/${v1}`, 'user')),
    fast: false,
    status: 401,
  },
  { name: 'no token', request: get('/volumes', ''), fast: false, status: 401 },
  {
    name: "another path's token",
    request: get('/volumes', admin('GET', `/volumes/${v1}`)),
    fast: false,
    status: 401,
  },
  {
    name: 'expired token',
    request: get('/volumes', auth('GET', '/volumes', 'admin', -60)),
    fast: false,
    status: 401,
  },
  {
    name: 'unknown volume',
    request: get('/volumes/0123456789abcdef', admin('GET', '/volumes/0123456789abcdef')),
    fast: false,
    status: 404,
  },
  {
    name: 'upper-case id',
    request: get(`/volumes/${v1.toUpperCase()}`, admin('GET', `/volumes/${v1.toUpperCase()}`)),
    fast: false,
    status: 404,
  },
  {
    name: 'two Host headers',
    request: get('/volumes', `${admin('GET', '/volumes')}Host: other\r\n`),
    fast: false,
    status: 400,
  },
  {
    name: 'HTTP/1.0 without Host',
    request: `GET /volumes HTTP/1.0\r\n${admin('GET', '/volumes')}\r\n`,
    fast: false,
    status: 200,
  },
  {
    name: 'a Content-Length',
    request: get('/volumes', `${admin('GET', '/volumes')}Content-Length: 0\r\n`),
    fast: false,
    status: 200,
  },
  {
    name: 'a chunked body',
    request: `GET /volumes HTTP/1.1\r\nHost: x\r\n${admin('GET', '/volumes')}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    fast: false,
    status: 200,
  },
  {
    name: 'HEAD',
    request: `HEAD /volumes HTTP/1.1\r\nHost: x\r\n${admin('HEAD', '/volumes')}\r\n`,
    fast: false,
    status: 200,
  },
  { name: 'a query', request: get('/volumes?x=1', admin('GET', '/volumes')), fast: false, status: 200 },
  {
    name: 'a trailing slash',
    request: get('/volumes/', admin('GET', '/volumes/')),
    fast: false,
    status: 301,
  },
  {
    name: 'an escaped path',
    request: get(`/volumes/%${v1.charCodeAt(0).toString(16)}${v1.slice(1)}`, admin('GET', `/volumes/${v1}`)),
    fast: false,
    status: 200,
  },
]

t.test('the same answers as fastify, and only the ordinary ones from the fast path', async (t) => {
  for (const c of cases) {
    const r = await both(c.request)
    t.equal(r.fast, r.fastify, `${c.name}: the same bytes as fastify's`)
    t.equal(Number(r.fast.slice(9, 12)), c.status, `${c.name}: ${c.status}`)
    t.equal(
      r.answered,
      c.fast ? 1 : 0,
      `${c.name}: ${c.fast ? 'answered by the fast path' : 'left to fastify'}`,
    )
  }
})

t.test('a commit changes the answer at once', async (t) => {
  const before = await both(get('/volumes', admin('GET', '/volumes')))
  t.match(before.fast, v1)
  const del = await call('DELETE', `/volumes/${v1}`)
  t.equal(del.status, 202)
  for (let i = 0; i < 2000 && (await both(get('/volumes', admin('GET', '/volumes')))).fast.includes(v1); i++)
    await new Promise((r) => setTimeout(r, 2))
  const after = await both(get('/volumes', admin('GET', '/volumes')))
  t.notMatch(after.fast, v1, 'the deleted volume is gone from the fast answer')
  t.equal(after.fast, after.fastify)
  t.equal(after.answered, 1)
  const gone = await both(get(`/volumes/${v1}`, admin('GET', `/volumes/${v1}`)))
  t.equal(gone.fast, gone.fastify)
  t.match(gone.fast, /^HTTP\/1\.1 404 /, 'its info is a 404, from fastify')
  t.equal(gone.answered, 0)
})

t.test('the access line is the one fastify writes', async (t) => {
  lines.length = 0
  const r = await both(get(`/volumes/${v2}`, admin('GET', `/volumes/${v2}`)))
  t.equal(r.answered, 1)
  await new Promise((r) => setTimeout(r, 20))
  const access = lines.filter((l) => l['url'] === `/volumes/${v2}`)
  t.equal(access.length, 2, 'one line each')
  const [fast, slow] = access as [Record<string, unknown>, Record<string, unknown>]
  const keys = (l: Record<string, unknown>) => Object.keys(l).join(',')
  t.equal(keys(fast), keys(slow), 'the same fields in the same order')
  for (const l of access) {
    t.match(l, { level: 30, method: 'GET', status: 200, msg: `200 GET /volumes/${v2}` })
    t.match(l['reqId'], /^req-[0-9a-z]+$/)
    t.type(l['ms'], 'number')
  }
  t.not(fast['reqId'], slow['reqId'], 'request ids are not reused')
})
