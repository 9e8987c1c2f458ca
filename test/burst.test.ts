// A burst of 100 concurrent creates against the default in-flight limit (8):
// clients retry on 429 like heketi's Go client, and in the end every volume
// exists exactly once.
import t from 'tap'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp, makeTopology } from './helpers/app.ts'

t.test('100 concurrent creates: all created once, none lost, none duplicated', async (t) => {
  const app = await makeApp(t, { executor: new MockExecutor({ delayMs: 5 }) })
  await makeTopology(app, { nodes: 4, devices: 2 })
  let throttled = 0
  const createOne = async (i: number): Promise<number> => {
    for (;;) {
      const res = await app.run('POST', '/volumes', {
        size: 1,
        name: `burst_${i}`,
        durability: { type: 'replicate', replicate: { replica: 3 } },
      })
      if (res.statusCode !== 429) return res.statusCode
      throttled++
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20))
    }
  }
  const statuses = await Promise.all(Array.from({ length: 100 }, (_, i) => createOne(i)))
  t.same(new Set(statuses), new Set([303]), 'every create ended in 303')
  t.ok(throttled > 0, `the limit was hit (${throttled} answers were 429)`)
  const ids: string[] = (await app.call('GET', '/volumes')).json().volumes
  t.equal(ids.length, 100)
  const names = new Set<string>()
  for (const id of ids) names.add((await app.call('GET', `/volumes/${id}`)).json().name)
  t.equal(names.size, 100, 'no duplicates')
  t.equal((await app.call('GET', '/operations')).json().total, 0)
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})
