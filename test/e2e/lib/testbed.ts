// Every e2e test (each file, or each subtest that builds a testbed) starts with
//
//   if (!requireTestbed(t)) return        // in a subtest
//   if (requireTestbed(t)) await runAll() // at the top of a file
//
// When the machine lacks what the testbed needs (root, glusterd, sshd …) the
// test is skipped with the reason — unless HEQET_E2E_REQUIRED=1 (set by
// .ci/run), where it fails instead: CI cannot pass by skipping the testbed.
// Never skip with `{ skip: … }` or `t.plan(0, …)` directly.
//
// End-to-end testbed: 3–4 GlusterFS storage nodes on this machine, each in
// its own namespaces on a private bridge, reachable over SSH like the nodes
// heketi manages. See node.ts (one node), node-setup.sh (inside a node),
// cleanup.ts (teardown, also after a crash) and ../fixtures (stand-ins for
// lvm, udevadm and systemctl, since the kernel has no device-mapper).
//
// Usage (as root, after .ci/e2e-deps.sh):
//
//   if (!requireTestbed(t)) return
//   const tb = await createTestbed({ nodes: 3, devicesPerNode: 2 })
//   t.teardown(() => tb.destroy())
//   // heqet config: executor ssh, keyfile tb.sshKeyFile, user tb.sshUser, port tb.sshPort;
//   // node add with hostnames.manage = hostnames.storage = [node.ip], devices node.devices
//   const m = await tb.mountVolume(tb.nodes[0].ip, 'vol_x', [tb.nodes[1].ip, tb.nodes[2].ip])
//   t.same((await tb.snapshot())[0].lvs, [])
//
// Two testbeds can live side by side when their names differ (each name gets
// its own /24 unless `subnet` says otherwise). A testbed left by a killed run
// is removed by the next createTestbed with the same name.

import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { requirePrerequisite } from '../../helpers/prerequisite.ts'
import {
  ownerIsAlive,
  readOwner,
  registerForCleanup,
  teardownTestbed,
  testbedNames,
  unregisterCleanup,
} from './cleanup.ts'
import { type StartedNode, startNode } from './node.ts'
import { allPids, hostMountsUnder, readCmdline, run, runOk, sleep, startTimeOf } from './shell.ts'
import { type NodeSnapshot, takeSnapshot } from './snapshot.ts'

export type { NodeSnapshot } from './snapshot.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url))
const DEV_TEMPLATE_SCRIPT = fileURLToPath(new URL('./dev-template.sh', import.meta.url))

export interface TestNode {
  name: string
  /** manage AND storage hostname: an address on the private bridge, never 127.x */
  ip: string
  /** e.g. ['/dev/sdb', '/dev/sdc'] as seen inside the node */
  devices: string[]
  /** runs `bash -c cmd` inside the node's namespaces (for assertions) */
  exec(cmd: string): Promise<{ code: number; stdout: string; stderr: string }>
}

export interface Testbed {
  nodes: TestNode[]
  sshKeyFile: string
  sshUser: string
  sshPort: number
  /** the testbed's name: prefix of its links, directory and holder processes */
  name: string
  /** host-side directory of the testbed (/tmp/heqet-testbed-<name>) */
  dir: string
  /** how long createTestbed took, in milliseconds */
  createMs: number
  snapshot(): Promise<NodeSnapshot[]>
  /** FUSE mount on the host */
  mountVolume(
    server: string,
    volume: string,
    backupServers: string[],
  ): Promise<{ path: string; unmount(): Promise<void> }>
  destroy(): Promise<void>
}

export interface TestbedOptions {
  nodes: number
  devicesPerNode: number
  /** size of each node disk (sparse), default 8 GiB */
  deviceSizeGiB?: number
  /** [a-z][a-z0-9]{0,7}, default 'hqtb'; two live testbeds need different names */
  name?: string
  /** first three octets of the private /24, e.g. '172.31.77' (or env HEQET_TESTBED_SUBNET);
   * default: the first free /24 of 172.31.100–249, starting at one derived from the name */
  subnet?: string
}

const REQUIRED_BINARIES = [
  'glusterd',
  'gluster',
  'mount.glusterfs',
  'sshd',
  'ssh-keygen',
  'ip',
  'losetup',
  'mkfs.xfs',
  'nsenter',
  'unshare',
  'blkid',
]

export function testbedPrerequisites(): { ok: boolean; why?: string } {
  const missing: string[] = []
  if (process.getuid?.() !== 0) missing.push('root')
  for (const bin of REQUIRED_BINARIES) if (!findBinary(bin)) missing.push(bin)
  if (!existsSync('/usr/bin/python3')) missing.push('/usr/bin/python3 (LVM simulator)')
  for (const dev of ['/dev/loop-control', '/dev/fuse']) if (!existsSync(dev)) missing.push(dev)
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) missing.push('overlayfs')
  if (missing.length === 0) return { ok: true }
  return { ok: false, why: `testbed needs ${missing.join(', ')} (run .ci/e2e-deps.sh as root)` }
}

/** true when the test may build a testbed; otherwise it is skipped, or failed
 * when HEQET_E2E_REQUIRED=1 (see the top of this file) */
export function requireTestbed(t: Test): boolean {
  const pre = testbedPrerequisites()
  return requirePrerequisite(t, pre.ok ? undefined : `e2e testbed unavailable: ${pre.why}`)
}

function findBinary(name: string): boolean {
  const dirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
  return dirs.some((d) => existsSync(`${d}/${name}`))
}

export async function createTestbed(opts: TestbedOptions): Promise<Testbed> {
  const started = performance.now()
  const name = opts.name ?? 'hqtb'
  validateOptions(opts, name)
  const names = testbedNames(name)
  const candidates = subnetCandidates(opts.subnet, name)

  removeLeftovers(name)
  mkdirSync(names.dir, { recursive: true, mode: 0o700 })
  writeFileSync(
    `${names.dir}/owner.json`,
    JSON.stringify({ pid: process.pid, startTime: startTimeOf(process.pid) }),
  )
  registerForCleanup(name)

  try {
    const usrLayer = await prepareUsrLayer(names.dir)
    const devTemplate = `${names.dir}/dev-template`
    await runOk('/bin/bash', [DEV_TEMPLATE_SCRIPT, devTemplate])
    const sshKeyFile = await generateKey(names.dir)
    const subnet = await createBridge(names.bridge, candidates)

    const nodes = await Promise.all(
      Array.from({ length: opts.nodes }, (_, i) =>
        startNode({
          hostname: `${name}-node${i + 1}`,
          ip: `${subnet}.${11 + i}`,
          holderMarker: `${names.holderMarker}node${i + 1}`,
          veth: names.veth(i + 1),
          bridge: names.bridge,
          dir: `${names.dir}/nodes/node${i + 1}`,
          devicesPerNode: opts.devicesPerNode,
          deviceSizeGiB: opts.deviceSizeGiB ?? 8,
          usrLayer,
          devTemplate,
          authorizedKey: readFileSync(`${sshKeyFile}.pub`, 'utf8').trim(),
        }),
      ),
    )
    return makeTestbed(name, nodes, sshKeyFile, performance.now() - started)
  } catch (err) {
    unregisterCleanup(name)
    teardownTestbed(name)
    throw err
  }
}

function validateOptions(opts: TestbedOptions, name: string): void {
  // The name prefixes interface names, which the kernel limits to 15 bytes.
  if (!/^[a-z][a-z0-9]{0,7}$/.test(name))
    throw new Error(`testbed name must match [a-z][a-z0-9]{0,7}: ${name}`)
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 16)
    throw new Error('nodes must be 1..16')
  if (!Number.isInteger(opts.devicesPerNode) || opts.devicesPerNode < 1 || opts.devicesPerNode > 8) {
    throw new Error('devicesPerNode must be 1..8')
  }
}

/** The /24 asked for, or every /24 of 172.31.100–249, starting at one derived from the name. */
function subnetCandidates(given: string | undefined, name: string): string[] {
  const wanted = given ?? process.env.HEQET_TESTBED_SUBNET
  if (!wanted) {
    const first = hash(name) % 150
    return Array.from({ length: 150 }, (_, k) => `172.31.${100 + ((first + k) % 150)}`)
  }
  const subnet = wanted.replace(/\.0\/24$/, '')
  if (!/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(subnet))
    throw new Error(`subnet must look like 172.31.77: ${subnet}`)
  if (subnet.startsWith('127.') || subnet.startsWith('0.'))
    throw new Error('gluster refuses 127.x and 0.x addresses')
  return [subnet]
}

function hash(text: string): number {
  let h = 0
  for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return h
}

/** Removes what a crashed run of the same testbed left; refuses if that run is still alive. */
function removeLeftovers(name: string): void {
  const { dir } = testbedNames(name)
  const owner = readOwner(dir)
  if (owner && ownerIsAlive(owner)) {
    throw new Error(`testbed ${name} is in use by pid ${owner.pid}; destroy it first or pick another name`)
  }
  const problems = teardownTestbed(name)
  if (problems.length)
    throw new Error(`could not remove leftovers of testbed ${name}: ${problems.join('; ')}`)
}

/**
 * The top layer of each node's /usr: the lvm, udevadm, systemctl and
 * gluster-block stand-ins, and the gsyncd stand-in over glusterd's geo-replication helper
 * (see fixtures/glusterfs/gsyncd). Copied so the overlay's lower directory
 * does not change while nodes run.
 */
async function prepareUsrLayer(dir: string): Promise<string> {
  const layer = `${dir}/usr-layer`
  cpSync(`${FIXTURES}/usr`, layer, { recursive: true })
  // Compiled once here: the overlay is read-only, so each lvm call would
  // otherwise compile the simulator anew.
  await runOk('/usr/bin/python3', [
    '-m',
    'compileall',
    '-q',
    `${layer}/lib/heqet-lvm-sim`,
    `${layer}/lib/heqet-gluster-block`,
  ])
  const gsyncd = findGsyncd()
  if (gsyncd) {
    const target = `${layer}/${gsyncd.slice('/usr/'.length)}`
    mkdirSync(dirname(target), { recursive: true })
    cpSync(gsyncd, `${target}.real`)
    cpSync(`${FIXTURES}/glusterfs/gsyncd`, target)
  }
  return layer
}

function findGsyncd(): string | undefined {
  const candidates = ['/usr/libexec/glusterfs/gsyncd', '/usr/lib/glusterfs/gsyncd']
  for (const entry of readdirSync('/usr/lib')) candidates.push(`/usr/lib/${entry}/glusterfs/gsyncd`)
  return candidates.find((path) => existsSync(path))
}

async function generateKey(dir: string): Promise<string> {
  const file = `${dir}/id_ed25519`
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'heqet-testbed', '-f', file])
  return file
}

/** Creates the bridge holding the host's `.1` in the first free candidate /24; returns that /24. */
async function createBridge(bridge: string, candidates: string[]): Promise<string> {
  await runOk('ip', ['link', 'add', bridge, 'type', 'bridge'])
  // IPv4 only on the bridge: no IPv6 router solicitations or DAD.
  writeFileSync(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, '1')
  await runOk('ip', ['link', 'set', bridge, 'up'])
  for (const subnet of candidates) {
    if (await subnetUsedBy(subnet, bridge)) continue
    await runOk('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', bridge])
    // Another testbed may have taken the same /24 at the same moment: a
    // creator that sees a rival gives it up and tries the next one.
    if (!(await subnetUsedBy(subnet, bridge))) return subnet
    await runOk('ip', ['addr', 'del', `${subnet}.1/24`, 'dev', bridge])
    await sleep(Math.random() * 200)
  }
  throw new Error(`no free /24 for the testbed among ${candidates[0]}.0/24...; pass another subnet`)
}

/** True when a link other than `except` has an IPv4 address in the /24. */
async function subnetUsedBy(subnet: string, except: string): Promise<boolean> {
  const lines = (await runOk('ip', ['-o', '-4', 'addr', 'show'])).split('\n')
  return lines.some((line) => {
    const [, link, , address] = line.split(/\s+/)
    return link !== except && address?.startsWith(`${subnet}.`)
  })
}

function makeTestbed(name: string, started: StartedNode[], sshKeyFile: string, createMs: number): Testbed {
  const { dir } = testbedNames(name)
  let mountCounter = 0
  const nodes: TestNode[] = started.map((n) => ({
    name: n.spec.hostname,
    ip: n.spec.ip,
    devices: n.devices,
    exec: n.exec,
  }))
  return {
    nodes,
    sshKeyFile,
    sshUser: 'root',
    sshPort: 22,
    name,
    dir,
    createMs,
    snapshot: () => Promise.all(nodes.map((n) => takeSnapshot(n.exec))),
    mountVolume: (server, volume, backupServers) =>
      mountVolume(dir, ++mountCounter, server, volume, backupServers),
    async destroy() {
      unregisterCleanup(name)
      const problems = teardownTestbed(name)
      if (problems.length) throw new Error(`testbed ${name} teardown incomplete: ${problems.join('; ')}`)
    },
  }
}

async function mountVolume(
  dir: string,
  counter: number,
  server: string,
  volume: string,
  backupServers: string[],
): Promise<{ path: string; unmount(): Promise<void> }> {
  const path = `${dir}/mnt/${volume}-${counter}`
  mkdirSync(path, { recursive: true })
  mkdirSync(`${dir}/logs`, { recursive: true })
  const options = [`log-file=${dir}/logs/fuse-${volume}-${counter}.log`]
  // Backup servers are ':'-separated; a ',' would end the option.
  if (backupServers.length) options.unshift(`backup-volfile-servers=${backupServers.join(':')}`)
  const res = await run('mount', ['-t', 'glusterfs', '-o', options.join(','), `${server}:/${volume}`, path])
  if (res.code !== 0 || !hostMountsUnder(path).includes(path)) {
    rmdirQuietly(path)
    throw new Error(
      `mounting ${server}:/${volume} failed (${res.code}): ${res.stderr.trim() || res.stdout.trim()}`,
    )
  }
  return { path, unmount: () => unmountVolume(path) }
}

async function unmountVolume(path: string): Promise<void> {
  if (hostMountsUnder(path).includes(path)) {
    const res = await run('umount', [path])
    if (res.code !== 0) throw new Error(`umount ${path}: ${res.stderr.trim()}`)
  }
  // The FUSE client process exits shortly after the unmount.
  const client = () => allPids().filter((pid) => readCmdline(pid)?.includes(path))
  for (let i = 0; i < 100 && client().length; i++) await sleep(50)
  rmdirQuietly(path)
}

function rmdirQuietly(path: string): void {
  try {
    rmdirSync(path)
  } catch {
    // best effort: teardown removes the whole directory
  }
}

// For tests that assert teardown left nothing behind.
export { nodeNamespaces, testbedResidue } from './cleanup.ts'
