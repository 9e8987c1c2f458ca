// How commands travel over ssh. Each command is wrapped exactly as heketi
// wraps it. A whole batch can also travel as ONE exec of a small bash script
// that runs the wrapped commands in order, stops at the first failure and
// frames every result with byte counts, so any output (binary, markers,
// missing newlines) is parsed unambiguously.

/** `/bin/bash -c '<cmd>'` with `sudo ` prefixed when asked and every `'` as `'\''` */
export function wrapHeketiCommand(command: string, sudo: boolean): string {
  const cmd = sudo ? `sudo ${command}` : command
  return `/bin/bash -c '${cmd.replaceAll("'", "'\\''")}'`
}

export const SCRIPT_NO_TEMP_DIR_EXIT = 97
const START = 'HEQET-START'
const FRAME = 'HEQET'
const END = 'HEQET-END'

/**
 * The exec string of a single-round-trip batch. Output of command i is framed
 * as `HEQET <i> <exit> <stdoutBytes> <stderrBytes>\n<stdout><stderr>`,
 * preceded by `HEQET-START <nonce>\n` (anything a login shell prints before
 * is skipped) and followed by `HEQET-END\n` when every command succeeded.
 *
 * Process creation is the cost on a node, so each command costs exactly one
 * fork (its heketi-style `/bin/bash -c`): outputs go to two temp files that
 * bash builtins read back (`read -d ''`, byte lengths under a function-local
 * LC_ALL=C, which no command sees). A NUL byte ends a captured output early;
 * node commands print text, and the framing stays exact either way.
 */
export function buildBatchScript(wrappedCommands: string[], nonce: string): string {
  if (!/^[a-zA-Z0-9]+$/.test(nonce)) throw new Error('nonce must be alphanumeric')
  const lines = [
    // noclobber: create both files exclusively (no symlink games in /tmp), then truncate per command
    `d="\${TMPDIR:-/tmp}/heqet-${nonce}"; set -C; { : >"$d.o" && : >"$d.e"; } 2>/dev/null || exit ${SCRIPT_NO_TEMP_DIR_EXIT}; set +C`,
    `trap 'rm -f "$d.o" "$d.e"' EXIT`,
    `f() { local LC_ALL=C o e; IFS= read -r -d '' o <"$d.o"; IFS= read -r -d '' e <"$d.e"; printf '${FRAME} %s %s %s %s\n%s%s' "$1" "$2" "\${#o}" "\${#e}" "$o" "$e"; }`,
    `printf '${START} ${nonce}\n'`,
    ...wrappedCommands.map(
      (cmd, i) => `${cmd} </dev/null >"$d.o" 2>"$d.e"; r=$?; f ${i} $r; [ $r -eq 0 ] || exit 0`,
    ),
    `printf '${END}\n'`,
  ]
  // the script itself runs in bash whatever the user's login shell is
  return wrapHeketiCommand(lines.join('\n'), false)
}

export interface FramedResult {
  index: number
  exitCode: number
  stdout: string
  stderr: string
}

/** Incremental parser of a batch script's stdout. */
export class BatchFrameParser {
  private buffer: Buffer = Buffer.alloc(0)
  private started = false
  ended = false
  readonly results: FramedResult[] = []

  constructor(
    private readonly nonce: string,
    /** called as each command's result completes (resets the per-command timer) */
    private readonly onProgress: () => void = () => {},
  ) {}

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    for (;;) if (!this.step()) return
  }

  private takeLine(): string | undefined {
    const nl = this.buffer.indexOf(0x0a)
    if (nl < 0) return undefined
    const line = this.buffer.subarray(0, nl).toString('utf8')
    this.buffer = this.buffer.subarray(nl + 1)
    return line
  }

  private step(): boolean {
    if (this.ended) return false
    if (!this.started) {
      const marker = Buffer.from(`${START} ${this.nonce}\n`)
      const at = this.buffer.indexOf(marker)
      if (at < 0) return false
      this.buffer = this.buffer.subarray(at + marker.length)
      this.started = true
      this.onProgress()
      return true
    }
    const nl = this.buffer.indexOf(0x0a)
    if (nl < 0) return false
    const header = this.buffer.subarray(0, nl).toString('utf8').trim().split(/\s+/)
    if (header[0] === END) {
      this.takeLine()
      this.ended = true
      return false
    }
    const [tag, index, exitCode, outBytes, errBytes] = header.map((h, i) => (i === 0 ? h : Number(h))) as [
      string,
      number,
      number,
      number,
      number,
    ]
    if (tag !== FRAME || header.length !== 5 || [index, exitCode, outBytes, errBytes].some(Number.isNaN)) {
      throw new Error(`malformed batch frame header: ${header.join(' ')}`)
    }
    if (this.buffer.length < nl + 1 + outBytes + errBytes) return false
    this.takeLine()
    const stdout = this.buffer.subarray(0, outBytes).toString('utf8')
    const stderr = this.buffer.subarray(outBytes, outBytes + errBytes).toString('utf8')
    this.buffer = this.buffer.subarray(outBytes + errBytes)
    this.results.push({ index, exitCode, stdout, stderr })
    this.onProgress()
    return true
  }

  get sawStart(): boolean {
    return this.started
  }
}
