// Long id lists of LMDB entries stored one key per id. A cluster entry holds
// the sorted ids of all its nodes and volumes (heketi's layout); rewriting it
// whole on every volume create or node add re-encodes and re-writes ~700 KB
// at 10,000 nodes and 10,000 volumes. A device entry holds the ids of its
// bricks: every volume create and delete rewrites three devices, and their
// lists were most of what a create encoded (37 ids each at 300 volumes on 24
// devices, 112 at 900). Here such a list is kept out of the
// entry's stored value, each id being a key `<bucket>/<entry key>/<field>/<id>`
// of the `lists` database, and a write stores only the ids added or removed.
// Only strictly ascending lists are split (the domain keeps them sorted; any
// other list stays inline, exactly as given). The in-memory entry always has
// its full lists: this is a storage detail of db/lmdb.ts alone.
import type { Database } from 'lmdb'
import type { BucketName } from './store.ts'

/** Which fields of which buckets are stored as keys. */
const SPLIT: Partial<Record<BucketName, readonly string[]>> = {
  cluster: ['nodes', 'volumes', 'blockVolumes'],
  device: ['bricks'],
}

/** Marker in a stored value: the fields whose ids live in the `lists` database. */
export const SPLIT_MARK = '\u0000lists'

export class ListStorage {
  /**
   * The lists as stored (committed), by their key prefix
   * `<bucket>/<entry key>/<field>/`; an empty or inline list has none. One
   * flat map: a Map per entry would cost ~150 bytes for each of the up to
   * 100,000 devices that hold bricks.
   */
  private readonly stored = new Map<string, readonly string[]>()

  /** `db` is undefined when a read-only open finds a file written before the lists database */
  constructor(private readonly db: Database | undefined) {}

  static splits(bucket: BucketName): boolean {
    return SPLIT[bucket] !== undefined
  }

  private prefix(bucket: BucketName, key: string, field: string): string {
    return `${bucket}/${key}/${field}/`
  }

  /** Read every split list once (at open). */
  loadAll(): void {
    this.stored.clear()
    if (!this.db) return
    for (const { key } of this.db.getRange({})) {
      const [bucket, entryKey, field, id] = String(key).split('/')
      if (bucket === undefined || entryKey === undefined || field === undefined || id === undefined) continue
      const at = `${bucket}/${entryKey}/${field}/`
      const ids = this.stored.get(at) as string[] | undefined
      if (ids) ids.push(id)
      else this.stored.set(at, [id])
    }
  }

  /** The entry as the domain sees it: the stored value with its split lists put back. */
  decode(bucket: BucketName, key: string, raw: unknown): unknown {
    if (!ListStorage.splits(bucket) || raw === null || typeof raw !== 'object') return raw
    const value = raw as Record<string, unknown>
    const fields = value[SPLIT_MARK] as string[] | undefined
    if (!fields) return raw
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) if (k !== SPLIT_MARK) out[k] = v
    // the stored arrays themselves: entries are never mutated, and an unchanged
    // list written back is then recognised by identity
    for (const field of fields) out[field] = this.stored.get(this.prefix(bucket, key, field)) ?? []
    return out
  }

  /** Re-read one entry's lists from the file (after a failed commit). */
  reload(bucket: BucketName, key: string): void {
    const fields = SPLIT[bucket]
    if (!fields || !this.db) return
    for (const field of fields) {
      const prefix = this.prefix(bucket, key, field)
      const ids: string[] = []
      for (const k of this.db.getKeys({ start: prefix, end: `${prefix.slice(0, -1)}0` })) {
        ids.push(String(k).slice(prefix.length))
      }
      if (ids.length > 0) this.stored.set(prefix, ids)
      else this.stored.delete(prefix)
    }
  }

  /**
   * Inside the write transaction: store the ids added to or removed from
   * each split list, and return the value to store in the bucket itself
   * (undefined for a delete, whose ids are all removed).
   */
  write(bucket: BucketName, key: string, value: unknown): unknown {
    const fields = SPLIT[bucket]
    if (!fields) return value
    if (!this.db) throw new Error('read-only store: no lists database to write to')
    const entry =
      value === undefined || value === null || typeof value !== 'object'
        ? undefined
        : (value as Record<string, unknown>)
    const kept: Record<string, unknown> = entry ? { ...entry } : {}
    const split: string[] = []
    for (const field of fields) {
      const prefix = this.prefix(bucket, key, field)
      const prev = this.stored.get(prefix) ?? []
      const ids = entry?.[field]
      // the domain spreads unchanged lists into the new entry: same array, nothing to store
      const next = ids === prev ? prev : this.storeDiff(prefix, prev, ids)
      if (next !== undefined && next.length > 0) this.stored.set(prefix, next)
      else this.stored.delete(prefix)
      if (next === undefined) continue
      split.push(field)
      delete kept[field]
    }
    if (!entry || split.length === 0) return value
    kept[SPLIT_MARK] = split
    return kept
  }

  /**
   * Store what changed from the stored `prev` (ascending) to `ids`: the ids
   * only in `ids` are put, those only in `prev` removed. Returns `ids`, or
   * undefined when `ids` is not a strictly ascending list of plain ids (it
   * then stays inline in the value, and every id of `prev` is removed).
   */
  private storeDiff(prefix: string, prev: readonly string[], ids: unknown): readonly string[] | undefined {
    const db = this.db!
    if (!Array.isArray(ids)) {
      for (const id of prev) db.removeSync(prefix + id)
      return undefined
    }
    const next = ids as unknown[]
    // the common head and tail are the same strings (insertSorted copies them):
    // compared by identity, they need neither a diff nor a check
    let start = 0
    const shorter = Math.min(prev.length, next.length)
    while (start < shorter && prev[start] === next[start]) start++
    let endPrev = prev.length
    let endNext = next.length
    while (endPrev > start && endNext > start && prev[endPrev - 1] === next[endNext - 1]) {
      endPrev--
      endNext--
    }
    // the changed middle must keep the list strictly ascending, its edges included
    for (let j = start; j < endNext; j++) {
      const id = next[j]
      if (typeof id !== 'string' || id.includes('/')) return this.inline(prefix, prev)
    }
    for (let j = Math.max(1, start); j <= Math.min(endNext, next.length - 1); j++) {
      if (!((next[j - 1] as string) < (next[j] as string))) return this.inline(prefix, prev)
    }
    let i = start
    let j = start
    while (i < endPrev || j < endNext) {
      const a = i < endPrev ? prev[i] : undefined
      const b = j < endNext ? (next[j] as string) : undefined
      if (b === undefined || (a !== undefined && a < b)) {
        db.removeSync(prefix + a)
        i++
      } else if (a === undefined || b < a) {
        db.putSync(prefix + b, true)
        j++
      } else {
        i++
        j++
      }
    }
    return next as string[]
  }

  /** The list goes inline: every stored id of it is removed. */
  private inline(prefix: string, prev: readonly string[]): undefined {
    for (const id of prev) this.db!.removeSync(prefix + id)
    return undefined
  }
}
