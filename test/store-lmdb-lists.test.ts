// A cluster's node and volume id lists and a device's brick ids are stored
// one key per id (db/lmdb-lists.ts): the entries read back are unchanged, a
// write stores only what changed, older files with the lists inline still
// open, and a list that is not sorted stays inline exactly as given.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import t, { type Test } from 'tap'
import type { ClusterEntry, DeviceEntry } from '../db/entries.ts'
import { LmdbStore } from '../db/lmdb.ts'
import { BUCKETS } from '../db/store.ts'

function tempPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-lists-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'heqet.db')
}

/** What the file itself holds: the cluster's (or another entry's) stored value and the list keys. */
async function raw(
  path: string,
  entry: { bucket: string; key: string } = { bucket: 'cluster', key: 'c1' },
): Promise<{ value: Record<string, unknown> | undefined; listKeys: string[] }> {
  const root = open({ path, noSubdir: true, maxDbs: 16, readOnly: true })
  try {
    // the buckets' records share their structures (db/lmdb.ts), kept under this key
    const value = root
      .openDB({ name: entry.bucket, sharedStructuresKey: Symbol.for('structures') })
      .get(entry.key) as Record<string, unknown> | undefined
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

const device = (bricks: string[]): DeviceEntry => ({
  id: 'd1',
  nodeId: 'n1',
  name: '/dev/sdb',
  state: 'online',
  storage: { totalKiB: 1000, freeKiB: 1000 - 10 * bricks.length, usedKiB: 10 * bricks.length },
  extentSizeKiB: 4096,
  pvUuid: '',
  paths: [],
  tags: {},
  bricks,
})

t.test("a device's brick ids: one key each, a brick added or removed writes only its key", async (t) => {
  const path = tempPath(t)
  const d1 = { bucket: 'device', key: 'd1' }
  let store = new LmdbStore({ path })
  await store.write((tx) => tx.put('device', 'd1', device(['b1', 'b3'])))
  // the domain's way: a spread of the stored entry with a new list
  await store.write((tx) => {
    const d = tx.get('device', 'd1')!
    tx.put('device', 'd1', { ...d, storage: { ...d.storage, freeKiB: 970 }, bricks: [...d.bricks, 'b4'] })
  })
  await store.write((tx) => {
    const d = tx.get('device', 'd1')!
    tx.put('device', 'd1', { ...d, bricks: d.bricks.filter((b) => b !== 'b1') })
  })
  await store.close()
  const file = await raw(path, d1)
  t.notOk('bricks' in (file.value ?? {}), 'the stored value holds no brick ids')
  t.equal(file.value?.['name'], '/dev/sdb')
  t.same(file.listKeys, ['device/d1/bricks/b3', 'device/d1/bricks/b4'])

  store = new LmdbStore({ path })
  t.same(
    store.read((tx) => tx.get('device', 'd1')),
    { ...device(['b3', 'b4']), storage: { totalKiB: 1000, freeKiB: 970, usedKiB: 20 } },
    'the same entry after a reopen',
  )
  await store.write((tx) => tx.del('device', 'd1'))
  await store.close()
  t.same((await raw(path, d1)).listKeys, [], 'a deleted device leaves no list keys')
})

t.test(
  'a device written with its bricks inline opens, and moves them to keys on its next write',
  async (t) => {
    const path = tempPath(t)
    const root = open({ path, noSubdir: true, maxDbs: 16 })
    for (const b of BUCKETS) root.openDB({ name: b })
    root.openDB({ name: 'lists' })
    await root.openDB({ name: 'device' }).put('d1', device(['b1', 'b2']))
    await root.close()

    let store = new LmdbStore({ path })
    t.same(
      store.read((tx) => tx.get('device', 'd1')),
      device(['b1', 'b2']),
    )
    await store.write((tx) => {
      const d = tx.get('device', 'd1')!
      tx.put('device', 'd1', { ...d, bricks: [...d.bricks, 'b5'] })
    })
    await store.close()
    t.same((await raw(path, { bucket: 'device', key: 'd1' })).listKeys, [
      'device/d1/bricks/b1',
      'device/d1/bricks/b2',
      'device/d1/bricks/b5',
    ])
    store = new LmdbStore({ path })
    t.same(
      store.read((tx) => tx.get('device', 'd1')?.bricks),
      ['b1', 'b2', 'b5'],
    )
    await store.close()
  },
)
