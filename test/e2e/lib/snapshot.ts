// What heketi leaves on a node: LVM objects, brick mounts, fstab lines,
// brick directories and gluster volumes, read in one command per node.

import type { RunResult } from './shell.ts'

export interface NodeSnapshot {
  /** `vg/lv`, thin pools included */
  lvs: string[]
  /** brick mount points under /var/lib/heketi */
  mounts: string[]
  /** non-comment, non-blank lines of /etc/fstab */
  fstab: string[]
  /** directories below /var/lib/heketi/mounts (vg_* and vg_*\/brick_*) */
  brickDirs: string[]
  glusterVolumes: string[]
  /** PV device names */
  pvs: string[]
  vgs: string[]
}

const SEPARATOR = '@@heqet-snapshot@@'

export const SNAPSHOT_SCRIPT = [
  'lvm lvs --reportformat json --units k',
  'lvm pvs --reportformat json --units k',
  'lvm vgs --reportformat json --units k',
  `awk '$2 ~ "^/var/lib/heketi/" {print $2}' /proc/self/mounts`,
  `grep -Ev '^[[:space:]]*(#|$)' /etc/fstab`,
  'find /var/lib/heketi/mounts -mindepth 1 -maxdepth 2 -type d 2>/dev/null | sort',
  'gluster --mode=script volume list 2>/dev/null',
].join(`; echo ${SEPARATOR}; `)

type Report = { report: Array<Record<string, Array<Record<string, string>>>> }

function reportRows(json: string, kind: string): Array<Record<string, string>> {
  const parsed = JSON.parse(json) as Report
  return parsed.report[0]?.[kind] ?? []
}

const lines = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)

export function parseSnapshot(res: RunResult): NodeSnapshot {
  const parts = res.stdout.split(`${SEPARATOR}\n`)
  if (parts.length !== 7) throw new Error(`snapshot output not understood: ${res.stdout}\n${res.stderr}`)
  const [lvs, pvs, vgs, mounts, fstab, dirs, volumes] = parts
  return {
    lvs: reportRows(lvs, 'lv').map((r) => `${r.vg_name}/${r.lv_name}`),
    pvs: reportRows(pvs, 'pv').map((r) => r.pv_name),
    vgs: reportRows(vgs, 'vg').map((r) => r.vg_name),
    mounts: lines(mounts),
    fstab: lines(fstab),
    brickDirs: lines(dirs),
    glusterVolumes: lines(volumes).filter((l) => l !== 'No volumes present in cluster'),
  }
}
