// The etcd-backed store (etcd v3 API through the `etcd3` client). etcd is the
// source of truth; like the LMDB store, every entry is also kept decoded in
// memory so reads stay synchronous and never leave the process.
//
// Layout under the configured prefix P:
//   P/<bucket>/<key>   one entry, JSON-encoded
//   P/_meta/<bucket>   touched by every transaction that changes the bucket,
//                      so "I scanned this bucket" can be guarded by one compare
//
// A write runs its callback against the cache, then commits everything it
// changed as ONE etcd Txn whose compares say "every key I read or wrote still
// has the mod_revision I saw" (and, for whole-bucket reads, "the bucket's meta
// key is unchanged"). If another writer got there first the Txn applies
// nothing; the store reloads from etcd, tells the commit listeners what
// changed, and runs the callback again (bounded). A write never half-applies.
//
// The cache is loaded at open, updated by this process's own commits, and
// kept current by an etcd watch on the prefix from the load's revision: other
// writers' puts/deletes are applied when newer than what the cache holds
// (per-key mod_revision; deleted keys keep a tombstone revision until the
// watch has passed it) and told to the commit listeners. The watch skips this
// process's own Txns (recognised by its writer key); a watch error (e.g. a
// compacted revision) triggers a full reload and a new watch.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prefixEnd } from './etcd-keys.ts'
import { LmdbStore } from './lmdb.ts'
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

// The part of the `etcd3` client (1.1.x) this store uses. etcd3 is loaded
// only when an etcd db is opened, so a heqet that never uses etcd (and a
// checkout whose node_modules predates the dependency) neither loads nor
// type-checks against it.
export interface IKeyValue {
  key: Buffer
  value: Buffer
  mod_revision: string
  create_revision: string
}
export type ICompare =
  | { key: Buffer; target: 'Mod'; result: 'Equal'; mod_revision: string }
  | { key: Buffer; target: 'Create'; result: 'Equal'; create_revision: string }
  | { key: Buffer; target: 'Value'; result: 'Equal'; value: Buffer }
export interface IRequestOp {
  request_put?: { key: Buffer; value: Buffer }
  request_delete_range?: { key: Buffer; range_end?: Buffer }
  request_range?: { key: Buffer; range_end?: Buffer }
}
/** cockatiel's IBackoff, as etcd3's watch manager uses it */
interface Backoff {
  duration: number
  next(): Backoff
}
interface IOptions {
  hosts: string[]
  credentials?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer }
  auth?: { username: string; password: string }
  defaultCallOptions?: (context: { isStream: boolean }) => { deadline?: number }
  faultHandling?: { watchBackoff?: Backoff }
}
export interface EtcdClient {
  kv: {
    range(req: {
      key: Buffer
      range_end?: Buffer
      limit: number
      revision?: string
      count_only?: boolean
      sort_order?: 'Ascend' | 'Descend'
      sort_target?: 'Create'
      max_create_revision?: string
    }): Promise<{ header: { revision: string }; kvs: IKeyValue[]; more: boolean; count: string }>
    txn(req: { compare: ICompare[]; success: IRequestOp[]; failure: IRequestOp[] }): Promise<{
      header: { revision: string }
      succeeded: boolean
      responses: { response_range?: { kvs: IKeyValue[] } }[]
    }>
    deleteRange(req: { key: Buffer; range_end?: Buffer }): Promise<unknown>
  }
  watch(): WatchBuilder
  close(): void
}
interface WatchResponse {
  events: { type: 'Put' | 'Delete'; kv: IKeyValue }[]
}
interface WatchBuilder {
  prefix(p: string): WatchBuilder
  startRevision(rev: string): WatchBuilder
  create(): Promise<Watcher>
}
interface Watcher {
  on(event: 'data', handler: (res: WatchResponse) => void): Watcher
  on(event: 'error', handler: (err: Error) => void): Watcher
  cancel(): Promise<void>
}
const ETCD3_MODULE: string = 'etcd3'

/** etcd's default `--max-txn-ops`: the most compares, and the most operations, one Txn may carry. */
export const ETCD_DEFAULT_MAX_TXN_OPS = 128

/**
 * How long one etcd request (not a watch or keepalive stream) may take, as
 * etcdctl's `--command-timeout` (default 5 s). Without it a request to an
 * etcd the network silently drops waits forever: a leader cut off from etcd
 * kept the requests it was serving (and the followers that forwarded them)
 * hanging. The etcd3 client retries a timed-out request up to 3 times.
 */
export const ETCD_DEFAULT_COMMAND_TIMEOUT_SEC = 5

/** the longest pause before a broken watch stream is opened again (etcd3's default: 30 s) */
const WATCH_BACKOFF_MAX_MS = 1000

/** Doubling pauses, 100 ms up to WATCH_BACKOFF_MAX_MS. */
function watchBackoff(ms = 100): Backoff {
  return { duration: ms, next: () => watchBackoff(Math.min(ms * 2, WATCH_BACKOFF_MAX_MS)) }
}

export interface EtcdStoreOptions {
  /** client endpoints, e.g. `http://127.0.0.1:2379` */
  hosts: string[]
  /** key prefix, without a trailing slash */
  prefix: string
  /** the `--max-txn-ops` the etcd cluster runs with (default 128) */
  maxTxnOps?: number
  /** files named like etcdctl's `--cacert`, `--cert`, `--key` */
  cacert?: string
  cert?: string
  key?: string
  /** etcdctl's `--user name:password` */
  user?: string
  /** etcdctl's `--command-timeout`, in seconds (default 5): the longest one etcd request may take */
  commandTimeoutSec?: number
  readOnly?: boolean
  /** follow other writers through an etcd watch (default true) */
  watch?: boolean
  /** how often one write is retried after losing to another writer (default 20) */
  maxConflictRetries?: number
  onListenerError?: (err: Error) => void
  /**
   * Leader fencing (api/replica.ts): when set, every write must carry the
   * fence it returns — a compare that the leader's election key still exists
   * with the create revision it was elected with (or that the term key still
   * holds the leader's own term) — and is refused with
   * FencedWriteError when it returns undefined or etcd finds the key gone.
   */
  fence?: () => Fence | undefined
  /** told about every write etcd refused because the fence key was gone */
  onFenced?: (err: FencedWriteError) => void
}

/**
 * The leader's election key and its create revision (it changes with every
 * election), or — Kubernetes Lease election (db/kube-lease-election.ts) — the
 * term key and the mod revision its leader wrote it at.
 */
export type Fence = { key: string; createRevision: string } | { key: string; modRevision: string }

/** A write by a replica that is not (or no longer) the leader: nothing was applied. */
export class FencedWriteError extends Error {
  constructor(
    reason: string,
    /** the fence key etcd found gone (undefined: refused locally) */
    readonly fenceKey?: string,
  ) {
    super(`not the leader: ${reason}; nothing was written`)
    this.name = 'FencedWriteError'
  }
}

export function isEtcdUrl(db: string): boolean {
  return db.startsWith('etcd://') || db.startsWith('etcds://')
}

/**
 * `etcd://host1:2379,host2:2379/prefix?cacert=..&cert=..&key=..&user=name:pw&max-txn-ops=N&command-timeout=S`.
 * `etcds://` (or any of cacert/cert/key) selects TLS. The prefix defaults to `heqet`.
 */
export function parseEtcdUrl(db: string): EtcdStoreOptions {
  const m = /^(etcds?):\/\/([^/?]+)(\/[^?]*)?(?:\?(.*))?$/.exec(db)
  if (!m) throw new Error(`db: not an etcd URL: ${db}`)
  const [, scheme, hostList, path, query] = m
  const params = new URLSearchParams(query ?? '')
  const known = new Set(['cacert', 'cert', 'key', 'user', 'max-txn-ops', 'command-timeout'])
  for (const k of params.keys()) if (!known.has(k)) throw new Error(`db: unknown etcd option "${k}"`)
  const cacert = params.get('cacert') ?? undefined
  const cert = params.get('cert') ?? undefined
  const key = params.get('key') ?? undefined
  const tls = scheme === 'etcds' || cacert !== undefined || cert !== undefined || key !== undefined
  const hosts = hostList!.split(',').map((h) => {
    if (!/^[A-Za-z0-9.\-[\]:]+:\d+$/.test(h)) throw new Error(`db: etcd endpoint "${h}" is not host:port`)
    return `${tls ? 'https' : 'http'}://${h}`
  })
  const prefix = (path ?? '').replace(/^\/+|\/+$/g, '') || 'heqet'
  const rawMax = params.get('max-txn-ops')
  const maxTxnOps = rawMax === null ? ETCD_DEFAULT_MAX_TXN_OPS : Number(rawMax)
  if (!Number.isInteger(maxTxnOps) || maxTxnOps < 16)
    throw new Error('db: max-txn-ops must be an integer >= 16')
  const rawTimeout = params.get('command-timeout')
  const commandTimeoutSec = rawTimeout === null ? ETCD_DEFAULT_COMMAND_TIMEOUT_SEC : Number(rawTimeout)
  if (!Number.isFinite(commandTimeoutSec) || commandTimeoutSec <= 0 || commandTimeoutSec > 3600)
    throw new Error('db: command-timeout must be a number of seconds, > 0 and <= 3600')
  return {
    hosts,
    prefix,
    maxTxnOps,
    cacert,
    cert,
    key,
    user: params.get('user') ?? undefined,
    commandTimeoutSec,
  }
}

/**
 * `P/_meta/import`: put by `heqet db import` before the first entry and
 * deleted in the Txn after the last. While it exists the prefix holds a
 * partial import, and the store refuses to open it.
 */
export const IMPORT_MARKER = '_meta/import'

/** The prefix holds an import that never finished (its marker is still there). */
export class UnfinishedImportError extends Error {
  constructor(
    readonly prefix: string,
    readonly marker: string,
  ) {
    super(
      `etcd store: prefix "${prefix}" holds an unfinished \`heqet db import\` (${marker}); ` +
        'run the import again with --force to discard it, or delete the prefix',
    )
  }
}

/** etcd3 client options from a store's options (TLS files and user as etcdctl names them). */
function clientOptions(opts: EtcdStoreOptions): IOptions {
  const timeoutMs = (opts.commandTimeoutSec ?? ETCD_DEFAULT_COMMAND_TIMEOUT_SEC) * 1000
  const clientOpts: IOptions = {
    hosts: opts.hosts,
    // every request (each retry afresh) has a deadline; streams (watch, lease keepalive) have none
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    // a broken watch is opened again within a second (and no pause outlives close() by more)
    faultHandling: { watchBackoff: watchBackoff() },
  }
  if (opts.cacert || opts.cert || opts.key) {
    clientOpts.credentials = {
      rootCertificate: opts.cacert ? readFileSync(opts.cacert) : Buffer.alloc(0),
      privateKey: opts.key ? readFileSync(opts.key) : undefined,
      certChain: opts.cert ? readFileSync(opts.cert) : undefined,
    }
  }
  if (opts.user) {
    const at = opts.user.indexOf(':')
    if (at < 0) throw new Error('db: etcd user must be name:password')
    clientOpts.auth = { username: opts.user.slice(0, at), password: opts.user.slice(at + 1) }
  }
  return clientOpts
}

async function loadEtcd3(): Promise<new (o: IOptions) => EtcdClient> {
  return ((await import(ETCD3_MODULE)) as { Etcd3: new (o: IOptions) => EtcdClient }).Etcd3
}

/** A bare etcd3 client for tools that work below the Store (db import). */
export async function connectEtcd(opts: EtcdStoreOptions): Promise<EtcdClient> {
  const Etcd3 = await loadEtcd3()
  return new Etcd3(clientOptions(opts))
}

/** The etcd key of one entry: `<prefix>/<bucket>/<key>`. */
export function etcdEntryKey(prefix: string, bucket: BucketName, key: string): Buffer {
  return Buffer.from(`${prefix}/${bucket}/${key}`)
}

/** The URL with a user's password masked, for messages and logs. */
export function redactEtcdUrl(db: string): string {
  return db.replace(/([?&]user=[^:&]*):[^&]*/, '$1:***')
}

/** A transaction that does not fit one etcd Txn: refused before anything is sent. */
export class TxnTooLargeError extends Error {
  constructor(
    readonly ops: number,
    readonly maxTxnOps: number,
  ) {
    super(
      `etcd store: this change writes ${ops} keys in one transaction but etcd allows ${maxTxnOps} ` +
        `(--max-txn-ops); start every etcd member with --max-txn-ops=${ops} or more and add ` +
        `max-txn-ops=${ops} to the db URL`,
    )
  }
}

interface Cached {
  value: unknown
  /** etcd mod_revision of the key */
  rev: bigint
}

class BucketCache {
  readonly entries = new Map<string, Cached>()
  /** revision at which a key was deleted, until the watch has passed it */
  readonly tombstones = new Map<string, bigint>()
  /** mod_revision of P/_meta/<bucket> (0 when absent) */
  metaRev = 0n
  private sorted: string[] | undefined

  keys(): string[] {
    this.sorted ??= [...this.entries.keys()].sort()
    return this.sorted
  }

  set(key: string, value: unknown, rev: bigint): void {
    if (!this.entries.has(key)) this.sorted = undefined
    this.entries.set(key, { value, rev })
  }

  delete(key: string): void {
    if (this.entries.delete(key)) this.sorted = undefined
  }

  /**
   * Apply a put (value) or delete (undefined) made at etcd revision `rev`,
   * unless the cache already holds that key at the same or a later revision
   * (own commit echoed by the watch, or an event older than a snapshot).
   */
  apply(key: string, value: unknown, rev: bigint, floor: bigint): boolean {
    const seen = this.entries.get(key)?.rev ?? this.tombstones.get(key) ?? 0n
    if (rev <= floor || rev <= seen) return false
    if (value === undefined) {
      this.delete(key)
      this.tombstones.set(key, rev)
    } else {
      this.tombstones.delete(key)
      this.set(key, value, rev)
    }
    return true
  }
}

const META = '_meta'

export class EtcdStore implements Store {
  readonly client: EtcdClient
  readonly prefix: string
  readonly maxTxnOps: number
  private cache = new Map<BucketName, BucketCache>()
  private readonly reader: ReadTxn
  /** puts/deletes to one bucket that fit one Txn (its meta key and the writer token take two more) */
  readonly maxChangesPerWrite: number
  private readonly listeners: ((changes: Change[]) => void)[] = []
  private readonly onListenerError: (err: Error) => void
  private readonly readOnly: boolean
  private readonly maxConflictRetries: number
  private queue: Promise<unknown> = Promise.resolve()
  listenerFailures = 0
  /** Txns that lost to another writer and were run again */
  conflicts = 0
  /** the largest number of operations (puts + deletes) one committed Txn carried */
  largestTxnOps = 0
  private txnSeq = 0
  /** revision of the last full load: events at or below it are already in the cache */
  private snapshotRev = 0n
  private watcher: Watcher | undefined
  private readonly watchEnabled: boolean
  private reloading = false
  private txnInFlight = false
  private watchedRev = 0n
  private buffered: WatchResponse[] = []
  /** watch failures (each followed by a full reload and a new watch) */
  watchErrors = 0
  /** P/_meta/writer/<random>: the token of this process's last Txn (deleted at close) */
  private readonly writerKey: Buffer
  private readonly fence: (() => Fence | undefined) | undefined
  private readonly onFenced: (err: FencedWriteError) => void
  /** writes refused because this process was not the leader (locally or by etcd) */
  fencedWrites = 0

  private constructor(opts: EtcdStoreOptions, Etcd3: new (o: IOptions) => EtcdClient) {
    this.prefix = opts.prefix
    this.watchEnabled = opts.watch ?? true
    this.writerKey = Buffer.from(`${opts.prefix}/${META}/writer/${randomBytes(8).toString('hex')}`)
    this.maxTxnOps = opts.maxTxnOps ?? ETCD_DEFAULT_MAX_TXN_OPS
    this.maxChangesPerWrite = this.maxTxnOps - 2
    this.readOnly = opts.readOnly ?? false
    this.maxConflictRetries = opts.maxConflictRetries ?? 20
    this.onListenerError = opts.onListenerError ?? (() => {})
    this.fence = opts.fence
    this.onFenced = opts.onFenced ?? (() => {})
    this.client = new Etcd3(clientOptions(opts))
    const cached = (b: BucketName) => this.cache.get(b)!
    this.reader = {
      get: (b, key) => cached(b).entries.get(key)?.value as never,
      keys: (b) => cached(b).keys(),
      values: (b) =>
        cached(b)
          .keys()
          .map((k) => cached(b).entries.get(k)!.value) as never,
      count: (b) => cached(b).entries.size,
    }
  }

  /** Connect and load every entry under the prefix. */
  static async open(opts: EtcdStoreOptions): Promise<EtcdStore> {
    const store = new EtcdStore(opts, await loadEtcd3())
    try {
      const { caches, rev, unfinishedImport } = await store.load()
      if (unfinishedImport !== undefined) throw new UnfinishedImportError(store.prefix, unfinishedImport)
      store.cache = caches
      store.snapshotRev = rev
      if (store.watchEnabled) await store.startWatch()
    } catch (err) {
      store.client.close()
      throw err
    }
    return store
  }

  private entryKey(b: BucketName, key: string): Buffer {
    return Buffer.from(`${this.prefix}/${b}/${key}`)
  }

  private metaKey(b: BucketName): Buffer {
    return Buffer.from(`${this.prefix}/${META}/${b}`)
  }

  /** Every key under the prefix, read page by page at one revision (one consistent snapshot). */
  private async load(): Promise<{
    caches: Map<BucketName, BucketCache>
    rev: bigint
    /** the value of P/_meta/import when the prefix holds a partial import */
    unfinishedImport?: string
  }> {
    const caches = new Map<BucketName, BucketCache>(BUCKETS.map((b) => [b, new BucketCache()]))
    const start = Buffer.from(`${this.prefix}/`)
    const end = Buffer.from(`${this.prefix}0`) // '/' + 1: the whole prefix
    let from = start
    let revision: string | undefined
    const known = new Set<string>(BUCKETS)
    const marker = `${this.prefix}/${IMPORT_MARKER}`
    let unfinishedImport: string | undefined
    for (;;) {
      const res = await this.client.kv.range({ key: from, range_end: end, limit: 1000, revision })
      revision ??= res.header.revision
      for (const kv of res.kvs) {
        if (kv.key.toString() === marker) unfinishedImport = kv.value.toString()
        else this.loadOne(caches, kv, known)
      }
      if (!res.more || res.kvs.length === 0) break
      from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])])
    }
    return { caches, rev: BigInt(revision!), unfinishedImport }
  }

  private loadOne(caches: Map<BucketName, BucketCache>, kv: IKeyValue, known: Set<string>): void {
    const rest = kv.key.toString().slice(this.prefix.length + 1)
    const slash = rest.indexOf('/')
    const bucket = rest.slice(0, slash)
    const key = rest.slice(slash + 1)
    if (bucket === META) {
      if (known.has(key)) caches.get(key as BucketName)!.metaRev = BigInt(kv.mod_revision)
      return
    }
    if (!known.has(bucket)) throw new Error(`etcd store: unknown bucket in key ${kv.key.toString()}`)
    caches.get(bucket as BucketName)!.set(key, JSON.parse(kv.value.toString()), BigInt(kv.mod_revision))
  }

  read<R>(fn: (tx: ReadTxn) => R): R {
    return fn(this.reader)
  }

  write<R>(fn: (tx: WriteTxn) => R): Promise<R> {
    if (this.readOnly) return Promise.reject(new Error('etcd store opened read-only (db_read_only)'))
    // one write at a time per process: the callback sees every earlier commit
    // the caller's stack, for a refusal nobody awaited (the queue hides where the write came from)
    const caller = new Error('write() called')
    const run = this.queue.then(() =>
      this.writeNow(fn).catch((err: unknown) => {
        if (err instanceof Error && err.stack && caller.stack)
          err.stack += `\n    --- write() called from:\n${caller.stack.split('\n').slice(1).join('\n')}`
        throw err
      }),
    )
    this.queue = run.catch(() => undefined) // the caller gets the failure from `run`
    return run
  }

  private async writeNow<R>(fn: (tx: WriteTxn) => R): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const fence = this.currentFence()
      const { result, changes, reads, scans } = this.runCallback(fn)
      if (changes.length === 0) return result
      const { compare, success, finals, touched } = this.buildTxn(changes, reads, scans, fence ? 1 : 0)
      if (fence) compare.push(fenceCompare(fence))
      // this attempt's token on this process's writer key: if the client's own
      // retry (lost response) re-sends a Txn that had already applied, the
      // compares fail and the failure branch reads the token back
      const token = `${process.pid}-${++this.txnSeq}-${randomBytes(6).toString('hex')}`
      success.push({ request_put: { key: this.writerKey, value: Buffer.from(token) } })
      if (success.length > this.maxTxnOps) throw new TxnTooLargeError(success.length, this.maxTxnOps)
      this.txnInFlight = true
      let res: Awaited<ReturnType<EtcdClient['kv']['txn']>>
      try {
        res = await this.client.kv.txn({
          compare,
          success,
          failure: [
            { request_range: { key: this.writerKey } },
            ...(fence ? [{ request_range: { key: Buffer.from(fence.key) } }] : []),
          ],
        })
      } finally {
        this.txnInFlight = false
      }
      const applied = res.succeeded
        ? BigInt(res.header.revision)
        : appliedEarlier(res.responses[0]?.response_range?.kvs[0], token)
      if (applied !== undefined) {
        const rev = applied
        // a later write by someone else, already seen through the watch, is kept
        const stale: Change[] = []
        for (const c of finals.values()) {
          if (!this.cache.get(c.bucket)!.apply(c.key, c.value, rev, 0n)) stale.push(c)
        }
        for (const b of touched) {
          const bucket = this.cache.get(b)!
          if (bucket.metaRev < rev) bucket.metaRev = rev
        }
        this.largestTxnOps = Math.max(this.largestTxnOps, success.length)
        const told = stale.length === 0 ? changes : [...finals.values()].filter((c) => !stale.includes(c))
        this.pruneTombstones()
        if (told.length > 0) notifyListeners(this, this.listeners, told, this.onListenerError)
        return result
      }
      if (fence) this.checkFence(fence, res.responses[1]?.response_range?.kvs[0])
      // another writer changed something this transaction read: nothing was
      // applied; catch up and run the callback again on the new state
      this.conflicts++
      if (attempt >= this.maxConflictRetries) {
        throw new Error(`etcd store: transaction lost to other writers ${attempt + 1} times; giving up`)
      }
      await this.reload()
    }
  }

  private runCallback<R>(fn: (tx: WriteTxn) => R) {
    const changes: Change[] = []
    const overlay = new Map<string, { value: unknown }>()
    const reads = new Set<string>() // `${bucket}\0${key}`
    const scans = new Set<BucketName>()
    const at = (b: BucketName, key: string) => `${b}\u0000${key}`
    const keysWithOverlay = (b: BucketName): string[] => {
      scans.add(b)
      const mine = changes.filter((c) => c.bucket === b)
      if (mine.length === 0) return this.reader.keys(b)
      const keys = new Set(this.reader.keys(b))
      for (const c of mine) c.value === undefined ? keys.delete(c.key) : keys.add(c.key)
      return [...keys].sort()
    }
    const get = (b: BucketName, key: string): unknown => {
      const own = overlay.get(at(b, key))
      if (own) return own.value
      reads.add(at(b, key))
      return this.reader.get(b, key)
    }
    const tx: WriteTxn = {
      get: get as WriteTxn['get'],
      keys: keysWithOverlay,
      values: (b) => keysWithOverlay(b).map((k) => get(b, k)) as never,
      count: (b) => keysWithOverlay(b).length,
      put: <B extends BucketName>(b: B, key: string, value: Buckets[B]) => {
        if (value === undefined) throw new Error(`etcd store: put of undefined at ${b}/${key}`)
        // encode now: a value the caller mutates after put() must not change the commit
        const copy = JSON.parse(JSON.stringify(value)) as unknown
        overlay.set(at(b, key), { value: copy })
        changes.push({ bucket: b, key, value: copy })
      },
      del: (b, key) => {
        overlay.set(at(b, key), { value: undefined })
        changes.push({ bucket: b, key, value: undefined })
      },
    }
    const result = fn(tx)
    return { result, changes, reads, scans }
  }

  /** The fence a write must carry now; throws when this process may not write. */
  private currentFence(): Fence | undefined {
    if (!this.fence) return undefined
    const fence = this.fence()
    if (fence) return fence
    const err = new FencedWriteError('this replica holds no leader lease')
    this.fencedWrites++
    throw err
  }

  /** After a failed Txn: was it refused because the leader key is gone or was re-created? */
  private checkFence(fence: Fence, kv: IKeyValue | undefined): void {
    if (
      kv &&
      ('modRevision' in fence
        ? kv.mod_revision === fence.modRevision
        : kv.create_revision === fence.createRevision)
    )
      return
    this.fencedWrites++
    const what = 'modRevision' in fence ? 'was taken by a newer term' : 'is gone'
    const err = new FencedWriteError(`etcd refused the write: the leader key ${fence.key} ${what}`, fence.key)
    this.onFenced(err)
    throw err
  }

  private buildTxn(changes: Change[], reads: Set<string>, scans: Set<BucketName>, reserved = 0) {
    // the last change of each key is what gets written (etcd refuses a key twice in one Txn)
    const finals = new Map<string, Change>()
    for (const c of changes) {
      const id = `${c.bucket}\u0000${c.key}`
      finals.delete(id)
      finals.set(id, c)
    }
    const touched = new Set<BucketName>([...finals.values()].map((c) => c.bucket))
    const success: IRequestOp[] = []
    for (const c of finals.values()) {
      const key = this.entryKey(c.bucket, c.key)
      success.push(
        c.value === undefined
          ? { request_delete_range: { key } }
          : { request_put: { key, value: Buffer.from(JSON.stringify(c.value)) } },
      )
    }
    for (const b of touched) success.push({ request_put: { key: this.metaKey(b), value: Buffer.alloc(0) } })

    // guards: every key read or written is unchanged since this process saw it
    const guarded = new Set<string>([...reads, ...finals.keys()])
    const metaCompare = (b: BucketName): ICompare => ({
      key: this.metaKey(b),
      target: 'Mod',
      result: 'Equal',
      mod_revision: this.cache.get(b)!.metaRev.toString(),
    })
    let compare: ICompare[] = [...scans].map(metaCompare)
    const perKey: ICompare[] = []
    const coarse = new Set<BucketName>(scans)
    for (const id of guarded) {
      const [b, key] = id.split('\u0000') as [BucketName, string]
      if (coarse.has(b)) continue // the bucket's meta key already guards it
      perKey.push({
        key: this.entryKey(b, key),
        target: 'Mod',
        result: 'Equal',
        mod_revision: (this.cache.get(b)!.entries.get(key)?.rev ?? 0n).toString(),
      })
    }
    if (compare.length + perKey.length + reserved <= this.maxTxnOps) {
      compare = compare.concat(perKey)
    } else {
      // too many single-key guards: guard whole buckets instead (every change
      // to a bucket also changes its meta key, so this is stricter, not looser)
      const buckets = new Set<BucketName>(scans)
      for (const id of guarded) buckets.add(id.split('\u0000')[0] as BucketName)
      compare = [...buckets].map(metaCompare)
    }
    return { compare, success, finals, touched }
  }

  /** Catch up with etcd after a lost Txn, telling the listeners what others changed. */
  private async reload(): Promise<void> {
    this.reloading = true
    let fresh: Awaited<ReturnType<EtcdStore['load']>>
    try {
      fresh = await this.load()
    } catch (err) {
      this.reloading = false
      this.replayBuffered()
      throw err
    }
    const changes: Change[] = []
    for (const b of BUCKETS) {
      const before = this.cache.get(b)!.entries
      const after = fresh.caches.get(b)!.entries
      for (const key of before.keys()) if (!after.has(key)) changes.push({ bucket: b, key, value: undefined })
      for (const [key, now] of after) {
        const old = before.get(key)
        if (!old || old.rev !== now.rev) changes.push({ bucket: b, key, value: now.value })
      }
    }
    this.cache = fresh.caches
    this.snapshotRev = fresh.rev
    this.reloading = false
    if (changes.length > 0) notifyListeners(this, this.listeners, changes, this.onListenerError)
    // events that arrived while loading: those newer than the snapshot still apply
    this.replayBuffered()
  }

  private replayBuffered(): void {
    const pending = this.buffered
    this.buffered = []
    for (const res of pending) this.applyWatch(res)
  }

  private async startWatch(): Promise<void> {
    const watcher = await this.client
      .watch()
      .prefix(`${this.prefix}/`)
      .startRevision((this.snapshotRev + 1n).toString())
      .create()
    this.watcher = watcher
    watcher.on('data', (res) => {
      if (this.reloading) this.buffered.push(res)
      else this.applyWatch(res)
    })
    watcher.on('error', (err) => {
      // e.g. the revision was compacted away: start over from a full load
      this.watchErrors++
      this.onListenerError(new Error(`etcd watch failed, reloading: ${err.message}`))
      // a failed restart is counted and reported; the cache then stays as it
      // is (writes stay correct: their Txns are guarded) until the next open
      this.queue = this.queue
        .then(() => this.restartWatch())
        .catch((e: unknown) => {
          this.watchErrors++
          this.onListenerError(new Error(`etcd watch could not be restarted: ${(e as Error).message}`))
        })
    })
  }

  private async restartWatch(): Promise<void> {
    const old = this.watcher
    this.watcher = undefined
    if (old) await old.cancel()
    await this.reload()
    await this.startWatch()
  }

  /**
   * Events arrive in revision order, so nothing older than watchedRev can
   * come any more. Not while a Txn is in flight: its answer may still be
   * checked against a delete the watch already echoed.
   */
  private pruneTombstones(): void {
    for (const b of BUCKETS) {
      const bucket = this.cache.get(b)!
      for (const [key, rev] of bucket.tombstones) if (rev <= this.watchedRev) bucket.tombstones.delete(key)
    }
  }

  /** Other writers' commits (and echoes of our own, skipped by revision). */
  private applyWatch(res: WatchResponse): void {
    const changes: Change[] = []
    let upTo = 0n
    // this process's own Txns (they put its writer key): applied and told by write()
    const own = new Set<string>()
    for (const ev of res.events)
      if (ev.type === 'Put' && ev.kv.key.equals(this.writerKey)) own.add(ev.kv.mod_revision)
    for (const ev of res.events) {
      const rev = BigInt(ev.kv.mod_revision)
      if (rev > upTo) upTo = rev
      if (own.has(ev.kv.mod_revision)) continue
      const rest = ev.kv.key.toString().slice(this.prefix.length + 1)
      const slash = rest.indexOf('/')
      const bucketName = rest.slice(0, slash)
      const key = rest.slice(slash + 1)
      if (bucketName === META) {
        const bucket = this.cache.get(key as BucketName)
        if (bucket && ev.type === 'Put' && bucket.metaRev < rev) bucket.metaRev = rev
        continue
      }
      const bucket = this.cache.get(bucketName as BucketName)
      if (!bucket) continue
      const value = ev.type === 'Put' ? (JSON.parse(ev.kv.value.toString()) as unknown) : undefined
      if (bucket.apply(key, value, rev, this.snapshotRev)) {
        changes.push({ bucket: bucketName as BucketName, key, value })
      }
    }
    if (upTo > this.watchedRev) this.watchedRev = upTo
    if (!this.txnInFlight) this.pruneTombstones()
    if (changes.length > 0) notifyListeners(this, this.listeners, changes, this.onListenerError)
  }

  /** Catch up with etcd now (a new leader does this before it runs anything). */
  sync(): Promise<void> {
    const run = this.queue.then(() => this.reload())
    this.queue = run.catch(() => undefined)
    return run
  }

  private metaName(name: string): Buffer {
    return Buffer.from(`${this.prefix}/${META}/${name}`)
  }

  /**
   * Side records outside the entry buckets (the async queue's job outcomes,
   * api/queue.ts): P/_meta/<name>. A put is fenced like every entry write.
   */
  async putMeta(name: string, value: string): Promise<void> {
    if (this.readOnly) throw new Error('etcd store opened read-only (db_read_only)')
    const fence = this.currentFence()
    const res = await this.client.kv.txn({
      compare: fence ? [fenceCompare(fence)] : [],
      success: [{ request_put: { key: this.metaName(name), value: Buffer.from(value) } }],
      failure: fence ? [{ request_range: { key: Buffer.from(fence.key) } }] : [],
    })
    if (!res.succeeded && fence) this.checkFence(fence, res.responses[0]?.response_range?.kvs[0])
  }

  async getMeta(name: string): Promise<string | undefined> {
    const res = await this.client.kv.range({ key: this.metaName(name), limit: 1 })
    return res.kvs[0]?.value.toString()
  }

  /** Every side record whose name starts with `prefix` (e.g. `queue/`). */
  async listMeta(prefix: string): Promise<{ name: string; value: string }[]> {
    const start = this.metaName(prefix)
    const res = await this.client.kv.range({ key: start, range_end: prefixEnd(start), limit: 0 })
    const skip = `${this.prefix}/${META}/`.length
    return res.kvs.map((kv) => ({ name: kv.key.toString().slice(skip), value: kv.value.toString() }))
  }

  /** Not fenced: deleting a finished job's outcome (read once) is harmless on any replica. */
  async deleteMeta(name: string): Promise<void> {
    await this.client.kv.deleteRange({ key: this.metaName(name) })
  }

  onCommit(listener: (changes: Change[]) => void): void {
    this.listeners.push(listener)
  }

  /**
   * The whole store as an LMDB file, the same format the LMDB store's backup
   * gives: `heqet db export` and a restore into LMDB read it unchanged.
   */
  async backup(): Promise<Buffer> {
    const snapshot = (await this.load()).caches
    const dir = mkdtempSync(join(tmpdir(), 'heqet-etcd-backup-'))
    try {
      const lmdb = new LmdbStore({ path: join(dir, 'heketi.db') })
      try {
        await lmdb.write((tx) => {
          for (const b of BUCKETS) {
            for (const [key, { value }] of snapshot.get(b)!.entries) tx.put(b, key, value as never)
          }
        })
      } finally {
        await lmdb.close()
      }
      return readFileSync(join(dir, 'heketi.db'))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  async close(): Promise<void> {
    await this.queue
    try {
      if (this.watcher) await this.watcher.cancel()
      await this.client.kv.deleteRange({ key: this.writerKey })
    } finally {
      this.client.close()
    }
  }
}

function fenceCompare(fence: Fence): ICompare {
  const key = Buffer.from(fence.key)
  return 'modRevision' in fence
    ? { key, target: 'Mod', result: 'Equal', mod_revision: fence.modRevision }
    : { key, target: 'Create', result: 'Equal', create_revision: fence.createRevision }
}

/** the mod_revision of the writer key when it holds this attempt's token (the Txn did apply) */
function appliedEarlier(kv: IKeyValue | undefined, token: string): bigint | undefined {
  return kv && kv.value.toString() === token ? BigInt(kv.mod_revision) : undefined
}
