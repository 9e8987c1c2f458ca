// Running one batch for RemoteExecutor and turning its outcome into heketi's
// error text: the failed command's stderr if non-empty, else the transport's
// text for the exit (ssh: `Process exited with status N`), or the transport
// error itself when the batch never completed.
import { NodeCommandError } from './executor.ts'
import type { BatchOptions, CommandResult, CommandRunner } from './runner.ts'

export interface ExecutorLogger {
  warn(message: string): void
}

export type BatchOutcome =
  | { ok: true; transport: false; results: CommandResult[]; error: ''; failed?: undefined }
  | { ok: false; transport: boolean; results: CommandResult[]; error: string; failed?: CommandResult }

/** Go's ssh.ExitError text, what heketi reports when stderr is empty */
export function sshExitErrorText(exitCode: number): string {
  return `Process exited with status ${exitCode}`
}

export class BatchRunner {
  constructor(
    private readonly runner: CommandRunner,
    private readonly exitErrorText: (exitCode: number) => string = sshExitErrorText,
  ) {}

  async run(host: string, commands: string[], opts: BatchOptions): Promise<BatchOutcome> {
    let results: CommandResult[]
    try {
      results = await this.runner.runBatch(host, commands, opts)
    } catch (err) {
      return { ok: false, transport: true, results: [], error: (err as Error).message || String(err) }
    }
    const failed = results.find((r) => r.exitCode !== 0)
    if (failed) {
      const error = failed.stderr !== '' ? failed.stderr : this.exitErrorText(failed.exitCode)
      return { ok: false, transport: false, results, error, failed }
    }
    if (results.length !== commands.length) {
      const error = `batch ended after ${results.length} of ${commands.length} commands`
      return { ok: false, transport: true, results, error }
    }
    return { ok: true, transport: false, results, error: '' }
  }

  close(): Promise<void> {
    return this.runner.close()
  }
}

export function outcomeError(outcome: BatchOutcome, host: string): NodeCommandError {
  return new NodeCommandError(outcome.error, host, outcome.failed?.command, outcome.failed?.exitCode)
}
