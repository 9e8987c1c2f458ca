// The stored entities. Field meanings follow heketi's data model; every size
// carries its unit in its name (KiB for bricks and devices, GiB for volumes).

export type Id = string

export type EntityState = 'online' | 'offline' | 'failed'

export interface ClusterEntry {
  id: Id
  /** sorted node ids */
  nodes: Id[]
  /** sorted volume ids, including volumes of pending operations */
  volumes: Id[]
  /** sorted block volume ids */
  blockVolumes: Id[]
  block: boolean
  file: boolean
}

export interface Hostnames {
  manage: string[]
  storage: string[]
}

export interface NodeEntry {
  id: Id
  clusterId: Id
  zone: number
  hostnames: Hostnames
  tags: Record<string, string>
  state: EntityState
  /** sorted device ids */
  devices: Id[]
}

export interface DeviceStorage {
  totalKiB: number
  freeKiB: number
  usedKiB: number
}

export interface DeviceEntry {
  id: Id
  nodeId: Id
  /** the path the admin gave, e.g. /dev/sdb */
  name: string
  state: EntityState
  storage: DeviceStorage
  extentSizeKiB: number
  pvUuid: string
  paths: string[]
  tags: Record<string, string>
  /** sorted brick ids, including pending and cloned bricks */
  bricks: Id[]
}

export type BrickSubType = 'unknown' | 'normal' | 'arbiter'

export interface BrickEntry {
  id: Id
  path: string
  deviceId: Id
  nodeId: Id
  volumeId: Id
  /** virtual size of the thin LV (= filesystem size) */
  sizeKiB: number
  tpSizeKiB: number
  poolMetadataSizeKiB: number
  /** id of the pending operation that owns this brick, '' when settled */
  pendingId: Id
  lvmThinPool: string
  /** '' means brick_<id> */
  lvmLv: string
  subType: BrickSubType
}

export type DurabilityType = 'none' | 'replicate' | 'disperse'

/** Durability exactly as requested (echoed back on the wire). */
export interface DurabilityRequest {
  type: DurabilityType | ''
  replicate: { replica?: number }
  disperse: { data?: number; redundancy?: number }
}

export type BlockRestriction = '' | 'locked' | 'locked-by-update'

export interface BlockInfo {
  freeSizeGiB: number
  reservedSizeGiB: number
  blockVolumes: Id[]
  restriction: BlockRestriction
}

export interface VolumeEntry {
  id: Id
  name: string
  sizeGiB: number
  clusterId: Id
  durability: DurabilityRequest
  gid: number
  block: boolean
  snapshot: { enable: boolean; factor: number }
  blockInfo: BlockInfo
  /** clusters list from the create request (kept, never returned by the API) */
  requestedClusters: Id[]
  /** full option list including the empty pre/post entries */
  glusterVolumeOptions: string[]
  /** sorted brick ids */
  bricks: Id[]
  pendingId: Id
  /**
   * beyond heketi, never returned by the API: ms epoch at which gluster
   * accepted the rebalance start heqet sent after an expand, kept until heqet
   * saw that rebalance end, so a restarted (or newly elected) server follows
   * and shows it again (src/rebalance.ts). Absent otherwise.
   */
  rebalanceStartedAt?: number
}

export interface BlockVolumeEntry {
  id: Id
  name: string
  sizeGiB: number
  usableSizeGiB: number
  hacount: number
  auth: boolean
  requestedClusters: Id[]
  clusterId: Id
  blockHostingVolume: Id
  hosts: string[]
  iqn: string
  lun: number
  username: string
  password: string
  pendingId: Id
}

/** heketi's persisted operation type names (wire `type_name`). */
export type OperationType =
  | 'unknown'
  | 'create-volume'
  | 'delete-volume'
  | 'expand-volume'
  | 'create-block-volume'
  | 'delete-block-volume'
  | 'remove-device'
  | 'clone-volume'
  | 'evict-brick'
  | 'expand-block-volume'
  // heqet's own: heketi ran these as plain jobs and could leak a VG or a peer on a crash
  | 'add-device'
  | 'delete-device'
  | 'add-node'
  | 'delete-node'
  // heqet's own: the rebalance start an expand owes, until gluster accepted it
  | 'rebalance-volume'

/** heketi's change kinds, as an ordered list so the index is heketi's integer. */
export const CHANGE_KINDS = [
  'unknown',
  'add-brick',
  'add-volume',
  'delete-brick',
  'delete-volume',
  'expand-volume',
  'add-block-volume',
  'delete-block-volume',
  'remove-device',
  'clone-volume',
  'snapshot-volume',
  'add-volume-clone',
  'child-operation',
  'parent-operation',
  'expand-block-volume',
] as const
export type ChangeKind = (typeof CHANGE_KINDS)[number]

export interface OperationAction {
  change: ChangeKind
  id: Id
  delta?: number
}

export type OperationStatus = '' | 'stale' | 'failed'

/**
 * A journal record: written before the first node is touched, in the same
 * transaction as the space it reserves, removed when the operation finishes
 * or has been undone.
 */
export interface PendingOperationEntry {
  id: Id
  /** unix seconds */
  timestamp: number
  type: OperationType
  actions: OperationAction[]
  status: OperationStatus
  /** heqet's own journal: names of the node-side steps already done, in order */
  doneSteps: string[]
  /** free-form data an operation needs to finish or undo after a crash */
  data: Record<string, unknown>
  /** heqet: why the last undo or clean-up failed (absent until one did) */
  lastError?: string
  /** heqet: clean-up attempts that failed so far */
  cleanAttempts?: number
  /** heqet: unix seconds before which the background cleaner leaves the record alone */
  retryAt?: number
}

export interface DbAttributeEntry {
  key: string
  value: string
}

/**
 * Shared empty field values. Entries are immutable (a change writes a new
 * entry), so the 100,000 devices of a large topology need not each hold
 * their own `{}` and `[]` (~120 bytes a device). Frozen: code that mutated
 * one in place would throw rather than change every entry.
 */
export const NO_TAGS: Record<string, string> = Object.freeze({}) as Record<string, string>
export const NO_IDS: Id[] = Object.freeze([]) as unknown as Id[]

/** `tags`, or the shared NO_TAGS when it is empty. */
export function sharedIfEmpty(tags: Record<string, string>): Record<string, string>
/** `list`, or the shared NO_IDS when it is empty. */
export function sharedIfEmpty(list: string[]): string[]
export function sharedIfEmpty(value: Record<string, string> | string[]): Record<string, string> | string[] {
  if (Array.isArray(value)) return value.length === 0 ? NO_IDS : value
  for (const _ in value) return value
  return NO_TAGS
}

/** A device entry decoded from storage, its empty fields shared (see NO_TAGS). */
export function compactDevice(d: DeviceEntry): DeviceEntry {
  const out = { ...d }
  // only fields holding an empty list or map (an older file may lack one)
  if (Array.isArray(d.paths)) out.paths = sharedIfEmpty(d.paths)
  if (Array.isArray(d.bricks)) out.bricks = sharedIfEmpty(d.bricks)
  if (d.tags !== null && typeof d.tags === 'object' && !Array.isArray(d.tags))
    out.tags = sharedIfEmpty(d.tags)
  return out
}
