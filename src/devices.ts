// Devices: add (pvcreate/vgcreate on the node), delete (teardown), state
// changes including remove (evict every brick elsewhere), resync and tags.
import type { ReadTxn } from '../db/store.ts'
import type { DeviceRef } from '../executors/executor.ts'
import { type AppContext, insertSorted, type Job, without } from './context.ts'
import type { DeviceEntry, EntityState } from './entries.ts'
import { Errors } from './errors.ts'
import { evictBrick } from './evict.ts'
import { newId } from './ids.ts'
import { applyTagChange, getNode, manageHost, type TagChange } from './nodes.ts'

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

export function addDevice(ctx: AppContext, req: DeviceAddRequest): Job {
  const node = ctx.store.read((tx) => tx.get('node', req.node))
  if (!node) throw Errors.nodeMissing()
  const id = newId()
  return async () => {
    const host = manageHost(node)
    let info: Awaited<ReturnType<typeof ctx.executor.deviceSetup>>
    try {
      info = await ctx.executor.deviceSetup({ host, device: req.name, deviceId: id, destroyData: false })
    } catch (err) {
      if (!req.destroydata) throw err
      ctx.log.warn(
        `device setup of ${req.name} on ${host} failed, retrying with wipefs: ${(err as Error).message}`,
      )
      info = await ctx.executor.deviceSetup({ host, device: req.name, deviceId: id, destroyData: true })
    }
    const device: DeviceEntry = {
      id,
      nodeId: node.id,
      name: req.name,
      state: 'online',
      storage: { totalKiB: info.totalKiB, freeKiB: info.freeKiB, usedKiB: info.usedKiB },
      extentSizeKiB: info.extentSizeKiB,
      pvUuid: info.pvUuid,
      paths: info.paths,
      tags: req.tags,
      bricks: [],
    }
    try {
      await ctx.store.write((tx) => {
        const current = getNode(tx, node.id)
        tx.put('device', id, device)
        tx.put('node', node.id, { ...current, devices: insertSorted(current.devices, id) })
      })
    } catch (err) {
      // the node was deleted meanwhile (or the store failed): give the disk back
      await ctx.executor
        .deviceTeardown(
          { host, device: req.name, deviceId: id, pvUuid: info.pvUuid, paths: info.paths },
          true,
        )
        .catch(() => {})
      throw err
    }
    ctx.log.info(`Added device ${id} (${req.name}) on node ${node.id}`)
    return undefined
  }
}

export function deleteDevice(ctx: AppContext, id: string, forceForget: boolean): Job {
  const { device, ref } = ctx.store.read((tx) => {
    const device = getDevice(tx, id)
    return { device, ref: deviceRef(tx, device) }
  })
  if (device.state !== 'failed') throw Errors.deviceNotFailed(id)
  if (device.bricks.length > 0) throw Errors.deviceHasBricks(id)
  return async () => {
    try {
      await ctx.executor.deviceTeardown(ref, forceForget)
    } catch (err) {
      if (!forceForget) throw err
    }
    await ctx.store.write((tx) => {
      const current = getDevice(tx, id)
      if (current.bricks.length > 0) throw Errors.deviceHasBricks(id)
      const node = tx.get('node', current.nodeId)
      if (node) tx.put('node', node.id, { ...node, devices: without(node.devices, id) })
      tx.del('device', id)
    })
    ctx.log.info(`Deleted device ${id}`)
    return undefined
  }
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
