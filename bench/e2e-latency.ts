// Real volume create latency on the GlusterFS testbed (root + .ci/e2e-deps.sh):
// 10 sequential 1 GiB replica-3 creates through heqet's API with the SSH
// executor, p50/p99; then 10 more with every batch split into per-command
// calls, to break the time down by phase (bricks, gluster create, set, start).
// In each run, 5 of the volumes are then expanded by 1 GiB one after
// the other: how long the expand takes to answer (add-brick; the rebalance
// start runs behind it), and when gluster accepted the start and reported the
// rebalance completed (src/rebalance.ts).
import { cpus, loadavg } from 'node:os'
import pino from 'pino'
import { buildApp } from '../api/app.ts'
import { signToken } from '../api/auth.ts'
import type { BatchOptions, CommandResult, CommandRunner } from '../executors/runner.ts'
import { parseConfig } from '../src/config.ts'
import { remoteExecutor, sshRunner } from '../test/e2e/lib/heqet.ts'
import { createTestbed, testbedPrerequisites } from '../test/e2e/lib/testbed.ts'

interface Event {
  command: string
  start: number
  end: number
}

/** Runs each command of a batch on its own, recording how long each took. */
class TimingRunner implements CommandRunner {
  events: Event[] = []
  constructor(private readonly inner: CommandRunner) {}
  async runBatch(host: string, commands: string[], opts: BatchOptions): Promise<CommandResult[]> {
    const out: CommandResult[] = []
    for (const command of commands) {
      const start = performance.now()
      const [r] = await this.inner.runBatch(host, [command], opts)
      this.events.push({ command, start, end: performance.now() })
      out.push(r!)
      if (r!.exitCode !== 0) break
    }
    return out
  }
  close() {
    return this.inner.close()
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

const pre = testbedPrerequisites()
if (!pre.ok) {
  console.error(`testbed unavailable: ${pre.why}`)
  process.exit(2)
}
const tb = await createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqbench' })
// the figures depend on what else runs: say so with them
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')
console.log(`load average at start: ${load()} (${cpus().length} CPUs)`)
try {
  for (const mode of ['batched', 'per-command'] as const) {
    const base = sshRunner(tb)
    const timing = new TimingRunner(base)
    const config = {
      ...parseConfig(
        JSON.stringify({
          jwt: { admin: { key: 'k' }, user: { key: 'u' } },
          glusterfs: { executor: 'mock', db: `${tb.dir}/bench-${mode}.db` },
        }),
        {},
      ),
      disableBackgroundCleaner: true,
      disableMonitor: true,
    }
    const app = await buildApp({
      config,
      executor: remoteExecutor(mode === 'batched' ? base : timing),
      logger: pino({ level: 'silent' }),
    })
    const call = async (method: string, path: string, body?: unknown) =>
      app.app.inject({
        method: method as never,
        url: path,
        headers: { authorization: `bearer ${signToken('admin', 'k', method, path)}` },
        payload: body === undefined ? undefined : JSON.stringify(body),
      })
    const run = async (method: string, path: string, body?: unknown) => {
      const first = await call(method, path, body)
      if (first.statusCode !== 202) throw new Error(`${first.statusCode} ${first.body}`)
      for (;;) {
        const poll = await call('GET', first.headers.location as string)
        if (poll.headers['x-pending'] !== 'true') return poll
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    const cluster = JSON.parse((await call('POST', '/clusters', { file: true, block: true })).body).id
    for (const [i, node] of tb.nodes.entries()) {
      const res = await run('POST', '/nodes', {
        zone: i + 1,
        hostnames: { manage: [node.ip], storage: [node.ip] },
        cluster,
      })
      const nodeId = (res.headers.location as string).split('/').pop()
      for (const dev of node.devices)
        await run('POST', '/devices', { name: dev, node: nodeId, destroydata: true })
    }
    const latencies: number[] = []
    const phases: Record<string, number[]> = { bricks: [], create: [], set: [], start: [] }
    const ids: string[] = []
    for (let i = 0; i < 10; i++) {
      timing.events = []
      const t0 = performance.now()
      const res = await run('POST', '/volumes', {
        size: 1,
        durability: { type: 'replicate', replicate: { replica: 3 } },
      })
      latencies.push(performance.now() - t0)
      if (res.statusCode !== 303) throw new Error(`create: ${res.statusCode} ${res.body}`)
      ids.push((res.headers.location as string).split('/').pop()!)
      if (mode === 'per-command') {
        const brickEvents = timing.events.filter((e) => !e.command.startsWith('gluster'))
        phases.bricks!.push(
          Math.max(...brickEvents.map((e) => e.end)) - Math.min(...brickEvents.map((e) => e.start)),
        )
        const sum = (re: RegExp) =>
          timing.events.filter((e) => re.test(e.command)).reduce((s, e) => s + e.end - e.start, 0)
        phases.create!.push(sum(/ volume create /))
        phases.set!.push(sum(/ volume set /))
        phases.start!.push(sum(/ volume start /))
      }
    }
    console.log(
      `\n## ${mode} (${mode === 'batched' ? 'one round trip per batch, as heqet runs' : 'each command its own round trip, for the breakdown'})`,
    )
    console.log(
      `create latency over 10: p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms (first: ${latencies[0]!.toFixed(0)} ms)`,
    )
    if (mode === 'per-command') {
      for (const [phase, xs] of Object.entries(phases)) {
        console.log(`  ${phase.padEnd(7)} p50 ${pct(xs, 50).toFixed(0)} ms, p99 ${pct(xs, 99).toFixed(0)} ms`)
      }
    }
    {
      app.ctx.rebalance.settings.pollMs = 200
      const answered: number[] = []
      const accepted: number[] = []
      const completed: number[] = []
      const expandPhases: Record<string, number[]> = { bricks: [], 'add-brick': [], 'rebalance start': [] }
      // room for the new bricks: the testbed's loop disks hold about ten 1 GiB sets
      for (const id of ids.splice(5)) await run('DELETE', `/volumes/${id}`)
      for (const id of ids) {
        timing.events = []
        const t0 = performance.now()
        const res = await run('POST', `/volumes/${id}/expand`, { expand_size: 1 })
        if (res.statusCode !== 303) throw new Error(`expand: ${res.statusCode} ${res.body}`)
        answered.push(performance.now() - t0)
        await app.ctx.rebalance.settled(id)
        const r = app.ctx.rebalance.get(id)
        if (r?.phase !== 'completed') throw new Error(`rebalance of ${id}: ${JSON.stringify(r)}`)
        accepted.push(r.startedAt! - r.requestedAt)
        completed.push(r.finishedAt! - r.requestedAt)
        if (mode === 'per-command') {
          const brickEvents = timing.events.filter((e) => !e.command.startsWith('gluster'))
          expandPhases.bricks!.push(
            Math.max(...brickEvents.map((e) => e.end)) - Math.min(...brickEvents.map((e) => e.start)),
          )
          const sum = (re: RegExp) =>
            timing.events.filter((e) => re.test(e.command)).reduce((s, e) => s + e.end - e.start, 0)
          expandPhases['add-brick']!.push(sum(/ volume add-brick /))
          expandPhases['rebalance start']!.push(sum(/ volume rebalance \S+ start/))
        }
      }
      const line = (xs: number[]) =>
        `p50 ${pct(xs, 50).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms (${xs.map((x) => x.toFixed(0)).join(', ')})`
      console.log(`expand (1 GiB, replica 3, one at a time) over ${answered.length}:`)
      console.log(`  answered (303)             ${line(answered)}`)
      console.log(`  rebalance start accepted   ${line(accepted)} after the answer's commit`)
      console.log(`  rebalance completed        ${line(completed)} after the answer's commit`)
      if (mode === 'per-command') {
        for (const [phase, xs] of Object.entries(expandPhases))
          console.log(
            `  ${phase.padEnd(16)} p50 ${pct(xs, 50).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms`,
          )
      }
    }
    for (const id of ids) await run('DELETE', `/volumes/${id}`)
    await app.close()
  }
  console.log(`load average at the end: ${load()}`)
} finally {
  await tb.destroy()
}
