import { randomFillSync } from 'node:crypto'

// Random bytes are drawn 4 KiB at a time (256 ids per draw, as
// crypto.randomUUID caches its entropy): one CSPRNG call per id cost ~25 µs
// of a create on a loaded machine.
const pool = Buffer.allocUnsafe(4096)
let used = pool.length

/** 16 random bytes as 32 lower-case hex characters, heketi's id format. */
export function newId(): string {
  if (used + 16 > pool.length) {
    randomFillSync(pool)
    used = 0
  }
  const id = pool.toString('hex', used, used + 16)
  used += 16
  return id
}

export const ID_PATTERN = /^[0-9a-fA-F]{32}$/

export function isId(value: string): boolean {
  return ID_PATTERN.test(value)
}
