// Brick destroy (heketi node commands §5.2): umount with mount-check
// forgiveness, fstab line removal, LV removal, thin pool removal when it has
// no more thin LVs (→ space reclaimed), rmdir. Each step is its own batch.
import {
  brickLvName,
  brickMountPoint,
  brickThinPoolName,
  fstabRemoveCommand,
  isGlusterSnapshotMount,
  lsofCommand,
  lvremoveCommand,
  MOUNT_LIST_COMMAND,
  rmdirCommand,
  thinPoolCountCommand,
  umountCommand,
} from './commands/brick.ts'
import { volumeGroupName } from './commands/device.ts'
import { isLvmNotFound, parseThinCount } from './commands/parse.ts'
import type { RemoteExecutorConfig } from './config.ts'
import { type BrickRequest, NodeCommandError } from './executor.ts'
import { type BatchOutcome, type ExecutorLogger, outcomeError } from './remote-batch.ts'

export interface BrickDestroyContext {
  config: RemoteExecutorConfig
  /** run one batch on the brick's host with the brick-destroy timeout */
  run(commands: string[]): Promise<BatchOutcome>
  logger: ExecutorLogger
}

export async function destroyBrick(
  req: BrickRequest,
  ctx: BrickDestroyContext,
): Promise<{ spaceReclaimed: boolean }> {
  const { host } = req
  const mnt = brickMountPoint(req.path)
  const { config, logger } = ctx
  const vg = volumeGroupName(req.deviceId)

  let umountFailure: BatchOutcome | undefined
  const umount = await ctx.run([umountCommand(mnt)])
  if (!umount.ok) {
    const mounts = await ctx.run([MOUNT_LIST_COMMAND])
    const stillMounted = !mounts.ok || mounts.results[0].stdout.includes(mnt)
    if (stillMounted) {
      umountFailure = umount
      if (config.debugUmountFailures) {
        const lsof = await ctx.run([lsofCommand(mnt)])
        logger.warn(`umount ${mnt} on ${host} failed; lsof: ${lsof.results[0]?.stdout ?? lsof.error}`)
      }
    }
  }
  if (!isGlusterSnapshotMount(mnt)) {
    const fstab = await ctx.run([fstabRemoveCommand(config, req.brickId)])
    if (!fstab.ok) throw outcomeError(fstab, host)
  }
  if (umountFailure) throw outcomeError(umountFailure, host)

  const lvRemoved = await ctx.run([lvremoveCommand(config, req.deviceId, brickLvName(req))])
  if (!lvRemoved.ok && !isLvmNotFound(lvRemoved.error)) throw outcomeError(lvRemoved, host)

  const thinPool = brickThinPoolName(req)
  const countQuery = await ctx.run([thinPoolCountCommand(config, req.deviceId, thinPool)])
  let thinCount = 0
  if (countQuery.ok) {
    try {
      thinCount = parseThinCount(countQuery.results[0].stdout)
    } catch (err) {
      throw new NodeCommandError(
        `Failed to convert number of logical volumes in thin pool ${vg}/${thinPool} on host ${host}: ${(err as Error).message}`,
        host,
      )
    }
  } else if (!isLvmNotFound(countQuery.error)) {
    throw new NodeCommandError(
      `Unable to determine number of logical volumes in thin pool ${vg}/${thinPool} on host ${host}`,
      host,
      countQuery.failed?.command,
    )
  }

  let spaceReclaimed = false
  if (thinCount === 0) {
    const poolRemoved = await ctx.run([lvremoveCommand(config, req.deviceId, thinPool)])
    // an empty pool that will not go is a failure, not "space kept": the
    // caller would otherwise credit space the node still holds
    if (!poolRemoved.ok && !isLvmNotFound(poolRemoved.error)) throw outcomeError(poolRemoved, host)
    spaceReclaimed = true
  }
  // heketi ignores a failed rmdir and leaves the directory behind; heqet
  // retries once, then fails (a directory already gone is fine), so a
  // destroy that resolves left nothing on the node
  let removed = await ctx.run([rmdirCommand(mnt)])
  if (!removed.ok) removed = await ctx.run([rmdirCommand(mnt)])
  if (!removed.ok && !(!removed.transport && /No such file or directory/.test(removed.error))) {
    throw outcomeError(removed, host)
  }
  return { spaceReclaimed }
}
