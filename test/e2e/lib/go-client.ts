// heketi's Go client (client/api/go-client) as the HA chaos run's client,
// per /work/shared/spec/heketi-clients.md §2.3–2.6:
//   - the first request of a call is retried ONLY on 429, up to RetryCount+1
//     attempts, sleeping Retry-After + rand(0..RetryMinDelay) or
//     rand(RetryMinDelay..RetryMaxDelay); the same token is reused;
//   - a transport error (refused, reset) ends the call at once, no retry;
//   - 202 → poll Location every PollDelay with a fresh token (no 429 retry);
//     200 + X-Pending → again; 303 → follow with GET (fresh token); anything
//     else is the answer;
//   - the call succeeds only with the one status its method expects.
// Delays are scaled down for a bounded test (heketi's 10–30 s become
// `minDelayMs`–`maxDelayMs`); the logic is the client's.
//
// Every HTTP exchange goes to `pickEndpoint()`: like a Kubernetes Service in
// front of the replicas, consecutive requests of one call may reach
// different replicas.
import { signToken } from '../../../api/auth.ts'

export type CallResult =
  | { outcome: 'ok'; status: number; body: string; location?: string }
  /** the server answered, with a failure */
  | { outcome: 'failed'; status: number; body: string; queue?: string }
  /** a transport error cut the call off: the client cannot know what happened */
  | { outcome: 'cut'; error: string; queue?: string }

export interface GoClientOptions {
  adminKey: string
  /** the base URL of the next exchange (a random live replica) */
  pickEndpoint: () => string
  random: () => number
  retryCount?: number
  minDelayMs?: number
  maxDelayMs?: number
  pollDelayMs?: number
  /** a call that polls longer than this fails (bounded test) */
  pollLimitMs?: number
  /** told at every 202 (an operation accepted) */
  onAccepted?: () => void
  /** told at every 429 that is retried */
  on429?: () => void
}

class Cut extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class GoClient {
  constructor(private readonly opts: GoClientOptions) {}

  private async exchange(method: string, path: string, body?: string, token?: string) {
    const base = this.opts.pickEndpoint()
    let res: Response
    try {
      res = await fetch(`${base}${path}`, {
        method,
        redirect: 'manual',
        headers: {
          authorization: `bearer ${token ?? signToken('admin', this.opts.adminKey, method, path)}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body,
        signal: AbortSignal.timeout(60_000),
      })
    } catch (err) {
      throw new Cut(`${method} ${base}${path}: ${(err as Error).cause ?? (err as Error).message}`)
    }
    let text: string
    try {
      text = await res.text()
    } catch (err) {
      throw new Cut(`${method} ${base}${path}: body: ${(err as Error).message}`)
    }
    return { status: res.status, body: text, headers: res.headers }
  }

  /** retryOperationDo: only 429 is retried; the token is not regenerated */
  private async first(method: string, path: string, body?: string) {
    const { retryCount = 6, minDelayMs = 200, maxDelayMs = 600, random } = this.opts
    const token = signToken('admin', this.opts.adminKey, method, path)
    let res = await this.exchange(method, path, body, token)
    for (let attempt = 0; attempt < retryCount && res.status === 429; attempt++) {
      this.opts.on429?.()
      const after = Number(res.headers.get('retry-after'))
      const wait = Number.isInteger(after)
        ? after * 1000 + Math.floor(random() * minDelayMs)
        : minDelayMs + Math.floor(random() * (maxDelayMs - minDelayMs))
      await sleep(Math.min(wait, 5_000))
      res = await this.exchange(method, path, body, token)
    }
    return res
  }

  /** One API call; `expect` is the status its Go method accepts (after following a 303). */
  async call(method: string, path: string, body: unknown, expect: number): Promise<CallResult> {
    const { pollDelayMs = 400, pollLimitMs = 240_000 } = this.opts
    let queue: string | undefined
    try {
      let res = await this.first(method, path, body === undefined ? undefined : JSON.stringify(body))
      if (res.status === 202) {
        this.opts.onAccepted?.()
        queue = res.headers.get('location') ?? undefined
        if (!queue) return { outcome: 'failed', status: 202, body: 'no Location on 202' }
        const deadline = Date.now() + pollLimitMs
        for (;;) {
          res = await this.exchange('GET', queue)
          if (res.headers.get('x-pending') === 'true') {
            if (res.status !== 200) return { outcome: 'failed', status: res.status, body: res.body, queue }
            if (Date.now() > deadline) return { outcome: 'failed', status: 0, body: 'poll limit', queue }
            await sleep(pollDelayMs)
            continue
          }
          break
        }
      }
      let location: string | undefined
      if (res.status === 303) {
        location = res.headers.get('location') ?? undefined
        if (!location) return { outcome: 'failed', status: 303, body: 'no Location on 303', queue }
        res = await this.exchange('GET', location)
      }
      if (res.status === expect) return { outcome: 'ok', status: res.status, body: res.body, location }
      return { outcome: 'failed', status: res.status, body: res.body, queue }
    } catch (err) {
      if (err instanceof Cut) return { outcome: 'cut', error: err.message, queue }
      throw err
    }
  }
}
