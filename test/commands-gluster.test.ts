// Byte-exact gluster CLI strings against heketi-node-commands.md §2–§7.
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import t from 'tap'
import {
  addBrickCommands,
  cloneSnapshotName,
  GLUSTERD_CHECK_COMMAND,
  healInfoCommand,
  healStartCommand,
  healStatisticsCommand,
  peerDetachCommand,
  peerProbeCommand,
  replaceBrickCommand,
  snapshotActivateCommand,
  snapshotCloneCommand,
  snapshotCreateCommand,
  snapshotDeactivateCommand,
  snapshotDeleteCommand,
  snapshotLimitCommand,
  snapshotVolumeStartCommand,
  volumeCreateCommands,
  volumeDeleteCommand,
  volumeInfoAllCommand,
  volumeInfoCommand,
  volumeRebalanceStartCommand,
  volumeRebalanceStatusCommand,
  volumeRebalanceStopCommand,
  volumeSetCommand,
  volumeStartForceCommand,
  volumeStatusCommand,
  volumeStopForceCommand,
} from '../executors/commands/gluster.ts'
import { parseHealStatistics } from '../executors/commands/heal-statistics.ts'
import { DEFAULT_REMOTE_EXECUTOR_CONFIG as cfg } from '../executors/config.ts'
import type { VolumeBrick, VolumeDurability } from '../executors/executor.ts'
import { ArgvStub } from './helpers/argv-stub.ts'
import { hostileOption } from './helpers/hostile.ts'

const G = "gluster --mode=script --timeout='600'"
/** the test's own quoting of a value without `'` */
const q = (value: string | number) => `'${value}'`
const VID = '7a6b5c4d3e2f10011223344556677889'
const hosts = ['10.0.0.11', '10.0.0.12', '10.0.0.13']
const bricks = (n: number): VolumeBrick[] =>
  Array.from({ length: n }, (_, i) => ({
    storageHost: hosts[i % 3],
    path: `/var/lib/heketi/mounts/vg_${'abc'[i % 3]}/brick_${i + 1}/brick`,
  }))
const addr = (b: VolumeBrick) => `${q(`${b.storageHost}:${b.path}`)} `
const replica3: VolumeDurability = { type: 'replicate', replica: 3, arbiter: false }

t.test('liveness and peers', async (t) => {
  t.equal(GLUSTERD_CHECK_COMMAND, 'systemctl status glusterd')
  t.equal(peerProbeCommand(cfg, 'node2.example.com'), `${G} peer probe 'node2.example.com'`)
  t.equal(peerProbeCommand(cfg, 'fd00::12'), `${G} peer probe 'fd00::12'`)
  t.equal(snapshotLimitCommand(cfg, 14), `${G} snapshot config snap-max-hard-limit '14'`)
  t.equal(peerDetachCommand(cfg, '10.0.0.12'), `${G} peer detach '10.0.0.12'`)
  t.throws(() => peerProbeCommand(cfg, 'a b'))
  t.throws(() => peerProbeCommand(cfg, 'host;reboot'))
  t.throws(() => peerProbeCommand(cfg, '-host'))
  t.throws(() => peerProbeCommand(cfg, '--help'))
  t.throws(() => peerProbeCommand(cfg, 'node_1'), 'RFC 1123: no underscore')
})

t.test('spec example: replica 3 with two sets (trailing spaces included)', async (t) => {
  const names = ['a', 'b', 'c', 'b', 'c', 'a']
  const hostOf = { a: '10.0.0.11', b: '10.0.0.12', c: '10.0.0.13' } as Record<string, string>
  const example = names.map((n, i) => ({
    storageHost: hostOf[n],
    path: `/var/lib/heketi/mounts/vg_${n}/brick_${i + 1}/brick`,
  }))
  const commands = volumeCreateCommands(cfg, {
    id: VID,
    name: 'vol_7a6b',
    durability: replica3,
    bricks: example,
    options: [],
  })
  t.same(commands, [
    `${G} volume create 'vol_7a6b' replica '3' '10.0.0.11:/var/lib/heketi/mounts/vg_a/brick_1/brick' '10.0.0.12:/var/lib/heketi/mounts/vg_b/brick_2/brick' '10.0.0.13:/var/lib/heketi/mounts/vg_c/brick_3/brick' `,
    `${G} volume add-brick 'vol_7a6b' '10.0.0.12:/var/lib/heketi/mounts/vg_b/brick_4/brick' '10.0.0.13:/var/lib/heketi/mounts/vg_c/brick_5/brick' '10.0.0.11:/var/lib/heketi/mounts/vg_a/brick_6/brick' `,
    `${G} volume set 'vol_7a6b' 'user.heketi.id' '${VID}'`,
    `${G} volume start 'vol_7a6b'`,
  ])
})

t.test('3 sets of replica 3: one create with 3 bricks, one add-brick with 6', async (t) => {
  const b = bricks(9)
  const commands = addBrickCommands(cfg, 'v', replica3, b.slice(3))
  t.same(commands, [`${G} volume add-brick 'v' ${b.slice(3).map(addr).join('')}`])
  const all = volumeCreateCommands(cfg, { id: VID, name: 'v', durability: replica3, bricks: b, options: [] })
  t.equal(all[0], `${G} volume create 'v' replica '3' ${b.slice(0, 3).map(addr).join('')}`)
  t.equal(all[1], commands[0])
  t.equal(all.length, 4)
})

t.test('replica groups hold at most 5 sets per add-brick', async (t) => {
  const b = bricks(3 * 12)
  const all = volumeCreateCommands(cfg, { id: VID, name: 'v', durability: replica3, bricks: b, options: [] })
  const adds = all.filter((c) => c.includes(' add-brick '))
  t.same(
    adds.map((c) => c.split(' ').filter((w) => w.includes(':/')).length),
    [15, 15, 3],
  )
  t.notMatch(adds.join('\n'), /replica/)
})

t.test('distribute: create with 1 brick, add-brick with 15 then 4', async (t) => {
  const b = bricks(20)
  const all = volumeCreateCommands(cfg, {
    id: VID,
    name: 'v',
    durability: { type: 'none' },
    bricks: b,
    options: [],
  })
  t.equal(all[0], `${G} volume create 'v' ${addr(b[0]!)}`)
  t.equal(all[1], `${G} volume add-brick 'v' ${b.slice(1, 16).map(addr).join('')}`)
  t.equal(all[2], `${G} volume add-brick 'v' ${b.slice(16).map(addr).join('')}`)
  t.equal(all.length, 5)
})

t.test('disperse: keyword, one set per add-brick', async (t) => {
  const b = bricks(18)
  const disperse: VolumeDurability = { type: 'disperse', data: 4, redundancy: 2 }
  const all = volumeCreateCommands(cfg, { id: VID, name: 'v', durability: disperse, bricks: b, options: [] })
  t.equal(
    all[0],
    `${G} volume create 'v' disperse-data '4' redundancy '2' ${b.slice(0, 6).map(addr).join('')}`,
  )
  t.equal(all[1], `${G} volume add-brick 'v' ${b.slice(6, 12).map(addr).join('')}`)
  t.equal(all[2], `${G} volume add-brick 'v' ${b.slice(12).map(addr).join('')}`)
})

t.test('arbiter keyword', async (t) => {
  const b = bricks(3)
  const all = volumeCreateCommands(cfg, {
    id: VID,
    name: 'v',
    durability: { type: 'replicate', replica: 3, arbiter: true },
    bricks: b,
    options: [],
  })
  t.equal(all[0], `${G} volume create 'v' replica '3' arbiter 1 ${b.map(addr).join('')}`)
})

t.test('options: empty ones skipped, raw, in order, then the heketi id and start', async (t) => {
  const all = volumeCreateCommands(cfg, {
    id: VID,
    name: 'v',
    durability: { type: 'none' },
    bricks: bricks(1),
    options: ['', 'a b', '', 'performance.readdir-ahead off'],
  })
  t.same(all.slice(1), [
    `${G} volume set 'v' 'a' 'b'`,
    `${G} volume set 'v' 'performance.readdir-ahead' 'off'`,
    `${G} volume set 'v' 'user.heketi.id' '${VID}'`,
    `${G} volume start 'v'`,
  ])
})

t.test('options reported in issue 8 are refused by the builder', async (t) => {
  for (const bad of [
    '--log-file=/tmp/x',
    'a --log-file=/tmp/x',
    '--remote-host=1.2.3.4',
    'a --remote-host=1.2.3.4',
    'a;b',
    'a *',
    'a ?',
    'a [ab]',
    'a {,x}',
    'a ~',
    'a #',
    'performance.readdir-ahead',
  ]) {
    t.throws(
      () => volumeSetCommand(cfg, 'v', bad),
      { name: 'UnsafeCommandArgumentError' },
      JSON.stringify(bad),
    )
  }
})

t.test('generated options: refused, or key and value reach gluster as two unchanged arguments', async (t) => {
  const stub = new ArgvStub()
  t.teardown(() => stub.close())
  let accepted = 0
  fc.assert(
    fc.property(fc.array(hostileOption, { minLength: 1, maxLength: 30 }), (options) => {
      const built: { option: string; command: string }[] = []
      for (const option of options) {
        try {
          built.push({ option, command: volumeSetCommand(cfg, 'v', option) })
        } catch (err) {
          if ((err as Error).name !== 'UnsafeCommandArgumentError') throw err
        }
      }
      const runs = stub.run(built.map((b) => b.command))
      built.forEach(({ option }, i) => {
        const space = option.indexOf(' ')
        const expected = ['--mode=script', '--timeout=600', 'volume', 'set', 'v']
        expected.push(option.slice(0, space), option.slice(space + 1))
        if (JSON.stringify(runs[i]) !== JSON.stringify([{ program: 'gluster', args: expected }]))
          throw new Error(`${JSON.stringify(option)} ran as ${JSON.stringify(runs[i])}`)
      })
      accepted += built.length
    }),
    { numRuns: 40 },
  )
  t.ok(accepted > 20, `${accepted} generated options were accepted and ran unchanged`)
})

t.test('bricks must form whole sets', async (t) => {
  t.throws(() =>
    volumeCreateCommands(cfg, { id: VID, name: 'v', durability: replica3, bricks: bricks(4), options: [] }),
  )
  t.throws(() => addBrickCommands(cfg, 'v', replica3, []))
})

t.test('volume lifecycle and information', async (t) => {
  t.equal(volumeStopForceCommand(cfg, 'vol_1'), `${G} volume stop 'vol_1' force`)
  t.equal(volumeDeleteCommand(cfg, 'vol_1'), `${G} volume delete 'vol_1'`)
  t.equal(volumeRebalanceStartCommand(cfg, 'vol_1'), `${G} volume rebalance 'vol_1' start`)
  t.equal(volumeRebalanceStatusCommand(cfg, 'vol_1'), `${G} volume rebalance 'vol_1' status --xml`)
  t.equal(volumeRebalanceStopCommand(cfg, 'vol_1'), `${G} volume rebalance 'vol_1' stop`)
  t.equal(volumeInfoCommand(cfg, 'vol_1'), `${G} volume info 'vol_1' --xml`)
  t.equal(volumeInfoAllCommand(cfg), `${G} volume info --xml`)
  t.equal(healInfoCommand(cfg, 'vol_1'), `${G} volume heal 'vol_1' info --xml`)
  t.equal(healStartCommand(cfg, 'vol_1'), `${G} volume heal 'vol_1' full`)
  t.equal(healStatisticsCommand(cfg, 'vol_1'), `${G} volume heal 'vol_1' statistics`)
  t.equal(volumeStatusCommand(cfg, 'vol_1'), `${G} volume status 'vol_1' --xml`)
  t.equal(volumeStartForceCommand(cfg, 'vol_1'), `${G} volume start 'vol_1' force`)
  t.equal(
    replaceBrickCommand(
      cfg,
      'vol_1',
      { storageHost: 'h1', path: '/a/brick' },
      { storageHost: 'h2', path: '/b/brick' },
    ),
    `${G} volume replace-brick 'vol_1' 'h1:/a/brick' 'h2:/b/brick' commit force`,
  )
  t.throws(() => volumeDeleteCommand(cfg, 'vol 1'))
  t.throws(() => volumeDeleteCommand(cfg, 'vol/1'))
  t.throws(() => volumeDeleteCommand(cfg, '--version'), 'a leading dash would be read as an option')
  t.throws(() => volumeDeleteCommand(cfg, '-v'))
  t.throws(
    () => volumeRebalanceStatusCommand(cfg, "vol'; reboot"),
    'the rebalance commands check the name too',
  )
  t.throws(() => volumeRebalanceStopCommand(cfg, '--mode=script'))
})

t.test('snapshots and clones carry --xml right after the prefix', async (t) => {
  const s = cloneSnapshotName('0123abcd')
  t.equal(s, 'tmpsnap_0123abcd')
  t.equal(
    snapshotCreateCommand(cfg, s, 'vol_1'),
    `${G} --xml snapshot create 'tmpsnap_0123abcd' 'vol_1' no-timestamp`,
  )
  t.equal(snapshotActivateCommand(cfg, s), `${G} --xml snapshot activate 'tmpsnap_0123abcd'`)
  t.equal(snapshotCloneCommand(cfg, 'clone_1', s), `${G} --xml snapshot clone 'clone_1' 'tmpsnap_0123abcd'`)
  t.equal(snapshotVolumeStartCommand(cfg, 'clone_1'), `${G} --xml volume start 'clone_1'`)
  t.equal(snapshotDeactivateCommand(cfg, s), `${G} --xml snapshot deactivate 'tmpsnap_0123abcd'`)
  t.equal(snapshotDeleteCommand(cfg, s), `${G} --xml snapshot delete 'tmpsnap_0123abcd'`)
  t.throws(() => snapshotCloneCommand(cfg, '--version', s), 'clone named like an option')
})

t.test(
  'heal statistics as gluster 10.3 prints them (testbed, after replace-brick and heal full)',
  async (t) => {
    const text = readFileSync(new URL('./fixtures/gluster/heal-statistics.txt', import.meta.url), 'utf8')
    const crawls = parseHealStatistics(text)
    t.same(
      crawls.map((c) => [c.brick, c.host, c.type, c.inProgress, c.healed]),
      [
        [0, '172.31.209.11', 'INDEX', false, 0],
        [0, '172.31.209.11', 'INDEX', false, 282],
        [0, '172.31.209.11', 'INDEX', false, 331],
        [0, '172.31.209.11', 'INDEX', true, 38],
        [1, '172.31.209.12', 'INDEX', false, 0],
        [1, '172.31.209.12', 'INDEX', false, 13],
        [1, '172.31.209.12', 'INDEX', false, 330],
        [1, '172.31.209.12', 'INDEX', true, 209],
        [2, '172.31.209.14', 'INDEX', false, 0],
        [2, '172.31.209.14', 'FULL', false, 254],
      ],
    )
    t.same(parseHealStatistics(''), [])
  },
)
