// One leader among the replicas on an etcd prefix: etcd's election recipe
// (what etcd's Go client `concurrency.Election` does), on the store's client.
//
//   P/_meta/election/<lease id hex>  = {"id":..,"url":..}, attached to the candidate's lease
//
// A candidate grants a lease (TTL `ttlSec`, kept alive every TTL/3), creates
// its key under that lease, and waits until every key created before it is
// gone: the live key with the lowest create revision is the leader. The key
// and its create revision are the leader's fence (db/etcd.ts: every write
// compares them, so etcd refuses a write whose lease has ended).
//
// A leader stops being leader — locally, before etcd can hand the lease to
// anyone — when a keepalive goes unanswered until shortly before the lease
// could have expired (the deadline counts from when the last answered
// keepalive was SENT), when etcd says the lease is gone, or when its key
// disappears. It then revokes its lease (if etcd can still be reached) and
// campaigns again as a new candidate.
//
// Every replica (leader or not) observes the election: `leader` is the
// current leader's advertised URL, for forwarding writes.
import { randomBytes } from 'node:crypto'
import { ElectionTerms } from './election-terms.ts'
import type { Fence } from './etcd.ts'
import { prefixEnd } from './etcd-keys.ts'

interface KeyValue {
  key: Buffer
  value: Buffer
  create_revision: string
}
interface Lease {
  grant(): Promise<string>
  revoke(): Promise<void>
  release(): void
  on(event: 'lost', handler: (err: Error) => void): Lease
  on(event: 'keepaliveFired' | 'keepaliveSucceeded', handler: () => void): Lease
}
interface Watcher {
  on(event: 'data', handler: (res: { events: { type: 'Put' | 'Delete'; kv: KeyValue }[] }) => void): Watcher
  on(event: 'error', handler: (err: Error) => void): Watcher
  cancel(): Promise<void>
}
interface WatchBuilder {
  key(key: string | Buffer): WatchBuilder
  prefix(prefix: string | Buffer): WatchBuilder
  startRevision(rev: string): WatchBuilder
  create(): Promise<Watcher>
}
/** The part of the etcd3 client (1.1.x) the election uses. */
export interface ElectionClient {
  lease(ttlSec: number): Lease
  watch(): WatchBuilder
  kv: {
    range(req: {
      key: Buffer
      range_end: Buffer
      limit: number
      sort_order: 'Ascend' | 'Descend'
      sort_target: 'Create'
      max_create_revision?: string
    }): Promise<{ header: { revision: string }; kvs: KeyValue[] }>
    txn(req: {
      compare: { key: Buffer; target: 'Create'; result: 'Equal'; create_revision: string }[]
      success: { request_put: { key: Buffer; value: Buffer; lease: string } }[]
      failure: { request_range: { key: Buffer } }[]
    }): Promise<{
      succeeded: boolean
      header: { revision: string }
      responses: { response_range?: { kvs: KeyValue[] } }[]
    }>
  }
}

export interface LeaderInfo {
  /** the replica's id (ha.replica_id, or random per process) */
  id: string
  /** where the leader takes forwarded requests (ha.advertise_url) */
  url: string
  /** its election key and the key's create revision: the fence */
  key: string
  createRevision: string
  /** the compare its writes carry when it is not (key, createRevision) (db/kube-lease-election.ts) */
  fence?: Fence
}

export interface ElectionLog {
  info(msg: string): void
  warn(msg: string): void
  error(msg: string): void
}

export interface ElectionOptions {
  client: ElectionClient
  /** the store's prefix (the election lives under P/_meta/election/) */
  prefix: string
  ttlSec: number
  id: string
  url: string
  log: ElectionLog
  /** called whenever this replica becomes or stops being leader, or the observed leader changes */
  onChange(): void
  /** pause between campaigns after a failure (default 500 ms) */
  retryMs?: number
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export function newReplicaId(): string {
  return randomBytes(8).toString('hex')
}

export class EtcdElection extends ElectionTerms {
  private readonly electionPrefix: Buffer
  private endTerm: ((reason: string) => void) | undefined
  private observer: Watcher | undefined
  private refreshTimer: NodeJS.Timeout | undefined
  private campaigning: Promise<void> | undefined
  /** the revision at which this term was seen to begin */
  private termRev = 0n
  /** the newest revision an observed leader was read at (older answers are ignored) */
  private observedRev = 0n

  constructor(private readonly opts: ElectionOptions) {
    super(opts)
    this.electionPrefix = Buffer.from(`${opts.prefix}/_meta/election/`)
  }

  start(): void {
    this.campaigning = this.campaignLoop()
    void this.observe()
    // a watch can stall silently on a partition: look again every TTL
    this.refreshTimer = setInterval(() => void this.refreshLeader(), this.opts.ttlSec * 1000)
  }

  /** End the current term (if any) now; this replica then campaigns again. */
  resign(reason: string): void {
    this.endTerm?.(reason)
  }

  /** Resign (the lease is revoked, so another replica takes over at once) and stop. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.refreshTimer) clearInterval(this.refreshTimer)
    this.endTerm?.('stopping')
    await this.campaigning
    const observer = this.observer
    this.observer = undefined
    if (observer) await observer.cancel()
  }

  private async campaignLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.campaignOnce()
      } catch (err) {
        if (!this.stopped) this.opts.log.warn(`leader election: ${(err as Error).message}; campaigning again`)
      }
      if (!this.stopped) await sleep(this.opts.retryMs ?? 500)
    }
  }

  /** One candidacy: one lease, one key; returns when it ended (lost, deposed or stopped). */
  private async campaignOnce(): Promise<void> {
    const { client, ttlSec } = this.opts
    const lease = client.lease(ttlSec)
    let reasonEnded: string | undefined
    const ended = new Promise<string>((resolve) => {
      this.endTerm = (reason) => {
        reasonEnded ??= reason
        resolve(reasonEnded)
      }
    })
    // the lease is surely alive until `validUntil`: a keepalive sent at t and
    // answered renews it to at least t + TTL on the server
    const marginMs = Math.min(1000, ttlSec * 250)
    const fired: number[] = []
    const granting = Date.now()
    let validUntil = granting + ttlSec * 1000
    lease.on('keepaliveFired', () => fired.push(Date.now()))
    lease.on('keepaliveSucceeded', () => {
      validUntil = (fired.shift() ?? Date.now()) + ttlSec * 1000
    })
    lease.on('lost', (err) => this.endTerm?.(`lease lost: ${err.message}`))
    const deadline = setInterval(
      () => {
        if (Date.now() > validUntil - marginMs) this.endTerm?.('lease keepalive not answered in time')
      },
      Math.max(50, Math.min(250, marginMs / 2)),
    )
    try {
      const id = await Promise.race([lease.grant(), ended.then((r) => Promise.reject(new Error(r)))])
      validUntil = granting + ttlSec * 1000
      const key = Buffer.concat([this.electionPrefix, Buffer.from(BigInt(id).toString(16))])
      const value = Buffer.from(JSON.stringify({ id: this.opts.id, url: this.opts.url }))
      const res = await client.kv.txn({
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: '0' }],
        success: [{ request_put: { key, value, lease: id } }],
        failure: [{ request_range: { key } }],
      })
      const createRevision = res.succeeded
        ? res.header.revision
        : res.responses[0]!.response_range!.kvs[0]!.create_revision
      const electedRev = await Promise.race([
        this.waitForTurn(createRevision, ended),
        ended.then(() => undefined),
      ])
      if (electedRev === undefined) return
      this.termRev = BigInt(electedRev)
      this.termBegan(
        { id: this.opts.id, url: this.opts.url, key: key.toString(), createRevision },
        `key ${key.toString()}`,
      )
      void this.refreshLeader()
      this.termOver(await ended)
    } finally {
      clearInterval(deadline)
      this.endTerm = undefined
      // revoking lets the next candidate in at once; when etcd is out of
      // reach the lease simply expires after its TTL
      const revoked = lease.revoke().then(
        () => true,
        (err: Error) => {
          this.opts.log.warn(
            `leader election: could not revoke the lease (it expires by itself): ${err.message}`,
          )
          return false
        },
      )
      if (!(await Promise.race([revoked, sleep(2000).then(() => false)]))) lease.release()
    }
  }

  /**
   * Wait until no key created before ours is left: the etcd revision at which
   * that was seen; undefined when the candidacy ended first.
   */
  private async waitForTurn(createRevision: string, ended: Promise<string>): Promise<string | undefined> {
    const { client } = this.opts
    let over = false
    void ended.then(() => {
      over = true
    })
    while (!over) {
      const res = await client.kv.range({
        key: this.electionPrefix,
        range_end: prefixEnd(this.electionPrefix),
        limit: 1,
        sort_order: 'Descend',
        sort_target: 'Create',
        max_create_revision: (BigInt(createRevision) - 1n).toString(),
      })
      const before = res.kvs[0]
      if (!before) return over ? undefined : res.header.revision
      const watcher = await client
        .watch()
        .key(before.key)
        .startRevision((BigInt(res.header.revision) + 1n).toString())
        .create()
      try {
        await Promise.race([
          new Promise<void>((resolve, reject) => {
            watcher.on('data', (r) => {
              if (r.events.some((e) => e.type === 'Delete')) resolve()
            })
            watcher.on('error', reject)
          }),
          ended,
        ])
      } finally {
        await watcher.cancel()
      }
    }
    return undefined
  }

  /** Follow the election prefix: every change re-reads who leads. */
  private async observe(): Promise<void> {
    while (!this.stopped) {
      try {
        const watcher = await this.opts.client.watch().prefix(this.electionPrefix).create()
        this.observer = watcher
        const failed = new Promise<Error>((resolve) => watcher.on('error', resolve))
        watcher.on('data', () => void this.refreshLeader())
        await this.refreshLeader()
        const err = await failed
        this.observer = undefined
        await watcher.cancel()
        if (!this.stopped) this.opts.log.warn(`leader election: observer failed, restarting: ${err.message}`)
      } catch (err) {
        if (!this.stopped) this.opts.log.warn(`leader election: cannot observe: ${(err as Error).message}`)
      }
      if (!this.stopped) await sleep(this.opts.retryMs ?? 500)
    }
  }

  private async refreshLeader(): Promise<void> {
    let res: Awaited<ReturnType<ElectionClient['kv']['range']>>
    try {
      res = await this.opts.client.kv.range({
        key: this.electionPrefix,
        range_end: prefixEnd(this.electionPrefix),
        limit: 1,
        sort_order: 'Ascend',
        sort_target: 'Create',
      })
    } catch (err) {
      this.opts.log.warn(`leader election: cannot read the leader: ${(err as Error).message}`)
      return
    }
    const rev = BigInt(res.header.revision)
    if (rev < this.observedRev) return // a slower, older answer
    this.observedRev = rev
    const kv = res.kvs[0]
    let next: LeaderInfo | undefined
    if (kv) {
      try {
        const v = JSON.parse(kv.value.toString()) as { id: string; url: string }
        next = { id: v.id, url: v.url, key: kv.key.toString(), createRevision: kv.create_revision }
      } catch (err) {
        this.opts.log.error(
          `leader election: unreadable leader value at ${kv.key}: ${(err as Error).message}`,
        )
      }
    }
    // our own key is no longer the first one: someone removed it (lease revoked)
    if (this.term && rev > this.termRev && next?.key !== this.term.key)
      this.endTerm?.('the leader key is gone from etcd')
    this.observeLeader(next)
  }
}
