// Byte-exact command strings against heketi-node-commands.md.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  blockCreateCommand,
  blockDeleteCommand,
  blockInfoCommand,
  blockListCommand,
  blockModifySizeCommand,
} from '../executors/commands/block.ts'
import {
  type BrickSpec,
  brickCreateCommands,
  brickMountPoint,
  fstabRemoveCommand,
  isGlusterSnapshotMount,
  lvremoveCommand,
  thinPoolCountCommand,
  umountCommand,
} from '../executors/commands/brick.ts'
import {
  deviceIdentityCommands,
  deviceSetupCommands,
  pvremoveCommand,
  rmdirDeviceMountsCommand,
  teardownPath,
  vgdisplayCommand,
  vgremoveCommand,
  vgsIdentityCommand,
} from '../executors/commands/device.ts'
import {
  batchTimeoutsMinutes,
  glusterPrefix,
  lvmPrefix,
  udevadmPrefix,
} from '../executors/commands/prefix.ts'
import { DEFAULT_REMOTE_EXECUTOR_CONFIG as D, type RemoteExecutorConfig } from '../executors/config.ts'
import { brickFixture } from './helpers/brick.ts'

const DID = '9f8e7d6c5b4a39281706f5e4d3c2b1a0'
const BID = '0c1d2e3f405162738495a6b7c8d9eaf0'
const MNT = `/var/lib/heketi/mounts/vg_${DID}/brick_${BID}`
const AWK = 'BEGIN {print ARGV[1], ARGV[2], "xfs", ARGV[3], "1", "2" >> ARGV[4]}'
const cfg = (over: Partial<RemoteExecutorConfig> = {}): RemoteExecutorConfig => ({ ...D, ...over })

const brick = (over: Partial<BrickSpec> = {}): BrickSpec => brickFixture(DID, BID, over)

t.test('prefixes and timeouts', async (t) => {
  t.equal(glusterPrefix(cfg()), "gluster --mode=script --timeout='600'")
  t.equal(glusterPrefix(cfg({ glusterCliTimeoutSec: 120 })), "gluster --mode=script --timeout='120'")
  t.equal(lvmPrefix(cfg()), '/usr/sbin/lvm')
  t.equal(udevadmPrefix(cfg()), '/usr/bin/udevadm')
  t.equal(lvmPrefix(cfg({ lvmWrapper: '/usr/sbin/exec-on-host' })), "'/usr/sbin/exec-on-host' /usr/sbin/lvm")
  t.equal(lvmPrefix(cfg({ lvmWrapper: 'nsenter -t 1 -m' })), "'nsenter' '-t' '1' '-m' /usr/sbin/lvm")
  t.equal(
    udevadmPrefix(cfg({ lvmWrapper: '/usr/sbin/exec-on-host' })),
    "'/usr/sbin/exec-on-host' /usr/bin/udevadm",
  )
  t.throws(() => lvmPrefix(cfg({ lvmWrapper: 'x; rm -rf /' })), /invalid lvm wrapper/)
  t.throws(() => lvmPrefix(cfg({ lvmWrapper: '-x' })), /invalid lvm wrapper/)
  t.same(batchTimeoutsMinutes(cfg()), {
    gluster: 11,
    examiner: 11,
    glusterdCheck: 10,
    brickCreate: 10,
    glusterBlock: 10,
    device: 5,
    brickDestroy: 5,
  })
  t.equal(batchTimeoutsMinutes(cfg({ glusterCliTimeoutSec: 60 })).gluster, 10)
  t.equal(batchTimeoutsMinutes(cfg({ glusterCliTimeoutSec: 1200 })).gluster, 21)
})

t.test('device setup, identity, size, teardown', async (t) => {
  t.same(deviceSetupCommands(cfg(), DID, '/dev/sdb', false), [
    `/usr/sbin/lvm pvcreate -qq --metadatasize=128M --dataalignment='256K' '/dev/sdb'`,
    `/usr/sbin/lvm vgcreate -qq --physicalextentsize='4M' --autobackup=n 'vg_${DID}' '/dev/sdb'`,
  ])
  t.same(deviceSetupCommands(cfg({ backupLvmMetadata: true, lvmWrapper: '/w' }), DID, '/dev/sdb', true), [
    "wipefs --all '/dev/sdb'",
    `'/w' /usr/sbin/lvm pvcreate -qq --metadatasize=128M --dataalignment='256K' '/dev/sdb'`,
    `'/w' /usr/sbin/lvm vgcreate -qq --physicalextentsize='4M' --autobackup=y 'vg_${DID}' '/dev/sdb'`,
  ])
  t.same(deviceIdentityCommands(cfg(), '/dev/sdb'), [
    "/usr/sbin/lvm pvs -o pv_name,pv_uuid,vg_name --reportformat=json '/dev/sdb'",
    "/usr/bin/udevadm info --query=symlink --name='/dev/sdb'",
  ])
  t.equal(vgdisplayCommand(cfg(), DID), `/usr/sbin/lvm vgdisplay -c 'vg_${DID}'`)
  t.equal(
    vgsIdentityCommand(cfg(), DID),
    `/usr/sbin/lvm vgs -o pv_name,pv_uuid,vg_name --reportformat=json 'vg_${DID}'`,
  )
  t.equal(vgremoveCommand(cfg(), DID), `/usr/sbin/lvm vgremove -qq 'vg_${DID}'`)
  t.equal(
    pvremoveCommand(cfg(), '/dev/disk/by-id/lvm-pv-uuid-AbCd-12'),
    `/usr/sbin/lvm pvremove -qq '/dev/disk/by-id/lvm-pv-uuid-AbCd-12'`,
  )
  t.equal(rmdirDeviceMountsCommand(DID), `rmdir '/var/lib/heketi/mounts/vg_${DID}'`)
  t.equal(teardownPath('AbCd-12', ['/dev/disk/by-path/x'], '/dev/sdb'), '/dev/disk/by-id/lvm-pv-uuid-AbCd-12')
  t.equal(teardownPath('', ['/dev/disk/by-path/x'], '/dev/sdb'), '/dev/disk/by-path/x')
  t.equal(teardownPath('', [], '/dev/sdb'), '/dev/sdb')
})

t.test('brick create: data brick with defaults', async (t) => {
  t.same(brickCreateCommands(cfg(), brick()), [
    `mkdir -p '${MNT}'`,
    `/usr/sbin/lvm lvcreate -qq --autobackup=n --poolmetadatasize '8192K' --chunksize '256K' --size '1052672K' --thin 'vg_${DID}/tp_${BID}' --virtualsize '1048576K' --name 'brick_${BID}'`,
    `mkfs.xfs -i size=512 -n size=8192 '/dev/mapper/vg_${DID}-brick_${BID}'`,
    `awk '${AWK}' '/dev/mapper/vg_${DID}-brick_${BID}' '${MNT}' 'rw,inode64,noatime,nouuid' '/etc/fstab'`,
    `mount -o 'rw,inode64,noatime,nouuid' '/dev/mapper/vg_${DID}-brick_${BID}' '${MNT}'`,
    `mkdir '${MNT}/brick'`,
  ])
})

t.test('brick create: awk appends the spec fstab line byte for byte', async (t) => {
  const [, , , awk] = brickCreateCommands(cfg({ fstab: '/tmp/heqet-fstab-probe' }), brick())
  const dir = mkdtempSync(join(tmpdir(), 'heqet-fstab-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fstab = join(dir, 'fstab')
  const run = spawnSync('/bin/bash', ['-c', awk!.replace('/tmp/heqet-fstab-probe', fstab)], {
    encoding: 'utf8',
  })
  t.equal(run.status, 0, run.stderr)
  const spec =
    '/dev/mapper/vg_X-brick_Y /var/lib/heketi/mounts/vg_X/brick_Y xfs rw,inode64,noatime,nouuid 1 2\n'
  t.equal(readFileSync(fstab, 'utf8'), spec.replaceAll('X', DID).replaceAll('Y', BID))
})

t.test('brick create: stored thin pool and LV names are used verbatim', async (t) => {
  const tp = 'tp_ffffffffffffffffffffffffffffffff'
  const commands = brickCreateCommands(cfg(), brick({ lvmThinPool: tp, lvmLv: 'custom_lv' }))
  t.match(commands[1], ` --thin 'vg_${DID}/${tp}' --virtualsize '1048576K' --name 'custom_lv'`)
  t.equal(commands[2], `mkfs.xfs -i size=512 -n size=8192 '/dev/mapper/vg_${DID}-custom_lv'`)
})

t.test('brick create: su/sw, arbiter, gid, mount options, fstab, wrapper, autobackup', async (t) => {
  const suSw = brickCreateCommands(cfg({ xfsSu: 64, xfsSw: 4 }), brick())
  t.equal(suSw[2], `mkfs.xfs -i size=512 -d 'su=64,sw=4' -n size=8192 '/dev/mapper/vg_${DID}-brick_${BID}'`)
  const onlySu = brickCreateCommands(cfg({ xfsSu: 64 }), brick())
  t.equal(onlySu[2], `mkfs.xfs -i size=512 -n size=8192 '/dev/mapper/vg_${DID}-brick_${BID}'`)

  const arbiter = brickCreateCommands(
    cfg({ xfsSu: 64, xfsSw: 4, lvChunkSize: '512K' }),
    brick({ arbiter: true }),
  )
  t.match(arbiter[1], " --chunksize '256K' ")
  t.equal(arbiter[2], `mkfs.xfs -i maxpct=100 -n size=8192 '/dev/mapper/vg_${DID}-brick_${BID}'`)
  const data = brickCreateCommands(cfg({ lvChunkSize: '512K' }), brick())
  t.match(data[1], " --chunksize '512K' ")

  const withGid = brickCreateCommands(cfg(), brick({ gid: 2001 }))
  t.same(withGid.slice(-3), [
    `mkdir '${MNT}/brick'`,
    `chown ':2001' '${MNT}/brick'`,
    `chmod 2775 '${MNT}/brick'`,
  ])
  t.equal(brickCreateCommands(cfg(), brick({ gid: 0 })).length, 6)

  const custom = brickCreateCommands(
    cfg({ mountOpts: 'rw,noatime', fstab: '/etc/heketi/fstab', lvmWrapper: '/w', backupLvmMetadata: true }),
    brick(),
  )
  t.equal(
    custom[3],
    `awk '${AWK}' '/dev/mapper/vg_${DID}-brick_${BID}' '${MNT}' 'rw,noatime' '/etc/heketi/fstab'`,
  )
  t.equal(custom[4], `mount -o 'rw,noatime' '/dev/mapper/vg_${DID}-brick_${BID}' '${MNT}'`)
  t.match(custom[1], /^'\/w' \/usr\/sbin\/lvm lvcreate -qq --autobackup=y /)
})

t.test('brick destroy commands', async (t) => {
  t.equal(brickMountPoint(`${MNT}/brick`), MNT)
  t.equal(umountCommand(MNT), `umount '${MNT}'`)
  t.equal(fstabRemoveCommand(cfg(), BID), `sed -i.save '/brick_${BID}/d' '/etc/fstab'`)
  t.equal(
    lvremoveCommand(cfg(), DID, `brick_${BID}`),
    `/usr/sbin/lvm lvremove --autobackup=n -f 'vg_${DID}/brick_${BID}'`,
  )
  t.equal(
    thinPoolCountCommand(cfg(), DID, `tp_${BID}`),
    `/usr/sbin/lvm lvs --noheadings --options=thin_count 'vg_${DID}/tp_${BID}'`,
  )
  t.ok(isGlusterSnapshotMount('/run/gluster/snaps/abc/brick1'))
  t.ok(isGlusterSnapshotMount('/var/run/gluster/snaps/abc/brick1'))
  t.notOk(isGlusterSnapshotMount(MNT))
})

t.test('gluster-block commands', async (t) => {
  t.equal(
    blockCreateCommand(cfg(), {
      hostingVolume: 'vol_1',
      name: 'bv1',
      haCount: 3,
      auth: true,
      hosts: ['10.0.0.1', '10.0.0.2', 'n3.example.com'],
      sizeGiB: 5,
    }),
    "gluster-block create 'vol_1/bv1' ha '3' auth enable prealloc 'full' '10.0.0.1,10.0.0.2,n3.example.com' '5GiB' --json",
  )
  t.equal(
    blockCreateCommand(cfg({ blockPrealloc: 'no' }), {
      hostingVolume: 'v',
      name: 'b',
      haCount: 1,
      auth: false,
      hosts: ['h1'],
      sizeGiB: 1,
    }),
    "gluster-block create 'v/b' ha '1' auth disable prealloc 'no' 'h1' '1GiB' --json",
  )
  t.equal(blockDeleteCommand('vol_1', 'bv1'), "gluster-block delete 'vol_1/bv1' --json")
  t.equal(blockModifySizeCommand('vol_1', 'bv1', 10), "gluster-block modify 'vol_1/bv1'  size '10GiB' --json")
  t.equal(blockInfoCommand('vol_1', 'bv1'), "gluster-block info 'vol_1/bv1' --json")
  t.equal(blockListCommand('vol_1'), "gluster-block list 'vol_1' --json")
})

t.test('builders refuse unsafe values', async (t) => {
  const bad: [string, () => unknown][] = [
    ['device with quote', () => deviceSetupCommands(cfg(), DID, "/dev/sdb'; reboot", false)],
    ['device with space', () => deviceSetupCommands(cfg(), DID, '/dev/sdb x', false)],
    ['relative device', () => deviceSetupCommands(cfg(), DID, 'dev/sdb', false)],
    ['device with ..', () => pvremoveCommand(cfg(), '/dev/../etc/passwd')],
    ['device outside /dev', () => pvremoveCommand(cfg(), '/etc/passwd')],
    ['device not normalized', () => pvremoveCommand(cfg(), '/dev//sdb')],
    ['device with trailing slash', () => pvremoveCommand(cfg(), '/dev/sdb/')],
    ['gid out of range', () => brickCreateCommands(cfg(), brick({ gid: 2147483647 }))],
    ['short id', () => vgdisplayCommand(cfg(), 'abc')],
    ['upper-case id', () => vgdisplayCommand(cfg(), DID.toUpperCase())],
    ['brick path outside /brick', () => brickCreateCommands(cfg(), brick({ path: MNT }))],
    ['brick path injection', () => brickCreateCommands(cfg(), brick({ path: `${MNT}$(id)/brick` }))],
    ['negative gid', () => brickCreateCommands(cfg(), brick({ gid: -1 }))],
    ['fractional size', () => brickCreateCommands(cfg(), brick({ sizeKiB: 1.5 }))],
    ['mount options injection', () => brickCreateCommands(cfg({ mountOpts: 'rw;reboot' }), brick())],
    ['fstab injection', () => fstabRemoveCommand(cfg({ fstab: '/etc/fstab;x' }), BID)],
    ['chunk size', () => brickCreateCommands(cfg({ lvChunkSize: '256K --x' }), brick())],
    ['lv name', () => lvremoveCommand(cfg(), DID, 'a/b')],
    [
      'block host',
      () =>
        blockCreateCommand(cfg(), {
          hostingVolume: 'v',
          name: 'b',
          haCount: 1,
          auth: false,
          hosts: ['h;x'],
          sizeGiB: 1,
        }),
    ],
    [
      'block prealloc',
      () =>
        blockCreateCommand(cfg({ blockPrealloc: 'a b' }), {
          hostingVolume: 'v',
          name: 'b',
          haCount: 1,
          auth: false,
          hosts: ['h'],
          sizeGiB: 1,
        }),
    ],
  ]
  for (const [what, build] of bad) t.throws(build, { name: 'UnsafeCommandArgumentError' }, what)
})
