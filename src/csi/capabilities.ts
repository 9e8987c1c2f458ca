// Which volume capabilities a gluster volume mounted over FUSE can honour:
// a filesystem (never a raw block device), of type glusterfs, with every
// access mode, multi-node writers included (RWX is what gluster is for).
import type { AccessModeName, VolumeCapability } from './messages.ts'

const SUPPORTED_MODES = new Set<AccessModeName>([
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
])

const READ_ONLY_MODES = new Set<AccessModeName>(['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY'])

/** one mount(8) option each; no ',' so a flag cannot smuggle in others */
export const MOUNT_FLAG = /^[a-zA-Z0-9_.=:+/@-]+$/

/** Why the capability cannot be served, or undefined when it can. */
export function unsupportedBecause(cap: VolumeCapability): string | undefined {
  if (cap.block || cap.access_type === 'block') return 'block access: a gluster volume is a filesystem'
  if (!cap.mount) return 'no access type (mount) given'
  if (cap.mount.fs_type !== '' && cap.mount.fs_type !== 'glusterfs') {
    return `fs_type "${cap.mount.fs_type}": only glusterfs`
  }
  for (const flag of cap.mount.mount_flags ?? []) {
    if (!MOUNT_FLAG.test(flag)) return `mount flag ${JSON.stringify(flag)}`
  }
  const mode = cap.access_mode?.mode ?? 'UNKNOWN'
  if (!SUPPORTED_MODES.has(mode)) return `access mode ${mode}`
  return undefined
}

export function firstUnsupported(caps: VolumeCapability[]): string | undefined {
  for (const cap of caps) {
    const why = unsupportedBecause(cap)
    if (why) return why
  }
  return undefined
}

export function isReadOnlyMode(cap: VolumeCapability | null | undefined): boolean {
  return READ_ONLY_MODES.has(cap?.access_mode?.mode ?? 'UNKNOWN')
}
