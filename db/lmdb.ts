// The LMDB-backed store: one environment file, one named database per bucket.
// LMDB is the source of truth; every committed entry is also kept decoded in
// memory (write-through), so reads never decode and never touch the file.
// Entries handed out are shared: callers treat them as immutable and write
// changed copies back (the domain code only ever spreads into new objects).
import { randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { type Database, open, type RootDatabase } from 'lmdb'
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
  private readonly cache = new Map<BucketName, BucketCache>()
  private readonly reader: ReadTxn
  private readonly listeners: ((changes: Change[]) => void)[] = []
  private readonly onListenerError: (err: Error) => void
  listenerFailures = 0

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
    })
    this.dbs = new Map(BUCKETS.map((b) => [b, this.root.openDB({ name: b })]))
    for (const b of BUCKETS) {
      const bucket = new BucketCache()
      for (const { key, value } of this.dbs.get(b)!.getRange({})) bucket.set(String(key), value)
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
    const db = (b: BucketName) => this.dbs.get(b)!
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
        db(b).putSync(key, value)
        overlay.set(at(b, key), { value })
        changes.push({ bucket: b, key, value })
      },
      del: (b, key) => {
        db(b).removeSync(key)
        overlay.set(at(b, key), { value: undefined })
        changes.push({ bucket: b, key, value: undefined })
      },
    }
    // transactionSync, not transaction: only the synchronous form aborts every
    // write of the callback when it throws (verified with lmdb 3.5).
    let result: R
    try {
      result = this.root.transactionSync(() => fn(tx))
    } catch (err) {
      return Promise.reject(err)
    }
    // committed: from here on nothing may turn the answer into a rejection
    for (const c of changes) {
      const bucket = this.cache.get(c.bucket)!
      c.value === undefined ? bucket.delete(c.key) : bucket.set(c.key, c.value)
    }
    notifyListeners(this, this.listeners, changes, this.onListenerError)
    return Promise.resolve(result)
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
    await this.root.close()
  }
}
