// A tiny HTTP/1.1 client over a raw TCP socket: it sends exactly the bytes it
// is given, so tests can reach node's HTTP parser with requests no ordinary
// client would write (bad methods, raw CR/LF, broken headers), which
// fastify.inject() never parses.
import { connect } from 'node:net'

export interface RawResponse {
  status: number
  reason: string
  /** header names lower-cased; repeated headers joined with ", " */
  headers: Record<string, string>
  body: Buffer
  /** the server closed the connection after this answer */
  closed: boolean
}

export interface RawRequestOptions {
  /** the request is a HEAD: the answer carries no body whatever its length */
  head?: boolean
  /** give up after this many ms (default 20 s) */
  timeoutMs?: number
  /** half-close the connection once the request is written */
  halfClose?: boolean
}

function parseHead(text: string): Omit<RawResponse, 'body' | 'closed'> {
  const lines = text.split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '')
  if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(lines[0])}`)
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i <= 0) throw new Error(`malformed response header: ${JSON.stringify(line)}`)
    const name = line.slice(0, i).trim().toLowerCase()
    const value = line.slice(i + 1).trim()
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value
  }
  return { status: Number(m[1]), reason: m[2]!, headers }
}

/**
 * Send `request` (the whole request, bytes as given) on a new connection and
 * read one answer: up to Content-Length, or to the end of the connection.
 * Rejects when the server closes without answering or does not answer in time.
 */
export async function rawRequest(
  port: number,
  request: Buffer | string,
  opts: RawRequestOptions = {},
): Promise<RawResponse> {
  const res = await exchange(port, request, opts, false)
  return res!
}

/** As rawRequest, but a connection closed without any answer gives null. */
export function rawRequestOrClose(
  port: number,
  request: Buffer | string,
  opts: RawRequestOptions = {},
): Promise<RawResponse | null> {
  return exchange(port, request, opts, true)
}

function exchange(
  port: number,
  request: Buffer | string,
  opts: RawRequestOptions,
  closeIsAnswer: boolean,
): Promise<RawResponse | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let buf = Buffer.alloc(0)
    let head: Omit<RawResponse, 'body' | 'closed'> | undefined
    let bodyStart = 0
    let settled = false
    const timer = setTimeout(() => finish(new Error('no answer in time')), opts.timeoutMs ?? 20_000)

    function finish(err: Error | undefined, res?: RawResponse | null) {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolve(res ?? null)
    }

    function tryComplete(closed: boolean) {
      if (!head) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) {
          if (!closed) return
          if (buf.length === 0 && closeIsAnswer) finish(undefined, null)
          else finish(new Error(`connection closed after ${buf.length} bytes without an answer`))
          return
        }
        try {
          head = parseHead(buf.subarray(0, end).toString('latin1'))
        } catch (err) {
          finish(err as Error)
          return
        }
        bodyStart = end + 4
        // an interim answer (100 Continue) precedes the real one
        if (head.status >= 100 && head.status < 200 && head.status !== 101) {
          buf = buf.subarray(bodyStart)
          head = undefined
          tryComplete(closed)
          return
        }
      }
      const length = head.headers['content-length']
      const noBody = opts.head || head.status === 204 || head.status === 304 || head.status < 200
      if (noBody || length !== undefined) {
        const want = noBody ? 0 : Number(length)
        if (buf.length - bodyStart >= want) {
          finish(undefined, {
            ...head,
            body: buf.subarray(bodyStart, bodyStart + want),
            closed: closed || head.headers['connection']?.toLowerCase() === 'close',
          })
        } else if (closed) {
          finish(new Error(`connection closed inside a ${want}-byte body`))
        }
        return
      }
      if (head.headers['transfer-encoding']) {
        finish(new Error('chunked answers are not expected from heqet'))
        return
      }
      if (closed) finish(undefined, { ...head, body: buf.subarray(bodyStart), closed: true })
    }

    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      tryComplete(false)
    })
    socket.on('end', () => tryComplete(true))
    socket.on('close', () => tryComplete(true))
    // a reset after the answer was read is fine; before it, it is the failure
    socket.on('error', (err) => {
      tryComplete(true)
      finish(err)
    })
    socket.write(request)
    if (opts.halfClose) socket.end()
  })
}
