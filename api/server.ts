// Builds the HTTP server: heketi's request pipeline (path cleaning, JWT,
// authorization, admin-state gate), the routes, and the error mapping.
import { type IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { Socket } from 'node:net'
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  type HTTPMethods,
  LogController,
} from 'fastify'
import { FencedWriteError } from '../db/etcd.ts'
import type { ReadTxn } from '../db/store.ts'
import type { AdminState } from '../src/config.ts'
import type { AppContext, Job } from '../src/context.ts'
import { Errors, HeqetError, ServerRefusals } from '../src/errors.ts'
import { accessLogger } from './access-log.ts'
import { authenticate, authorize, registerTokenVerifier, VerifiedTokenCache } from './auth.ts'
import { BodyCache } from './body-cache.ts'
import { HotReads } from './hot-reads.ts'
import { sendAccepted, sendError, sendJson } from './http.ts'
import { cleanPath, decodeRequestPath, escapePath, escapeQuery } from './paths.ts'
import { AsyncQueue, type JobRecords } from './queue.ts'
import { closeAfterFlush, refuseUnparsable, sendRefusal } from './refusals.ts'
import { NotLeaderError, type Replica } from './replica.ts'

export interface RouteSpec {
  method: HTTPMethods
  /** heketi's path, with {id} for a hex id, as in openapi.yaml */
  path: string
  /** async, or synchronous when it has answered by the time it returns (the hot reads) */
  handler: (
    req: FastifyRequest<{ Params: { id: string } }>,
    reply: FastifyReply,
  ) => Promise<unknown> | undefined
}

export interface Api {
  app: FastifyInstance
  ctx: AppContext
  queue: AsyncQueue
  routes: RouteSpec[]
  state: { admin: AdminState }
  /** rendered bodies of the hot reads, emptied by every commit */
  bodies: BodyCache
  /** GET /volumes and GET /volumes/{id} answered before fastify (api/hot-reads.ts) */
  hot: HotReads
  /** replicated on etcd: the election and forwarding (api/replica.ts) */
  replica?: Replica
  /** run a job through the queue; returns the queue id */
  enqueue(job: Job): Promise<string>
  /** run a job through the queue and answer 202 */
  accept(reply: FastifyReply, job: Job): Promise<FastifyReply>
  /** answer 202 for a job whose synchronous part may still throw */
  startJob(reply: FastifyReply, prepare: () => Job | Promise<Job>): Promise<FastifyReply>
}

export interface ApiOptions {
  replica?: Replica
  /** where replicated queue entries live (with `replica`) */
  jobRecords?: JobRecords
}

const PUBLIC = new Set(['GET /hello', 'HEAD /hello', 'GET /metrics', 'HEAD /metrics'])
const ID = '([A-Fa-f0-9]+)'

function toFastifyPath(path: string): string {
  return path.replaceAll('{id}', ':id(^[A-Fa-f0-9]+$)')
}

function pathRegex(path: string): RegExp {
  return new RegExp(`^${path.replaceAll('{id}', ID)}$`)
}

/** heketi reads bodies of any size; heqet stops here (413, docs/heketi-differences.md). */
export const BODY_LIMIT_BYTES = 1024 * 1024

/** The request target as Go's net/url reads it; path undefined when an escape is broken. */
interface Target {
  path: string | undefined
  /** the raw query string with its `?`, or '' */
  query: string
}

const targets = new WeakMap<object, Target>()

/** How many Host headers the client sent (node keeps only the first). */
function hostHeaders(raw: string[]): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 4 && name.toLowerCase() === 'host') n++
  }
  return n
}

// an absolute-form target (`GET http://host/volumes`) names its path after the authority
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/

// a plain path (no escape, query, dot segment or absolute form): its own target
const PLAIN_TARGET = /^(?:\/[A-Za-z0-9_-]+)+$/

function readTarget(url: string): Target {
  if (PLAIN_TARGET.test(url)) return { path: url, query: '' }
  const rel = url.replace(ABSOLUTE_FORM, '')
  const q = rel.indexOf('?')
  return {
    path: decodeRequestPath(q >= 0 ? rel.slice(0, q) : rel),
    query: q >= 0 ? rel.slice(q) : '',
  }
}

function targetOf(req: FastifyRequest): Target {
  return targets.get(req.raw) ?? readTarget(req.raw.url ?? '/')
}

// fastify's schema compilers (ajv and fast-json-stringify, about 1.5 MB of
// code) are loaded only when a route declares a schema. heqet's routes declare
// none (bodies are checked in api/validate.ts, answers written by goJson), so
// a server never loads them; a route that adds a schema gets fastify's usual
// compilers, built on first use.
type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'))
let validatorFactory: NonNullable<CompilersFactory['buildValidator']> | undefined
let serializerFactory: NonNullable<CompilersFactory['buildSerializer']> | undefined
const lazySchemaCompilers: CompilersFactory = {
  buildValidator: (...args) => {
    validatorFactory ??= fastifyRequire('@fastify/ajv-compiler')()
    return validatorFactory!(...args)
  },
  buildSerializer: (...args) => {
    serializerFactory ??= fastifyRequire('@fastify/fast-json-stringify-compiler')()
    return serializerFactory!(...args)
  },
}

export function createApi(ctx: AppContext, initialState: AdminState, opts: ApiOptions = {}): Api {
  const { replica } = opts
  // fastify's request ids (`req-<n>` in base 36), shared with the hot reads' answers
  let lastReqId = 0
  const nextReqId = () => {
    lastReqId = (lastReqId + 1) & 0x7fffffff
    return `req-${lastReqId.toString(36)}`
  }
  const app = Fastify({
    loggerInstance: ctx.log,
    genReqId: nextReqId,
    schemaController: { compilersFactory: lazySchemaCompilers },
    // no child logger per request (a pino child is made and serialized for
    // every request otherwise): the lines that name a request carry its reqId
    childLoggerFactory: (logger) => logger,
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: true,
    // Go's router sees the raw path; we clean and redirect ourselves
    routerOptions: {
      ignoreTrailingSlash: false,
      ignoreDuplicateSlashes: false,
      // heketi's ids match [A-Fa-f0-9]+ of any length (the header limit bounds them)
      maxParamLength: 64 * 1024,
    },
    // The router decodes the path itself and answers what it cannot decode
    // (`%ZZ`, `%FF`) with a JSON 400 before any hook runs. It is given the
    // path decoded as Go decodes it and escaped again, which always decodes;
    // a broken escape is refused by the first hook, as Go's server does.
    rewriteUrl: (req) => {
      const url = req.url ?? '/'
      // a plain target is its own path; targetOf() reads it again cheaply
      if (PLAIN_TARGET.test(url)) return url
      const target = readTarget(url)
      targets.set(req, target)
      if (target.path === undefined) return '/'
      // the router only takes absolute paths (`*` is not); the hook redirects such a target anyway
      const path = escapePath(target.path)
      return (path.startsWith('/') ? path : `/${path}`) + escapeQuery(target.query)
    },
    bodyLimit: BODY_LIMIT_BYTES,
    // requests node's HTTP parser refuses get Go's plain-text answer
    clientErrorHandler: refuseUnparsable,
    // node would answer a missing Host with an empty 400; the hook answers as Go
    http: { requireHostHeader: false },
  })
  // node hands CONNECT to a 'connect' listener, or else drops the
  // connection without a word; Go routes it like any other method
  app.server.on('connect', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', (err) => {
      ctx.log.debug({ err }, 'CONNECT connection failed')
      socket.destroy()
    })
    const res = new ServerResponse(req)
    res.shouldKeepAlive = false
    res.assignSocket(socket)
    res.once('finish', () => closeAfterFlush(socket))
    app.routing(req, res)
  })
  const queue = new AsyncQueue(
    ctx.log,
    replica && opts.jobRecords
      ? { records: opts.jobRecords, term: () => replica.election.term?.key ?? '' }
      : undefined,
  )
  // held polls (api/routes/core.ts) are answered as the server starts closing, not at their bound
  app.addHook('preClose', (done) => {
    queue.close()
    done()
  })
  const routes: RouteSpec[] = []
  const state = { admin: initialState }
  const keys = { admin: ctx.config.adminKey, user: ctx.config.userKey }
  const tokens = ctx.config.disableAuth ? undefined : registerTokenVerifier(app, keys)
  const tokenCache = new VerifiedTokenCache()
  /** heketi's JWT check and authorization of a request (nothing when auth is disabled) */
  const checkToken = (header: string | undefined, method: string, path: string) => {
    if (!tokens) return
    const iss = authenticate(header, method, path, {
      tokens,
      iatLeewaySec: ctx.config.jwtIatLeewaySec,
      expLeewaySec: 5,
      cache: tokenCache,
    })
    authorize(iss, path)
  }

  // heketi never looks at Content-Type: every body is read as text and
  // decoded by the route that wants it. fastify would refuse a malformed
  // type (`;;;`) with 415 before any parser runs, so the header is dropped
  // and every body reaches the catch-all parser.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body))
  // One synchronous hook (no promise, no microtask per request) runs
  // heketi's pipeline in order; answering from it ends the request there.
  app.addHook('onRequest', (req, reply, done) => {
    try {
      if (!admit(req, reply)) return
    } catch (err) {
      done(err as Error)
      return
    }
    done()
  })

  /** heketi's request pipeline; false when it has answered the request itself */
  const admit = (req: FastifyRequest, reply: FastifyReply): boolean => {
    // fastify insists on a Content-Type for QUERY (400): give it a harmless one
    if (req.method === 'QUERY') req.raw.headers['content-type'] = 'text/plain'
    else if (req.raw.headers['content-type'] !== undefined) delete req.raw.headers['content-type']
    // what Go's server checks before any handler
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) {
      sendRefusal(reply, ServerRefusals.missingHost)
      return false
    }
    // node keeps the first of several Host headers; Go refuses them
    if (hostHeaders(req.raw.rawHeaders) > 1) {
      sendRefusal(reply, ServerRefusals.tooManyHosts)
      return false
    }
    // a request body framed by a coding other than chunked has no knowable end
    // (node would wait for the client to close): refuse it, as RFC 9112 says
    const te = req.headers['transfer-encoding']
    if (te !== undefined && te.split(',').pop()?.trim().toLowerCase() !== 'chunked') {
      sendRefusal(reply, ServerRefusals.unsupportedTransferEncoding)
      return false
    }
    const { path, query } = targetOf(req)
    if (path === undefined) {
      sendRefusal(reply, ServerRefusals.badRequest)
      return false
    }
    const clean = cleanPath(path)
    // Go's mux redirects non-canonical paths before anything else; a mere
    // trailing slash is the API router's redirect, after authentication
    if (clean !== path && clean !== path.slice(0, -1)) {
      reply.redirect(escapePath(clean) + escapeQuery(query), 301)
      return false
    }
    if (PUBLIC.has(`${req.method} ${path}`)) return true
    checkToken(req.headers.authorization, req.method, path)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const peer = req.socket.remoteAddress ?? ''
      const local = peer === '127.0.0.1' || peer === '::1' || peer === '::ffff:127.0.0.1'
      if (state.admin === 'read-only' || (state.admin === 'local-client' && !local))
        throw Errors.maintenance()
    }
    if (clean !== path) {
      reply.redirect(escapePath(clean) + escapeQuery(query), 301)
      return false
    }
    return true
  }

  // a replica that does not lead hands writes to the leader (after the JWT
  // check above, which every replica makes on what it receives)
  if (replica) {
    app.addHook('preHandler', async (req, reply) => {
      if (replica.isLeader() || !replica.leaderOnly(req)) return
      const { path, query } = targetOf(req)
      return replica.forward(req, reply, escapePath(path ?? '/') + escapeQuery(query))
    })
  }

  // one access line per request, like heketi's negroni log; a queue poll
  // answered "still pending" only at debug: a client polling every few ms
  // would fill the log with them (the job's start and end are logged at info)
  const accessLog = accessLogger(ctx.log)
  app.addHook('onResponse', (req, reply, done) => {
    const pendingPoll = reply.statusCode === 200 && reply.hasHeader('x-pending')
    if (pendingPoll && !ctx.log.isLevelEnabled('debug')) {
      done()
      return
    }
    accessLog(
      req.id,
      req.method,
      req.url,
      reply.statusCode,
      Math.round(reply.elapsedTime),
      pendingPoll ? 'debug' : 'info',
    )
    done()
  })

  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  const hot = new HotReads({
    authenticate: tokens ? (header, path) => checkToken(header, 'GET', path) : undefined,
    nextReqId,
    accessLog,
    closing: () => closing,
  })
  hot.install(app.server)

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof HeqetError) return sendError(reply, err)
    // a write or node command of a replica that just lost the lead: nothing was done
    if (err instanceof FencedWriteError || err instanceof NotLeaderError) {
      req.log.warn({ err }, 'refused: not the leader')
      return sendError(reply, Errors.notLeader())
    }
    // fastify's own refusals of a request (body too large, body cut short)
    const status = (err as { statusCode?: number }).statusCode
    if (status === 413) return sendError(reply, Errors.bodyTooLarge())
    if (status !== undefined && status >= 400 && status < 500) {
      req.log.info({ reqId: req.id, err }, 'request refused')
      return sendError(reply.header('connection', 'close'), Errors.unparsable())
    }
    // etcd out of reach (a timeout, a closed channel) on a replica that lost the lead meanwhile:
    // the client's answer is "not the leader, retry", not the gRPC text
    if (replica?.leaderOnly(req) && !replica.isLeader()) {
      req.log.warn({ reqId: req.id, err }, 'failed after this replica lost the lead')
      return sendError(reply, Errors.notLeader())
    }
    req.log.error({ reqId: req.id, err }, 'request failed')
    return sendError(reply, Errors.internal((err as Error).message))
  })

  app.setNotFoundHandler((req, reply) => {
    const path = targetOf(req).path ?? ''
    // /hello and /metrics live on heketi's outer router: other methods fall through to 404
    const known = routes.some((r) => !PUBLIC.has(`GET ${r.path}`) && pathRegex(r.path).test(path))
    if (known) return reply.code(405).send()
    return sendError(reply, Errors.invalidPath())
  })

  const api: Api = {
    app: app as unknown as FastifyInstance,
    ctx,
    queue,
    routes,
    state,
    bodies: new BodyCache(ctx.store),
    hot,
    enqueue(job) {
      return runJob(async () => job)
    },
    async accept(reply, job) {
      return sendAccepted(reply, await api.enqueue(job))
    },
    async startJob(reply, prepare) {
      return sendAccepted(reply, await runJob(prepare))
    },
  }
  if (replica) api.replica = replica

  /**
   * Reserve the queue id (replicated: its record is stored before the 202),
   * prepare the job (a failure is the request's answer), then run it. Work
   * of a leader's term runs inside that term (api/replica.ts).
   */
  const runJob = (prepare: () => Job | Promise<Job>): Promise<string> => {
    const body = async () => {
      const id = await queue.reserve()
      let job: Job
      try {
        job = await prepare()
      } catch (err) {
        await queue.release(id).catch((e: Error) => {
          queue.recordFailures++
          ctx.log.warn(`queue ${id}: not released: ${e.message}`)
        })
        throw err
      }
      if (job.operationId) {
        // only matters if this leader dies: the next one then finds the job by its operation
        await queue.link(id, job.operationId).catch((e: Error) => {
          queue.recordFailures++
          ctx.log.error(`queue ${id}: operation ${job.operationId} not linked: ${e.message}`)
        })
      }
      queue.run(
        id,
        async () => {
          const result = await job()
          return result ? `/${result.kind}s/${result.id}` : undefined
        },
        job.operationId,
      )
      return id
    }
    return replica ? replica.run(body) : body()
  }
  return api
}

/** Register a route on the API and remember it (405 detection, openapi test). */
export function addRoute(api: Api, spec: RouteSpec): void {
  api.routes.push(spec)
  api.app.route({
    method: spec.method,
    url: toFastifyPath(spec.path),
    handler: spec.handler as never,
    exposeHeadRoute: spec.method === 'GET',
  })
}

/** GET of one entry (`/clusters/{id}`, `/nodes/{id}` …): `view` reads it in one snapshot and throws 404 when it is missing. */
export function addViewRoute(api: Api, path: string, view: (tx: ReadTxn, id: string) => unknown): void {
  addRoute(api, {
    method: 'GET',
    path,
    handler: async (req, reply) =>
      sendJson(
        reply,
        200,
        api.ctx.store.read((tx) => view(tx, req.params.id)),
      ),
  })
}
