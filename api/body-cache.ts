// Rendered JSON bodies of the hot reads (GET /volumes, GET /volumes/{id}),
// kept until the next commit. Those answers are functions of the store
// alone, so between two commits the same request gets the same bytes; the
// store tells its commit listeners in the same synchronous step that makes
// a change visible to reads (db/lmdb.ts, db/etcd.ts), and every commit,
// whatever it touched, empties the cache. Bounded in characters: the oldest
// bodies go first.

import type { Store } from '../db/store.ts'

export class BodyCache {
  private readonly bodies = new Map<string, string>()
  private chars = 0
  hits = 0
  misses = 0
  /** how many times a commit emptied the cache */
  clears = 0

  constructor(
    store: Store,
    readonly maxChars = 4 * 1024 * 1024,
  ) {
    store.onCommit(() => this.clear())
  }

  /** the cached body for `key`, or render(), cache and return it */
  get(key: string, render: () => string): string {
    const hit = this.bodies.get(key)
    if (hit !== undefined) {
      this.hits++
      return hit
    }
    this.misses++
    const body = render()
    if (body.length > this.maxChars) return body
    this.bodies.set(key, body)
    this.chars += body.length
    for (const [k, v] of this.bodies) {
      if (this.chars <= this.maxChars) break
      this.bodies.delete(k)
      this.chars -= v.length
    }
    return body
  }

  clear(): void {
    if (this.bodies.size === 0) return
    this.bodies.clear()
    this.chars = 0
    this.clears++
  }

  get size(): number {
    return this.bodies.size
  }
}
