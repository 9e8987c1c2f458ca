// The access line of each request, as heketi's negroni log has one:
// `log.info({ reqId, method, url, status, ms }, '<status> <method> <url>')`.
// Under a read load that line cost more of a GET's CPU than anything else
// heqet does (pino's generic path: the argument checks, the loop over the
// object's keys, the serializer look-ups), so for a plain pino logger, as
// the server's is, the same bytes are put together here directly: pino's
// own level prefix, time function, bindings and line end, then the five
// fields and the message, each string JSON-quoted as pino quotes it. A logger
// with anything that would change the line (a mixin, formatters, hooks,
// serializers or redaction of these keys, a nested key, another message key,
// a prefix, a multistream) gets the same call through pino instead.
// test/access-log.test.ts compares the two lines.
import pino, { type Logger } from 'pino'

export type AccessLog = (
  reqId: string,
  method: string,
  url: string,
  status: number,
  ms: number,
  level?: 'info' | 'debug',
) => void

const FIELDS = ['reqId', 'method', 'url', 'status', 'ms', 'msg']
const INFO = 30

type Internals = Record<symbol, any>

/** Whether pino would write exactly the line accessLogger builds for this logger. */
export function isPlainPino(log: Logger): boolean {
  const s = pino.symbols
  const l = log as unknown as Internals
  const stream = l[s.streamSym]
  const formatters = l[s.formattersSym] ?? {}
  const hooks = l[s.hooksSym] ?? {}
  const serializers = l[s.serializersSym] ?? {}
  const stringifiers = l[s.stringifiersSym] ?? {}
  return (
    typeof stream?.write === 'function' &&
    stream[s.needsMetadataGsym] !== true &&
    typeof l[s.timeSym] === 'function' &&
    typeof l[s.lsCacheSym]?.[INFO] === 'string' &&
    typeof l[s.chindingsSym] === 'string' &&
    typeof l[s.endSym] === 'string' &&
    !l[s.mixinSym] &&
    !formatters.log &&
    !hooks.logMethod &&
    !hooks.streamWrite &&
    !l[s.nestedKeySym] &&
    l[s.messageKeySym] === 'msg' &&
    !l[(s as unknown as Record<string, symbol>)['msgPrefixSym']!] &&
    FIELDS.every((f) => !serializers[f] && !stringifiers[f]) &&
    !stringifiers[s.wildcardFirstSym] &&
    log.levels.values['info'] === INFO
  )
}

export function accessLogger(log: Logger): AccessLog {
  const viaPino: AccessLog = (reqId, method, url, status, ms, level = 'info') => {
    log[level]({ reqId, method, url, status, ms }, `${status} ${method} ${url}`)
  }
  if (!isPlainPino(log)) return viaPino
  const s = pino.symbols
  const l = log as unknown as Internals
  return (reqId, method, url, status, ms, level = 'info') => {
    if (level !== 'info') return viaPino(reqId, method, url, status, ms, level)
    if (log.levelVal > INFO) return
    const quotedUrl = JSON.stringify(url)
    l[s.streamSym].write(
      `${l[s.lsCacheSym][INFO]}${l[s.timeSym]()}${l[s.chindingsSym]},"reqId":${JSON.stringify(reqId)},"method":${JSON.stringify(method)},"url":${quotedUrl},"status":${status},"ms":${ms},"msg":"${status} ${method} ${quotedUrl.slice(1)}${l[s.endSym]}`,
    )
  }
}
