// Settings of the remote executors (ssh, kube) with heketi's defaults and its
// HEKETI_* environment overrides. The input is heketi.json's `sshexec` or
// `kubeexec` object with keys already lower-cased (Go matches JSON keys
// case-insensitively, so the config loader normalises them before calling).

import {
  assertLvmSize,
  assertMountOptions,
  assertPath,
  assertWrapperWords,
  UnsafeCommandArgumentError,
} from './commands/validate.ts'

export interface RemoteExecutorConfig {
  /** file that receives brick mount lines */
  fstab: string
  mountOpts: string
  /** LVM `--autobackup=y` instead of `n` */
  backupLvmMetadata: boolean
  /** `--timeout=` of every gluster CLI call, in seconds */
  glusterCliTimeoutSec: number
  pvDataAlignment: string
  vgPhysicalExtentSize: string
  lvChunkSize: string
  /** mkfs.xfs stripe width / unit, used only when both are non-zero */
  xfsSw: number
  xfsSu: number
  debugUmountFailures: boolean
  /** gluster-block `prealloc` value */
  blockPrealloc: string
  /** prefix of the lvm and udevadm binaries; '' = none */
  lvmWrapper: string
  /** > 0: set gluster snap-max-hard-limit after every peer probe */
  snapshotLimit: number
  rebalanceOnExpansion: boolean
  /** prefix `sudo ` to every command (ssh only) */
  sudo: boolean
}

export interface SshConfig {
  keyfile: string
  user: string
  port: number
  sudo: boolean
}

export const DEFAULT_REMOTE_EXECUTOR_CONFIG: Readonly<RemoteExecutorConfig> = Object.freeze({
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

export const DEFAULT_SSH_USER = 'heketi'
export const DEFAULT_SSH_PORT = 22

const BLOCK_PREALLOC_PATTERN = /^[a-zA-Z0-9-_]+$/

export type Env = Record<string, string | undefined>
export type ConfigWarn = (message: string) => void

/** Go's JSON decoder rejects a type mismatch; so do we (start-up error). */
export class ExecutorConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ExecutorConfigError'
  }
}

type Json = Record<string, unknown>

function str(json: Json, key: string): string {
  const v = json[key]
  if (v === undefined || v === null) return ''
  if (typeof v !== 'string')
    throw new ExecutorConfigError(`json: cannot use ${typeof v} as string for ${key}`)
  return v
}

function bool(json: Json, key: string): boolean {
  const v = json[key]
  if (v === undefined || v === null) return false
  if (typeof v !== 'boolean') throw new ExecutorConfigError(`json: cannot use ${typeof v} as bool for ${key}`)
  return v
}

function uint(json: Json, key: string): number {
  const v = json[key]
  if (v === undefined || v === null) return 0
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new ExecutorConfigError(`json: cannot use ${JSON.stringify(v)} as unsigned integer for ${key}`)
  }
  return v
}

/** Go's strconv.ParseBool */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false
  return undefined
}

function parseGoUint(text: string): number | undefined {
  return /^[0-9]+$/.test(text) ? Number(text) : undefined
}

export function remoteConfigFromHeketi(
  json: Json = {},
  env: Env = process.env,
  warn: ConfigWarn = () => {},
): RemoteExecutorConfig {
  const cfg: RemoteExecutorConfig = {
    fstab: str(json, 'fstab'),
    mountOpts: str(json, 'mountopts'),
    backupLvmMetadata: bool(json, 'backup_lvm_metadata'),
    glusterCliTimeoutSec: uint(json, 'gluster_cli_timeout'),
    pvDataAlignment: str(json, 'pv_data_alignment'),
    vgPhysicalExtentSize: str(json, 'vg_physicalextentsize'),
    lvChunkSize: str(json, 'lv_chunksize'),
    xfsSw: uint(json, 'xfs_sw'),
    xfsSu: uint(json, 'xfs_su'),
    debugUmountFailures: bool(json, 'debug_umount_failures'),
    blockPrealloc: str(json, 'block_prealloc'),
    lvmWrapper: str(json, 'lvm_wrapper'),
    snapshotLimit: uint(json, 'snapshot_limit'),
    // heketi ignores the JSON key and forces rebalancing on; only env disables it
    rebalanceOnExpansion: true,
    sudo: bool(json, 'sudo'),
  }

  const setString = (name: string, apply: (v: string) => void) => {
    const v = env[name]
    if (v) apply(v)
  }
  const setParsed = <T>(name: string, parse: (v: string) => T | undefined, apply: (v: T) => void) => {
    const v = env[name]
    if (!v) return
    const parsed = parse(v)
    if (parsed === undefined) warn(`Error: Parse ${name} failed, keeping the configured value`)
    else apply(parsed)
  }
  setString('HEKETI_FSTAB', (v) => {
    cfg.fstab = v
  })
  setString('HEKETI_MOUNT_OPTS', (v) => {
    cfg.mountOpts = v
  })
  setString('HEKETI_LVM_WRAPPER', (v) => {
    cfg.lvmWrapper = v
  })
  setString('HEKETI_BLOCK_VOLUME_DEFAULT_PREALLOC', (v) => {
    cfg.blockPrealloc = v
  })
  setParsed('HEKETI_SNAPSHOT_LIMIT', parseGoUint, (v) => {
    cfg.snapshotLimit = v
  })
  setParsed('HEKETI_GLUSTER_CLI_TIMEOUT', parseGoUint, (v) => {
    cfg.glusterCliTimeoutSec = v
  })
  setParsed('HEKETI_DEBUG_UMOUNT_FAILURES', parseGoBool, (v) => {
    cfg.debugUmountFailures = v
  })
  setParsed('HEKETI_GLUSTERAPP_REBALANCE_ON_EXPANSION', parseGoBool, (v) => {
    cfg.rebalanceOnExpansion = v
  })

  // heketi's defaults apply to absent, empty and zero values alike
  const d = DEFAULT_REMOTE_EXECUTOR_CONFIG
  cfg.fstab ||= d.fstab
  cfg.mountOpts ||= d.mountOpts
  cfg.glusterCliTimeoutSec ||= d.glusterCliTimeoutSec
  cfg.pvDataAlignment ||= d.pvDataAlignment
  cfg.vgPhysicalExtentSize ||= d.vgPhysicalExtentSize
  cfg.lvChunkSize ||= d.lvChunkSize
  if (!BLOCK_PREALLOC_PATTERN.test(cfg.blockPrealloc)) {
    if (cfg.blockPrealloc) warn(`invalid block_prealloc ${JSON.stringify(cfg.blockPrealloc)}, using full`)
    cfg.blockPrealloc = d.blockPrealloc
  }
  checkCommandValues(cfg)
  return cfg
}

/** the settings the command builders interpolate, refused at start rather than at every command */
function checkCommandValues(cfg: RemoteExecutorConfig): void {
  try {
    assertPath(cfg.fstab, 'fstab')
    assertMountOptions(cfg.mountOpts)
    assertWrapperWords(cfg.lvmWrapper)
    assertLvmSize(cfg.pvDataAlignment, 'pv_data_alignment')
    assertLvmSize(cfg.vgPhysicalExtentSize, 'vg_physicalextentsize')
    assertLvmSize(cfg.lvChunkSize, 'lv_chunksize')
  } catch (err) {
    if (!(err instanceof UnsafeCommandArgumentError)) throw err
    throw new ExecutorConfigError(
      `invalid ${err.what} ${JSON.stringify(err.value)} in the executor configuration`,
    )
  }
}

export function sshConfigFromHeketi(json: Json = {}, env: Env = process.env): SshConfig {
  let keyfile = str(json, 'keyfile')
  let user = str(json, 'user')
  // heketi declares port as a string; a number is accepted too
  const rawPort = json['port']
  let port = typeof rawPort === 'number' ? String(rawPort) : str(json, 'port')
  if (env['HEKETI_SSH_KEYFILE']) keyfile = env['HEKETI_SSH_KEYFILE']
  if (env['HEKETI_SSH_USER']) user = env['HEKETI_SSH_USER']
  if (env['HEKETI_SSH_PORT']) port = env['HEKETI_SSH_PORT']
  if (!keyfile) throw new ExecutorConfigError('Missing ssh private key file in configuration')
  const portNumber = port ? Number(port) : DEFAULT_SSH_PORT
  if (!Number.isInteger(portNumber) || portNumber <= 0 || portNumber > 65535) {
    throw new ExecutorConfigError(`invalid ssh port ${JSON.stringify(port)}`)
  }
  return { keyfile, user: user || DEFAULT_SSH_USER, port: portNumber, sudo: bool(json, 'sudo') }
}

/** GLUSTER_EXEC_TIMEOUT: batch timeout of gluster CLI families, in minutes */
export function glusterExecTimeoutMinutes(cfg: Pick<RemoteExecutorConfig, 'glusterCliTimeoutSec'>): number {
  return Math.max(10, 1 + Math.floor((cfg.glusterCliTimeoutSec + 1) / 60))
}
