// Wire helpers: Go-compatible JSON bodies, plain-text errors, body decoding.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Errors, HeqetError } from '../src/errors.ts'
import { type DecodedObject, DecodeError, decodeGo, type Schema } from '../src/godecode.ts'

// What Go's encoding/json writes differently from JSON.stringify: <, > and &
// (HTML-safe escaping), U+2028 and U+2029 (always escaped), and the
// control characters \b and \f, which Go before 1.22 (heketi v10.4.1's
// toolchain) writes as \u0008 and \u000c. An escape pair is matched as a
// whole, so the `b` of an escaped backslash (`\\b`) stays as it is.
const GO_DIFFERS = /[<>&\u2028\u2029]|\\[bf]/
const GO_ESCAPES = /[<>&\u2028\u2029]|\\./g
const GO_ESCAPE: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
  '\\b': '\\u0008',
  '\\f': '\\u000c',
}

/** Go's encoding of a JSON text JSON.stringify made (see GO_DIFFERS). */
export function goEscape(json: string): string {
  if (!GO_DIFFERS.test(json)) return json
  return json.replace(GO_ESCAPES, (m) => GO_ESCAPE[m] ?? m)
}

/** JSON as Go's encoder writes it (goEscape), then a newline. */
export function goJson(value: unknown, indent?: number): string {
  return `${goEscape(JSON.stringify(value, null, indent))}\n`
}

export function sendJson(reply: FastifyReply, status: number, value: unknown, indent?: number): FastifyReply {
  return sendJsonText(reply, status, goJson(value, indent))
}

/** A body goJson already rendered (as text, or as its UTF-8 bytes from BodyCache). */
export function sendJsonText(reply: FastifyReply, status: number, body: string | Buffer): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=UTF-8').send(body)
}

export function sendError(reply: FastifyReply, err: HeqetError): FastifyReply {
  return reply
    .code(err.status)
    .header('content-type', 'text/plain; charset=utf-8')
    .header('x-content-type-options', 'nosniff')
    .send(`${err.message}\n`)
}

/** heketi answers 202 with a bare /queue/<id> Location and no body. */
export function sendAccepted(reply: FastifyReply, queueId: string): FastifyReply {
  return reply.code(202).header('location', `/queue/${queueId}`).send()
}

export function rawBody(req: FastifyRequest): string {
  return typeof req.body === 'string' ? req.body : ''
}

/** Decode the body with Go's rules; failure is heketi's 422. */
export function decodeBody<S extends Schema>(req: FastifyRequest, schema: S): DecodedObject<S> {
  try {
    return decodeGo(rawBody(req), schema)
  } catch (err) {
    if (err instanceof DecodeError) throw Errors.unparsable()
    throw err
  }
}

/**
 * For the routes whose body is optional (DELETE /devices/{id}, POST
 * /bricks/to-evict/{id}): heketi decodes it only when one was sent, so an
 * absent or empty body gives the schema's zero values instead of the 422.
 */
export function decodeBodyIfSent<S extends Schema>(req: FastifyRequest, schema: S): DecodedObject<S> {
  const length = Number(req.headers['content-length'] ?? 0)
  return length > 0 && rawBody(req) !== '' ? decodeBody(req, schema) : decodeGo('{}', schema)
}

/** The 400 flavour used by /admin and /internal/logging. */
export function decodeBodyDetailed<S extends Schema>(req: FastifyRequest, schema: S): DecodedObject<S> {
  try {
    return decodeGo(rawBody(req), schema)
  } catch (err) {
    if (err instanceof DecodeError) throw Errors.unparsableDetail(err.message)
    throw err
  }
}

/** ozzo-validation style messages: `validation failed: a: msg; b: msg.` */
export class Validation {
  private readonly problems = new Map<string, string>()

  add(field: string, message: string): void {
    if (!this.problems.has(field)) this.problems.set(field, message)
  }

  get empty(): boolean {
    return this.problems.size === 0
  }

  /** the nested rendering: `(manage: cannot be blank.)` */
  nested(): string {
    return `(${this.render()})`
  }

  render(): string {
    const fields = [...this.problems.keys()].sort()
    return `${fields.map((f) => `${f}: ${this.problems.get(f)}`).join('; ')}.`
  }

  throwIfAny(): void {
    if (!this.empty) throw Errors.validation(`validation failed: ${this.render()}`)
  }
}

export function isHeqetError(err: unknown): err is HeqetError {
  return err instanceof HeqetError
}
