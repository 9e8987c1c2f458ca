// Host-key verification against OpenSSH known_hosts files, enabled (as in
// heketi) only when env SSH_KNOWN_HOSTS lists files, separated by `:`.
// Supports plain, wildcard, negated, `[host]:port` and hashed (|1|) entries
// and the @revoked marker; @cert-authority lines are skipped.
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'

interface KnownHostEntry {
  revoked: boolean
  patterns: string[]
  keyBlob: Buffer
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    let marker = ''
    if (fields[0].startsWith('@')) marker = fields.shift() ?? ''
    if (marker === '@cert-authority' || fields.length < 3) continue
    entries.push({
      revoked: marker === '@revoked',
      patterns: fields[0].split(','),
      keyBlob: Buffer.from(fields[2], 'base64'),
    })
  }
  return entries
}

function wildcardMatch(pattern: string, name: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${regex}$`, 'i').test(name)
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|')
    if (!salt || !hash) return false
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash
  }
  return wildcardMatch(pattern, name)
}

function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  let matched = false
  for (const pattern of entry.patterns) {
    if (pattern.startsWith('!')) {
      if (patternMatches(pattern.slice(1), name)) return false
    } else if (patternMatches(pattern, name)) {
      matched = true
    }
  }
  return matched
}

/** known_hosts name of a host: `host` on port 22, else `[host]:port` */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** true when `keyBlob` (the server's raw public key) is known and not revoked for host:port */
export function isKnownHostKey(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  keyBlob: Buffer,
): boolean {
  const name = knownHostsName(host, port)
  let known = false
  for (const entry of entries) {
    if (!entry.keyBlob.equals(keyBlob)) continue
    if (entry.revoked) return false
    if (entryMatchesHost(entry, name)) known = true
  }
  return known
}

/** Entries of the files listed in SSH_KNOWN_HOSTS, or undefined when verification is off. */
export function loadKnownHostsFromEnv(env: Record<string, string | undefined> = process.env) {
  const list = env['SSH_KNOWN_HOSTS']
  if (!list) return undefined
  const entries: KnownHostEntry[] = []
  for (const file of list.split(':').filter((f) => f !== '')) {
    entries.push(...parseKnownHosts(readFileSync(file, 'utf8')))
  }
  return entries
}

export type { KnownHostEntry }
