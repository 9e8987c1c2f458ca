// glusterd runs one management transaction per volume at a time and refuses
// a second one meanwhile ("Another transaction is in progress for <vol>");
// `rebalance start` holds that lock ~10 s. Every gluster command of heqet
// that takes it goes through `exclusive`, so heqet's own commands on one
// volume wait for each other instead of failing: add-brick (expand), stop and
// delete (delete), rebalance start and status, replace-brick (brick evict),
// heal start and heal statistics (self-heal after a replacement), volume
// status and start force (state repair).
// Reads that do not take it (`volume info`, `heal info`) run freely.

export class VolumeCommandLock {
  /** per gluster volume name: the tail of the commands queued on it */
  private readonly tails = new Map<string, Promise<unknown>>()
  private readonly queued = new Map<string, number>()

  /** Runs `fn` once every command queued before it on `volume` has ended (failed or not). */
  async exclusive<T>(volume: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(volume) ?? Promise.resolve()
    this.queued.set(volume, (this.queued.get(volume) ?? 0) + 1)
    const run = before.then(fn, fn)
    const tail = run.then(
      () => undefined,
      () => undefined,
    )
    this.tails.set(volume, tail)
    try {
      return await run
    } finally {
      const left = (this.queued.get(volume) ?? 1) - 1
      if (left > 0) this.queued.set(volume, left)
      else this.queued.delete(volume)
      if (this.tails.get(volume) === tail) this.tails.delete(volume)
    }
  }

  /** Commands running or waiting on `volume` (for tests and diagnostics). */
  holders(volume: string): number {
    return this.queued.get(volume) ?? 0
  }
}
