// The LMDB-backed store: one environment file, one named database per bucket.
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { type Database, open, type RootDatabase } from 'lmdb'
import {
  BUCKETS,
  type BucketName,
  type Buckets,
  type Change,
  type ReadTxn,
  type Store,
  type WriteTxn,
} from './store.ts'

export interface LmdbStoreOptions {
  /** path of the LMDB data file (created with its lock file beside it) */
  path: string
  readOnly?: boolean
}

export class LmdbStore implements Store {
  readonly path: string
  private readonly root: RootDatabase
  private readonly dbs: Map<BucketName, Database>
  private readonly reader: ReadTxn
  private readonly listeners: ((changes: Change[]) => void)[] = []

  constructor(opts: LmdbStoreOptions) {
    this.path = opts.path
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
    const db = (b: BucketName) => this.dbs.get(b)!
    this.reader = {
      get: (b, key) => db(b).get(key),
      keys: (b) => [...db(b).getKeys({})] as string[],
      values: (b) => [...db(b).getRange({})].map((e) => e.value),
      count: (b) => db(b).getCount({}),
    }
  }

  read<R>(fn: (tx: ReadTxn) => R): R {
    return fn(this.reader)
  }

  write<R>(fn: (tx: WriteTxn) => R): Promise<R> {
    const db = (b: BucketName) => this.dbs.get(b)!
    const changes: Change[] = []
    const tx: WriteTxn = {
      ...this.reader,
      put: <B extends BucketName>(b: B, key: string, value: Buckets[B]) => {
        db(b).putSync(key, value)
        changes.push({ bucket: b, key, value })
      },
      del: (b, key) => {
        db(b).removeSync(key)
        changes.push({ bucket: b, key, value: undefined })
      },
    }
    // transactionSync, not transaction: only the synchronous form aborts every
    // write of the callback when it throws (verified with lmdb 3.5).
    try {
      const result = this.root.transactionSync(() => fn(tx))
      for (const listener of this.listeners) listener(changes)
      return Promise.resolve(result)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  onCommit(listener: (changes: Change[]) => void): void {
    this.listeners.push(listener)
  }

  async backup(): Promise<Buffer> {
    const tmp = join(dirname(this.path), `.backup-${process.pid}-${Date.now()}.mdb`)
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
