// The Store contract on the LMDB store and the in-memory fixture (etcd: store-etcd.test.ts).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { LmdbStore } from '../db/lmdb.ts'
import { runStoreContract } from './contract/store.case.ts'
import { MemoryStore } from './fixtures/memory-store.ts'

t.test('LMDB store', async (t) => {
  runStoreContract(t, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'heqet-store-'))
    const path = join(dir, 'heqet.db')
    const stores: LmdbStore[] = [new LmdbStore({ path })]
    t.teardown(async () => {
      for (const s of stores) await s.close()
      rmSync(dir, { recursive: true, force: true })
    })
    return {
      store: stores[0]!,
      async reopen() {
        await stores.shift()!.close()
        stores.push(new LmdbStore({ path }))
        return stores[0]!
      },
    }
  })
})

t.test('memory store', async (t) => {
  runStoreContract(t, async () => ({ store: new MemoryStore() }))
})
