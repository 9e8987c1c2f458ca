// One leader among the replicas, elected on a Kubernetes coordination.k8s.io
// Lease the way client-go's leaderelection package does it; the data stays
// in etcd (the replicas share it there).
//
// The Lease: a candidate reads it (creating it when missing) and takes it
// when nobody holds it or its holder let it expire — renewTime +
// leaseDurationSeconds is past, or the record has not changed for a lease
// duration on this replica's own clock (client-go's rule, immune to clock
// skew) — by an update carrying the resourceVersion it read, with itself as
// holderIdentity, acquireTime = renewTime = now and leaseTransitions bumped.
// The API server's optimistic concurrency picks one winner: a 409 Conflict
// is a lost race. The holder renews every retry period (same update, its own
// resourceVersion) and steps down on its own when no renewal SENT within the
// renew deadline has succeeded: since the deadline is shorter than the lease
// duration, that is always before anyone else may take the Lease. A clean
// shutdown releases it (holderIdentity cleared) so the next replica takes
// over at its next retry instead of after a lease duration.
//
// The fence: a Lease cannot make etcd refuse anything, so a new leader
// writes its term into etcd — P/_meta/leader-term = {term, id, url} with
// term = the Lease's leaseTransitions, in one Txn guarded by the revision it
// read and only when greater than the stored term — and every write it makes
// compares that key's mod revision with the one it wrote (db/etcd.ts, fence
// `modRevision`). Once a newer leader has written its term, a deposed
// leader's writes (a paused process, one cut from the API server that has not
// yet noticed) are refused by etcd. A candidate sets leaseTransitions above
// the stored term when it takes the Lease, so a Lease that was deleted and
// re-created still yields increasing terms.
//
// Every replica observes the Lease at each retry: `leader` is the holder
// while its lease is valid, with the URL it stored with its term.
import { performance } from 'node:perf_hooks'
import { ElectionTerms } from './election-terms.ts'
import type { Fence } from './etcd.ts'
import type { ElectionLog, LeaderInfo } from './etcd-election.ts'

/** A Lease as the election needs it (spec fields + the object's resourceVersion). */
export interface LeaseRecord {
  holderIdentity: string
  leaseDurationSeconds: number
  /** MicroTime text (RFC 3339, 6 fractional digits) */
  acquireTime?: string
  renewTime?: string
  leaseTransitions: number
  resourceVersion: string
}

export type LeaseSpec = Omit<LeaseRecord, 'resourceVersion'>

/** A refused or failed Lease call: `status` is the HTTP status, undefined when none came back. */
export class LeaseApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    /** the call was aborted: after its timeout, or by the election itself (a term ended, stop) */
    readonly interrupted?: 'timeout' | 'aborted',
  ) {
    super(message)
    this.name = 'LeaseApiError'
  }

  get timedOut(): boolean {
    return this.interrupted === 'timeout'
  }
}

/** The Lease calls of the election (api/kube-lease.ts: client-node's CoordinationV1Api). */
/** etcd could not be read or written for the term key. */
class TermError extends Error {}

export interface LeaseApi {
  /** namespace/name, for messages */
  readonly name: string
  /** undefined: the Lease does not exist (404) */
  get(signal: AbortSignal): Promise<LeaseRecord | undefined>
  /** LeaseApiError 409 when it exists already */
  create(spec: LeaseSpec, signal: AbortSignal): Promise<LeaseRecord>
  /** LeaseApiError 409 when `resourceVersion` is no longer the Lease's */
  replace(spec: LeaseSpec, resourceVersion: string, signal: AbortSignal): Promise<LeaseRecord>
}

interface TermKv {
  key: Buffer
  value: Buffer
  mod_revision: string
}
type TermCompare =
  | { key: Buffer; target: 'Mod'; result: 'Equal'; mod_revision: string }
  | { key: Buffer; target: 'Create'; result: 'Equal'; create_revision: string }
/** The part of the etcd3 client (1.1.x) the term key needs. */
export interface TermClient {
  kv: {
    range(req: { key: Buffer }): Promise<{ kvs: TermKv[] }>
    txn(req: {
      compare: TermCompare[]
      success: { request_put: { key: Buffer; value: Buffer } }[]
      failure: { request_range: { key: Buffer } }[]
    }): Promise<{ succeeded: boolean; header: { revision: string } }>
  }
}

export interface KubeLeaseElectionOptions {
  api: LeaseApi
  client: TermClient
  /** the store's prefix (the term key is P/_meta/leader-term) */
  prefix: string
  id: string
  url: string
  /** client-go: LeaseDuration (15 s), RenewDeadline (10 s), RetryPeriod (2 s) */
  leaseDurationSec: number
  renewDeadlineMs: number
  retryPeriodMs: number
  log: ElectionLog
  onChange(): void
  /** wall clock (ms since epoch); tests move it */
  now?: () => number
}

interface StoredTerm {
  term: number
  id: string
  url: string
  modRevision: string
}

/** What a leader keeps of its Lease between renewals. */
interface Holding {
  info: LeaderInfo
  transitions: number
  acquireTime: string
  resourceVersion: string
  /** monotonic time the last successful renewal (or the acquisition) was sent */
  renewedSentAt: number
}

/** client-go's JitterFactor for the acquire loop */
const JITTER = 1.2
const ERROR_LOG_REPEAT_MS = 30_000

export class KubeLeaseElection extends ElectionTerms {
  /** failures by kind: conflict, server (5xx), client (other 4xx), timeout, network, etcd, stale, other */
  readonly errors: Record<string, number> = {}
  private holding: Holding | undefined
  private observed: { record: LeaseRecord; at: number } | undefined
  private readonly stopping = new AbortController()
  /** the call in flight: aborted when the term ends, so the loop moves on at once */
  private inflight = new AbortController()
  private loop: Promise<void> | undefined
  private deadlineTimer: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined
  /** no acquisition before this (monotonic): set after a resignation so another replica gets the Lease */
  private holdOffUntil = 0
  private readonly termKey: Buffer
  private readonly now: () => number
  private lastLogged = { text: '', at: 0 }

  constructor(private readonly opts: KubeLeaseElectionOptions) {
    super(opts)
    const { leaseDurationSec, renewDeadlineMs, retryPeriodMs } = opts
    if (!(leaseDurationSec * 1000 > renewDeadlineMs))
      throw new Error('ha: the lease duration must be greater than the renew deadline')
    if (!(renewDeadlineMs > JITTER * retryPeriodMs))
      throw new Error(`ha: the renew deadline must be greater than ${JITTER} × the retry period`)
    this.termKey = Buffer.from(`${opts.prefix}/_meta/leader-term`)
    this.now = opts.now ?? Date.now
  }

  start(): void {
    this.loop = this.run()
  }

  /** End the current term now and hand the Lease back; this replica campaigns again later. */
  resign(reason: string): void {
    if (!this.holding) return
    this.holdOffUntil = performance.now() + this.opts.renewDeadlineMs
    this.stepDown(reason, 'release')
  }

  /** Step down, release the Lease (the next replica takes over at its next retry) and stop. */
  async stop(): Promise<void> {
    this.stopped = true
    const holding = this.holding
    if (holding) this.stepDown('stopping', 'keep')
    this.stopping.abort()
    this.wake?.()
    await this.loop
    if (holding) await this.release(holding)
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.holding) await this.renew(this.holding)
        else await this.tryAcquire()
      } catch (err) {
        this.failed(err)
      }
      if (this.stopped) break
      const pause = this.holding
        ? this.opts.retryPeriodMs
        : this.opts.retryPeriodMs * (1 + Math.random() * JITTER)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pause)
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wake = undefined
    }
  }

  /** One attempt of a replica that does not lead: observe the Lease, take it when it is free. */
  private async tryAcquire(): Promise<void> {
    const { api, id, leaseDurationSec } = this.opts
    const sentAt = performance.now()
    const record = await api.get(this.signal())
    if (record) this.observe(record)
    if (record && record.holderIdentity !== '' && record.holderIdentity !== id && !this.expired(record)) {
      await this.followHolder(record)
      return
    }
    this.setLeader(undefined)
    if (this.stopped || performance.now() < this.holdOffUntil) return
    // a holder of our own name is this replica's previous process: take it at once, as client-go does
    const stored = await this.readTerm()
    const now = microTime(this.now())
    const spec: LeaseSpec = {
      holderIdentity: id,
      leaseDurationSeconds: leaseDurationSec,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: record
        ? Math.max(record.leaseTransitions, stored?.term ?? -1) + 1
        : (stored?.term ?? -1) + 1,
    }
    let taken: LeaseRecord
    try {
      taken = record
        ? await api.replace(spec, record.resourceVersion, this.signal())
        : await api.create(spec, this.signal())
    } catch (err) {
      if (err instanceof LeaseApiError && err.status === 409) {
        this.count('conflict')
        this.opts.log.info(`leader election: another replica took the Lease ${api.name} first`)
        return
      }
      throw err
    }
    this.observe(taken)
    let leading = false
    try {
      leading = await this.becomeLeader(taken, stored, sentAt)
    } finally {
      // taken but not led (etcd failed, or too late): hand it on at once
      if (!leading && !this.stopped)
        void this.release({ transitions: taken.leaseTransitions, resourceVersion: taken.resourceVersion })
    }
  }

  /** The Lease is ours: write the term into etcd (the fence), then lead. */
  private async becomeLeader(
    lease: LeaseRecord,
    stored: StoredTerm | undefined,
    sentAt: number,
  ): Promise<boolean> {
    const { id, url, log, api } = this.opts
    const term = lease.leaseTransitions
    let seen = stored
    for (let attempt = 0; ; attempt++) {
      if (seen && seen.term >= term) {
        // a replica that took the Lease after us has written its term already
        this.count('stale')
        log.warn(
          `leader election: took the Lease ${api.name} as term ${term} but etcd holds term ${seen.term} (${seen.id}); not leading`,
        )
        return false
      }
      const value = Buffer.from(JSON.stringify({ term, id, url, lease: api.name }))
      let res: { succeeded: boolean; header: { revision: string } }
      try {
        res = await this.bounded(
          this.opts.client.kv.txn({
            compare: [
              seen
                ? { key: this.termKey, target: 'Mod', result: 'Equal', mod_revision: seen.modRevision }
                : { key: this.termKey, target: 'Create', result: 'Equal', create_revision: '0' },
            ],
            success: [{ request_put: { key: this.termKey, value } }],
            failure: [{ request_range: { key: this.termKey } }],
          }),
        )
      } catch (err) {
        throw new TermError(`cannot write the leader term to etcd: ${(err as Error).message}`)
      }
      if (res.succeeded) {
        if (this.stopped) {
          await this.release({ transitions: term, resourceVersion: lease.resourceVersion })
          return true // released already
        }
        if (performance.now() > sentAt + this.opts.renewDeadlineMs) {
          log.warn('leader election: the term was written too late (renew deadline passed); not leading')
          return false
        }
        const fence: Fence = { key: this.termKey.toString(), modRevision: res.header.revision }
        const info: LeaderInfo = { id, url, key: `${fence.key}#${term}`, createRevision: '0', fence }
        this.holding = {
          info,
          transitions: term,
          acquireTime: lease.acquireTime ?? microTime(this.now()),
          resourceVersion: lease.resourceVersion,
          renewedSentAt: sentAt,
        }
        this.leader = info
        this.deadlineTimer = setInterval(
          () => this.checkDeadline(),
          Math.min(100, this.opts.retryPeriodMs / 4),
        )
        this.termBegan(info, `Lease ${api.name}, term ${term}`)
        return true
      }
      if (attempt >= 3) throw new TermError('the leader term in etcd kept changing; not leading')
      seen = await this.readTerm()
    }
  }

  /** The leader's renewal: the same update with its own resourceVersion. */
  private async renew(holding: Holding): Promise<void> {
    const { api, id, leaseDurationSec } = this.opts
    const sentAt = performance.now()
    // lead only while etcd takes our writes: a leader that cannot reach etcd
    // stops renewing and so gives the Lease up; one whose term was overtaken
    // (a newer leader wrote its own) steps down at once
    const stored = await this.readTerm()
    if (this.holding !== holding) return
    const fence = holding.info.fence as { key: string; modRevision: string }
    if (stored?.modRevision !== fence.modRevision) {
      this.stepDown(
        stored
          ? `a newer leader's term is in etcd (term ${stored.term}, ${stored.id})`
          : 'the leader term is gone from etcd',
        'release',
      )
      return
    }
    const spec: LeaseSpec = {
      holderIdentity: id,
      leaseDurationSeconds: leaseDurationSec,
      acquireTime: holding.acquireTime,
      renewTime: microTime(this.now()),
      leaseTransitions: holding.transitions,
    }
    let renewed: LeaseRecord
    try {
      renewed = await api.replace(spec, holding.resourceVersion, this.signal())
    } catch (err) {
      if (err instanceof LeaseApiError && err.status === 404 && this.holding === holding) {
        this.count('client')
        this.stepDown(`the Lease ${api.name} was deleted`, 'keep')
        return
      }
      if (!(err instanceof LeaseApiError && err.status === 409)) throw err
      this.count('conflict')
      // someone else changed the Lease: still ours (an annotation, a kubectl edit) or taken?
      const current = await api.get(this.signal())
      if (current) this.observe(current)
      if (this.holding !== holding) return
      if (current?.holderIdentity === id && current.leaseTransitions === holding.transitions) {
        holding.resourceVersion = current.resourceVersion
        return // renewed at the next retry, within the deadline
      }
      this.stepDown(
        current
          ? `the Lease ${api.name} was taken by ${current.holderIdentity || 'nobody'} (term ${current.leaseTransitions})`
          : `the Lease ${api.name} was deleted`,
        'keep',
      )
      return
    }
    if (this.holding !== holding) return // stepped down while the call was out
    this.observe(renewed)
    holding.resourceVersion = renewed.resourceVersion
    holding.renewedSentAt = sentAt
  }

  private checkDeadline(): void {
    const holding = this.holding
    if (holding && performance.now() > holding.renewedSentAt + this.opts.renewDeadlineMs)
      this.stepDown(
        `the Lease was not renewed within the renew deadline (${this.opts.renewDeadlineMs} ms)`,
        'release',
      )
  }

  /**
   * End this replica's term. 'release' also hands the Lease back (best
   * effort, in the background) so that a replica that can lead takes over
   * at its next retry; 'keep' when the Lease is someone else's already, or
   * the caller releases it itself.
   */
  private stepDown(reason: string, lease: 'release' | 'keep'): void {
    const holding = this.holding
    if (!holding) return
    this.holding = undefined
    if (this.deadlineTimer) clearInterval(this.deadlineTimer)
    this.deadlineTimer = undefined
    this.inflight.abort()
    this.leader = undefined
    this.termOver(reason)
    this.wake?.()
    if (lease === 'release') void this.release(holding)
  }

  /** Clear holderIdentity (best effort: the Lease expires by itself anyway). */
  private async release(holding: Pick<Holding, 'transitions' | 'resourceVersion'>): Promise<void> {
    const { api, log, id } = this.opts
    const now = microTime(this.now())
    const call = new AbortController()
    const timer = setTimeout(
      () => call.abort(new DOMException('The operation timed out', 'TimeoutError')),
      this.requestTimeoutMs(),
    )
    const signal = call.signal
    let resourceVersion = holding.resourceVersion
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await api.replace(
            {
              holderIdentity: '',
              leaseDurationSeconds: 1,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: holding.transitions,
            },
            resourceVersion,
            signal,
          )
          log.info(`leader election: released the Lease ${api.name}`)
          return
        } catch (err) {
          if (!(err instanceof LeaseApiError && err.status === 409) || attempt >= 2) throw err
          // a renewal we gave up on may have landed after all: still ours?
          const current = await api.get(signal)
          if (current?.holderIdentity !== id || current.leaseTransitions !== holding.transitions) return
          resourceVersion = current.resourceVersion
        }
      }
    } catch (err) {
      this.count(errorKind(err))
      log.warn(
        `leader election: could not release the Lease ${api.name} (it expires by itself): ${(err as Error).message}`,
      )
    } finally {
      clearTimeout(timer)
    }
  }

  /** Client-go's expiry, plus the holder's own renewTime when the clocks agree. */
  private expired(record: LeaseRecord): boolean {
    const durationMs = record.leaseDurationSeconds * 1000
    const renewed = record.renewTime ? Date.parse(record.renewTime) : Number.NaN
    if (!Number.isNaN(renewed) && renewed + durationMs < this.now()) return true
    const observed = this.observed
    return observed !== undefined && performance.now() > observed.at + durationMs
  }

  private observe(record: LeaseRecord): void {
    if (this.observed?.record.resourceVersion !== record.resourceVersion)
      this.observed = { record, at: performance.now() }
  }

  /** A follower's view: the holder leads, at the URL it stored with its term. */
  private async followHolder(record: LeaseRecord): Promise<void> {
    const current = this.leader
    if (current?.id === record.holderIdentity && current.key === `${this.termKey}#${record.leaseTransitions}`)
      return
    const stored = await this.readTerm()
    const next =
      stored && stored.id === record.holderIdentity && stored.term === record.leaseTransitions
        ? { id: stored.id, url: stored.url, key: `${this.termKey}#${stored.term}`, createRevision: '0' }
        : undefined // the holder has not written its term yet
    this.setLeader(next)
  }

  private setLeader(next: LeaderInfo | undefined): void {
    if (this.holding) return
    this.observeLeader(next)
  }

  private async readTerm(): Promise<StoredTerm | undefined> {
    let kv: TermKv | undefined
    try {
      kv = (await this.bounded(this.opts.client.kv.range({ key: this.termKey }))).kvs[0]
    } catch (err) {
      throw new TermError(`cannot read the leader term from etcd: ${(err as Error).message}`)
    }
    if (!kv) return undefined
    const v = JSON.parse(kv.value.toString()) as { term: number; id: string; url: string }
    return { term: v.term, id: v.id, url: v.url, modRevision: kv.mod_revision }
  }

  /** An etcd call that may not take longer than a Lease call (etcd out of reach hangs). */
  private async bounded<T>(call: Promise<T>): Promise<T> {
    const ms = this.requestTimeoutMs()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    })
    try {
      return await Promise.race([call, late])
    } finally {
      clearTimeout(timer)
      // the abandoned call's late failure: the timeout above was already reported, so
      // this is logged for the record only
      call.catch((err: unknown) =>
        this.opts.log.info(
          `leader election: an etcd call that timed out failed later: ${(err as Error).message}`,
        ),
      )
    }
  }

  /**
   * The signal of one call: aborted after the request timeout, when the
   * term ends (inflight) or when the election stops. Built on one controller
   * and a plain timer rather than AbortSignal.any + AbortSignal.timeout,
   * whose timeout source nothing holds on to (a call could then hang for good).
   */
  private signal(): AbortSignal {
    const call = new AbortController()
    this.inflight = call
    const stopping = this.stopping.signal
    if (stopping.aborted) call.abort(stopping.reason)
    const onStop = () => call.abort(stopping.reason)
    stopping.addEventListener('abort', onStop, { once: true })
    const timer = setTimeout(
      () => call.abort(new DOMException('The operation timed out', 'TimeoutError')),
      this.requestTimeoutMs(),
    )
    call.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        stopping.removeEventListener('abort', onStop)
      },
      { once: true },
    )
    return call.signal
  }

  /** A call may take this long; a leader's renewal still fits its deadline twice. */
  private requestTimeoutMs(): number {
    // whole milliseconds: AbortSignal.timeout refuses fractions (renew_deadline_sec may have them)
    return Math.ceil(Math.max(this.opts.retryPeriodMs, this.opts.renewDeadlineMs / 2))
  }

  private count(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1
  }

  private failed(err: unknown): void {
    if (this.stopped || (err instanceof LeaseApiError && err.interrupted === 'aborted')) return
    this.count(errorKind(err))
    // a Lease gone unreadable means the holder we saw may be gone too
    if (!this.holding && this.observed && this.expired(this.observed.record)) this.setLeader(undefined)
    const text = `leader election: ${(err as Error).message}`
    const at = performance.now()
    if (text !== this.lastLogged.text || at - this.lastLogged.at > ERROR_LOG_REPEAT_MS) {
      this.lastLogged = { text, at }
      this.opts.log.warn(text)
    }
  }
}

function errorKind(err: unknown): string {
  if (err instanceof TermError) return 'etcd'
  if (!(err instanceof LeaseApiError)) return 'other'
  if (err.timedOut) return 'timeout'
  if (err.status === undefined) return 'network'
  if (err.status === 409) return 'conflict'
  return err.status >= 500 ? 'server' : 'client'
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}
