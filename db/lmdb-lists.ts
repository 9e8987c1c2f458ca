// Long id lists of LMDB entries stored one key per id. A cluster entry holds
// the sorted ids of all its nodes and volumes (heketi's layout); rewriting it
// whole on every volume create or node add re-encodes and re-writes ~700 KB
// at 10,000 nodes and 10,000 volumes. Here such a list is kept out of the
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
}

/** Marker in a stored value: the fields whose ids live in the `lists` database. */
const SPLIT_MARK = '\u0000lists'

type Lists = Map<string, readonly string[]>

export class ListStorage {
  /** the lists as stored (committed) for every entry that has split lists */
  private readonly stored = new Map<string, Lists>()

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
      const at = `${bucket}/${entryKey}`
      let lists = this.stored.get(at)
      if (!lists) {
        lists = new Map()
        this.stored.set(at, lists)
      }
      const ids = lists.get(field) as string[] | undefined
      if (ids) ids.push(id)
      else lists.set(field, [id])
    }
  }

  /** The entry as the domain sees it: the stored value with its split lists put back. */
  decode(bucket: BucketName, key: string, raw: unknown): unknown {
    if (!ListStorage.splits(bucket) || raw === null || typeof raw !== 'object') return raw
    const value = raw as Record<string, unknown>
    const fields = value[SPLIT_MARK] as string[] | undefined
    if (!fields) return raw
    const lists = this.stored.get(`${bucket}/${key}`)
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) if (k !== SPLIT_MARK) out[k] = v
    // the stored arrays themselves: entries are never mutated, and an unchanged
    // list written back is then recognised by identity
    for (const field of fields) out[field] = lists?.get(field) ?? []
    return out
  }

  /** Re-read one entry's lists from the file (after a failed commit). */
  reload(bucket: BucketName, key: string): void {
    const fields = SPLIT[bucket]
    if (!fields || !this.db) return
    const lists: Lists = new Map()
    for (const field of fields) {
      const prefix = this.prefix(bucket, key, field)
      const ids: string[] = []
      for (const k of this.db.getKeys({ start: prefix, end: `${prefix.slice(0, -1)}0` })) {
        ids.push(String(k).slice(prefix.length))
      }
      if (ids.length > 0) lists.set(field, ids)
    }
    if (lists.size > 0) this.stored.set(`${bucket}/${key}`, lists)
    else this.stored.delete(`${bucket}/${key}`)
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
    const at = `${bucket}/${key}`
    const before = this.stored.get(at)
    const after: Lists = new Map()
    const entry =
      value === undefined || value === null || typeof value !== 'object'
        ? undefined
        : (value as Record<string, unknown>)
    const kept: Record<string, unknown> = entry ? { ...entry } : {}
    const split: string[] = []
    for (const field of fields) {
      const prev = before?.get(field) ?? []
      const ids = entry?.[field]
      // the domain spreads unchanged lists into the new entry: same array, nothing to store
      const next = ids === prev ? prev : this.storeDiff(this.prefix(bucket, key, field), prev, ids)
      if (next === undefined) continue
      split.push(field)
      delete kept[field]
      if (next.length > 0) after.set(field, next)
    }
    if (after.size > 0) this.stored.set(at, after)
    else this.stored.delete(at)
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
    const next = Array.isArray(ids) ? (ids as unknown[]) : undefined
    const puts: string[] = []
    const removes: string[] = []
    let ok = next !== undefined
    let i = 0
    let j = 0
    while (ok && (i < prev.length || j < next!.length)) {
      const a = prev[i]
      const b = next![j]
      if (j < next!.length) {
        if (typeof b !== 'string' || b.includes('/') || (j > 0 && !((next![j - 1] as string) < b))) {
          ok = false
          break
        }
      }
      if (j >= next!.length || (a !== undefined && a < (b as string))) {
        removes.push(a!)
        i++
      } else if (a === undefined || (b as string) < a) {
        puts.push(b as string)
        j++
      } else {
        i++
        j++
      }
    }
    if (!ok) {
      for (const id of prev) db.removeSync(prefix + id)
      return undefined
    }
    for (const id of removes) db.removeSync(prefix + id)
    for (const id of puts) db.putSync(prefix + id, true)
    return next as string[]
  }
}
