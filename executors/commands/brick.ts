// Brick create and destroy commands (heketi node commands §5).

import type { RemoteExecutorConfig } from '../config.ts'
import type { BrickRequest } from '../executor.ts'
import { volumeGroupName } from './device.ts'
import { autobackupFlag, lvmPrefix, type PrefixConfig } from './prefix.ts'
import {
  assertGid,
  assertId,
  assertLvmName,
  assertLvmSize,
  assertMountOptions,
  assertNonNegativeInteger,
  assertPath,
  assertPositiveInteger,
  shellArg as q,
  UnsafeCommandArgumentError,
} from './validate.ts'

export type BrickCommandConfig = PrefixConfig &
  Pick<RemoteExecutorConfig, 'backupLvmMetadata' | 'lvChunkSize' | 'xfsSu' | 'xfsSw' | 'mountOpts' | 'fstab'>

/** A brick as the builders need it: the executor's request without the host. */
export type BrickSpec = Omit<BrickRequest, 'host'>

const ARBITER_CHUNK_SIZE = '256K'
const FSTAB_APPEND_PROGRAM = 'BEGIN {print ARGV[1], ARGV[2], "xfs", ARGV[3], "1", "2" >> ARGV[4]}'
const GLUSTER_SNAPSHOT_MOUNT_PREFIXES = ['/run/gluster/', '/var/run/gluster/']

/** MNT: the brick path without its trailing `/brick` */
export function brickMountPoint(path: string): string {
  assertPath(path, 'brick path')
  const mnt = path.endsWith('/brick') ? path.slice(0, -'/brick'.length) : path
  return assertPath(mnt, 'brick mount point')
}

export function brickLvName(spec: Pick<BrickSpec, 'brickId' | 'lvmLv'>): string {
  return assertLvmName(spec.lvmLv || `brick_${assertId(spec.brickId, 'brick id')}`, 'LV name')
}

export function brickThinPoolName(spec: Pick<BrickSpec, 'brickId' | 'lvmThinPool'>): string {
  return assertLvmName(spec.lvmThinPool || `tp_${assertId(spec.brickId, 'brick id')}`, 'thin pool name')
}

/** /dev/mapper/vg_<did>-<LV> */
export function brickDevicePath(spec: Pick<BrickSpec, 'brickId' | 'deviceId' | 'lvmLv'>): string {
  return `/dev/mapper/${volumeGroupName(spec.deviceId)}-${brickLvName(spec)}`
}

export function lvcreateThinCommand(cfg: BrickCommandConfig, spec: BrickSpec): string {
  const chunk = spec.arbiter ? ARBITER_CHUNK_SIZE : assertLvmSize(cfg.lvChunkSize, 'lv chunk size')
  const meta = assertPositiveInteger(spec.poolMetadataSizeKiB, 'pool metadata size')
  const tp = assertPositiveInteger(spec.tpSizeKiB, 'thin pool size')
  const size = assertPositiveInteger(spec.sizeKiB, 'brick size')
  const vg = volumeGroupName(spec.deviceId)
  return (
    `${lvmPrefix(cfg)} lvcreate -qq ${autobackupFlag(cfg)} --poolmetadatasize ${q(`${meta}K`)} --chunksize ${q(chunk)} ` +
    `--size ${q(`${tp}K`)} --thin ${q(`${vg}/${brickThinPoolName(spec)}`)} --virtualsize ${q(`${size}K`)} --name ${q(brickLvName(spec))}`
  )
}

export function mkfsCommand(cfg: BrickCommandConfig, spec: BrickSpec): string {
  const dev = q(brickDevicePath(spec))
  if (spec.arbiter) return `mkfs.xfs -i maxpct=100 -n size=8192 ${dev}`
  const su = assertNonNegativeInteger(cfg.xfsSu, 'xfs su')
  const sw = assertNonNegativeInteger(cfg.xfsSw, 'xfs sw')
  if (su !== 0 && sw !== 0) return `mkfs.xfs -i size=512 -d ${q(`su=${su},sw=${sw}`)} -n size=8192 ${dev}`
  return `mkfs.xfs -i size=512 -n size=8192 ${dev}`
}

/**
 * Appends `<dev> <mnt> xfs <opts> 1 2` to fstab. The redirection is inside
 * awk so `sudo` covers it; the values are awk's arguments (ARGV), never
 * program text, and a BEGIN-only program reads no file.
 */
export function fstabAppendCommand(cfg: BrickCommandConfig, spec: BrickSpec): string {
  const values = [
    brickDevicePath(spec),
    brickMountPoint(spec.path),
    assertMountOptions(cfg.mountOpts),
    assertPath(cfg.fstab, 'fstab'),
  ]
  return `awk ${q(FSTAB_APPEND_PROGRAM)} ${values.map(q).join(' ')}`
}

/** the one create batch (timeout 10) */
export function brickCreateCommands(cfg: BrickCommandConfig, spec: BrickSpec): string[] {
  const mnt = brickMountPoint(spec.path)
  if (`${mnt}/brick` !== spec.path)
    throw new UnsafeCommandArgumentError('brick path (must end in /brick)', spec.path)
  const commands = [
    `mkdir -p ${q(mnt)}`,
    lvcreateThinCommand(cfg, spec),
    mkfsCommand(cfg, spec),
    fstabAppendCommand(cfg, spec),
    `mount -o ${q(assertMountOptions(cfg.mountOpts))} ${q(brickDevicePath(spec))} ${q(mnt)}`,
    `mkdir ${q(spec.path)}`,
  ]
  const gid = assertGid(spec.gid)
  if (gid !== 0) commands.push(`chown ${q(`:${gid}`)} ${q(spec.path)}`, `chmod 2775 ${q(spec.path)}`)
  return commands
}

export function umountCommand(mountPoint: string): string {
  return `umount ${q(assertPath(mountPoint, 'mount point'))}`
}

export const MOUNT_LIST_COMMAND = 'mount'

export function lsofCommand(mountPoint: string): string {
  return `lsof ${q(assertPath(mountPoint, 'mount point'))}`
}

/** gluster snapshot bricks (clones) have no fstab line */
export function isGlusterSnapshotMount(mountPoint: string): boolean {
  return GLUSTER_SNAPSHOT_MOUNT_PREFIXES.some((prefix) => mountPoint.startsWith(prefix))
}

export function fstabRemoveCommand(cfg: Pick<RemoteExecutorConfig, 'fstab'>, brickId: string): string {
  return `sed -i.save ${q(`/brick_${assertId(brickId, 'brick id')}/d`)} ${q(assertPath(cfg.fstab, 'fstab'))}`
}

export function lvremoveCommand(cfg: BrickCommandConfig, deviceId: string, lvName: string): string {
  return `${lvmPrefix(cfg)} lvremove ${autobackupFlag(cfg)} -f ${q(`${volumeGroupName(deviceId)}/${assertLvmName(lvName)}`)}`
}

export function thinPoolCountCommand(cfg: PrefixConfig, deviceId: string, thinPool: string): string {
  return `${lvmPrefix(cfg)} lvs --noheadings --options=thin_count ${q(`${volumeGroupName(deviceId)}/${assertLvmName(thinPool)}`)}`
}

export function rmdirCommand(path: string): string {
  return `rmdir ${q(assertPath(path))}`
}
