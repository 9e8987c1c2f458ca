// Request paths as heketi's Go stack sees them: net/url decodes the
// request target (a broken %-escape is a 400 before any handler), gorilla
// mux cleans the decoded path with path.Clean and redirects to it, and the
// redirect's Location is the cleaned path escaped again by net/url.
import { posix } from 'node:path'

const HEX2 = /^[0-9A-Fa-f]{2}$/

/**
 * Percent-decode a request path as Go's url.PathUnescape does: bytes, then
 * UTF-8. Returns undefined for a malformed escape (`%ZZ`, a lone `%`),
 * which Go's server refuses with 400 Bad Request.
 */
export function decodeRequestPath(raw: string): string | undefined {
  if (!raw.includes('%')) return raw
  const bytes: Buffer[] = []
  let literal = 0
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== '%') continue
    const hex = raw.slice(i + 1, i + 3)
    if (!HEX2.test(hex)) return undefined
    bytes.push(Buffer.from(raw.slice(literal, i), 'utf8'), Buffer.from([Number.parseInt(hex, 16)]))
    i += 2
    literal = i + 1
  }
  bytes.push(Buffer.from(raw.slice(literal), 'utf8'))
  return Buffer.concat(bytes).toString('utf8')
}

const CLEAN = /^(?:\/[^/.]+)+$/

/** Go's path.Clean plus "no trailing slash": the target of heketi's 301. */
export function cleanPath(path: string): string {
  // non-empty segments without a dot: already clean (the common case)
  if (CLEAN.test(path)) return path
  let p = posix.normalize(path.startsWith('/') ? path : `/${path}`)
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1)
  return p
}

// what net/url leaves unescaped in a path: letters, digits, -_.~ and $&+,/:;=@
const PATH_SAFE = /^[A-Za-z0-9\-_.~$&+,/:;=@]$/
const ALL_PATH_SAFE = /^[A-Za-z0-9\-_.~$&+,/:;=@]*$/

/** Escape a decoded path as Go's url.URL.String() does (upper-case %XX of the UTF-8 bytes). */
export function escapePath(path: string): string {
  if (ALL_PATH_SAFE.test(path)) return path
  let out = ''
  for (const ch of path) {
    if (PATH_SAFE.test(ch)) {
      out += ch
      continue
    }
    for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

const VISIBLE_ASCII = /^[\x21-\x7e]*$/

/**
 * The raw query string of a redirect, kept as the client sent it (Go keeps
 * RawQuery) except that anything outside visible ASCII is escaped, so it
 * can never break the Location header.
 */
export function escapeQuery(query: string): string {
  if (VISIBLE_ASCII.test(query)) return query
  let out = ''
  for (const ch of query) {
    const code = ch.codePointAt(0)!
    if (code > 0x20 && code < 0x7f) {
      out += ch
      continue
    }
    for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}
