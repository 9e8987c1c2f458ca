// Devices: add (pvcreate/vgcreate on the node), delete (teardown), state
// changes including remove (evict every brick elsewhere), resync and tags.

import type { DeviceEntry, EntityState } from '../db/entries.ts'
import type { ReadTxn } from '../db/store.ts'
import type { DeviceRef } from '../executors/executor.ts'
import { deviceNameProblems, requireValid } from './command-values.ts'
import type { AppContext, Job } from './context.ts'
import { Errors } from './errors.ts'
import { evictBrick } from './evict.ts'
import { newId } from './ids.ts'
import { applyTagChange, getNode, manageHost, type TagChange } from './nodes.ts'
import { DeviceAddOperation, DeviceDeleteOperation } from './operations/device-ops.ts'
import { newOperationId, startOperation } from './operations/operation.ts'

export interface DeviceAddRequest {
  name: string
  node: string
  tags: Record<string, string>
  destroydata: boolean
}

export function getDevice(tx: ReadTxn, id: string): DeviceEntry {
  const d = tx.get('device', id)
  if (!d) throw Errors.notFound()
  return d
}

export function deviceRef(tx: ReadTxn, device: DeviceEntry): DeviceRef {
  const node = getNode(tx, device.nodeId)
  return {
    host: manageHost(node),
    device: device.name,
    deviceId: device.id,
    pvUuid: device.pvUuid,
    paths: device.paths,
  }
}

export async function addDevice(ctx: AppContext, req: DeviceAddRequest): Promise<Job> {
  requireValid(deviceNameProblems(req.name))
  const node = ctx.store.read((tx) => tx.get('node', req.node))
  if (!node) throw Errors.nodeMissing()
  const op = new DeviceAddOperation(ctx, newOperationId(), {
    nodeId: node.id,
    deviceId: newId(),
    name: req.name,
    host: manageHost(node),
    tags: req.tags,
    destroyData: req.destroydata,
  })
  return startOperation(ctx, op, { throttled: false })
}

export async function deleteDevice(ctx: AppContext, id: string, forceForget: boolean): Promise<Job> {
  const ref = ctx.store.read((tx) => deviceRef(tx, getDevice(tx, id)))
  return startOperation(ctx, new DeviceDeleteOperation(ctx, newOperationId(), id, forceForget, ref), {
    throttled: false,
  })
}

export function setDeviceState(ctx: AppContext, id: string, state: EntityState, healcheck: string): Job {
  ctx.store.read((tx) => getDevice(tx, id))
  const release = state === 'failed' ? ctx.throttle.acquire() : () => {}
  return async () => {
    try {
      const device = ctx.store.read((tx) => getDevice(tx, id))
      if (device.state === state) return undefined
      if (device.state === 'failed' && state === 'online') throw Errors.deviceFailedToOnline()
      if (state === 'failed') {
        if (device.state !== 'offline') throw Errors.deviceNotOfflineForRemove(id)
        await removeDevice(ctx, id, healcheck, { nodeRemoval: false })
        return undefined
      }
      await ctx.store.write((tx) => tx.put('device', id, { ...getDevice(tx, id), state }))
      return undefined
    } finally {
      release()
    }
  }
}

/** Move every brick off the device, then mark it failed. */
export async function removeDevice(
  ctx: AppContext,
  id: string,
  healcheck: string,
  _opts: { nodeRemoval: boolean },
): Promise<void> {
  const device = ctx.store.read((tx) => getDevice(tx, id))
  const busy = ctx.store.read((tx) => device.bricks.some((b) => tx.get('brick', b)?.pendingId))
  if (busy) throw Errors.conflictInUse()
  for (const brickId of device.bricks) {
    const brick = ctx.store.read((tx) => tx.get('brick', brickId))
    if (!brick || brick.path === '') continue
    try {
      await evictBrick(ctx, brickId, healcheck)
    } catch (err) {
      if ((err as Error).message.includes('No Replacement was found')) throw Errors.deviceNoReplacement(id)
      throw err
    }
  }
  await ctx.store.write((tx) => tx.put('device', id, { ...getDevice(tx, id), state: 'failed' }))
}

export function resyncDevice(ctx: AppContext, id: string): Job {
  const ref = ctx.store.read((tx) => deviceRef(tx, getDevice(tx, id)))
  return async () => {
    const info = await ctx.executor.deviceInfo(ref)
    await ctx.store.write((tx) => {
      const device = getDevice(tx, id)
      if (device.bricks.some((b) => tx.get('brick', b)?.pendingId)) throw Errors.conflictInUse()
      // heketi copies LVM's used/free verbatim, which forgets space promised
      // to bricks it accounts itself; heqet keeps used = what its bricks hold.
      const usedKiB = device.storage.usedKiB
      tx.put('device', id, {
        ...device,
        storage: { totalKiB: info.totalKiB, usedKiB, freeKiB: Math.max(0, info.totalKiB - usedKiB) },
      })
    })
    return undefined
  }
}

export async function setDeviceTags(
  ctx: AppContext,
  id: string,
  change: TagChange,
  tags: Record<string, string>,
) {
  return ctx.store.write((tx) => {
    const device = getDevice(tx, id)
    const next = applyTagChange(device.tags, change, tags)
    tx.put('device', id, { ...device, tags: next })
    return next
  })
}
