// The volume name index (src/volume-names.ts) follows the store's commits.
import t from 'tap'
import type { VolumeEntry } from '../db/entries.ts'
import { VolumeNameIndex, volumeNames } from '../src/volume-names.ts'
import { MemoryStore } from './fixtures/memory-store.ts'

const vol = (id: string, name: string) => ({ id, name, clusterId: 'c1' }) as unknown as VolumeEntry

t.test('ids by name through puts, renames and deletes; built from what is stored', async (t) => {
  const store = new MemoryStore()
  await store.write((tx) => tx.put('volume', 'v0', vol('v0', 'old')))
  const index = new VolumeNameIndex(store)
  t.same([...index.idsNamed('old')], ['v0'], 'loaded at construction')
  await store.write((tx) => {
    tx.put('volume', 'v1', vol('v1', 'a'))
    tx.put('volume', 'v2', vol('v2', 'a'))
  })
  t.same([...index.idsNamed('a')].sort(), ['v1', 'v2'])
  await store.write((tx) => tx.put('volume', 'v2', vol('v2', 'b')))
  t.same([...index.idsNamed('a')], ['v1'])
  t.same([...index.idsNamed('b')], ['v2'])
  await store.write((tx) => tx.del('volume', 'v1'))
  t.same([...index.idsNamed('a')], [])
  t.equal(volumeNames(store), volumeNames(store), 'one index per store')
})
