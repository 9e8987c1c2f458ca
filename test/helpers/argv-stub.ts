// Runs built command lines the way a node does: wrapped as heketi wraps
// them (`/bin/bash -c '<cmd>'`, optionally `sudo`), given to a real bash,
// with every program replaced by a stub on PATH that records its argv.
// The working directory holds files that any unquoted glob would match.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { wrapHeketiCommand } from '../../executors/ssh-script.ts'

/** stubbed programs; `stubwrap` stands in as the lvm wrapper (it receives /usr/sbin/lvm as its first argument) */
export const STUBBED = [
  'gluster',
  'gluster-block',
  'mkdir',
  'mkfs.xfs',
  'awk',
  'mount',
  'umount',
  'lsof',
  'sed',
  'rmdir',
  'chown',
  'chmod',
  'wipefs',
  'systemctl',
  'stubwrap',
]

export interface Invocation {
  program: string
  args: string[]
}

export class ArgvStub {
  readonly dir = mkdtempSync(join(tmpdir(), 'heqet-argv-'))
  private readonly bin = join(this.dir, 'bin')
  private readonly cwd = join(this.dir, 'cwd')
  private readonly log = join(this.dir, 'log')

  constructor() {
    mkdirSync(this.bin)
    mkdirSync(this.cwd)
    // targets for globs: `*`, `?`, `[a-z]*`, `{a,b}` all match something here
    for (const f of ['a', 'b', 'x', 'glob-target', '-rf', '--version']) writeFileSync(join(this.cwd, f), '')
    for (const p of STUBBED) {
      const path = join(this.bin, p)
      writeFileSync(path, `#!/bin/bash\nprintf '%s\\0' "$#" "\${0##*/}" "$@" >>"$STUB_LOG"\n`)
      chmodSync(path, 0o755)
    }
    const sudo = join(this.bin, 'sudo')
    writeFileSync(sudo, '#!/bin/bash\nexec "$@"\n')
    chmodSync(sudo, 0o755)
  }

  /** Runs each command in order in one bash; returns the programs each one invoked. */
  run(commands: string[], opts: { sudo?: boolean } = {}): Invocation[][] {
    writeFileSync(this.log, '')
    const script = commands
      .map(
        (cmd, i) =>
          `printf '%s\\0' -1 ${i} >>"$STUB_LOG"; ${wrapHeketiCommand(cmd, opts.sudo ?? false)} </dev/null`,
      )
      .join('\n')
    const res = spawnSync('/bin/bash', ['-c', script], {
      cwd: this.cwd,
      env: { PATH: this.bin, STUB_LOG: this.log, HOME: this.cwd, LC_ALL: 'C' },
      encoding: 'utf8',
    })
    if (res.error) throw res.error
    const fields = readFileSync(this.log).toString('utf8').split('\0')
    fields.pop()
    const out: Invocation[][] = commands.map(() => [])
    let current = -1
    for (let i = 0; i < fields.length; ) {
      const count = Number(fields[i])
      if (count === -1) {
        current = Number(fields[i + 1])
        i += 2
        continue
      }
      out[current]!.push({ program: fields[i + 1]!, args: fields.slice(i + 2, i + 2 + count) })
      i += 2 + count
    }
    return out
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true })
  }
}
