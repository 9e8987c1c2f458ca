// The node health monitor: periodically runs the glusterd check on every
// online node. Placement and "try on any host" skip nodes seen down; nodes
// never probed count as up. Entries not refreshed for two hours are dropped.
import type { AppContext, HealthView } from './context.ts'

const FORGET_AFTER_MS = 2 * 3600 * 1000

export class HealthMonitor implements HealthView {
  private readonly status = new Map<string, { up: boolean; at: number }>()
  private timer?: NodeJS.Timeout
  private stopped = false

  isUp(nodeId: string): boolean {
    return this.status.get(nodeId)?.up !== false
  }

  /** One pass over all online nodes, one after another like heketi. */
  async refresh(ctx: AppContext): Promise<void> {
    const nodes = ctx.store.read((tx) => tx.values('node').filter((n) => n.state === 'online'))
    for (const node of nodes) {
      if (this.stopped) return
      // a failed check is the node's state (down), and why is logged when it goes down
      const failure = await ctx.executor.glusterdCheck(node.hostnames.manage[0]!).then(
        () => undefined,
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      )
      const up = failure === undefined
      if (!up && this.isUp(node.id))
        ctx.log.warn(`node ${node.id} (${node.hostnames.manage[0]}): glusterd is down: ${failure}`)
      this.status.set(node.id, { up, at: Date.now() })
    }
    const now = Date.now()
    for (const [id, s] of this.status) if (now - s.at > FORGET_AFTER_MS) this.status.delete(id)
  }

  start(ctx: AppContext): void {
    this.stopped = false
    if (this.timer) clearTimeout(this.timer)
    const tick = async () => {
      await this.refresh(ctx).catch((err: Error) => ctx.log.error(`health monitor: ${err.message}`))
      if (!this.stopped) this.timer = setTimeout(tick, ctx.config.monitorRefreshSec * 1000)
    }
    this.timer = setTimeout(tick, ctx.config.monitorStartSec * 1000)
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
  }
}
