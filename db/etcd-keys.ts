// etcd key ranges, shared by the store (db/etcd.ts) and its election (db/etcd-election.ts).

/** The end of the key range holding every key that starts with `start`. */
export function prefixEnd(start: Buffer): Buffer {
  const end = Buffer.from(start)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}
