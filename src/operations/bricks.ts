// Brick bookkeeping shared by the volume operations: reserving placed bricks
// in the DB, releasing them, and running brick commands on the nodes.

import type { BrickEntry } from '../../db/entries.ts'
import type { ReadTxn, WriteTxn } from '../../db/store.ts'
import type { BrickRequest, VolumeBrick } from '../../executors/executor.ts'
import type { AppContext } from '../context.ts'
import { insertSorted, without } from '../context.ts'
import type { PlacedBrick } from '../placement/allocator.ts'

export const brickMountDir = (deviceId: string, brickId: string) =>
  `/var/lib/heketi/mounts/vg_${deviceId}/brick_${brickId}`

/** Write the placed bricks (pending) and charge their space to the devices. */
export function reserveBricks(
  tx: WriteTxn,
  placed: PlacedBrick[],
  volumeId: string,
  opId: string,
): BrickEntry[] {
  return placed.map((p) => {
    const brick: BrickEntry = {
      id: p.brickId,
      path: `${brickMountDir(p.deviceId, p.brickId)}/brick`,
      deviceId: p.deviceId,
      nodeId: p.nodeId,
      volumeId,
      sizeKiB: p.sizeKiB,
      tpSizeKiB: p.tpSizeKiB,
      poolMetadataSizeKiB: p.poolMetadataSizeKiB,
      pendingId: opId,
      lvmThinPool: p.lvmThinPool,
      lvmLv: '',
      subType: p.arbiter ? 'arbiter' : 'normal',
    }
    const device = tx.get('device', p.deviceId)!
    const takenKiB = p.tpSizeKiB + p.poolMetadataSizeKiB
    tx.put('device', device.id, {
      ...device,
      storage: {
        totalKiB: device.storage.totalKiB,
        freeKiB: device.storage.freeKiB - takenKiB,
        usedKiB: device.storage.usedKiB + takenKiB,
      },
      bricks: insertSorted(device.bricks, brick.id),
    })
    tx.put('brick', brick.id, brick)
    return brick
  })
}

/** Remove a brick entry; credit its device unless the thin pool stayed (clones). */
export function releaseBrick(tx: WriteTxn, brickId: string, credit: boolean): void {
  const brick = tx.get('brick', brickId)
  if (!brick) return
  const device = tx.get('device', brick.deviceId)
  if (device) {
    // cloned bricks (own LV name) never consumed space of their own
    const givenKiB = credit && brick.lvmLv === '' ? brick.tpSizeKiB + brick.poolMetadataSizeKiB : 0
    tx.put('device', device.id, {
      ...device,
      storage: {
        totalKiB: device.storage.totalKiB,
        freeKiB: device.storage.freeKiB + givenKiB,
        usedKiB: device.storage.usedKiB - givenKiB,
      },
      bricks: without(device.bricks, brickId),
    })
  }
  const volume = tx.get('volume', brick.volumeId)
  if (volume?.bricks.includes(brickId))
    tx.put('volume', volume.id, { ...volume, bricks: without(volume.bricks, brickId) })
  tx.del('brick', brickId)
}

export function brickRequest(tx: ReadTxn, brick: BrickEntry, gid: number): BrickRequest {
  const node = tx.get('node', brick.nodeId)
  return {
    host: node?.hostnames.manage[0] ?? '',
    brickId: brick.id,
    deviceId: brick.deviceId,
    path: brick.path,
    sizeKiB: brick.sizeKiB,
    tpSizeKiB: brick.tpSizeKiB,
    poolMetadataSizeKiB: brick.poolMetadataSizeKiB,
    lvmThinPool: brick.lvmThinPool,
    lvmLv: brick.lvmLv,
    gid,
    arbiter: brick.subType === 'arbiter',
  }
}

export function volumeBrick(tx: ReadTxn, brick: BrickEntry): VolumeBrick {
  const node = tx.get('node', brick.nodeId)
  return { storageHost: node?.hostnames.storage[0] ?? '', path: brick.path }
}

/** First failure wins, but every started command is awaited (nothing left running). */
async function allSettledOrThrow<T>(work: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(work)
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) throw (failed as PromiseRejectedResult).reason
  return results.map((r) => (r as PromiseFulfilledResult<T>).value)
}

export async function createBricks(ctx: AppContext, requests: BrickRequest[]): Promise<void> {
  await allSettledOrThrow(requests.map((r) => ctx.executor.brickCreate(r)))
}

/** Destroy bricks on their nodes; resolves with the ids whose space came back. */
export async function destroyBricks(ctx: AppContext, requests: BrickRequest[]): Promise<Set<string>> {
  const results = await allSettledOrThrow(
    requests.map(async (r) => ({ id: r.brickId, ...(await ctx.executor.brickDestroy(r)) })),
  )
  return new Set(results.filter((r) => r.spaceReclaimed).map((r) => r.id))
}

/** Try a gluster action on each host in turn until one succeeds. */
export async function onAnyHost<T>(hosts: string[], action: (host: string) => Promise<T>): Promise<T> {
  if (hosts.length === 0) throw new Error('no hosts available (0 total)')
  const errors: string[] = []
  for (const host of hosts) {
    try {
      return await action(host)
    } catch (err) {
      errors.push(`Host ${host}: ${(err as Error).message}`)
    }
  }
  const texts = new Set(errors.map((e) => e.slice(e.indexOf(': ') + 2)))
  if (texts.size === 1) throw new Error(`All ${hosts.length} hosts: ${[...texts][0]}`)
  throw new Error(errors.join('\n'))
}

/** Manage hosts of the cluster's online nodes the monitor does not report down. */
export function clusterHosts(ctx: AppContext, tx: ReadTxn, clusterId: string): string[] {
  const cluster = tx.get('cluster', clusterId)
  return (cluster?.nodes ?? []).flatMap((id) => {
    const n = tx.get('node', id)
    return n && n.state === 'online' && ctx.health.isUp(id) ? [n.hostnames.manage[0]!] : []
  })
}

/**
 * Hosts an undo may try: every node of the cluster, those the monitor sees
 * up first. An undo never concludes "nothing to do" because the monitor
 * marked every node down; it tries them all and fails if none answers.
 */
export function undoHosts(ctx: AppContext, tx: ReadTxn, clusterId: string): string[] {
  const up = clusterHosts(ctx, tx, clusterId)
  const rest = (tx.get('cluster', clusterId)?.nodes ?? []).flatMap((id) => {
    const host = tx.get('node', id)?.hostnames.manage[0]
    return host && !up.includes(host) ? [host] : []
  })
  return [...up, ...rest]
}
