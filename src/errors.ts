// The one error registry. Every heketi error text heqet can answer with is
// declared here once, with its HTTP status; the rest of the code throws
// these and never writes the wording itself. Bodies are plain text.

export class HeqetError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
    this.name = 'HeqetError'
  }
}

const e = (status: number, message: string) => () => new HeqetError(status, message)

export const Errors = {
  // request handling
  notFound: e(404, 'Id not found'),
  invalidPath: e(404, 'Invalid path or request'),
  unparsable: e(422, 'request unable to be parsed'),
  unparsableDetail: (detail: string) => new HeqetError(400, `request unable to be parsed: ${detail}`),
  validation: (message: string) => new HeqetError(400, message),
  badRequest: (message: string) => new HeqetError(400, message),
  // heketi reads any body; heqet stops at a limit (docs/heketi-differences.md)
  bodyTooLarge: e(413, 'Request body is too large'),
  busy: e(429, 'Server busy. Retry operation later.'),
  maintenance: e(503, 'Service disabled for maintenance'),
  // replicated heqet (api/replica.ts; docs/heketi-differences.md)
  noLeader: e(503, 'No heqet leader is elected at the moment. Retry operation later.'),
  notLeader: e(503, 'This heqet replica is no longer the leader. Retry operation later.'),
  queueUnreadable: (detail: string) =>
    new HeqetError(503, `Unable to read the queue entry from etcd: ${detail}. Retry operation later.`),
  leaderUnreachable: (detail: string) => new HeqetError(502, `Unable to reach the heqet leader: ${detail}`),
  jobInterrupted: (detail: string) =>
    new HeqetError(500, `The heqet leader running this request stopped before it finished: ${detail}`),
  conflictInUse: () => new HeqetError(500, 'The target exists, contains other items, or is in use.'),
  internal: (message: string) => new HeqetError(500, message),
  // the cause is an error code, never a message: those name files
  backupFailed: (cause: string) => new HeqetError(500, `Unable to back up the database: ${cause}`),

  // authentication
  tokenMissing: e(401, 'Required authorization token not found'),
  tokenFormat: e(400, 'Authorization header format must be Bearer {token}'),
  tokenInvalid: (detail: string) => new HeqetError(401, `Invalid JWT token: ${detail}`),
  qsh: e(401, 'Invalid qsh claim in token'),
  adminRequired: e(401, 'Administrator access required'),

  // clusters
  clusterNotEmpty: (id: string) =>
    new HeqetError(409, `Unable to delete cluster [${id}] because it contains volumes and/or nodes`),

  // nodes
  clusterMissing: e(404, 'Cluster id does not exist'),
  hostnameUsed: (host: string, nodeId: string) =>
    new HeqetError(409, `Hostname ${host} already used by node with id ${nodeId}\n`),
  noGlusterdInCluster: e(400, 'None of the nodes in cluster has glusterd running'),
  noGlusterdOnNewNode: e(400, "New Node doesn't have glusterd running"),
  nodeHasDevices: (id: string) =>
    new HeqetError(409, `Unable to delete node [${id}] because it contains devices`),
  nodeNotOfflineForRemove: (id: string) =>
    new HeqetError(500, `Node must be offline before remove operation is performed, node:${id}`),
  nodeFailedToOnline: e(500, 'Cannot move a failed/removed node to online state'),
  nodeFailedToOffline: e(500, 'Cannot move a failed/removed node to offline state'),
  nodeNoReplacement: (id: string, deviceId: string) =>
    new HeqetError(
      500,
      `Unable to remove node [${id}] as no device was found to replace device [${deviceId}]`,
    ),

  // devices
  nodeMissing: e(404, 'Node id does not exist'),
  deviceNotFailed: (id: string) => new HeqetError(400, `device: ${id} is not in failed state`),
  deviceHasBricks: (id: string) =>
    new HeqetError(409, `Unable to delete device [${id}] because it contains bricks`),
  deviceNotOfflineForRemove: (id: string) =>
    new HeqetError(500, `Device must be offline before remove operation is performed, device:${id}`),
  deviceFailedToOnline: e(500, 'Cannot move a failed/removed device to online state'),
  deviceNoReplacement: (id: string) =>
    new HeqetError(
      500,
      `Unable to delete device [${id}] as no device was found to replace it: No Replacement was found for resource requested to be removed`,
    ),
  noReplacement: e(500, 'No Replacement was found for resource requested to be removed'),

  // volumes
  badGidLow: e(400, 'Bad group id less than zero'),
  badGidHigh: e(400, 'Bad group id equal or greater than 2**32'),
  unknownDurability: e(400, 'Unknown durability type'),
  invalidVolumeSize: e(400, 'Invalid volume size'),
  invalidSnapshotFactor: e(400, 'Invalid snapshot factor'),
  invalidReplica: e(400, 'Invalid replica value'),
  invalidDisperse: (data: number, redundancy: number) =>
    new HeqetError(400, `Invalid dispersion combination: ${data}+${redundancy}`),
  noClusters: e(400, 'No clusters configured'),
  clusterNotFound: (id: string) => new HeqetError(400, `Cluster id ${id} not found`),
  volumeTooSmall: (sizeGiB: number, minKiB: number) =>
    new HeqetError(
      400,
      `Requested volume size (${sizeGiB} GB) is smaller than the minimum supported volume size (${minKiB})`,
    ),
  allocateVolume: (reason: string) => new HeqetError(500, `Failed to allocate new volume: ${reason}`),
  allocateExpansion: (reason: string) =>
    new HeqetError(500, `Failed to allocate volume expansion: ${reason}`),
  dbVolumeDelete: e(409, 'Cannot delete volume containing the Heketi database'),
  blockHostingNotEmpty: e(409, 'Cannot delete a block hosting volume containing block volumes'),
  volumeDeleteInUse: () =>
    new HeqetError(
      500,
      'Failed to set up volume delete: The target exists, contains other items, or is in use.',
    ),
  cloneBlockHosting: (id: string) =>
    new HeqetError(500, `Failed clone volume ${id}: Cloning of block hosting volumes is not supported`),
  blockRestriction: (reason: string) => new HeqetError(500, `Failed to set block restriction: ${reason}`),

  // block volumes
  invalidBlockVolumeSize: e(400, 'Invalid block volume size'),
  allocateBlockVolume: (reason: string) =>
    new HeqetError(500, `Failed to allocate new block volume: ${reason}`),
  allocateBlockExpansion: (reason: string) =>
    new HeqetError(500, `Failed to allocate block volume expansion: ${reason}`),
  blockVolumeDeleteInUse: () =>
    new HeqetError(
      500,
      'Failed to set up block volume delete: The target exists, contains other items, or is in use.',
    ),

  // operations
  operationNotFound: (id: string) => new HeqetError(404, `Id not found: ${id}`),
  /** heqet's own: heketi answers 204 and keeps quiet about what it could not clean */
  operationsNotCleaned: (lines: string[]) =>
    new HeqetError(
      500,
      [`Unable to clean ${lines.length} pending operation${lines.length === 1 ? '' : 's'}:`, ...lines].join(
        '\n',
      ),
    ),

  // admin / logging
  onlyGlusterfsLogger: e(422, 'Only "glusterfs" logger may be modified'),
  invalidLogLevel: (level: string) => new HeqetError(422, `invalid log level: ${level}`),
} as const

/** Reasons inside the block volume errors above, and texts of failed block operations. */
export const BlockTexts = {
  autoCreateDisabled:
    'Block Hosting Volume Creation is disabled. Create a Block hosting volume and try again.',
  hostingTooSmall: (hostingGiB: number, sizeGiB: number, reducedGiB: number) =>
    `The size configured for automatic creation of block hosting volumes (${hostingGiB}) is too small to host the requested block volume of size ${sizeGiB}. The available size on this block hosting volume, minus overhead, is ${reducedGiB}. Please create a sufficiently large block hosting volume manually.`,
  inUse: 'The target exists, contains other items, or is in use.',
  sameSize: (newGiB: number, sizeGiB: number) =>
    `Requested new-size ${newGiB} is same as current block volume size ${sizeGiB}, nothing to be done.`,
  shrink: (newGiB: number, sizeGiB: number) =>
    `Requested new-size ${newGiB} is less than current block volume size ${sizeGiB}, shrinking is not allowed.`,
  noSpace: 'No space',
  insufficientHosts: 'insufficient block hosts online',
  noGlusterd: 'None of the nodes in cluster has glusterd running',
} as const

/**
 * Go net/http's own answers to requests it cannot take (heketi never sees
 * them): plain text without a trailing newline, then the connection closes.
 */
export const ServerRefusals = {
  badRequest: { status: 400, text: '400 Bad Request' },
  missingHost: { status: 400, text: '400 Bad Request: missing required Host header' },
  tooManyHosts: { status: 400, text: '400 Bad Request: too many Host headers' },
  // Go answers 501 "Unsupported transfer encoding"; a malformed request gets a 4xx here
  unsupportedTransferEncoding: { status: 400, text: '400 Bad Request: unsupported transfer encoding' },
  headersTooLarge: { status: 431, text: '431 Request Header Fields Too Large' },
  // Go has no read timeout in heketi; node's request timeout answers this
  timeout: { status: 408, text: '408 Request Timeout' },
} as const

export type ServerRefusal = (typeof ServerRefusals)[keyof typeof ServerRefusals]
