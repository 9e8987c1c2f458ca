// Self-heal after a brick replacement (beyond heketi, issue 15). gluster's
// self-heal daemons crawl their bricks' heal indices when a brick comes up
// and then only every 10 minutes; a crawl that ran before replace-brick had
// marked the new brick as needing data finds nothing, and the volume keeps
// one copy fewer until the next full crawl. Worse, when glusterd misses that
// mark, heal info reads 0 while the new brick lacks every older file. So after
// every replace-brick heqet starts a full heal itself (`gluster volume heal
// <vol> full`, which merges missing entries without the mark) and follows it: the
// pending entries per volume are polled until they reach 0 (re-starting the
// heal while they do not shrink), and shown in /operations, the logs and
// /metrics. Before a replacement, `waitForSourceHealed` holds a brick that is
// still the source of pending heal until it is healed or the wait runs out.
//
// Finished means more than heal info reading 0: entries the full crawl has
// not reached yet are in no index, so heal info can read 0 while the new
// brick still lacks files. A heal is finished when, after a `heal … full`
// gluster accepted, heal info reads 0 on every connected brick AND the
// replica set of every brick replaced since the heal began has had a FULL
// crawl run to its end (`volume heal <vol> statistics`; that history restarts
// with every replace-brick, so any FULL crawl in it is a new one). glusterd
// hands a full heal to ONE self-heal daemon per set (on the testbed: a
// surviving brick's, not the new brick's), and that crawl heals the whole set.

import type { HealCrawl, HealInfoBrick } from '../executors/executor.ts'
import type { AppContext } from './context.ts'
import { clusterHosts, onAnyHost } from './operations/bricks.ts'

export interface HealProgress {
  volume: string
  /** entries pending heal, summed over the volume's bricks (NaN until the first poll) */
  pendingEntries: number
  perBrick: Record<string, number>
  /** ms epoch of the replacement that started this heal */
  startedAt: number
  checkedAt: number
  /** ms epoch when the entries reached 0 (undefined while healing) */
  finishedAt?: number
  /** `volume heal` commands sent (the first right after replace-brick) */
  triggers: number
  lastError: string
  /** no `volume heal` went through since the last replacement */
  startPending: boolean
  /** `host:path` of every brick replaced since this heal began */
  replacedBricks: string[]
  /** bricks per replica set (gluster lists a volume's bricks set after set) */
  setSize: number
  /** the FULL crawl of the replaced bricks' sets, as last read (`unknown` before heal info first read 0) */
  fullCrawl: 'unknown' | 'not started' | 'running' | 'ended'
}

export interface HealSettings {
  /** poll period of heal info while a volume heals */
  pollMs: number
  /** send `volume heal` again when the entries did not shrink for this long */
  retriggerMs: number
  /** stop following a heal after this long (it is logged as unfinished) */
  followMs: number
  /** how long a replacement waits for its brick to stop being a heal source */
  sourceWaitMs: number
}

export const DEFAULT_HEAL_SETTINGS: HealSettings = {
  pollMs: 2000,
  retriggerMs: 20_000,
  followMs: 30 * 60_000,
  sourceWaitMs: 120_000,
}

/** Pending entries of one heal-info row; `-` (brick down, unknown) counts as not healed. */
export function entriesOf(b: HealInfoBrick): number {
  const n = Number(b.numberOfEntries)
  return Number.isFinite(n) ? n : Number.NaN
}

export function pendingOf(rows: HealInfoBrick[]): number {
  return rows.reduce((sum, b) => sum + (Number.isNaN(entriesOf(b)) ? 0 : entriesOf(b)), 0)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
// a heal being followed in the background never keeps the process alive
const idle = (ms: number) => new Promise((r) => setTimeout(r, ms).unref())

export class HealTracker {
  private readonly heals = new Map<string, HealProgress>()
  private readonly followers = new Map<string, Promise<void>>()
  /** replacements whose brick waits for a heal: operation id → what it waits for */
  readonly waiting = new Map<string, { volume: string; brick: string; entries: number; since: number }>()
  private stopped = false
  healStartFailures = 0
  /** background followers that ended on an error (logged; shown in /operations while the heal is listed) */
  followerFailures = 0
  replacements = 0

  readonly settings: HealSettings

  constructor(settings: Partial<HealSettings> = {}) {
    this.settings = { ...DEFAULT_HEAL_SETTINGS, ...settings }
  }

  /** Heals followed now or finished within the last hour (older ones are forgotten). */
  list(): HealProgress[] {
    const cutoff = Date.now() - 3600_000
    for (const [volume, h] of this.heals)
      if (h.finishedAt !== undefined && h.finishedAt < cutoff) this.heals.delete(volume)
    return [...this.heals.values()]
  }

  get(volume: string): HealProgress | undefined {
    return this.heals.get(volume)
  }

  stop(): void {
    this.stopped = true
  }

  /**
   * Send `volume heal <vol>` through the first host that accepts it. Right
   * after replace-brick every host refuses for a second or two (glusterd is
   * restarting the self-heal daemons); the follower then tries again at each
   * poll until one start went through.
   */
  async trigger(ctx: AppContext, clusterId: string, volume: string): Promise<boolean> {
    const hosts = ctx.store.read((tx) => clusterHosts(ctx, tx, clusterId))
    const p = this.heals.get(volume)
    try {
      // `volume heal` takes glusterd's volume lock (src/volume-lock.ts)
      await ctx.volumeLock.exclusive(volume, () =>
        onAnyHost(hosts, (host) => ctx.executor.healStart(host, volume)),
      )
      if (p) {
        p.triggers++
        p.startPending = false
      }
      return true
    } catch (err) {
      this.healStartFailures++
      const text = (err as Error).message
      if (p) {
        p.lastError = text
        p.startPending = true
      }
      ctx.log.info(`self-heal of volume ${volume} not started yet (tried again at the next look): ${text}`)
      return false
    }
  }

  /** After a replace-brick (`replaced.brick` = `host:path`): start the heal and follow it in the background. */
  async afterReplace(
    ctx: AppContext,
    clusterId: string,
    volume: string,
    replaced: { brick: string; setSize: number },
  ): Promise<void> {
    this.replacements++
    const now = Date.now()
    const previous = this.heals.get(volume)
    // a replacement while the volume still heals continues that heal's record
    const ongoing = previous && previous.finishedAt === undefined ? previous : undefined
    const progress: HealProgress = {
      volume,
      pendingEntries: ongoing?.pendingEntries ?? Number.NaN,
      perBrick: ongoing?.perBrick ?? {},
      startedAt: ongoing?.startedAt ?? now,
      checkedAt: ongoing?.checkedAt ?? 0,
      triggers: ongoing?.triggers ?? 0,
      lastError: '',
      startPending: true,
      replacedBricks: [...(ongoing?.replacedBricks ?? []), replaced.brick],
      setSize: replaced.setSize,
      fullCrawl: 'unknown',
    }
    this.heals.set(volume, progress)
    ctx.log.info(`volume ${volume}: brick replaced, starting self-heal`)
    await this.trigger(ctx, clusterId, volume)
    if (this.followers.has(volume)) return
    // the first look belongs to the replacement: it shows in /operations at once
    if (await this.look(ctx, clusterId, volume)) return
    // nobody awaits the follower: its failure is logged and shown here, never left unhandled
    const follower = this.follow(ctx, clusterId, volume)
      .catch((err: unknown) => {
        this.followerFailures++
        const error = err instanceof Error ? err.message : String(err)
        const p = this.heals.get(volume)
        if (p) p.lastError = error
        ctx.log.error(`self-heal of volume ${volume}: no longer followed here: ${error}`)
      })
      .finally(() => this.followers.delete(volume))
    this.followers.set(volume, follower)
  }

  /** Resolves when the tracked heal of `volume` ended (finished, unfinished or stopped). */
  async settled(volume: string): Promise<void> {
    await this.followers.get(volume)
  }

  async healInfo(ctx: AppContext, clusterId: string, volume: string): Promise<HealInfoBrick[]> {
    const hosts = ctx.store.read((tx) => clusterHosts(ctx, tx, clusterId))
    return onAnyHost(hosts, (host) => ctx.executor.healInfo(host, volume))
  }

  private record(volume: string, rows: HealInfoBrick[]): HealProgress | undefined {
    const p = this.heals.get(volume)
    if (!p) return undefined
    p.perBrick = Object.fromEntries(rows.map((b) => [b.name, entriesOf(b)]))
    p.pendingEntries = pendingOf(rows)
    p.checkedAt = Date.now()
    return p
  }

  /** One look at the heal of `volume`; true when it is over (healed or no longer tracked). */
  private async look(ctx: AppContext, clusterId: string, volume: string): Promise<boolean> {
    const p = this.heals.get(volume)
    if (!p || this.stopped) return true
    let rows: HealInfoBrick[] = []
    try {
      rows = await this.healInfo(ctx, clusterId, volume)
    } catch (err) {
      p.lastError = (err as Error).message
      ctx.log.warn(`self-heal of volume ${volume}: heal info failed: ${p.lastError}`)
      return false
    }
    const before = p.pendingEntries
    this.record(volume, rows)
    if (!p.startPending) p.lastError = ''
    if (p.pendingEntries !== before)
      ctx.log.info(`self-heal of volume ${volume}: ${p.pendingEntries} entries pending`)
    const down = rows.filter((b) => Number.isNaN(entriesOf(b))).length
    if (rows.length === 0 || p.pendingEntries > 0 || down > 0 || p.startPending) return false
    const crawl = await this.fullCrawlOf(ctx, clusterId, volume, rows, p)
    if (crawl !== p.fullCrawl)
      ctx.log.info(`self-heal of volume ${volume}: heal info reads 0, full crawl of the new brick ${crawl}`)
    p.fullCrawl = crawl
    if (crawl !== 'ended') return false
    p.finishedAt = Date.now()
    ctx.log.info(
      `self-heal of volume ${volume} finished ${((p.finishedAt - p.startedAt) / 1000).toFixed(1)} s after the replacement`,
    )
    return true
  }

  /** Where the FULL crawl of the replaced bricks is; a failed look counts as `unknown`. */
  private async fullCrawlOf(
    ctx: AppContext,
    clusterId: string,
    volume: string,
    rows: HealInfoBrick[],
    p: HealProgress,
  ): Promise<HealProgress['fullCrawl']> {
    const hosts = ctx.store.read((tx) => clusterHosts(ctx, tx, clusterId))
    let crawls: HealCrawl[]
    try {
      crawls = await ctx.volumeLock.exclusive(volume, () =>
        onAnyHost(hosts, (host) => ctx.executor.healStatistics(host, volume)),
      )
    } catch (err) {
      p.lastError = (err as Error).message
      ctx.log.warn(`self-heal of volume ${volume}: heal statistics failed: ${p.lastError}`)
      return 'unknown'
    }
    // heal info lists the bricks in volume order; a brick replaced again since is gone
    const setOf = (position: number) => Math.floor(position / p.setSize)
    const sets = new Set(
      p.replacedBricks
        .map((b) => rows.findIndex((r) => r.name === b))
        .filter((i) => i >= 0)
        .map(setOf),
    )
    const full = crawls.filter((c) => c.type === 'FULL' && sets.has(setOf(c.brick)))
    if (full.some((c) => c.inProgress)) return 'running'
    return [...sets].every((s) => full.some((c) => setOf(c.brick) === s)) ? 'ended' : 'not started'
  }

  private async follow(ctx: AppContext, clusterId: string, volume: string): Promise<void> {
    let best = Number.POSITIVE_INFINITY
    let bestAt = Date.now()
    // a start glusterd keeps refusing is tried again with growing pauses (2, 4, 8 … 60 s)
    let refused = 0
    let nextStart = 0
    for (;;) {
      const p = this.heals.get(volume)
      if (!p || this.stopped || (await this.look(ctx, clusterId, volume))) return
      // a running full crawl is progress even when heal info reads 0 (sending
      // `heal full` again would only queue one more crawl after it)
      if (p.pendingEntries < best || p.fullCrawl === 'running') {
        best = p.pendingEntries
        bestAt = Date.now()
      }
      const now = Date.now()
      if (now - p.startedAt > this.settings.followMs) {
        ctx.log.warn(
          `self-heal of volume ${volume} still has ${p.pendingEntries} entries pending after ${Math.round((now - p.startedAt) / 1000)} s; no longer followed`,
        )
        return
      }
      if (p.startPending) {
        if (now >= nextStart) {
          refused = (await this.trigger(ctx, clusterId, volume)) ? 0 : refused + 1
          nextStart = Date.now() + Math.min(this.settings.pollMs * 2 ** Math.max(0, refused - 1), 60_000)
        }
      } else if (now - bestAt >= this.settings.retriggerMs) {
        ctx.log.info(`self-heal of volume ${volume} is not progressing; starting it again`)
        await this.trigger(ctx, clusterId, volume)
        bestAt = Date.now()
        best = Number.POSITIVE_INFINITY
      }
      await idle(this.settings.pollMs)
    }
  }

  /**
   * Wait (bounded) until the brick no longer reports entries to heal: a brick
   * that is the source of a pending heal must not be replaced (heketi's rule,
   * applied with fresh heal state instead of one early look). Returns the
   * fresh heal info; throws `refuse(entries)` when the wait runs out.
   */
  async waitForSourceHealed(
    ctx: AppContext,
    opts: {
      opId: string
      clusterId: string
      volume: string
      brick: string
      query: () => Promise<HealInfoBrick[]>
      refuse: (entries: number, waitedMs: number) => Error
    },
  ): Promise<HealInfoBrick[]> {
    const start = Date.now()
    const deadline = Date.now() + this.settings.sourceWaitMs
    let lastTrigger = 0
    try {
      for (;;) {
        const rows = await opts.query()
        this.record(opts.volume, rows)
        const own = rows.find((r) => r.name === opts.brick)
        const entries = own ? entriesOf(own) : 0
        if (!(entries > 0)) return rows
        const now = Date.now()
        if (now >= deadline || this.stopped) throw opts.refuse(entries, now - start)
        if (!this.waiting.has(opts.opId)) {
          ctx.log.info(
            `replacement of ${opts.brick} waits: it is the source of ${entries} entries still to heal on volume ${opts.volume}`,
          )
        }
        const since = this.waiting.get(opts.opId)?.since ?? now
        this.waiting.set(opts.opId, { volume: opts.volume, brick: opts.brick, entries, since })
        if (now - lastTrigger >= this.settings.retriggerMs) {
          await this.trigger(ctx, opts.clusterId, opts.volume)
          lastTrigger = Date.now()
        }
        await sleep(Math.min(this.settings.pollMs, Math.max(0, deadline - Date.now())))
      }
    } finally {
      this.waiting.delete(opts.opId)
    }
  }
}
