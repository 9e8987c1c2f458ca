// The LMDB-backed store: one environment file, one named database per bucket.
// LMDB is the source of truth; every entry is also kept decoded in memory, so
// reads never decode and never touch the file. Entries handed out are shared:
// callers treat them as immutable and write changed copies back (the domain
// code only ever spreads into new objects).
//
// Group commit: write() runs its callback at once on the in-memory state and
// applies the result there (listeners hear of it then, so placement sees the
// space it charged); the promise resolves when the LMDB transaction holding
// it is flushed to disk. Writes applied while a commit is in flight share the
// next one, and the commit and its fsync run on lmdb-js's write thread, not
// the event loop. Commits are ordered, so a durable write implies every write
// applied before it is durable too: awaiting its own write is all an
// operation needs before its first node command. Reads may see a change a
// few milliseconds before it is durable; a commit that fails rejects its
// writes and every write applied after them, and the cache and listeners are
// put back to what the file holds.
import { randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { type Database, open, type RootDatabase } from 'lmdb'
import { compactDevice, type DeviceEntry } from './entries.ts'
import { ListStorage, SPLIT_MARK } from './lmdb-lists.ts'
import {
  BUCKETS,
  type BucketName,
  type Buckets,
  type Change,
  notifyListeners,
  type ReadTxn,
  type Store,
  type WriteTxn,
} from './store.ts'

export interface LmdbStoreOptions {
  /** path of the LMDB data file (created with its lock file beside it) */
  path: string
  readOnly?: boolean
  /** told about every commit listener that threw (the commit itself stands) */
  onListenerError?: (err: Error) => void
}

/** One bucket's decoded entries, with its keys sorted on demand. */
class BucketCache {
  readonly entries = new Map<string, unknown>()
  private sorted: string[] | undefined

  keys(): string[] {
    this.sorted ??= [...this.entries.keys()].sort()
    return this.sorted
  }

  set(key: string, value: unknown): void {
    if (!this.entries.has(key)) this.sorted = undefined
    this.entries.set(key, value)
  }

  delete(key: string): void {
    if (this.entries.delete(key)) this.sorted = undefined
  }
}

interface QueuedWrite {
  changes: Change[]
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * Where a bucket's shared msgpack structures are kept (the key lmdb-js's
 * documentation uses; a symbol key, so no entry key can collide with it and
 * `getRange` does not list it).
 */
const STRUCTURES_KEY = Symbol.for('structures')

/** Buckets whose records share their structures: fixed shapes, many entries. */
const SHARED_STRUCTURE_BUCKETS: ReadonlySet<BucketName> = new Set([
  'cluster',
  'node',
  'device',
  'brick',
  'volume',
  'blockvolume',
  'hostname',
])

/**
 * Field names of the stored entries (db/entries.ts) and of their nested
 * objects. Only objects made of these share a structure: a map of the
 * admin's own keys (tags) is written with its field names inline, so such
 * maps cannot fill the 32 shared slots a database has.
 */
const ENTRY_FIELDS: ReadonlySet<string> = new Set([
  // cluster (with the marker of its lists stored as keys)
  SPLIT_MARK,
  'id',
  'nodes',
  'volumes',
  'blockVolumes',
  'block',
  'file',
  // node
  'clusterId',
  'zone',
  'hostnames',
  'manage',
  'storage',
  'tags',
  'state',
  'devices',
  // device
  'nodeId',
  'name',
  'totalKiB',
  'freeKiB',
  'usedKiB',
  'extentSizeKiB',
  'pvUuid',
  'paths',
  'bricks',
  // brick
  'path',
  'deviceId',
  'volumeId',
  'sizeKiB',
  'tpSizeKiB',
  'poolMetadataSizeKiB',
  'pendingId',
  'lvmThinPool',
  'lvmLv',
  'subType',
  // volume
  'sizeGiB',
  'durability',
  'type',
  'replicate',
  'replica',
  'disperse',
  'data',
  'redundancy',
  'gid',
  'snapshot',
  'enable',
  'factor',
  'blockInfo',
  'freeSizeGiB',
  'reservedSizeGiB',
  'restriction',
  'requestedClusters',
  'glusterVolumeOptions',
  'rebalanceStartedAt',
  // block volume
  'usableSizeGiB',
  'hacount',
  'auth',
  'blockHostingVolume',
  'hosts',
  'iqn',
  'lun',
  'username',
  'password',
])

/**
 * lmdb-js options of a bucket's database. Shared structures: msgpackr then
 * stores a record's field names once per database (under STRUCTURES_KEY)
 * instead of in every value: a device record is ~140 bytes instead of ~245,
 * and the file (all of whose pages end up resident) shrinks with it. Records
 * written before, with their field names inline, still decode as they are.
 * lmdb-js saves a new structure inside the write transaction that first
 * uses it (a nested transactionSync runs in the current transaction), so a
 * record and its structure are committed together.
 */
function bucketOptions(bucket: BucketName): { name: string; sharedStructuresKey?: symbol } {
  if (!SHARED_STRUCTURE_BUCKETS.has(bucket)) return { name: bucket }
  return {
    name: bucket,
    sharedStructuresKey: STRUCTURES_KEY,
    shouldShareStructure: (keys: string[]) => keys.every((k) => ENTRY_FIELDS.has(k)),
  } as { name: string; sharedStructuresKey: symbol }
}

/** Buckets whose entries carry their own key as `id`: stored without it (the key holds it). */
const ID_KEYED: ReadonlySet<BucketName> = new Set([
  'cluster',
  'node',
  'device',
  'brick',
  'volume',
  'blockvolume',
  'pendingop',
])

/**
 * The value to store: an entry's `id` equal to its key is left out (33 bytes
 * of every record; ~15 % of the file at 10,000 nodes). Any other value is
 * stored as it is.
 */
function withoutId(bucket: BucketName, key: string, value: unknown): unknown {
  if (!ID_KEYED.has(bucket) || value === null || typeof value !== 'object') return value
  const entry = value as Record<string, unknown>
  if (entry.id !== key) return value
  const { id: _, ...rest } = entry
  if (bucket === 'brick') withoutDerivedBrickNames(key, rest)
  return rest
}

/**
 * heqet's own brick path and thin pool name (src/operations/bricks.ts,
 * src/placement/allocator.ts), as they follow from the brick and device ids.
 * Spelled out here on purpose: what a stored null means must never change.
 */
const brickPathOf = (deviceId: string, brickId: string) =>
  `/var/lib/heketi/mounts/vg_${deviceId}/brick_${brickId}/brick`
const thinPoolOf = (brickId: string) => `tp_${brickId}`

/**
 * A brick's `path` and `lvmThinPool`, when they are exactly what its ids give
 * (~150 of its ~270 stored bytes), are stored as null, a value neither field
 * ever holds; any other value (an imported heketi brick, '') is stored as is.
 */
function withoutDerivedBrickNames(key: string, brick: Record<string, unknown>): void {
  if (typeof brick.deviceId === 'string' && brick.path === brickPathOf(brick.deviceId, key)) brick.path = null
  if (brick.lvmThinPool === thinPoolOf(key)) brick.lvmThinPool = null
}

function withDerivedBrickNames(key: string, brick: Record<string, unknown>): void {
  if (brick.path === null && typeof brick.deviceId === 'string') brick.path = brickPathOf(brick.deviceId, key)
  if (brick.lvmThinPool === null) brick.lvmThinPool = thinPoolOf(key)
}

/** The entry as stored: its `id` put back from the key (records written with one keep theirs). */
function withId(bucket: BucketName, key: string, stored: unknown): unknown {
  if (!ID_KEYED.has(bucket) || stored === null || typeof stored !== 'object' || 'id' in stored) return stored
  const entry: Record<string, unknown> = { id: key, ...stored }
  if (bucket === 'brick') withDerivedBrickNames(key, entry)
  return entry
}

/** The map reserved at open: 64 GiB of address space (a larger file still grows the map). */
export const LMDB_MAP_BYTES = 64 * 1024 ** 3

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: alive, owned by someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export class LmdbStore implements Store {
  readonly path: string
  private readonly root: RootDatabase
  private readonly dbs: Map<BucketName, Database>
  /** long id lists (a cluster's nodes and volumes) stored one key per id */
  private readonly lists: ListStorage
  private readonly cache = new Map<BucketName, BucketCache>()
  private readonly reader: ReadTxn
  private readonly listeners: ((changes: Change[]) => void)[] = []
  private readonly onListenerError: (err: Error) => void
  listenerFailures = 0
  /** write() calls that ran their callback without throwing */
  writes = 0
  /** LMDB transactions committed: fewer than writes when commits were shared */
  commits = 0
  /** applied writes waiting for the next commit */
  private readonly queued: QueuedWrite[] = []
  private inFlight: Promise<void> | undefined
  /** close() was called: later writes are refused, not sent to a closed environment */
  private closed = false

  constructor(opts: LmdbStoreOptions) {
    this.path = opts.path
    this.onListenerError = opts.onListenerError ?? (() => {})
    mkdirSync(dirname(opts.path), { recursive: true })
    this.root = open({
      path: opts.path,
      maxDbs: 16,
      noSubdir: true,
      readOnly: opts.readOnly ?? false,
      // commits are fsynced: a crash must never lose an acknowledged change
      noSync: false,
      // lmdb-js's default on Linux, made explicit: a commit need not wait for
      // the flush of the one before; write() waits for its own flush
      overlappingSync: true,
      // Address space only (the file grows as data does). lmdb-js otherwise
      // starts at 128 KiB and doubles the map as the file grows, keeping
      // every earlier map: each one's resident pages count in the RSS again
      // (at 3,000 nodes the file's pages were resident 2.7 times over).
      mapSize: LMDB_MAP_BYTES,
    })
    this.dbs = new Map(BUCKETS.map((b) => [b, this.root.openDB(bucketOptions(b))]))
    this.lists = new ListStorage(this.root.openDB({ name: 'lists' }))
    this.lists.loadAll()
    for (const b of BUCKETS) {
      const bucket = new BucketCache()
      for (const { key, value } of this.dbs.get(b)!.getRange({})) {
        const entry = withId(b, String(key), this.lists.decode(b, String(key), value))
        bucket.set(String(key), b === 'device' && entry ? compactDevice(entry as DeviceEntry) : entry)
      }
      this.cache.set(b, bucket)
    }
    const cached = (b: BucketName) => this.cache.get(b)!
    this.reader = {
      get: (b, key) => cached(b).entries.get(key) as never,
      keys: (b) => cached(b).keys(),
      values: (b) =>
        cached(b)
          .keys()
          .map((k) => cached(b).entries.get(k)) as never,
      count: (b) => cached(b).entries.size,
    }
  }

  read<R>(fn: (tx: ReadTxn) => R): R {
    return fn(this.reader)
  }

  write<R>(fn: (tx: WriteTxn) => R): Promise<R> {
    if (this.closed) return Promise.reject(new Error(`LMDB store ${this.path} is closed`))
    const changes: Change[] = []
    // this transaction's own writes, seen by its reads before they reach the cache
    const overlay = new Map<string, { value: unknown }>()
    const at = (b: BucketName, key: string) => `${b}\u0000${key}`
    const keysWithOverlay = (b: BucketName): string[] => {
      const mine = changes.filter((c) => c.bucket === b)
      if (mine.length === 0) return this.reader.keys(b)
      const keys = new Set(this.reader.keys(b))
      for (const c of mine) c.value === undefined ? keys.delete(c.key) : keys.add(c.key)
      return [...keys].sort()
    }
    const tx: WriteTxn = {
      get: (b, key) => {
        const own = overlay.get(at(b, key))
        return (own ? own.value : this.reader.get(b, key)) as never
      },
      keys: keysWithOverlay,
      values: (b) => keysWithOverlay(b).map((k) => tx.get(b, k)) as never,
      count: (b) => keysWithOverlay(b).length,
      put: <B extends BucketName>(b: B, key: string, value: Buckets[B]) => {
        overlay.set(at(b, key), { value })
        changes.push({ bucket: b, key, value })
      },
      del: (b, key) => {
        overlay.set(at(b, key), { value: undefined })
        changes.push({ bucket: b, key, value: undefined })
      },
    }
    // The callback runs now, on the state every earlier write() left (applied,
    // perhaps not yet durable): writes stay serialized in call order.
    let result: R
    try {
      result = fn(tx)
    } catch (err) {
      return Promise.reject(err)
    }
    this.writes++
    if (changes.length === 0) {
      // nothing to commit, but answer no sooner than the writes before it
      return this.durable().then(() => result)
    }
    this.apply(changes)
    notifyListeners(this, this.listeners, changes, this.onListenerError)
    return new Promise<R>((resolve, reject) => {
      this.queued.push({ changes, resolve: () => resolve(result), reject })
      this.commitNext()
    })
  }

  /** Resolves once every write applied so far is durable (or has been rejected). */
  private durable(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.queued.push({ changes: [], resolve, reject: () => resolve() })
      this.commitNext()
    })
  }

  /**
   * Group commit: while one LMDB transaction is being committed (on
   * lmdb-js's write thread, off the event loop), the writes applied meanwhile
   * queue up; they all go into the next transaction. One commit at a time,
   * so a batch is never committed before the batches applied earlier. With
   * overlapping sync the next commit may start while the previous one is
   * being flushed; a write resolves when its own commit is flushed.
   */
  private commitNext(): void {
    if (this.inFlight || this.queued.length === 0) return
    const batch = this.queued.splice(0)
    const changes = batch.flatMap((w) => w.changes)
    if (changes.length === 0) {
      // flushed covers every commit made so far, and so the writes before these
      // (a read-only or untouched environment has none)
      this.afterFlush(batch)
      return
    }
    const db = (b: BucketName) => this.dbs.get(b)!
    // a key written by several writes of the batch is stored once, with its last value
    // (node adds all rewrite their cluster's entry)
    const last = new Map<string, Change>()
    for (const c of changes) last.set(`${c.bucket}\u0000${c.key}`, c)
    // a child transaction: if anything in it throws, none of the batch is written
    this.inFlight = this.root
      .childTransaction(() => {
        for (const c of last.values()) {
          const stored = withoutId(c.bucket, c.key, this.lists.write(c.bucket, c.key, c.value))
          stored === undefined ? db(c.bucket).removeSync(c.key) : db(c.bucket).putSync(c.key, stored)
        }
      })
      .then(
        () => {
          this.commits++
          this.inFlight = undefined
          this.afterFlush(batch)
          this.commitNext()
        },
        (err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err))
          // every write applied since was computed on top of the lost batch
          const lost = [...batch, ...this.queued.splice(0)]
          this.inFlight = undefined
          this.forgetUnsavedStructures()
          this.revert(lost.flatMap((w) => w.changes))
          for (const w of lost) w.reject(error)
        },
      )
  }

  /** Settle these writes once every commit so far is on disk, or fail them with the flush. */
  private afterFlush(batch: QueuedWrite[]): void {
    Promise.resolve(this.root.flushed).then(
      () => {
        for (const w of batch) w.resolve()
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err))
        this.onListenerError(new Error(`LMDB flush failed: ${error.message}`))
        for (const w of batch) w.reject(error)
      },
    )
  }

  /**
   * After a failed commit: the encoders may hold structures that the lost
   * transaction was to save (or that an encoding error left unsaved), and a
   * later record must never refer to a structure the file lacks. Each
   * encoder reloads its structures from the file before its next use.
   */
  private forgetUnsavedStructures(): void {
    for (const b of SHARED_STRUCTURE_BUCKETS) {
      const encoder = (this.dbs.get(b) as { encoder?: { structures?: unknown } }).encoder
      if (!encoder) continue
      const fresh: unknown[] & { uninitialized?: boolean } = []
      fresh.uninitialized = true
      encoder.structures = fresh
    }
  }

  /** Put the cache (and the listeners) back to what the file holds for these keys. */
  private revert(changes: Change[]): void {
    const seen = new Set<string>()
    const restored: Change[] = []
    for (const c of changes) {
      const id = `${c.bucket}\u0000${c.key}`
      if (seen.has(id)) continue
      seen.add(id)
      this.lists.reload(c.bucket, c.key)
      const raw = this.dbs.get(c.bucket)!.get(c.key)
      restored.push({
        bucket: c.bucket,
        key: c.key,
        value: withId(c.bucket, c.key, this.lists.decode(c.bucket, c.key, raw)),
      })
    }
    this.apply(restored)
    notifyListeners(this, this.listeners, restored, this.onListenerError)
  }

  private apply(changes: Change[]): void {
    for (const c of changes) {
      const bucket = this.cache.get(c.bucket)!
      c.value === undefined ? bucket.delete(c.key) : bucket.set(c.key, c.value)
    }
  }

  /**
   * Other live processes that have this environment open (LMDB's reader
   * table lists every process that has read it, and heqet reads it all at
   * start): a running server, for the offline `heqet db` commands.
   */
  otherProcesses(): number[] {
    const pids = new Set<number>()
    for (const line of this.root.readerList().split('\n')) {
      const pid = Number(line.trim().split(/\s+/)[0])
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) pids.add(pid)
    }
    return [...pids].sort((a, b) => a - b)
  }

  onCommit(listener: (changes: Change[]) => void): void {
    this.listeners.push(listener)
  }

  async backup(): Promise<Buffer> {
    await this.durable()
    // unique per call: concurrent backups must never share (or remove) a file
    const tmp = join(dirname(this.path), `.backup-${randomUUID()}.mdb`)
    try {
      await this.root.backup(tmp, false)
      return readFileSync(tmp)
    } finally {
      rmSync(tmp, { force: true })
    }
  }

  async close(): Promise<void> {
    this.closed = true
    await this.durable()
    await this.root.close()
  }
}
