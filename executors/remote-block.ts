// gluster-block on a node (heketi node commands §8): one command per batch,
// timeout 10 minutes, and heketi's reading of each answer — which stream
// carries the JSON, what a FAIL says, which failures mean "already gone".
import {
  blockCreateCommand,
  blockDeleteCommand,
  blockInfoCommand,
  blockListCommand,
  blockModifySizeCommand,
} from './commands/block.ts'
import {
  type GbJson,
  gbErrMsg,
  isGbFailure,
  isGbNotFound,
  parseBlockInfo,
  parseBlockList,
  parseGbJson,
} from './commands/block-output.ts'
import type { RemoteExecutorConfig } from './config.ts'
import {
  type BlockCreated,
  type BlockCreateRequest,
  type BlockVolumeNodeInfo,
  NodeCommandError,
} from './executor.ts'
import { type BatchOutcome, outcomeError } from './remote-batch.ts'

export interface BlockContext {
  config: RemoteExecutorConfig
  /** run one command on `host` with the gluster-block timeout; `quiet` keeps its output out of the log */
  run(host: string, command: string, quiet: boolean): Promise<BatchOutcome>
}

/** The one command's answer; a transport failure is thrown as is. */
async function answer(ctx: BlockContext, host: string, command: string, quiet = false) {
  const outcome = await ctx.run(host, command, quiet)
  const result = outcome.results[0]
  if (outcome.transport || !result) throw outcomeError(outcome, host)
  return { outcome, result }
}

const str = (value: unknown) => (typeof value === 'string' ? value : '')

/** quiet when auth is enabled: the answer carries the password */
export async function blockCreate(ctx: BlockContext, req: BlockCreateRequest): Promise<BlockCreated> {
  const command = blockCreateCommand(ctx.config, req)
  const { outcome, result } = await answer(ctx, req.host, command, req.auth)
  const output = result.stdout !== '' ? result.stdout : result.stderr
  const fail = (message: string) => new NodeCommandError(message, req.host, command, result.exitCode)
  const json = parseGbJson(output)
  if (!json) throw fail(`Unparsable error during block volume create: ${output}`)
  if (isGbFailure(json)) throw fail(`Failed to create block volume: ${gbErrMsg(json)}`)
  if (!outcome.ok) throw fail(`Failed to create block volume: ${outcome.error}`)
  return { iqn: str(json['IQN']), username: str(json['USERNAME']), password: str(json['PASSWORD']) }
}

/** Resolves when gluster-block deleted it or says it does not exist. */
export async function blockDelete(
  ctx: BlockContext,
  host: string,
  hostingVolume: string,
  name: string,
): Promise<void> {
  const command = blockDeleteCommand(hostingVolume, name)
  const { outcome, result } = await answer(ctx, host, command)
  // heketi reads stderr first here
  const output = result.stderr !== '' ? result.stderr : result.stdout
  const json = output === '' ? undefined : parseGbJson(output)
  if (json && isGbFailure(json)) {
    if (isGbNotFound(json, hostingVolume, name)) return
    throw new NodeCommandError(gbErrMsg(json), host, command, result.exitCode)
  }
  if (!outcome.ok) throw outcomeError(outcome, host)
}

export async function blockExpand(
  ctx: BlockContext,
  host: string,
  hostingVolume: string,
  name: string,
  sizeGiB: number,
): Promise<void> {
  const command = blockModifySizeCommand(hostingVolume, name, sizeGiB)
  const { outcome, result } = await answer(ctx, host, command)
  const output = result.stdout !== '' ? result.stdout : result.stderr
  const fail = (message: string) => new NodeCommandError(message, host, command, result.exitCode)
  const json = parseGbJson(output)
  if (!json) throw fail(`Unparsable error during block volume expand: ${output}`)
  if (isGbFailure(json)) {
    const msg = gbErrMsg(json)
    throw fail(
      `Failed to expand block volume${msg ? `: ${msg}` : ''} (see logs for details, and retry the operation)`,
    )
  }
  if (!outcome.ok) throw outcomeError(outcome, host)
}

/** A JSON answer of info/list, or the error; undefined for "does not exist". */
async function query(
  ctx: BlockContext,
  host: string,
  command: string,
  what: string,
  notFound: (json: GbJson) => boolean,
  quiet: boolean,
): Promise<GbJson | undefined> {
  const { outcome, result } = await answer(ctx, host, command, quiet)
  const output = result.stdout !== '' ? result.stdout : result.stderr
  const json = parseGbJson(output)
  if (json && isGbFailure(json)) {
    if (notFound(json)) return undefined
    throw new NodeCommandError(`Failed to get ${what}: ${gbErrMsg(json)}`, host, command, result.exitCode)
  }
  if (!outcome.ok) throw outcomeError(outcome, host)
  if (!json) throw new NodeCommandError(`Unparsable output of ${what}: ${output}`, host, command)
  return json
}

/** quiet: the answer carries the password */
export async function blockInfo(
  ctx: BlockContext,
  host: string,
  hostingVolume: string,
  name: string,
): Promise<BlockVolumeNodeInfo | undefined> {
  const command = blockInfoCommand(hostingVolume, name)
  const what = `block volume info of ${hostingVolume}/${name}`
  const json = await query(ctx, host, command, what, (j) => isGbNotFound(j, hostingVolume, name), true)
  if (!json) return undefined
  try {
    return parseBlockInfo(json)
  } catch (err) {
    throw new NodeCommandError(`Unable to read ${what}: ${(err as Error).message}`, host, command)
  }
}

export async function blockList(ctx: BlockContext, host: string, hostingVolume: string): Promise<string[]> {
  const command = blockListCommand(hostingVolume)
  const json = await query(ctx, host, command, `block volume list of ${hostingVolume}`, () => false, false)
  return json ? parseBlockList(json) : []
}
