// How a batch of command strings reaches one host. RemoteExecutor builds the
// strings (executors/commands/) and hands them to a runner; ssh and kube are
// runners, and so is the recording runner used by the unit tests.

export interface CommandResult {
  command: string
  exitCode: number
  stdout: string
  stderr: string
}

export interface BatchOptions {
  /** heketi's per-family batch timeout, in minutes */
  timeoutMinutes: number
  /** do not log stdout/stderr (secrets, noisy checks) */
  quiet?: boolean
}

export interface CommandRunner {
  /**
   * Run the commands in order on `host`, stopping at the first non-zero exit.
   * Resolves with one result per command that ran (the last may have failed).
   * Rejects only on transport failure (connect, session, timeout).
   * Batches on one host never interleave.
   */
  runBatch(host: string, commands: string[], opts: BatchOptions): Promise<CommandResult[]>
  close(): Promise<void>
}
