// heketi's JWT middleware and authorization, case by case, with tokens signed
// by hand (node:crypto) so the test does not share code with the server.
import { createHash, createHmac } from 'node:crypto'
import t, { type Test } from 'tap'
import { ADMIN_KEY, makeApp, type TestApp, USER_KEY } from './helpers/app.ts'

const HASH: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }
const nowSec = () => Math.floor(Date.now() / 1000)
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
const qsh = (method: string, path: string) => createHash('sha256').update(`${method}&${path}`).digest('hex')

/** A compact JWS; non-HMAC algorithms get a made-up signature. */
function sign(claims: Record<string, unknown>, opts: { alg?: string; key?: string } = {}): string {
  const alg = opts.alg ?? 'HS256'
  const head = b64({ alg, typ: 'JWT' })
  const body = b64(claims)
  const hash = HASH[alg]
  const sig = hash
    ? createHmac(hash, opts.key ?? ADMIN_KEY)
        .update(`${head}.${body}`)
        .digest('base64url')
    : alg === 'none'
      ? ''
      : Buffer.from('not really a signature').toString('base64url')
  return `${head}.${body}.${sig}`
}

/** heketi-client style claims for METHOD&path, overridable; `undefined` removes a claim. */
function claims(method: string, path: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSec()
  const all: Record<string, unknown> = {
    iss: 'admin',
    iat: now,
    exp: now + 300,
    qsh: qsh(method, path),
    ...extra,
  }
  for (const [k, v] of Object.entries(all)) if (v === undefined) delete all[k]
  return all
}

async function request(app: TestApp, method: string, url: string, authorization?: string, payload?: string) {
  return app.app.inject({
    method: method as never,
    url,
    headers: authorization === undefined ? {} : { authorization },
    payload,
  })
}

const bearer = (token: string) => `bearer ${token}`

/** Wait until early in a second, so a claim computed from "now" is still "now" at the server. */
async function freshSecond(): Promise<void> {
  const ms = Date.now() % 1000
  if (ms > 700) await new Promise((r) => setTimeout(r, 1000 - ms + 5))
}

function expect401(
  t: Test,
  res: { statusCode: number; body: string; headers: Record<string, unknown> },
  body: string,
) {
  t.equal(res.statusCode, 401, body)
  t.equal(res.body, `${body}\n`)
  t.equal(res.headers['content-type'], 'text/plain; charset=utf-8')
}

t.test('header parsing', async (t) => {
  const app = await makeApp(t)
  expect401(t, await request(app, 'GET', '/clusters'), 'Required authorization token not found')
  expect401(t, await request(app, 'GET', '/clusters', ''), 'Required authorization token not found')

  const format = await request(app, 'GET', '/clusters', 'Token abc')
  t.equal(format.statusCode, 400)
  t.equal(format.body, 'Authorization header format must be Bearer {token}\n')
  t.equal(format.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(format.headers['x-content-type-options'], 'nosniff')
  const good = sign(claims('GET', '/clusters'))
  t.equal((await request(app, 'GET', '/clusters', `bearer ${good} extra`)).statusCode, 400, 'three parts')
  t.equal((await request(app, 'GET', '/clusters', good)).statusCode, 400, 'token without scheme')

  for (const scheme of ['bearer', 'Bearer', 'BEARER', 'bEaReR']) {
    const res = await request(app, 'GET', '/clusters', `${scheme} ${good}`)
    t.equal(res.statusCode, 200, `${scheme} accepted`)
  }
  t.equal((await request(app, 'GET', '/clusters', `bearer   ${good}`)).statusCode, 200, 'any whitespace')
})

t.test('signature and algorithm', async (t) => {
  const app = await makeApp(t)
  const c = () => claims('GET', '/clusters')
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(c(), { key: 'not-the-key' }))),
    'Invalid JWT token: signature is invalid (client and server secrets may not match)',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(c(), { key: USER_KEY }))),
    'Invalid JWT token: signature is invalid (client and server secrets may not match)',
  )
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    t.equal((await request(app, 'GET', '/clusters', bearer(sign(c(), { alg })))).statusCode, 200, `${alg}`)
  }
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(c(), { alg: 'RS256' }))),
    'Invalid JWT token: Unexpected signing method: RS256',
  )
  // golang-jwt registers "none" as a signing method, so heketi's key
  // function refuses it as a non-HMAC method
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(c(), { alg: 'none' }))),
    'Invalid JWT token: Unexpected signing method: none',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(c(), { alg: 'XX999' }))),
    'Invalid JWT token: signing method (alg) is unavailable.',
  )
  const [head, body] = sign(c()).split('.')
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(`${head}.${body}`)),
    'Invalid JWT token: token contains an invalid number of segments',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer('a.b.c.d')),
    'Invalid JWT token: token contains an invalid number of segments',
  )
})

t.test('issuer', async (t) => {
  const app = await makeApp(t)
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { iss: undefined })))),
    'Invalid JWT token: Token missing iss claim',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { iss: '' })))),
    'Invalid JWT token: Token missing iss claim',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { iss: 'bob' })))),
    'Invalid JWT token: Unknown user',
  )
})

t.test('qsh binds the token to METHOD&path without the query string', async (t) => {
  const app = await makeApp(t)
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { qsh: undefined })))),
    'Invalid qsh claim in token',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters?x=1', bearer(sign(claims('GET', '/clusters?x=1')))),
    'Invalid qsh claim in token',
  )
  t.equal(
    (await request(app, 'GET', '/clusters?x=1', bearer(sign(claims('GET', '/clusters'))))).statusCode,
    200,
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('POST', '/clusters')))),
    'Invalid qsh claim in token',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('get', '/clusters')))),
    'Invalid qsh claim in token',
  )
  expect401(
    t,
    await request(app, 'GET', '/volumes', bearer(sign(claims('GET', '/clusters')))),
    'Invalid qsh claim in token',
  )
})

t.test('exp: mandatory, a few seconds of grace for 1-second tokens', async (t) => {
  const app = await makeApp(t)
  await freshSecond()
  let now = nowSec()
  expect401(
    t,
    await request(
      app,
      'GET',
      '/clusters',
      bearer(sign(claims('GET', '/clusters', { exp: now - 60, iat: now - 120 }))),
    ),
    'Invalid JWT token: Token is expired by 1m0s',
  )
  await freshSecond()
  now = nowSec()
  expect401(
    t,
    await request(
      app,
      'GET',
      '/clusters',
      bearer(sign(claims('GET', '/clusters', { exp: now - 3725, iat: now - 4000 }))),
    ),
    'Invalid JWT token: Token is expired by 1h2m5s',
  )
  const noExp = await request(
    app,
    'GET',
    '/clusters',
    bearer(sign(claims('GET', '/clusters', { exp: undefined }))),
  )
  t.equal(noExp.statusCode, 401)
  t.match(noExp.body, /^Invalid JWT token: Token is expired by \d+h\d+m\d+s\n$/)

  now = nowSec()
  t.equal(
    (await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { exp: now })))))
      .statusCode,
    200,
    'exp = now is valid (heketi: now <= exp)',
  )
  t.equal(
    (await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { exp: now - 2 })))))
      .statusCode,
    200,
    'heqet accepts a token that expired 2 s ago',
  )
  // heketi's Python client: iat = now, exp = now + 1
  const python = sign(claims('GET', '/clusters', { iat: now, exp: now + 1 }))
  t.equal((await request(app, 'GET', '/clusters', bearer(python))).statusCode, 200, 'one-second token')
  await new Promise((r) => setTimeout(r, 1100))
  t.equal(
    (await request(app, 'GET', '/clusters', bearer(python))).statusCode,
    200,
    'still valid a second later',
  )

  const fractional = await request(
    app,
    'GET',
    '/clusters',
    bearer(sign(claims('GET', '/clusters', { exp: nowSec() + 300.5 }))),
  )
  t.equal(fractional.statusCode, 401, 'numeric claims must be integers')
  t.match(fractional.body, /^Invalid JWT token: /)
})

t.test('iat leeway and nbf', async (t) => {
  const app = await makeApp(t)
  await freshSecond()
  let now = nowSec()
  t.equal(
    (await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { iat: now + 100 })))))
      .statusCode,
    200,
    'iat 100 s ahead is within the 120 s leeway',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { iat: now + 200 })))),
    'Invalid JWT token: Token used before issued (client and server clocks may differ)',
  )
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { nbf: now + 60 })))),
    'Invalid JWT token: token is not valid yet',
  )
  t.equal(
    (await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { nbf: now - 1 })))))
      .statusCode,
    200,
  )

  // several failures: the last of exp, iat, nbf, signature is reported
  await freshSecond()
  now = nowSec()
  expect401(
    t,
    await request(
      app,
      'GET',
      '/clusters',
      bearer(sign(claims('GET', '/clusters', { exp: now - 60, iat: now + 200 }))),
    ),
    'Invalid JWT token: Token used before issued (client and server clocks may differ)',
  )
  expect401(
    t,
    await request(
      app,
      'GET',
      '/clusters',
      bearer(sign(claims('GET', '/clusters', { exp: now - 60, iat: now + 200, nbf: now + 60 }))),
    ),
    'Invalid JWT token: token is not valid yet',
  )
  expect401(
    t,
    await request(
      app,
      'GET',
      '/clusters',
      bearer(sign(claims('GET', '/clusters', { exp: now - 60 }), { key: 'wrong' })),
    ),
    'Invalid JWT token: signature is invalid (client and server secrets may not match)',
  )
})

t.test('HEKETI_JWT_IAT_LEEWAY_SECONDS=0 rejects a token issued one second ahead', async (t) => {
  const app = await makeApp(t, { env: { HEKETI_JWT_IAT_LEEWAY_SECONDS: '0' } })
  await freshSecond()
  const now = nowSec()
  expect401(
    t,
    await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { iat: now + 1 })))),
    'Invalid JWT token: Token used before issued (client and server clocks may differ)',
  )
  t.equal(
    (await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { iat: now })))))
      .statusCode,
    200,
  )
})

t.test('an invalid leeway value keeps the default', async (t) => {
  const app = await makeApp(t, { env: { HEKETI_JWT_IAT_LEEWAY_SECONDS: '-5' } })
  const now = nowSec()
  t.equal(
    (await request(app, 'GET', '/clusters', bearer(sign(claims('GET', '/clusters', { iat: now + 100 })))))
      .statusCode,
    200,
  )
})

t.test('user tokens may only use exactly /volumes', async (t) => {
  const app = await makeApp(t)
  const asUser = (method: string, path: string, payload?: string) =>
    request(
      app,
      method,
      path,
      bearer(sign(claims(method, path, { iss: 'user' }), { key: USER_KEY })),
      payload,
    )

  const list = await asUser('GET', '/volumes')
  t.equal(list.statusCode, 200)
  t.equal(list.body, '{"volumes":[]}\n')
  const create = await asUser('POST', '/volumes', '{}')
  t.equal(create.statusCode, 400, 'reaches validation')
  t.equal(create.body, 'validation failed: size: cannot be blank.\n')
  const noCluster = await asUser('POST', '/volumes', '{"size":1}')
  t.equal(noCluster.body, 'No clusters configured\n')

  const id = '0123456789abcdef0123456789abcdef'
  for (const [method, path] of [
    ['GET', `/volumes/${id}`],
    ['DELETE', `/volumes/${id}`],
    ['GET', `/queue/${id}`],
    ['GET', '/clusters'],
    ['POST', '/clusters'],
    ['GET', '/admin'],
    ['GET', '/volumes/'],
    ['GET', '/nowhere'],
  ] as const) {
    expect401(
      t,
      await asUser(method, path, method === 'POST' ? '{}' : undefined),
      'Administrator access required',
    )
  }
  // the user key does not verify admin tokens and vice versa
  expect401(
    t,
    await request(
      app,
      'GET',
      '/volumes',
      bearer(sign(claims('GET', '/volumes', { iss: 'user' }), { key: ADMIN_KEY })),
    ),
    'Invalid JWT token: signature is invalid (client and server secrets may not match)',
  )
})

t.test('authentication comes before routing', async (t) => {
  const app = await makeApp(t)
  expect401(t, await request(app, 'GET', '/no/such/path'), 'Required authorization token not found')
  expect401(t, await request(app, 'POST', '/hello'), 'Required authorization token not found')
  expect401(t, await request(app, 'PUT', '/volumes'), 'Required authorization token not found')
  expect401(t, await request(app, 'GET', '/volumes/'), 'Required authorization token not found')
  expect401(
    t,
    await request(app, 'GET', '/no/such/path', bearer(sign(claims('GET', '/clusters'), { key: 'x' }))),
    'Invalid JWT token: signature is invalid (client and server secrets may not match)',
  )
  const ok = await request(app, 'GET', '/no/such/path', bearer(sign(claims('GET', '/no/such/path'))))
  t.equal(ok.statusCode, 404)
  t.equal(ok.body, 'Invalid path or request\n')

  const hello = await request(app, 'GET', '/hello')
  t.equal(hello.statusCode, 200)
  const metrics = await request(app, 'GET', '/metrics', 'Token garbage')
  t.equal(metrics.statusCode, 200, '/metrics ignores the header')
  t.equal((await request(app, 'GET', '/hello', 'bearer x.y')).statusCode, 200, '/hello ignores the header')
})

t.test('--disable-auth ignores the Authorization header completely', async (t) => {
  const app = await makeApp(t, { config: { disableAuth: true } })
  for (const authorization of [
    undefined,
    '',
    'garbage',
    'Token abc',
    'bearer not.a.token',
    bearer(sign(claims('GET', '/clusters', { iss: '' }), { key: '' })),
    bearer(sign(claims('GET', '/other', { iss: 'bob', exp: 1 }), { alg: 'RS256' })),
  ]) {
    const res = await request(app, 'GET', '/clusters', authorization)
    t.equal(res.statusCode, 200, `authorization ${JSON.stringify(authorization)}`)
  }
  const created = await request(app, 'POST', '/clusters', 'garbage', '{}')
  t.equal(created.statusCode, 201)
  t.equal((await request(app, 'GET', `/clusters/${created.json().id}`, 'x')).statusCode, 200)
})
