// Fuzzing the wire: thousands of generated requests over real sockets (so
// node's own HTTP parser is exercised too) against every operation of
// openapi.yaml, with malformed bodies, content types, framings, sizes,
// encodings, paths, methods, headers and tokens, on the mock executor.
//
// Asserted for every answer: no 5xx unless openapi.yaml documents it for
// that operation (and then never a JavaScript error text), every error in
// plain text (never JSON), nothing injected into headers, no file path
// revealed. At the end: nothing logged at error level, every async job's
// outcome free of JavaScript error texts, the server still answering and
// `/db/check` clean.
//
// Bounded by a count and a time budget; seeded per run. Replay a run with
//   HEQET_FUZZ_SEED=<seed> npx tap test/fuzz-wire.test.ts
// (HEQET_FUZZ_RUNS and HEQET_FUZZ_BUDGET_MS change the bounds).
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import fc from 'fast-check'
import pino from 'pino'
import t from 'tap'
import { type App, buildApp } from '../api/app.ts'
import { signToken } from '../api/auth.ts'
import { MockExecutor } from '../executors/mock.ts'
import { parseConfig } from '../src/config.ts'
import { type Operation, readOpenApi, responseCodes } from './helpers/openapi-outline.ts'
import { type RawResponse, rawRequest, rawRequestOrClose } from './helpers/raw-http.ts'

const ADMIN = 'fuzz-admin-secret'
const USER = 'fuzz-user-secret'
const SEED = process.env['HEQET_FUZZ_SEED']
  ? Number(process.env['HEQET_FUZZ_SEED'])
  : Math.floor(Math.random() * 2 ** 31)
const RUNS = Number(process.env['HEQET_FUZZ_RUNS'] ?? 4000)
const BUDGET_MS = Number(process.env['HEQET_FUZZ_BUDGET_MS'] ?? 60_000)
const LANES = 4
// print a sample of exchanges
const VERBOSE = process.env['HEQET_FUZZ_VERBOSE'] === '1'
const BODY_LIMIT = 1024 * 1024

// ---------------------------------------------------------------- the plan

type IdKind = 'cluster' | 'node' | 'device' | 'volume' | 'blockvolume' | 'brick' | 'queue' | 'operation'

/** How an `{id}` is filled in when the request is sent (pools change as the run goes). */
type IdChoice =
  | { pick: 'known'; index: number; upper: boolean }
  | { pick: 'other-kind'; index: number }
  | { pick: 'literal'; text: string }

/** How the decoded path is turned into the request target. */
type PathShape =
  | { kind: 'plain' }
  | { kind: 'trailing-slash' }
  | { kind: 'double-slash' }
  | { kind: 'dot-segments'; prefix: string }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'broken-escape'; at: number; escape: string }
  | { kind: 'raw-bytes'; at: number; bytes: number[] }
  | { kind: 'absolute-form' }
  | { kind: 'long'; length: number }
  | { kind: 'asterisk' }

type BodyPlan =
  | { kind: 'none' }
  | { kind: 'template'; mutations: Mutation[] }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: number[] }
  | { kind: 'nested'; depth: number; open: string }
  | { kind: 'big'; bytes: number; valid: boolean }

type Mutation =
  | { op: 'set'; field: number; value: unknown }
  | { op: 'hostile'; field: number; text: string }
  | { op: 'delete'; field: number }
  | { op: 'case'; field: number }
  | { op: 'proto' }
  | { op: 'wrap-array' }
  | { op: 'truncate'; keep: number }
  | { op: 'bom' }
  | { op: 'trailing'; text: string }
  | { op: 'duplicate-key'; field: number; value: unknown }

type Framing = 'length' | 'chunked' | 'no-length' | 'short-length' | 'long-length' | 'bad-length'

type Auth =
  | 'admin'
  | 'user'
  | 'none'
  | 'expired'
  | 'wrong-key'
  | 'other-path'
  | 'garbage'
  | 'basic'
  | 'alg-none'

interface Plan {
  /** only the body, path and method are fuzzed; the rest of the request is well-formed */
  clean: boolean
  op: number
  method: { kind: 'route' } | { kind: 'other'; name: string }
  id: IdChoice
  shape: PathShape
  encodeMask: number[]
  lowerHex: boolean
  query: string | null
  version: string
  host: 'normal' | 'missing' | 'empty' | 'twice' | 'odd'
  auth: Auth
  contentType: string | null
  headers: [string, string][]
  body: BodyPlan
  framing: Framing
}

const HOSTILE = [
  '--version',
  '-rf',
  '--log-file=/tmp/x',
  '$(id)',
  '`id`',
  'a;b',
  'a b',
  '*',
  '?',
  '[a]',
  '{a,b}',
  '~',
  '#x',
  '../../etc',
  '/dev/../../etc/passwd',
  '\u0000',
  '\r\nX-Injected: yes',
  'é',
  '€',
  '𝄞',
  '\ud800',
  '',
  ' ',
  '%s%n',
  '<script>',
  '$' + '{x}',
  "'",
  '"',
  '\\',
  'node_1',
  '10.0.0.999',
  '::1',
  'x'.repeat(300),
]

const NUMBERS = [0, -1, 1, 2, 3, 4, 6, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, -(2 ** 63), 1e308, 0.5, -0, 1e-9]

const CONTENT_TYPES = [
  'application/json',
  'text/plain',
  ';;;',
  '"',
  'application/json, text/plain',
  'application/json; charset=',
  'application/json; charset="utf-8',
  '',
  '/',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  'application/json; charset=latin1',
  '*/*',
  'a'.repeat(2000),
]

const OTHER_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'CONNECT',
  'PROPFIND',
  'MKCOL',
  'PURGE',
  'SEARCH',
  'REPORT',
  'LOCK',
  'M-SEARCH',
  'QUERY',
  'FOO',
  'get',
  'G3T',
  'GET GET',
  '',
]

const EXTRA_HEADERS: [string, string][][] = [
  [['expect', '100-continue']],
  [
    ['connection', 'upgrade'],
    ['upgrade', 'websocket'],
  ],
  [['transfer-encoding', 'gzip']],
  [['transfer-encoding', 'chunked, gzip']],
  [['content-encoding', 'gzip']],
  [['content-length', 'abc']],
  [['content-length', '-1']],
  [['x-big', 'y'.repeat(20_000)]],
  [['bad header', 'x']],
  [['x-ctl', 'a\u0001b']],
  [['x-latin', 'caf\u00e9']],
  [['connection', 'close']],
  [['connection', 'keep-alive']],
  [
    ['authorization', 'bearer a'],
    ['authorization', 'bearer b'],
  ],
  Array.from({ length: 300 }, (_, i): [string, string] => [`x-h${i}`, String(i)]),
]

const VERSIONS = [
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.0',
  'HTTP/2.0',
  'HTTP/9.9',
  'HTTP/1.1 ',
  'http/1.1',
]

/** A valid body for each operation that takes one; ids come from the pools. */
const TEMPLATES: Record<string, (p: Pools) => Record<string, unknown>> = {
  'POST /admin': () => ({ state: 'normal' }),
  'POST /internal/logging': () => ({ loglevel: { glusterfs: 'info' } }),
  'POST /clusters': () => ({ file: true, block: false }),
  'POST /clusters/{id}/flags': () => ({ file: true, block: true }),
  'POST /nodes': (p) => ({
    zone: 1,
    hostnames: { manage: [`fuzz${p.counter++}.example.com`], storage: [`10.9.${p.counter % 250}.1`] },
    cluster: p.cluster[0] ?? '',
    tags: { a: 'b' },
  }),
  'POST /nodes/{id}/state': () => ({ state: 'offline' }),
  'POST /nodes/{id}/tags': () => ({ change_type: 'set', tags: { k: 'v' } }),
  'POST /devices': (p) => ({ name: `/dev/fz${p.counter++}`, node: p.node[0] ?? '', destroydata: false }),
  'DELETE /devices/{id}': () => ({ forceforget: false }),
  'POST /devices/{id}/state': () => ({ state: 'offline' }),
  'POST /devices/{id}/tags': () => ({ change_type: 'update', tags: { k: 'v' } }),
  'POST /volumes': () => ({
    size: 1,
    name: 'fuzzvol',
    durability: { type: 'replicate', replicate: { replica: 3 } },
    gid: 0,
    glustervolumeoptions: ['performance.readdir-ahead on'],
    snapshot: { enable: false, factor: 1 },
  }),
  'POST /volumes/{id}/expand': () => ({ expand_size: 1 }),
  'POST /volumes/{id}/clone': () => ({ name: 'fuzzclone' }),
  'POST /volumes/{id}/block-restriction': () => ({ restriction: 'locked' }),
  'POST /blockvolumes': () => ({ size: 1, name: 'fuzzblock', hacount: 3, auth: true }),
  'POST /blockvolumes/{id}/expand': () => ({ new_size: 2 }),
  'POST /bricks/to-evict/{id}': () => ({ healcheck: 'disable' }),
  'POST /operations/pending/cleanup': () => ({ operations: [] }),
}

const ID_KIND: [string, IdKind][] = [
  ['/clusters/', 'cluster'],
  ['/nodes/', 'node'],
  ['/devices/', 'device'],
  ['/volumes/', 'volume'],
  ['/blockvolumes/', 'blockvolume'],
  ['/bricks/to-evict/', 'brick'],
  ['/queue/', 'queue'],
  ['/operations/pending/', 'operation'],
]

function planArbitrary(ops: Operation[]): fc.Arbitrary<Plan> {
  const anyJson = fc.jsonValue({ maxDepth: 3 })
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({
      op: fc.constant('set' as const),
      field: fc.nat(),
      value: fc.oneof(anyJson, fc.constantFrom(...NUMBERS)),
    }),
    fc.record({ op: fc.constant('hostile' as const), field: fc.nat(), text: fc.constantFrom(...HOSTILE) }),
    fc.record({ op: fc.constant('delete' as const), field: fc.nat() }),
    fc.record({ op: fc.constant('case' as const), field: fc.nat() }),
    fc.constant({ op: 'proto' as const }),
    fc.constant({ op: 'wrap-array' as const }),
    fc.record({ op: fc.constant('truncate' as const), keep: fc.nat({ max: 200 }) }),
    fc.constant({ op: 'bom' as const }),
    fc.record({
      op: fc.constant('trailing' as const),
      text: fc.constantFrom('x', ' ', '}', '{}', '\u0000', ','),
    }),
    fc.record({ op: fc.constant('duplicate-key' as const), field: fc.nat(), value: anyJson }),
  )
  const body: fc.Arbitrary<BodyPlan> = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
    {
      weight: 12,
      arbitrary: fc.record({
        kind: fc.constant('template' as const),
        mutations: fc.array(mutation, { maxLength: 3 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('json' as const), value: anyJson }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('text' as const),
        text: fc.string({ unit: 'grapheme', maxLength: 64 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('bytes' as const),
        bytes: fc.array(fc.nat({ max: 255 }), { maxLength: 128 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('nested' as const),
        depth: fc.integer({ min: 100, max: 50_000 }),
        open: fc.constantFrom('[', '{"a":'),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('big' as const),
        bytes: fc.constantFrom(BODY_LIMIT - 64, BODY_LIMIT + 1, 2 * BODY_LIMIT),
        valid: fc.boolean(),
      }),
    },
  )
  const shape: fc.Arbitrary<PathShape> = fc.oneof(
    { weight: 14, arbitrary: fc.constant({ kind: 'plain' as const }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'trailing-slash' as const }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'double-slash' as const }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('dot-segments' as const),
        prefix: fc.constantFrom('/a/..', '/./', '/a/b/../..', '/..'),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('insert' as const),
        at: fc.nat(),
        text: fc.oneof(
          fc.constantFrom(
            '€',
            '\r\n',
            '\u0000',
            ' ',
            '?',
            '#',
            '%',
            '..',
            '/',
            '\u00ff',
            '\ud83d\ude00',
            ';',
            '\\',
          ),
          fc.string({ unit: 'grapheme', maxLength: 6 }),
        ),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('broken-escape' as const),
        at: fc.nat(),
        escape: fc.constantFrom('%ZZ', '%', '%4', '%G0', '%%'),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('raw-bytes' as const),
        at: fc.nat(),
        bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'absolute-form' as const }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('long' as const),
        length: fc.constantFrom(200, 5_000, 20_000),
      }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'asterisk' as const }) },
  )
  const id: fc.Arbitrary<IdChoice> = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({ pick: fc.constant('known' as const), index: fc.nat(), upper: fc.boolean() }),
    },
    { weight: 1, arbitrary: fc.record({ pick: fc.constant('other-kind' as const), index: fc.nat() }) },
    {
      weight: 3,
      arbitrary: fc.record({
        pick: fc.constant('literal' as const),
        text: fc.oneof(
          fc.constantFrom(
            '0123456789abcdef0123456789abcdef',
            'a',
            'A',
            '0'.repeat(500),
            'zz',
            '€',
            '..',
            '-',
            '',
          ),
          fc.stringMatching(/^[0-9a-fA-F]{1,64}$/),
        ),
      }),
    },
  )
  return fc.record({
    clean: fc.nat({ max: 3 }).map((n) => n < 3),
    op: fc.nat({ max: ops.length - 1 }),
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constant({ kind: 'route' as const }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('other' as const),
          name: fc.constantFrom(...OTHER_METHODS),
        }),
      },
    ),
    id,
    shape,
    encodeMask: fc.array(fc.nat(), { maxLength: 3 }),
    lowerHex: fc.boolean(),
    query: fc.option(
      fc.oneof(
        fc.constantFrom('x=1', 'x=%0d%0a', 'a=%E2%82%AC', '', '?', '&&', 'x=%ZZ'),
        fc.string({ unit: 'binary-ascii', maxLength: 12 }),
      ),
      { freq: 5 },
    ),
    version: fc.constantFrom(...VERSIONS),
    host: fc.constantFrom(
      'normal',
      'normal',
      'normal',
      'normal',
      'normal',
      'normal',
      'missing',
      'empty',
      'twice',
      'odd',
    ),
    auth: fc.constantFrom<Auth>(
      'admin',
      'admin',
      'admin',
      'admin',
      'admin',
      'admin',
      'admin',
      'admin',
      'user',
      'none',
      'expired',
      'wrong-key',
      'other-path',
      'garbage',
      'basic',
      'alg-none',
    ),
    contentType: fc.option(
      fc.oneof(fc.constantFrom(...CONTENT_TYPES), fc.string({ unit: 'binary-ascii', maxLength: 20 })),
      {
        freq: 3,
      },
    ),
    headers: fc.oneof(
      { weight: 6, arbitrary: fc.constant<[string, string][]>([]) },
      { weight: 1, arbitrary: fc.constantFrom(...EXTRA_HEADERS) },
    ),
    body,
    framing: fc.constantFrom<Framing>(
      'length',
      'length',
      'length',
      'length',
      'length',
      'length',
      'length',
      'chunked',
      'chunked',
      'no-length',
      'short-length',
      'long-length',
      'bad-length',
    ),
  })
}

// ---------------------------------------------------------------- sending

interface Pools extends Record<IdKind, string[]> {
  counter: number
}

interface Built {
  bytes: Buffer
  /** the operation aimed at, as `METHOD /path/{id}` */
  op: string
  method: string
  /** the decoded path the server should see, or undefined when it cannot */
  path: string | undefined
  head: boolean
  halfClose: boolean
  /** a connection closed without an answer is acceptable */
  mayDrop: boolean
  summary: string
}

function hex(byte: number, lower: boolean): string {
  const h = byte.toString(16).padStart(2, '0')
  return `%${lower ? h : h.toUpperCase()}`
}

/** percent-encode what a client must, plus the characters at the mask positions */
function encodePath(path: string, mask: number[], lower: boolean): string {
  const chars = [...path]
  // never the leading `/`: a target must start with one
  const forced = new Set(mask.map((m) => 1 + (m % Math.max(1, chars.length - 1))))
  return chars
    .map((ch, i) => {
      const plain = /^[A-Za-z0-9/_.~-]$/.test(ch)
      if (plain && !forced.has(i)) return ch
      return [...Buffer.from(ch, 'utf8')].map((b) => hex(b, lower)).join('')
    })
    .join('')
}

function resolveId(choice: IdChoice, kind: IdKind, pools: Pools): string {
  if (choice.pick === 'literal') return choice.text
  const kinds = Object.keys(pools).filter((k) => k !== 'counter') as IdKind[]
  const pool = choice.pick === 'known' ? pools[kind] : pools[kinds[choice.index % kinds.length]!]
  if (pool.length === 0) return '0123456789abcdef0123456789abcdef'
  const id = pool[choice.index % pool.length]!
  return choice.pick === 'known' && choice.upper && choice.index % 5 === 0 ? id.toUpperCase() : id
}

function templateBody(key: string, plan: Extract<BodyPlan, { kind: 'template' }>, pools: Pools): Buffer {
  const make = TEMPLATES[key]
  let value: unknown = make ? make(pools) : {}
  let text: string | undefined
  let prefix = ''
  let suffix = ''
  for (const m of plan.mutations) {
    const obj =
      value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : undefined
    const fields = obj ? Object.keys(obj) : []
    const field = (n: number) => fields[n % Math.max(1, fields.length)] ?? 'x'
    switch (m.op) {
      case 'set':
        if (obj) obj[field(m.field)] = m.value
        break
      case 'hostile':
        if (obj) {
          const f = field(m.field)
          const current = obj[f]
          if (Array.isArray(current)) obj[f] = [m.text]
          else if (current !== null && typeof current === 'object') {
            const inner = current as Record<string, unknown>
            const k = Object.keys(inner)[0]
            if (k) inner[k] = Array.isArray(inner[k]) ? [m.text] : m.text
            else inner[m.text] = m.text
          } else obj[f] = m.text
        }
        break
      case 'delete':
        if (obj) delete obj[field(m.field)]
        break
      case 'case':
        if (obj) {
          const f = field(m.field)
          obj[f.toUpperCase()] = obj[f]
          delete obj[f]
        }
        break
      case 'proto': {
        // JSON.stringify cannot write a __proto__ key: splice it in
        const inner = JSON.stringify(obj ?? {}).slice(1, -1)
        text = `{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}${inner ? `,${inner}` : ''}}`
        break
      }
      case 'wrap-array':
        value = [value]
        text = undefined
        break
      case 'truncate':
        text = (text ?? JSON.stringify(value)).slice(0, m.keep)
        break
      case 'bom':
        prefix = '\ufeff'
        break
      case 'trailing':
        suffix = m.text
        break
      case 'duplicate-key':
        text = (text ?? JSON.stringify(value)).replace(
          /\}$/,
          `,${JSON.stringify(field(m.field))}:${JSON.stringify(m.value ?? null)}}`,
        )
        break
    }
  }
  return Buffer.from(prefix + (text ?? JSON.stringify(value)) + suffix, 'utf8')
}

function bodyBytes(key: string, plan: BodyPlan, pools: Pools): Buffer {
  switch (plan.kind) {
    case 'none':
      return Buffer.alloc(0)
    case 'template':
      return templateBody(key, plan, pools)
    case 'json':
      return Buffer.from(JSON.stringify(plan.value) ?? 'null')
    case 'text':
      return Buffer.from(plan.text)
    case 'bytes':
      return Buffer.from(plan.bytes)
    case 'nested':
      return Buffer.from(plan.open.repeat(plan.depth))
    case 'big': {
      const pad = Math.max(0, plan.bytes - 40)
      const text = plan.valid ? `{"file":true,"pad":"${'x'.repeat(pad)}"}` : 'x'.repeat(plan.bytes)
      return Buffer.from(text)
    }
  }
}

function token(auth: Auth, method: string, path: string): string | undefined {
  const now = Math.floor(Date.now() / 1000)
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  switch (auth) {
    case 'admin':
      return `bearer ${signToken('admin', ADMIN, method, path)}`
    case 'user':
      return `bearer ${signToken('user', USER, method, path)}`
    case 'none':
      return undefined
    case 'expired':
      return `bearer ${signToken('admin', ADMIN, method, path, -100)}`
    case 'wrong-key':
      return `bearer ${signToken('admin', 'not-the-key', method, path)}`
    case 'other-path':
      return `bearer ${signToken('admin', ADMIN, method, '/clusters')}`
    case 'garbage':
      return 'bearer a.b.c'
    case 'basic':
      return 'Basic YWRtaW46YWRtaW4='
    case 'alg-none':
      return `bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'admin', exp: now + 60 })}.`
  }
}

/** a clean plan keeps its body, path and method but sends them in a well-formed request */
function tidy(plan: Plan): Plan {
  if (!plan.clean) return plan
  return {
    ...plan,
    version: 'HTTP/1.1',
    host: 'normal',
    auth: plan.auth === 'admin' || plan.auth === 'user' ? plan.auth : 'admin',
    contentType:
      plan.contentType === null || CONTENT_TYPES.includes(plan.contentType)
        ? plan.contentType
        : 'application/json',
    headers: [],
    framing: plan.framing === 'chunked' ? 'chunked' : 'length',
    query: plan.query !== null && /^[\x21-\x7e]*$/.test(plan.query) ? plan.query : null,
    shape: plan.shape.kind === 'raw-bytes' || plan.shape.kind === 'long' ? { kind: 'plain' } : plan.shape,
    method:
      plan.method.kind === 'other' && !/^[A-Z]+$/.test(plan.method.name) ? { kind: 'route' } : plan.method,
    body: plan.body.kind === 'big' && plan.body.bytes > BODY_LIMIT ? { kind: 'none' } : plan.body,
  }
}

function build(original: Plan, ops: Operation[], pools: Pools): Built {
  const plan = tidy(original)
  const op = ops[plan.op]!
  const key = `${op.method} ${op.path}`
  const method = plan.method.kind === 'route' ? op.method : plan.method.name
  let path = op.path
  if (path.includes('{id}')) {
    const kind = ID_KIND.find(([prefix]) => path.startsWith(prefix))?.[1] ?? 'cluster'
    path = path.replace('{id}', resolveId(plan.id, kind, pools))
  }
  let decoded: string | undefined = path
  let target: string
  const shape = plan.shape
  const at = (n: number) => n % (path.length + 1)
  switch (shape.kind) {
    case 'plain':
      target = encodePath(path, plan.encodeMask, plan.lowerHex)
      break
    case 'trailing-slash':
      decoded = `${path}/`
      target = encodePath(decoded, plan.encodeMask, plan.lowerHex)
      break
    case 'double-slash':
      decoded = `/${path}`
      target = encodePath(decoded, plan.encodeMask, plan.lowerHex)
      break
    case 'dot-segments':
      decoded = shape.prefix + path
      target = encodePath(decoded, plan.encodeMask, plan.lowerHex)
      break
    case 'insert':
      decoded = path.slice(0, at(shape.at)) + shape.text + path.slice(at(shape.at))
      target = encodePath(decoded, plan.encodeMask, plan.lowerHex)
      break
    case 'broken-escape':
      decoded = undefined
      target = `${encodePath(path.slice(0, at(shape.at)), [], true)}${shape.escape}${encodePath(path.slice(at(shape.at)), [], true)}`
      break
    case 'raw-bytes':
      decoded = undefined
      target = `${path.slice(0, at(shape.at))}${Buffer.from(shape.bytes).toString('latin1')}${path.slice(at(shape.at))}`
      break
    case 'absolute-form':
      target = `http://localhost${encodePath(path, [], true)}`
      break
    case 'long':
      decoded = `${path}/${'a'.repeat(shape.length)}`
      target = decoded
      break
    case 'asterisk':
      decoded = '*'
      target = '*'
      break
  }
  if (plan.query !== null) target += `?${plan.query}`

  const headers: [string, string][] = []
  if (plan.host === 'normal') headers.push(['Host', 'localhost'])
  if (plan.host === 'empty') headers.push(['Host', ''])
  if (plan.host === 'twice') headers.push(['Host', 'a'], ['Host', 'b'])
  if (plan.host === 'odd') headers.push(['Host', 'a b/c'])
  const auth = token(plan.auth, method, decoded ?? path)
  if (auth) headers.push(['Authorization', auth])
  if (plan.contentType !== null) headers.push(['Content-Type', plan.contentType])
  headers.push(...plan.headers)

  const body = bodyBytes(key, plan.body, pools)
  let payload = body
  let halfClose = false
  let mayDrop = false
  if (body.length > 0 || plan.framing === 'chunked') {
    switch (plan.framing) {
      case 'length':
        headers.push(['Content-Length', String(body.length)])
        break
      case 'chunked': {
        headers.push(['Transfer-Encoding', 'chunked'])
        const parts: Buffer[] = []
        for (let i = 0; i < body.length; i += 7000) {
          const chunk = body.subarray(i, i + 7000)
          parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'))
        }
        payload = Buffer.concat([...parts, Buffer.from('0\r\n\r\n')])
        break
      }
      case 'no-length':
        // the body is read as the next request on the connection
        break
      case 'short-length':
        headers.push(['Content-Length', String(Math.floor(body.length / 2))])
        break
      case 'long-length':
        // the body never completes: the client gives up writing
        headers.push(['Content-Length', String(body.length + 10)])
        halfClose = true
        mayDrop = true
        break
      case 'bad-length':
        headers.push(['Content-Length', `${body.length}x`])
        break
    }
  }
  const head = `${method} ${target} ${plan.version}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
  return {
    bytes: Buffer.concat([Buffer.from(head, 'latin1'), payload]),
    op: key,
    method,
    path: decoded,
    head: method === 'HEAD',
    halfClose,
    mayDrop,
    summary: `${method} ${JSON.stringify(target.slice(0, 100))} ${plan.version} auth=${plan.auth} ct=${JSON.stringify(plan.contentType?.slice(0, 40) ?? null)} body=${plan.body.kind}/${body.length}B ${JSON.stringify(body.subarray(0, 60).toString('utf8'))} framing=${plan.framing} extra=${plan.headers.map(([k]) => k).join(',')} host=${plan.host}`,
  }
}

// ---------------------------------------------------------------- checking

const JS_ERROR =
  /TypeError|ReferenceError|RangeError|SyntaxError|Cannot read propert|is not a function|is not iterable|undefined|\[object Object\]|at .+\.ts:\d+/

function checkAnswer(
  req: Built,
  res: RawResponse,
  documented: Map<string, Set<string>>,
  secretDir: string,
): string[] {
  const problems: string[] = []
  const body = res.body.toString('utf8')
  if (res.status >= 500) {
    const allowed = req.method === req.op.split(' ')[0] && documented.get(req.op)?.has(String(res.status))
    if (!allowed)
      problems.push(`undocumented ${res.status} for ${req.op}: ${JSON.stringify(body.slice(0, 200))}`)
    else if (JS_ERROR.test(body))
      problems.push(`${res.status} with a JavaScript error text: ${JSON.stringify(body.slice(0, 200))}`)
  }
  if (res.status >= 400 && res.status !== 405 && !req.head) {
    if (res.headers['content-type'] !== 'text/plain; charset=utf-8')
      problems.push(
        `${res.status} error not plain text: ${res.headers['content-type']} ${JSON.stringify(body.slice(0, 120))}`,
      )
    if (body.length === 0) problems.push(`${res.status} error with an empty body`)
  }
  if (res.status === 405 && body.length > 0) problems.push('405 with a body')
  if (res.headers['x-injected'] !== undefined) problems.push('a header was injected')
  if (body.includes(secretDir))
    problems.push(`the answer names the data directory: ${JSON.stringify(body.slice(0, 200))}`)
  return problems
}

// ---------------------------------------------------------------- the run

t.test('fuzzing the wire', async (t) => {
  t.comment(`seed ${SEED} (replay: HEQET_FUZZ_SEED=${SEED} npx tap test/fuzz-wire.test.ts)`)
  const spec = readOpenApi()
  const ops = spec.operations
  t.ok(ops.length >= 30, `${ops.length} operations in openapi.yaml`)
  const documented = new Map(ops.map((o) => [`${o.method} ${o.path}`, new Set(responseCodes(o))]))
  for (const op of ops) {
    const key = `${op.method} ${op.path}`
    if (op.body.some((l) => /^ {6}requestBody:/.test(l))) t.ok(TEMPLATES[key], `${key} has a body template`)
  }

  const dir = mkdtempSync(join(tmpdir(), 'heqet-fuzz-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const logged: { level: number; msg: string; err?: string }[] = []
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue
        const entry = JSON.parse(line) as { level: number; msg: string; err?: { message?: string } }
        if (entry.level >= 50) logged.push({ level: entry.level, msg: entry.msg, err: entry.err?.message })
      }
      done()
    },
  })
  const config = {
    ...parseConfig(
      JSON.stringify({
        jwt: { admin: { key: ADMIN }, user: { key: USER } },
        glusterfs: { executor: 'mock', db: join(dir, 'heqet.db') },
      }),
      {},
    ),
    disableBackgroundCleaner: true,
    disableMonitor: true,
  }
  const app: App = await buildApp({
    config,
    executor: new MockExecutor({ deviceSizeGiB: config.mockDeviceSizeGiB }),
    logger: pino({ level: 'warn' }, sink),
  })
  t.teardown(() => app.close())
  await app.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.app.server.address() as AddressInfo).port

  // a small topology so ids reach real handlers
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await app.app.inject({
      method: method as never,
      url: path,
      headers: { authorization: `bearer ${signToken('admin', ADMIN, method, path)}` },
      payload: body === undefined ? undefined : JSON.stringify(body),
    })
    return res
  }
  const settle = async (res: { statusCode: number; headers: Record<string, unknown> }) => {
    for (let i = 0; i < 1000 && res.statusCode === 202; i++) {
      const poll = await api('GET', res.headers['location'] as string)
      if (poll.headers['x-pending'] !== 'true') return poll
      await new Promise((r) => setTimeout(r, 2))
    }
    return res
  }
  const pools: Pools = {
    cluster: [],
    node: [],
    device: [],
    volume: [],
    blockvolume: [],
    brick: [],
    queue: [],
    operation: [],
    counter: 0,
  }
  pools.cluster.push((await api('POST', '/clusters', { file: true, block: true })).json().id)
  for (let i = 0; i < 4; i++) {
    const node = await settle(
      await api('POST', '/nodes', {
        zone: (i % 3) + 1,
        hostnames: { manage: [`node${i}.example.com`], storage: [`10.0.0.${i + 1}`] },
        cluster: pools.cluster[0],
      }),
    )
    const nodeId = String(node.headers['location']).split('/').pop()!
    pools.node.push(nodeId)
    for (const name of ['/dev/sdb', '/dev/sdc'])
      await settle(await api('POST', '/devices', { name, node: nodeId }))
  }
  const refresh = async () => {
    const dump = (await api('GET', '/db/dump')).json()
    for (const [kind, bucket] of [
      ['cluster', 'clusterentries'],
      ['node', 'nodeentries'],
      ['device', 'deviceentries'],
      ['volume', 'volumeentries'],
      ['blockvolume', 'blockvolumeentries'],
      ['brick', 'brickentries'],
    ] as const) {
      // keep the order stable: known ids first, new ones appended
      for (const id of Object.keys(dump[bucket] ?? {}).sort())
        if (!pools[kind].includes(id)) pools[kind].push(id)
    }
    for (const id of Object.keys(dump.pendingoperations ?? {}).sort())
      if (!pools.operation.includes(id)) pools.operation.push(id)
  }
  await settle(
    await api('POST', '/volumes', { size: 1, durability: { type: 'replicate', replicate: { replica: 3 } } }),
  )
  await refresh()
  t.ok(pools.device.length >= 8 && pools.volume.length === 1, 'topology ready')

  const plans = fc.sample(planArbitrary(ops), { seed: SEED, numRuns: RUNS })
  const started = Date.now()
  const failures: string[] = []
  const statuses = new Map<number, number>()
  let sent = 0
  let dropped = 0
  let next = 0
  const lane = async () => {
    while (next < plans.length && Date.now() - started < BUDGET_MS) {
      const index = next++
      const req = build(plans[index]!, ops, pools)
      let res: RawResponse | null
      try {
        res = await rawRequestOrClose(port, req.bytes, { head: req.head, halfClose: req.halfClose })
      } catch (err) {
        failures.push(`#${index} ${req.summary}: ${(err as Error).message}`)
        continue
      } finally {
        sent++
        // /admin and /internal/logging change the server for every lane
        if (req.path?.includes('/admin')) app.state.admin = 'normal'
        app.ctx.log.level = 'warn'
      }
      if (res === null) {
        dropped++
        if (VERBOSE) t.comment(`#${index} dropped ← ${req.summary}`)
        if (!req.mayDrop) failures.push(`#${index} ${req.summary}: connection closed without an answer`)
        continue
      }
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      if (VERBOSE && (res.status >= 500 || Math.random() < 0.01))
        t.comment(
          `#${index} ${res.status} ${JSON.stringify(res.body.toString('utf8').slice(0, 80))} ← ${req.summary}`,
        )
      for (const p of checkAnswer(req, res, documented, dir)) failures.push(`#${index} ${req.summary}: ${p}`)
      const location = res.headers['location']
      if (res.status === 202 && location?.startsWith('/queue/')) pools.queue.push(location.slice(7))
      if (index % 200 === 0) await refresh()
    }
  }
  await Promise.all(Array.from({ length: LANES }, lane))
  const elapsed = Date.now() - started
  t.comment(
    `${sent} requests in ${(elapsed / 1000).toFixed(1)} s (${dropped} closed without answer by design); statuses ${[
      ...statuses.entries(),
    ]
      .sort((a, b) => a[0] - b[0])
      .map(([s, n]) => `${s}:${n}`)
      .join(' ')}`,
  )
  t.ok(sent >= Math.min(RUNS, 500), `at least 500 requests ran (${sent})`)

  // every job started reaches its end; their outcomes carry no JavaScript error
  for (let i = 0; i < 3000 && app.queue.pending > 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(app.queue.pending, 0, 'every async job finished')
  const jobErrors = new Map<string, number>()
  for (const id of pools.queue) {
    const res = await api('GET', `/queue/${id}`)
    if (res.statusCode === 500) {
      const text = res.body.trim()
      jobErrors.set(text, (jobErrors.get(text) ?? 0) + 1)
      if (JS_ERROR.test(text) || text.includes(dir))
        failures.push(`job ${id} failed with ${JSON.stringify(text)}`)
    }
  }
  t.comment(
    `${pools.queue.length} async jobs; failures by text: ${[...jobErrors.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([m, n]) => `${n}× ${JSON.stringify(m.slice(0, 80))}`)
      .join(', ')}`,
  )

  for (const entry of logged)
    failures.push(`logged at error level: ${entry.msg}${entry.err ? `: ${entry.err}` : ''}`)

  const hello = await rawRequest(port, 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(hello.status, 200, 'the server still answers')
  const check = (await api('GET', '/db/check')).json()
  t.equal(check.totalinconsistencies, 0, `/db/check clean: ${JSON.stringify(check).slice(0, 400)}`)

  t.same(failures.slice(0, 25), [], `no failures (${failures.length}; seed ${SEED})`)
})
