// JWT authentication exactly as heketi's middleware does it: HMAC family
// only, key chosen by `iss`, `exp` required, `iat` with leeway, `nbf`, and a
// `qsh` claim binding the token to METHOD&path. Errors are heketi's texts;
// when several claim checks fail the last one (exp, iat, nbf, signature)
// is reported, as heketi does.
//
// @fastify/jwt (fast-jwt underneath) decodes the token and verifies its
// signature: one registration per issuer, each with that issuer's key and
// only the HMAC algorithms. Its own claim checks are off; heketi's ordered
// checks and texts are made here, on top. A token that verified is kept in
// a VerifiedTokenCache keyed by its text (fast-jwt's own cache is off: its
// key is a SHA-256 of the token, which cost most of a hit); expiry, iat, nbf
// and qsh are checked on every request.
import { createHash, createHmac } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance } from 'fastify'
import { Errors } from '../src/errors.ts'

export type Issuer = 'admin' | 'user'

export interface AuthKeys {
  admin: string
  user: string
}

/** Decoding and signature verification, per issuer (@fastify/jwt). */
export interface TokenVerifier {
  /** header and claims of a compact JWS; throws with the decoder's text when malformed */
  decode(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> }
  /** throws when the signature does not match the issuer's key */
  verifySignature(iss: Issuer, token: string): void
}

export interface AuthOptions {
  tokens: TokenVerifier
  iatLeewaySec: number
  /**
   * Extra seconds an expired token is still accepted. heketi's Python client
   * signs tokens that live one second with second-granularity claims, so a
   * request that crosses a second boundary would otherwise be refused.
   */
  expLeewaySec: number
  now?: () => number
  /** tokens already verified (VerifiedTokenCache); without it every request is verified in full */
  cache?: VerifiedTokenCache
}

const HMAC_ALGS = ['HS256', 'HS384', 'HS512'] as const
// golang-jwt registers `none` too, so it is refused as unexpected, not unavailable
const KNOWN_ALGS = new Set([
  'none',
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
])

/**
 * Register @fastify/jwt once per issuer (namespaces `admin` and `user`) on
 * the server and return the verifier the request pipeline uses. The
 * decorations exist once the server is ready, before any request.
 */
export function registerTokenVerifier(
  app: FastifyInstance<any, any, any, any>,
  keys: AuthKeys,
): TokenVerifier {
  for (const iss of ['admin', 'user'] as const) {
    app.register(fastifyJwt, {
      namespace: iss,
      secret: keys[iss],
      decode: { complete: true },
      // heketi's claim checks (below) replace fast-jwt's; VerifiedTokenCache replaces its cache
      verify: { algorithms: [...HMAC_ALGS], ignoreExpiration: true, ignoreNotBefore: true },
      // decoder errors carry fast-jwt's own text, without a prefix
      messages: { authorizationTokenInvalid: (err: Error) => err.message },
    })
  }
  const jwt = (iss: Issuer) => (app.jwt as unknown as Record<Issuer, fastifyJwt.JWT>)[iss]
  return {
    decode(token) {
      const decoded = jwt('admin').decode<{
        header: Record<string, unknown>
        payload: Record<string, unknown>
      }>(token)
      if (!decoded) throw new Error('The token is malformed.')
      return decoded
    },
    verifySignature(iss, token) {
      jwt(iss).verify(token)
    },
  }
}

/** Go's time.Duration String() for whole seconds, e.g. 1m30s, 2h0m5s. */
export function goDuration(seconds: number): string {
  if (seconds === 0) return '0s'
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (h > 0) return `${h}h${m}m${s}s`
  if (m > 0) return `${m}m${s}s`
  return `${s}s`
}

function numericClaim(claims: Record<string, unknown>, name: string): number | undefined {
  const v = claims[name]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw Errors.tokenInvalid(
      `json: cannot unmarshal number ${String(v)} into Go struct field .${name} of type int64`,
    )
  }
  return v
}

export function qshFor(method: string, path: string): string {
  return createHash('sha256').update(`${method}&${path}`).digest('hex')
}

/** What a token whose signature verified says; the time claims are checked on every use. */
interface VerifiedToken {
  iss: Issuer
  exp: number | undefined
  iat: number | undefined
  nbf: number | undefined
  qsh: unknown
  /** the method and path whose qsh this token was last seen to match */
  method: string | undefined
  path: string | undefined
}

/**
 * Tokens whose signature and fixed claims were verified, keyed by the token
 * text. A polling client sends the same token for a whole second (heketi's
 * Python client) or for minutes (the Go client, heketi-cli), so a hit saves
 * the base64 and JSON decoding, fast-jwt's SHA-256 of the token (its own
 * cache key) and the HMAC. Only a token that verified is kept; its expiry,
 * iat and nbf are checked against the clock on every request, and its qsh
 * against every request's method and path. Bounded: the oldest entry goes
 * when the cache is full.
 */
export class VerifiedTokenCache {
  // keyed by the token's last 32 characters (its signature's): hashing a short
  // key is cheaper than the whole token, and a hit is confirmed on the full text
  // Each entry also keeps the last Authorization header that carried the token:
  // the same header again is a hit without splitting it.
  private readonly map = new Map<string, { token: string; header: string; entry: VerifiedToken }>()
  hits = 0
  misses = 0

  constructor(readonly capacity = 1024) {}

  get(token: string, header = ''): VerifiedToken | undefined {
    const found = this.map.get(token.slice(-32))
    if (found && found.token === token) {
      this.hits++
      found.header = header
      return found.entry
    }
    this.misses++
    return undefined
  }

  /** the token an Authorization header seen before carried (it ends with the token, so the same key) */
  getByHeader(header: string): VerifiedToken | undefined {
    const found = this.map.get(header.slice(-32))
    if (found && found.header === header) {
      this.hits++
      return found.entry
    }
    return undefined
  }

  set(token: string, entry: VerifiedToken, header = ''): void {
    const key = token.slice(-32)
    if (!this.map.has(key) && this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value!)
    this.map.set(key, { token, header, entry })
  }

  get size(): number {
    return this.map.size
  }
}

/**
 * Decode a token and make the checks that do not depend on the clock or the
 * request, in heketi's order: format, alg, aud, iss, the types of the time
 * claims, then the signature. Throws for everything up to the claim types;
 * a bad signature is returned, so the time checks can still be reported
 * first as heketi does (its last failure wins, and the signature is last).
 */
function verifyToken(token: string, opts: AuthOptions): { claims: VerifiedToken; signatureValid: boolean } {
  const segments = token.split('.')
  if (segments.length !== 3) throw Errors.tokenInvalid('token contains an invalid number of segments')
  let head: Record<string, unknown>
  let claims: Record<string, unknown>
  try {
    ;({ header: head, payload: claims } = opts.tokens.decode(token))
  } catch (err) {
    throw Errors.tokenInvalid((err as Error).message)
  }
  const alg = String(head['alg'] ?? '')
  if (!KNOWN_ALGS.has(alg)) throw Errors.tokenInvalid('signing method (alg) is unavailable.')
  if (!(HMAC_ALGS as readonly string[]).includes(alg))
    throw Errors.tokenInvalid(`Unexpected signing method: ${alg}`)
  if (claims['aud'] !== undefined && typeof claims['aud'] !== 'string') {
    throw Errors.tokenInvalid('json: cannot unmarshal array into Go struct field .aud of type string')
  }
  const iss = claims['iss']
  if (iss === undefined || iss === '' || iss === null) throw Errors.tokenInvalid('Token missing iss claim')
  if (iss !== 'admin' && iss !== 'user') throw Errors.tokenInvalid('Unknown user')
  const verified: VerifiedToken = {
    iss,
    exp: numericClaim(claims, 'exp'),
    iat: numericClaim(claims, 'iat'),
    nbf: numericClaim(claims, 'nbf'),
    qsh: claims['qsh'],
    method: undefined,
    path: undefined,
  }
  let signatureValid = true
  try {
    opts.tokens.verifySignature(iss, token)
  } catch (err) {
    // any refusal by fast-jwt (wrong key, empty or malformed signature) is heketi's text;
    // anything else is a server fault, not the client's
    if (!String((err as { code?: unknown }).code).startsWith('FAST_JWT_')) throw err
    signatureValid = false
  }
  return { claims: verified, signatureValid }
}

// `Bearer <token>` as clients send it: one space, a token without whitespace
const PLAIN_BEARER = /^[Bb][Ee][Aa][Rr][Ee][Rr] [^\s]+$/

/** The token of an Authorization header, split on whitespace as heketi does. */
function bearerToken(header: string): string {
  if (PLAIN_BEARER.test(header)) return header.slice(7)
  const parts = header.trim().split(/\s+/)
  if (parts.length !== 2 || parts[0]!.toLowerCase() !== 'bearer') throw Errors.tokenFormat()
  return parts[1]!
}

/**
 * Verify the Authorization header for a request; returns the issuer.
 * Throws the HeqetError heketi would answer with. With a cache, a token
 * that verified before skips decoding and the signature; the clock and the
 * qsh are still checked here on every request.
 */
export function authenticate(
  header: string | undefined,
  method: string,
  path: string,
  opts: AuthOptions,
): Issuer {
  if (!header) throw Errors.tokenMissing()
  let t = opts.cache?.getByHeader(header)
  if (!t) {
    const token = bearerToken(header)
    t = opts.cache?.get(token, header)
    if (!t) {
      const { claims, signatureValid } = verifyToken(token, opts)
      // heketi checks the time claims, then the signature, and reports the last failure
      if (!signatureValid)
        throw Errors.tokenInvalid('signature is invalid (client and server secrets may not match)')
      opts.cache?.set(token, claims, header)
      t = claims
    }
  }

  const now = Math.floor((opts.now ?? Date.now)() / 1000)
  let failure: string | undefined
  const expiry = t.exp ?? 0
  if (t.exp === undefined || now > expiry + opts.expLeewaySec) {
    failure = `Token is expired by ${goDuration(Math.max(0, now - expiry))}`
  }
  if (t.iat !== undefined && now < t.iat - opts.iatLeewaySec)
    failure = 'Token used before issued (client and server clocks may differ)'
  if (t.nbf !== undefined && now < t.nbf) failure = 'token is not valid yet'
  if (failure) throw Errors.tokenInvalid(failure)

  if (t.path !== path || t.method !== method) {
    if (t.qsh !== qshFor(method, path)) throw Errors.qsh()
    t.method = method
    t.path = path
  }
  return t.iss
}

/** heketi's authorization: issuer `user` may only use exactly /volumes. */
export function authorize(iss: Issuer, path: string): void {
  if (iss === 'user' && path !== '/volumes') throw Errors.adminRequired()
}

/** Sign a heketi-style token (tests, bench and heqet's own tools). */
export function signToken(
  iss: Issuer | string,
  key: string,
  method: string,
  path: string,
  lifetimeSec = 300,
): string {
  const now = Math.floor(Date.now() / 1000)
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const head = enc({ alg: 'HS256', typ: 'JWT' })
  const body = enc({ iss, iat: now, exp: now + lifetimeSec, qsh: qshFor(method, path) })
  const sig = createHmac('sha256', key).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}
