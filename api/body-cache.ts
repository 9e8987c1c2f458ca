// Rendered JSON bodies of the hot reads (GET /volumes, GET /volumes/{id}, GET /clusters/{id}),
// kept until the next commit. Those answers are functions of the store
// alone, so between two commits the same request gets the same bytes; the
// store tells its commit listeners in the same synchronous step that makes
// a change visible to reads (db/lmdb.ts, db/etcd.ts), and every commit,
// whatever it touched, empties the cache. Bodies are kept as UTF-8 bytes,
// so a hit is written to the socket without encoding the string again.
// Bounded in bytes: the oldest bodies go first.

import type { Store } from '../db/store.ts'

export class BodyCache {
  private readonly bodies = new Map<string, Buffer>()
  private bytes = 0
  hits = 0
  misses = 0
  /** how many times a commit emptied the cache */
  clears = 0

  constructor(
    store: Store,
    readonly maxBytes = 4 * 1024 * 1024,
  ) {
    store.onCommit(() => this.clear())
  }

  /** the cached body for `key` (a path such as `/volumes`, or a volume's bare id), or render(), cache and return it */
  get(key: string, render: () => string): Buffer {
    const hit = this.bodies.get(key)
    if (hit !== undefined) {
      this.hits++
      return hit
    }
    this.misses++
    const body = Buffer.from(render(), 'utf8')
    if (body.length > this.maxBytes) return body
    this.bodies.set(key, body)
    this.bytes += body.length
    for (const [k, v] of this.bodies) {
      if (this.bytes <= this.maxBytes) break
      this.bodies.delete(k)
      this.bytes -= v.length
    }
    return body
  }

  clear(): void {
    if (this.bodies.size === 0) return
    this.bodies.clear()
    this.bytes = 0
    this.clears++
  }

  get size(): number {
    return this.bodies.size
  }
}
