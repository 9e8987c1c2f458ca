// Reading gluster-block's `--json` answers (heketi node commands §8): the
// JSON object, its FAIL form, the "does not exist" answers heketi treats as
// already gone, sizes such as "5.0 GiB", and info/list.
import type { BlockVolumeNodeInfo } from '../executor.ts'
import { CommandOutputError } from './parse.ts'

export type GbJson = Record<string, unknown>

/** The JSON object gluster-block printed, or undefined when it is not one. */
export function parseGbJson(text: string): GbJson | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as GbJson)
      : undefined
  } catch {
    return undefined
  }
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '')

export function isGbFailure(json: GbJson): boolean {
  return json['RESULT'] === 'FAIL'
}

export function gbErrMsg(json: GbJson): string {
  return text(json['errMsg'])
}

/**
 * heketi's rule: the block volume is gone when errMsg says `doesn't exist`
 * naming the block volume, or `does not exist` naming the hosting volume.
 */
export function isGbNotFound(json: GbJson, hostingVolume: string, name: string): boolean {
  const msg = gbErrMsg(json)
  return (
    (msg.includes("doesn't exist") && msg.includes(name)) ||
    (msg.includes('does not exist') && msg.includes(hostingVolume))
  )
}

const UNIT_FACTOR: Record<string, number> = { G: 1, T: 1024, P: 1024 ** 2, E: 1024 ** 3 }

/** `"5.0 GiB"`, `"1 TiB"` → whole GiB (fraction truncated); anything else is `Not a valid Size`. */
export function parseGbSizeGiB(value: string): number {
  const compact = value.replaceAll(' ', '').toUpperCase()
  const at = compact.search(/[A-Z]/)
  const invalid = () => new CommandOutputError('Not a valid Size')
  if (at <= 0) throw invalid()
  const number = compact.slice(0, at)
  const unit = compact.slice(at)
  const factor = UNIT_FACTOR[unit[0]!]
  if (factor === undefined || ![unit[0], `${unit[0]}B`, `${unit[0]}IB`].includes(unit)) throw invalid()
  if (!/^[0-9]+(\.[0-9]+)?$/.test(number)) throw invalid()
  return Math.trunc(Number(number) * factor)
}

const IQN_PREFIX = 'iqn.2016-12.org.gluster-block:'

/** `gluster-block info <bhv>/<name> --json`, with heketi's derived IQN, username and usable size. */
export function parseBlockInfo(json: GbJson): BlockVolumeNodeInfo {
  const gbid = text(json['GBID'])
  const sizeGiB = parseGbSizeGiB(text(json['SIZE']))
  const failedRaw = json['RESIZE FAILED ON']
  const resizeFailedOn: Record<string, number> = {}
  if (failedRaw !== null && typeof failedRaw === 'object' && !Array.isArray(failedRaw)) {
    for (const [host, size] of Object.entries(failedRaw as Record<string, unknown>)) {
      resizeFailedOn[host] = parseGbSizeGiB(text(size))
    }
  }
  const failedSizes = Object.values(resizeFailedOn)
  const exported = json['EXPORTED ON']
  return {
    name: text(json['NAME']),
    hostingVolume: text(json['VOLUME']),
    gbid,
    sizeGiB,
    ha: typeof json['HA'] === 'number' ? json['HA'] : 0,
    password: text(json['PASSWORD']),
    exportedOn: Array.isArray(exported) ? exported.map(text) : [],
    resizeFailedOn,
    iqn: `${IQN_PREFIX}${gbid}`,
    username: gbid,
    usableSizeGiB: failedSizes.length > 0 ? Math.min(...failedSizes) : sizeGiB,
  }
}

/** `gluster-block list <bhv> --json`: `{"blocks":[...],"RESULT":...}` → the names */
export function parseBlockList(json: GbJson): string[] {
  const blocks = json['blocks']
  return Array.isArray(blocks) ? blocks.map(text) : []
}
