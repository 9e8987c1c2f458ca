// CSI Node service: NodeStageVolume FUSE-mounts the gluster volume once per
// node at the staging path; NodePublishVolume bind-mounts it into each pod's
// target path (read-only when asked). Mount info comes from heqet when the
// node has --server (always current), else from the volume_context the
// controller wrote at create time.
import { mkdir, rmdir } from 'node:fs/promises'
import type { Logger } from 'pino'
import { firstUnsupported, isReadOnlyMode } from './capabilities.ts'
import { asCsiError, CsiError, CsiErrors } from './errors.ts'
import { type HeqetClient, HeqetUnreachableError } from './heqet-client.ts'
import { CONTEXT_SERVERS, CONTEXT_VOLUME, fetchVolume, mountServers } from './heqet-volumes.ts'
import type {
  NodeExpandVolumeRequest,
  NodeGetVolumeStatsRequest,
  NodePublishVolumeRequest,
  NodeStageVolumeRequest,
  StringMap,
  VolumeCapability,
} from './messages.ts'
import { assertMountPath, type MountEntry, type Mounter, UnsafeMountArgumentError } from './mounter.ts'

export const NODE_CAPABILITIES = [
  'STAGE_UNSTAGE_VOLUME',
  'GET_VOLUME_STATS',
  'EXPAND_VOLUME',
  'SINGLE_NODE_MULTI_WRITER',
] as const

/** stacked mounts on one path are unmounted one by one, a bounded number of times */
const MAX_UNMOUNTS = 8

export interface NodeServiceOptions {
  nodeId: string
  mounter: Mounter
  log: Logger
  /** heqet, when the node may ask it for fresh mount info */
  client?: HeqetClient
  /** FUSE client logs go to <dir>/<volume>.log (default: glusterfs's own) */
  mountLogDir?: string
}

interface GlusterMount {
  volume: string
  /** volfile server first, then the backups */
  servers: string[]
}

function checkedPath(path: string, field: string): string {
  if (!path) throw CsiErrors.missing(field)
  try {
    return assertMountPath(path, field)
  } catch (err) {
    if (err instanceof UnsafeMountArgumentError) throw CsiErrors.invalid(err.message)
    throw err
  }
}

function checkedCapability(cap: VolumeCapability | null | undefined): VolumeCapability {
  if (!cap) throw CsiErrors.missing('volume_capability')
  const why = firstUnsupported([cap])
  if (why) throw CsiErrors.unsupportedCapability(why)
  return cap
}

/** whether a mount (FUSE or a bind of it) serves this gluster volume */
function servesVolume(entry: MountEntry, volume: string): boolean {
  return entry.source.endsWith(`:/${volume}`) || entry.source.endsWith(`:${volume}`)
}

export class NodeService {
  private readonly busy = new Set<string>()

  constructor(private readonly opts: NodeServiceOptions) {}

  getCapabilities() {
    return { capabilities: NODE_CAPABILITIES.map((type) => ({ rpc: { type } })) }
  }

  getInfo() {
    return { node_id: this.opts.nodeId, max_volumes_per_node: 0 }
  }

  private async exclusive<T>(path: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(path)) throw CsiErrors.busy(path)
    this.busy.add(path)
    try {
      return await fn()
    } finally {
      this.busy.delete(path)
    }
  }

  private async glusterMount(
    volumeId: string,
    context: StringMap,
    signal: AbortSignal,
  ): Promise<GlusterMount> {
    const fromContext = (): GlusterMount | undefined => {
      const volume = context[CONTEXT_VOLUME]
      const servers = (context[CONTEXT_SERVERS] ?? '').split(',').filter((s) => s !== '')
      return volume && servers.length ? { volume, servers } : undefined
    }
    if (this.opts.client) {
      try {
        const v = await fetchVolume(this.opts.client, volumeId, signal)
        if (!v) throw CsiErrors.volumeNotFound(volumeId)
        return { volume: v.name, servers: mountServers(v) }
      } catch (err) {
        const fallback = fromContext()
        if (!(err instanceof HeqetUnreachableError) || !fallback)
          throw asCsiError(err, `reading volume ${volumeId}`)
        this.opts.log.warn(
          { volume: volumeId, err: err.message },
          'heqet unreachable: mounting from volume_context',
        )
        return fallback
      }
    }
    const mount = fromContext()
    if (!mount) throw CsiErrors.mountInfoMissing(volumeId)
    return mount
  }

  async stage(req: NodeStageVolumeRequest, signal: AbortSignal): Promise<Record<string, never>> {
    if (!req.volume_id) throw CsiErrors.missing('volume_id')
    const staging = checkedPath(req.staging_target_path, 'staging_target_path')
    const cap = checkedCapability(req.volume_capability)
    return this.exclusive(staging, async () => {
      const gluster = await this.glusterMount(req.volume_id, req.volume_context ?? {}, signal)
      const existing = this.opts.mounter.mountAt(staging)
      if (existing) {
        if (servesVolume(existing, gluster.volume)) return {}
        throw CsiErrors.stagedDifferently(staging)
      }
      const [server, ...backups] = gluster.servers
      const options: string[] = []
      // gluster ends an option at ','; its backup server list is ':'-separated
      if (backups.length) options.push(`backup-volfile-servers=${backups.join(':')}`)
      if (isReadOnlyMode(cap)) options.push('ro')
      if (this.opts.mountLogDir) options.push(`log-file=${this.opts.mountLogDir}/${gluster.volume}.log`)
      options.push(...(cap.mount?.mount_flags ?? []))
      try {
        await mkdir(staging, { recursive: true })
        await this.opts.mounter.mountGluster(server!, gluster.volume, staging, options)
      } catch (err) {
        if (err instanceof UnsafeMountArgumentError) throw CsiErrors.invalid(err.message)
        throw CsiErrors.mountFailed(`mounting ${gluster.volume} at ${staging}`, (err as Error).message)
      }
      if (!this.opts.mounter.mountAt(staging)) {
        throw CsiErrors.mountFailed(
          `mounting ${gluster.volume} at ${staging}`,
          'mount succeeded but nothing is mounted',
        )
      }
      this.opts.log.info(
        { volume: req.volume_id, gluster: gluster.volume, staging },
        'NodeStageVolume: mounted',
      )
      return {}
    })
  }

  async unstage(volumeId: string, stagingPath: string): Promise<Record<string, never>> {
    if (!volumeId) throw CsiErrors.missing('volume_id')
    const staging = checkedPath(stagingPath, 'staging_target_path')
    return this.exclusive(staging, async () => {
      await this.unmountAll(staging, `unmounting ${staging}`)
      this.opts.log.info({ volume: volumeId, staging }, 'NodeUnstageVolume: unmounted')
      return {}
    })
  }

  private async unmountAll(path: string, what: string): Promise<void> {
    for (let i = 0; this.opts.mounter.mountAt(path); i++) {
      if (i >= MAX_UNMOUNTS) throw CsiErrors.mountFailed(what, `still mounted after ${MAX_UNMOUNTS} unmounts`)
      try {
        await this.opts.mounter.unmount(path)
      } catch (err) {
        throw CsiErrors.mountFailed(what, (err as Error).message)
      }
    }
  }

  async publish(req: NodePublishVolumeRequest): Promise<Record<string, never>> {
    if (!req.volume_id) throw CsiErrors.missing('volume_id')
    const target = checkedPath(req.target_path, 'target_path')
    const cap = checkedCapability(req.volume_capability)
    const staging = checkedPath(req.staging_target_path, 'staging_target_path')
    const readOnly = req.readonly || isReadOnlyMode(cap)
    return this.exclusive(target, async () => {
      const staged = this.opts.mounter.mountAt(staging)
      if (!staged) throw CsiErrors.notStaged(req.volume_id, staging)
      const existing = this.opts.mounter.mountAt(target)
      if (existing) {
        const sameMode = existing.options.includes('ro') === readOnly
        if (existing.source === staged.source && sameMode) return {}
        throw CsiErrors.stagedDifferently(target)
      }
      try {
        await mkdir(target, { recursive: true })
        await this.opts.mounter.bindMount(staging, target, readOnly)
      } catch (err) {
        throw CsiErrors.mountFailed(`bind-mounting ${staging} at ${target}`, (err as Error).message)
      }
      this.opts.log.info({ volume: req.volume_id, target, readOnly }, 'NodePublishVolume: mounted')
      return {}
    })
  }

  async unpublish(volumeId: string, targetPath: string): Promise<Record<string, never>> {
    if (!volumeId) throw CsiErrors.missing('volume_id')
    const target = checkedPath(targetPath, 'target_path')
    return this.exclusive(target, async () => {
      await this.unmountAll(target, `unmounting ${target}`)
      // the target directory is ours to remove (the CO created only its parent)
      try {
        await rmdir(target)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw CsiErrors.mountFailed(`removing ${target}`, (err as Error).message)
        }
      }
      this.opts.log.info({ volume: volumeId, target }, 'NodeUnpublishVolume: unmounted')
      return {}
    })
  }

  private mountedPath(volumeId: string, path: string): string {
    if (!volumeId) throw CsiErrors.missing('volume_id')
    if (!path) throw CsiErrors.missing('volume_path')
    if (!path.startsWith('/') || !this.opts.mounter.mountAt(path)) throw CsiErrors.pathNotFound(path)
    return path
  }

  async volumeStats(req: NodeGetVolumeStatsRequest) {
    const path = this.mountedPath(req.volume_id, req.volume_path)
    try {
      const s = await this.opts.mounter.stats(path)
      return {
        usage: [
          { unit: 'BYTES', total: s.totalBytes, available: s.availableBytes, used: s.usedBytes },
          { unit: 'INODES', total: s.totalInodes, available: s.freeInodes, used: s.usedInodes },
        ],
      }
    } catch (err) {
      if (err instanceof CsiError) throw err
      throw CsiErrors.mountFailed(`statfs ${path}`, (err as Error).message)
    }
  }

  /** Nothing to grow on the node: the servers grew the volume; report what the mount sees. */
  async expand(req: NodeExpandVolumeRequest) {
    const path = this.mountedPath(req.volume_id, req.volume_path)
    try {
      return { capacity_bytes: (await this.opts.mounter.stats(path)).totalBytes }
    } catch (err) {
      throw CsiErrors.mountFailed(`statfs ${path}`, (err as Error).message)
    }
  }
}
