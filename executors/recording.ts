// A CommandRunner for tests: records every (host, command) and answers from a
// scripted responder. Batches stop at the first non-zero exit and never
// interleave per host, like the real runners.
import { HostQueue } from './host-queue.ts'
import type { BatchOptions, CommandResult, CommandRunner } from './runner.ts'

/**
 * Answer for one command: a partial result (default exit 0, empty output), or
 * an Error (returned or thrown) to fail the whole batch as a transport error.
 */
export type ScriptedResponder = (
  host: string,
  command: string,
) => Partial<CommandResult> | Error | undefined | Promise<Partial<CommandResult> | Error | undefined>

export interface RecordedCommand {
  host: string
  command: string
  /** index of the batch in `batches` */
  batch: number
}

export interface RecordedBatch {
  host: string
  commands: string[]
  opts: BatchOptions
}

export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCommand[] = []
  readonly batches: RecordedBatch[] = []
  closed = false
  private readonly hostQueue = new HostQueue()

  constructor(public responder: ScriptedResponder = () => undefined) {}

  runBatch(host: string, commands: string[], opts: BatchOptions): Promise<CommandResult[]> {
    return this.hostQueue.run(host, () => this.execute(host, commands, opts))
  }

  private async execute(host: string, commands: string[], opts: BatchOptions): Promise<CommandResult[]> {
    const batch = this.batches.push({ host, commands: [...commands], opts }) - 1
    const results: CommandResult[] = []
    for (const command of commands) {
      this.calls.push({ host, command, batch })
      const answer = await this.responder(host, command)
      if (answer instanceof Error) throw answer
      const result: CommandResult = {
        command,
        exitCode: answer?.exitCode ?? 0,
        stdout: answer?.stdout ?? '',
        stderr: answer?.stderr ?? '',
      }
      results.push(result)
      if (result.exitCode !== 0) break
    }
    return results
  }

  /** commands sent (optionally to one host), in order */
  commands(host?: string): string[] {
    return this.calls.filter((c) => host === undefined || c.host === host).map((c) => c.command)
  }

  reset(): void {
    this.calls.length = 0
    this.batches.length = 0
  }

  async close(): Promise<void> {
    this.closed = true
  }
}
