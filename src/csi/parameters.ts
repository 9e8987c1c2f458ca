// StorageClass parameters, read as the in-tree kubernetes.io/glusterfs
// provisioner read them (keys case-insensitive, same value syntax and
// defaults), turned into heqet's POST /volumes fields. An unknown key is an
// error, as it was in-tree. The keys that told the in-tree plugin where heqet
// is and how to sign (resturl, restuser, secretName, ...) are refused with
// a pointer to the driver's flags: a CSI driver has one configured heqet.
import { CsiErrors } from './errors.ts'
import type { StringMap } from './messages.ts'

export type Durability =
  | { type: 'none' }
  | { type: 'replicate'; replicate: { replica: number } }
  | { type: 'disperse'; disperse: { data: number; redundancy: number } }

export interface VolumeParameters {
  durability: Durability
  /** snapshot.factor (snapshots are always enabled, as in-tree) */
  snapFactor: number
  /** '' = the volume is named after the CSI name alone */
  namePrefix: string
  /** restricts placement to these heqet clusters ([] = any) */
  clusters: string[]
  gidMin: number
  gidMax: number
  /** glustervolumeoptions, e.g. ["client.ssl on"] */
  volumeOptions: string[]
  /** from the external-provisioner's --extra-create-metadata */
  pvcName: string
  pvcNamespace: string
}

const IN_TREE_ONLY = new Set([
  'resturl',
  'restuser',
  'restuserkey',
  'secretname',
  'secretnamespace',
  'restauthenabled',
  'customepnameprefix',
])

// what the external-provisioner adds with --extra-create-metadata
const PROVISIONER_METADATA = new Set([
  'csi.storage.k8s.io/pvc/name',
  'csi.storage.k8s.io/pvc/namespace',
  'csi.storage.k8s.io/pv/name',
])

export const DEFAULT_GID_MIN = 2000
export const DEFAULT_GID_MAX = 2147483647
const DEFAULT_REPLICA = 3

/** A non-negative decimal integer (Go's strconv.ParseUint, base 10, 32 bits). */
function uint32(key: string, value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > 0xffffffff) {
    throw CsiErrors.invalid(`invalid value "${value}" for StorageClass parameter ${key}`)
  }
  return Number(value)
}

export function parseVolumeType(value: string): Durability {
  const parts = value.split(':')
  switch (parts[0]) {
    case 'replicate':
      if (parts.length > 2) break
      return {
        type: 'replicate',
        replicate: { replica: parts.length === 2 ? uint32('volumetype', parts[1]!) : DEFAULT_REPLICA },
      }
    case 'disperse':
      if (parts.length !== 3) {
        throw CsiErrors.invalid(
          `invalid disperse parameters "${value}": expected disperse:<data>:<redundancy>`,
        )
      }
      return {
        type: 'disperse',
        disperse: { data: uint32('volumetype', parts[1]!), redundancy: uint32('volumetype', parts[2]!) },
      }
    case 'none':
      if (parts.length === 1) return { type: 'none' }
      break
  }
  throw CsiErrors.invalid(
    `invalid volumetype "${value}": expected replicate:<n>, disperse:<data>:<redundancy> or none`,
  )
}

export function parseParameters(parameters: StringMap): VolumeParameters {
  const result: VolumeParameters = {
    durability: { type: 'replicate', replicate: { replica: DEFAULT_REPLICA } },
    snapFactor: 1,
    namePrefix: '',
    clusters: [],
    gidMin: DEFAULT_GID_MIN,
    gidMax: DEFAULT_GID_MAX,
    volumeOptions: [],
    pvcName: '',
    pvcNamespace: '',
  }
  for (const [rawKey, value] of Object.entries(parameters)) {
    const key = rawKey.toLowerCase()
    switch (key) {
      case 'volumetype':
        if (value !== '') result.durability = parseVolumeType(value)
        break
      case 'snapfactor': {
        const factor = Number(value)
        if (value.trim() === '' || !Number.isFinite(factor) || factor < 1 || factor > 100) {
          throw CsiErrors.invalid(`invalid snapfactor "${value}": must be a number from 1 to 100`)
        }
        result.snapFactor = factor
        break
      }
      case 'volumenameprefix':
        if (value.includes('_')) {
          throw CsiErrors.invalid(`invalid volumenameprefix "${value}": it may not contain '_'`)
        }
        result.namePrefix = value
        break
      case 'clusterid':
        result.clusters = value
          .split(',')
          .map((id) => id.trim())
          .filter((id) => id !== '')
        break
      case 'gidmin':
        result.gidMin = uint32(rawKey, value)
        break
      case 'gidmax':
        result.gidMax = uint32(rawKey, value)
        break
      case 'volumeoptions':
        result.volumeOptions = value
          .split(',')
          .map((o) => o.trim())
          .filter((o) => o !== '')
        break
      case 'csi.storage.k8s.io/pvc/name':
        result.pvcName = value
        break
      case 'csi.storage.k8s.io/pvc/namespace':
        result.pvcNamespace = value
        break
      default:
        if (PROVISIONER_METADATA.has(key)) break
        if (IN_TREE_ONLY.has(key)) throw CsiErrors.inTreeParameter(rawKey)
        throw CsiErrors.unknownParameter(rawKey)
    }
  }
  for (const [name, gid] of [
    ['gidMin', result.gidMin],
    ['gidMax', result.gidMax],
  ] as const) {
    if (gid < DEFAULT_GID_MIN || gid > DEFAULT_GID_MAX) {
      throw CsiErrors.invalid(`${name} ${gid} is outside ${DEFAULT_GID_MIN}..${DEFAULT_GID_MAX}`)
    }
  }
  if (result.gidMin > result.gidMax) {
    throw CsiErrors.invalid(`gidMin ${result.gidMin} is greater than gidMax ${result.gidMax}`)
  }
  return result
}

/** The smallest volume heqet accepts for this durability (1 GiB per data brick for disperse). */
export function minimumSizeGiB(durability: Durability): number {
  return durability.type === 'disperse' ? Math.max(1, durability.disperse.data) : 1
}

/** Raw capacity a GiB of this volume type takes on the devices (replicas, parity, snapshot reserve). */
export function rawPerUsableGiB(p: VolumeParameters): number {
  const d = p.durability
  const copies =
    d.type === 'replicate'
      ? Math.max(1, d.replicate.replica)
      : d.type === 'disperse'
        ? (d.disperse.data + d.disperse.redundancy) / Math.max(1, d.disperse.data)
        : 1
  return copies * p.snapFactor
}
