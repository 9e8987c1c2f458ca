// The Store contract (db/store.ts): ONE suite every store passes — LMDB,
// the in-memory fixture and etcd. Each implementation's test file only says
// how to make one (and, when it persists, how to open it again); make(t)
// registers the store's close with t.teardown.
import type { Test } from 'tap'
import type { Change, Store } from '../../db/store.ts'

export interface StoreSubject {
  store: Store
  /** close and open the same data again (persistent stores only) */
  reopen?(): Promise<Store>
}

const attr = (key: string, value: string) => ({ key, value })

export function runStoreContract(t: Test, make: (t: Test) => Promise<StoreSubject>): void {
  t.test('put, get, keys in byte order, values, count, del', async (t) => {
    const { store } = await make(t)
    await store.write((tx) => {
      tx.put('attribute', 'b', attr('b', '2'))
      tx.put('attribute', 'a', attr('a', '1'))
      tx.put('attribute', 'C', attr('C', '3'))
      tx.put('hostname', 'manage:n1', { nodeId: 'x1' })
    })
    store.read((tx) => {
      t.same(tx.get('attribute', 'a'), attr('a', '1'))
      t.equal(tx.get('attribute', 'zz'), undefined)
      t.same(tx.keys('attribute'), ['C', 'a', 'b'])
      t.same(
        tx.values('attribute').map((v) => v.value),
        ['3', '1', '2'],
      )
      t.equal(tx.count('attribute'), 3)
      t.equal(tx.count('hostname'), 1)
      t.equal(tx.count('volume'), 0)
    })
    await store.write((tx) => tx.del('attribute', 'a'))
    store.read((tx) => {
      t.same(tx.keys('attribute'), ['C', 'b'])
      t.equal(tx.get('attribute', 'a'), undefined)
    })
  })

  t.test('a write sees its own puts and deletes before commit', async (t) => {
    const { store } = await make(t)
    await store.write((tx) => tx.put('attribute', 'old', attr('old', '0')))
    const seen = await store.write((tx) => {
      tx.put('attribute', 'new', attr('new', '1'))
      tx.del('attribute', 'old')
      return { keys: tx.keys('attribute'), count: tx.count('attribute'), got: tx.get('attribute', 'new') }
    })
    t.same(seen, { keys: ['new'], count: 1, got: attr('new', '1') })
  })

  t.test('a callback that throws applies nothing and rejects with its error', async (t) => {
    const { store } = await make(t)
    await store.write((tx) => tx.put('attribute', 'keep', attr('keep', 'v1')))
    const heard: Change[][] = []
    store.onCommit((c) => heard.push(c))
    await t.rejects(
      store.write((tx) => {
        tx.put('attribute', 'keep', attr('keep', 'v2'))
        tx.put('attribute', 'extra', attr('extra', 'x'))
        tx.del('attribute', 'keep')
        throw new Error('boom')
      }),
      { message: 'boom' },
    )
    store.read((tx) => {
      t.same(tx.get('attribute', 'keep'), attr('keep', 'v1'))
      t.equal(tx.get('attribute', 'extra'), undefined)
    })
    t.same(heard, [], 'no listener heard of the failed write')
  })

  t.test(
    'listeners hear every change in order; a throwing listener is counted, the commit stands',
    async (t) => {
      const { store } = await make(t)
      const heard: Change[][] = []
      store.onCommit(() => {
        throw new Error('listener broke')
      })
      store.onCommit((c) => heard.push(c))
      const before = store.listenerFailures
      const r = await store.write((tx) => {
        tx.put('attribute', 'x', attr('x', '1'))
        tx.put('attribute', 'x', attr('x', '2'))
        tx.del('attribute', 'y')
        return 42
      })
      t.equal(r, 42)
      t.same(heard, [
        [
          { bucket: 'attribute', key: 'x', value: attr('x', '1') },
          { bucket: 'attribute', key: 'x', value: attr('x', '2') },
          { bucket: 'attribute', key: 'y', value: undefined },
        ],
      ])
      t.equal(store.listenerFailures, before + 1)
      t.same(
        store.read((tx) => tx.get('attribute', 'x')),
        attr('x', '2'),
      )
    },
  )

  t.test('writes started together are serialized: no lost update', async (t) => {
    const { store } = await make(t)
    const bump = () =>
      store.write((tx) => {
        const n = Number(tx.get('attribute', 'n')?.value ?? '0')
        tx.put('attribute', 'n', attr('n', String(n + 1)))
      })
    await Promise.all(Array.from({ length: 10 }, bump))
    t.equal(
      store.read((tx) => tx.get('attribute', 'n')?.value),
      '10',
    )
  })

  t.test('backup gives bytes; a persistent store keeps its data across reopen', async (t) => {
    const subject = await make(t)
    await subject.store.write((tx) => tx.put('attribute', 'kept', attr('kept', 'yes')))
    const bytes = await subject.store.backup()
    t.ok(Buffer.isBuffer(bytes) && bytes.length > 0, 'backup is a non-empty buffer')
    if (subject.reopen) {
      const again = await subject.reopen()
      t.same(
        again.read((tx) => tx.get('attribute', 'kept')),
        attr('kept', 'yes'),
      )
    }
  })
}
