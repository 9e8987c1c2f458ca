// api/auth.ts on top of @fastify/jwt: the verifier's cache never skips
// heketi's per-request claim checks, keys follow `iss`, and the decoder's
// stricter base64url (docs/heketi-differences.md) gives a stable text.
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { authenticate, registerTokenVerifier, signToken, VerifiedTokenCache } from '../api/auth.ts'
import { HeqetError } from '../src/errors.ts'

const keys = { admin: 'admin-secret-for-tests', user: 'user-secret-for-tests' }

async function verifier(t: Test) {
  const app = Fastify()
  const tokens = registerTokenVerifier(app, keys)
  await app.ready()
  t.teardown(() => app.close())
  return tokens
}

/** the 401 text authenticate() throws, or 'ok' */
function outcome(run: () => unknown): string {
  try {
    run()
    return 'ok'
  } catch (err) {
    if (!(err instanceof HeqetError)) throw err
    return err.message
  }
}

t.test('a cached signature does not outlive exp', async (t) => {
  const tokens = await verifier(t)
  const token = signToken('admin', keys.admin, 'GET', '/clusters', 60)
  const check = (nowMs: number) =>
    outcome(() =>
      authenticate(`bearer ${token}`, 'GET', '/clusters', {
        tokens,
        iatLeewaySec: 120,
        expLeewaySec: 5,
        now: () => nowMs,
      }),
    )
  t.equal(check(Date.now()), 'ok', 'fresh token accepted (and its signature cached)')
  t.equal(check(Date.now()), 'ok', 'again, from the cache')
  t.match(
    check(Date.now() + 3600_000),
    /^Invalid JWT token: Token is expired by /,
    'expiry checked per request',
  )
})

t.test('the key follows iss', async (t) => {
  const tokens = await verifier(t)
  const opts = { tokens, iatLeewaySec: 120, expLeewaySec: 5 }
  const user = signToken('user', keys.user, 'GET', '/volumes')
  t.equal(
    outcome(() => authenticate(`bearer ${user}`, 'GET', '/volumes', opts)),
    'ok',
  )
  const forged = signToken('user', keys.admin, 'GET', '/volumes')
  t.equal(
    outcome(() => authenticate(`bearer ${forged}`, 'GET', '/volumes', opts)),
    'Invalid JWT token: signature is invalid (client and server secrets may not match)',
  )
  // verified once as admin-signed: the cache must not let it pass as another issuer
  const adminSigned = signToken('admin', keys.admin, 'GET', '/volumes')
  t.equal(
    outcome(() => authenticate(`bearer ${adminSigned}`, 'GET', '/volumes', opts)),
    'ok',
  )
})

t.test('padded segments are refused with the decoder text', async (t) => {
  const tokens = await verifier(t)
  const [head, body, sig] = signToken('admin', keys.admin, 'GET', '/clusters').split('.')
  const padded = `${head}==.${body}.${sig}`
  t.equal(
    outcome(() =>
      authenticate(`bearer ${padded}`, 'GET', '/clusters', { tokens, iatLeewaySec: 120, expLeewaySec: 5 }),
    ),
    'Invalid JWT token: The token header is not a valid base64url serialized JSON.',
  )
})

t.test('VerifiedTokenCache: hits skip verification, never the per-request checks', async (t) => {
  const tokens = await verifier(t)
  let verifications = 0
  const counting = {
    decode: (token: string) => tokens.decode(token),
    verifySignature: (iss: 'admin' | 'user', token: string) => {
      verifications++
      tokens.verifySignature(iss, token)
    },
  }
  const cache = new VerifiedTokenCache(2)
  const run = (token: string, method: string, path: string, nowMs = Date.now()) =>
    outcome(() =>
      authenticate(`bearer ${token}`, method, path, {
        tokens: counting,
        iatLeewaySec: 120,
        expLeewaySec: 5,
        now: () => nowMs,
        cache,
      }),
    )
  const token = signToken('admin', keys.admin, 'GET', '/volumes', 60)
  t.equal(run(token, 'GET', '/volumes'), 'ok')
  t.equal(run(token, 'GET', '/volumes'), 'ok')
  t.equal(verifications, 1, 'the second request did not verify the signature again')
  t.equal(cache.hits, 1)

  t.equal(run(token, 'GET', '/clusters'), 'Invalid qsh claim in token', 'qsh checked on a hit')
  t.equal(run(token, 'DELETE', '/volumes'), 'Invalid qsh claim in token')
  t.match(run(token, 'GET', '/volumes', Date.now() + 3600_000), /^Invalid JWT token: Token is expired by /)
  t.equal(
    run(token, 'GET', '/volumes', Date.now() - 3600_000),
    'Invalid JWT token: Token used before issued (client and server clocks may differ)',
    'iat checked on a hit',
  )
  t.equal(run(token, 'GET', '/volumes'), 'ok', 'and the token still works at the right time and place')
  t.equal(verifications, 1)

  // a token that failed its signature is never kept: each use is verified and refused
  const forged = signToken('admin', keys.user, 'GET', '/volumes', 60)
  for (let i = 0; i < 2; i++)
    t.equal(
      run(forged, 'GET', '/volumes'),
      'Invalid JWT token: signature is invalid (client and server secrets may not match)',
    )
  t.equal(verifications, 3)
  t.equal(cache.size, 1)

  // an expired token with a bad signature reports the signature, as without the cache
  const stale = signToken('admin', keys.user, 'GET', '/volumes', -3600)
  t.equal(
    run(stale, 'GET', '/volumes'),
    'Invalid JWT token: signature is invalid (client and server secrets may not match)',
  )

  // bounded: the oldest entry goes
  const a = signToken('admin', keys.admin, 'GET', '/nodes', 61)
  const b = signToken('admin', keys.admin, 'GET', '/nodes', 62)
  t.equal(run(a, 'GET', '/nodes'), 'ok')
  t.equal(run(b, 'GET', '/nodes'), 'ok')
  t.equal(cache.size, 2)
  const before = verifications
  t.equal(run(token, 'GET', '/volumes'), 'ok')
  t.equal(verifications, before + 1, 'the first token was evicted and verified again')
})

t.test(
  'VerifiedTokenCache: a header seen before is a hit without splitting; any other header is parsed',
  async (t) => {
    const tokens = await verifier(t)
    let verifications = 0
    const counting = {
      decode: (token: string) => tokens.decode(token),
      verifySignature: (iss: 'admin' | 'user', token: string) => {
        verifications++
        tokens.verifySignature(iss, token)
      },
    }
    const cache = new VerifiedTokenCache()
    const run = (header: string, path = '/volumes') =>
      outcome(() =>
        authenticate(header, 'GET', path, { tokens: counting, iatLeewaySec: 120, expLeewaySec: 5, cache }),
      )
    const token = signToken('admin', keys.admin, 'GET', '/volumes', 60)
    t.equal(run(`bearer ${token}`), 'ok')
    t.equal(run(`bearer ${token}`), 'ok', 'the same header again')
    t.equal(run(`Bearer ${token}`), 'ok', 'another spelling of the scheme: parsed, the token still a hit')
    t.equal(run(`  bearer   ${token}  `), 'ok', 'extra whitespace, as heketi splits')
    t.equal(verifications, 1, 'one verification for all of them')
    t.equal(cache.hits, 3)
    // headers ending with the same characters but not this token's header: refused as without a cache
    const uncached = (header: string) =>
      outcome(() => authenticate(header, 'GET', '/volumes', { tokens, iatLeewaySec: 120, expLeewaySec: 5 }))
    for (const header of [`bearer x${token}`, `bear ${token}`, `bearer a b ${token}`, token]) {
      const got = run(header)
      t.not(got, 'ok', `${header.slice(0, 12)}…: refused`)
      t.equal(got, uncached(header), `${header.slice(0, 12)}…: the text it gets without a cache`)
    }
    // the remembered header is checked against the clock and the qsh like any hit
    t.equal(run(`bearer ${token}`, '/clusters'), 'Invalid qsh claim in token')
    t.equal(run(`bearer ${token}`), 'ok')
    t.equal(verifications, 1, 'none of them reached a signature check')
  },
)
