// Builds the HTTP server: heketi's request pipeline (path cleaning, JWT,
// authorization, admin-state gate), the routes, and the error mapping.
import { posix } from 'node:path'
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type HTTPMethods,
  LogController,
} from 'fastify'
import type { AdminState } from '../src/config.ts'
import type { AppContext, Job } from '../src/context.ts'
import { Errors, HeqetError } from '../src/errors.ts'
import { authenticate, authorize, registerTokenVerifier } from './auth.ts'
import { sendAccepted, sendError } from './http.ts'
import { AsyncQueue } from './queue.ts'

export interface RouteSpec {
  method: HTTPMethods
  /** heketi's path, with {id} for a hex id, as in openapi.yaml */
  path: string
  handler: (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => Promise<unknown>
}

export interface Api {
  app: FastifyInstance
  ctx: AppContext
  queue: AsyncQueue
  routes: RouteSpec[]
  state: { admin: AdminState }
  /** run a job through the queue; returns the queue id */
  enqueue(job: Job): string
  /** run a job through the queue and answer 202 */
  accept(reply: FastifyReply, job: Job): FastifyReply
  /** answer 202 for a job whose synchronous part may still throw */
  startJob(reply: FastifyReply, prepare: () => Job | Promise<Job>): Promise<FastifyReply>
}

const PUBLIC = new Set(['GET /hello', 'HEAD /hello', 'GET /metrics', 'HEAD /metrics'])
const ID = '([A-Fa-f0-9]+)'

function toFastifyPath(path: string): string {
  return path.replaceAll('{id}', ':id(^[A-Fa-f0-9]+$)')
}

function pathRegex(path: string): RegExp {
  return new RegExp(`^${path.replaceAll('{id}', ID)}$`)
}

/** Go's path.Clean plus "no trailing slash": the target of heketi's 301. */
export function cleanPath(path: string): string {
  let p = posix.normalize(path)
  if (!p.startsWith('/')) p = `/${p}`
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1)
  return p
}

export function createApi(ctx: AppContext, initialState: AdminState): Api {
  const app = Fastify({
    loggerInstance: ctx.log,
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: true,
    // Go's router sees the raw path; we clean and redirect ourselves
    routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false },
  })
  const queue = new AsyncQueue(ctx.log)
  const routes: RouteSpec[] = []
  const state = { admin: initialState }
  const keys = { admin: ctx.config.adminKey, user: ctx.config.userKey }
  const tokens = ctx.config.disableAuth ? undefined : registerTokenVerifier(app, keys)

  // heketi never looks at Content-Type: every body is read as text and
  // decoded by the route that wants it
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body))

  app.addHook('onRequest', async (req, reply) => {
    const url = req.raw.url ?? '/'
    const q = url.indexOf('?')
    const rawPath = q >= 0 ? url.slice(0, q) : url
    let path: string
    try {
      path = decodeURIComponent(rawPath)
    } catch {
      path = rawPath
    }
    const clean = cleanPath(path)
    const query = q >= 0 ? url.slice(q) : ''
    // Go's mux redirects non-canonical paths before anything else; a mere
    // trailing slash is the API router's redirect, after authentication
    if (clean !== path && clean !== path.slice(0, -1)) return reply.redirect(clean + query, 301)
    if (PUBLIC.has(`${req.method} ${path}`)) return
    if (tokens) {
      const iss = authenticate(req.headers.authorization, req.method, path, {
        tokens,
        iatLeewaySec: ctx.config.jwtIatLeewaySec,
        expLeewaySec: 5,
      })
      authorize(iss, path)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const peer = req.socket.remoteAddress ?? ''
      const local = peer === '127.0.0.1' || peer === '::1' || peer === '::ffff:127.0.0.1'
      if (state.admin === 'read-only' || (state.admin === 'local-client' && !local))
        throw Errors.maintenance()
    }
    if (clean !== path) return reply.redirect(clean + query, 301)
  })

  // one access line per request, like heketi's negroni log
  app.addHook('onResponse', async (req, reply) => {
    req.log.info(
      { method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      `${reply.statusCode} ${req.method} ${req.url}`,
    )
  })

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof HeqetError) return sendError(reply, err)
    req.log.error({ err }, 'request failed')
    return sendError(reply, Errors.internal((err as Error).message))
  })

  app.setNotFoundHandler((req, reply) => {
    const path = (req.raw.url ?? '/').split('?')[0]!
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
    enqueue(job) {
      return queue.start(async () => {
        const result = await job()
        return result ? `/${result.kind}s/${result.id}` : undefined
      })
    },
    accept(reply, job) {
      return sendAccepted(reply, api.enqueue(job))
    },
    async startJob(reply, prepare) {
      const job = await prepare()
      return api.accept(reply, job)
    },
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
