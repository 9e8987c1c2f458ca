// Synchronous teardown of a testbed, found by its name alone. The same code
// removes a live testbed (destroy, exit and signal handlers) and the
// leftovers of a run that was killed: it needs no in-memory state, only the
// naming scheme below, so nothing of another testbed is ever touched.

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import {
  allPids,
  hostMountsUnder,
  isAlive,
  namespaceOf,
  readCmdline,
  runSync,
  startTimeOf,
  waitSync,
} from './shell.ts'

/** Everything a testbed named `name` owns is recognisable by these names. */
export function testbedNames(name: string) {
  return {
    dir: `/tmp/heqet-testbed-${name}`,
    /** argv[0] of each node's namespace holder: `heqet-testbed:<name>:<node>` */
    holderMarker: `heqet-testbed:${name}:`,
    bridge: `${name}br`,
    veth: (i: number) => `${name}v${i}`,
    isVeth: (link: string) => new RegExp(`^${name}v\\d+$`).test(link),
  }
}

export interface Owner {
  pid: number
  startTime: string
}

export function readOwner(dir: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(`${dir}/owner.json`, 'utf8')) as Owner
  } catch {
    return undefined
  }
}

/** True when the process that created the testbed still runs (and is not a reused pid). */
export function ownerIsAlive(owner: Owner): boolean {
  return isAlive(owner.pid) && startTimeOf(owner.pid) === owner.startTime
}

/** Holder processes (one per node) of the testbed, found by their argv[0] marker. */
export function findHolders(name: string): number[] {
  const { holderMarker } = testbedNames(name)
  return allPids().filter((pid) => readCmdline(pid)?.[0]?.startsWith(holderMarker))
}

/** Every process living in the given mount namespaces (glusterd, bricks, sshd, shells...). */
export function processesInMountNamespaces(namespaces: Set<string>): number[] {
  if (namespaces.size === 0) return []
  return allPids().filter((pid) => pid !== process.pid && namespaces.has(namespaceOf(pid, 'mnt') ?? ''))
}

/** Host processes whose command line names a path of the testbed (FUSE clients, sshd -f ...). */
function processesNaming(dir: string): number[] {
  return allPids().filter(
    (pid) => pid !== process.pid && readCmdline(pid)?.some((arg) => arg.startsWith(`${dir}/`)) === true,
  )
}

/** Loop devices whose backing file lies in the testbed directory. */
export function loopDevicesUnder(dir: string): string[] {
  const devices: string[] = []
  for (const entry of readdirSync('/sys/block').filter((n) => n.startsWith('loop'))) {
    try {
      const backing = readFileSync(`/sys/block/${entry}/loop/backing_file`, 'utf8').trim()
      if (backing.startsWith(`${dir}/`)) devices.push(`/dev/${entry}`)
    } catch {
      // not bound to a file
    }
  }
  return devices
}

export function testbedLinks(name: string): string[] {
  const names = testbedNames(name)
  const out = runSync('ip', ['-o', 'link', 'show']).stdout
  return out
    .split('\n')
    .map((line) => line.split(':')[1]?.trim().split('@')[0])
    .filter((link): link is string => !!link && (link === names.bridge || names.isVeth(link)))
}

/** SIGTERM, a grace period, then SIGKILL; waits until all are gone. */
function terminate(pids: number[], graceMs: number): void {
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig)
      } catch {
        // already gone
      }
    }
  }
  signal('SIGTERM')
  if (waitSync(() => pids.every((p) => !isAlive(p)), graceMs)) return
  signal('SIGKILL')
  waitSync(() => pids.every((p) => !isAlive(p)), 5000)
}

function unmountHostMounts(dir: string): void {
  for (const mnt of hostMountsUnder(dir)) {
    if (runSync('umount', [mnt]).code !== 0) runSync('umount', ['-l', mnt])
  }
}

/** Detaches the testbed's loop devices; busy ones detach once their last user is gone. */
function detachLoops(dir: string): string[] {
  for (const dev of loopDevicesUnder(dir)) runSync('losetup', ['-d', dev])
  waitSync(() => loopDevicesUnder(dir).length === 0, 10_000, 100)
  return loopDevicesUnder(dir)
}

/**
 * Removes every trace of testbed `name`: host FUSE mounts, node processes,
 * namespaces (they die with their last process), loop devices, bridge and
 * veths, and the directory. Returns what could not be removed.
 */
export function teardownTestbed(name: string): string[] {
  const { dir, bridge } = testbedNames(name)
  const problems: string[] = []

  // Host FUSE mounts first, while the volume servers still answer.
  unmountHostMounts(dir)
  terminate(processesNaming(dir), 3000)

  const holders = findHolders(name)
  const namespaces = new Set(holders.map((pid) => namespaceOf(pid, 'mnt')).filter((ns) => ns !== undefined))
  terminate(processesInMountNamespaces(namespaces), 3000)
  // Killing the holders frees the namespaces, their mounts (bricks) and so
  // the loop devices under them.
  terminate(holders, 1000)

  const stuckLoops = detachLoops(dir)
  if (stuckLoops.length) problems.push(`loop devices still attached: ${stuckLoops.join(' ')}`)

  for (const link of testbedLinks(name)) runSync('ip', ['link', 'del', link])
  if (testbedLinks(name).length) problems.push(`links left: ${testbedLinks(name).join(' ')}`)

  const mounts = hostMountsUnder(dir)
  if (mounts.length) problems.push(`host mounts left: ${mounts.join(' ')}`)
  else if (existsSync(dir)) {
    // --one-file-system: never reach into a mount that escaped the checks above.
    const res = runSync('rm', ['-rf', '--one-file-system', dir], 120_000)
    if (res.code !== 0) problems.push(`rm -rf ${dir}: ${res.stderr.trim()}`)
  }
  if (existsSync(`/sys/class/net/${bridge}`)) problems.push(`bridge ${bridge} left`)
  return problems
}

/** The mount and network namespaces of the testbed's nodes, e.g. 'net:[4026532301]'. */
export function nodeNamespaces(name: string): Set<string> {
  const namespaces = new Set<string>()
  for (const pid of findHolders(name)) {
    for (const kind of ['mnt', 'net'] as const) {
      const ns = namespaceOf(pid, kind)
      if (ns) namespaces.add(ns)
    }
  }
  return namespaces
}

/**
 * Whatever of testbed `name` still exists: holders, processes in the given
 * namespaces (take them with nodeNamespaces() before destroying), loop
 * devices, links, host mounts, the directory. Empty after a clean teardown.
 */
export function testbedResidue(name: string, namespaces: Set<string> = new Set()): string[] {
  const { dir } = testbedNames(name)
  const residue: string[] = []
  for (const pid of findHolders(name)) residue.push(`holder process ${pid}`)
  for (const pid of allPids()) {
    for (const kind of ['mnt', 'net'] as const) {
      const ns = namespaceOf(pid, kind)
      if (ns && namespaces.has(ns)) residue.push(`process ${pid} (${readCmdline(pid)?.join(' ')}) in ${ns}`)
    }
  }
  for (const pid of processesNaming(dir)) residue.push(`process ${pid} (${readCmdline(pid)?.join(' ')})`)
  for (const dev of loopDevicesUnder(dir)) residue.push(`loop device ${dev}`)
  for (const link of testbedLinks(name)) residue.push(`link ${link}`)
  for (const mnt of hostMountsUnder(dir)) residue.push(`host mount ${mnt}`)
  if (existsSync(dir)) residue.push(`directory ${dir}`)
  return residue
}

// ----------------------------------------------- cleanup on exit and signals

const live = new Set<string>()
let handlersInstalled = false

/** Tears the testbed down when the process exits or is interrupted, if destroy() did not. */
export function registerForCleanup(name: string): void {
  live.add(name)
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', teardownAllLive)
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      teardownAllLive()
      process.exit(code)
    })
  }
}

export function unregisterCleanup(name: string): void {
  live.delete(name)
}

function teardownAllLive(): void {
  for (const name of [...live]) {
    live.delete(name)
    const problems = teardownTestbed(name)
    if (problems.length) process.stderr.write(`testbed ${name}: cleanup incomplete: ${problems.join('; ')}\n`)
  }
}
