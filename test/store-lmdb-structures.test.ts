// The LMDB store's records share their msgpack structures (db/lmdb.ts): field
// names are stored once per database, not in every value. Records written
// before (field names inline) still decode, beside new ones, after a reopen;
// a commit that fails after minting a structure leaves no record pointing at
// a structure the file lacks; and maps of the admin's own keys (tags) do not
// take the shared slots. An entry's id equal to its key is not stored (the
// key holds it).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import t, { type Test } from 'tap'
import type { BrickEntry, DeviceEntry, NodeEntry } from '../db/entries.ts'
import { LmdbStore } from '../db/lmdb.ts'
import { BUCKETS } from '../db/store.ts'

const STRUCTURES = Symbol.for('structures')

function tempPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-structures-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'heqet.db')
}

const device = (id: string, freeKiB: number, tags: Record<string, string> = {}): DeviceEntry => ({
  id,
  nodeId: 'n'.repeat(32),
  name: '/dev/sdb',
  state: 'online',
  storage: { totalKiB: 1 << 30, freeKiB, usedKiB: (1 << 30) - freeKiB },
  extentSizeKiB: 4096,
  pvUuid: 'aBcDeF-gHiJ-kLmN-oPqR-sTuV-wXyZ-012345',
  paths: [],
  tags,
  bricks: [],
})

const node = (id: string): NodeEntry => ({
  id,
  clusterId: 'c1',
  zone: 1,
  hostnames: { manage: [`${id}.example`], storage: ['10.0.0.1'] },
  tags: {},
  state: 'online',
  devices: [],
})

/** One record as the file holds it (bytes, decoded value), and the bucket's shared structures. */
async function stored(
  path: string,
  bucket: string,
  key: string,
): Promise<{ bytes: number; value: unknown; structures: unknown[] }> {
  const root = open({ path, noSubdir: true, maxDbs: 16, readOnly: true })
  try {
    const plain = root.openDB({ name: bucket })
    const structures = (plain.get(STRUCTURES as unknown as string) as unknown[] | undefined) ?? []
    const shared = root.openDB({ name: bucket, sharedStructuresKey: STRUCTURES })
    return { bytes: plain.getBinary(key)?.length ?? 0, value: shared.get(key), structures }
  } finally {
    await root.close()
  }
}

t.test('records are stored without their field names and without the id their key holds', async (t) => {
  const path = tempPath(t)
  const store = new LmdbStore({ path })
  await store.write((tx) => {
    tx.put('device', 'd1', device('d1', 100))
    tx.put('device', 'd2', device('d2', 200))
  })
  await store.close()
  const { bytes, value, structures } = await stored(path, 'device', 'd2')
  // inline, the field names alone are ~100 bytes of a ~220-byte device record
  t.ok(bytes < 120, `device record ${bytes} bytes`)
  // its brick ids are keys of the lists database (db/lmdb-lists.ts): the record names the field
  const { id: _, bricks: __, ...withoutId } = device('d2', 200)
  t.same(value, { ...withoutId, '\u0000lists': ['bricks'] }, 'stored without its id')
  t.same(
    structures.map((s) => (s as string[]).join(',')),
    ['nodeId,name,state,storage,extentSizeKiB,pvUuid,paths,tags,\u0000lists', 'totalKiB,freeKiB,usedKiB', ''],
    'the device, its storage and the empty tags: one structure each',
  )
  const again = new LmdbStore({ path, readOnly: true })
  t.same(
    again.read((tx) => tx.get('device', 'd2')),
    device('d2', 200),
  )
  await again.close()
})

t.test('a file written with inline field names opens, and old and new records both decode', async (t) => {
  const path = tempPath(t)
  // the layout before shared structures: msgpackr's inline record definitions,
  // whose ids (0x40 …) the shared structures also use, for other shapes
  const root = open({ path, noSubdir: true, maxDbs: 16 })
  for (const b of BUCKETS) root.openDB({ name: b })
  const oldNode = { ...node('n1'), tags: { rack: 'r1' } }
  await root.openDB({ name: 'node' }).put('n1', oldNode)
  await root.openDB({ name: 'device' }).put('d0', device('d0', 5))
  await root.openDB({ name: 'device' }).put('d9', { id: 'd9', legacy: true, storage: { totalKiB: 1 } })
  await root.close()

  let store = new LmdbStore({ path })
  t.same(
    store.read((tx) => tx.get('node', 'n1')),
    oldNode,
  )
  // new records: the node's shape minted as shared structure 0x40, unlike the old records' 0x40
  await store.write((tx) => {
    tx.put('node', 'n2', node('n2'))
    tx.put('device', 'd1', device('d1', 7))
  })
  await store.close()

  store = new LmdbStore({ path })
  store.read((tx) => {
    t.same(tx.get('node', 'n1'), oldNode, 'old record')
    t.same(tx.get('node', 'n2'), node('n2'), 'new record')
    t.same(tx.get('device', 'd0'), device('d0', 5))
    t.same(tx.get('device', 'd1'), device('d1', 7))
    t.same(tx.get('device', 'd9'), { id: 'd9', legacy: true, storage: { totalKiB: 1 } })
  })
  // an old record rewritten moves to the shared structure
  await store.write((tx) => tx.put('device', 'd0', device('d0', 6)))
  await store.close()
  const { bytes } = await stored(path, 'device', 'd0')
  t.ok(bytes < 120, `rewritten old record ${bytes} bytes`)
  store = new LmdbStore({ path, readOnly: true })
  t.same(
    store.read((tx) => tx.get('device', 'd0')),
    device('d0', 6),
  )
  await store.close()
})

t.test('a commit that fails after minting a structure leaves no record without its structure', async (t) => {
  const path = tempPath(t)
  const store = new LmdbStore({ path })
  // the first device ever: its structure is minted in this commit, which then fails
  // (msgpack cannot encode a symbol)
  const broken = store.write((tx) => {
    tx.put('device', 'd1', device('d1', 1))
    tx.put('attribute', 'x', { key: 'x', value: Symbol('no encoding') as unknown as string })
  })
  await t.rejects(broken, /symbol/)
  t.equal(
    store.read((tx) => tx.get('device', 'd1')),
    undefined,
    'reverted',
  )
  // same shapes again: they must be minted (and saved) anew, not referred to as saved
  await store.write((tx) => tx.put('device', 'd2', device('d2', 2)))
  await store.write((tx) => tx.put('device', 'd3', device('d3', 3)))
  t.same(
    store.read((tx) => tx.get('device', 'd2')),
    device('d2', 2),
  )
  await store.close()
  const again = new LmdbStore({ path, readOnly: true })
  again.read((tx) => {
    t.same(tx.get('device', 'd2'), device('d2', 2))
    t.same(tx.get('device', 'd3'), device('d3', 3))
    t.equal(tx.get('device', 'd1'), undefined)
  })
  await again.close()
})

t.test('maps of the admin’s own keys are not shared structures', async (t) => {
  const path = tempPath(t)
  const store = new LmdbStore({ path })
  // 40 distinct tag key sets: more than the 32 shared slots a database has
  await store.write((tx) => {
    for (let i = 0; i < 40; i++) tx.put('device', `d${i}`, device(`d${i}`, i, { [`tag${i}`]: 'v' }))
  })
  await store.close()
  const { structures } = await stored(path, 'device', 'd0')
  t.equal(structures.length, 2, 'only the device and its storage (no empty tags here)')
  const again = new LmdbStore({ path, readOnly: true })
  t.same(
    again.read((tx) => tx.get('device', 'd39')),
    device('d39', 39, { tag39: 'v' }),
  )
  await again.close()
})

t.test('an entry whose id is not its key is stored as it is', async (t) => {
  const path = tempPath(t)
  const store = new LmdbStore({ path })
  await store.write((tx) => {
    tx.put('device', 'd1', device('other', 1))
    tx.put('hostname', 'manage:h1', { nodeId: 'n1' })
  })
  await store.close()
  const again = new LmdbStore({ path, readOnly: true })
  again.read((tx) => {
    t.same(tx.get('device', 'd1'), device('other', 1))
    t.same(tx.get('hostname', 'manage:h1'), { nodeId: 'n1' }, 'no id added where there was none')
  })
  await again.close()
})

const brick = (id: string, deviceId: string, path: string, lvmThinPool: string): BrickEntry => ({
  id,
  path,
  deviceId,
  nodeId: 'n1',
  volumeId: 'v1',
  sizeKiB: 1024,
  tpSizeKiB: 1024,
  poolMetadataSizeKiB: 8,
  pendingId: '',
  lvmThinPool,
  lvmLv: '',
  subType: 'normal',
})

t.test('a brick’s path and thin pool are not stored when its ids give them', async (t) => {
  const path = tempPath(t)
  const store = new LmdbStore({ path })
  const b = 'b'.repeat(32)
  const d = 'd'.repeat(32)
  const own = brick(b, d, `/var/lib/heketi/mounts/vg_${d}/brick_${b}/brick`, `tp_${b}`)
  // imported from heketi: other names, and an empty thin pool, are kept exactly
  const imported = brick('c'.repeat(32), d, '/srv/bricks/x/brick', '')
  await store.write((tx) => {
    tx.put('brick', own.id, own)
    tx.put('brick', imported.id, imported)
  })
  await store.close()
  const raw = await stored(path, 'brick', b)
  t.match(raw.value, { path: null, lvmThinPool: null, deviceId: d }, 'stored without them')
  t.ok(raw.bytes < 150, `brick record ${raw.bytes} bytes`)
  t.match((await stored(path, 'brick', imported.id)).value, { path: '/srv/bricks/x/brick', lvmThinPool: '' })
  const again = new LmdbStore({ path, readOnly: true })
  again.read((tx) => {
    t.same(tx.get('brick', b), own)
    t.same(tx.get('brick', imported.id), imported)
  })
  await again.close()
})
