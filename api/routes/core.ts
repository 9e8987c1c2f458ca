// /hello, /queue/{id}, /admin, /internal/logging

import type { FastifyReply } from 'fastify'
import { ADMIN_STATES, type AdminState, LOG_LEVELS, type LogLevel } from '../../src/config.ts'
import { Errors } from '../../src/errors.ts'
import { decodeBodyDetailed, sendError, sendJson, Validation } from '../http.ts'
import type { Hold, JobOutcome } from '../queue.ts'
import { type Api, addRoute } from '../server.ts'

const PINO_LEVEL: Record<LogLevel, string> = {
  none: 'silent',
  critical: 'fatal',
  error: 'error',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
}

export function registerCoreRoutes(api: Api): void {
  let logLevel: LogLevel = api.ctx.config.logLevel

  addRoute(api, {
    method: 'GET',
    path: '/hello',
    handler: async (_req, reply) =>
      reply.code(200).header('content-type', 'text/plain; charset=UTF-8').send('Hello from Heketi'),
  })

  const holdMs = api.ctx.config.queuePollHoldMs
  addRoute(api, {
    method: 'GET',
    path: '/queue/{id}',
    // synchronous on one server when answered at once (no promise: clients poll this every few ms)
    handler: (req, reply) => {
      const id = req.params.id
      // a job still running here: answer when it finishes (or the bound passes), not "pending" now
      const hold = api.queue.hold(id, holdMs)
      if (hold) return answerWhenHeld(api, id, hold, reply)
      return answerPoll(api, id, reply)
    },
  })

  addRoute(api, {
    method: 'GET',
    path: '/admin',
    handler: async (_req, reply) => sendJson(reply, 200, { state: api.state.admin }),
  })

  addRoute(api, {
    method: 'POST',
    path: '/admin',
    handler: async (req, reply) => {
      const body = decodeBodyDetailed(req, { state: 'string' })
      const v = new Validation()
      if (body.state === '') v.add('state', 'cannot be blank')
      else if (!(ADMIN_STATES as readonly string[]).includes(body.state))
        v.add('state', 'must be a valid value')
      v.throwIfAny()
      api.state.admin = body.state as AdminState
      api.ctx.log.info(`admin state set to ${body.state}`)
      return reply.code(204).send()
    },
  })

  addRoute(api, {
    method: 'GET',
    path: '/internal/logging',
    handler: async (_req, reply) => sendJson(reply, 200, { loglevel: { glusterfs: logLevel } }),
  })

  addRoute(api, {
    method: 'POST',
    path: '/internal/logging',
    handler: async (req, reply) => {
      const body = decodeBodyDetailed(req, { loglevel: { map: 'string' } })
      if (!('glusterfs' in body.loglevel)) throw Errors.onlyGlusterfsLogger()
      const level = body.loglevel['glusterfs']!
      if (level !== '') {
        if (!(LOG_LEVELS as readonly string[]).includes(level)) throw Errors.invalidLogLevel(level)
        logLevel = level as LogLevel
        api.ctx.log.level = PINO_LEVEL[logLevel]
      }
      return sendJson(reply, 200, { loglevel: { glusterfs: logLevel } })
    },
  })
}

/** Read the job (a finished one is forgotten by this read) and answer. */
function answerPoll(api: Api, id: string, reply: FastifyReply): Promise<unknown> | undefined {
  const outcome = api.queue.read(id)
  if (outcome instanceof Promise)
    return outcome.then(
      (o) => answerQueue(reply, o),
      (err: unknown) => {
        // replicated entries live in etcd: out of reach, the job's state is unknown here (not failed)
        reply.log.warn({ err }, `queue entry ${id}: unreadable`)
        return sendError(reply, Errors.queueUnreadable((err as Error).message))
      },
    )
  answerQueue(reply, outcome)
  return undefined
}

/**
 * Answer a held poll when its hold ends, with what a poll arriving at that
 * moment would get. A client that left is not answered, and its poll reads
 * nothing: the result stays for its next poll.
 */
async function answerWhenHeld(api: Api, id: string, hold: Hold, reply: FastifyReply): Promise<undefined> {
  const res = reply.raw
  const onClose = () => {
    if (!res.writableEnded) hold.drop()
  }
  res.once('close', onClose)
  const why = await hold.ended
  res.off('close', onClose)
  // resolving to undefined: fastify sends nothing more (answered here, or nobody to answer)
  if (why === 'dropped') return undefined
  // the server is closing: this connection is not kept for another request
  if (why === 'closed') reply.header('connection', 'close')
  await answerPoll(api, id, reply)
  return undefined
}

function answerQueue(reply: FastifyReply, outcome: JobOutcome | undefined): FastifyReply {
  if (!outcome) return sendError(reply, Errors.notFound())
  switch (outcome.state) {
    case 'pending':
      return reply.code(200).header('x-pending', 'true').send()
    case 'done':
      return reply.code(204).send()
    case 'error':
      return sendError(reply, Errors.internal(outcome.message))
    case 'redirect':
      return reply
        .code(303)
        .header('location', outcome.location)
        .header('content-type', 'text/html; charset=utf-8')
        .send(`<a href="${outcome.location}">See Other</a>.\n\n`)
  }
}

export function pinoLevel(level: LogLevel): string {
  return PINO_LEVEL[level]
}
