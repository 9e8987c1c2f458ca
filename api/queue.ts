// heketi's async queue: 202 + Location: /queue/<id>, then 200 X-Pending
// while running, and the completion (303 / 204 / 500) reported exactly once.
// With one server the entries live in memory only, as in heketi: a restart
// forgets them. Replicated (api/replica.ts) they are also records in the
// store (`JobRecords`, P/_meta/queue/<id> on etcd), written by the leader
// before the 202 and at completion, so `/queue/<id>` answers the same on
// every replica and survives the leader: a job whose leader died is
// completed by the next leader (its cleaner's outcome for the job's
// operation, or an error when the job had none).
import type { FastifyBaseLogger } from 'fastify'
import type { JobResult } from '../src/context.ts'
import { newId } from '../src/ids.ts'

export type JobOutcome =
  | { state: 'pending' }
  | { state: 'redirect'; location: string }
  | { state: 'done' }
  | { state: 'error'; message: string }

/** A job as kept in the store: its outcome, who ran it and for which operation. */
export interface JobRecord {
  outcome: JobOutcome
  /** the leader term (election key) that started it */
  term: string
  /** the journal id of the operation the job runs, when it runs one */
  op?: string
  /** ms since epoch of the last change */
  at: number
}

/** Where replicated jobs are kept (db/etcd.ts side records). */
export interface JobRecords {
  put(id: string, record: JobRecord): Promise<void>
  get(id: string): Promise<JobRecord | undefined>
  delete(id: string): Promise<void>
  list(): Promise<{ id: string; record: JobRecord }[]>
}

/** How long a finished job nobody asked for is kept in the store. */
export const FINISHED_JOB_KEEP_MS = 3600 * 1000

export function outcomeOf(result: JobResult): JobOutcome {
  return result ? { state: 'redirect', location: `/${result.kind}s/${result.id}` } : { state: 'done' }
}

/** Why a held poll ends: its job finished, the bound passed, the server closes, or the client left. */
export type HoldEnd = 'finished' | 'bound' | 'closed' | 'dropped'

/** A poll held until its job finishes; `drop` ends it early (the client went away). */
export interface Hold {
  ended: Promise<HoldEnd>
  drop(): void
}

export class AsyncQueue {
  private readonly jobs = new Map<string, JobOutcome>()
  /** held polls by job id: each ends its hold (api/routes/core.ts) */
  private readonly holds = new Map<string, Set<(why: HoldEnd) => void>>()
  private closed = false
  /**
   * Replicated job records that could not be written or deleted (each also
   * logged where it failed): /metrics shows it as heqet_queue_record_failures_total.
   */
  recordFailures = 0

  constructor(
    private readonly log: FastifyBaseLogger,
    /** replicated: the store's job records and the current leader term */
    private readonly replicated?: { records: JobRecords; term: () => string },
  ) {}

  /**
   * Reserve a queue id. Replicated, its pending record is in the store when
   * this resolves, so any replica can answer the poll that follows the 202.
   */
  async reserve(): Promise<string> {
    const id = newId()
    if (this.replicated) await this.persist(id, { state: 'pending' })
    return id
  }

  /** Say which operation a reserved job runs (the next leader's cleaner completes it). */
  async link(id: string, operationId: string): Promise<void> {
    if (this.replicated) await this.persist(id, { state: 'pending' }, operationId)
  }

  /** A reserved id whose job never started (its preparation failed). */
  async release(id: string): Promise<void> {
    if (this.replicated) await this.replicated.records.delete(id)
  }

  /** Run `work` under a reserved id; it resolves with the result path (303) or undefined (204). */
  run(id: string, work: () => Promise<string | undefined>, operationId?: string): void {
    this.jobs.set(id, { state: 'pending' })
    const started = Date.now()
    this.log.info({ job: id }, `Started job ${id}`)
    work().then(
      (location) => {
        this.finish(id, location ? { state: 'redirect', location } : { state: 'done' }, operationId)
        this.log.info({ job: id, ms: Date.now() - started }, `Completed job ${id}`)
      },
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err)
        this.finish(id, { state: 'error', message }, operationId)
        this.log.info({ job: id, ms: Date.now() - started, err: message }, `Completed job ${id} with error`)
      },
    )
  }

  /** Start `work` (one server: no store round trip). */
  start(work: () => Promise<string | undefined>): string {
    const id = newId()
    this.run(id, work)
    return id
  }

  private finish(id: string, outcome: JobOutcome, operationId: string | undefined): void {
    if (!this.replicated) {
      this.jobs.set(id, outcome)
      this.endHolds(id, 'finished')
      return
    }
    this.jobs.delete(id)
    // a deposed leader cannot write it: the next leader completes the record.
    // Held polls read the record once this write is over, stored or not.
    this.persist(id, outcome, operationId).then(
      () => this.endHolds(id, 'finished'),
      (err: Error) => {
        this.recordFailures++
        this.log.error({ job: id }, `job ${id}: its outcome could not be stored: ${err.message}`)
        this.endHolds(id, 'finished')
      },
    )
  }

  /**
   * Hold a poll of a job that runs in this process until it finishes (its
   * outcome readable through read()), `boundMs` passes, or the queue closes.
   * undefined when there is nothing to wait for here: the job is finished,
   * unknown, or another process's (a follower, an earlier leader), the bound
   * is 0, or the queue is closing. A hold is not work: it takes no throttle slot.
   */
  hold(id: string, boundMs: number): Hold | undefined {
    if (boundMs <= 0 || this.closed || this.jobs.get(id)?.state !== 'pending') return undefined
    let waiters = this.holds.get(id)
    if (!waiters) {
      waiters = new Set()
      this.holds.set(id, waiters)
    }
    const set = waiters
    let resolve!: (why: HoldEnd) => void
    const ended = new Promise<HoldEnd>((r) => {
      resolve = r
    })
    const end = (why: HoldEnd) => {
      clearTimeout(timer)
      set.delete(end)
      if (set.size === 0 && this.holds.get(id) === set) this.holds.delete(id)
      resolve(why)
    }
    const timer = setTimeout(end, boundMs, 'bound')
    set.add(end)
    return { ended, drop: () => end('dropped') }
  }

  private endHolds(id: string, why: HoldEnd): void {
    const waiters = this.holds.get(id)
    if (!waiters) return
    this.holds.delete(id)
    for (const end of [...waiters]) end(why)
  }

  /** Polls being held now (tests: aborted polls leave none). */
  get held(): number {
    let n = 0
    for (const waiters of this.holds.values()) n += waiters.size
    return n
  }

  /** The server closes: held polls are answered now, and no poll is held from here on. */
  close(): void {
    this.closed = true
    for (const id of [...this.holds.keys()]) this.endHolds(id, 'closed')
  }

  private persist(id: string, outcome: JobOutcome, op?: string): Promise<void> {
    const r = this.replicated!
    return r.records.put(id, { outcome, term: r.term(), ...(op ? { op } : {}), at: Date.now() })
  }

  /**
   * The job's state; a finished job is forgotten once it has been read.
   * One server answers from memory at once (no promise: a client polls every
   * few ms); replicated, it reads the store.
   */
  read(id: string): JobOutcome | undefined | Promise<JobOutcome | undefined> {
    if (!this.replicated) {
      const outcome = this.jobs.get(id)
      if (outcome && outcome.state !== 'pending') this.jobs.delete(id)
      return outcome
    }
    return this.readRecord(id)
  }

  private async readRecord(id: string): Promise<JobOutcome | undefined> {
    const record = await this.replicated!.records.get(id)
    if (!record) return undefined
    if (record.outcome.state !== 'pending') await this.replicated!.records.delete(id)
    return record.outcome
  }

  /** jobs running in this process */
  get pending(): number {
    let n = 0
    for (const o of this.jobs.values()) if (o.state === 'pending') n++
    return n
  }

  /**
   * The leader completes jobs of earlier terms (their leader is gone):
   * `outcomeFor` decides each (undefined: not yet, its operation is still
   * journaled for the cleaner). Finished jobs nobody read for an hour go.
   */
  async sweep(outcomeFor: (record: JobRecord) => JobOutcome | undefined): Promise<number> {
    if (!this.replicated) return 0
    const { records, term } = this.replicated
    const now = Date.now()
    let completed = 0
    for (const { id, record } of await records.list()) {
      if (record.outcome.state !== 'pending') {
        if (now - record.at > FINISHED_JOB_KEEP_MS) await records.delete(id)
        continue
      }
      if (record.term === term() || this.jobs.has(id)) continue
      const outcome = outcomeFor(record)
      if (!outcome) continue
      await records.put(id, { ...record, outcome, at: now })
      completed++
    }
    return completed
  }

  /** The cleaner finished or undid `operationId`: complete the earlier leader's job that ran it. */
  async completeOperation(operationId: string, outcome: JobOutcome): Promise<void> {
    if (!this.replicated) return
    const { records } = this.replicated
    for (const { id, record } of await records.list()) {
      if (record.op === operationId && record.outcome.state === 'pending' && !this.jobs.has(id)) {
        await records.put(id, { ...record, outcome, at: Date.now() })
      }
    }
  }
}
