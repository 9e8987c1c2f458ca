// Parsers for LVM and udev output (heketi node commands §4, §5.2).
import { PV_UUID_LINK_PREFIX } from './device.ts'

export class CommandOutputError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CommandOutputError'
  }
}

export interface VolumeGroupSizes {
  totalKiB: number
  freeKiB: number
  usedKiB: number
  extentSizeKiB: number
}

const VGDISPLAY_INVALID = 'vgdisplay returned an invalid string'

/** `vgdisplay -c`: fields 12 extent size KiB, 13 total, 14 allocated, 15 free extents */
export function parseVgdisplay(stdout: string): VolumeGroupSizes {
  const fields = stdout.trim().split(':')
  if (fields.length < 17) throw new CommandOutputError(VGDISPLAY_INVALID)
  const field = (i: number) => {
    if (!/^[0-9]+$/.test(fields[i])) throw new CommandOutputError(VGDISPLAY_INVALID)
    return Number(fields[i])
  }
  const extentSizeKiB = field(12)
  return {
    totalKiB: field(13) * extentSizeKiB,
    usedKiB: field(14) * extentSizeKiB,
    freeKiB: field(15) * extentSizeKiB,
    extentSizeKiB,
  }
}

export interface PvIdentity {
  pvName: string
  pvUuid: string
  vgName: string
}

/**
 * `pvs|vgs -o pv_name,pv_uuid,vg_name --reportformat=json`: exactly one
 * report with exactly one entry in `pv` (pvs) or `vg` (vgs).
 */
export function parseLvmIdentityReport(stdout: string, section: 'pv' | 'vg'): PvIdentity {
  let doc: unknown
  try {
    doc = JSON.parse(stdout)
  } catch (err) {
    throw new CommandOutputError(`unable to parse LVM report: ${(err as Error).message}`)
  }
  const reports = (doc as { report?: unknown })?.report
  if (!Array.isArray(reports) || reports.length !== 1) {
    throw new CommandOutputError(
      `expected exactly one LVM report, got ${Array.isArray(reports) ? reports.length : 0}`,
    )
  }
  const entries = (reports[0] as Record<string, unknown>)?.[section]
  if (!Array.isArray(entries) || entries.length !== 1) {
    throw new CommandOutputError(
      `expected exactly one ${section} entry in LVM report, got ${Array.isArray(entries) ? entries.length : 0}`,
    )
  }
  const entry = entries[0] as Record<string, unknown>
  const text = (key: string) => (typeof entry?.[key] === 'string' ? (entry[key] as string) : '')
  if (!text('pv_uuid')) throw new CommandOutputError('LVM report has no pv_uuid')
  return { pvName: text('pv_name'), pvUuid: text('pv_uuid'), vgName: text('vg_name') }
}

/**
 * `udevadm info --query=symlink`: tokens become /dev/<token>, PV UUID links
 * are dropped, and the device itself is appended when missing.
 */
export function parseUdevSymlinks(stdout: string, device: string): string[] {
  const paths = stdout
    .split(/\s+/)
    .filter((token) => token !== '')
    .map((token) => `/dev/${token}`)
    .filter((path) => !path.startsWith(PV_UUID_LINK_PREFIX))
  if (!paths.includes(device)) paths.push(device)
  return paths
}

/** `lvs --noheadings --options=thin_count`: an integer, possibly padded */
export function parseThinCount(stdout: string): number {
  const text = stdout.trim()
  if (!/^[0-9]+$/.test(text))
    throw new CommandOutputError(`strconv.Atoi: parsing ${JSON.stringify(text)}: invalid syntax`)
  return Number(text)
}

/** LVM's wording for a missing LV/VG, in any case */
export function isLvmNotFound(errorText: string): boolean {
  const lower = errorText.toLowerCase()
  return lower.includes('not found') || lower.includes('failed to find')
}
