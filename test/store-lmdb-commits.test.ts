// The LMDB store's group commit (db/lmdb.ts): writes applied while a commit
// is in flight share the next one; a commit that fails rejects its writes and
// every write applied after them, and puts the cache and listeners back.
// The crash side (kill -9 right after a commit) is test/crash-points.test.ts.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { LmdbStore } from '../db/lmdb.ts'
import type { Change } from '../db/store.ts'
import { makeApp } from './helpers/app.ts'

const attr = (key: string, value: string) => ({ key, value })

function open(t: Test): { store: LmdbStore; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-commits-'))
  const path = join(dir, 'heqet.db')
  const store = new LmdbStore({ path })
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { store, path }
}

t.test('writes started together share commits, and all of them are on disk', async (t) => {
  const { store, path } = open(t)
  const commits0 = store.commits
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      store.write((tx) => {
        tx.put('attribute', `k${i}`, attr(`k${i}`, 'v'))
        // one key rewritten by every write: stored once per commit, with its last value
        const n = Number(tx.get('attribute', 'n')?.value ?? '0')
        tx.put('attribute', 'n', attr('n', String(n + 1)))
      }),
    ),
  )
  // the first write commits alone; the nine applied while it was in flight share the next commit
  t.equal(store.commits - commits0, 2)
  t.equal(store.writes, 10)
  await store.close()
  const again = new LmdbStore({ path })
  t.equal(
    again.read((tx) => tx.count('attribute')),
    11,
  )
  t.equal(
    again.read((tx) => tx.get('attribute', 'n')?.value),
    '10',
  )
  await again.close()
  // the teardown closes `store` once more: closing twice must be harmless
})

t.test('a write resolves only after every write applied before it', async (t) => {
  const { store } = open(t)
  const order: string[] = []
  const a = store.write((tx) => tx.put('attribute', 'a', attr('a', '1'))).then(() => order.push('a'))
  const b = store.write((tx) => tx.put('attribute', 'b', attr('b', '1'))).then(() => order.push('b'))
  const readOnly = store.write((tx) => tx.get('attribute', 'a')).then(() => order.push('no changes'))
  await Promise.all([a, b, readOnly])
  t.same(order, ['a', 'b', 'no changes'])
})

t.test('a commit that fails rejects its writes and the later ones, and reverts them', async (t) => {
  const { store } = open(t)
  await store.write((tx) => tx.put('attribute', 'x', attr('x', 'durable')))
  const heard: Change[][] = []
  store.onCommit((c) => heard.push(c))
  // in flight
  const first = store.write((tx) => tx.put('attribute', 'y', attr('y', 'first')))
  // applied while `first` commits, so they share the next commit; msgpack cannot encode a symbol
  const broken = store.write((tx) =>
    tx.put('attribute', 'x', { key: 'x', value: Symbol('no encoding') as unknown as string }),
  )
  const after = store.write((tx) => {
    tx.put('attribute', 'z', attr('z', 'after'))
    tx.del('attribute', 'y')
  })
  t.equal(store.read((tx) => tx.get('attribute', 'z'))?.value, 'after', 'applied before it is durable')
  await first
  await t.rejects(broken, /symbol/)
  await t.rejects(after, /symbol/, 'computed on top of the lost write: rejected too')
  store.read((tx) => {
    t.equal(tx.get('attribute', 'x')?.value, 'durable')
    t.equal(tx.get('attribute', 'y')?.value, 'first')
    t.equal(tx.get('attribute', 'z'), undefined)
  })
  const revert = heard.at(-1)!
  t.same(
    revert.map((c) => [c.key, (c.value as { value?: string } | undefined)?.value]),
    [
      ['x', 'durable'],
      ['z', undefined],
      ['y', 'first'],
    ],
    'the listeners hear the file’s values back',
  )
  // the store still works
  await store.write((tx) => tx.put('attribute', 'w', attr('w', 'later')))
  t.equal(store.read((tx) => tx.get('attribute', 'w'))?.value, 'later')
})

t.test('/metrics shows the store writes and the commits that held them', async (t) => {
  const app = await makeApp(t)
  await Promise.all(
    Array.from({ length: 5 }, () => app.call('POST', '/clusters', { block: true, file: true })),
  )
  const text = (await app.app.inject({ method: 'GET', url: '/metrics' })).body
  const writes = Number(/^heqet_store_writes (\d+)$/m.exec(text)?.[1])
  const commits = Number(/^heqet_store_commits (\d+)$/m.exec(text)?.[1])
  t.ok(writes >= 5, `writes ${writes}`)
  t.ok(commits >= 1 && commits <= writes, `commits ${commits}`)
})
