// Device add and delete as journaled operations: a crash between creating
// the VG on the node and saving the device (or between tearing it down and
// forgetting it) is finished or undone by the cleaner instead of leaking.

import { type DeviceEntry, NO_IDS, sharedIfEmpty } from '../../db/entries.ts'
import type { WriteTxn } from '../../db/store.ts'
import type { DeviceInfo, DeviceRef } from '../../executors/executor.ts'
import type { AppContext, JobResult } from '../context.ts'
import { insertSorted, without } from '../context.ts'
import { Errors } from '../errors.ts'
import type { Operation } from './operation.ts'

export interface DeviceAddData {
  nodeId: string
  deviceId: string
  name: string
  host: string
  tags: Record<string, string>
  destroyData: boolean
}

export class DeviceAddOperation implements Operation {
  readonly type = 'add-device' as const
  readonly cleanMode = 'rollback' as const
  private info?: DeviceInfo

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly d: DeviceAddData,
  ) {}

  build(tx: WriteTxn) {
    if (!tx.get('node', this.d.nodeId)) throw Errors.nodeMissing()
    return { actions: [], data: { ...this.d } }
  }

  async exec(): Promise<void> {
    const { host, name, deviceId } = this.d
    try {
      this.info = await this.ctx.executor.deviceSetup({ host, device: name, deviceId, destroyData: false })
    } catch (err) {
      if (!this.d.destroyData) throw err
      this.ctx.log.warn(
        `device setup of ${name} on ${host} failed, retrying with wipefs: ${(err as Error).message}`,
      )
      this.info = await this.ctx.executor.deviceSetup({ host, device: name, deviceId, destroyData: true })
    }
  }

  finalize(tx: WriteTxn): JobResult {
    const node = tx.get('node', this.d.nodeId)
    if (!node) throw Errors.nodeMissing()
    const info = this.info!
    const device: DeviceEntry = {
      id: this.d.deviceId,
      nodeId: node.id,
      name: this.d.name,
      state: 'online',
      storage: { totalKiB: info.totalKiB, freeKiB: info.freeKiB, usedKiB: info.usedKiB },
      extentSizeKiB: info.extentSizeKiB,
      pvUuid: info.pvUuid,
      paths: sharedIfEmpty(info.paths),
      tags: sharedIfEmpty(this.d.tags),
      bricks: NO_IDS,
    }
    tx.put('device', device.id, device)
    tx.put('node', node.id, { ...node, devices: insertSorted(node.devices, device.id) })
    return undefined
  }

  /**
   * Give the disk back. A setup that completed is torn down (VG vg_<id>,
   * then its PV). Any other outcome - a failed or timed-out setup, or one a
   * crash interrupted - is not taken on trust: the node is asked what is on
   * the disk and whatever this operation may have made is removed (a disk
   * holding another volume group is never touched). Throws when the node
   * cannot tell, so the record stays for the cleaner.
   */
  async undo(): Promise<void> {
    const ref: DeviceRef = {
      host: this.d.host,
      device: this.d.name,
      deviceId: this.d.deviceId,
      pvUuid: this.info?.pvUuid ?? '',
      paths: this.info?.paths ?? [],
    }
    if (this.info) await this.ctx.executor.deviceTeardown(ref, false)
    else await this.ctx.executor.deviceSetupRevert(ref)
  }

  undoDb(_tx: WriteTxn): void {}
}

export class DeviceDeleteOperation implements Operation {
  readonly type = 'delete-device' as const
  readonly cleanMode = 'rollforward' as const

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly deviceId: string,
    private readonly forceForget: boolean,
    private readonly ref?: DeviceRef,
  ) {}

  build(tx: WriteTxn) {
    const device = tx.get('device', this.deviceId)
    if (!device) throw Errors.notFound()
    if (device.state !== 'failed') throw Errors.deviceNotFailed(this.deviceId)
    if (device.bricks.length > 0) throw Errors.deviceHasBricks(this.deviceId)
    return { actions: [], data: { deviceId: this.deviceId, forceForget: this.forceForget, ref: this.ref } }
  }

  async exec(): Promise<void> {
    const ref =
      this.ref ?? (this.ctx.store.read((tx) => tx.get('pendingop', this.id)?.data['ref']) as DeviceRef)
    try {
      await this.ctx.executor.deviceTeardown(ref, this.forceForget)
    } catch (err) {
      if (!this.forceForget) throw err
      // heketi's forceforget: the node may be gone for good; forget the device anyway
      this.ctx.log.warn(
        `device ${this.deviceId} forgotten despite a failed teardown: ${(err as Error).message}`,
      )
    }
  }

  finalize(tx: WriteTxn): JobResult {
    const device = tx.get('device', this.deviceId)
    if (!device) return undefined
    if (device.bricks.length > 0) throw Errors.deviceHasBricks(this.deviceId)
    const node = tx.get('node', device.nodeId)
    if (node) tx.put('node', node.id, { ...node, devices: without(node.devices, device.id) })
    tx.del('device', device.id)
    return undefined
  }

  async undo(): Promise<void> {}
  undoDb(_tx: WriteTxn): void {}
}
