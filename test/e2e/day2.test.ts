// Day-2 operations on the real testbed (issues 9 and 15): a disk dies and
// then a whole node is retired under a replica-3 volume that a writer keeps
// filling through a FUSE mount. Each run asserts that no write failed, that
// heqet says the heal finished within 120 s and that at that moment heal info
// reads 0 and every brick holds every file, equal; the files read back equal
// through the mount, the bricks moved, and nothing of the old bricks stays on
// the nodes. The scenario runs several times in a row (HEQET_DAY2_RUNS,
// default 3) because the stuck heal of issue 15 showed in only some runs.
import { createHash, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import t, { type Test } from 'tap'
import type { Executor } from '../../executors/executor.ts'
import { makeApp, type TestApp } from '../helpers/app.ts'
import { assertAgreement } from './lib/agreement.ts'
import { addTopology, glusterBricks, ok, removeTopology, timedRun } from './lib/day2.ts'
import { remoteExecutor, sshRunner } from './lib/heqet.ts'
import { sleep } from './lib/shell.ts'
import { createTestbed, requireTestbed, type Testbed } from './lib/testbed.ts'

const RUNS = Number(process.env.HEQET_DAY2_RUNS ?? 3)
/** from the node remove's answer to heqet saying the heal finished */
const HEAL_DEADLINE_MS = 120_000
const FILE_BYTES = 256 * 1024
const GLUSTER = 'gluster --mode=script'
const SAME_NODE = process.env.HEQET_DAY2_SAME_NODE // 'all' | 'none' | unset (alternate)

/** What heqet asked gluster during a run, with times, for the report of a stuck heal. */
const events: string[] = []
let t0 = performance.now()
function tracing(executor: Executor): Executor {
  const traced = new Set(['healInfo', 'replaceBrick', 'volumeInfo', 'healStart'])
  return new Proxy(executor, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function' || !traced.has(String(prop))) return value
      return async (...args: unknown[]) => {
        const at = (performance.now() - t0).toFixed(0)
        try {
          const out = await value.apply(target, args)
          const what =
            prop === 'healInfo'
              ? JSON.stringify(
                  (out as { name: string; numberOfEntries: string }[]).map(
                    (b) => `${b.name.split(':')[0]}/${b.name.slice(-44, -30)}=${b.numberOfEntries}`,
                  ),
                )
              : prop === 'replaceBrick'
                ? JSON.stringify(args.slice(2))
                : ''
          events.push(`${at} ms ${String(prop)} ${what}`)
          return out
        } catch (err) {
          events.push(`${at} ms ${String(prop)} failed: ${(err as Error).message}`)
          throw err
        }
      }
    },
  })
}

interface Writer {
  stop(): Promise<{ written: Map<string, string>; failures: string[] }>
}

/** Adds a 256 KiB file every 100 ms (at most `max` files) and remembers each checksum. */
function startWriter(dir: string, max: number): Writer {
  const written = new Map<string, string>()
  const failures: string[] = []
  let stopped = false
  const loop = (async () => {
    for (let i = 1; i <= max && !stopped; i++) {
      const data = randomBytes(FILE_BYTES)
      try {
        await writeFile(`${dir}/f${i}`, data)
        written.set(`f${i}`, createHash('sha256').update(data).digest('hex'))
      } catch (err) {
        failures.push(`f${i}: ${(err as Error).message}`)
      }
      await sleep(100)
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
      return { written, failures }
    },
  }
}

/** Entries pending heal per brick, from `gluster volume heal <vol> info`. */
async function healCounts(tb: Testbed, volume: string): Promise<Map<string, number>> {
  const res = await tb.nodes[0]!.exec(`${GLUSTER} volume heal ${volume} info`)
  const counts = new Map<string, number>()
  let brick = ''
  for (const line of res.stdout.split('\n')) {
    if (line.startsWith('Brick ')) brick = line.slice('Brick '.length).trim()
    const m = /^Number of entries: (\d+|-)/.exec(line)
    if (m && brick) counts.set(brick, m[1] === '-' ? Number.NaN : Number(m[1]))
  }
  if (res.code !== 0 || counts.size === 0) throw new Error(`heal info: ${res.stdout}${res.stderr}`)
  return counts
}

const pendingTotal = (counts: Map<string, number>) =>
  [...counts.values()].reduce((a, n) => a + (Number.isNaN(n) ? 1_000_000 : n), 0)

interface RunTimings {
  deviceRemoveMs: number
  nodeRemoveMs: number
  nodeRemoveToHealedMs: number
  bricksMovedByNodeRemove: number
}

/**
 * `sameNode`: the replacement of the first brick must land on the other disk
 * of the same node (the runs where issue 15's heal got stuck); the node
 * outside the set has its disks disabled during the device remove for that.
 */
async function scenario(
  t: Test,
  tb: Testbed,
  app: TestApp,
  baseFstab: string[][],
  sameNode: boolean,
): Promise<RunTimings> {
  events.length = 0
  t0 = performance.now()
  const topo = await addTopology(t, app, tb)
  const hostOf = (nodeId: string) => tb.nodes[topo.nodeIds.indexOf(nodeId)]!
  const created = await app.run('POST', '/volumes', {
    size: 2,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  await ok(t, created, 303, 'replica-3 volume created')
  const volumeId = created.location!.split('/').pop()!
  const info = (await app.call('GET', `/volumes/${volumeId}`)).json()
  const name: string = info.name
  const bricksBefore = new Map<string, { id: string; node: string; device: string; path: string }>(
    info.bricks.map((b: { id: string; node: string; device: string; path: string }) => [b.path, b]),
  )
  const order = await glusterBricks(tb, name)
  const pathOf = (g: string) => g.slice(g.indexOf(':') + 1)
  const first = bricksBefore.get(pathOf(order[0]!))!
  const [server, ...backups] = info.mount.glusterfs.hosts as string[]
  const mount = await tb.mountVolume(server!, name, backups)
  let writer: Writer | undefined
  try {
    writer = startWriter(mount.path, 600)
    await sleep(2000)

    // the disk under the first brick dies
    const spare = topo.nodeIds.find((id) => ![...bricksBefore.values()].some((b) => b.node === id))!
    const spareDevices: string[] = (await app.call('GET', `/nodes/${spare}`))
      .json()
      .devices.map((d: { id: string }) => d.id)
    if (sameNode) {
      for (const d of spareDevices)
        await ok(t, await app.run('POST', `/devices/${d}/state`, { state: 'offline' }), 204, 'spare disk off')
    }
    await ok(
      t,
      await app.run('POST', `/devices/${first.device}/state`, { state: 'offline' }),
      204,
      'device offline',
    )
    events.push(`${(performance.now() - t0).toFixed(0)} ms device remove starts`)
    const dev = await timedRun(app, 'POST', `/devices/${first.device}/state`, { state: 'failed' })
    await ok(t, dev, 204, 'device removed')
    const afterDevice = (await app.call('GET', `/volumes/${volumeId}`)).json()
    const replacement = afterDevice.bricks.find((b: { path: string }) => !bricksBefore.has(b.path))
    t.ok(replacement, 'a new brick replaced the first one')
    if (sameNode) {
      t.equal(replacement?.node, first.node, 'the new brick is on the same node')
      for (const d of spareDevices)
        await ok(t, await app.run('POST', `/devices/${d}/state`, { state: 'online' }), 204, 'spare disk on')
    }
    t.comment(
      `device remove: ${dev.ms.toFixed(0)} ms; new brick on ${
        replacement?.node === first.node ? 'the same node' : 'another node'
      }`,
    )
    await sleep(2000)

    // then a node holding another brick of the set is retired
    const second = bricksBefore.get(pathOf(order[1]!))!
    const secondNode = (await app.call('GET', `/nodes/${second.node}`)).json()
    t.comment(`heal before node remove: ${JSON.stringify([...(await healCounts(tb, name))])}`)
    await ok(
      t,
      await app.run('POST', `/nodes/${second.node}/state`, { state: 'offline' }),
      204,
      'node offline',
    )
    events.push(`${(performance.now() - t0).toFixed(0)} ms node remove starts`)
    const nodeStart = performance.now()
    const node = await timedRun(app, 'POST', `/nodes/${second.node}/state`, { state: 'failed' })
    await ok(t, node, 204, 'node removed')
    const moved = secondNode.devices.reduce((n: number, d: { bricks: unknown[] }) => n + d.bricks.length, 0)
    await sleep(2000)
    const { written, failures } = await writer.stop()
    writer = undefined
    t.same(failures, [], `no failed write (${written.size} files)`)

    // heqet follows the heal until it says finished (bounded)
    const healStart = performance.now()
    let shown: { volume: string; finished: boolean; seconds: number; heal_starts: number } | undefined
    while (!shown?.finished && performance.now() - healStart < HEAL_DEADLINE_MS) {
      shown = (await app.call('GET', '/operations'))
        .json()
        .heals?.find((h: { volume: string }) => h.volume === name)
      if (!shown?.finished) await sleep(250)
    }
    const healedMs = performance.now() - nodeStart
    t.ok(shown?.finished, `/operations shows the heal finished: ${JSON.stringify(shown)}`)
    t.ok((shown?.heal_starts ?? 0) >= 1, 'heqet started the heal')

    // At that very moment (no waiting): heal info reads 0 and every brick holds
    // every file, equal. Heal info alone can read 0 while a new brick still
    // lacks older files; heqet's "finished" must not.
    const final = (await app.call('GET', `/volumes/${volumeId}`)).json()
    const bricks = final.bricks as { id: string; node: string; device: string; path: string }[]
    const missingOnBrick = async (b: (typeof bricks)[number]) => {
      const sums = await hostOf(b.node).exec(`cd ${b.path} && sha256sum f*`)
      const onBrick = new Map(
        sums.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(/\s+/))
          .map(([sum, file]) => [file!, sum!]),
      )
      return [...written].filter(([f, s]) => onBrick.get(f) !== s).length
    }
    const [missing, counts] = await Promise.all([
      Promise.all(bricks.map(missingOnBrick)),
      healCounts(tb, name),
    ])
    for (const [i, b] of bricks.entries())
      t.equal(
        missing[i],
        0,
        `heqet says finished: brick ${b.id} on ${hostOf(b.node).name} holds every file, equal`,
      )
    t.equal(pendingTotal(counts), 0, `heqet says finished: heal info reads 0 ${JSON.stringify([...counts])}`)
    const failed = !shown?.finished || missing.some((n) => n > 0) || pendingTotal(counts) > 0
    if (failed || process.env.HEQET_DAY2_TRACE) t.comment(events.join('\n'))
    if (failed) {
      for (const n of tb.nodes) {
        const log = await n.exec(
          `grep -E '\\] (E|W) \\[' /var/log/glusterfs/glustershd.log | tail -n 15; ${GLUSTER} volume heal ${name} statistics`,
        )
        t.comment(`${n.name} glustershd:\n${log.stdout}`)
      }
    }

    // every file equal through the mount
    let unequal = 0
    for (const [file, sum] of written) {
      const data = await readFile(`${mount.path}/${file}`)
      if (createHash('sha256').update(data).digest('hex') !== sum) unequal++
    }
    t.equal(unequal, 0, 'every file reads back equal through the mount')
    t.same(
      (await glusterBricks(tb, name)).sort(),
      final.bricks.map((b: { node: string; path: string }) => `${hostOf(b.node).ip}:${b.path}`).sort(),
      'gluster serves exactly the bricks the DB lists',
    )
    for (const b of bricks) {
      t.not(b.device, first.device, `brick ${b.id} not on the removed device`)
      t.not(b.node, second.node, `brick ${b.id} not on the removed node`)
    }

    // nothing of the old bricks is left on the nodes
    await assertAgreement(t, app, tb, baseFstab, 'after the removals')
    return {
      deviceRemoveMs: dev.ms,
      nodeRemoveMs: node.ms,
      nodeRemoveToHealedMs: healedMs,
      bricksMovedByNodeRemove: moved,
    }
  } finally {
    if (writer) await writer.stop()
    await mount.unmount()
    await ok(t, await app.run('DELETE', `/volumes/${volumeId}`), 204, 'volume deleted')
    await removeTopology(t, app, topo)
  }
}

t.test('disk and node failure under a live writer', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 4, devicesPerNode: 2, name: 'hqday2' })
  t.teardown(() => tb.destroy())
  const executor = tracing(remoteExecutor(sshRunner(tb)))
  const app = await makeApp(t, { executor })
  // heal info every 0.5 s (default 2 s): the same checks, found finished sooner (CI time)
  app.ctx.heal.settings.pollMs = 500
  const before = await tb.snapshot()
  const baseFstab = before.map((s) => s.fstab)
  const timings: RunTimings[] = []
  for (let run = 1; run <= RUNS; run++) {
    await t.test(`run ${run}`, async (t) => {
      timings.push(
        await scenario(t, tb, app, baseFstab, SAME_NODE === 'all' || (SAME_NODE !== 'none' && run % 2 === 1)),
      )
    })
  }
  for (const [i, r] of timings.entries()) {
    t.comment(
      `timing run ${i + 1}: device remove ${r.deviceRemoveMs.toFixed(0)} ms (1 brick), node remove ${r.nodeRemoveMs.toFixed(0)} ms (${r.bricksMovedByNodeRemove} brick), node remove → heal finished ${r.nodeRemoveToHealedMs.toFixed(0)} ms`,
    )
  }
  const end = await tb.snapshot()
  for (const [i, s] of end.entries()) {
    t.same(s.lvs, [], `node ${i}: no LVs left`)
    t.same(s.mounts, [], `node ${i}: no brick mounts left`)
    t.same(s.fstab, baseFstab[i], `node ${i}: fstab as before`)
    t.same(s.brickDirs, [], `node ${i}: no brick directories left`)
    t.same(s.vgs, before[i]!.vgs, `node ${i}: no VGs left`)
  }
})
