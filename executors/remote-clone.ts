// Volume clone through a temporary gluster snapshot (heketi node commands §7):
// create, activate, clone, start the clone, read its info; then always
// deactivate and delete the snapshot. Each step is its own batch.
import {
  cloneSnapshotName,
  snapshotActivateCommand,
  snapshotCloneCommand,
  snapshotCreateCommand,
  snapshotDeactivateCommand,
  snapshotDeleteCommand,
  snapshotVolumeStartCommand,
  volumeDeleteCommand,
  volumeStopForceCommand,
} from './commands/gluster.ts'
import { parseSnapshotXml } from './commands/gluster-xml.ts'
import type { RemoteExecutorConfig } from './config.ts'
import { type CloneRequest, type GlusterVolumeInfo, NodeCommandError } from './executor.ts'
import type { BatchOutcome, ExecutorLogger } from './remote-batch.ts'

export interface CloneContext {
  config: RemoteExecutorConfig
  /** run one batch on the clone request's host with the gluster timeout */
  run(commands: string[]): Promise<BatchOutcome>
  volumeInfo(name: string): Promise<GlusterVolumeInfo>
  logger: ExecutorLogger
}

/**
 * One `--xml` step: exit failure → `<unable>: <error>`, opRet != 0 →
 * `<failed>: <opErrstr>`. Resolves with the error text, '' on success.
 */
async function snapshotStep(ctx: CloneContext, command: string, unable: string, failed: string) {
  const outcome = await ctx.run([command])
  if (!outcome.ok) return `${unable}: ${outcome.error}`
  try {
    const status = parseSnapshotXml(outcome.results[0].stdout)
    return status.opRet === 0 ? '' : `${failed}: ${status.opErrstr}`
  } catch (err) {
    return `${unable}: ${(err as Error).message}`
  }
}

export async function cloneVolume(req: CloneRequest, ctx: CloneContext): Promise<GlusterVolumeInfo> {
  const { config, logger } = ctx
  const { host, source, clone } = req
  const snapshot = cloneSnapshotName(req.snapshotId)
  const fail = (message: string) => new NodeCommandError(message, host)

  const created = await snapshotStep(
    ctx,
    snapshotCreateCommand(config, snapshot, source),
    `Unable to create snapshot of volume ${source}`,
    `Failed to create snapshot of volume ${source}`,
  )
  if (created) throw fail(created)
  try {
    const activated = await snapshotStep(
      ctx,
      snapshotActivateCommand(config, snapshot),
      `Unable to activate snapshot ${snapshot}`,
      `Failed to activate snapshot ${snapshot}`,
    )
    if (activated) throw fail(activated)
    try {
      const cloned = await snapshotStep(
        ctx,
        snapshotCloneCommand(config, clone, snapshot),
        `Unable to clone snapshot ${snapshot} to volume ${clone}`,
        `Failed to clone snapshot ${snapshot} to volume ${clone}`,
      )
      if (cloned) throw fail(cloned)
      const started = await snapshotStep(
        ctx,
        snapshotVolumeStartCommand(config, clone),
        `Unable to start volume ${clone}, clone of snapshot ${snapshot}`,
        `Unable to start volume ${clone}, clone of snapshot ${snapshot}`,
      )
      if (started) {
        await ctx.run([volumeStopForceCommand(config, clone)])
        await ctx.run([volumeDeleteCommand(config, clone)])
        throw fail(started)
      }
      return await ctx.volumeInfo(clone)
    } finally {
      const deactivated = await snapshotStep(
        ctx,
        snapshotDeactivateCommand(config, snapshot),
        `Unable to deactivate snapshot ${snapshot}`,
        `Failed to deactivate snapshot ${snapshot}`,
      )
      if (deactivated) logger.warn(deactivated)
    }
  } finally {
    const deleted = await snapshotStep(
      ctx,
      snapshotDeleteCommand(config, snapshot),
      `Unable to delete snapshot ${snapshot}`,
      `Failed to delete snapshot ${snapshot}`,
    )
    if (deleted) logger.warn(deleted)
  }
}
