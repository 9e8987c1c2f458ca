// heketi's async queue: 202 + Location: /queue/<id>, then 200 X-Pending
// while running, and the completion (303 / 204 / 500) reported exactly once.
// Entries live in memory only, as in heketi: a restart forgets them.
import type { FastifyBaseLogger } from 'fastify'
import { newId } from '../src/ids.ts'

export type JobOutcome =
  | { state: 'pending' }
  | { state: 'redirect'; location: string }
  | { state: 'done' }
  | { state: 'error'; message: string }

export class AsyncQueue {
  private readonly jobs = new Map<string, JobOutcome>()

  constructor(private readonly log: FastifyBaseLogger) {}

  /** Start `work`; it resolves with the result path (303) or undefined (204). */
  start(work: () => Promise<string | undefined>): string {
    const id = newId()
    this.jobs.set(id, { state: 'pending' })
    const started = Date.now()
    this.log.info({ job: id }, `Started job ${id}`)
    work().then(
      (location) => {
        this.jobs.set(id, location ? { state: 'redirect', location } : { state: 'done' })
        this.log.info({ job: id, ms: Date.now() - started }, `Completed job ${id}`)
      },
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err)
        this.jobs.set(id, { state: 'error', message })
        this.log.info({ job: id, ms: Date.now() - started, err: message }, `Completed job ${id} with error`)
      },
    )
    return id
  }

  /** The job's state; a finished job is forgotten once it has been read. */
  read(id: string): JobOutcome | undefined {
    const outcome = this.jobs.get(id)
    if (outcome && outcome.state !== 'pending') this.jobs.delete(id)
    return outcome
  }

  get pending(): number {
    let n = 0
    for (const o of this.jobs.values()) if (o.state === 'pending') n++
    return n
  }
}
