// Last line of defence against shell injection: every value a builder
// interpolates into a command string must match a strict pattern. Callers
// validate user input first; these asserts make a missed check a loud error
// instead of a command run as root on a storage node.

export class UnsafeCommandArgumentError extends Error {
  constructor(what: string, value: unknown) {
    super(`refusing to build node command: invalid ${what} ${JSON.stringify(value)}`)
    this.name = 'UnsafeCommandArgumentError'
  }
}

const ID = /^[0-9a-f]{32}$/
const PATH = /^\/[a-zA-Z0-9_.:/-]+$/
const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252}[a-zA-Z0-9])?$/
const IPV6 = /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$/
const NAME = /^[a-zA-Z0-9_-]+$/
const LVM_NAME = /^[a-zA-Z0-9_][a-zA-Z0-9_.+-]*$/
const LVM_SIZE = /^[0-9]+(\.[0-9]+)?[a-zA-Z]?$/
const MOUNT_OPTIONS = /^[a-zA-Z0-9_.,=:+/@-]+$/
const WRAPPER = /^[a-zA-Z0-9_.,=:+/@ -]*$/
// quotes, backticks, $, ;, &, |, newlines, <, >, backslash (and NUL)
const SHELL_SPECIAL = /['"`$;&|\n\r<>\\\0]/

function check(ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new UnsafeCommandArgumentError(what, value)
}

/** heketi ids: 32 lower-case hex digits */
export function assertId(value: string, what = 'id'): string {
  check(typeof value === 'string' && ID.test(value), what, value)
  return value
}

/** device paths, brick paths, mount points, fstab */
export function assertPath(value: string, what = 'path'): string {
  check(typeof value === 'string' && PATH.test(value) && !value.split('/').includes('..'), what, value)
  return value
}

export function assertDevicePath(value: string): string {
  return assertPath(value, 'device path')
}

/** DNS name, IPv4 or IPv6 address */
export function assertHost(value: string, what = 'hostname'): string {
  check(typeof value === 'string' && (HOSTNAME.test(value) || IPV6.test(value)), what, value)
  return value
}

/** gluster volume names, snapshot names, block volume names */
export function assertName(value: string, what = 'volume name'): string {
  check(typeof value === 'string' && NAME.test(value), what, value)
  return value
}

export function assertLvmName(value: string, what = 'LVM name'): string {
  check(typeof value === 'string' && LVM_NAME.test(value), what, value)
  return value
}

/** sizes such as 256K or 4M as passed to LVM options */
export function assertLvmSize(value: string, what = 'LVM size'): string {
  check(typeof value === 'string' && LVM_SIZE.test(value), what, value)
  return value
}

export function assertMountOptions(value: string): string {
  check(typeof value === 'string' && MOUNT_OPTIONS.test(value), 'mount options', value)
  return value
}

export function assertWrapper(value: string): string {
  check(typeof value === 'string' && WRAPPER.test(value), 'lvm wrapper', value)
  return value
}

/** a raw `volume set` option such as `performance.readdir-ahead off` */
export function assertGlusterOption(value: string): string {
  check(
    typeof value === 'string' && value.trim() !== '' && !SHELL_SPECIAL.test(value),
    'gluster option',
    value,
  )
  return value
}

export function assertPositiveInteger(value: number, what: string): number {
  check(Number.isSafeInteger(value) && value > 0, what, value)
  return value
}

export function assertNonNegativeInteger(value: number, what: string): number {
  check(Number.isSafeInteger(value) && value >= 0, what, value)
  return value
}
