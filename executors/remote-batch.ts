// Running one batch for RemoteExecutor and turning its outcome into heketi's
// error text: the failed command's stderr if non-empty, else the transport's
// text for the exit (ssh: `Process exited with status N`), or the transport
// error itself when the batch never completed.
import { NodeCommandError } from './executor.ts'
import type { BatchOptions, CommandResult, CommandRunner } from './runner.ts'

/** pino-compatible subset; `debug` receives every command and, unless quiet, its output */
export interface ExecutorLogger {
  warn(message: string): void
  debug?(message: string): void
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
    private readonly logger?: ExecutorLogger,
  ) {}

  async run(host: string, commands: string[], opts: BatchOptions): Promise<BatchOutcome> {
    const debug = this.logger?.debug?.bind(this.logger)
    for (const command of commands) debug?.(`${host}: running ${command}`)
    let results: CommandResult[]
    try {
      results = await this.runner.runBatch(host, commands, opts)
    } catch (err) {
      debug?.(`${host}: batch failed: ${(err as Error).message}`)
      return { ok: false, transport: true, results: [], error: (err as Error).message || String(err) }
    }
    if (debug) {
      for (const r of results) {
        const output = opts.quiet
          ? ''
          : ` stdout=${JSON.stringify(r.stdout)} stderr=${JSON.stringify(r.stderr)}`
        debug(`${host}: exit ${r.exitCode} from ${r.command}${output}`)
      }
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
