// RemoteExecutor over the RecordingRunner: the exact batches heketi sends,
// failure handling and error texts (heketi-node-commands.md §2–§7).
import t from 'tap'
import { DEFAULT_REMOTE_EXECUTOR_CONFIG, type RemoteExecutorConfig } from '../executors/config.ts'
import type { BrickRequest, DeviceRef, VolumeRequest } from '../executors/executor.ts'
import { RecordingRunner } from '../executors/recording.ts'
import { RemoteExecutor } from '../executors/remote.ts'
import type { CommandResult } from '../executors/runner.ts'
import { brickFixture } from './helpers/brick.ts'

const G = "gluster --mode=script --timeout='600'"
const LVM = '/usr/sbin/lvm'
const H = 'node1.example.com'
const DID = 'd0000000000000000000000000000001'
const BID = 'b0000000000000000000000000000001'
const MNT = `/var/lib/heketi/mounts/vg_${DID}/brick_${BID}`
const PV_JSON = '{"report":[{"pv":[{"pv_name":"/dev/sdb","pv_uuid":"PvUu-1d","vg_name":"vg_x"}]}]}'
const VG_JSON = '{"report":[{"vg":[{"pv_name":"/dev/sdb","pv_uuid":"PvUu-1d","vg_name":"vg_x"}]}]}'
const VGDISPLAY = '  vg_x:r/w:772:-1:0:0:0:-1:0:1:1:524156928:4096:100:25:75:AbCd\n'

type Answer = Partial<CommandResult> | Error
/** first matching rule answers; unmatched commands succeed with empty output */
function rules(...list: [RegExp | string, Answer][]) {
  return (_host: string, command: string) => {
    for (const [pattern, answer] of list) {
      if (typeof pattern === 'string' ? command.includes(pattern) : pattern.test(command)) return answer
    }
    return undefined
  }
}

function setup(list: [RegExp | string, Answer][] = [], config: Partial<RemoteExecutorConfig> = {}) {
  const runner = new RecordingRunner(rules(...list))
  const warnings: string[] = []
  const executor = new RemoteExecutor(
    runner,
    { ...DEFAULT_REMOTE_EXECUTOR_CONFIG, ...config },
    { logger: { warn: (m) => warnings.push(m) } },
  )
  return { runner, executor, warnings }
}

const brick: BrickRequest = { host: H, ...brickFixture(DID, BID) }

t.test('glusterd check: quiet, timeout 10, stderr as error', async (t) => {
  const { runner, executor } = setup([['systemctl', { exitCode: 3, stderr: 'inactive' }]])
  await t.rejects(executor.glusterdCheck(H), { message: 'inactive', host: H, exitCode: 3 })
  t.same(runner.batches, [
    { host: H, commands: ['systemctl status glusterd'], opts: { timeoutMinutes: 10, quiet: true } },
  ])
})

t.test('empty stderr: ssh transport text; transport failure: its message', async (t) => {
  const a = setup([['systemctl', { exitCode: 4 }]])
  await t.rejects(a.executor.glusterdCheck(H), { message: 'Process exited with status 4' })
  const b = setup([['systemctl', new Error('Unable to connect to node1.example.com:22: ECONNREFUSED')]])
  await t.rejects(b.executor.glusterdCheck(H), { message: /ECONNREFUSED/ })
})

t.test('peer probe, snapshot limit batch, detach', async (t) => {
  const a = setup()
  await a.executor.peerProbe(H, '10.0.0.12')
  t.same(
    a.runner.batches.map((b) => b.commands),
    [[`${G} peer probe '10.0.0.12'`]],
  )
  t.equal(a.runner.batches[0].opts.timeoutMinutes, 11)

  const b = setup([], { snapshotLimit: 14 })
  await b.executor.peerProbe(H, '10.0.0.12')
  t.same(
    b.runner.batches.map((x) => x.commands),
    [[`${G} peer probe '10.0.0.12'`], [`${G} snapshot config snap-max-hard-limit '14'`]],
  )
  const c = setup(
    [
      [
        'peer probe',
        {
          exitCode: 1,
          stderr: 'peer probe: failed: Probe returned with Transport endpoint is not connected',
        },
      ],
    ],
    { snapshotLimit: 14 },
  )
  await t.rejects(c.executor.peerProbe(H, '10.0.0.12'), /Transport endpoint/)
  t.equal(c.runner.batches.length, 1)

  const d = setup()
  await d.executor.peerDetach(H, '10.0.0.12')
  t.same(d.runner.commands(), [`${G} peer detach '10.0.0.12'`])
})

t.test('device setup: batches, sizes and identity', async (t) => {
  const { runner, executor } = setup([
    [' pvs ', { stdout: PV_JSON }],
    ['udevadm', { stdout: 'disk/by-id/wwn-1 disk/by-id/lvm-pv-uuid-PvUu-1d\n' }],
    ['vgdisplay', { stdout: VGDISPLAY }],
  ])
  const info = await executor.deviceSetup({ host: H, device: '/dev/sdb', deviceId: DID, destroyData: false })
  t.same(info, {
    totalKiB: 409600,
    usedKiB: 102400,
    freeKiB: 307200,
    extentSizeKiB: 4096,
    pvUuid: 'PvUu-1d',
    paths: ['/dev/disk/by-id/wwn-1', '/dev/sdb'],
  })
  t.same(
    runner.batches.map((b) => [b.commands, b.opts.timeoutMinutes]),
    [
      [
        [
          `${LVM} pvcreate -qq --metadatasize=128M --dataalignment='256K' '/dev/sdb'`,
          `${LVM} vgcreate -qq --physicalextentsize='4M' --autobackup=n 'vg_${DID}' '/dev/sdb'`,
        ],
        5,
      ],
      [
        [
          `${LVM} pvs -o pv_name,pv_uuid,vg_name --reportformat=json '/dev/sdb'`,
          "/usr/bin/udevadm info --query=symlink --name='/dev/sdb'",
        ],
        5,
      ],
      [[`${LVM} vgdisplay -c 'vg_${DID}'`], 5],
    ],
  )
})

t.test('device setup: destroydata runs wipefs first; failed udevadm → [device]', async (t) => {
  const { runner, executor } = setup([
    [' pvs ', { stdout: PV_JSON }],
    ['udevadm', { exitCode: 2, stderr: 'no udev' }],
    ['vgdisplay', { stdout: VGDISPLAY }],
  ])
  const info = await executor.deviceSetup({ host: H, device: '/dev/sdb', deviceId: DID, destroyData: true })
  t.equal(runner.batches[0].commands[0], "wipefs --all '/dev/sdb'")
  t.same(info.paths, ['/dev/sdb'])
})

t.test('device setup failure classification', async (t) => {
  const vgFails: [RegExp | string, Answer] = [
    'vgcreate',
    { exitCode: 5, stderr: 'Device /dev/sdb excluded by a filter.' },
  ]
  const cases: [string, [RegExp | string, Answer][], string][] = [
    [
      'transport failure of the identity query',
      [vgFails, [' pvs ', new Error('ssh connection lost')]],
      'Initializing device /dev/sdb failed (failed to check device contents): Device /dev/sdb excluded by a filter.',
    ],
    [
      'existing PV',
      [vgFails, [' pvs ', { stdout: PV_JSON }]],
      'Initializing device /dev/sdb failed (aleady contains Physical Volume PvUu-1d): Device /dev/sdb excluded by a filter.',
    ],
    [
      'anything else',
      [vgFails, [' pvs ', { exitCode: 5, stderr: 'Failed to find physical volume "/dev/sdb".' }]],
      'Initializing device /dev/sdb failed (already initialized or contains data?): Device /dev/sdb excluded by a filter.',
    ],
    [
      'empty stderr',
      [
        ['pvcreate', { exitCode: 5 }],
        [' pvs ', { exitCode: 5 }],
      ],
      'Initializing device /dev/sdb failed (already initialized or contains data?): Process exited with status 5',
    ],
  ]
  for (const [name, list, message] of cases) {
    const { executor, runner } = setup(list)
    await t.rejects(
      executor.deviceSetup({ host: H, device: '/dev/sdb', deviceId: DID, destroyData: false }),
      { message },
      name,
    )
    if (name === 'empty stderr') {
      t.equal(runner.batches.length, 2, `${name}: setup + identity query only`)
    } else {
      // vgcreate failed after pvcreate succeeded: heqet removes the PV its own batch made
      t.equal(runner.batches.length, 3, `${name}: setup + identity query + pvremove`)
      t.match(runner.batches[2]!.commands[0], /pvremove -qq '\/dev\/sdb'/)
    }
  }
})

t.test('device setup: a failed size query tears the device down', async (t) => {
  const { runner, executor } = setup([
    [' pvs ', { stdout: PV_JSON }],
    ['vgdisplay', { exitCode: 5, stderr: 'Volume group not found' }],
  ])
  await t.rejects(executor.deviceSetup({ host: H, device: '/dev/sdb', deviceId: DID, destroyData: false }), {
    message: 'Volume group not found',
  })
  t.same(
    runner.batches.slice(3).map((b) => b.commands),
    [
      [`${LVM} vgremove -qq 'vg_${DID}'`, `${LVM} pvremove -qq '/dev/disk/by-id/lvm-pv-uuid-PvUu-1d'`],
      [`rmdir '/var/lib/heketi/mounts/vg_${DID}'`],
    ],
  )
})

t.test('device teardown: UUID resolution, error text, forget', async (t) => {
  const dev: DeviceRef = {
    host: H,
    device: '/dev/sdb',
    deviceId: DID,
    pvUuid: '',
    paths: ['/dev/disk/by-path/p1'],
  }
  const a = setup([['vgs -o', { stdout: VG_JSON }]])
  await a.executor.deviceTeardown(dev, false)
  t.same(
    a.runner.batches.map((b) => b.commands),
    [
      [`${LVM} vgs -o pv_name,pv_uuid,vg_name --reportformat=json 'vg_${DID}'`],
      [`${LVM} vgremove -qq 'vg_${DID}'`, `${LVM} pvremove -qq '/dev/disk/by-id/lvm-pv-uuid-PvUu-1d'`],
      [`rmdir '/var/lib/heketi/mounts/vg_${DID}'`],
    ],
  )

  const b = setup([
    ['vgs -o', { exitCode: 5 }],
    ['vgremove', { exitCode: 5, stderr: 'in use' }],
  ])
  await t.rejects(b.executor.deviceTeardown(dev, false), {
    message: `Failed to delete device /dev/disk/by-path/p1 with id ${DID} on host ${H}: in use`,
  })
  t.equal(b.runner.batches.length, 2, 'no rmdir after a failed removal')

  const c = setup([
    ['vgremove', { exitCode: 5, stderr: 'in use' }],
    ['rmdir', { exitCode: 1 }],
  ])
  await c.executor.deviceTeardown({ ...dev, pvUuid: 'Known-1' }, true)
  t.same(
    c.runner.batches.map((x) => x.commands),
    [
      [`rmdir '/var/lib/heketi/mounts/vg_${DID}'`],
      [`${LVM} vgremove -qq 'vg_${DID}'`, `${LVM} pvremove -qq '/dev/disk/by-id/lvm-pv-uuid-Known-1'`],
    ],
  )
  t.same(
    c.warnings,
    [
      `device ${DID} (forgotten): rmdir on ${H} failed (ignored, as heketi does): Process exited with status 1`,
      `device ${DID} (forgotten): vgremove/pvremove on ${H} failed (ignored, as heketi does): in use`,
    ],
    'forget goes on past each failure, and logs it',
  )
})

t.test('device info (resync) queries the resolved path', async (t) => {
  const { runner, executor } = setup([
    [' pvs ', { stdout: PV_JSON }],
    ['vgdisplay', { stdout: VGDISPLAY }],
  ])
  const info = await executor.deviceInfo({
    host: H,
    device: '/dev/sdb',
    deviceId: DID,
    pvUuid: 'PvUu-1d',
    paths: [],
  })
  t.equal(info.totalKiB, 409600)
  t.equal(
    runner.batches[0].commands[0],
    `${LVM} pvs -o pv_name,pv_uuid,vg_name --reportformat=json '/dev/disk/by-id/lvm-pv-uuid-PvUu-1d'`,
  )
  const failing = setup([[' pvs ', { exitCode: 5, stderr: 'no PV' }]])
  await t.rejects(
    failing.executor.deviceInfo({ host: H, device: '/dev/sdb', deviceId: DID, pvUuid: 'X', paths: [] }),
    {
      message: 'failed to read PV data for /dev/disk/by-id/lvm-pv-uuid-X [no PV]',
    },
  )
})

const destroySequence = [
  [`umount '${MNT}'`],
  [`sed -i.save '/brick_${BID}/d' '/etc/fstab'`],
  [`${LVM} lvremove --autobackup=n -f 'vg_${DID}/brick_${BID}'`],
  [`${LVM} lvs --noheadings --options=thin_count 'vg_${DID}/tp_${BID}'`],
  [`${LVM} lvremove --autobackup=n -f 'vg_${DID}/tp_${BID}'`],
  [`rmdir '${MNT}'`],
]

t.test('brick create: one batch with timeout 10', async (t) => {
  const { runner, executor } = setup()
  await executor.brickCreate(brick)
  t.equal(runner.batches.length, 1)
  t.equal(runner.batches[0].opts.timeoutMinutes, 10)
  t.equal(runner.batches[0].commands.length, 6)
  t.equal(runner.batches[0].commands[0], `mkdir -p '${MNT}'`)
})

t.test('brick create failure destroys the brick and returns the original error', async (t) => {
  const { runner, executor } = setup([
    ['mkfs.xfs', { exitCode: 1, stderr: 'mkfs.xfs: cannot open device' }],
    ['thin_count', { stdout: '  0\n' }],
  ])
  await t.rejects(executor.brickCreate(brick), { message: 'mkfs.xfs: cannot open device' })
  t.same(
    runner.batches.slice(1).map((b) => b.commands),
    destroySequence,
  )
  t.ok(runner.batches.slice(1).every((b) => b.opts.timeoutMinutes === 5))
})

t.test('brick destroy: full sequence reclaims space', async (t) => {
  const { runner, executor } = setup([['thin_count', { stdout: '  0\n' }]])
  t.same(await executor.brickDestroy(brick), { spaceReclaimed: true })
  t.same(
    runner.batches.map((b) => b.commands),
    destroySequence,
  )
})

t.test('brick destroy: thin pool still used → kept, not reclaimed', async (t) => {
  const { runner, executor } = setup([['thin_count', { stdout: '  1\n' }]])
  t.same(await executor.brickDestroy(brick), { spaceReclaimed: false })
  t.notOk(runner.commands().some((c) => c.endsWith(`/tp_${BID}`) && c.includes('lvremove')))
})

t.test('brick destroy: umount failure forgiven when not mounted', async (t) => {
  const { runner, executor } = setup([
    ['umount', { exitCode: 32, stderr: 'umount: not mounted' }],
    [/^mount$/, { stdout: '/dev/sda1 on / type ext4 (rw)\n' }],
    ['thin_count', { stdout: '0' }],
  ])
  t.same(await executor.brickDestroy(brick), { spaceReclaimed: true })
  t.same(runner.commands().slice(0, 3), [
    `umount '${MNT}'`,
    'mount',
    `sed -i.save '/brick_${BID}/d' '/etc/fstab'`,
  ])
})

t.test(
  'brick destroy: umount failure kept when mounted (fstab still cleaned, lsof when debugging)',
  async (t) => {
    const { runner, executor, warnings } = setup(
      [
        ['umount', { exitCode: 32, stderr: 'umount: target is busy.' }],
        [/^mount$/, { stdout: `/dev/mapper/vg_${DID}-brick_${BID} on ${MNT} type xfs (rw)\n` }],
        ['lsof', { stdout: 'glusterfs 123 root' }],
      ],
      { debugUmountFailures: true },
    )
    await t.rejects(executor.brickDestroy(brick), { message: 'umount: target is busy.' })
    t.same(runner.commands(), [
      `umount '${MNT}'`,
      'mount',
      `lsof '${MNT}'`,
      `sed -i.save '/brick_${BID}/d' '/etc/fstab'`,
    ])
    t.match(warnings[0], /glusterfs 123 root/)
  },
)

t.test('brick destroy: snapshot bricks skip fstab; stored LV name used', async (t) => {
  const { runner, executor } = setup([['thin_count', { stdout: '1' }]])
  await executor.brickDestroy({ ...brick, path: '/run/gluster/snaps/abc/brick2/brick', lvmLv: 'abc_0' })
  t.same(runner.commands(), [
    "umount '/run/gluster/snaps/abc/brick2'",
    `${LVM} lvremove --autobackup=n -f 'vg_${DID}/abc_0'`,
    `${LVM} lvs --noheadings --options=thin_count 'vg_${DID}/tp_${BID}'`,
    "rmdir '/run/gluster/snaps/abc/brick2'",
  ])
})

t.test('brick destroy: LVM error handling', async (t) => {
  const notFound = setup([
    [
      `-f 'vg_${DID}/brick_`,
      { exitCode: 5, stderr: `  Failed to find logical volume "vg_${DID}/brick_${BID}"` },
    ],
    ['thin_count', { exitCode: 5, stderr: `  Failed to find logical volume "vg_${DID}/tp_${BID}"` }],
    [`lvremove --autobackup=n -f 'vg_${DID}/tp_`, { exitCode: 5, stderr: 'Volume group "x" not found' }],
  ])
  t.same(await notFound.executor.brickDestroy(brick), { spaceReclaimed: true })

  const lvBusy = setup([[`-f 'vg_${DID}/brick_`, { exitCode: 5, stderr: 'Logical volume in use.' }]])
  await t.rejects(lvBusy.executor.brickDestroy(brick), { message: 'Logical volume in use.' })

  const countFails = setup([['thin_count', { exitCode: 5, stderr: 'read error' }]])
  await t.rejects(countFails.executor.brickDestroy(brick), {
    message: `Unable to determine number of logical volumes in thin pool vg_${DID}/tp_${BID} on host ${H}`,
  })
  const countGarbage = setup([['thin_count', { stdout: 'lots' }]])
  await t.rejects(countGarbage.executor.brickDestroy(brick), {
    message:
      /^Failed to convert number of logical volumes in thin pool vg_.*\/tp_.* on host node1.example.com/,
  })
  const poolBusy = setup([
    ['thin_count', { stdout: '0' }],
    [`-f 'vg_${DID}/tp_`, { exitCode: 5, stderr: 'pool busy' }],
  ])
  // heketi logs this and reports the space as kept, though no brick entry
  // will ever point at the pool again; heqet fails so the record stays
  await t.rejects(poolBusy.executor.brickDestroy(brick), { message: 'pool busy' })

  const rmdirFails = setup([
    ['thin_count', { stdout: '0' }],
    ['rmdir', { exitCode: 1, stderr: 'rmdir: failed to remove: Device or resource busy' }],
  ])
  await t.rejects(rmdirFails.executor.brickDestroy(brick), { message: /Device or resource busy/ })
  t.equal(rmdirFails.runner.commands().filter((c) => c.startsWith('rmdir')).length, 2, 'rmdir tried twice')
  const rmdirGone = setup([
    ['thin_count', { stdout: '0' }],
    ['rmdir', { exitCode: 1, stderr: `rmdir: failed to remove '${MNT}': No such file or directory` }],
  ])
  t.same(
    await rmdirGone.executor.brickDestroy(brick),
    { spaceReclaimed: true },
    'a directory already gone is fine',
  )

  const sedFails = setup([['sed -i.save', { exitCode: 4, stderr: 'sed: read-only' }]])
  await t.rejects(sedFails.executor.brickDestroy(brick), { message: 'sed: read-only' })
})

const volume = (n: number, over: Partial<VolumeRequest> = {}): VolumeRequest => ({
  host: H,
  id: 'a0000000000000000000000000000001',
  name: 'vol_a1',
  durability: { type: 'replicate', replica: 3, arbiter: false },
  bricks: Array.from({ length: n }, (_, i) => ({
    storageHost: `10.0.0.${11 + (i % 3)}`,
    path: `/b${i}/brick`,
  })),
  options: [],
  ...over,
})

t.test('volume create: one batch, gluster timeout', async (t) => {
  const { runner, executor } = setup()
  await executor.volumeCreate(volume(6, { options: ['', 'a b'] }))
  t.equal(runner.batches.length, 1)
  t.equal(runner.batches[0].opts.timeoutMinutes, 11)
  t.same(runner.batches[0].commands.slice(2), [
    `${G} volume set 'vol_a1' 'a' 'b'`,
    `${G} volume set 'vol_a1' 'user.heketi.id' 'a0000000000000000000000000000001'`,
    `${G} volume start 'vol_a1'`,
  ])
})

t.test("volume expand: the add-brick batch only (the rebalance is the tracker's)", async (t) => {
  const a = setup()
  await a.executor.volumeExpand(volume(3))
  t.same(
    a.runner.batches.map((b) => b.commands),
    [[`${G} volume add-brick 'vol_a1' '10.0.0.11:/b0/brick' '10.0.0.12:/b1/brick' '10.0.0.13:/b2/brick' `]],
  )
  t.equal(a.executor.rebalanceOnExpansion, true)
  t.equal(setup([], { rebalanceOnExpansion: false }).executor.rebalanceOnExpansion, false)
})

/** gluster 10's `volume rebalance <vol> status --xml` (two nodes) */
function rebalanceXml(statuses: [number, string][], aggregate: [number, string]) {
  const row = ([status, text]: [number, string], i: number) =>
    `<node><nodeName>n${i}</nodeName><id>u${i}</id><files>${i + 1}</files><size>0</size><lookups>3</lookups><failures>0</failures><skipped>0</skipped><status>${status}</status><statusStr>${text}</statusStr><runtime>${i}.50</runtime></node>`
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volRebalance><task-id>t1</task-id><op>3</op><nodeCount>${statuses.length}</nodeCount>${statuses.map(row).join('')}<aggregate><files>3</files><size>0</size><lookups>6</lookups><failures>0</failures><skipped>0</skipped><status>${aggregate[0]}</status><statusStr>${aggregate[1]}</statusStr><runtime>1.50</runtime></aggregate></volRebalance></cliOutput>`
}

t.test('rebalance start: accepted, already running, refused', async (t) => {
  const a = setup()
  await a.executor.rebalanceStart(H, 'vol_a1')
  t.same(a.runner.commands(), [`${G} volume rebalance 'vol_a1' start`])
  const again = setup([
    [
      'rebalance',
      { exitCode: 1, stderr: 'volume rebalance: vol_a1: failed: Rebalance on vol_a1 is already started' },
    ],
  ])
  await again.executor.rebalanceStart(H, 'vol_a1')
  const refused = setup([
    [
      'rebalance',
      { exitCode: 1, stderr: 'volume rebalance: vol_a1: failed: Another transaction is in progress' },
    ],
  ])
  await t.rejects(refused.executor.rebalanceStart(H, 'vol_a1'), {
    message:
      'Unable to start rebalance of volume vol_a1: volume rebalance: vol_a1: failed: Another transaction is in progress',
    host: H,
  })
  const lost = setup([['rebalance', new Error('SSH command timeout')]])
  await t.rejects(lost.executor.rebalanceStart(H, 'vol_a1'), { message: /SSH command timeout/ })
})

t.test('rebalance status: XML per node, never started, refused', async (t) => {
  const running = setup([
    [
      'status',
      {
        stdout: rebalanceXml(
          [
            [3, 'completed'],
            [1, 'in progress'],
          ],
          [1, 'in progress'],
        ),
      },
    ],
  ])
  t.same(await running.executor.rebalanceStatus(H, 'vol_a1'), {
    state: 'in progress',
    running: true,
    done: false,
    failed: false,
    files: 3,
    failures: 0,
    runtimeSec: 1.5,
  })
  t.same(running.runner.commands(), [`${G} volume rebalance 'vol_a1' status --xml`])
  const done = setup([
    [
      'status',
      {
        stdout: rebalanceXml(
          [
            [3, 'completed'],
            [3, 'completed'],
          ],
          [3, 'completed'],
        ),
      },
    ],
  ])
  t.match(await done.executor.rebalanceStatus(H, 'vol_a1'), {
    state: 'completed',
    running: false,
    done: true,
    failed: false,
  })
  const failed = setup([
    [
      'status',
      {
        stdout: rebalanceXml(
          [
            [3, 'completed'],
            [4, 'failed'],
          ],
          [4, 'failed'],
        ),
      },
    ],
  ])
  t.match(await failed.executor.rebalanceStatus(H, 'vol_a1'), { state: 'failed', done: true, failed: true })
  const never = setup([
    [
      'status',
      {
        exitCode: 1,
        stdout:
          '<cliOutput><opRet>-1</opRet><opErrno>0</opErrno><opErrstr>Rebalance not started for volume vol_a1.</opErrstr></cliOutput>',
      },
    ],
  ])
  t.match(await never.executor.rebalanceStatus(H, 'vol_a1'), {
    state: 'not started',
    running: false,
    done: false,
  })
  const refused = setup([['status', { exitCode: 1, stderr: 'Volume vol_a1 does not exist' }]])
  await t.rejects(refused.executor.rebalanceStatus(H, 'vol_a1'), {
    message: 'Unable to get rebalance status of volume vol_a1: Volume vol_a1 does not exist',
  })
  const garbage = setup([['status', { stdout: 'not xml' }]])
  await t.rejects(garbage.executor.rebalanceStatus(H, 'vol_a1'), {
    message: /Unable to determine rebalance status/,
  })
})

t.test('rebalance stop: stopped, nothing running, refused while running', async (t) => {
  const a = setup()
  await a.executor.rebalanceStop(H, 'vol_a1')
  t.same(a.runner.commands(), [`${G} volume rebalance 'vol_a1' stop`])
  const over = setup([
    [/ stop$/, { exitCode: 1, stderr: 'rebalance not running' }],
    ['status', { stdout: rebalanceXml([[3, 'completed']], [3, 'completed']) }],
  ])
  await over.executor.rebalanceStop(H, 'vol_a1')
  const stuck = setup([
    [/ stop$/, { exitCode: 1, stderr: 'locked' }],
    ['status', { stdout: rebalanceXml([[1, 'in progress']], [1, 'in progress']) }],
  ])
  await t.rejects(stuck.executor.rebalanceStop(H, 'vol_a1'), {
    message: 'Unable to stop rebalance of volume vol_a1: locked',
  })
})

t.test('volume destroy', async (t) => {
  const a = setup([['stop', { exitCode: 1, stderr: 'not started' }]])
  await a.executor.volumeDestroy(H, 'vol_a1')
  t.same(
    a.runner.batches.map((b) => b.commands),
    [[`${G} volume stop 'vol_a1' force`], [`${G} volume delete 'vol_a1'`]],
  )
  const gone = setup([
    ['volume', { exitCode: 1, stderr: 'volume delete: vol_a1: failed: Volume vol_a1 does not exist' }],
  ])
  await gone.executor.volumeDestroy(H, 'vol_a1')
  const busy = setup([['delete', { exitCode: 1, stderr: 'volume delete: vol_a1: failed: busy' }]])
  await t.rejects(busy.executor.volumeDestroy(H, 'vol_a1'), {
    message: 'Unable to delete volume vol_a1: volume delete: vol_a1: failed: busy',
  })
})

const INFO_XML = (
  name: string,
) => `<?xml version="1.0"?><cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/>
<volInfo><volumes><volume><name>${name}</name><id>11111111-2222-3333-4444-555555555555</id><status>1</status>
<bricks><brick uuid="u1">h1:/run/gluster/snaps/x/brick1/brick<name>h1:/run/gluster/snaps/x/brick1/brick</name><hostUuid>u1</hostUuid><isArbiter>0</isArbiter></brick></bricks>
<options><option><name>user.heketi.id</name><value>abc</value></option></options></volume><count>1</count></volumes></volInfo></cliOutput>`

t.test('volume info and its errors', async (t) => {
  const ok = setup([['info', { stdout: INFO_XML('vol_a1') }]])
  const info = await ok.executor.volumeInfo(H, 'vol_a1')
  t.equal(info.bricks[0].name, 'h1:/run/gluster/snaps/x/brick1/brick')
  t.same(ok.runner.commands(), [`${G} volume info 'vol_a1' --xml`])
  const exit = setup([['info', { exitCode: 1, stdout: '' }]])
  await t.rejects(exit.executor.volumeInfo(H, 'vol_a1'), {
    message: 'Unable to get volume info of volume name: vol_a1',
  })
  const junk = setup([['info', { stdout: 'No volumes present' }]])
  await t.rejects(junk.executor.volumeInfo(H, 'vol_a1'), {
    message: 'Unable to determine volume info of volume name: vol_a1',
  })
  const opErr = setup([
    [
      'info',
      { stdout: '<cliOutput><opRet>-1</opRet><opErrstr>Volume vol_a1 does not exist</opErrstr></cliOutput>' },
    ],
  ])
  await t.rejects(opErr.executor.volumeInfo(H, 'vol_a1'), {
    message: 'Unable to get info for vol_a1: Volume vol_a1 does not exist',
  })
})

t.test('heal info and replace-brick', async (t) => {
  const heal = setup([
    [
      'heal',
      {
        stdout:
          '<cliOutput><opRet>0</opRet><healInfo><bricks><brick hostUuid="u"><name>h:/p</name><status>Connected</status><numberOfEntries>2</numberOfEntries></brick></bricks></healInfo></cliOutput>',
      },
    ],
  ])
  t.same(await heal.executor.healInfo(H, 'vol_a1'), [
    { name: 'h:/p', status: 'Connected', numberOfEntries: '2' },
  ])
  const healFails = setup([['heal', { exitCode: 1, stderr: 'Volume vol_a1 is not started' }]])
  await t.rejects(healFails.executor.healInfo(H, 'vol_a1'), {
    message: 'Unable to get heal info of volume : vol_a1 : Volume vol_a1 is not started',
  })
  const healJunk = setup([['heal', { stdout: '<oops' }]])
  await t.rejects(healJunk.executor.healInfo(H, 'vol_a1'), {
    message: /^Unable to determine heal info of volume : vol_a1 : /,
  })

  const replace = setup([['replace-brick', { exitCode: 1, stderr: 'whatever' }]])
  await t.rejects(
    replace.executor.replaceBrick(
      H,
      'vol_a1',
      { storageHost: 'h1', path: '/a/brick' },
      { storageHost: 'h2', path: '/b/brick' },
    ),
    {
      message: 'Unable to replace brick h1:/a/brick with h2:/b/brick for volume vol_a1',
    },
  )
  t.same(replace.runner.commands(), [
    `${G} volume replace-brick 'vol_a1' 'h1:/a/brick' 'h2:/b/brick' commit force`,
  ])
})

const snapXml = (extra = '') =>
  `<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr/>${extra}</cliOutput>`

t.test('clone: snapshot, activate, clone, start, info, deactivate, delete', async (t) => {
  const { runner, executor } = setup([
    [' --xml ', { stdout: snapXml() }],
    ['volume info', { stdout: INFO_XML('clone_1') }],
  ])
  const info = await executor.volumeClone({
    host: H,
    source: 'vol_a1',
    clone: 'clone_1',
    snapshotId: 'c0ffee',
  })
  t.equal(info.name, 'clone_1')
  t.same(
    runner.batches.map((b) => b.commands.join('; ')),
    [
      `${G} --xml snapshot create 'tmpsnap_c0ffee' 'vol_a1' no-timestamp`,
      `${G} --xml snapshot activate 'tmpsnap_c0ffee'`,
      `${G} --xml snapshot clone 'clone_1' 'tmpsnap_c0ffee'`,
      `${G} --xml volume start 'clone_1'`,
      `${G} volume info 'clone_1' --xml`,
      `${G} --xml snapshot deactivate 'tmpsnap_c0ffee'`,
      `${G} --xml snapshot delete 'tmpsnap_c0ffee'`,
    ],
  )
})

t.test('clone: failures', async (t) => {
  const create = setup([
    [
      'snapshot create',
      { stdout: '<cliOutput><opRet>-1</opRet><opErrstr>quorum not met</opErrstr></cliOutput>' },
    ],
  ])
  await t.rejects(
    create.executor.volumeClone({ host: H, source: 'vol_a1', clone: 'clone_1', snapshotId: 'c0ffee' }),
    {
      message: 'Failed to create snapshot of volume vol_a1: quorum not met',
    },
  )
  t.equal(create.runner.batches.length, 1)

  const start = setup([
    ['volume start', { exitCode: 1, stderr: 'start failed' }],
    [' --xml ', { stdout: snapXml() }],
  ])
  await t.rejects(
    start.executor.volumeClone({ host: H, source: 'vol_a1', clone: 'clone_1', snapshotId: 'c0ffee' }),
    {
      message: 'Unable to start volume clone_1, clone of snapshot tmpsnap_c0ffee: start failed',
    },
  )
  t.same(start.runner.commands().slice(3), [
    `${G} --xml volume start 'clone_1'`,
    `${G} volume stop 'clone_1' force`,
    `${G} volume delete 'clone_1'`,
    `${G} --xml snapshot deactivate 'tmpsnap_c0ffee'`,
    `${G} --xml snapshot delete 'tmpsnap_c0ffee'`,
  ])

  const activate = setup([
    ['activate', { exitCode: 1, stderr: 'no' }],
    [' --xml ', { stdout: snapXml() }],
  ])
  await t.rejects(
    activate.executor.volumeClone({ host: H, source: 'vol_a1', clone: 'clone_1', snapshotId: 'c0ffee' }),
    {
      message: 'Unable to activate snapshot tmpsnap_c0ffee: no',
    },
  )
  t.same(activate.runner.commands().slice(2), [`${G} --xml snapshot delete 'tmpsnap_c0ffee'`])
})

t.test('unsafe input never reaches a node', async (t) => {
  const { runner, executor } = setup()
  await t.rejects(executor.volumeDestroy(H, 'vol; reboot'), { name: 'UnsafeCommandArgumentError' })
  await t.rejects(executor.deviceSetup({ host: H, device: '/dev/sdb;x', deviceId: DID, destroyData: false }))
  await t.rejects(executor.volumeCreate(volume(3, { options: ['a $(id)'] })))
  t.equal(runner.calls.length, 0)
})

t.test('recording runner: stops at first failure, serializes per host', async (t) => {
  const order: string[] = []
  const runner = new RecordingRunner(async (host, command) => {
    order.push(`${host}:${command}:start`)
    await new Promise((r) => setTimeout(r, command === 'slow' ? 20 : 1))
    order.push(`${host}:${command}:end`)
    return command === 'fail' ? { exitCode: 2, stderr: 'x' } : { stdout: command }
  })
  const [a, b] = await Promise.all([
    runner.runBatch('h', ['slow', 'fail', 'never'], { timeoutMinutes: 1 }),
    runner.runBatch('h', ['second'], { timeoutMinutes: 1 }),
  ])
  t.same(
    a.map((r) => r.exitCode),
    [0, 2],
  )
  t.same(b, [{ command: 'second', exitCode: 0, stdout: 'second', stderr: '' }])
  t.same(order, [
    'h:slow:start',
    'h:slow:end',
    'h:fail:start',
    'h:fail:end',
    'h:second:start',
    'h:second:end',
  ])
  t.same(runner.commands('h'), ['slow', 'fail', 'second'])
})

t.test('debug log: every command, output only when not quiet', async (t) => {
  const lines: string[] = []
  const runner = new RecordingRunner(
    rules(['systemctl', { stdout: 'secret-ish' }], ['peer', { stdout: 'peer ok' }]),
  )
  const executor = new RemoteExecutor(runner, DEFAULT_REMOTE_EXECUTOR_CONFIG, {
    logger: { warn() {}, debug: (m) => lines.push(m) },
  })
  await executor.glusterdCheck(H)
  await executor.peerProbe(H, '10.0.0.12')
  t.match(lines.join('\n'), /running systemctl status glusterd/)
  t.notMatch(lines.join('\n'), /secret-ish/)
  t.match(lines.join('\n'), /peer ok/)
})
