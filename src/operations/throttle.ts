// heketi's in-flight operation cap: normal slots up to the limit, plus one
// background slot for the cleaner, which is itself refused when the normal
// slots are all taken.
import { Errors } from '../errors.ts'

export class Throttle {
  private normal = 0
  private background = 0

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.normal + this.background
  }

  /** Take a normal slot or throw heketi's 429; call the returned function once to release. */
  acquire(): () => void {
    if (this.normal >= this.limit) throw Errors.busy()
    this.normal++
    return once(() => this.normal--)
  }

  /** Take the background slot, or undefined when it is busy or normal slots are full. */
  tryAcquireBackground(): (() => void) | undefined {
    if (this.background > 0 || this.normal >= this.limit) return undefined
    this.background++
    return once(() => this.background--)
  }
}

function once(fn: () => void): () => void {
  let done = false
  return () => {
    if (!done) {
      done = true
      fn()
    }
  }
}
