// A stand-in for tap's Test that records failed assertions instead of
// reporting them, so a test can run the executor contract against a
// deliberately broken executor and check that the contract notices.
// Implements only what test/contract/executor.case.ts uses.
import { isDeepStrictEqual } from 'node:util'
import type { Test } from 'tap'

export class RecordingTest {
  readonly failures: string[] = []
  readonly children = new Map<string, RecordingTest>()
  private queue: Promise<void> = Promise.resolve()

  /** subtests run one after another, as tap runs them */
  test(name: string, fn: (t: Test) => Promise<void>): Promise<void> {
    const child = new RecordingTest()
    this.children.set(name, child)
    this.queue = this.queue.then(async () => {
      try {
        await fn(child.asTest())
        await child.settled()
      } catch (err) {
        child.failures.push(`threw: ${(err as Error).message}`)
      }
    })
    return this.queue
  }

  async settled(): Promise<void> {
    await this.queue
  }

  /** names of the subtests with at least one failure, with their first failure */
  failedCases(): Record<string, string> {
    const out: Record<string, string> = {}
    for (const [name, child] of this.children) if (child.failures.length) out[name] = child.failures[0]!
    return out
  }

  asTest(): Test {
    return this as unknown as Test
  }

  private check(ok: boolean, message: string | undefined, fallback: string): boolean {
    if (!ok) this.failures.push(message ?? fallback)
    return ok
  }

  ok(value: unknown, message?: string) {
    return this.check(Boolean(value), message, 'expected truthy')
  }
  notOk(value: unknown, message?: string) {
    return this.check(!value, message, 'expected falsy')
  }
  equal(found: unknown, wanted: unknown, message?: string) {
    return this.check(found === wanted, message, `${String(found)} !== ${String(wanted)}`)
  }
  same(found: unknown, wanted: unknown, message?: string) {
    return this.check(isDeepStrictEqual(found, wanted), message, 'not the same')
  }
  type(value: unknown, type: string, message?: string) {
    return this.check(typeof value === type, message, `not a ${type}`)
  }
  async resolves(promise: Promise<unknown>, message?: string) {
    try {
      await promise
      return true
    } catch (err) {
      return this.check(false, `${message ?? 'resolves'}: ${(err as Error).message}`, '')
    }
  }
  pass() {
    return true
  }
  fail(message?: string) {
    return this.check(false, message, 'fail')
  }
  comment() {}
  teardown() {
    throw new Error('RecordingTest: teardown is not supported')
  }
}
