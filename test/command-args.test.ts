// Values that reach node commands without passing the API (stored brick
// paths, LV and thin pool names, snapshot and block names, config values):
// for generated hostile values the builder either refuses
// (UnsafeCommandArgumentError) or bash hands the real program — a stub that
// records its argv — each value as one unchanged argument.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { blockCreateCommand } from '../executors/commands/block.ts'
import {
  brickCreateCommands,
  fstabAppendCommand,
  fstabRemoveCommand,
  lvremoveCommand,
} from '../executors/commands/brick.ts'
import { vgremoveCommand } from '../executors/commands/device.ts'
import { snapshotCreateCommand } from '../executors/commands/gluster.ts'
import { DEFAULT_REMOTE_EXECUTOR_CONFIG, type RemoteExecutorConfig } from '../executors/config.ts'
import { ArgvStub, type Invocation } from './helpers/argv-stub.ts'
import { brickFixture } from './helpers/brick.ts'
import { hostileString, hostileWithPrefix, joinedWords } from './helpers/hostile.ts'

const DID = '9f8e7d6c5b4a39281706f5e4d3c2b1a0'
const BID = '0c1d2e3f405162738495a6b7c8d9eaf0'
const DEV = `/dev/mapper/vg_${DID}-brick_${BID}`
const OPTS = DEFAULT_REMOTE_EXECUTOR_CONFIG.mountOpts
const cfg = (over: Partial<RemoteExecutorConfig> = {}): RemoteExecutorConfig => ({
  ...DEFAULT_REMOTE_EXECUTOR_CONFIG,
  lvmWrapper: 'stubwrap',
  ...over,
})
const G = ['--mode=script', '--timeout=600']
const LVM = (...args: string[]): Invocation => ({ program: 'stubwrap', args: ['/usr/sbin/lvm', ...args] })

/** matches any single argument (the awk program text); no real argument holds a NUL */
const expect = { any: '\u0000any' }

interface Kind {
  kind: string
  values: fc.Arbitrary<string>
  build(value: string): string[]
  /** per built command: the one invocation bash must make, or null when the value is not in it */
  expected(value: string): (Invocation | null)[]
}

const kinds: Kind[] = [
  {
    kind: 'brick path',
    values: fc
      .oneof(
        hostileWithPrefix(['/var/lib/heketi/mounts/', '/', '/../']),
        joinedWords('/var/lib/heketi/mounts/', '/'),
      )
      .map((p) => `${p}/brick`),
    build: (path) => brickCreateCommands(cfg(), brickFixture(DID, BID, { path, gid: 1000 })),
    expected: (path) => {
      const mnt = path.slice(0, -'/brick'.length)
      return [
        { program: 'mkdir', args: ['-p', mnt] },
        null,
        null,
        { program: 'awk', args: [expect.any, DEV, mnt, OPTS, '/etc/fstab'] },
        { program: 'mount', args: ['-o', OPTS, DEV, mnt] },
        { program: 'mkdir', args: [path] },
        { program: 'chown', args: [':1000', path] },
        { program: 'chmod', args: ['2775', path] },
      ]
    },
  },
  {
    kind: 'LV name',
    // '' means the default brick_<brick id>
    values: fc.oneof(hostileString, joinedWords('brick_', '_')).filter((v) => v !== ''),
    build: (lv) => [
      lvremoveCommand(cfg(), DID, lv),
      brickCreateCommands(cfg(), brickFixture(DID, BID, { lvmLv: lv }))[1]!,
    ],
    expected: (lv) => [
      LVM('lvremove', '--autobackup=n', '-f', `vg_${DID}/${lv}`),
      LVM(
        'lvcreate',
        '-qq',
        '--autobackup=n',
        '--poolmetadatasize',
        '8192K',
        '--chunksize',
        '256K',
        '--size',
        '1052672K',
        '--thin',
        `vg_${DID}/tp_${BID}`,
        '--virtualsize',
        '1048576K',
        '--name',
        lv,
      ),
    ],
  },
  {
    kind: 'thin pool name',
    // '' means the default tp_<brick id>
    values: fc.oneof(hostileString, joinedWords('tp_', '_')).filter((v) => v !== ''),
    build: (tp) => [brickCreateCommands(cfg(), brickFixture(DID, BID, { lvmThinPool: tp }))[1]!],
    expected: (tp) => [
      LVM(
        'lvcreate',
        '-qq',
        '--autobackup=n',
        '--poolmetadatasize',
        '8192K',
        '--chunksize',
        '256K',
        '--size',
        '1052672K',
        '--thin',
        `vg_${DID}/${tp}`,
        '--virtualsize',
        '1048576K',
        '--name',
        `brick_${BID}`,
      ),
    ],
  },
  {
    kind: 'snapshot name',
    values: fc.oneof(hostileString, joinedWords('tmpsnap_', '_')),
    build: (s) => [snapshotCreateCommand(cfg(), s, 'vol_1')],
    expected: (s) => [
      { program: 'gluster', args: [...G, '--xml', 'snapshot', 'create', s, 'vol_1', 'no-timestamp'] },
    ],
  },
  {
    kind: 'block volume name',
    values: fc.oneof(hostileString, joinedWords('blk_', '_')),
    build: (name) => [
      blockCreateCommand(cfg(), {
        hostingVolume: 'hv',
        name,
        haCount: 1,
        auth: false,
        hosts: ['h1'],
        sizeGiB: 1,
      }),
    ],
    expected: (name) => [
      {
        program: 'gluster-block',
        args: [
          'create',
          `hv/${name}`,
          'ha',
          '1',
          'auth',
          'disable',
          'prealloc',
          'full',
          'h1',
          '1GiB',
          '--json',
        ],
      },
    ],
  },
  {
    kind: 'mount options (config)',
    values: fc.oneof(hostileString, joinedWords('rw,', ',')),
    build: (mountOpts) => [brickCreateCommands(cfg({ mountOpts }), brickFixture(DID, BID))[4]!],
    expected: (opts) => [
      { program: 'mount', args: ['-o', opts, DEV, `/var/lib/heketi/mounts/vg_${DID}/brick_${BID}`] },
    ],
  },
  {
    kind: 'fstab path (config)',
    values: fc.oneof(hostileWithPrefix(['/etc/', '/']), joinedWords('/etc/', '/')),
    build: (fstab) => [fstabRemoveCommand(cfg({ fstab }), BID)],
    expected: (fstab) => [{ program: 'sed', args: ['-i.save', `/brick_${BID}/d`, fstab] }],
  },
  {
    kind: 'lvm wrapper words (config)',
    values: fc.oneof(hostileString, joinedWords('', ' ')),
    build: (words) => [vgremoveCommand(cfg({ lvmWrapper: `stubwrap ${words}` }), DID)],
    expected: (words) => [
      { program: 'stubwrap', args: [...words.split(' '), '/usr/sbin/lvm', 'vgremove', '-qq', `vg_${DID}`] },
    ],
  },
]

function same(got: Invocation[] | undefined, want: Invocation): boolean {
  if (got?.length !== 1) return false
  const g = got[0]!
  return (
    g.program === want.program &&
    g.args.length === want.args.length &&
    g.args.every((a, i) => want.args[i] === expect.any || a === want.args[i])
  )
}

t.test('generated values: refused by the builder, or one unchanged argument through bash', async (t) => {
  const stub = new ArgvStub()
  t.teardown(() => stub.close())
  for (const { kind, values, build, expected } of kinds) {
    let accepted = 0
    let refused = 0
    fc.assert(
      fc.property(fc.array(values, { minLength: 1, maxLength: 16 }), (batch) => {
        const built: { value: string; commands: string[] }[] = []
        for (const value of batch) {
          try {
            built.push({ value, commands: build(value) })
          } catch (err) {
            if ((err as Error).name !== 'UnsafeCommandArgumentError') throw err
            refused++
          }
        }
        for (const sudo of [false, true]) {
          const runs = stub.run(
            built.flatMap((b) => b.commands),
            { sudo },
          )
          let at = 0
          for (const { value, commands } of built) {
            expected(value).forEach((want, i) => {
              if (want && !same(runs[at + i], want))
                throw new Error(`${kind} ${JSON.stringify(value)} ran as ${JSON.stringify(runs[at + i])}`)
            })
            at += commands.length
          }
        }
        accepted += built.length
      }),
      { numRuns: 10 },
    )
    t.ok(accepted > 0 && refused > 0, `${kind}: ${accepted} accepted and ran unchanged, ${refused} refused`)
  }
})

t.test('the fstab line awk writes carries an accepted brick path unchanged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-fstab-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fstab = join(dir, 'fstab')
  let written = 0
  fc.assert(
    fc.property(joinedWords('/var/lib/heketi/mounts/', '/'), (mnt) => {
      let command: string
      try {
        command = fstabAppendCommand(cfg({ fstab }), brickFixture(DID, BID, { path: `${mnt}/brick` }))
      } catch (err) {
        if ((err as Error).name !== 'UnsafeCommandArgumentError') throw err
        return
      }
      const before = written
      const run = spawnSync('/bin/bash', ['-c', command], { encoding: 'utf8', cwd: dir })
      if (run.status !== 0) throw new Error(run.stderr)
      written++
      const lines = readFileSync(fstab, 'utf8').split('\n')
      if (lines[before] !== `${DEV} ${mnt} xfs ${OPTS} 1 2`)
        throw new Error(`fstab line ${JSON.stringify(lines[before])}`)
    }),
    { numRuns: 40 },
  )
  t.ok(written > 10, `${written} fstab lines written exactly`)
})
