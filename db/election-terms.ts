// What both leader elections (db/etcd-election.ts, db/kube-lease-election.ts)
// keep about terms, and how they tell the replica: who leads, this replica's
// term, the counts /metrics shows (terms, depositions), and `onChange` after
// each change, logged the same way whichever election runs.
import type { ElectionLog, LeaderInfo } from './etcd-election.ts'

export abstract class ElectionTerms {
  /** the leader as observed (any replica); undefined while there is none */
  leader: LeaderInfo | undefined
  /** this replica's term while it leads; undefined otherwise */
  term: LeaderInfo | undefined
  /** how many times this replica was elected */
  terms = 0
  /** terms that ended without stop() (lease lost or late, key gone) */
  depositions = 0
  /** when the current (or last) term began (ms since epoch) */
  electedAt = 0
  /** when the last term ended (ms since epoch) */
  termEndedAt = 0
  /** stop() was called: a term ending now is no deposition */
  protected stopped = false

  constructor(private readonly notify: { log: ElectionLog; onChange(): void }) {}

  isLeader(): boolean {
    return this.term !== undefined
  }

  /** This replica leads from now on; `where` names its key or Lease in the log line. */
  protected termBegan(term: LeaderInfo, where: string): void {
    this.term = term
    this.terms++
    this.electedAt = Date.now()
    this.notify.log.info(`leader election: this replica (${term.id}) is the leader (${where})`)
    this.notify.onChange()
  }

  /** This replica's term is over (a deposition unless stopping). */
  protected termOver(reason: string): void {
    this.term = undefined
    this.termEndedAt = Date.now()
    if (!this.stopped) {
      this.depositions++
      this.notify.log.error(`leader election: no longer the leader: ${reason}`)
    }
    this.notify.onChange()
  }

  /** The leader as read now; onChange when it is another one. */
  protected observeLeader(next: LeaderInfo | undefined): void {
    const changed = next?.key !== this.leader?.key
    this.leader = next
    if (changed) this.notify.onChange()
  }
}
