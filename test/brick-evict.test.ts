// Brick eviction on the mock executor: undo when gluster cannot tell,
// crash clean-up either way, the heal checks (wait, refuse, quorum) and
// the heal that heqet starts and follows after every replace-brick.
import t from 'tap'
import type { Executor, HealInfoBrick } from '../executors/executor.ts'
import { Injector, injectingExecutor } from '../executors/inject.ts'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp, makeTopology, type TestApp } from './helpers/app.ts'

const replica3 = { size: 5, durability: { type: 'replicate', replicate: { replica: 3 } } }

/** Counts calls per executor action; `override` may replace an action. */
function spy(inner: Executor, override: Partial<Record<keyof Executor, (...args: never[]) => unknown>> = {}) {
  const calls: Record<string, unknown[][]> = {}
  const executor = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const list = calls[String(prop)] ?? []
        list.push(args)
        calls[String(prop)] = list
        const own = override[prop as keyof Executor]
        return own ? (own as (...a: unknown[]) => unknown)(...args) : value.apply(target, args)
      }
    },
  })
  return { executor, calls }
}

async function volumeOnFourNodes(app: TestApp) {
  await makeTopology(app, { nodes: 4, devices: 1 })
  const created = await app.run('POST', '/volumes', replica3)
  const id = created.location!.split('/').pop()!
  return (await app.call('GET', `/volumes/${id}`)).json()
}

t.test('undo throws when gluster cannot tell whether the new brick is served', async (t) => {
  const mock = new MockExecutor()
  const injector = new Injector([])
  const { executor, calls } = spy(injectingExecutor(mock, injector))
  const app = await makeApp(t, { executor })
  const vol = await volumeOnFourNodes(app)
  const victim = vol.bricks[0].id as string
  const before = mock.glusterBricks(vol.name)!.map((b) => b.path)
  // replace-brick answers an error, and then nobody can say what gluster holds
  injector.setRules([
    { pattern: '^replaceBrick', action: 'fail', message: 'connection reset' },
    { pattern: '^volumeInfo', action: 'fail', message: 'glusterd unreachable', skip: 1 },
  ])
  const res = await app.run('POST', `/bricks/to-evict/${victim}`, {})
  t.equal(res.statusCode, 500)
  t.match(res.body, /Unable to replace brick .* connection reset/)
  const ops = (await app.call('GET', '/operations')).json()
  t.equal(ops.failed, 1, 'the journal record stays, failed, for the cleaner')
  const pending = (await app.call('GET', '/operations/pending')).json().pendingoperations
  const changes = (await app.call('GET', `/operations/pending/${pending[0].id}`)).json().changes
  const added = changes.find((c: { description: string }) => c.description === 'Add brick').id
  t.notOk(
    (calls.brickDestroy ?? []).some((a) => (a[0] as { brickId: string }).brickId === added),
    'the new brick, which gluster may be serving, was not destroyed',
  )
  t.same(
    mock.glusterBricks(vol.name)!.map((b) => b.path),
    before,
  )

  // while gluster still cannot tell, the cleaner leaves the record alone (and says why)
  const stuck = await app.run('POST', '/operations/pending/cleanup', {})
  t.equal(stuck.statusCode, 500)
  t.match(stuck.body, /cannot tell whether gluster already serves brick/)
  t.equal((await app.call('GET', '/operations')).json().failed, 1, 'still failed')

  // once gluster answers (old brick still in), the cleaner undoes
  injector.setRules([])
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.equal((await app.call('GET', '/operations')).json().total, 0)
  t.ok(
    (calls.brickDestroy ?? []).some((a) => (a[0] as { brickId: string }).brickId === added),
    'now the unused new brick is destroyed',
  )
  const after = (await app.call('GET', `/volumes/${vol.id}`)).json()
  t.same(
    after.bricks.map((b: { id: string }) => b.id).sort(),
    vol.bricks.map((b: { id: string }) => b.id).sort(),
  )
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('a replace-brick that went through but answered an error is finished by the cleaner', async (t) => {
  const mock = new MockExecutor()
  const { executor, calls } = spy(mock, {
    replaceBrick: (async (...args: Parameters<MockExecutor['replaceBrick']>) => {
      await mock.replaceBrick(...args)
      throw new Error('timed out')
    }) as never,
  })
  const app = await makeApp(t, { executor })
  const vol = await volumeOnFourNodes(app)
  const victim = vol.bricks[0].id as string
  const res = await app.run('POST', `/bricks/to-evict/${victim}`, {})
  t.equal(res.statusCode, 500)
  t.equal(
    (await app.call('GET', '/operations')).json().failed,
    1,
    'undo refused: gluster serves the new brick',
  )
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.equal((await app.call('GET', '/operations')).json().total, 0)
  const after = (await app.call('GET', `/volumes/${vol.id}`)).json()
  t.notOk(
    after.bricks.some((b: { id: string }) => b.id === victim),
    'the eviction was finished',
  )
  t.equal(after.bricks.length, 3)
  t.ok(
    (calls.brickDestroy ?? []).some((a) => (a[0] as { brickId: string }).brickId === victim),
    'the old brick was destroyed',
  )
  t.same(
    mock
      .glusterBricks(vol.name)!
      .map((b) => b.path)
      .sort(),
    after.bricks.map((b: { path: string }) => b.path).sort(),
  )
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

/** heal info where `source` reports `entries()` pending and every brick is connected. */
function healing(mock: MockExecutor, source: () => string, entries: () => number) {
  return async (host: string, name: string): Promise<HealInfoBrick[]> =>
    (await mock.healInfo(host, name)).map((b) =>
      b.name === source() ? { ...b, numberOfEntries: String(entries()) } : b,
    )
}

t.test('a brick that is a heal source waits for the heal, then is replaced', async (t) => {
  const mock = new MockExecutor()
  let source = ''
  let pending = 3
  const { executor, calls } = spy(mock, {
    healInfo: healing(
      mock,
      () => source,
      () => pending,
    ) as never,
    healStart: (async () => {
      pending = Math.max(0, pending - 1) // each heal start heals one entry here
    }) as never,
  })
  const app = await makeApp(t, { executor })
  Object.assign(app.ctx.heal.settings, { pollMs: 5, retriggerMs: 0, sourceWaitMs: 5000 })
  const vol = await volumeOnFourNodes(app)
  const victim = vol.bricks[0]
  const node = (await app.call('GET', `/nodes/${victim.node}`)).json()
  source = `${node.hostnames.storage[0]}:${victim.path}`
  const res = await app.run('POST', `/bricks/to-evict/${victim.id}`, {})
  t.equal(res.statusCode, 204, res.body)
  t.equal(pending, 0, 'replaced only once its entries were healed')
  t.ok((calls.healStart ?? []).length >= 3, 'the heal was started while waiting')
  const replaced = (calls.replaceBrick ?? []).length
  t.equal(replaced, 1)
  t.equal((await app.call('GET', '/operations')).json().total, 0)
})

t.test('a brick that stays a heal source is refused with heketi text and nothing changes', async (t) => {
  const mock = new MockExecutor()
  let source = ''
  const { executor, calls } = spy(mock, {
    healInfo: healing(
      mock,
      () => source,
      () => 7,
    ) as never,
  })
  const app = await makeApp(t, { executor })
  Object.assign(app.ctx.heal.settings, { pollMs: 5, retriggerMs: 10, sourceWaitMs: 60 })
  const vol = await volumeOnFourNodes(app)
  const victim = vol.bricks[0]
  const node = (await app.call('GET', `/nodes/${victim.node}`)).json()
  source = `${node.hostnames.storage[0]}:${victim.path}`
  t.equal((await app.run('POST', `/devices/${victim.device}/state`, { state: 'offline' })).statusCode, 204)
  const res = await app.run('POST', `/devices/${victim.device}/state`, { state: 'failed' })
  t.equal(res.statusCode, 500)
  t.match(
    res.body,
    new RegExp(
      `^Cannot replace brick ${victim.id} as it is source brick for data to be healed \\(7 entries still to heal after waiting \\d+ s\\)`,
    ),
  )
  t.equal((calls.replaceBrick ?? []).length, 0, 'no replace-brick')
  t.equal((calls.brickCreate ?? []).length, 3, 'no new brick made')
  t.equal(
    (await app.call('GET', `/devices/${victim.device}`)).json().state,
    'offline',
    'device state unchanged',
  )
  t.same((await app.call('GET', `/volumes/${vol.id}`)).json().bricks, vol.bricks, 'bricks unchanged')
  t.equal((await app.call('GET', '/operations')).json().total, 0)
})

for (const shape of ['not available', 'listed but not connected'] as const) {
  t.test(
    'a device remove refused because the other bricks of the set are down changes nothing (' + shape + ')',
    async (t) => {
      const mock = new MockExecutor()
      let down: string[] = []
      const { executor, calls } = spy(mock, {
        // bricks that are down are missing from heal info's names
        healInfo: (async (host: string, name: string) =>
          (await mock.healInfo(host, name)).map((b) =>
            down.includes(b.name)
              ? {
                  // older gluster hides a down brick's name; gluster 10 lists it, not connected
                  name: shape === 'not available' ? 'information not available' : b.name,
                  status: 'Transport endpoint is not connected',
                  numberOfEntries: '-',
                }
              : b,
          )) as never,
      })
      const app = await makeApp(t, { executor })
      const vol = await volumeOnFourNodes(app)
      const names = new Map<string, string>()
      for (const b of vol.bricks) {
        const node = (await app.call('GET', `/nodes/${b.node}`)).json()
        names.set(b.id, `${node.hostnames.storage[0]}:${b.path}`)
      }
      const [victim, ...others] = vol.bricks
      down = others.map((b: { id: string }) => names.get(b.id)!)
      t.equal(
        (await app.run('POST', `/devices/${victim.device}/state`, { state: 'offline' })).statusCode,
        204,
      )
      const res = await app.run('POST', `/devices/${victim.device}/state`, { state: 'failed' })
      t.equal(res.statusCode, 500)
      t.equal(res.body, `Cannot replace brick ${victim.id} as only 0 of 2 required peer bricks are online\n`)
      t.equal((calls.replaceBrick ?? []).length, 0)
      t.equal((await app.call('GET', `/devices/${victim.device}`)).json().state, 'offline')
      t.same((await app.call('GET', `/volumes/${vol.id}`)).json().bricks, vol.bricks)
      t.equal((await app.call('GET', '/operations')).json().total, 0)
      t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
    },
  )
}

t.test('after replace-brick the heal is started, followed and shown', async (t) => {
  const mock = new MockExecutor()
  let source = ''
  let pending = 0
  const { executor, calls } = spy(mock, {
    healInfo: healing(
      mock,
      () => source,
      () => pending,
    ) as never,
    replaceBrick: (async (...args: Parameters<MockExecutor['replaceBrick']>) => {
      await mock.replaceBrick(...args)
      pending = 4 // the remaining bricks now hold entries to heal onto the new one
    }) as never,
    // glusterd refuses the first start while it restarts the self-heal daemons
    healStart: (async () => {
      if (refuse) throw new Error('Launching heal operation ... has been unsuccessful')
    }) as never,
  })
  let refuse = true
  const app = await makeApp(t, { executor })
  Object.assign(app.ctx.heal.settings, { pollMs: 5, retriggerMs: 60_000 })
  const vol = await volumeOnFourNodes(app)
  const [victim, peer] = vol.bricks
  const node = (await app.call('GET', `/nodes/${peer.node}`)).json()
  source = `${node.hostnames.storage[0]}:${peer.path}`
  t.equal((await app.run('POST', `/bricks/to-evict/${victim.id}`, {})).statusCode, 204)
  t.ok((calls.healStart ?? []).length >= 4, 'heal start tried on every host right after replace-brick')
  const ops = (await app.call('GET', '/operations')).json()
  t.equal(ops.total, 0)
  t.match(
    ops.heals,
    [{ volume: vol.name, pending_entries: 4, finished: false, heal_starts: 0, error: /unsuccessful/ }],
    '/operations shows the heal, not started yet',
  )
  const metrics = (await app.call('GET', '/metrics')).body
  t.match(metrics, new RegExp(`heqet_volume_heal_pending_entries\\{volume="${vol.name}"\\} 4`))
  t.match(metrics, /heqet_brick_replacements_total 1/)
  refuse = false
  while (app.ctx.heal.get(vol.name)?.triggers === 0) await new Promise((r) => setTimeout(r, 5))
  pending = 0
  // the follower's timers do not keep a process alive (a server has its socket)
  const keepAlive = setInterval(() => {}, 1000)
  await app.ctx.heal.settled(vol.name)
  clearInterval(keepAlive)
  const done = (await app.call('GET', '/operations')).json()
  t.match(
    done.heals,
    [{ volume: vol.name, pending_entries: 0, finished: true, heal_starts: 1 }],
    'the follower started it',
  )
  t.match(
    (await app.call('GET', '/metrics')).body,
    new RegExp(`heqet_volume_heal_pending_entries\\{volume="${vol.name}"\\} 0`),
  )
})

t.test('a device remove cut short by a crash is finished by the cleaner and can be run again', async (t) => {
  const mock = new MockExecutor()
  let hang = false
  const crashing = spy(mock, {
    replaceBrick: (async (...args: Parameters<MockExecutor['replaceBrick']>) => {
      await mock.replaceBrick(...args)
      if (hang) await new Promise(() => {}) // the process "dies" right after gluster swapped the brick
    }) as never,
  }).executor
  const first = await makeApp(t, { executor: crashing })
  const vol = await volumeOnFourNodes(first)
  const victim = vol.bricks[0]
  t.equal((await first.run('POST', `/devices/${victim.device}/state`, { state: 'offline' })).statusCode, 204)
  hang = true
  t.equal((await first.call('POST', `/devices/${victim.device}/state`, { state: 'failed' })).statusCode, 202)
  for (let i = 0; i < 200 && (await first.call('GET', '/operations')).json().total === 0; i++)
    await new Promise((r) => setTimeout(r, 5))
  await new Promise((r) => setTimeout(r, 50))
  await first.close()

  const second = await makeApp(t, { dir: first.dir, executor: mock })
  t.equal(
    (await second.call('GET', '/operations')).json().stale,
    1,
    'the evict record is stale after restart',
  )
  t.equal((await second.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.equal((await second.call('GET', '/operations')).json().total, 0)
  const after = (await second.call('GET', `/volumes/${vol.id}`)).json()
  t.notOk(
    after.bricks.some((b: { id: string }) => b.id === victim.id),
    'gluster served the new brick: the move was finished',
  )
  t.same(
    mock
      .glusterBricks(vol.name)!
      .map((b) => b.path)
      .sort(),
    after.bricks.map((b: { path: string }) => b.path).sort(),
    'gluster and the DB agree',
  )
  t.equal((await second.call('GET', `/devices/${victim.device}`)).json().state, 'offline', 'device as before')
  const again = await second.run('POST', `/devices/${victim.device}/state`, { state: 'failed' })
  t.equal(again.statusCode, 204, 'running the removal again completes it')
  const dev = (await second.call('GET', `/devices/${victim.device}`)).json()
  t.equal(dev.state, 'failed')
  t.same(dev.bricks, [])
  t.equal((await second.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('a distribute-only volume is moved without heal (healcheck disable)', async (t) => {
  const mock = new MockExecutor()
  const { executor, calls } = spy(mock)
  const app = await makeApp(t, { executor })
  await makeTopology(app, { nodes: 2, devices: 1 })
  const created = await app.run('POST', '/volumes', { size: 5, durability: { type: 'none' } })
  const vol = (await app.call('GET', created.location!)).json()
  const res = await app.run('POST', `/bricks/to-evict/${vol.bricks[0].id}`, { healcheck: 'disable' })
  t.equal(res.statusCode, 204, res.body)
  t.equal((calls.replaceBrick ?? []).length, 1)
  t.equal((calls.healStart ?? []).length, 0, 'no heal started: there is no copy to heal from')
  t.equal((await app.call('GET', '/operations')).json().heals, undefined, 'nothing followed')
})

t.test(
  "heal info reading 0 is not finished until a full crawl of the new brick's set has ended",
  async (t) => {
    const mock = new MockExecutor()
    let crawl: 'none' | 'running' | 'ended' = 'none'
    let looks = 0
    let survivor = ''
    const { executor, calls } = spy(mock, {
      // heal info reads 0 on every brick from the start
      // as glusterd does, the full crawl runs on one surviving brick of the set only
      healStatistics: (async (host: string, name: string) => {
        looks++
        const rows = await mock.healInfo(host, name)
        const crawler = rows.findIndex((r) => r.name === survivor)
        return rows.map((_, brick) =>
          crawl === 'none' || brick !== crawler
            ? { brick, host, type: 'INDEX', inProgress: false, healed: 0 }
            : { brick, host, type: 'FULL', inProgress: crawl === 'running', healed: 3 },
        )
      }) as never,
    })
    const app = await makeApp(t, { executor })
    Object.assign(app.ctx.heal.settings, { pollMs: 2, retriggerMs: 30 })
    const vol = await volumeOnFourNodes(app)
    const peer = (await app.call('GET', `/nodes/${vol.bricks[1].node}`)).json()
    survivor = `${peer.hostnames.storage[0]}:${vol.bricks[1].path}`
    t.equal((await app.run('POST', `/bricks/to-evict/${vol.bricks[0].id}`, {})).statusCode, 204)
    const heal = () => app.ctx.heal.get(vol.name) ?? { triggers: 0, finishedAt: 0, fullCrawl: '' }
    const until = async (what: string, done: () => boolean) => {
      for (let i = 0; i < 5000 && !done(); i++) await new Promise((r) => setTimeout(r, 2))
      t.ok(done(), what)
    }
    await until('the heal is started', () => heal().triggers >= 1)
    await until('no full crawl seen: heal full is sent again', () => heal().triggers >= 2)
    t.equal(heal().finishedAt, undefined, 'not finished while no full crawl ran')
    t.equal(heal().fullCrawl, 'not started')
    crawl = 'running'
    await until('the running crawl is seen', () => heal().fullCrawl === 'running')
    const triggers = heal().triggers
    const seen = looks
    await until('many looks while it runs', () => looks >= seen + 40)
    t.equal(heal().triggers, triggers, 'a running full crawl is not started again')
    t.equal(heal().finishedAt, undefined, 'not finished while the full crawl runs')
    t.match((await app.call('GET', '/operations')).json().heals, [
      { volume: vol.name, pending_entries: 0, finished: false },
    ])
    crawl = 'ended'
    // the follower's timers do not keep a process alive (a server has its socket)
    const keepAlive = setInterval(() => {}, 1000)
    await app.ctx.heal.settled(vol.name)
    clearInterval(keepAlive)
    t.match(
      (await app.call('GET', '/operations')).json().heals,
      [{ volume: vol.name, finished: true }],
      'finished',
    )
    t.ok((calls.healStatistics ?? []).length > 0)
  },
)

t.test('a host whose glusterd check fails is logged, and the evict runs on the next one', async (t) => {
  const injector = new Injector([])
  const app = await makeApp(t, { executor: injectingExecutor(new MockExecutor(), injector) })
  const warnings: string[] = []
  const log = app.ctx.log as unknown as { warn: (...a: unknown[]) => void }
  const warn = log.warn.bind(log)
  log.warn = (...args: unknown[]) => {
    warnings.push(args.filter((a) => typeof a === 'string').join(' '))
    warn(...args)
  }
  const vol = await volumeOnFourNodes(app)
  const victim = vol.bricks[0].id as string
  injector.setRules([
    { pattern: '^glusterdCheck', action: 'fail', message: 'glusterd is not running', count: 1 },
  ])
  const res = await app.run('POST', `/bricks/to-evict/${victim}`, {})
  t.equal(res.statusCode, 204, 'evicted through another host')
  t.match(
    warnings.join('\n'),
    new RegExp(`brick evict ${victim}: glusterd on \\S+ not usable: glusterd is not running`),
    'the skipped host and why are logged',
  )
})

t.test('a heal follower that ends on an error is logged and counted in /metrics', async (t) => {
  const mock = new MockExecutor()
  let pending = 0
  let source = ''
  const { executor } = spy(mock, {
    healInfo: healing(
      mock,
      () => source,
      () => pending,
    ) as never,
    replaceBrick: (async (...args: Parameters<MockExecutor['replaceBrick']>) => {
      await mock.replaceBrick(...args)
      pending = 4
    }) as never,
  })
  const app = await makeApp(t, { executor })
  Object.assign(app.ctx.heal.settings, { pollMs: 5, retriggerMs: 10 })
  const vol = await volumeOnFourNodes(app)
  const [victim, peer] = vol.bricks
  const node = (await app.call('GET', `/nodes/${peer.node}`)).json()
  source = `${node.hostnames.storage[0]}:${peer.path}`
  t.equal((await app.run('POST', `/bricks/to-evict/${victim.id}`, {})).statusCode, 204)
  t.equal(app.ctx.heal.get(vol.name)?.finishedAt, undefined, 'followed in the background')
  // the follower's next start of the heal cannot read the store
  const store = app.ctx.store
  const read = store.read.bind(store)
  store.read = () => {
    throw new Error('store unreadable for the test')
  }
  const keepAlive = setInterval(() => {}, 1000)
  await app.ctx.heal.settled(vol.name)
  clearInterval(keepAlive)
  store.read = read
  t.equal(app.ctx.heal.followerFailures, 1)
  t.match(app.ctx.heal.get(vol.name), { lastError: 'store unreadable for the test' }, 'shown in /operations')
  t.match((await app.call('GET', '/metrics')).body, /^heqet_heal_follower_failures_total 1$/m)
})
