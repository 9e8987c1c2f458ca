// A cluster's node and volume id lists are stored one key per id
// (db/lmdb-lists.ts): the entries read back are unchanged, a write stores
// only what changed, older files with the lists inline still open, and a
// list that is not sorted stays inline exactly as given.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import t, { type Test } from 'tap'
import type { ClusterEntry } from '../db/entries.ts'
import { LmdbStore } from '../db/lmdb.ts'
import { BUCKETS } from '../db/store.ts'

function tempPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-lists-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'heqet.db')
}

/** What the file itself holds: the cluster's stored value and the list keys. */
async function raw(
  path: string,
): Promise<{ value: Record<string, unknown> | undefined; listKeys: string[] }> {
  const root = open({ path, noSubdir: true, maxDbs: 16, readOnly: true })
  try {
    // the buckets' records share their structures (db/lmdb.ts), kept under this key
    const value = root.openDB({ name: 'cluster', sharedStructuresKey: Symbol.for('structures') }).get('c1') as
      | Record<string, unknown>
      | undefined
    const listKeys = [...root.openDB({ name: 'lists' }).getKeys({})].map(String)
    return { value, listKeys }
  } finally {
    await root.close()
  }
}

const cluster = (nodes: string[], volumes: string[]): ClusterEntry => ({
  id: 'c1',
  nodes,
  volumes,
  blockVolumes: [],
  block: true,
  file: true,
})

t.test('sorted lists: read back unchanged, stored one key per id, only changes written', async (t) => {
  const path = tempPath(t)
  let store = new LmdbStore({ path })
  await store.write((tx) => tx.put('cluster', 'c1', cluster(['n1', 'n2'], ['v1', 'v3'])))
  await store.write((tx) => tx.put('cluster', 'c1', cluster(['n1', 'n2', 'n3'], ['v1', 'v2'])))
  t.same(
    store.read((tx) => tx.get('cluster', 'c1')),
    cluster(['n1', 'n2', 'n3'], ['v1', 'v2']),
  )
  await store.close()

  const file = await raw(path)
  t.notOk(file.value && 'volumes' in file.value, 'the stored value has no volume list')
  t.notOk(file.value && 'nodes' in file.value, 'nor a node list')
  t.equal(file.value?.['block'], true, 'the other fields stay in it')
  t.same(file.listKeys.sort(), [
    'cluster/c1/nodes/n1',
    'cluster/c1/nodes/n2',
    'cluster/c1/nodes/n3',
    'cluster/c1/volumes/v1',
    'cluster/c1/volumes/v2',
  ])

  store = new LmdbStore({ path })
  t.same(
    store.read((tx) => tx.get('cluster', 'c1')),
    cluster(['n1', 'n2', 'n3'], ['v1', 'v2']),
    'the same entry after a reopen',
  )
  await store.write((tx) => tx.del('cluster', 'c1'))
  await store.close()
  t.same((await raw(path)).listKeys, [], 'a deleted cluster leaves no list keys')
})

t.test('a list that is not strictly ascending stays inline, exactly as given', async (t) => {
  const path = tempPath(t)
  let store = new LmdbStore({ path })
  await store.write((tx) => tx.put('cluster', 'c1', cluster(['n1', 'n2'], ['v1'])))
  await store.write((tx) => tx.put('cluster', 'c1', cluster(['n2', 'n1'], ['v1', 'v1'])))
  await store.close()
  const file = await raw(path)
  t.same(file.value?.['nodes'], ['n2', 'n1'])
  t.same(file.listKeys, [], 'the keys of the earlier sorted lists are removed')
  store = new LmdbStore({ path })
  t.same(
    store.read((tx) => tx.get('cluster', 'c1')),
    cluster(['n2', 'n1'], ['v1', 'v1']),
  )
  await store.close()
})

t.test('an id out of order or repeated inside a long list sends it inline', async (t) => {
  const path = tempPath(t)
  const base = ['v1', 'v3', 'v5', 'v7']
  for (const volumes of [
    ['v1', 'v4', 'v3', 'v5', 'v7'],
    ['v1', 'v3', 'v3', 'v5', 'v7'],
    ['v1', 'v3', 'v5', 'v7', 'v6'],
  ]) {
    const store = new LmdbStore({ path })
    await store.write((tx) => tx.put('cluster', 'c1', cluster(['n1'], base)))
    await store.write((tx) => tx.put('cluster', 'c1', cluster(['n1'], volumes)))
    await store.close()
    const file = await raw(path)
    t.same(file.value?.['volumes'], volumes, `${volumes.join(',')} inline`)
    t.same(file.listKeys, ['cluster/c1/nodes/n1'], 'no volume keys left')
    const again = new LmdbStore({ path })
    t.same(
      again.read((tx) => tx.get('cluster', 'c1')?.volumes),
      volumes,
    )
    await again.close()
  }
})

t.test('a file written with the lists inline opens, and moves to keys on the next write', async (t) => {
  const path = tempPath(t)
  // the layout before the lists database: every bucket, the lists inline
  const root = open({ path, noSubdir: true, maxDbs: 16 })
  for (const b of BUCKETS) root.openDB({ name: b })
  await root.openDB({ name: 'cluster' }).put('c1', cluster(['n1'], ['v1', 'v2']))
  await root.close()

  const readOnly = new LmdbStore({ path, readOnly: true })
  t.same(
    readOnly.read((tx) => tx.get('cluster', 'c1')),
    cluster(['n1'], ['v1', 'v2']),
    'read-only, without a lists database',
  )
  await readOnly.close()

  let store = new LmdbStore({ path })
  t.same(
    store.read((tx) => tx.get('cluster', 'c1')),
    cluster(['n1'], ['v1', 'v2']),
  )
  await store.write((tx) => {
    const c = tx.get('cluster', 'c1')!
    tx.put('cluster', 'c1', { ...c, volumes: [...c.volumes, 'v3'] })
  })
  await store.close()
  t.equal((await raw(path)).listKeys.length, 4)
  store = new LmdbStore({ path })
  t.same(
    store.read((tx) => tx.get('cluster', 'c1')),
    cluster(['n1'], ['v1', 'v2', 'v3']),
  )
  await store.close()
})

t.test('a failed commit puts the lists back as the file holds them', async (t) => {
  const path = tempPath(t)
  const store = new LmdbStore({ path })
  t.teardown(() => store.close())
  await store.write((tx) => tx.put('cluster', 'c1', cluster(['n1'], ['v1'])))
  const first = store.write((tx) => tx.put('cluster', 'c1', cluster(['n1'], ['v1', 'v2'])))
  const broken = store.write((tx) => {
    tx.put('cluster', 'c1', cluster(['n1'], ['v1', 'v2', 'v3']))
    tx.put('attribute', 'x', { key: 'x', value: Symbol('no encoding') as unknown as string })
  })
  await first
  await t.rejects(broken)
  t.same(
    store.read((tx) => tx.get('cluster', 'c1')),
    cluster(['n1'], ['v1', 'v2']),
  )
  await store.write((tx) => tx.put('cluster', 'c1', cluster(['n1'], ['v2', 'v4'])))
  t.same((await raw(path)).listKeys.sort(), [
    'cluster/c1/nodes/n1',
    'cluster/c1/volumes/v2',
    'cluster/c1/volumes/v4',
  ])
})
