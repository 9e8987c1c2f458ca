// heqet's REST API as any external heketi client speaks it: a fresh HS256
// JWT per request (iss = user, qsh = sha256 of METHOD&path, iat/exp), async
// operations through 202 → GET /queue/<id> (200 + X-Pending while pending)
// → 303 Location (or 204), 429 retried after Retry-After. Nothing here
// imports the server: the driver works the same against a remote heqet.
import { createHash, createHmac } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'

export interface HeqetClientOptions {
  /** base URL, e.g. http://heqet:8080 (a path prefix is kept, as heketi-cli does) */
  server: string
  user: string
  secret: string
  /** per HTTP exchange; default 60 s */
  requestTimeoutMs?: number
  /** queue polling backs off from min to max; default 50 → 400 ms (heketi's Go client: 400 ms) */
  pollMinMs?: number
  pollMaxMs?: number
  /** bound on one async operation; default 30 min */
  operationTimeoutMs?: number
  /** 429 answers retried this many times; default 8 */
  busyRetries?: number
}

export interface HttpReply {
  status: number
  body: string
  location?: string
  pending: boolean
  retryAfterSec?: number
}

/** heqet answered with an error status; `body` is heqet's plain-text message. */
export class HeqetHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly what: string,
    /** 'request': heqet refused the call itself; 'operation': the async operation failed */
    readonly phase: 'request' | 'operation' = 'request',
  ) {
    super(`${what}: ${status} ${body.trim()}`)
    this.name = 'HeqetHttpError'
  }

  get text(): string {
    return this.body.trim() || `status ${this.status}`
  }
}

/** heqet could not be reached at all (connection refused, timeout, DNS). */
export class HeqetUnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`heqet at ${url} unreachable: ${reason}`)
    this.name = 'HeqetUnreachableError'
  }
}

export class OperationCancelledError extends Error {
  constructor() {
    super('cancelled')
    this.name = 'OperationCancelledError'
  }
}

/** The JWT heketi's Go client sends (HS256; exp = iat + 300). */
export function heketiToken(
  user: string,
  secret: string,
  method: string,
  path: string,
  nowSec: number,
): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const qsh = createHash('sha256').update(`${method}&${path}`).digest('hex')
  const head = enc({ alg: 'HS256', typ: 'JWT' })
  const claims = enc({ iss: user, iat: nowSec, exp: nowSec + 300, qsh })
  const sig = createHmac('sha256', secret).update(`${head}.${claims}`).digest('base64url')
  return `${head}.${claims}.${sig}`
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new OperationCancelledError())
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(new OperationCancelledError())
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export class HeqetClient {
  readonly server: string
  private readonly base: URL
  private readonly agent: http.Agent
  private readonly opts: Required<Omit<HeqetClientOptions, 'server' | 'user' | 'secret'>>

  constructor(private readonly config: HeqetClientOptions) {
    this.server = config.server
    this.base = new URL(config.server)
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new Error(`--server must be an http(s) URL: ${config.server}`)
    }
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 32 })
        : new http.Agent({ keepAlive: true, maxSockets: 32 })
    this.opts = {
      requestTimeoutMs: config.requestTimeoutMs ?? 60_000,
      pollMinMs: config.pollMinMs ?? 50,
      pollMaxMs: config.pollMaxMs ?? 400,
      operationTimeoutMs: config.operationTimeoutMs ?? 30 * 60_000,
      busyRetries: config.busyRetries ?? 8,
    }
  }

  close(): void {
    this.agent.destroy()
  }

  /** heketi's Go client builds URLs by concatenation: the base path is kept. */
  private urlFor(path: string): URL {
    const prefix = this.base.pathname.replace(/\/+$/, '')
    const url = new URL(this.base.href)
    url.pathname = `${prefix}${path}`
    url.search = ''
    return url
  }

  /** One HTTP exchange, signed for exactly this method and path. */
  private exchange(method: string, url: URL, body?: unknown, signal?: AbortSignal): Promise<HttpReply> {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const token = heketiToken(
      this.config.user,
      this.config.secret,
      method,
      url.pathname,
      Math.floor(Date.now() / 1000),
    )
    const headers: Record<string, string> = { authorization: `bearer ${token}` }
    if (payload !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = String(Buffer.byteLength(payload))
    }
    const mod = url.protocol === 'https:' ? https : http
    return new Promise<HttpReply>((resolve, reject) => {
      if (signal?.aborted) return reject(new OperationCancelledError())
      const req = mod.request(
        url,
        { method, headers, agent: this.agent, timeout: this.opts.requestTimeoutMs, signal },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', (e) => reject(new HeqetUnreachableError(this.server, e.message)))
          res.on('end', () => {
            const retryAfter = Number(res.headers['retry-after'])
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              location: typeof res.headers.location === 'string' ? res.headers.location : undefined,
              pending: res.headers['x-pending'] === 'true',
              retryAfterSec: Number.isInteger(retryAfter) && retryAfter >= 0 ? retryAfter : undefined,
            })
          })
        },
      )
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.opts.requestTimeoutMs} ms`)))
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (signal?.aborted) reject(new OperationCancelledError())
        else reject(new HeqetUnreachableError(this.server, e.code ? `${e.code} ${e.message}` : e.message))
      })
      req.end(payload)
    })
  }

  /** An exchange with heketi's 429 handling: wait Retry-After (or 1 s) and retry, a bounded number of times. */
  private async call(method: string, url: URL, body?: unknown, signal?: AbortSignal): Promise<HttpReply> {
    for (let attempt = 0; ; attempt++) {
      const reply = await this.exchange(method, url, body, signal)
      if (reply.status !== 429 || attempt >= this.opts.busyRetries) return reply
      await sleep(Math.min(10, reply.retryAfterSec ?? 1) * 1000, signal)
    }
  }

  /** GET a JSON document; any status but 200 is a HeqetHttpError. */
  async getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
    const reply = await this.call('GET', this.urlFor(path), undefined, signal)
    if (reply.status !== 200) throw new HeqetHttpError(reply.status, reply.body, `GET ${path}`)
    return JSON.parse(reply.body) as T
  }

  /** GET without credentials (heketi's /hello is outside the JWT middleware). */
  async hello(signal?: AbortSignal): Promise<HttpReply> {
    return this.exchange('GET', this.urlFor('/hello'), undefined, signal)
  }

  /**
   * Start an async operation and follow it to the end. Resolves with the
   * path of the resulting resource (303) or undefined (204); throws a
   * HeqetHttpError with heqet's text when the request or the operation fails.
   */
  async runOperation(
    method: string,
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const what = `${method} ${path}`
    const first = await this.call(method, this.urlFor(path), body, signal)
    if (first.status !== 202) throw new HeqetHttpError(first.status, first.body, what)
    if (!first.location) throw new HeqetHttpError(first.status, 'no Location header on 202', what)
    let queue = new URL(first.location, this.urlFor(path))
    const deadline = Date.now() + this.opts.operationTimeoutMs
    let delay = this.opts.pollMinMs
    for (;;) {
      const poll = await this.call('GET', queue, undefined, signal)
      if (poll.status === 200 && poll.pending) {
        if (Date.now() > deadline) {
          throw new HeqetHttpError(
            0,
            `still pending after ${this.opts.operationTimeoutMs} ms`,
            what,
            'operation',
          )
        }
        await sleep(delay, signal)
        delay = Math.min(this.opts.pollMaxMs, delay * 2)
        continue
      }
      if (poll.status === 303 && poll.location) {
        queue = new URL(poll.location, queue)
        return queue.pathname
      }
      if (poll.status === 204) return undefined
      throw new HeqetHttpError(poll.status, poll.body, what, 'operation')
    }
  }
}
