// One storage node of the testbed: a holder process keeping a network, mount
// and UTS namespace alive, a veth to the testbed bridge, private disks (loop
// devices over sparse files) and glusterd + sshd started inside.

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { NODE_ENV, type RunResult, readCmdline, run, runOk, sleep } from './shell.ts'

const SETUP_SCRIPT = fileURLToPath(new URL('./node-setup.sh', import.meta.url))

export interface NodeSpec {
  /** hostname, e.g. `hqtb-node1` */
  hostname: string
  ip: string
  /** argv[0] that marks the holder process as this node's */
  holderMarker: string
  /** host-side veth name, attached to `bridge` */
  veth: string
  bridge: string
  /** private area of the node on the host (same path inside the node) */
  dir: string
  devicesPerNode: number
  deviceSizeGiB: number
  usrLayer: string
  /** common /dev nodes, see dev-template.sh */
  devTemplate: string
  authorizedKey: string
}

export interface StartedNode {
  spec: NodeSpec
  holderPid: number
  devices: string[]
  exec(cmd: string): Promise<RunResult>
}

/** `/dev/sdb`, `/dev/sdc`, ... as the node sees its disks. */
export function deviceNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `sd${String.fromCharCode('b'.charCodeAt(0) + i)}`)
}

export async function startNode(spec: NodeSpec): Promise<StartedNode> {
  mkdirSync(`${spec.dir}/disks`, { recursive: true })
  const names = deviceNames(spec.devicesPerNode)
  const disks = await Promise.all(
    names.map((n) => attachDisk(`${spec.dir}/disks/${n}.img`, spec.deviceSizeGiB)),
  )
  const holderPid = await startHolder(spec.holderMarker)
  await connectToBridge(spec, holderPid)

  const exec = (cmd: string) => nsenter(holderPid, ['/bin/bash', '-c', cmd])
  const setup = await nsenter(holderPid, ['/bin/bash', SETUP_SCRIPT], {
    NODE_DIR: spec.dir,
    NODE_HOSTNAME: spec.hostname,
    NODE_IP: spec.ip,
    USR_LAYER: spec.usrLayer,
    DEV_TEMPLATE: spec.devTemplate,
    DISKS: names.map((n, i) => `${n}:${disks[i]}:${wwn(spec.hostname, n)}`).join(' '),
    AUTHORIZED_KEY: spec.authorizedKey,
    // set HEQET_TESTBED_TRACE=1 for a timed `set -x` log in <node dir>/setup.trace
    SETUP_TRACE: process.env.HEQET_TESTBED_TRACE ?? '',
  })
  if (setup.code !== 0) throw new Error(`setting up node ${spec.hostname} failed: ${setup.stderr.trim()}`)
  await Promise.all([waitForPort(spec.ip, 22, 'sshd'), waitForGlusterd(exec, spec.hostname)])
  return { spec, holderPid, devices: names.map((n) => `/dev/${n}`), exec }
}

/** A stable, node-unique WWN for /dev/disk/by-id, as udev would show. */
function wwn(hostname: string, device: string): string {
  return createHash('md5').update(`${hostname}/${device}`).digest('hex').slice(0, 16)
}

/** A veth pair: `eth0` inside the node, the host end enslaved to the testbed bridge. */
async function connectToBridge(spec: NodeSpec, holderPid: number): Promise<void> {
  await runOk('ip', `link add ${spec.veth} type veth peer name eth0 netns ${holderPid}`.split(' '))
  await runOk('ip', ['link', 'set', spec.veth, 'master', spec.bridge, 'up'])
}

/** Runs argv inside all namespaces of the node, with a clean root environment. */
function nsenter(holderPid: number, argv: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run('nsenter', ['-t', String(holderPid), '-m', '-u', '-n', '--', ...argv], {
    env: { ...NODE_ENV, ...env },
  })
}

/**
 * Starts the process whose namespaces are the node. `unshare` execs into
 * bash and then sleep without forking, so the pid we get is the holder's;
 * `exec -a` gives it an argv[0] that cleanup can recognise after a crash.
 */
async function startHolder(marker: string): Promise<number> {
  const child = spawn(
    'unshare',
    [
      '--net',
      '--mount',
      '--uts',
      '--propagation',
      'private',
      '--',
      '/bin/bash',
      '-c',
      `exec -a '${marker}' sleep infinity`,
    ],
    { detached: true, stdio: 'ignore' },
  )
  child.unref()
  const pid = child.pid
  if (pid === undefined) throw new Error('could not start the namespace holder (unshare)')
  for (let i = 0; i < 200; i++) {
    if (readCmdline(pid)?.[0] === marker) return pid
    if (child.exitCode !== null) break
    await sleep(10)
  }
  throw new Error(`namespace holder ${marker} did not start`)
}

/** A sparse file on a fresh loop device; returns the loop's `major:minor`. */
async function attachDisk(file: string, sizeGiB: number): Promise<string> {
  const fd = openSync(file, 'w')
  ftruncateSync(fd, sizeGiB * 1024 ** 3)
  closeSync(fd)
  // Another testbed (or a node's LVM simulator) may grab the same free loop
  // device between losetup's lookup and its bind: retry.
  let last = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const res = await run('losetup', ['--find', '--show', file])
    if (res.code === 0) {
      const dev = res.stdout.trim().replace('/dev/', '')
      return readFileSync(`/sys/block/${dev}/dev`, 'utf8').trim()
    }
    last = res.stderr
    await sleep(50 * (attempt + 1))
  }
  throw new Error(`losetup ${file}: ${last.trim()}`)
}

/** glusterd listens before its start-up is done; a CLI answer means it serves requests. */
async function waitForGlusterd(exec: (cmd: string) => Promise<RunResult>, hostname: string): Promise<void> {
  let last: RunResult | undefined
  for (let attempt = 0; attempt < 60; attempt++) {
    last = await exec('gluster --mode=script --timeout=10 pool list')
    if (last.code === 0) return
    await sleep(250)
  }
  throw new Error(`glusterd on ${hostname} does not answer: ${last?.stderr.trim()}`)
}

async function waitForPort(host: string, port: number, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await canConnect(host, port)) return
    await sleep(25)
  }
  throw new Error(`${what} on ${host}:${port} did not come up within ${timeoutMs} ms`)
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1000 })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
    socket.once('timeout', () => done(false))
  })
}
