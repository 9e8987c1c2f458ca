// State repair (beyond heketi, which only reports through its examiner):
// compare every node with the DB and, unless it is a dry run, fix what can be
// fixed safely.
//   * brick LVs, mounts, fstab lines and brick directories in a VG heqet
//     manages that no DB brick owns → removed with the ordinary brick
//     destroy sequence, unless a gluster volume still lists that brick;
//   * DB bricks whose mount is gone → mounted again when the LV exists
//     (fstab line restored too), otherwise reported (replace the brick with
//     POST /bricks/to-evict/{id});
//   * gluster volumes the DB does not know → reported, never deleted;
//   * bricks of started volumes whose process is not running → started with
//     `volume start <vol> force` (glusterd starts bricks only when it starts
//     itself: a brick process that died, e.g. killed or crashed, stays down
//     and the set has one copy fewer until someone does this). Runs after the
//     remounts, so a brick whose mount was lost comes up on its own disk.
// Bricks of running operations (pending) are left alone.

import type { BrickEntry } from '../db/entries.ts'
import type { BrickRequest, GlusterVolumeInfo, NodeInventory } from '../executors/executor.ts'
import type { AppContext } from './context.ts'
import { brickMountDir, brickRequest } from './operations/bricks.ts'

export interface NodeRepair {
  node: string
  host: string
  /** what no DB entry owns, as found */
  orphans: { lvs: string[]; mounts: string[]; fstab: string[]; brick_dirs: string[] }
  /** orphan bricks removed (or, on a dry run, to remove): `vg_<device>/brick_<id>` */
  removed: string[]
  /** orphans left because gluster still serves them */
  kept: string[]
  /** DB bricks mounted again (or to mount) */
  remounted: string[]
  /** DB bricks that cannot be repaired here */
  missing: string[]
  errors: string[]
}

export interface OfflineBricks {
  cluster: string
  volume: string
  /** DB bricks (`host:path`) gluster lists as not running */
  bricks: string[]
  /** those running after `volume start force` (empty on a dry run) */
  restarted: string[]
}

export interface RepairReport {
  dry_run: boolean
  nodes: NodeRepair[]
  unknown_gluster_volumes: { cluster: string; volumes: string[] }[]
  offline_bricks: OfflineBricks[]
  errors: string[]
}

/** how often, and how far apart, brick status is read again after `volume start force` */
// up to 3 × 10 s: a loaded node starts bricks slowly, and a CI run saw one still down after 30 s
export const BRICK_START_LOOKS = { rounds: 3, count: 20, pauseMs: 500 }

const ORPHAN_DIR = /^\/var\/lib\/heketi\/mounts\/vg_([0-9a-f]{32})\/brick_([0-9a-f]{32})$/
const ORPHAN_LV = /^vg_([0-9a-f]{32})\/(brick|tp)_([0-9a-f]{32})$/

interface NodePlan {
  nodeId: string
  host: string
  storageHost: string
  vgs: Set<string>
  bricks: BrickEntry[]
  requests: Map<string, BrickRequest>
}

function plans(ctx: AppContext): {
  nodes: NodePlan[]
  clusters: { id: string; hosts: string[]; names: Set<string> }[]
} {
  return ctx.store.read((tx) => {
    const nodes = tx.values('node').map((n) => {
      const devices = n.devices.map((id) => tx.get('device', id)).filter((d) => d !== undefined)
      const bricks = devices.flatMap((d) =>
        d.bricks.map((id) => tx.get('brick', id)).filter((b) => b !== undefined),
      )
      return {
        nodeId: n.id,
        host: n.hostnames.manage[0]!,
        storageHost: n.hostnames.storage[0]!,
        vgs: new Set(devices.map((d) => `vg_${d.id}`)),
        bricks,
        requests: new Map(bricks.map((b) => [b.id, brickRequest(tx, b, 0)])),
      }
    })
    const clusters = tx.values('cluster').map((c) => ({
      id: c.id,
      hosts: c.nodes.flatMap((id) => {
        const n = tx.get('node', id)
        return n && n.state === 'online' ? [n.hostnames.manage[0]!] : []
      }),
      names: new Set(
        c.volumes
          .map((id) => tx.get('volume', id)?.name)
          .filter((name): name is string => name !== undefined),
      ),
    }))
    return { nodes, clusters }
  })
}

function owned(plan: NodePlan) {
  const lvs = new Set<string>()
  const dirs = new Set<string>()
  for (const b of plan.bricks) {
    const vg = `vg_${b.deviceId}`
    lvs.add(`${vg}/${b.lvmLv || `brick_${b.id}`}`)
    lvs.add(`${vg}/${b.lvmThinPool || `tp_${b.id}`}`)
    dirs.add(brickMountDir(b.deviceId, b.id))
  }
  return { lvs, dirs }
}

export async function repairState(ctx: AppContext, dryRun: boolean): Promise<RepairReport> {
  const { nodes, clusters } = plans(ctx)
  const report: RepairReport = {
    dry_run: dryRun,
    nodes: [],
    unknown_gluster_volumes: [],
    offline_bricks: [],
    errors: [],
  }

  // gluster's volumes: the safety net for orphans and the unknown-volume report
  const served = new Set<string>()
  const views: { cluster: string; host: string; volumes: GlusterVolumeInfo[] }[] = []
  for (const c of clusters) {
    let volumes: GlusterVolumeInfo[] | undefined
    for (const host of c.hosts) {
      try {
        volumes = await ctx.executor.volumeInfoAll(host)
        views.push({ cluster: c.id, host, volumes })
        break
      } catch (err) {
        report.errors.push(`cluster ${c.id}: volume info on ${host}: ${(err as Error).message}`)
      }
    }
    if (!volumes) continue
    for (const v of volumes) for (const b of v.bricks) served.add(b.name)
    const unknown = volumes.map((v) => v.name).filter((name) => !c.names.has(name))
    if (unknown.length > 0) report.unknown_gluster_volumes.push({ cluster: c.id, volumes: unknown.sort() })
  }
  if (clusters.some((c) => c.hosts.length > 0) && served.size === 0 && report.errors.length > 0) {
    // without gluster's brick list no orphan can be proven unused
    report.errors.push('no gluster volume list: orphans are reported, not removed')
  }
  const canRemove = !dryRun && !(report.errors.length > 0 && served.size === 0)

  for (const plan of nodes) {
    const out: NodeRepair = {
      node: plan.nodeId,
      host: plan.host,
      orphans: { lvs: [], mounts: [], fstab: [], brick_dirs: [] },
      removed: [],
      kept: [],
      remounted: [],
      missing: [],
      errors: [],
    }
    report.nodes.push(out)
    let inv: NodeInventory
    try {
      inv = await ctx.executor.nodeInventory(plan.host)
    } catch (err) {
      out.errors.push(`inventory: ${(err as Error).message}`)
      continue
    }
    const mine = owned(plan)
    const inKnownVg = (vg: string) => plan.vgs.has(vg)
    // orphan bricks by (device, brick) id
    const orphans = new Map<string, { deviceId: string; brickId: string }>()
    const note = (deviceId: string, brickId: string) =>
      orphans.set(`${deviceId}/${brickId}`, { deviceId, brickId })
    for (const lv of inv.lvs) {
      const m = ORPHAN_LV.exec(lv)
      if (!m || !inKnownVg(`vg_${m[1]}`) || mine.lvs.has(lv)) continue
      out.orphans.lvs.push(lv)
      if (m[2] === 'brick') note(m[1]!, m[3]!)
    }
    const dirOrphans = (list: string[], into: string[]) => {
      for (const dir of list) {
        const m = ORPHAN_DIR.exec(dir)
        if (!m || !inKnownVg(`vg_${m[1]}`) || mine.dirs.has(dir)) continue
        into.push(dir)
        note(m[1]!, m[2]!)
      }
    }
    dirOrphans(inv.mounts, out.orphans.mounts)
    dirOrphans(inv.fstab, out.orphans.fstab)
    dirOrphans(inv.brickDirs, out.orphans.brick_dirs)

    for (const { deviceId, brickId } of orphans.values()) {
      const dir = brickMountDir(deviceId, brickId)
      const name = `vg_${deviceId}/brick_${brickId}`
      if (served.has(`${plan.storageHost}:${dir}/brick`)) {
        out.kept.push(`${name}: a gluster volume still lists ${plan.storageHost}:${dir}/brick`)
        continue
      }
      out.removed.push(name)
      if (!canRemove) continue
      try {
        await ctx.executor.brickDestroy({
          host: plan.host,
          brickId,
          deviceId,
          path: `${dir}/brick`,
          sizeKiB: 0,
          tpSizeKiB: 0,
          poolMetadataSizeKiB: 0,
          lvmThinPool: `tp_${brickId}`,
          lvmLv: '',
          gid: 0,
          arbiter: false,
        })
        ctx.log.warn(`repair: removed orphan brick ${name} on ${plan.host}`)
      } catch (err) {
        out.errors.push(`remove ${name}: ${(err as Error).message}`)
      }
    }

    // DB bricks whose LV or mount is gone
    for (const b of plan.bricks) {
      if (b.pendingId || b.lvmLv !== '') continue // running operations; clones live in gluster's area
      const vg = `vg_${b.deviceId}`
      const dir = brickMountDir(b.deviceId, b.id)
      const hasLv = inv.lvs.includes(`${vg}/brick_${b.id}`)
      const mounted = inv.mounts.includes(dir)
      if (!hasLv) {
        out.missing.push(
          `brick ${b.id}: LV ${vg}/brick_${b.id} is gone${mounted ? '' : ' and nothing is mounted'}`,
        )
        continue
      }
      if (mounted && inv.fstab.includes(dir)) continue
      out.remounted.push(b.id)
      if (dryRun) continue
      try {
        await ctx.executor.brickMount(plan.requests.get(b.id)!)
        ctx.log.warn(`repair: mounted brick ${b.id} on ${plan.host} again`)
      } catch (err) {
        out.errors.push(`mount brick ${b.id}: ${(err as Error).message}`)
      }
    }
  }

  // DB bricks (not of running operations) that gluster lists as not running
  const dbBricks = new Set(
    nodes.flatMap((plan) =>
      plan.bricks.filter((b) => !b.pendingId).map((b) => `${plan.storageHost}:${b.path}`),
    ),
  )
  for (const view of views) {
    const names = clusters.find((c) => c.id === view.cluster)!.names
    for (const v of view.volumes) {
      if (!names.has(v.name) || v.status !== 1) continue // unknown, or not started
      await startOfflineBricks(ctx, report, view, v.name, dbBricks, dryRun)
    }
  }
  return report
}

async function startOfflineBricks(
  ctx: AppContext,
  report: RepairReport,
  view: { cluster: string; host: string },
  volume: string,
  dbBricks: Set<string>,
  dryRun: boolean,
): Promise<void> {
  const offline = async () =>
    (await ctx.volumeLock.exclusive(volume, () => ctx.executor.volumeStatus(view.host, volume)))
      .filter((b) => !b.online && dbBricks.has(b.name))
      .map((b) => b.name)
  let down: string[]
  try {
    down = await offline()
  } catch (err) {
    report.errors.push(`volume ${volume}: status on ${view.host}: ${(err as Error).message}`)
    return
  }
  if (down.length === 0) return
  const entry: OfflineBricks = { cluster: view.cluster, volume, bricks: down.sort(), restarted: [] }
  report.offline_bricks.push(entry)
  if (dryRun) return
  try {
    // a started brick shows as running once it has signed in with glusterd; one that still
    // does not after a while is started again (a brick process can die at start on a busy node)
    let still = down
    for (let round = 0; round < BRICK_START_LOOKS.rounds && still.length > 0; round++) {
      await ctx.volumeLock.exclusive(volume, () => ctx.executor.volumeStartForce(view.host, volume))
      ctx.log.warn(
        `repair: volume ${volume}: started the bricks that did not run (round ${round + 1}): ${still.join(', ')}`,
      )
      for (let i = 0; i < BRICK_START_LOOKS.count && still.length > 0; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, BRICK_START_LOOKS.pauseMs))
        const now = new Set(await offline())
        still = down.filter((b) => now.has(b))
      }
    }
    entry.restarted = down.filter((b) => !still.includes(b))
    if (still.length > 0)
      report.errors.push(`volume ${volume}: still not running after volume start force: ${still.join(', ')}`)
  } catch (err) {
    report.errors.push(`volume ${volume}: volume start force on ${view.host}: ${(err as Error).message}`)
  }
}
