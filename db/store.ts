// The narrow interface every store implements. The domain sees only this, so
// the LMDB file can later be swapped for a replicated engine (etcd, a
// Kubernetes-lease-guarded leader) without touching src/ or api/.
import type {
  BlockVolumeEntry,
  BrickEntry,
  ClusterEntry,
  DbAttributeEntry,
  DeviceEntry,
  Id,
  NodeEntry,
  PendingOperationEntry,
  VolumeEntry,
} from './entries.ts'

export interface Buckets {
  cluster: ClusterEntry
  node: NodeEntry
  device: DeviceEntry
  brick: BrickEntry
  volume: VolumeEntry
  blockvolume: BlockVolumeEntry
  pendingop: PendingOperationEntry
  /** key: `manage:<hostname>` or `storage:<hostname>`, value: owning node id */
  hostname: { nodeId: Id }
  attribute: DbAttributeEntry
}

export type BucketName = keyof Buckets
export const BUCKETS: readonly BucketName[] = [
  'cluster',
  'node',
  'device',
  'brick',
  'volume',
  'blockvolume',
  'pendingop',
  'hostname',
  'attribute',
]

export interface ReadTxn {
  get<B extends BucketName>(bucket: B, key: string): Buckets[B] | undefined
  /** all keys of a bucket in ascending byte order */
  keys(bucket: BucketName): string[]
  /** all values of a bucket in ascending key order */
  values<B extends BucketName>(bucket: B): Buckets[B][]
  count(bucket: BucketName): number
}

export interface WriteTxn extends ReadTxn {
  put<B extends BucketName>(bucket: B, key: string, value: Buckets[B]): void
  del(bucket: BucketName, key: string): void
}

/** One committed put (value set) or delete (value undefined). */
export interface Change {
  bucket: BucketName
  key: string
  value: unknown
}

export interface Store {
  /** A consistent snapshot read. Synchronous: keep the callback short. */
  read<R>(fn: (tx: ReadTxn) => R): R
  /**
   * One atomic, serialized read-write transaction: either every put/del of
   * the callback is committed or (if it throws) none is. Returns after commit.
   */
  write<R>(fn: (tx: WriteTxn) => R): Promise<R>
  /**
   * Called synchronously after every commit with the changes it made, in
   * order. In-memory indexes (placement) stay current through this.
   */
  onCommit(listener: (changes: Change[]) => void): void
  /**
   * How many times a commit listener threw. The commit stands (write()
   * resolves); the failure is counted here and reported to the store's
   * error hook, so an index that missed a change is visible (/metrics).
   */
  readonly listenerFailures: number
  /** write() calls applied, and the commits that stored them (LMDB: fewer when commits were shared) */
  readonly writes?: number
  readonly commits?: number
  /**
   * The most puts/deletes to one bucket a single write may carry, when the
   * engine has such a limit (etcd's --max-txn-ops); undefined = no limit.
   * Bulk idempotent changes (marking the journal stale) are split to fit.
   */
  readonly maxChangesPerWrite?: number
  /** A consistent copy of the whole store as one file's bytes. */
  backup(): Promise<Buffer>
  close(): Promise<void>
}

/**
 * Run every commit listener; one that throws is counted and reported, and
 * neither stops the others nor undoes the commit it was told about.
 */
export function notifyListeners(
  counter: { listenerFailures: number },
  listeners: readonly ((changes: Change[]) => void)[],
  changes: Change[],
  onError: (err: Error) => void,
): void {
  for (const listener of listeners) {
    try {
      listener(changes)
    } catch (err) {
      counter.listenerFailures++
      onError(err instanceof Error ? err : new Error(String(err)))
    }
  }
}
