// The one allow-list per kind of value that can reach a node command. The
// API answers 400 with a rule's problem text before anything is reserved;
// the command builders apply the same rule again (assert*) so a value that
// slipped past (an old DB, an import, a config file) is a loud error instead
// of a command run as root on a storage node. Whatever passes is still
// single-quoted by `shellArg` when the command line is built.
//
// Rules answer `undefined` (allowed) or a short problem text. Every name
// rule refuses a leading `-`: a program would read such a value as an option.

import { isIP } from 'node:net'
import { posix } from 'node:path'

export class UnsafeCommandArgumentError extends Error {
  constructor(
    readonly what: string,
    readonly value: unknown,
  ) {
    super(`refusing to build node command: invalid ${what} ${JSON.stringify(value)}`)
    this.name = 'UnsafeCommandArgumentError'
  }
}

export type Rule = (value: string) => string | undefined

const FORMAT = 'must be in a valid format'
const ID = /^[0-9a-f]{32}$/
const NAME = /^[a-zA-Z0-9_][a-zA-Z0-9_-]*$/
const PATH_CHARS = /^\/[a-zA-Z0-9_.:/-]+$/
const DNS_LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/
const OPTION_KEY_PART = /^[a-zA-Z0-9_][a-zA-Z0-9_-]*$/
const OPTION_VALUE = /^[a-zA-Z0-9_.,:/@=+!][a-zA-Z0-9_.,:/@=+!-]*$/
const LVM_NAME = /^[a-zA-Z0-9_][a-zA-Z0-9_.+-]*$/
const LVM_SIZE = /^[0-9]+(\.[0-9]+)?[a-zA-Z]?$/
const MOUNT_OPTIONS = /^[a-zA-Z0-9_.,=:+/@][a-zA-Z0-9_.,=:+/@-]*$/
const WRAPPER_WORD = /^[a-zA-Z0-9_.,=:+/@-]+$/

const str = (value: unknown): value is string => typeof value === 'string'

/** gluster volume, clone, snapshot and block volume names (heketi's `^[a-zA-Z0-9_-]+$`, no leading `-`) */
export const volumeNameRule: Rule = (v) => (str(v) && NAME.test(v) ? undefined : FORMAT)

/** An IP address (no IPv6 zone) or an RFC 1123 host name: labels of letters, digits and inner `-`. */
export const hostnameRule: Rule = (v) => {
  if (!str(v)) return FORMAT
  if (isIP(v) !== 0 && !v.includes('%')) return undefined
  if (v.length > 253 || !v.split('.').every((label) => DNS_LABEL.test(label))) return FORMAT
  return undefined
}

/** An absolute, normalized path of heketi's device-name characters (`.`/`..` segments and `//` refused). */
export const pathRule: Rule = (v) =>
  str(v) && PATH_CHARS.test(v) && v.length <= 4096 && posix.normalize(v) === v && !v.endsWith('/')
    ? undefined
    : FORMAT

/** A device path: a normalized absolute path under /dev. */
export const devicePathRule: Rule = (v) => pathRule(v) ?? (v.startsWith('/dev/') ? undefined : FORMAT)

/**
 * A `volume set` option: `<key> <value>` with exactly one space. The key has
 * gluster's option-name form (dot-separated words such as
 * `performance.readdir-ahead`, or a bare word such as `group`); the value is
 * letters, digits and `_ . , : / @ = + ! -`, not starting with `-`.
 */
export const glusterOptionRule: Rule = (v) => {
  if (!str(v)) return 'must be "<key> <value>"'
  const space = v.indexOf(' ')
  if (space < 0) return 'must be "<key> <value>"'
  const key = v.slice(0, space)
  const value = v.slice(space + 1)
  if (key.length > 256 || !key.split('.').every((part) => OPTION_KEY_PART.test(part))) {
    return 'has an invalid key'
  }
  if (value.length > 4096 || !OPTION_VALUE.test(value)) return 'has an invalid value'
  return undefined
}

/** `<key> <value>` of an option that passed glusterOptionRule */
export function splitGlusterOption(option: string): [key: string, value: string] {
  assertGlusterOption(option)
  const space = option.indexOf(' ')
  return [option.slice(0, space), option.slice(space + 1)]
}

/** heketi refuses group ids from 2**31 - 1 up */
export const GID_LIMIT = 2147483647

function check(ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new UnsafeCommandArgumentError(what, value)
}

function assertRule(rule: Rule, value: string, what: string): string {
  check(str(value) && rule(value) === undefined, what, value)
  return value
}

/**
 * One shell word: the value between single quotes, each `'` as `'\''`.
 * Nothing inside single quotes is special to bash (no globs, `$`, `~`, `#`,
 * backticks or word splitting), so the program receives the value unchanged.
 */
export function shellArg(value: string | number): string {
  const text = String(value)
  check(!text.includes('\0'), 'argument (NUL byte)', text)
  return `'${text.replaceAll("'", "'\\''")}'`
}

/** heketi ids: 32 lower-case hex digits */
export function assertId(value: string, what = 'id'): string {
  check(str(value) && ID.test(value), what, value)
  return value
}

/** brick paths, mount points, fstab */
export function assertPath(value: string, what = 'path'): string {
  return assertRule(pathRule, value, what)
}

export function assertDevicePath(value: string): string {
  return assertRule(devicePathRule, value, 'device path')
}

/** DNS name, IPv4 or IPv6 address */
export function assertHost(value: string, what = 'hostname'): string {
  return assertRule(hostnameRule, value, what)
}

/** gluster volume names, snapshot names, block volume names */
export function assertName(value: string, what = 'volume name'): string {
  return assertRule(volumeNameRule, value, what)
}

/** a raw `volume set` option such as `performance.readdir-ahead off` */
export function assertGlusterOption(value: string): string {
  return assertRule(glusterOptionRule, value, 'gluster option')
}

export function assertLvmName(value: string, what = 'LVM name'): string {
  check(str(value) && LVM_NAME.test(value), what, value)
  return value
}

/** sizes such as 256K or 4M as passed to LVM options */
export function assertLvmSize(value: string, what = 'LVM size'): string {
  check(str(value) && LVM_SIZE.test(value), what, value)
  return value
}

export function assertMountOptions(value: string): string {
  check(str(value) && MOUNT_OPTIONS.test(value), 'mount options', value)
  return value
}

/** the lvm wrapper's words ('' = none); the first may not start with `-` */
export function assertWrapperWords(value: string): string[] {
  check(str(value), 'lvm wrapper', value)
  if (value === '') return []
  const words = value.split(' ')
  check(words.every((w) => WRAPPER_WORD.test(w)) && !words[0]!.startsWith('-'), 'lvm wrapper', value)
  return words
}

export function assertPositiveInteger(value: number, what: string): number {
  check(Number.isSafeInteger(value) && value > 0, what, value)
  return value
}

/** 0 (no group ownership) ≤ gid < GID_LIMIT */
export function assertGid(value: number): number {
  check(Number.isSafeInteger(value) && value >= 0 && value < GID_LIMIT, 'gid', value)
  return value
}

export function assertNonNegativeInteger(value: number, what: string): number {
  check(Number.isSafeInteger(value) && value >= 0, what, value)
  return value
}
