// Binary prefixes and batch timeouts shared by the command builders
// (heketi node commands §1.5).
import { glusterExecTimeoutMinutes, type RemoteExecutorConfig } from '../config.ts'
import { assertPositiveInteger, assertWrapperWords, shellArg } from './validate.ts'

export type PrefixConfig = Pick<RemoteExecutorConfig, 'glusterCliTimeoutSec' | 'lvmWrapper'>

/** `gluster --mode=script --timeout='<s>'` */
export function glusterPrefix(cfg: PrefixConfig): string {
  return `gluster --mode=script --timeout=${shellArg(assertPositiveInteger(cfg.glusterCliTimeoutSec, 'gluster cli timeout'))}`
}

/** the wrapper's words, each quoted, before the binary */
function wrapped(cfg: PrefixConfig, binary: string): string {
  return [...assertWrapperWords(cfg.lvmWrapper).map(shellArg), binary].join(' ')
}

export function lvmPrefix(cfg: PrefixConfig): string {
  return wrapped(cfg, '/usr/sbin/lvm')
}

export function udevadmPrefix(cfg: PrefixConfig): string {
  return wrapped(cfg, '/usr/bin/udevadm')
}

/** fixed text: `y` or `n` */
export function autobackupFlag(cfg: Pick<RemoteExecutorConfig, 'backupLvmMetadata'>): string {
  return `--autobackup=${cfg.backupLvmMetadata ? 'y' : 'n'}`
}

/** Batch timeouts in minutes, per command family. */
export function batchTimeoutsMinutes(cfg: PrefixConfig) {
  const gluster = glusterExecTimeoutMinutes(cfg)
  return {
    gluster,
    examiner: gluster,
    glusterdCheck: 10,
    brickCreate: 10,
    glusterBlock: 10,
    device: 5,
    brickDestroy: 5,
  } as const
}
