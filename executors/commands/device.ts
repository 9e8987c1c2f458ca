// Device setup, identity, size and teardown commands (heketi node commands §4).
import type { RemoteExecutorConfig } from '../config.ts'
import { autobackupFlag, lvmPrefix, type PrefixConfig, udevadmPrefix } from './prefix.ts'
import { assertDevicePath, assertId, assertLvmSize, shellArg as q } from './validate.ts'

/** a quoted device path */
const dev = (path: string) => q(assertDevicePath(path))

export const HEKETI_MOUNTS_DIR = '/var/lib/heketi/mounts'
export const PV_UUID_LINK_PREFIX = '/dev/disk/by-id/lvm-pv-uuid-'

export function volumeGroupName(deviceId: string): string {
  return `vg_${assertId(deviceId, 'device id')}`
}

export function wipefsCommand(device: string): string {
  return `wipefs --all ${dev(device)}`
}

/** heketi quotes the device in pvcreate (and pvremove) only; heqet quotes every value */
export function pvcreateCommand(
  cfg: PrefixConfig & Pick<RemoteExecutorConfig, 'pvDataAlignment'>,
  device: string,
) {
  const alignment = assertLvmSize(cfg.pvDataAlignment, 'pv data alignment')
  return `${lvmPrefix(cfg)} pvcreate -qq --metadatasize=128M --dataalignment=${q(alignment)} ${dev(device)}`
}

export function vgcreateCommand(
  cfg: PrefixConfig & Pick<RemoteExecutorConfig, 'vgPhysicalExtentSize' | 'backupLvmMetadata'>,
  deviceId: string,
  device: string,
): string {
  const extent = assertLvmSize(cfg.vgPhysicalExtentSize, 'vg physical extent size')
  return `${lvmPrefix(cfg)} vgcreate -qq --physicalextentsize=${q(extent)} ${autobackupFlag(cfg)} ${q(volumeGroupName(deviceId))} ${dev(device)}`
}

/** Batch 1 of device add; `wipefs` only on heketi's destroydata retry. */
export function deviceSetupCommands(
  cfg: PrefixConfig &
    Pick<RemoteExecutorConfig, 'pvDataAlignment' | 'vgPhysicalExtentSize' | 'backupLvmMetadata'>,
  deviceId: string,
  device: string,
  destroyData: boolean,
): string[] {
  return [
    ...(destroyData ? [wipefsCommand(device)] : []),
    pvcreateCommand(cfg, device),
    vgcreateCommand(cfg, deviceId, device),
  ]
}

export function pvsIdentityCommand(cfg: PrefixConfig, device: string): string {
  return `${lvmPrefix(cfg)} pvs -o pv_name,pv_uuid,vg_name --reportformat=json ${dev(device)}`
}

export function udevadmSymlinksCommand(cfg: PrefixConfig, device: string): string {
  return `${udevadmPrefix(cfg)} info --query=symlink --name=${dev(device)}`
}

/** identity query batch: pvs then (optional) udevadm */
export function deviceIdentityCommands(cfg: PrefixConfig, device: string): string[] {
  return [pvsIdentityCommand(cfg, device), udevadmSymlinksCommand(cfg, device)]
}

export function vgdisplayCommand(cfg: PrefixConfig, deviceId: string): string {
  return `${lvmPrefix(cfg)} vgdisplay -c ${q(volumeGroupName(deviceId))}`
}

/** resolves a device's PV UUID from its volume group */
export function vgsIdentityCommand(cfg: PrefixConfig, deviceId: string): string {
  return `${lvmPrefix(cfg)} vgs -o pv_name,pv_uuid,vg_name --reportformat=json ${q(volumeGroupName(deviceId))}`
}

export function vgremoveCommand(cfg: PrefixConfig, deviceId: string): string {
  return `${lvmPrefix(cfg)} vgremove -qq ${q(volumeGroupName(deviceId))}`
}

export function pvremoveCommand(cfg: PrefixConfig, path: string): string {
  return `${lvmPrefix(cfg)} pvremove -qq ${dev(path)}`
}

export function deviceMountsDir(deviceId: string): string {
  return `${HEKETI_MOUNTS_DIR}/${volumeGroupName(deviceId)}`
}

export function rmdirDeviceMountsCommand(deviceId: string): string {
  return `rmdir ${q(deviceMountsDir(deviceId))}`
}

/** teardown path: the PV UUID link when known, else the first stored path, else the device */
export function teardownPath(pvUuid: string, paths: string[], device: string): string {
  if (pvUuid) return `${PV_UUID_LINK_PREFIX}${pvUuid}`
  return paths[0] || device
}
