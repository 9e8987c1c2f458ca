// A Mounter that keeps its mounts in memory: the node service's decisions
// (what to mount where, with which options, idempotency) without FUSE.
// Every mount call still goes through the real argument builder.
import { type FsStats, glusterMountArgs, type MountEntry, type Mounter } from '../../src/csi/mounter.ts'

export class FakeMounter implements Mounter {
  readonly mounts = new Map<string, MountEntry>()
  /** argv of every mount/umount, as SystemMounter would run them */
  readonly calls: string[][] = []
  failNextMount?: string

  async mountGluster(server: string, volume: string, target: string, options: string[]): Promise<void> {
    const args = glusterMountArgs(server, volume, target, options)
    this.calls.push(['mount', ...args])
    if (this.failNextMount) {
      const why = this.failNextMount
      this.failNextMount = undefined
      throw new Error(why)
    }
    this.mounts.set(target, {
      mountPoint: target,
      fsType: 'fuse.glusterfs',
      source: `${server}:/${volume}`,
      options: [options.includes('ro') ? 'ro' : 'rw'],
    })
  }

  async bindMount(source: string, target: string, readOnly: boolean): Promise<void> {
    this.calls.push(['mount', '--bind', source, target, ...(readOnly ? ['(ro)'] : [])])
    const from = this.mounts.get(source)
    if (!from) throw new Error(`mount: ${source}: not mounted`)
    this.mounts.set(target, { ...from, mountPoint: target, options: [readOnly ? 'ro' : 'rw'] })
  }

  async unmount(target: string): Promise<void> {
    this.calls.push(['umount', target])
    if (!this.mounts.delete(target)) throw new Error(`umount: ${target}: not mounted`)
  }

  mountAt(path: string): MountEntry | undefined {
    return this.mounts.get(path)
  }

  async stats(_path: string): Promise<FsStats> {
    return {
      totalBytes: 2 * 1024 ** 3,
      availableBytes: 1024 ** 3,
      usedBytes: 1024 ** 3,
      totalInodes: 1000,
      freeInodes: 900,
      usedInodes: 100,
    }
  }

  problem(): string | undefined {
    return undefined
  }
}
