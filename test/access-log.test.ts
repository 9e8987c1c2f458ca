// The access line built directly (api/access-log.ts) is the line pino writes
// for the same call, byte for byte once the time is the same; a logger that
// would write something else gets pino's own line.
import { Writable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { accessLogger, isPlainPino } from '../api/access-log.ts'

function capture(opts: pino.LoggerOptions = {}): { log: pino.Logger; lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split(/(?<=\n)/))
      cb()
    },
  })
  // a fixed clock, so the two lines can be compared whole
  return { log: pino({ timestamp: () => ',"time":1700000000000', ...opts }, stream), lines }
}

async function settle(): Promise<void> {
  await new Promise((r) => setImmediate(r))
}

const URLS = [
  '/volumes/0123456789abcdef0123456789abcdef',
  '/volumes',
  '/a "quoted" \\ path',
  '/ctl\u0001\u001f',
  `/${'x'.repeat(150)}`,
  '/é/ü/latin1\u00ff',
]

t.test('the same line as pino, for plain loggers', async (t) => {
  for (const opts of [{}, { name: 'heqet' }, { base: null }, { base: { pid: 1 } }, { level: 'debug' }]) {
    const { log, lines } = capture(opts)
    t.ok(isPlainPino(log), `${JSON.stringify(opts)}: plain`)
    const access = accessLogger(log)
    for (const [i, url] of URLS.entries()) {
      lines.length = 0
      access(`req-${i}`, 'GET', url, 200, i)
      log.info({ reqId: `req-${i}`, method: 'GET', url, status: 200, ms: i }, `200 GET ${url}`)
      await settle()
      t.equal(lines.length, 2, 'two lines')
      t.equal(lines[0], lines[1], `${JSON.stringify(opts)} ${JSON.stringify(url)}: the same bytes`)
      t.same(JSON.parse(lines[0]!).url, url, 'the url survives the quoting')
    }
  }
})

t.test('levels: nothing under info; debug lines through pino', async (t) => {
  const { log, lines } = capture({ level: 'warn' })
  const access = accessLogger(log)
  access('req-1', 'GET', '/volumes', 200, 0)
  await settle()
  t.equal(lines.length, 0, 'no line at level warn')
  log.level = 'debug'
  access('req-2', 'GET', '/queue/abc', 200, 0, 'debug')
  access('req-3', 'GET', '/volumes', 200, 0)
  await settle()
  t.equal(lines.length, 2)
  t.match(JSON.parse(lines[0]!), { level: 20, reqId: 'req-2', msg: '200 GET /queue/abc' })
  t.match(JSON.parse(lines[1]!), { level: 30, reqId: 'req-3', msg: '200 GET /volumes' })
})

t.test('a logger that changes the line goes through pino', async (t) => {
  const cases: [string, pino.LoggerOptions][] = [
    ['mixin', { mixin: () => ({ extra: 1 }) }],
    ['formatters.log', { formatters: { log: (o) => ({ ...o, formatted: true }) } }],
    ['serializer of url', { serializers: { url: () => 'hidden' } }],
    ['redaction', { redact: ['url'] }],
    ['nested key', { nestedKey: 'payload' }],
    ['message key', { messageKey: 'message' }],
    ['message prefix', { msgPrefix: '[http] ' }],
  ]
  for (const [name, opts] of cases) {
    const { log, lines } = capture(opts)
    t.notOk(isPlainPino(log), `${name}: not plain`)
    accessLogger(log)('req-1', 'GET', '/volumes', 200, 0)
    log.info({ reqId: 'req-1', method: 'GET', url: '/volumes', status: 200, ms: 0 }, '200 GET /volumes')
    await settle()
    t.equal(lines[0], lines[1], `${name}: pino's own line`)
  }
})
