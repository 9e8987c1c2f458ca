// The HA chaos run (issue 14 item 4): 3 heqet replicas on a 3-member etcd,
// all on loopback, managing the real GlusterFS testbed. Client workers
// (heketi's Go client, go-client.ts) create, expand and delete volumes
// through a random live replica while the leader is killed with SIGKILL at
// random moments, and once partitioned from etcd (its TCP proxies to every
// etcd member black-holed, tcp-proxy.ts). Afterwards:
//   - nodes = DB: no leaked LV/brick/mount/fstab line/gluster volume, nothing
//     missing (agreement.ts), /db/check clean, the journal empty;
//   - every call the client saw succeed is in the DB (created volumes exist
//     with their size, deleted ones are gone); every call that failed left
//     nothing (no volume of a failed create, no size of a failed expand);
//     a call cut off by a transport error, or answered "its result is
//     unknown" (the leader died between its last step and recording the
//     outcome), may have gone either way, but only whole (the agreement
//     above); a cut-off call's queue entry is asked on another replica, and
//     heqet's answer there must match the DB too.
// Failover times: leader gone → another replica leads and is ready, and
// leader gone → a write (POST /clusters) through another replica accepted.
// Summary: `N failovers, L leaked objects, I inconsistencies, F failed client requests`.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signToken } from '../../../api/auth.ts'
import type { TestEtcdCluster } from '../../helpers/etcd.ts'
import { compareNodesWithDb, type HeketiDump } from './agreement.ts'
import { type CallResult, GoClient } from './go-client.ts'
import { freePort, ServerProcess } from './server.ts'
import { CuttableProxy } from './tcp-proxy.ts'
import type { Testbed } from './testbed.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** HEQET_HA_CHAOS_LOGDIR=<dir>: every replica's whole output (log level info) goes to <dir>/<id>.log */
const LOGDIR = process.env['HEQET_HA_CHAOS_LOGDIR']

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** mulberry32: a seeded run can be replayed (HEQET_CHAOS_SEED) */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let x = s
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export interface LeaderView {
  replicated: boolean
  id?: string
  leader: boolean
  ready?: boolean
  leader_id?: string
}

export interface HaReplica {
  id: string
  url: string
  server: ServerProcess
  /** one per etcd member: this replica's only way to etcd */
  proxies: CuttableProxy[]
  up: boolean
}

export class HaReplicaSet {
  private constructor(
    readonly replicas: HaReplica[],
    readonly adminKey: string,
    private readonly dir: string,
  ) {}

  /** n replicas (ids r0..), each reaching every etcd member through its own proxy. */
  static async start(
    tb: Testbed,
    etcd: TestEtcdCluster,
    opts: {
      replicas: number
      leaseTtlSec: number
      prefix: string
      /** more glusterfs.ha keys per replica id (e.g. the Kubernetes Lease election's) */
      ha?: (id: string) => Record<string, unknown>
    },
  ): Promise<HaReplicaSet> {
    const dir = mkdtempSync(join(tmpdir(), 'heqet-ha-chaos-'))
    const adminKey = 'ha-chaos-admin'
    const replicas: HaReplica[] = []
    const set = new HaReplicaSet(replicas, adminKey, dir)
    for (let i = 0; i < opts.replicas; i++) {
      const proxies: CuttableProxy[] = []
      for (const m of etcd.members) {
        const [host, port] = m.hostPort.split(':') as [string, string]
        const proxy = new CuttableProxy(host, Number(port))
        await proxy.start()
        proxies.push(proxy)
      }
      const port = await freePort()
      const id = `r${i}`
      const url = `http://127.0.0.1:${port}`
      const config = {
        port: String(port),
        jwt: { admin: { key: adminKey }, user: { key: 'ha-chaos-user' } },
        glusterfs: {
          executor: 'ssh',
          sshexec: { keyfile: tb.sshKeyFile, user: tb.sshUser, port: String(tb.sshPort) },
          db: `etcd://${proxies.map((p) => `127.0.0.1:${p.port}`).join(',')}/${opts.prefix}`,
          loglevel: LOGDIR ? 'info' : 'warning',
          start_time_background_cleaner: 1,
          refresh_time_background_cleaner: 5,
          disable_monitor_gluster_nodes: true,
          ha: { advertise_url: url, replica_id: id, lease_ttl_sec: opts.leaseTtlSec, ...opts.ha?.(id) },
        },
      }
      const file = join(dir, `${id}.json`)
      writeFileSync(file, JSON.stringify(config))
      replicas.push({ id, url, server: new ServerProcess(file, port, adminKey), proxies, up: false })
    }
    await Promise.all(replicas.map((r) => set.restart(r)))
    return set
  }

  /** running replicas (like a Service's endpoints: a process that died is left out) */
  live(): HaReplica[] {
    return this.replicas.filter((r) => r.up && r.server.pid !== undefined && alive(r.server.pid))
  }

  /** keep what a replica process said (its output is reset when it is started again) */
  saveLog(r: HaReplica): void {
    if (LOGDIR && r.server.output) appendFileSync(join(LOGDIR, `${r.id}.log`), r.server.output)
    r.server.output = ''
  }

  async restart(r: HaReplica): Promise<void> {
    this.saveLog(r)
    await r.server.start()
    r.up = true
  }

  async kill(r: HaReplica): Promise<void> {
    r.up = false
    await r.server.kill9()
  }

  partition(r: HaReplica): void {
    for (const p of r.proxies) p.cut()
  }

  heal(r: HaReplica): void {
    for (const p of r.proxies) p.heal()
  }

  async view(r: HaReplica): Promise<LeaderView | undefined> {
    try {
      const res = await fetch(`${r.url}/internal/leader`, {
        headers: { authorization: `bearer ${signToken('admin', this.adminKey, 'GET', '/internal/leader')}` },
        signal: AbortSignal.timeout(3_000),
      })
      if (res.status !== 200) return undefined
      return (await res.json()) as LeaderView
    } catch {
      return undefined // down or busy: the callers poll, bounded
    }
  }

  /** The live replica that says it leads and is ready, other than `not`; bounded wait. */
  async waitLeader(timeoutMs: number, not?: HaReplica): Promise<HaReplica | undefined> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      for (const r of this.live()) {
        if (r === not) continue
        const v = await this.view(r)
        if (v?.leader && v.ready !== false) return r
      }
      await sleep(100)
    }
    return undefined
  }

  async call(r: HaReplica, method: string, path: string, body?: unknown) {
    const res = await fetch(`${r.url}${path}`, {
      method,
      redirect: 'manual',
      headers: { authorization: `bearer ${signToken('admin', this.adminKey, method, path)}` },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    })
    return { status: res.status, body: await res.text(), location: res.headers.get('location') }
  }

  async stop(): Promise<void> {
    for (const r of this.replicas) {
      r.up = false
      await r.server.stop()
      this.saveLog(r)
      for (const p of r.proxies) await p.close()
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** What the client knows of one volume it named. */
export interface VolumeCalls {
  name: string
  id?: string
  calls: {
    kind: 'create' | 'expand' | 'delete'
    result: CallResult
    resolved?: 'ok' | 'failed' | 'unknown'
  }[]
  /** live view used to pick the next action: only settled-existing volumes are touched */
  settled: boolean
  gone: boolean
}

export interface HaChaosOptions {
  seed: number
  kills: number
  partition: boolean
  leaseTtlSec: number
  workers?: number
  log?: (line: string) => void
}

export interface HaChaosResult {
  seed: number
  failovers: number
  leaked: number
  inconsistencies: number
  failedRequests: number
  okRequests: number
  cutRequests: number
  /** leader killed/partitioned → another replica leads and is ready */
  failoverMs: number[]
  /** leader killed/partitioned → a write through another replica accepted (201) */
  acceptMs: number[]
  details: string[]
  summary: string
}

export async function haChaos(tb: Testbed, set: HaReplicaSet, opts: HaChaosOptions): Promise<HaChaosResult> {
  const log = opts.log ?? (() => {})
  // one stream for the chaos schedule, one per client worker: the same seed
  // gives the same delays and choices (the real system's timing still varies)
  const random = seededRandom(opts.seed)
  const workerRandom = (w: number) => seededRandom(opts.seed + 1 + w)
  const details: string[] = []
  const note = (line: string) => {
    details.push(line)
    log(line)
  }
  const baseFstab = (await tb.snapshot()).map((s) => s.fstab)
  const volumes: VolumeCalls[] = []
  let stopping = false
  const ttlMs = opts.leaseTtlSec * 1000
  const failoverLimitMs = 3 * ttlMs + 20_000

  let retries429 = 0
  const clientFor = (random: () => number) =>
    new GoClient({
      adminKey: set.adminKey,
      random,
      on429: () => retries429++,
      // like a Service in front of the pods: any replica that is running
      pickEndpoint: () => {
        const live = set.live()
        const pick = live.length > 0 ? live : set.replicas
        return pick[Math.floor(random() * pick.length)]!.url
      },
    })
  const worker = async (w: number) => {
    const random = workerRandom(w)
    const client = clientFor(random)
    let seq = 0
    for (let step = 0; !stopping && step < 500; step++) {
      const mine = volumes.filter((v) => v.name.startsWith(`hc${w}_`) && v.settled && !v.gone && v.id)
      const roll = random()
      if (mine.length < 2 || (mine.length < 4 && roll < 0.34)) {
        const v: VolumeCalls = { name: `hc${w}_${seq++}`, calls: [], settled: false, gone: false }
        volumes.push(v)
        const result = await client.call(
          'POST',
          '/volumes',
          { size: 1, name: v.name, durability: { type: 'replicate', replicate: { replica: 3 } } },
          200,
        )
        v.calls.push({ kind: 'create', result })
        if (result.outcome === 'ok') {
          v.id = result.location?.split('/').pop()
          v.settled = true
        } else if (result.outcome === 'failed' && !answeredUnknown(result) && !pollUnanswered(result)) {
          v.gone = true
        }
      } else {
        const v = mine[Math.floor(random() * mine.length)]!
        const del = mine.length >= 4 || roll < 0.67
        const result = del
          ? await client.call('DELETE', `/volumes/${v.id}`, undefined, 204)
          : await client.call('POST', `/volumes/${v.id}/expand`, { expand_size: 1 }, 200)
        v.calls.push({ kind: del ? 'delete' : 'expand', result })
        if (result.outcome === 'cut' || answeredUnknown(result) || pollUnanswered(result)) v.settled = false
        else if (del && result.outcome === 'ok') v.gone = true
      }
      await sleep(Math.floor(random() * 300))
    }
  }
  const workerCount = opts.workers ?? 2
  const workers = Array.from({ length: workerCount }, (_, w) => worker(w))
  // warm-up: every worker has two volumes, so expands and deletes get killed too (bounded)
  const settled = () => volumes.filter((v) => v.settled && !v.gone).length
  for (let i = 0; i < 600 && settled() < 2 * workerCount; i++) await sleep(200)
  note(`warm-up: ${settled()} volumes before the first kill`)

  // the chaos: kill the leader at random moments, then one partition
  const failoverMs: number[] = []
  const acceptMs: number[] = []
  let failovers = 0
  let noFailover = 0
  /**
   * Leader gone at t0 → the next write accepted: POST /clusters through the
   * other replicas until one answers 201 (forwarded to whoever leads), then
   * the probe cluster is deleted again.
   */
  const probeAccepted = async (t0: number, gone: HaReplica, what: string) => {
    const deadline = t0 + failoverLimitMs
    while (Date.now() < deadline) {
      const others = set.live().filter((r) => r !== gone)
      const via = others[Math.floor(random() * others.length)]
      const res = via
        ? await set.call(via, 'POST', '/clusters', { file: true }).catch(() => undefined)
        : undefined
      if (res?.status === 201) {
        acceptMs.push(Date.now() - t0)
        const id = (JSON.parse(res.body) as { id: string }).id
        const del = await set.call(via!, 'DELETE', `/clusters/${id}`)
        if (del.status !== 200) {
          note(`${what}: probe cluster ${id} not deleted: ${del.status} ${del.body}`)
          noFailover++
        }
        return
      }
      await sleep(100)
    }
    note(`${what}: no write accepted within ${failoverLimitMs} ms`)
    noFailover++
  }
  /** leader gone at t0 → another replica leads and is ready (timed on its own, not after the probe) */
  const leaderAfter = async (t0: number, gone: HaReplica) => {
    const r = await set.waitLeader(failoverLimitMs, gone)
    return r ? { r, ms: Date.now() - t0 } : undefined
  }
  try {
    for (let k = 1; k <= opts.kills; k++) {
      await sleep(1000 + Math.floor(random() * 5000))
      const leader = await set.waitLeader(failoverLimitMs)
      if (!leader) {
        note(`kill ${k}: no leader to kill within ${failoverLimitMs} ms`)
        noFailover++
        continue
      }
      const t0 = Date.now()
      await set.kill(leader)
      const [next] = await Promise.all([leaderAfter(t0, leader), probeAccepted(t0, leader, `kill ${k}`)])
      if (!next) {
        note(
          `kill ${k}: leader ${leader.id} (pid ${leader.server.pid}) killed; NO new leader in ${failoverLimitMs} ms`,
        )
        noFailover++
      } else {
        failovers++
        failoverMs.push(next.ms)
        note(`kill ${k}: leader ${leader.id} killed -9; ${next.r.id} leads after ${next.ms} ms`)
      }
      await set.restart(leader)
    }
    if (opts.partition) {
      await sleep(1000 + Math.floor(random() * 3000))
      const leader = await set.waitLeader(failoverLimitMs)
      if (!leader) {
        note(`partition: no leader within ${failoverLimitMs} ms`)
        noFailover++
      } else {
        const t0 = Date.now()
        set.partition(leader)
        const [next] = await Promise.all([leaderAfter(t0, leader), probeAccepted(t0, leader, 'partition')])
        if (!next) {
          note(`partition: leader ${leader.id} cut from etcd; NO new leader in ${failoverLimitMs} ms`)
          noFailover++
        } else {
          failovers++
          failoverMs.push(next.ms)
          note(`partition: leader ${leader.id} cut from etcd; ${next.r.id} leads after ${next.ms} ms`)
        }
        // the client keeps going against all replicas, the cut one included, for a while
        await sleep(ttlMs)
        const oldView = await set.view(leader)
        note(`partition: the cut replica says leader=${oldView?.leader} (must be false)`)
        if (oldView?.leader) noFailover++
        set.heal(leader)
        // it must come back as a follower of the new leader
        const deadline = Date.now() + failoverLimitMs
        let rejoined = false
        while (Date.now() < deadline && !rejoined) {
          const v = await set.view(leader)
          rejoined = v !== undefined && v.leader === false && v.leader_id !== undefined
          if (!rejoined) await sleep(200)
        }
        note(`partition healed: ${leader.id} ${rejoined ? 'follows again' : 'did NOT rejoin as a follower'}`)
        if (!rejoined) noFailover++
      }
    }
  } finally {
    stopping = true
    await Promise.all(workers)
  }

  // a replica that ended by itself (nobody killed it) is a failure: say so, with its last words
  for (const r of set.replicas) {
    if (r.up && r.server.pid !== undefined && !alive(r.server.pid)) {
      note(
        `replica ${r.id} (pid ${r.server.pid}) EXITED on its own: ${r.server.output.trim().split('\n').slice(-25).join(' | ')}`,
      )
      noFailover++
      r.up = false
    }
  }

  // settle: a leader, an empty journal
  const leader = await set.waitLeader(failoverLimitMs)
  if (!leader) throw new Error('no leader after the chaos')
  const left = await waitJournalEmpty(set, leader)
  if (left > 0) note(`journal not empty after the clean-up: ${left} records`)

  // cut calls: what does heqet answer for their queue entries now?
  for (const v of volumes) {
    for (const c of v.calls) {
      if (c.result.outcome === 'ok') c.resolved = 'ok'
      else if (answeredUnknown(c.result)) c.resolved = 'unknown'
      else if (c.result.outcome === 'failed' && !pollUnanswered(c.result)) c.resolved = 'failed'
      else c.resolved = c.result.queue ? await resolveQueue(set, leader, c.result.queue) : 'unknown'
    }
  }

  // the DB against the nodes, and the calls against the DB
  const dump = JSON.parse((await set.call(leader, 'GET', '/db/dump')).body) as HeketiDump & {
    volumeentries: Record<string, { Info: { name: string; size: number } }>
  }
  const dbCheck = JSON.parse((await set.call(leader, 'GET', '/db/check')).body).totalinconsistencies as number
  const agreement = compareNodesWithDb(
    await tb.snapshot(),
    tb.nodes.map((n) => n.ip),
    baseFstab,
    dump,
  )
  for (const l of agreement.leaked) note(`  leaked ${l}`)
  for (const m of agreement.missing) note(`  missing ${m}`)
  if (dbCheck > 0) note(`  /db/check: ${dbCheck} inconsistencies`)
  const byName = new Map(Object.values(dump.volumeentries).map((v) => [v.Info.name, v.Info.size]))
  const wrong = checkCalls(volumes, byName)
  for (const w of wrong) note(`  ${w}`)

  const all = volumes.flatMap((v) => v.calls)
  const okRequests = all.filter((c) => c.result.outcome === 'ok').length
  const cutRequests = all.filter((c) => c.result.outcome === 'cut').length
  const unknownAnswers = all.filter((c) => answeredUnknown(c.result)).length
  const failedRequests = all.length - okRequests
  for (const c of all) {
    if (c.result.outcome === 'failed')
      note(`  failed ${c.kind}: ${c.result.status} ${c.result.body.trim().slice(0, 160)}`)
    if (c.result.outcome === 'cut')
      note(`  cut off ${c.kind} (heqet now says: ${c.resolved}): ${c.result.error}`)
  }
  const leaked = agreement.leaked.length
  const inconsistencies = agreement.missing.length + dbCheck + wrong.length + Math.max(left, 0) + noFailover
  const summary = `${failovers} failovers, ${leaked} leaked objects, ${inconsistencies} inconsistencies, ${failedRequests} failed client requests`
  note(
    `${all.length} client calls: ${okRequests} ok, ${failedRequests - cutRequests} failed with an answer (${unknownAnswers} of them "result unknown"), ${cutRequests} cut off; ${retries429} retries after 429`,
  )
  note(`failover (leader gone -> new leader ready), ms: ${failoverMs.join(', ')}`)
  note(
    `leader gone -> next write accepted (POST /clusters through another replica), ms: ${acceptMs.join(', ')}`,
  )
  note(summary)
  return {
    seed: opts.seed,
    failovers,
    leaked,
    inconsistencies,
    failedRequests,
    okRequests,
    cutRequests,
    failoverMs,
    acceptMs,
    details,
    summary,
  }
}

/**
 * heqet's answer when the leader running a job died after its last step but
 * before recording the outcome (api/queue.ts): the change may have happened.
 * The client sees a failure; the check treats the call as "either way".
 */
export function answeredUnknown(r: CallResult): boolean {
  return r.outcome === 'failed' && /its result is unknown|ended without a recorded result/.test(r.body)
}

/**
 * The job was accepted (202) but a poll of its queue entry was answered 503:
 * the replica asked could not read the entry from etcd (cut off from it), so
 * the job's outcome is still to be asked, like a call cut off by the network.
 */
export function pollUnanswered(r: CallResult): boolean {
  return r.outcome === 'failed' && r.queue !== undefined && r.status === 503
}

/** Every volume's calls, in order, against the DB's final volumes (name → size GiB). */
export function checkCalls(volumes: VolumeCalls[], byName: Map<string, number>): string[] {
  const wrong: string[] = []
  for (const v of volumes) {
    // what may be there: exists yes/no/maybe, size between min and max
    let exists: 'yes' | 'no' | 'maybe' = 'no'
    let min = 0
    let max = 0
    for (const c of v.calls) {
      const r = c.resolved ?? 'unknown'
      if (c.kind === 'create') {
        if (r === 'ok') [exists, min, max] = ['yes', 1, 1]
        else if (r === 'unknown') [exists, min, max] = ['maybe', 1, 1]
      } else if (c.kind === 'expand') {
        if (r === 'ok') [min, max] = [min + 1, max + 1]
        else if (r === 'unknown') max += 1
      } else if (r === 'ok') exists = 'no'
      else if (r === 'unknown' && exists === 'yes') exists = 'maybe'
    }
    const size = byName.get(v.name)
    const history = v.calls.map((c) => `${c.kind}:${c.resolved}`).join(' ')
    if (size === undefined && exists === 'yes') wrong.push(`volume ${v.name} missing (${history})`)
    if (size !== undefined && exists === 'no')
      wrong.push(`volume ${v.name} exists but should not (${history})`)
    if (size !== undefined && exists !== 'no' && (size < min || size > max))
      wrong.push(`volume ${v.name} is ${size} GiB, expected ${min}..${max} (${history})`)
  }
  return wrong
}

async function waitJournalEmpty(set: HaReplicaSet, leader: HaReplica, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await set.call(leader, 'POST', '/operations/pending/cleanup', {})
    const ops = JSON.parse((await set.call(leader, 'GET', '/operations')).body) as { total: number }
    if (ops.total === 0 || Date.now() > deadline) return ops.total
    await sleep(500)
  }
}

/** heqet's answer for a queue entry a cut-off client never finished polling. */
async function resolveQueue(
  set: HaReplicaSet,
  leader: HaReplica,
  queue: string,
): Promise<'ok' | 'failed' | 'unknown'> {
  for (let i = 0; i < 600; i++) {
    const res = await set.call(leader, 'GET', queue)
    if (res.status === 200) {
      await sleep(200)
      continue
    }
    if (res.status === 303 || res.status === 204) return 'ok'
    if (res.status === 500)
      return answeredUnknown({ outcome: 'failed', status: 500, body: res.body }) ? 'unknown' : 'failed'
    return 'unknown' // 404: the answer was already given to someone (reported once) or never kept
  }
  return 'unknown'
}
