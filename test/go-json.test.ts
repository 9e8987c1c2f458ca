// goJson against a reference written from Go's encoding/json (Go before
// 1.22, heketi v10.4.1's toolchain): HTML-safe escaping of <, > and &,
// U+2028 and U+2029 always escaped, \n \r \t \\ \" as short escapes and
// every other control character as \u00xx (lower-case hex, \b and \f
// included).
import fc from 'fast-check'
import t from 'tap'
import { goJson } from '../api/http.ts'
import { checkProperty } from './helpers/property.ts'

function goString(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '"' || ch === '\\') out += `\\${ch}`
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029)
      out += `\\u${c.toString(16).padStart(4, '0')}`
    else out += ch
  }
  return `${out}"`
}

function goEncode(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'string') return goString(v)
  if (typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(goEncode).join(',')}]`
  const fields = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined)
  return `{${fields.map(([k, x]) => `${goString(k)}:${goEncode(x)}`).join(',')}}`
}

// strings rich in what the encoders disagree on; no lone surrogates (Go strings are UTF-8)
const tricky = fc.constantFrom(
  '<',
  '>',
  '&',
  '\u2028',
  '\u2029',
  '\b',
  '\f',
  '\\',
  '"',
  '\\b',
  '\\f',
  '\u0000',
  '\u001f',
  '\u007f',
  'é',
  '🙂',
  'a',
)
const text = fc
  .array(fc.oneof(tricky, fc.string({ unit: 'grapheme' })), { maxLength: 8 })
  .map((parts) => parts.join(''))
const value = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small' },
    text,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(text, tie('node'), { maxKeys: 4 }),
  ),
})).node

t.test('goJson writes what Go writes', async (t) => {
  await checkProperty(
    t,
    fc.asyncProperty(value, async (v) => {
      if (goJson(v) !== `${goEncode(v)}\n`) throw new Error(`goJson ${goJson(v)} != Go ${goEncode(v)}`)
    }),
    { file: 'test/go-json.test.ts', numRuns: 2000, minRuns: 200, timeLimitMs: 5000 },
  )
  t.equal(
    goJson({ a: 'x<y>&\u2028\u2029\b\f\\b' }),
    '{"a":"x\\u003cy\\u003e\\u0026\\u2028\\u2029\\u0008\\u000c\\\\b"}\n',
  )
})
