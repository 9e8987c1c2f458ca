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

// One command per aspect, run concurrently: the LVM simulator and the
// gluster CLI each take a few hundred milliseconds to start.
const COMMANDS = {
  lvs: 'lvm lvs --reportformat json --units k',
  pvs: 'lvm pvs --reportformat json --units k',
  vgs: 'lvm vgs --reportformat json --units k',
  mounts: `awk '$2 ~ "^/var/lib/heketi/" {print $2}' /proc/self/mounts`,
  fstab: `grep -Ev '^[[:space:]]*(#|$)' /etc/fstab || true`,
  brickDirs: 'find /var/lib/heketi/mounts -mindepth 1 -maxdepth 2 -type d 2>/dev/null | sort',
  glusterVolumes: 'gluster --mode=script volume list',
}

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

export async function takeSnapshot(exec: (cmd: string) => Promise<RunResult>): Promise<NodeSnapshot> {
  const keys = Object.keys(COMMANDS) as Array<keyof typeof COMMANDS>
  const results = await Promise.all(keys.map((k) => exec(COMMANDS[k])))
  const out: Record<string, string> = {}
  keys.forEach((key, i) => {
    const res = results[i]
    // find exits 1 when /var/lib/heketi/mounts does not exist yet: nothing to list.
    if (res.code !== 0 && key !== 'brickDirs') {
      throw new Error(`snapshot: \`${COMMANDS[key]}\` exited ${res.code}: ${res.stderr.trim()}`)
    }
    out[key] = res.stdout
  })
  return {
    lvs: reportRows(out.lvs, 'lv').map((r) => `${r.vg_name}/${r.lv_name}`),
    pvs: reportRows(out.pvs, 'pv').map((r) => r.pv_name),
    vgs: reportRows(out.vgs, 'vg').map((r) => r.vg_name),
    mounts: lines(out.mounts),
    fstab: lines(out.fstab),
    brickDirs: lines(out.brickDirs),
    glusterVolumes: lines(out.glusterVolumes).filter((l) => l !== 'No volumes present in cluster'),
  }
}
