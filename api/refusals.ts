// Requests Go's HTTP server refuses before heketi sees them (unparsable
// requests, headers too large, a missing Host, a broken %-escape) get Go's
// own answer: plain text without a trailing newline, `Connection: close`,
// then the connection is closed.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyReply } from 'fastify'
import { type ServerRefusal, ServerRefusals } from '../src/errors.ts'

// Go half-closes, waits this long for the client to read, then closes
const LINGER_MS = 500

/** A refusal given from a hook, once the request has been parsed. */
export function sendRefusal(reply: FastifyReply, refusal: ServerRefusal): FastifyReply {
  // Go puts the detail in the status line too: `400 Bad Request: missing required Host header`
  reply.raw.statusMessage = refusal.text.slice(4)
  return reply
    .code(refusal.status)
    .header('content-type', 'text/plain; charset=utf-8')
    .header('connection', 'close')
    .send(refusal.text)
}

/** The bytes Go's server writes when it cannot parse a request. */
export function refusalBytes(refusal: ServerRefusal): string {
  return (
    `HTTP/1.1 ${refusal.text.slice(0, 3)} ${refusal.text.slice(4)}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n' +
    refusal.text
  )
}

/**
 * End our side, keep reading (and dropping) what the client still sends so
 * its close is seen, and destroy the socket after a grace period. A socket
 * node no longer reads (after a parse error, or handed to 'connect') never
 * sees the client's close: it would hold `server.close()` forever while the
 * event loop, with nothing active, lets the process exit without a clean stop.
 */
export function closeAfterFlush(socket: Socket, bytes?: string): void {
  if (socket.writable && bytes !== undefined) socket.end(bytes)
  else socket.end()
  socket.resume()
  setTimeout(() => socket.destroy(), LINGER_MS).unref()
}

/**
 * node's `clientError`: its HTTP parser refused what arrived on `socket`.
 *
 * - Nothing in progress on the connection: answer as Go does, and close.
 * - A request is being answered and its body is what broke: that request's
 *   body read fails (fastify's reader listens for the error), so the route
 *   answers as heketi does when reading the body fails; then close.
 * - A request is being answered and a following pipelined one broke: Go
 *   answers the first, then refuses the second; so do we.
 */
export function refuseUnparsable(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const refusal =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? ServerRefusals.headersTooLarge
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ServerRefusals.timeout
        : ServerRefusals.badRequest
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  if (!inFlight || inFlight.writableFinished) {
    closeAfterFlush(socket, refusalBytes(refusal))
    return
  }
  const req = (inFlight as ServerResponse & { req?: IncomingMessage }).req
  const bodyBroken = req !== undefined && !req.complete
  if (bodyBroken && req.listenerCount('error') > 0) req.emit('error', err)
  let done = false
  const after = () => {
    if (done) return
    done = true
    closeAfterFlush(socket, bodyBroken ? undefined : refusalBytes(refusal))
  }
  inFlight.once('finish', after)
  inFlight.once('close', after)
}
