// A Store kept in memory, with the same contract as LmdbStore (atomic
// writes, values copied in and out, commit listeners). Placement's tests and
// benchmark use it to drive TopologyIndex through real commits without disk
// syncs; it has nothing placement-specific and may move to db/.

import {
  BUCKETS,
  type BucketName,
  type Buckets,
  type Change,
  type ReadTxn,
  type Store,
  type WriteTxn,
} from '../../db/store.ts'

export class MemoryStore implements Store {
  private readonly buckets = new Map<BucketName, Map<string, unknown>>(BUCKETS.map((b) => [b, new Map()]))
  private readonly listeners: ((changes: Change[]) => void)[] = []

  private readonly reader: ReadTxn = {
    get: <B extends BucketName>(b: B, key: string) => copy(this.bucket(b).get(key)) as Buckets[B] | undefined,
    keys: (b) => [...this.bucket(b).keys()].sort(compareKeys),
    values: <B extends BucketName>(b: B) =>
      this.reader.keys(b).map((k) => copy(this.bucket(b).get(k)) as Buckets[B]),
    count: (b) => this.bucket(b).size,
  }

  read<R>(fn: (tx: ReadTxn) => R): R {
    return fn(this.reader)
  }

  write<R>(fn: (tx: WriteTxn) => R): Promise<R> {
    const changes: Change[] = []
    const undo: (() => void)[] = []
    const set = (b: BucketName, key: string, value: unknown) => {
      const map = this.bucket(b)
      const had = map.has(key)
      const before = map.get(key)
      undo.push(() => (had ? map.set(key, before) : map.delete(key)))
      if (value === undefined) map.delete(key)
      else map.set(key, copy(value))
      changes.push({ bucket: b, key, value: copy(value) })
    }
    const tx: WriteTxn = {
      ...this.reader,
      put: (b, key, value) => set(b, key, value),
      del: (b, key) => set(b, key, undefined),
    }
    try {
      const result = fn(tx)
      for (const listener of this.listeners) listener(changes)
      return Promise.resolve(result)
    } catch (err) {
      for (const step of undo.reverse()) step()
      return Promise.reject(err)
    }
  }

  onCommit(listener: (changes: Change[]) => void): void {
    this.listeners.push(listener)
  }

  async backup(): Promise<Buffer> {
    const all = Object.fromEntries(BUCKETS.map((b) => [b, Object.fromEntries(this.bucket(b))]))
    return Buffer.from(JSON.stringify(all))
  }

  async close(): Promise<void> {}

  private bucket(b: BucketName): Map<string, unknown> {
    return this.buckets.get(b)!
  }
}

// Keys compare as bytes in LMDB; for the ASCII ids used here that is code-unit order.
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function copy<T>(value: T): T {
  return value === undefined ? value : structuredClone(value)
}
