// Generated hostile strings for values that reach node commands. Built from
// what an attacker types (every printable ASCII character, some Unicode,
// control characters, shell syntax, option-looking prefixes), not from the
// validator's rules, so a rule that is too loose shows up here.
import fc from 'fast-check'

const printableAscii = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c))
const unicode = fc.constantFrom(
  'é',
  'ß',
  '€',
  '中',
  '🙂',
  '\u00a0', // no-break space
  '\u200b', // zero-width space
  '\u2028', // line separator
  '\u2010', // hyphen
  '\uff0d', // fullwidth hyphen-minus
  'ǅ',
)
const control = fc.constantFrom('\n', '\r', '\t', '\v', '\f', '\0', '\x1b', '\x7f')
const shellSyntax = fc.constantFrom(
  '-',
  '--',
  '--version',
  '--help',
  '-rf',
  '--log-file=/tmp/x',
  '--remote-host=1.2.3.4',
  '*',
  '?',
  '[a-z]',
  '[!x]',
  '{,x}',
  '{a,b}',
  '~',
  '~root',
  '#',
  ';',
  '&',
  '&&',
  '|',
  '||',
  '$(id)',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell expansion
  '${HOME}',
  '$HOME',
  '`id`',
  "'",
  '"',
  '\\',
  ' ',
  '  ',
  '<',
  '>',
  '>>',
  '(',
  ')',
  '!',
  '=',
  '%',
  '/',
  '/..',
  '../',
  '.',
  ':',
  ',',
  '@',
  '+',
)
const word = fc.constantFrom('a', 'vol', 'x1', 'node', 'brick', 'Z', '9', 'sdb', 'performance', 'off')

/** one hostile string: a mix of the pieces above (weighted towards plain words so some pass) */
export const hostileString: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: word },
      { weight: 3, arbitrary: printableAscii },
      { weight: 2, arbitrary: shellSyntax },
      { weight: 1, arbitrary: unicode },
      { weight: 1, arbitrary: control },
    ),
    { minLength: 0, maxLength: 8 },
  )
  .map((parts) => parts.join(''))

/** a value that starts like a path or a host, then turns hostile */
export function hostileWithPrefix(prefixes: string[]): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom(...prefixes), hostileString).map(([p, s]) => `${p}${s}`)
}

/** plausible values: words and single characters joined by `separator` after `prefix` */
export function joinedWords(prefix: string, separator: string): fc.Arbitrary<string> {
  return fc
    .array(fc.oneof({ weight: 5, arbitrary: word }, { weight: 1, arbitrary: printableAscii }), {
      minLength: 1,
      maxLength: 4,
    })
    .map((parts) => `${prefix}${parts.join(separator)}`)
}

/** `<key> <value>` options where either half (or the separator) may be hostile */
export const hostileOption: fc.Arbitrary<string> = fc.oneof(
  hostileString,
  fc
    .tuple(
      fc.array(word, { minLength: 1, maxLength: 3 }).map((w) => w.join('.')),
      fc.array(fc.oneof(word, printableAscii), { minLength: 1, maxLength: 4 }).map((w) => w.join('')),
    )
    .map(([k, v]) => `${k} ${v}`),
  fc
    .tuple(
      fc.oneof(hostileString, fc.constantFrom('performance.readdir-ahead', 'user.heketi.arbiter', 'group')),
      fc.constantFrom(' ', ' ', '  ', '\t', '='),
      fc.oneof(hostileString, fc.constantFrom('on', 'off', 'true', '64', 'gluster-block')),
    )
    .map(([k, sep, v]) => `${k}${sep}${v}`),
)
