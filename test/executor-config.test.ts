// sshexec/kubeexec settings: heketi's defaults and HEKETI_* overrides.
import t from 'tap'
import {
  DEFAULT_REMOTE_EXECUTOR_CONFIG,
  glusterExecTimeoutMinutes,
  parseGoBool,
  remoteConfigFromHeketi,
  sshConfigFromHeketi,
} from '../executors/config.ts'

t.test('defaults', async (t) => {
  t.same(remoteConfigFromHeketi({}, {}), {
    fstab: '/etc/fstab',
    mountOpts: 'rw,inode64,noatime,nouuid',
    backupLvmMetadata: false,
    glusterCliTimeoutSec: 600,
    pvDataAlignment: '256K',
    vgPhysicalExtentSize: '4M',
    lvChunkSize: '256K',
    xfsSw: 0,
    xfsSu: 0,
    debugUmountFailures: false,
    blockPrealloc: 'full',
    lvmWrapper: '',
    snapshotLimit: 0,
    rebalanceOnExpansion: true,
    sudo: false,
  })
  t.same(remoteConfigFromHeketi({ fstab: '', gluster_cli_timeout: 0 }, {}), DEFAULT_REMOTE_EXECUTOR_CONFIG)
  t.equal(glusterExecTimeoutMinutes({ glusterCliTimeoutSec: 600 }), 11)
  t.equal(glusterExecTimeoutMinutes({ glusterCliTimeoutSec: 60 }), 10)
})

t.test('JSON keys', async (t) => {
  const cfg = remoteConfigFromHeketi(
    {
      fstab: '/etc/heketi/fstab',
      mountopts: 'rw,noatime',
      backup_lvm_metadata: true,
      gluster_cli_timeout: 900,
      pv_data_alignment: '512K',
      vg_physicalextentsize: '8M',
      lv_chunksize: '1M',
      xfs_sw: 4,
      xfs_su: 64,
      debug_umount_failures: true,
      block_prealloc: 'no',
      lvm_wrapper: '/usr/sbin/exec-on-host',
      snapshot_limit: 14,
      rebalance_on_expansion: false,
      sudo: true,
    },
    {},
  )
  t.same(cfg, {
    fstab: '/etc/heketi/fstab',
    mountOpts: 'rw,noatime',
    backupLvmMetadata: true,
    glusterCliTimeoutSec: 900,
    pvDataAlignment: '512K',
    vgPhysicalExtentSize: '8M',
    lvChunkSize: '1M',
    xfsSw: 4,
    xfsSu: 64,
    debugUmountFailures: true,
    blockPrealloc: 'no',
    lvmWrapper: '/usr/sbin/exec-on-host',
    snapshotLimit: 14,
    rebalanceOnExpansion: true, // heketi forces it on; only the env can disable
    sudo: true,
  })
})

t.test('type mismatches are fatal, like Go decoding', async (t) => {
  t.throws(() => remoteConfigFromHeketi({ xfs_sw: 'stripe width' }, {}), { name: 'ExecutorConfigError' })
  t.throws(() => remoteConfigFromHeketi({ gluster_cli_timeout: '600' }, {}), { name: 'ExecutorConfigError' })
  t.throws(() => remoteConfigFromHeketi({ fstab: 1 }, {}), { name: 'ExecutorConfigError' })
  t.throws(() => remoteConfigFromHeketi({ sudo: 'yes' }, {}), { name: 'ExecutorConfigError' })
})

t.test('values the command builders would refuse are refused at start', async (t) => {
  for (const [json, text] of [
    [{ fstab: '/etc/fstab;reboot' }, 'invalid fstab "/etc/fstab;reboot" in the executor configuration'],
    [{ fstab: 'etc/fstab' }, 'invalid fstab "etc/fstab"'],
    [{ mountopts: '-o,rw' }, 'invalid mount options "-o,rw"'],
    [{ mountopts: 'rw noatime' }, 'invalid mount options "rw noatime"'],
    [{ lvm_wrapper: '--help' }, 'invalid lvm wrapper "--help"'],
    [{ lvm_wrapper: 'nsenter $(id)' }, 'invalid lvm wrapper "nsenter $(id)"'],
    [{ pv_data_alignment: '256K x' }, 'invalid pv_data_alignment "256K x"'],
    [{ lv_chunksize: '-1' }, 'invalid lv_chunksize "-1"'],
  ] as const) {
    t.throws(
      () => remoteConfigFromHeketi(json, {}),
      { name: 'ExecutorConfigError', message: text },
      JSON.stringify(json),
    )
  }
  t.throws(() => remoteConfigFromHeketi({}, { HEKETI_FSTAB: '/etc/fstab x' }), {
    name: 'ExecutorConfigError',
  })
  t.equal(remoteConfigFromHeketi({ lvm_wrapper: 'nsenter -t 1 -m' }, {}).lvmWrapper, 'nsenter -t 1 -m')
})

t.test('environment overrides', async (t) => {
  const warnings: string[] = []
  const cfg = remoteConfigFromHeketi(
    { snapshot_limit: 3, fstab: '/etc/fstab.json' },
    {
      HEKETI_FSTAB: '/var/lib/heketi/fstab',
      HEKETI_MOUNT_OPTS: 'rw',
      HEKETI_SNAPSHOT_LIMIT: 'many',
      HEKETI_GLUSTER_CLI_TIMEOUT: '1200',
      HEKETI_DEBUG_UMOUNT_FAILURES: 'T',
      HEKETI_BLOCK_VOLUME_DEFAULT_PREALLOC: 'bad value',
      HEKETI_LVM_WRAPPER: '/usr/sbin/exec-on-host',
      HEKETI_GLUSTERAPP_REBALANCE_ON_EXPANSION: 'false',
    },
    (m) => warnings.push(m),
  )
  t.equal(cfg.fstab, '/var/lib/heketi/fstab')
  t.equal(cfg.mountOpts, 'rw')
  t.equal(cfg.snapshotLimit, 3, 'unparsable value keeps the configured one')
  t.equal(cfg.glusterCliTimeoutSec, 1200)
  t.equal(cfg.debugUmountFailures, true)
  t.equal(cfg.blockPrealloc, 'full', 'invalid prealloc falls back to full')
  t.equal(cfg.lvmWrapper, '/usr/sbin/exec-on-host')
  t.equal(cfg.rebalanceOnExpansion, false)
  t.equal(warnings.length, 2)
  t.equal(
    remoteConfigFromHeketi({}, { HEKETI_GLUSTERAPP_REBALANCE_ON_EXPANSION: 'nope' }).rebalanceOnExpansion,
    true,
  )
})

t.test('Go bool syntax', async (t) => {
  for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) t.equal(parseGoBool(v), true, v)
  for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False']) t.equal(parseGoBool(v), false, v)
  for (const v of ['yes', 'tRUE', '']) t.equal(parseGoBool(v), undefined, v)
})

t.test('ssh settings', async (t) => {
  t.same(sshConfigFromHeketi({ keyfile: '/k' }, {}), { keyfile: '/k', user: 'heketi', port: 22, sudo: false })
  t.same(sshConfigFromHeketi({ keyfile: '/k', user: 'root', port: '2222', sudo: true }, {}), {
    keyfile: '/k',
    user: 'root',
    port: 2222,
    sudo: true,
  })
  t.same(
    sshConfigFromHeketi(
      { keyfile: '/k', user: 'root', port: '2222' },
      { HEKETI_SSH_KEYFILE: '/e', HEKETI_SSH_USER: 'admin', HEKETI_SSH_PORT: '22022' },
    ),
    { keyfile: '/e', user: 'admin', port: 22022, sudo: false },
  )
  t.throws(() => sshConfigFromHeketi({}, {}), { message: 'Missing ssh private key file in configuration' })
  t.throws(() => sshConfigFromHeketi({ keyfile: '/k', port: 'ssh' }, {}), /invalid ssh port/)
})
