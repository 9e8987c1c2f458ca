// The two hot reads, GET /volumes and GET /volumes/{id}, answered before
// fastify when the answer is a plain 200. A polling client (heketi-cli, the
// Kubernetes provisioners) sends these far more than anything else, and for
// them fastify's per-request work (routing, its Request and Reply objects,
// the hook runners, the reply pipeline) cost more CPU than the answer itself:
// the body is already rendered in BodyCache and the token already verified
// in VerifiedTokenCache.
//
// Only the ordinary case is answered here: a GET of exactly `/volumes` or
// `/volumes/<hex>`, one Host header, no body, a token that passes heketi's
// checks (api/auth.ts, the same function as the pipeline's), and a body the
// route renders without error. Anything else (HEAD, a query, a path to
// clean, a refusal, a missing volume, a server closing) goes to fastify
// untouched, which answers it as always, so every error keeps one source.
// The answer is written as fastify writes it: the same status line and
// headers in the same order (node adds Date, Connection and Keep-Alive for
// both), the same body bytes; test/hot-reads.test.ts compares the two byte
// for byte. The access line is the one the onResponse hook writes.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AccessLog } from './access-log.ts'

/** the body of the route's 200 answer; throws what the route's handler would throw */
export type HotBody = (id: string) => Buffer

export interface HotReadsOptions {
  /** heketi's authentication and authorization of a GET of `path`; throws when refused (undefined: auth disabled) */
  authenticate?: (authorization: string | undefined, path: string) => void
  /** the request id fastify's genReqId would have given */
  nextReqId: () => string
  /** the access line of a request (the onResponse hook writes the same) */
  accessLog: AccessLog
  /** true once the server is closing: fastify then answers 503 itself */
  closing: () => boolean
}

const JSON_TYPE = 'application/json; charset=UTF-8'
const VOLUME = /^\/volumes\/[A-Fa-f0-9]+$/
const VOLUME_PREFIX = '/volumes/'.length

export class HotReads {
  /** off: every request goes through fastify (the reference the tests compare with) */
  enabled = true
  /** requests answered here */
  answered = 0
  private list: HotBody | undefined
  private info: HotBody | undefined

  constructor(private readonly opts: HotReadsOptions) {}

  /** the bodies of GET /volumes and GET /volumes/{id} (api/routes/volumes.ts) */
  setBodies(list: HotBody, info: HotBody): void {
    this.list = list
    this.info = info
  }

  /** Put the fast path in front of the server's request listener (fastify's). */
  install(server: Server): void {
    const listeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[]
    if (listeners.length !== 1)
      throw new Error(`hot reads: expected one request listener, found ${listeners.length}`)
    const fastify = listeners[0]!
    server.removeListener('request', fastify)
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!this.answer(req, res)) fastify(req, res)
    })
  }

  /** Answer the request if it is a hot read with a plain 200; false leaves it to fastify. */
  answer(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.enabled || req.method !== 'GET' || this.opts.closing()) return false
    const url = req.url ?? ''
    let render: HotBody | undefined
    let id = ''
    if (url === '/volumes') render = this.list
    else if (VOLUME.test(url)) {
      render = this.info
      id = url.slice(VOLUME_PREFIX)
    }
    if (render === undefined) return false
    // what fastify's pipeline would look at, from the raw headers (node builds
    // its header object lazily): exactly one Host, no body, the first
    // Authorization (node keeps the first of several too)
    const raw = req.rawHeaders
    let hosts = 0
    let authorization: string | undefined
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!
      switch (name.length) {
        // the usual spellings compared first: no lower-cased copy made for them
        case 4:
          if (name === 'Host' || name.toLowerCase() === 'host') hosts++
          break
        case 13:
          if (
            authorization === undefined &&
            (name === 'Authorization' || name.toLowerCase() === 'authorization')
          )
            authorization = raw[i + 1]
          break
        case 14:
          if (name.toLowerCase() === 'content-length') return false
          break
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') return false
          break
      }
    }
    if (hosts !== 1) return false
    const start = performance.now()
    let body: Buffer
    try {
      this.opts.authenticate?.(authorization, url)
      body = render(id)
    } catch {
      // not lost: fastify's pipeline makes the same checks again and answers
      // (and logs) the refusal or the error itself
      return false
    }
    const reqId = this.opts.nextReqId()
    res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': String(body.length) })
    res.end(body)
    this.answered++
    this.opts.accessLog(reqId, 'GET', url, 200, Math.round(performance.now() - start))
    return true
  }
}
