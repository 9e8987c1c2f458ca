// The ssh and kube executors: heketi's node-side sequences over any
// CommandRunner. Strings come from executors/commands/, error texts follow
// heketi's (they reach users verbatim through the async queue).
import { brickCreateCommands, brickMountPoint } from './commands/brick.ts'
import {
  deviceIdentityCommands,
  deviceSetupCommands,
  pvremoveCommand,
  pvsIdentityCommand,
  rmdirDeviceMountsCommand,
  teardownPath,
  vgdisplayCommand,
  vgremoveCommand,
  vgsIdentityCommand,
} from './commands/device.ts'
import {
  addBrickCommands,
  brickAddress,
  GLUSTERD_CHECK_COMMAND,
  healInfoCommand,
  healStartCommand,
  healStatisticsCommand,
  peerDetachCommand,
  peerProbeCommand,
  replaceBrickCommand,
  snapshotLimitCommand,
  volumeCreateCommands,
  volumeDeleteCommand,
  volumeInfoAllCommand,
  volumeInfoCommand,
  volumeRebalanceStartCommand,
  volumeRebalanceStatusCommand,
  volumeRebalanceStopCommand,
  volumeStartForceCommand,
  volumeStatusCommand,
  volumeStopForceCommand,
} from './commands/gluster.ts'
import {
  parseHealInfoXml,
  parseRebalanceStatusXml,
  parseVolumeInfoXml,
  parseVolumeStatusXml,
} from './commands/gluster-xml.ts'
import { parseHealStatistics } from './commands/heal-statistics.ts'
import {
  brickDirsCommand,
  brickFstabCommand,
  brickMountsCommand,
  lvsReportCommand,
  type NodeInventory,
  parseInventory,
} from './commands/inventory.ts'
import { isLvmNotFound, parseLvmIdentityReport, parseUdevSymlinks, parseVgdisplay } from './commands/parse.ts'
import { batchTimeoutsMinutes } from './commands/prefix.ts'
import type { RemoteExecutorConfig } from './config.ts'
import {
  type BlockCreated,
  type BlockCreateRequest,
  type BlockVolumeNodeInfo,
  type BrickRequest,
  type BrickStatus,
  type CloneRequest,
  type DeviceInfo,
  type DeviceRef,
  type DeviceSetupRequest,
  type Executor,
  type GlusterVolumeInfo,
  type HealCrawl,
  type HealInfoBrick,
  NodeCommandError,
  type RebalanceStatus,
  type VolumeBrick,
  type VolumeRequest,
} from './executor.ts'
import { type BatchOutcome, BatchRunner, type ExecutorLogger, outcomeError } from './remote-batch.ts'
import { blockCreate, blockDelete, blockExpand, blockInfo, blockList } from './remote-block.ts'
import { destroyBrick } from './remote-brick.ts'
import { cloneVolume } from './remote-clone.ts'
import type { CommandRunner } from './runner.ts'

export type { ExecutorLogger } from './remote-batch.ts'

export interface RemoteExecutorOptions {
  /** text for a failed command with empty stderr (default: ssh's `Process exited with status N`) */
  exitErrorText?: (exitCode: number) => string
  logger?: ExecutorLogger
}

/** what `rebalance status` means when gluster says none was ever started */
const NOT_STARTED: RebalanceStatus = Object.freeze({
  state: 'not started',
  running: false,
  done: false,
  failed: false,
  files: 0,
  failures: 0,
  runtimeSec: 0,
})

export class RemoteExecutor implements Executor {
  private readonly batches: BatchRunner
  private readonly timeouts: ReturnType<typeof batchTimeoutsMinutes>
  private readonly logger: ExecutorLogger

  constructor(
    runner: CommandRunner,
    readonly config: RemoteExecutorConfig,
    options: RemoteExecutorOptions = {},
  ) {
    this.logger = options.logger ?? { warn() {} }
    this.batches = new BatchRunner(runner, options.exitErrorText, this.logger)
    this.timeouts = batchTimeoutsMinutes(config)
  }

  private run(
    host: string,
    commands: string[],
    timeoutMinutes: number,
    quiet = false,
  ): Promise<BatchOutcome> {
    return this.batches.run(host, commands, { timeoutMinutes, quiet })
  }

  /** A batch whose failure heketi ignores: it goes on, and the failure is logged. */
  private async runIgnoringFailure(host: string, commands: string[], timeoutMinutes: number, what: string) {
    const outcome = await this.run(host, commands, timeoutMinutes)
    if (!outcome.ok) this.logger.warn(`${what} on ${host} failed (ignored, as heketi does): ${outcome.error}`)
  }

  private async runOrThrow(host: string, commands: string[], timeoutMinutes: number, quiet = false) {
    const outcome = await this.run(host, commands, timeoutMinutes, quiet)
    if (!outcome.ok) throw outcomeError(outcome, host)
    return outcome.results
  }

  async glusterdCheck(host: string): Promise<void> {
    await this.runOrThrow(host, [GLUSTERD_CHECK_COMMAND], this.timeouts.glusterdCheck, true)
  }

  async peerProbe(host: string, newStorageHost: string): Promise<void> {
    await this.runOrThrow(host, [peerProbeCommand(this.config, newStorageHost)], this.timeouts.gluster)
    if (this.config.snapshotLimit > 0) {
      await this.runOrThrow(
        host,
        [snapshotLimitCommand(this.config, this.config.snapshotLimit)],
        this.timeouts.gluster,
      )
    }
  }

  /** rejects on failure (heketi logs and ignores it; heqet's node delete fails) */
  async peerDetach(host: string, storageHost: string): Promise<void> {
    const detached = await this.run(
      host,
      [peerDetachCommand(this.config, storageHost)],
      this.timeouts.gluster,
    )
    // glusterd's answer for a host that is not in the pool: already detached
    if (detached.ok || (!detached.transport && detached.error.includes('is not part of cluster'))) return
    throw outcomeError(detached, host)
  }

  async deviceSetup(req: DeviceSetupRequest): Promise<DeviceInfo> {
    const { host, device, deviceId } = req
    const commands = deviceSetupCommands(this.config, deviceId, device, req.destroyData)
    const setup = await this.run(host, commands, this.timeouts.device)
    if (!setup.ok) {
      const reason = await this.classifySetupFailure(host, device)
      // heketi leaves the PV it just made when vgcreate fails; the disk must
      // come back as it was (only a PV made by this very batch is removed)
      const madePv = setup.results.some((r) => r.command.includes(' pvcreate ') && r.exitCode === 0)
      if (madePv && setup.failed?.command.includes(' vgcreate ')) {
        const removed = await this.run(host, [pvremoveCommand(this.config, device)], this.timeouts.device)
        // the caller's undo (deviceSetupRevert) finds and removes the PV
        if (!removed.ok)
          this.logger.warn(`pvremove of ${device} on ${host} after vgcreate failed: ${removed.error}`)
      }
      throw new NodeCommandError(
        `Initializing device ${device} failed (${reason}): ${setup.error}`,
        host,
        setup.failed?.command,
        setup.failed?.exitCode,
      )
    }
    const ref: DeviceRef = { host, device, deviceId, pvUuid: '', paths: [] }
    try {
      const identity = await this.identity(host, device)
      ref.pvUuid = identity.pvUuid
      ref.paths = identity.paths
      const sizes = await this.sizes(host, deviceId)
      return { ...sizes, ...identity }
    } catch (err) {
      await this.deviceTeardown(ref, false).catch((e: Error) =>
        this.logger.warn(`teardown of ${device} on ${host} after a failed setup: ${e.message}`),
      )
      throw err
    }
  }

  /** why batch 1 of device setup failed, told by the identity query */
  private async classifySetupFailure(host: string, device: string): Promise<string> {
    const query = await this.run(host, deviceIdentityCommands(this.config, device), this.timeouts.device)
    if (query.transport) return 'failed to check device contents'
    const pvs = query.results[0]
    if (pvs?.exitCode === 0) {
      try {
        return `aleady contains Physical Volume ${parseLvmIdentityReport(pvs.stdout, 'pv').pvUuid}`
      } catch {
        // unparsable: fall through to the generic reason
      }
    }
    return 'already initialized or contains data?'
  }

  private async identity(host: string, device: string): Promise<{ pvUuid: string; paths: string[] }> {
    const query = await this.run(host, deviceIdentityCommands(this.config, device), this.timeouts.device)
    if (query.transport) throw outcomeError(query, host)
    const [pvs, udevadm] = query.results
    if (pvs?.exitCode !== 0) {
      throw new NodeCommandError(`failed to read PV data for ${device} [${query.error}]`, host, pvs?.command)
    }
    let pvUuid: string
    try {
      pvUuid = parseLvmIdentityReport(pvs.stdout, 'pv').pvUuid
    } catch (err) {
      throw new NodeCommandError(
        `failed to read PV data for ${device} [${(err as Error).message}]`,
        host,
        pvs.command,
      )
    }
    const paths = udevadm?.exitCode === 0 ? parseUdevSymlinks(udevadm.stdout, device) : [device]
    return { pvUuid, paths }
  }

  private async sizes(host: string, deviceId: string) {
    const [vgdisplay] = await this.runOrThrow(
      host,
      [vgdisplayCommand(this.config, deviceId)],
      this.timeouts.device,
    )
    try {
      return parseVgdisplay(vgdisplay.stdout)
    } catch (err) {
      throw new NodeCommandError((err as Error).message, host, vgdisplay.command)
    }
  }

  /** the stored PV UUID, else the one `vgs` reports for vg_<id> (failures ignored) */
  private async resolvePvUuid(dev: DeviceRef): Promise<string> {
    if (dev.pvUuid) return dev.pvUuid
    const query = await this.run(
      dev.host,
      [vgsIdentityCommand(this.config, dev.deviceId)],
      this.timeouts.device,
    )
    if (!query.ok) return ''
    try {
      return parseLvmIdentityReport(query.results[0].stdout, 'vg').pvUuid
    } catch {
      return ''
    }
  }

  async deviceTeardown(dev: DeviceRef, forget: boolean): Promise<void> {
    const path = teardownPath(await this.resolvePvUuid(dev), dev.paths, dev.device)
    const removal = [vgremoveCommand(this.config, dev.deviceId), pvremoveCommand(this.config, path)]
    const rmdir = [rmdirDeviceMountsCommand(dev.deviceId)]
    const forgotten = `device ${dev.deviceId} (forgotten)`
    if (forget) {
      await this.runIgnoringFailure(dev.host, rmdir, this.timeouts.device, `${forgotten}: rmdir`)
      await this.runIgnoringFailure(
        dev.host,
        removal,
        this.timeouts.device,
        `${forgotten}: vgremove/pvremove`,
      )
      return
    }
    const removed = await this.run(dev.host, removal, this.timeouts.device)
    if (!removed.ok) {
      throw new NodeCommandError(
        `Failed to delete device ${path} with id ${dev.deviceId} on host ${dev.host}: ${removed.error}`,
        dev.host,
        removed.failed?.command,
        removed.failed?.exitCode,
      )
    }
    await this.runIgnoringFailure(dev.host, rmdir, this.timeouts.device, `device ${dev.deviceId}: rmdir`)
  }

  async deviceSetupRevert(dev: DeviceRef): Promise<void> {
    const { host } = dev
    const vgs = await this.run(host, [vgsIdentityCommand(this.config, dev.deviceId)], this.timeouts.device)
    if (vgs.ok) {
      let pvUuid: string
      try {
        pvUuid = parseLvmIdentityReport(vgs.results[0].stdout, 'vg').pvUuid
      } catch (err) {
        throw new NodeCommandError(
          `Unable to tell whether device ${dev.device} holds vg_${dev.deviceId}: ${(err as Error).message}`,
          host,
        )
      }
      await this.deviceTeardown({ ...dev, pvUuid }, false)
      return
    }
    if (vgs.transport || !isLvmNotFound(vgs.error)) throw outcomeError(vgs, host)
    // no volume group of ours: a PV the interrupted pvcreate made may be left
    const pvs = await this.run(host, [pvsIdentityCommand(this.config, dev.device)], this.timeouts.device)
    if (!pvs.ok) {
      if (!pvs.transport && isLvmNotFound(pvs.error)) return
      throw outcomeError(pvs, host)
    }
    let vgName: string
    try {
      vgName = parseLvmIdentityReport(pvs.results[0].stdout, 'pv').vgName
    } catch (err) {
      throw new NodeCommandError(
        `Unable to tell whether device ${dev.device} holds a PV: ${(err as Error).message}`,
        host,
      )
    }
    if (vgName !== '') return
    await this.runOrThrow(host, [pvremoveCommand(this.config, dev.device)], this.timeouts.device)
  }

  async deviceInfo(dev: DeviceRef): Promise<DeviceInfo> {
    const path = teardownPath(await this.resolvePvUuid(dev), dev.paths, dev.device)
    const identity = await this.identity(dev.host, path)
    const sizes = await this.sizes(dev.host, dev.deviceId)
    return { ...sizes, ...identity }
  }

  async brickCreate(req: BrickRequest): Promise<void> {
    const created = await this.run(req.host, brickCreateCommands(this.config, req), this.timeouts.brickCreate)
    if (created.ok) return
    await this.brickDestroy(req).catch((e: Error) =>
      this.logger.warn(`clean-up of brick ${req.brickId} on ${req.host} failed: ${e.message}`),
    )
    throw outcomeError(created, req.host)
  }

  brickDestroy(req: BrickRequest): Promise<{ spaceReclaimed: boolean }> {
    return destroyBrick(req, {
      config: this.config,
      run: (commands) => this.run(req.host, commands, this.timeouts.brickDestroy),
      logger: this.logger,
    })
  }

  async volumeCreate(req: VolumeRequest): Promise<void> {
    await this.runOrThrow(req.host, volumeCreateCommands(this.config, req), this.timeouts.gluster)
  }

  async volumeExpand(req: VolumeRequest): Promise<void> {
    const commands = addBrickCommands(this.config, req.name, req.durability, req.bricks)
    await this.runOrThrow(req.host, commands, this.timeouts.gluster)
  }

  get rebalanceOnExpansion(): boolean {
    return this.config.rebalanceOnExpansion
  }

  async rebalanceStart(host: string, name: string): Promise<void> {
    const started = await this.run(
      host,
      [volumeRebalanceStartCommand(this.config, name)],
      this.timeouts.gluster,
    )
    // a start whose answer was lost (timeout, crash) may have gone through
    if (started.ok || (!started.transport && /already started/i.test(started.error))) return
    throw new NodeCommandError(
      `Unable to start rebalance of volume ${name}: ${started.error}`,
      host,
      started.failed?.command,
      started.failed?.exitCode,
    )
  }

  async rebalanceStatus(host: string, name: string): Promise<RebalanceStatus> {
    const query = await this.run(
      host,
      [volumeRebalanceStatusCommand(this.config, name)],
      this.timeouts.gluster,
    )
    if (query.transport) throw outcomeError(query, host)
    const stdout = query.results[0]?.stdout ?? ''
    let parsed: ReturnType<typeof parseRebalanceStatusXml> | undefined
    try {
      parsed = parseRebalanceStatusXml(stdout)
    } catch (err) {
      if (query.ok)
        throw new NodeCommandError(
          `Unable to determine rebalance status of volume ${name}: ${(err as Error).message}`,
          host,
        )
    }
    const reason = parsed?.opErrstr || query.error
    if (query.ok && parsed && parsed.opRet === 0) return parsed.status
    if (/not started/i.test(reason)) return NOT_STARTED
    throw new NodeCommandError(`Unable to get rebalance status of volume ${name}: ${reason}`, host)
  }

  async rebalanceStop(host: string, name: string): Promise<void> {
    const stopped = await this.run(
      host,
      [volumeRebalanceStopCommand(this.config, name)],
      this.timeouts.gluster,
    )
    if (stopped.ok) return
    // refused because none runs (never started, or already over): nothing to stop
    if (!stopped.transport && !(await this.rebalanceStatus(host, name)).running) return
    throw new NodeCommandError(
      `Unable to stop rebalance of volume ${name}: ${stopped.error}`,
      host,
      stopped.failed?.command,
      stopped.failed?.exitCode,
    )
  }

  async volumeDestroy(host: string, name: string): Promise<void> {
    await this.run(host, [volumeStopForceCommand(this.config, name)], this.timeouts.gluster)
    const deleted = await this.run(host, [volumeDeleteCommand(this.config, name)], this.timeouts.gluster)
    if (deleted.ok || deleted.error.includes('does not exist')) return
    throw new NodeCommandError(
      `Unable to delete volume ${name}: ${deleted.error}`,
      host,
      deleted.failed?.command,
    )
  }

  async volumeInfo(host: string, name: string): Promise<GlusterVolumeInfo> {
    const query = await this.run(host, [volumeInfoCommand(this.config, name)], this.timeouts.gluster)
    if (query.transport) throw outcomeError(query, host)
    if (!query.ok) throw new NodeCommandError(`Unable to get volume info of volume name: ${name}`, host)
    const undetermined = () =>
      new NodeCommandError(`Unable to determine volume info of volume name: ${name}`, host)
    let parsed: ReturnType<typeof parseVolumeInfoXml>
    try {
      parsed = parseVolumeInfoXml(query.results[0].stdout)
    } catch {
      throw undetermined()
    }
    if (parsed.opErrstr !== '')
      throw new NodeCommandError(`Unable to get info for ${name}: ${parsed.opErrstr}`, host)
    const volume = parsed.volumes.find((v) => v.name === name)
    if (!volume) throw undetermined()
    return volume
  }

  async healInfo(host: string, name: string): Promise<HealInfoBrick[]> {
    const query = await this.run(host, [healInfoCommand(this.config, name)], this.timeouts.gluster)
    if (!query.ok)
      throw new NodeCommandError(`Unable to get heal info of volume : ${name} : ${query.error}`, host)
    let parsed: ReturnType<typeof parseHealInfoXml>
    try {
      parsed = parseHealInfoXml(query.results[0].stdout)
    } catch (err) {
      throw new NodeCommandError(
        `Unable to determine heal info of volume : ${name} : ${(err as Error).message}`,
        host,
      )
    }
    if (parsed.opRet !== 0) {
      throw new NodeCommandError(`Unable to get heal info of volume : ${name} : ${parsed.opErrstr}`, host)
    }
    return parsed.bricks
  }

  async volumeStatus(host: string, name: string): Promise<BrickStatus[]> {
    const query = await this.run(host, [volumeStatusCommand(this.config, name)], this.timeouts.gluster)
    if (query.transport) throw outcomeError(query, host)
    let parsed: ReturnType<typeof parseVolumeStatusXml> | undefined
    try {
      parsed = parseVolumeStatusXml(query.results[0]?.stdout ?? '')
    } catch (err) {
      if (query.ok)
        throw new NodeCommandError(
          `Unable to determine status of volume ${name}: ${(err as Error).message}`,
          host,
        )
    }
    if (query.ok && parsed && parsed.opRet === 0) return parsed.bricks
    throw new NodeCommandError(
      `Unable to get status of volume ${name}: ${parsed?.opErrstr || query.error}`,
      host,
    )
  }

  async volumeStartForce(host: string, name: string): Promise<void> {
    await this.runOrThrow(host, [volumeStartForceCommand(this.config, name)], this.timeouts.gluster)
  }

  async healStatistics(host: string, name: string): Promise<HealCrawl[]> {
    const query = await this.run(host, [healStatisticsCommand(this.config, name)], this.timeouts.gluster)
    if (!query.ok)
      throw new NodeCommandError(`Unable to get heal statistics of volume : ${name} : ${query.error}`, host)
    return parseHealStatistics(query.results[0].stdout)
  }

  async volumeInfoAll(host: string): Promise<GlusterVolumeInfo[]> {
    const query = await this.run(host, [volumeInfoAllCommand(this.config)], this.timeouts.gluster)
    if (!query.ok) throw outcomeError(query, host)
    const parsed = parseVolumeInfoXml(query.results[0].stdout)
    if (parsed.opErrstr !== '')
      throw new NodeCommandError(`Unable to get volume info: ${parsed.opErrstr}`, host)
    return parsed.volumes
  }

  async nodeInventory(host: string): Promise<NodeInventory> {
    const commands = [
      lvsReportCommand(this.config),
      brickMountsCommand(),
      brickFstabCommand(this.config),
      brickDirsCommand(),
    ]
    const results = await this.runOrThrow(host, commands, this.timeouts.examiner)
    return parseInventory(results[0]!.stdout, results[1]!.stdout, results[2]!.stdout, results[3]!.stdout)
  }

  async brickMount(req: BrickRequest): Promise<void> {
    const { host, ...spec } = req
    const create = brickCreateCommands(this.config, spec)
    // [mkdir -p, lvcreate, mkfs, fstab, mount, mkdir, ...]: only the directory, fstab line and mount
    const [fstab, mounts] = await this.runOrThrow(
      host,
      [brickFstabCommand(this.config), brickMountsCommand()],
      this.timeouts.brickCreate,
    )
    const mnt = brickMountPoint(spec.path)
    const has = (out: string) => out.split('\n').some((l) => l.trim() === mnt)
    const steps = [create[0]!]
    if (!has(fstab!.stdout)) steps.push(create[3]!)
    if (!has(mounts!.stdout)) steps.push(create[4]!)
    await this.runOrThrow(host, steps, this.timeouts.brickCreate)
  }

  async healStart(host: string, name: string): Promise<void> {
    const started = await this.run(host, [healStartCommand(this.config, name)], this.timeouts.gluster)
    if (started.ok) return
    throw new NodeCommandError(
      `Unable to start heal of volume ${name}: ${started.error}`,
      host,
      started.failed?.command,
      started.failed?.exitCode,
    )
  }

  async replaceBrick(
    host: string,
    name: string,
    oldBrick: VolumeBrick,
    newBrick: VolumeBrick,
  ): Promise<void> {
    const command = replaceBrickCommand(this.config, name, oldBrick, newBrick)
    const replaced = await this.run(host, [command], this.timeouts.gluster)
    if (replaced.ok) return
    throw new NodeCommandError(
      `Unable to replace brick ${brickAddress(oldBrick)} with ${brickAddress(newBrick)} for volume ${name}`,
      host,
      command,
      replaced.failed?.exitCode,
    )
  }

  volumeClone(req: CloneRequest): Promise<GlusterVolumeInfo> {
    return cloneVolume(req, {
      config: this.config,
      run: (commands) => this.run(req.host, commands, this.timeouts.gluster),
      volumeInfo: (name) => this.volumeInfo(req.host, name),
      logger: this.logger,
    })
  }

  private get block() {
    return {
      config: this.config,
      run: (host: string, command: string, quiet: boolean) =>
        this.run(host, [command], this.timeouts.glusterBlock, quiet),
    }
  }

  blockVolumeCreate(req: BlockCreateRequest): Promise<BlockCreated> {
    return blockCreate(this.block, req)
  }

  blockVolumeDelete(host: string, hostingVolume: string, name: string): Promise<void> {
    return blockDelete(this.block, host, hostingVolume, name)
  }

  blockVolumeExpand(host: string, hostingVolume: string, name: string, sizeGiB: number): Promise<void> {
    return blockExpand(this.block, host, hostingVolume, name, sizeGiB)
  }

  blockVolumeInfo(
    host: string,
    hostingVolume: string,
    name: string,
  ): Promise<BlockVolumeNodeInfo | undefined> {
    return blockInfo(this.block, host, hostingVolume, name)
  }

  blockVolumeList(host: string, hostingVolume: string): Promise<string[]> {
    return blockList(this.block, host, hostingVolume)
  }

  close(): Promise<void> {
    return this.batches.close()
  }
}
