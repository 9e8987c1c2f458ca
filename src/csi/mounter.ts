// The node's side effects: mount(8) and umount(8) run without a shell,
// every argument checked against an allow-list first, and the kernel's
// /proc/self/mountinfo as the one truth about what is mounted where.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { statfs } from 'node:fs/promises'
import { assertHost, assertName } from '../../executors/commands/validate.ts'

export interface MountEntry {
  mountPoint: string
  fsType: string
  /** e.g. 10.0.0.1:/vol_x for a gluster FUSE mount (also on its bind mounts) */
  source: string
  options: string[]
}

export interface FsStats {
  totalBytes: number
  availableBytes: number
  usedBytes: number
  totalInodes: number
  freeInodes: number
  usedInodes: number
}

export interface Mounter {
  /** mount -t glusterfs -o <options> <server>:/<volume> <target> */
  mountGluster(server: string, volume: string, target: string, options: string[]): Promise<void>
  /** mount --bind <source> <target>, then remount read-only when asked */
  bindMount(source: string, target: string, readOnly: boolean): Promise<void>
  unmount(target: string): Promise<void>
  mountAt(path: string): MountEntry | undefined
  stats(path: string): Promise<FsStats>
  /** why this node cannot mount gluster volumes, or undefined */
  problem(): string | undefined
}

/**
 * Kubelet paths (/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount)
 * and their like; nothing a mount helper script could misread.
 */
const MOUNT_PATH = /^\/[a-zA-Z0-9_.~:@+=/-]*$/
/** one mount option: no ',' (it would start another option), no spaces or quotes */
const MOUNT_OPTION = /^[a-zA-Z0-9_.=:+/@-]+$/

export class UnsafeMountArgumentError extends Error {
  constructor(what: string, value: string) {
    super(`refusing to mount: invalid ${what} ${JSON.stringify(value)}`)
    this.name = 'UnsafeMountArgumentError'
  }
}

export function assertMountPath(path: string, what = 'path'): string {
  if (!MOUNT_PATH.test(path) || path.split('/').includes('..')) throw new UnsafeMountArgumentError(what, path)
  return path
}

export function assertMountOption(option: string): string {
  if (!MOUNT_OPTION.test(option)) throw new UnsafeMountArgumentError('mount option', option)
  return option
}

/** argv of the FUSE mount; exported so tests can check it byte for byte */
export function glusterMountArgs(
  server: string,
  volume: string,
  target: string,
  options: string[],
): string[] {
  assertHost(server, 'gluster server')
  assertName(volume, 'gluster volume name')
  assertMountPath(target, 'mount target')
  const args = ['-t', 'glusterfs']
  if (options.length) args.push('-o', options.map(assertMountOption).join(','))
  args.push(`${server}:/${volume}`, target)
  return args
}

/** mountinfo escapes space, tab, newline and backslash as octal */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    const [left, right] = line.split(' - ')
    if (!left || !right) continue
    const fields = left.split(' ')
    const [fsType, source] = right.split(' ')
    entries.push({
      mountPoint: unescapeMountField(fields[4] ?? ''),
      fsType: fsType ?? '',
      source: unescapeMountField(source ?? ''),
      options: (fields[5] ?? '').split(','),
    })
  }
  return entries
}

function run(command: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (!err) return resolve()
      const output = `${stderr}`.trim() || `${stdout}`.trim() || err.message
      reject(new Error(`${command} ${args.join(' ')}: ${output}`))
    })
  })
}

export class SystemMounter implements Mounter {
  constructor(private readonly timeoutMs = 120_000) {}

  async mountGluster(server: string, volume: string, target: string, options: string[]): Promise<void> {
    await run('mount', glusterMountArgs(server, volume, target, options), this.timeoutMs)
  }

  async bindMount(source: string, target: string, readOnly: boolean): Promise<void> {
    assertMountPath(source, 'bind source')
    assertMountPath(target, 'bind target')
    await run('mount', ['--bind', source, target], this.timeoutMs)
    if (readOnly) await run('mount', ['-o', 'remount,bind,ro', target], this.timeoutMs)
  }

  /** umount; a FUSE mount whose client died refuses politely and goes away lazily. */
  async unmount(target: string): Promise<void> {
    assertMountPath(target, 'unmount target')
    try {
      await run('umount', [target], this.timeoutMs)
    } catch (err) {
      if (!/not connected|busy/i.test((err as Error).message)) throw err
      await run('umount', ['-l', target], this.timeoutMs)
    }
  }

  problem(): string | undefined {
    const dirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
    if (!dirs.some((d) => existsSync(`${d}/mount.glusterfs`))) {
      return 'mount.glusterfs is not installed (package glusterfs-client / glusterfs-fuse)'
    }
    if (!existsSync('/dev/fuse')) return '/dev/fuse is missing'
    return undefined
  }

  mountAt(path: string): MountEntry | undefined {
    const entries = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    // the last one wins: it is the mount a path lookup sees
    return entries.filter((e) => e.mountPoint === path).pop()
  }

  async stats(path: string): Promise<FsStats> {
    const s = await statfs(path)
    return {
      totalBytes: s.blocks * s.bsize,
      availableBytes: s.bavail * s.bsize,
      usedBytes: (s.blocks - s.bfree) * s.bsize,
      totalInodes: s.files,
      freeInodes: s.ffree,
      usedInodes: s.files - s.ffree,
    }
  }
}
