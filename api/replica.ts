// A heqet replica on etcd: the leader election (db/etcd-election.ts) seen
// from the API. Exactly one replica leads: it alone runs operations, the
// cleaner and the health monitor, and it alone may write the store (its
// writes carry its fence) or send node commands. Every replica answers
// reads from its watch-kept cache; a write reaching a follower is forwarded
// to the leader's advertised URL and its answer relayed unchanged.
//
// Work begun in one term never runs in the next: each term has a
// generation, jobs run inside it (AsyncLocalStorage), and the store fence
// and the executor gate refuse work of any other generation — so a leader
// deposed and re-elected does not carry on with a view another leader's
// cleaner may have changed meanwhile.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Fence } from '../db/etcd.ts'
import type { LeaderInfo } from '../db/etcd-election.ts'
import type { Executor } from '../executors/executor.ts'
import { Errors } from '../src/errors.ts'

/** The header a follower adds to a forwarded request (a leader never forwards it again). */
export const FORWARDED_HEADER = 'x-heqet-forwarded-by'

/** GETs that show the leader's in-memory state, or change something (heketi's resync). */
const LEADER_GETS = [/^\/admin$/, /^\/operations(\/pending)?$/, /^\/devices\/[A-Fa-f0-9]+\/resync$/]

// the response headers a forwarded answer keeps (the rest are per-connection)
const DROPPED_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date'])

/** An election as the replica sees it: etcd's (db/etcd-election.ts) or a Kubernetes Lease's (db/kube-lease-election.ts). */
export interface Election {
  /** the leader as observed (any replica), undefined while there is none */
  readonly leader: LeaderInfo | undefined
  /** this replica's term while it leads */
  readonly term: LeaderInfo | undefined
  readonly terms: number
  readonly depositions: number
  /** when the current (or last) term began, and when the last one ended (ms since epoch) */
  readonly electedAt: number
  readonly termEndedAt: number
  /** failed election calls by kind (Kubernetes Lease election) */
  readonly errors?: Readonly<Record<string, number>>
  isLeader(): boolean
  start(): void
  resign(reason: string): void
  stop(): Promise<void>
}

export class NotLeaderError extends Error {
  constructor(what: string) {
    super(`not the leader: ${what} refused`)
  }
}

export class Replica {
  /** bumped at every change of role: work of an older generation is refused */
  generation = 0
  private leading = false
  private readonly scope = new AsyncLocalStorage<{ generation: number }>()
  private readonly waiters = new Set<() => void>()
  /** writes this replica forwarded to the leader */
  forwarded = 0
  /** requests that found no leader in time (503) */
  leaderless = 0
  /** this replica leads and its leader work (cleaner, monitor, queue sweep) has started */
  ready = false
  /** told when this replica starts ('lead') or stops ('follow') leading */
  onRoleChange: (role: 'lead' | 'follow') => void = () => {}

  constructor(
    readonly election: Election,
    readonly id: string,
    /** how long a request waits for a leader to be elected before 503 */
    private readonly leaderWaitMs: number,
  ) {}

  isLeader(): boolean {
    return this.leading
  }

  leader(): LeaderInfo | undefined {
    return this.election.leader
  }

  /** The election changed (leader elected, lost, or another leader seen). */
  onElectionChange(): void {
    for (const wake of this.waiters) wake()
    const lead = this.election.isLeader()
    if (lead === this.leading) return
    this.leading = lead
    this.ready = false
    this.generation++
    this.onRoleChange(lead ? 'lead' : 'follow')
  }

  /** Run `fn` as work of the current term. */
  run<T>(fn: () => T): T {
    return this.scope.run({ generation: this.generation }, fn)
  }

  /** True when this replica leads and the calling work belongs to this term. */
  private current(): boolean {
    if (!this.leading || !this.election.term) return false
    const scope = this.scope.getStore()
    return scope === undefined || scope.generation === this.generation
  }

  /** The fence every store write carries (db/etcd.ts), or undefined: the write is refused. */
  fence(): Fence | undefined {
    const term = this.election.term
    if (!term || !this.current()) return undefined
    return term.fence ?? { key: term.key, createRevision: term.createRevision }
  }

  /** The executor, refusing every node command once this replica is not the leader (of this term). */
  gate(executor: Executor): Executor {
    return new Proxy(executor, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver)
        if (typeof value !== 'function' || prop === 'close') return value
        return (...args: unknown[]) => {
          if (!this.current()) return Promise.reject(new NotLeaderError(`node command ${String(prop)}`))
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
  }

  /** Wait (bounded) for a leader other than `not`. */
  async waitForLeader(not?: string): Promise<LeaderInfo | undefined> {
    const deadline = Date.now() + this.leaderWaitMs
    for (;;) {
      const leader = this.election.leader
      if (this.leading) return this.election.term
      if (leader && leader.key !== not && leader.id !== this.id) return leader
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(wake, Math.min(left, 200))
        this.waiters.add(wake)
      })
    }
  }

  /**
   * Wait (bounded) until this replica knows its place: leading with its
   * leader work started, or following a leader it can see. False on timeout.
   */
  async settled(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    for (;;) {
      const leader = this.election.leader
      if ((this.leading && this.ready) || (!this.leading && leader && leader.id !== this.id)) return true
      const left = deadline - Date.now()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(wake, Math.min(left, 50))
        this.waiters.add(wake)
      })
    }
  }

  /** Does this request have to be answered by the leader? */
  leaderOnly(req: FastifyRequest): boolean {
    if (req.routeOptions.url === undefined) return false // 404/405: the same everywhere
    if (req.method !== 'GET' && req.method !== 'HEAD') return true
    const path = (req.raw.url ?? '').split('?')[0]!
    return LEADER_GETS.some((re) => re.test(path))
  }

  /**
   * Answer a leader-only request that reached a follower: relay it to the
   * leader (waiting for one to be elected) and send back its answer as is.
   * A leader that refuses the connection is dead: wait for the next one.
   * Undefined when this replica was elected meanwhile (it answers itself).
   */
  async forward(req: FastifyRequest, reply: FastifyReply, target: string): Promise<FastifyReply | undefined> {
    if (req.headers[FORWARDED_HEADER] !== undefined) throw Errors.notLeader() // no forwarding loops
    let failed: string | undefined
    for (let attempt = 0; attempt < 3; attempt++) {
      const leader = await this.waitForLeader(failed)
      if (!leader) {
        this.leaderless++
        throw Errors.noLeader()
      }
      if (this.leading) return undefined // elected meanwhile: answer it here
      const headers: Record<string, string> = { [FORWARDED_HEADER]: this.id }
      if (req.headers.authorization !== undefined) headers['authorization'] = req.headers.authorization
      const body = typeof req.body === 'string' && req.body !== '' ? req.body : undefined
      let res: Response
      try {
        res = await fetch(new URL(target, leader.url), {
          method: req.method,
          headers,
          body,
          redirect: 'manual',
        })
      } catch (err) {
        const code = (err as { cause?: { code?: string } }).cause?.code
        // refused: the request never reached it, safe to send to the next leader
        if (code === 'ECONNREFUSED') {
          failed = leader.key
          continue
        }
        throw Errors.leaderUnreachable(`${leader.url}: ${code ?? (err as Error).message}`)
      }
      this.forwarded++
      reply.code(res.status)
      for (const [name, value] of res.headers) if (!DROPPED_HEADERS.has(name)) reply.header(name, value)
      return reply.send(Buffer.from(await res.arrayBuffer()))
    }
    throw Errors.leaderUnreachable('the leader refused the connection three times')
  }
}
