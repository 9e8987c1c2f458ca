// Property tests over the whole API with the mock executor: random
// topologies and random sequences of volume creates, expands and deletes.
// After every step the DB is consistent and every brick set spans distinct
// nodes (and distinct zones when the topology allows); expand keeps the set
// geometry; deleting everything gives every KiB back.
import fc from 'fast-check'
import t from 'tap'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp } from './helpers/app.ts'

type Durability =
  | { type: 'replicate'; replicate: { replica: number } }
  | { type: 'disperse'; disperse: { data: number; redundancy: number } }
  | { type: 'none' }

const setSize = (d: Durability) =>
  d.type === 'replicate'
    ? d.replicate.replica
    : d.type === 'disperse'
      ? d.disperse.data + d.disperse.redundancy
      : 1

const durabilityArb: fc.Arbitrary<Durability> = fc.oneof(
  fc.constantFrom(2, 3).map((replica) => ({ type: 'replicate' as const, replicate: { replica } })),
  fc.constant({ type: 'disperse' as const, disperse: { data: 2, redundancy: 1 } }),
  fc.constant({ type: 'none' as const }),
)

const opArb = fc.oneof(
  fc.record({
    kind: fc.constant('create' as const),
    size: fc.integer({ min: 1, max: 120 }),
    durability: durabilityArb,
  }),
  fc.record({ kind: fc.constant('expand' as const), pick: fc.nat(), add: fc.integer({ min: 1, max: 60 }) }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
)

const topologyArb = fc.record({
  nodes: fc.integer({ min: 3, max: 6 }),
  devices: fc.integer({ min: 1, max: 3 }),
  zones: fc.integer({ min: 1, max: 4 }),
})

t.test('random volume workloads keep every invariant', async (t) => {
  await fc.assert(
    fc.asyncProperty(topologyArb, fc.array(opArb, { minLength: 3, maxLength: 10 }), async (topo, ops) => {
      const mock = new MockExecutor({ deviceSizeGiB: 100 })
      const app = await makeApp(t, { executor: mock })
      try {
        const cluster = (await app.call('POST', '/clusters', { file: true, block: true })).json().id
        const zoneOf = new Map<string, number>()
        for (let i = 0; i < topo.nodes; i++) {
          const zone = (i % topo.zones) + 1
          const res = await app.run('POST', '/nodes', {
            zone,
            hostnames: { manage: [`n${i}.example.com`], storage: [`10.1.0.${i + 1}`] },
            cluster,
          })
          zoneOf.set(`10.1.0.${i + 1}`, zone)
          const nodeId = res.location!.split('/').pop()!
          for (let d = 0; d < topo.devices; d++)
            await app.run('POST', '/devices', { name: `/dev/vd${d}`, node: nodeId })
        }
        const totalFree = async () => {
          let sum = 0
          for (const n of (await app.call('GET', `/clusters/${cluster}`)).json().nodes) {
            for (const d of (await app.call('GET', `/nodes/${n}`)).json().devices) sum += d.storage.free
          }
          return sum
        }
        const initialFree = await totalFree()
        const durabilityOf = new Map<string, Durability>()
        for (const op of ops) {
          const ids: string[] = (await app.call('GET', '/volumes')).json().volumes
          if (op.kind === 'create') {
            const res = await app.run('POST', '/volumes', { size: op.size, durability: op.durability })
            if (res.statusCode === 303) durabilityOf.set(res.location!.split('/').pop()!, op.durability)
            else if (!/No space|Maximum number of bricks|Minimum brick size/.test(res.body)) return false
          } else if (ids.length > 0) {
            const id = ids[op.pick % ids.length]!
            const before = (await app.call('GET', `/volumes/${id}`)).json()
            if (op.kind === 'expand') {
              const res = await app.run('POST', `/volumes/${id}/expand`, { expand_size: op.add })
              const after = (await app.call('GET', `/volumes/${id}`)).json()
              if (res.statusCode === 303) {
                if (after.size !== before.size + op.add) return false
              } else if (after.size !== before.size || after.bricks.length !== before.bricks.length)
                return false
            } else {
              if ((await app.run('DELETE', `/volumes/${id}`)).statusCode !== 204) return false
              durabilityOf.delete(id)
            }
          }
          // invariants after every step
          if ((await app.call('GET', '/db/check')).json().totalinconsistencies !== 0) return false
          for (const [id, d] of durabilityOf) {
            const info = (await app.call('GET', `/volumes/${id}`)).json()
            const order = mock.glusterBricks(info.name)!
            const size = setSize(d)
            if (order.length !== info.bricks.length || order.length % size !== 0) return false
            const distinctZonesPossible = Math.min(topo.zones, topo.nodes) >= size
            for (let s = 0; s < order.length; s += size) {
              const hosts = order.slice(s, s + size).map((b) => b.storageHost)
              if (new Set(hosts).size !== size) return false
              const zones = new Set(hosts.map((h) => zoneOf.get(h)))
              if (distinctZonesPossible && zones.size !== size && topo.devices === 1) return false
            }
          }
        }
        for (const id of durabilityOf.keys()) await app.run('DELETE', `/volumes/${id}`)
        return (await totalFree()) === initialFree
      } finally {
        await app.close()
      }
    }),
    { numRuns: 12, seed: 20261127 },
  )
})
