// The HTTP client: heketi-style requests, one fresh token per request, async
// operations followed through /queue the way heketi's Python client does.
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { signToken } from '../../api/auth.ts'

/** where the server listens and the admin key it signs tokens with */
export interface Target {
  port: number
  adminKey: string
}

export interface Res {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

export class HeketiClient {
  private readonly agent: http.Agent
  requests = 0
  polls = 0
  busy = 0

  constructor(
    private readonly server: Target,
    private readonly pollMs: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
  }

  request(method: string, path: string, body?: unknown): Promise<Res> {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const headers: http.OutgoingHttpHeaders = {
      authorization: `bearer ${signToken('admin', this.server.adminKey, method, path)}`,
    }
    if (payload !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = Buffer.byteLength(payload)
    }
    this.requests++
    return new Promise((res, rej) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.server.port, method, path, headers, agent: this.agent },
        (r) => {
          const chunks: Buffer[] = []
          r.on('data', (c: Buffer) => chunks.push(c))
          r.on('end', () =>
            res({
              status: r.statusCode ?? 0,
              headers: r.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          )
          r.on('error', rej)
        },
      )
      req.on('error', rej)
      req.end(payload)
    })
  }

  /** GET expecting 200 JSON */
  async get<T>(path: string): Promise<T> {
    const r = await this.request('GET', path)
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.trim()}`)
    return JSON.parse(r.body) as T
  }

  /**
   * Start an async operation and poll its queue entry until it is final
   * (the Python client's way: no redirect following). 429 is retried after
   * a short sleep and counted.
   */
  async run(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; location: string; body: string }> {
    let first: Res
    for (;;) {
      first = await this.request(method, path, body)
      if (first.status !== 429) break
      this.busy++
      await sleep(this.pollMs || 1)
    }
    if (first.status !== 202) return { status: first.status, location: '', body: first.body }
    const queue = String(first.headers.location ?? '')
    if (!queue.startsWith('/queue/'))
      throw new Error(`${method} ${path}: 202 without /queue Location (${queue})`)
    for (;;) {
      if (this.pollMs > 0) await sleep(this.pollMs)
      else await new Promise<void>((r) => setImmediate(r))
      this.polls++
      const poll = await this.request('GET', queue)
      if (poll.headers['x-pending'] === 'true') continue
      return { status: poll.status, location: String(poll.headers.location ?? ''), body: poll.body }
    }
  }

  close(): void {
    this.agent.destroy()
  }
}
