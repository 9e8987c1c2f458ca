// api/auth.ts on top of @fastify/jwt: the verifier's cache never skips
// heketi's per-request claim checks, keys follow `iss`, and the decoder's
// stricter base64url (docs/heketi-differences.md) gives a stable text.
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { authenticate, registerTokenVerifier, signToken } from '../api/auth.ts'
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
