// heketi's per-host 1-slot semaphore (the ssh, kube and recording runners):
// the batches sent to one host run one after another, each once the one
// before it has settled, failed or not.

export class HostQueue {
  /** per host: the settled tail of what was queued on it */
  private readonly tails = new Map<string, Promise<void>>()

  /** `onIdle(host)` runs when the last batch queued on the host has settled. */
  constructor(private readonly onIdle?: (host: string) => void) {}

  /** Runs `fn` after everything queued on `host` before it; its result (or failure) is the caller's. */
  run<T>(host: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(host) ?? Promise.resolve()
    const run = previous.then(fn)
    // the queue only waits for `run` to settle: its failure goes to the caller, through `run`
    const tail = run.then(
      () => undefined,
      () => undefined,
    )
    this.tails.set(host, tail)
    void tail.then(() => {
      if (this.tails.get(host) !== tail) return
      this.tails.delete(host)
      this.onIdle?.(host)
    })
    return run
  }

  /** Something is running or queued on `host`. */
  busy(host: string): boolean {
    return this.tails.has(host)
  }
}
