// The node health monitor (heketi's periodic glusterd check): nodes whose
// glusterd does not answer are skipped by placement (create, expand) and by
// brick replacement until a later check sees them up again.
import t from 'tap'
import type { Executor } from '../executors/executor.ts'
import { MockExecutor } from '../executors/mock.ts'
import type { HealthMonitor } from '../src/monitor.ts'
import { makeApp, makeTopology } from './helpers/app.ts'

const replica3 = { size: 5, durability: { type: 'replicate', replicate: { replica: 3 } } }

/** The mock, with glusterd "down" on the hosts in `down`. */
function withDownHosts(down: Set<string>): Executor {
  const mock = new MockExecutor()
  return new Proxy(mock, {
    get(target, prop, receiver) {
      if (prop !== 'glusterdCheck') return Reflect.get(target, prop, receiver)
      return async (host: string) => {
        if (down.has(host)) throw new Error(`Unit glusterd.service could not be found on ${host}`)
      }
    },
  })
}

t.test('placement and brick replacement skip nodes the monitor saw down', async (t) => {
  const down = new Set<string>()
  const app = await makeApp(t, { executor: withDownHosts(down) })
  const topo = await makeTopology(app, { nodes: 4, devices: 1 })
  const monitor = app.ctx.health as HealthMonitor
  const hostOf = async (id: string) => (await app.call('GET', `/nodes/${id}`)).json().hostnames.manage[0]
  const sick = topo.nodes[3]!
  down.add(await hostOf(sick))
  const warnings: string[] = []
  const log = app.ctx.log as unknown as { warn: (...a: unknown[]) => void }
  log.warn = (...args: unknown[]) => warnings.push(args.filter((a) => typeof a === 'string').join(' '))
  await monitor.refresh(app.ctx)
  t.equal(monitor.isUp(sick), false, 'the monitor marks the node down')
  t.match(
    warnings,
    [new RegExp(`^node ${sick} \\(\\S+\\): glusterd is down: Unit glusterd.service could not be found on `)],
    'logged once, with the check’s error',
  )
  t.equal(monitor.isUp(topo.nodes[0]!), true)

  for (let i = 0; i < 4; i++) {
    const v = await app.run('POST', '/volumes', replica3)
    t.equal(v.statusCode, 303)
    const info = (await app.call('GET', v.location!)).json()
    t.notOk(
      info.bricks.some((b: { node: string }) => b.node === sick),
      `volume ${i + 1}: no brick on the down node`,
    )
  }
  const vol = (await app.call('GET', '/volumes')).json().volumes[0]
  const expand = await app.run('POST', `/volumes/${vol}/expand`, { expand_size: 5 })
  t.equal(expand.statusCode, 303)
  const expanded = (await app.call('GET', `/volumes/${vol}`)).json()
  t.equal(expanded.bricks.length, 6)
  t.notOk(
    expanded.bricks.some((b: { node: string }) => b.node === sick),
    'expand placed nothing on the down node',
  )

  // the only node outside the set is down: no replacement
  const victim = expanded.bricks[0].id
  const refused = await app.run('POST', `/bricks/to-evict/${victim}`, {})
  t.equal(refused.statusCode, 500)
  t.match(refused.body, /No Replacement was found/)

  // glusterd answers again: the next check brings the node back
  down.clear()
  await monitor.refresh(app.ctx)
  t.equal(monitor.isUp(sick), true)
  const moved = await app.run('POST', `/bricks/to-evict/${victim}`, {})
  t.equal(moved.statusCode, 204, moved.body)
  const after = (await app.call('GET', `/volumes/${vol}`)).json()
  t.ok(
    after.bricks.some((b: { node: string }) => b.node === sick),
    'the replacement went to the node that is up again',
  )
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('the monitor runs on the timers of heketi.json', async (t) => {
  const down = new Set<string>()
  const app = await makeApp(t, {
    executor: withDownHosts(down),
    config: { disableMonitor: false, monitorStartSec: 0, monitorRefreshSec: 0.05 },
  })
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  const sick = topo.nodes[1]!
  down.add((await app.call('GET', `/nodes/${sick}`)).json().hostnames.manage[0])
  const monitor = app.ctx.health as HealthMonitor
  for (let i = 0; i < 200 && monitor.isUp(sick); i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(monitor.isUp(sick), false, 'a periodic check saw glusterd down')
  const v = await app.run('POST', '/volumes', replica3)
  t.equal(v.statusCode, 500, 'replica 3 needs three nodes that are up')
  t.match(v.body, /No space/)
  down.clear()
  for (let i = 0; i < 200 && !monitor.isUp(sick); i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(monitor.isUp(sick), true, 'and up again')
  t.equal((await app.run('POST', '/volumes', replica3)).statusCode, 303)
})
