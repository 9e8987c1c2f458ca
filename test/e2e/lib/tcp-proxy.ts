// A TCP proxy on loopback that a test can cut: a network partition between
// one process and one server, without iptables. Each heqet replica of the HA
// chaos run reaches every etcd member through its own proxy, so cutting a
// replica's proxies partitions that replica (and only it) from etcd.
//
// cut() is a black hole, not a refusal: open connections stop carrying bytes
// (both ways) and new ones are accepted but go nowhere, the way a dropped
// link looks to the client (its keepalives time out; nothing says "closed").
// heal() ends every held connection (the client sees a reset and reconnects)
// and forwards again.
import { connect, createServer, type Server, type Socket } from 'node:net'

export class CuttableProxy {
  private server: Server | undefined
  private readonly pairs = new Set<{ down: Socket; up: Socket }>()
  private readonly held = new Set<Socket>()
  private isCut = false
  port = 0

  constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  get cutNow(): boolean {
    return this.isCut
  }

  async start(): Promise<number> {
    const server = createServer((down) => this.accept(down))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as { port: number }).port
    return this.port
  }

  private accept(down: Socket): void {
    down.on('error', () => down.destroy()) // a reset from either side just ends this pair
    if (this.isCut) {
      down.pause()
      this.held.add(down)
      down.once('close', () => this.held.delete(down))
      return
    }
    const up = connect(this.targetPort, this.targetHost)
    const pair = { down, up }
    this.pairs.add(pair)
    up.on('error', () => up.destroy())
    const end = () => {
      this.pairs.delete(pair)
      down.destroy()
      up.destroy()
    }
    down.once('close', end)
    up.once('close', end)
    down.pipe(up)
    up.pipe(down)
  }

  /** Black-hole every connection, open and new. */
  cut(): void {
    this.isCut = true
    for (const { down, up } of this.pairs) {
      down.unpipe(up)
      up.unpipe(down)
      down.pause()
      up.pause()
      this.held.add(down)
      this.held.add(up)
    }
    this.pairs.clear()
  }

  /** End every held connection and forward new ones again. */
  heal(): void {
    this.isCut = false
    for (const s of this.held) s.destroy()
    this.held.clear()
  }

  async close(): Promise<void> {
    this.heal()
    for (const { down, up } of this.pairs) {
      down.destroy()
      up.destroy()
    }
    this.pairs.clear()
    const server = this.server
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
