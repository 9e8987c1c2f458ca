// A real heqet server process for end-to-end tests and the chaos runs.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { signToken } from '../../../api/auth.ts'

const BIN = fileURLToPath(new URL('../../../bin/heqet.js', import.meta.url))

export { freePort } from '../../helpers/free-port.ts'

export interface Response {
  status: number
  body: string
  location: string | null
}

export class ServerProcess {
  private child?: ChildProcess
  output = ''

  constructor(
    readonly configPath: string,
    readonly port: number,
    readonly adminKey: string,
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  async start(): Promise<void> {
    this.output = ''
    const child = spawn(process.execPath, [BIN, `--config=${this.configPath}`], {
      env: { ...process.env, ...this.env, HEKETI_HTTP_PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    // never outlive the test or bench that started it (exit handlers run on signals too)
    const reap = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    process.once('exit', reap)
    child.once('exit', () => process.removeListener('exit', reap))
    child.stdout!.on('data', (d) => {
      this.output += d
    })
    child.stderr!.on('data', (d) => {
      this.output += d
    })
    const deadline = Date.now() + 30_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${this.output}`)
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/hello`)
        if (res.status === 200) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`server did not answer: ${this.output}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  /** SIGKILL, no clean-up: a crash. */
  async kill9(): Promise<void> {
    await this.signal('SIGKILL')
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM')
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.kill(sig)
    await exited
  }

  async call(method: string, path: string, body?: unknown): Promise<Response> {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method,
      redirect: 'manual',
      headers: { authorization: `bearer ${signToken('admin', this.adminKey, method, path)}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: res.status, body: await res.text(), location: res.headers.get('location') }
  }

  /** Start an async request and poll its queue entry to the end. */
  async run(method: string, path: string, body?: unknown): Promise<Response> {
    const first = await this.call(method, path, body)
    if (first.status !== 202 || !first.location) return first
    for (;;) {
      const poll = await this.call('GET', first.location)
      if (poll.status !== 200) return poll
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}
