// Every error the CSI driver answers with, declared once with its gRPC code
// (the CSI spec fixes which code a CO acts on). Texts that come from heqet
// are carried inside, so the user sees heqet's own explanation.
import { status } from '@grpc/grpc-js'
import { HeqetHttpError, HeqetUnreachableError, OperationCancelledError } from './heqet-client.ts'

export class CsiError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message)
    this.name = 'CsiError'
  }
}

const err = (code: status, message: string) => new CsiError(code, message)

export const CsiErrors = {
  // requests
  missing: (field: string) => err(status.INVALID_ARGUMENT, `${field} is required`),
  invalid: (message: string) => err(status.INVALID_ARGUMENT, message),
  unknownParameter: (key: string) =>
    err(status.INVALID_ARGUMENT, `unknown StorageClass parameter "${key}" for the heqet CSI driver`),
  inTreeParameter: (key: string) =>
    err(
      status.INVALID_ARGUMENT,
      `StorageClass parameter "${key}" belongs to the in-tree kubernetes.io/glusterfs plugin; ` +
        'the CSI driver takes the heqet server and its key from --server/--user/--secret',
    ),
  unsupportedCapability: (why: string) =>
    err(status.INVALID_ARGUMENT, `unsupported volume capability: ${why}`),
  contentSource: () =>
    err(status.INVALID_ARGUMENT, 'creating a volume from a snapshot or another volume is not supported'),
  outOfRange: (message: string) => err(status.OUT_OF_RANGE, message),
  busy: (what: string) => err(status.ABORTED, `an operation on ${what} is already in progress`),
  badToken: (token: string) => err(status.ABORTED, `invalid starting_token "${token}"`),

  // volumes
  volumeNotFound: (id: string) => err(status.NOT_FOUND, `volume ${id} does not exist`),
  alreadyExists: (name: string, why: string) =>
    err(status.ALREADY_EXISTS, `volume "${name}" already exists with ${why}`),
  placement: (heqetText: string) => err(status.RESOURCE_EXHAUSTED, heqetText),
  inUse: (heqetText: string) => err(status.FAILED_PRECONDITION, heqetText),

  // heqet as a server
  heqetBusy: (text: string) => err(status.UNAVAILABLE, `heqet is busy: ${text}`),
  heqetUnreachable: (url: string, why: string) =>
    err(status.UNAVAILABLE, `heqet at ${url} unreachable: ${why}`),
  heqetFailed: (what: string, text: string) => err(status.INTERNAL, `${what}: ${text}`),
  heqetRefused: (text: string) =>
    err(status.FAILED_PRECONDITION, `heqet refused the driver's credentials (--user/--secret): ${text}`),
  cancelled: () => err(status.CANCELLED, 'the call was cancelled or its deadline passed'),

  // node
  pathNotFound: (path: string) => err(status.NOT_FOUND, `${path} does not exist or is not a mount point`),
  mountFailed: (what: string, why: string) => err(status.INTERNAL, `${what} failed: ${why}`),
  mountInfoMissing: (id: string) =>
    err(
      status.FAILED_PRECONDITION,
      `volume ${id}: its volume_context has no gluster mount info and the node has no --server to ask heqet`,
    ),
  stagedDifferently: (path: string) =>
    err(status.ALREADY_EXISTS, `${path} is already mounted with another volume or capability`),
  notStaged: (id: string, path: string) =>
    err(status.FAILED_PRECONDITION, `volume ${id} is not staged at ${path}`),
  notReady: (why: string) => err(status.FAILED_PRECONDITION, `the driver is not ready: ${why}`),
}

/** Turn anything thrown while talking to heqet into the CSI error a CO acts on. */
export function asCsiError(err: unknown, what: string): CsiError {
  if (err instanceof CsiError) return err
  if (err instanceof OperationCancelledError) return CsiErrors.cancelled()
  if (err instanceof HeqetUnreachableError) return CsiErrors.heqetUnreachable(err.url, err.reason)
  if (err instanceof HeqetHttpError) {
    if (err.status === 401) return CsiErrors.heqetRefused(err.text)
    if (err.status === 429) return CsiErrors.heqetBusy(err.text)
    return CsiErrors.heqetFailed(what, err.text)
  }
  return CsiErrors.heqetFailed(what, err instanceof Error ? err.message : String(err))
}
