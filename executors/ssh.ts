// CommandRunner over ssh2. Heketi opens one connection per batch and one
// session per command; here each host keeps ONE persistent connection
// (reconnected when it drops, closed when idle), batches per host are
// serialized, and by default a whole batch runs in one exec round trip
// (see ssh-script.ts). Commands are wrapped exactly as heketi wraps them.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2'
import type { SshConfig } from './config.ts'
import { HostQueue } from './host-queue.ts'
import { isKnownHostKey, type KnownHostEntry, loadKnownHostsFromEnv } from './known-hosts.ts'
import type { BatchOptions, CommandResult, CommandRunner } from './runner.ts'
import {
  BatchFrameParser,
  buildBatchScript,
  SCRIPT_NO_TEMP_DIR_EXIT,
  wrapHeketiCommand,
} from './ssh-script.ts'

export interface SshRunnerOptions {
  privateKey: Buffer | string
  user: string
  port: number
  sudo: boolean
  /** run a batch as one exec of a script (default true); false = one session per command */
  singleRoundTrip?: boolean
  /** handshake + authentication limit, ms (default 10000) */
  connectTimeoutMs?: number
  /** close a host's connection after this long without batches, ms (default 60000) */
  idleCloseMs?: number
  /** known_hosts entries; default: files from env SSH_KNOWN_HOSTS, or no verification */
  knownHosts?: KnownHostEntry[]
}

export const SSH_COMMAND_TIMEOUT = 'SSH command timeout'

interface HostConnection {
  client: Client
  ready: Promise<Client>
  alive: boolean
  idleTimer?: NodeJS.Timeout
}

/** the channel could not be opened: nothing ran, a fresh connection may retry */
class ChannelOpenError extends Error {}

export class SshRunner implements CommandRunner {
  private readonly connections = new Map<string, HostConnection>()
  /** batches on one host run one after another; an idle host's connection closes after a while */
  private readonly hostQueue = new HostQueue((host) => this.armIdleTimer(host))
  private readonly knownHosts: KnownHostEntry[] | undefined
  /** hosts where the batch script cannot run (no writable temp dir) */
  private readonly perCommandHosts = new Set<string>()
  private closed = false
  /** exec sessions opened so far (one per batch in single-round-trip mode, one per command otherwise) */
  sessionsOpened = 0
  /** connections opened since start (for tests and metrics) */
  connectionsOpened = 0

  constructor(private readonly options: SshRunnerOptions) {
    this.knownHosts = options.knownHosts ?? loadKnownHostsFromEnv()
  }

  /** reads the key file with heketi's start-up error texts */
  static fromConfig(cfg: SshConfig, options: Partial<SshRunnerOptions> = {}): SshRunner {
    if (!cfg.keyfile) throw new Error('Missing ssh private key file in configuration')
    let privateKey: Buffer
    try {
      privateKey = readFileSync(cfg.keyfile)
    } catch {
      throw new Error('Unable to read private key file')
    }
    return new SshRunner({ privateKey, user: cfg.user, port: cfg.port, sudo: cfg.sudo, ...options })
  }

  runBatch(host: string, commands: string[], opts: BatchOptions): Promise<CommandResult[]> {
    if (this.closed) return Promise.reject(new Error('ssh runner is closed'))
    return this.hostQueue.run(host, () => this.runSerialized(host, commands, opts))
  }

  private async runSerialized(
    host: string,
    commands: string[],
    opts: BatchOptions,
  ): Promise<CommandResult[]> {
    const existing = this.connections.get(host)
    if (existing?.idleTimer) clearTimeout(existing.idleTimer)
    if (commands.length === 0) return []
    const timeoutMs = opts.timeoutMinutes * 60_000
    const wrapped = commands.map((c) => wrapHeketiCommand(c, this.options.sudo))
    if (this.options.singleRoundTrip !== false && !this.perCommandHosts.has(host)) {
      const results = await this.withChannelRetry(host, (client, alive) =>
        this.execScript(client, alive, commands, wrapped, timeoutMs),
      )
      if (results) return results
      // no writable temp dir on the node: one session per command from now on
      this.perCommandHosts.add(host)
    }
    const results: CommandResult[] = []
    for (let i = 0; i < commands.length; i++) {
      const result = await this.withChannelRetry(host, (client, alive) =>
        this.execOne(client, alive, commands[i], wrapped[i], timeoutMs),
      )
      results.push(result)
      if (result.exitCode !== 0) break
    }
    return results
  }

  /** run on the host's connection; when the channel cannot even open, reconnect once and retry */
  private async withChannelRetry<T>(
    host: string,
    work: (client: Client, alive: () => boolean) => Promise<T>,
  ) {
    const attempt = async () => {
      const client = await this.connect(host)
      const alive = () =>
        this.connections.get(host)?.client === client && this.connections.get(host)?.alive === true
      return work(client, alive)
    }
    try {
      return await attempt()
    } catch (err) {
      if (!(err instanceof ChannelOpenError)) throw err
      this.drop(host)
      return attempt()
    }
  }

  private connect(host: string): Promise<Client> {
    if (this.closed) return Promise.reject(new Error('ssh runner is closed'))
    const existing = this.connections.get(host)
    if (existing?.alive) return existing.ready
    const client = new Client()
    const conn: HostConnection = { client, alive: true, ready: Promise.resolve(client) }
    const { port, user } = this.options
    const config: ConnectConfig = {
      host,
      port,
      username: user,
      privateKey: this.options.privateKey,
      readyTimeout: this.options.connectTimeoutMs ?? 10_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
    }
    const knownHosts = this.knownHosts
    if (knownHosts) config.hostVerifier = (key: Buffer) => isKnownHostKey(knownHosts, host, port, key)
    conn.ready = new Promise<Client>((resolve, reject) => {
      client.once('ready', () => resolve(client))
      client.on('error', (err) => {
        conn.alive = false
        reject(new Error(`Unable to connect to ${host}:${port}: ${err.message}`))
      })
      client.on('close', () => {
        conn.alive = false
        if (conn.idleTimer) clearTimeout(conn.idleTimer)
        if (this.connections.get(host) === conn) this.connections.delete(host)
        reject(new Error(`Unable to connect to ${host}:${port}: connection closed`))
      })
      client.connect(config)
    })
    this.connections.set(host, conn)
    this.connectionsOpened++
    return conn.ready
  }

  private drop(host: string): void {
    const conn = this.connections.get(host)
    if (!conn) return
    conn.alive = false
    this.connections.delete(host)
    conn.client.end()
  }

  private armIdleTimer(host: string): void {
    const conn = this.connections.get(host)
    if (!conn || this.closed) return
    if (conn.idleTimer) clearTimeout(conn.idleTimer)
    conn.idleTimer = setTimeout(() => {
      if (!this.hostQueue.busy(host) && this.connections.get(host) === conn) this.drop(host)
    }, this.options.idleCloseMs ?? 60_000)
    conn.idleTimer.unref()
  }

  private openChannel(client: Client, command: string): Promise<ClientChannel> {
    this.sessionsOpened++
    return new Promise((resolve, reject) => {
      try {
        client.exec(command, (err, channel) =>
          err ? reject(new ChannelOpenError(err.message)) : resolve(channel),
        )
      } catch (err) {
        reject(new ChannelOpenError((err as Error).message))
      }
    })
  }

  /**
   * Collect a channel's output until it closes. `onStdout` may throw to fail
   * the run; the timer restarts whenever `restartTimer` is called.
   */
  private collect(
    channel: ClientChannel,
    connectionAlive: () => boolean,
    timeoutMs: number,
    onStdout: (chunk: Buffer) => void,
    bindRestart?: (restart: () => void) => void,
  ) {
    return new Promise<{ exitCode: number; stderr: Buffer[]; ended: string }>((resolve, reject) => {
      const stderr: Buffer[] = []
      let exitCode: number | null = null
      let signal: string | undefined
      let timer: NodeJS.Timeout | undefined
      const restart = () => {
        if (timer) clearTimeout(timer)
        timer = setTimeout(() => {
          try {
            channel.signal('KILL')
          } catch {
            // the server may not support signals; closing the channel is all we can do
          }
          channel.close()
          reject(new Error(SSH_COMMAND_TIMEOUT))
        }, timeoutMs)
      }
      restart()
      bindRestart?.(restart)
      channel.on('data', (chunk: Buffer) => {
        try {
          onStdout(chunk)
        } catch (err) {
          clearTimeout(timer)
          channel.close()
          reject(err)
        }
      })
      channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
      channel.on('exit', (code: number | null, signalName?: string) => {
        exitCode = code
        signal = signalName
      })
      channel.on('close', () => {
        clearTimeout(timer)
        // no exit status because the connection died: a transport failure, not exit 1
        if (exitCode === null && !connectionAlive()) reject(new Error('ssh connection lost'))
        // a session that ended without an exit status (killed by a signal, or
        // sshd could not start it) counts as exit 1; `ended` says which it was
        else
          resolve({
            exitCode: exitCode ?? 1,
            stderr,
            ended:
              exitCode !== null
                ? `exit ${exitCode}`
                : signal
                  ? `killed by signal ${signal}, exit 1`
                  : 'no exit status, exit 1',
          })
      })
      channel.end()
    })
  }

  private async execOne(
    client: Client,
    alive: () => boolean,
    command: string,
    wrapped: string,
    timeoutMs: number,
  ): Promise<CommandResult> {
    const channel = await this.openChannel(client, wrapped)
    const stdout: Buffer[] = []
    const { exitCode, stderr } = await this.collect(channel, alive, timeoutMs, (chunk) => stdout.push(chunk))
    return {
      command,
      exitCode,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
    }
  }

  /** resolves undefined when the node has no writable temp dir (caller falls back) */
  private async execScript(
    client: Client,
    alive: () => boolean,
    commands: string[],
    wrapped: string[],
    timeoutMs: number,
  ): Promise<CommandResult[] | undefined> {
    const nonce = randomBytes(12).toString('hex')
    const channel = await this.openChannel(client, buildBatchScript(wrapped, nonce))
    let restartTimer = () => {}
    const parser = new BatchFrameParser(nonce, () => restartTimer())
    const { exitCode, stderr, ended } = await this.collect(
      channel,
      alive,
      timeoutMs,
      (chunk) => parser.push(chunk),
      (restart) => {
        restartTimer = restart
      },
    )
    if (exitCode === SCRIPT_NO_TEMP_DIR_EXIT && !parser.sawStart) return undefined
    const results = parser.results.map((r, i) => ({ command: commands[i], ...r }))
    const last = results[results.length - 1]
    const complete = parser.ended || (last !== undefined && last.exitCode !== 0)
    if (!complete) {
      const detail = Buffer.concat(stderr).toString('utf8').trim()
      throw new Error(`ssh batch ended early (${ended})${detail ? `: ${detail}` : ''}`)
    }
    return results.map(({ command, exitCode, stdout, stderr }) => ({ command, exitCode, stdout, stderr }))
  }

  async close(): Promise<void> {
    this.closed = true
    for (const host of [...this.connections.keys()]) this.drop(host)
  }
}
