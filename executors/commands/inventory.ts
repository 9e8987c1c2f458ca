// What heqet's bricks left on a node, read for the state repair (beyond
// heketi): LVs, brick mounts, fstab lines and brick directories under
// /var/lib/heketi/mounts. Read-only; the repair removes orphans with the
// ordinary brick destroy sequence and re-mounts with the brick create's
// mount line.
import type { RemoteExecutorConfig } from '../config.ts'
import { lvmPrefix, type PrefixConfig } from './prefix.ts'
import { assertPath, shellArg } from './validate.ts'

export const BRICK_MOUNTS_ROOT = '/var/lib/heketi/mounts'

/** LVs of every VG as JSON (`lvs --reportformat json --units k`) */
export function lvsReportCommand(cfg: PrefixConfig): string {
  return `${lvmPrefix(cfg)} lvs --reportformat json --units k`
}

/** brick mount points now mounted */
export function brickMountsCommand(): string {
  return `awk '$2 ~ "^${BRICK_MOUNTS_ROOT}/" {print $2}' /proc/self/mounts`
}

/** mount points of the fstab lines under the brick area */
export function brickFstabCommand(cfg: Pick<RemoteExecutorConfig, 'fstab'>): string {
  return `awk '$2 ~ "^${BRICK_MOUNTS_ROOT}/" {print $2}' ${shellArg(assertPath(cfg.fstab, 'fstab'))}`
}

/** vg_<id>/brick_<id> directories (none when the area does not exist yet) */
export function brickDirsCommand(): string {
  return `find ${BRICK_MOUNTS_ROOT} -mindepth 2 -maxdepth 2 -type d -name 'brick_*' 2>/dev/null || true`
}

export interface NodeInventory {
  /** `vg/lv` of every LV (thin pools included) */
  lvs: string[]
  /** mount points under /var/lib/heketi/mounts */
  mounts: string[]
  fstab: string[]
  brickDirs: string[]
}

const lines = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)

export function parseInventory(lvsJson: string, mounts: string, fstab: string, dirs: string): NodeInventory {
  const report = JSON.parse(lvsJson) as { report?: { lv?: { vg_name?: string; lv_name?: string }[] }[] }
  const lvs = (report.report?.[0]?.lv ?? []).map((r) => `${r.vg_name ?? ''}/${r.lv_name ?? ''}`)
  return { lvs, mounts: lines(mounts), fstab: lines(fstab), brickDirs: lines(dirs) }
}
