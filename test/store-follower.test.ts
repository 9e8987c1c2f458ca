// followStore (src/store-follower.ts): an index that fails to apply a commit
// loads again; when that load fails too, neither error is lost.
import t from 'tap'
import type { Change, Store } from '../db/store.ts'
import { followStore } from '../src/store-follower.ts'

function fakeStore() {
  let listener: ((changes: Change[]) => void) | undefined
  const store = {
    read: <T>(fn: (tx: never) => T) => fn(undefined as never),
    onCommit: (fn: (changes: Change[]) => void) => {
      listener = fn
    },
  } as unknown as Pick<Store, 'read' | 'onCommit'>
  return { store, commit: (changes: Change[] = []) => listener!(changes) }
}

t.test('a failed apply loads again and the apply error goes on', async (t) => {
  const { store, commit } = fakeStore()
  let loads = 0
  followStore(
    store,
    () => {
      loads++
    },
    () => {
      throw new Error('apply broke')
    },
  )
  t.throws(() => commit(), /^apply broke$/)
  t.equal(loads, 2, 'loaded at the start and after the failed apply')
})

t.test('a failed apply whose load fails too: both errors, loaded again at the next commit', async (t) => {
  const { store, commit } = fakeStore()
  let loads = 0
  let loadFails = false
  let applies = 0
  followStore(
    store,
    () => {
      loads++
      if (loadFails) throw new Error('load broke')
    },
    () => {
      applies++
      throw new Error('apply broke')
    },
  )
  loadFails = true
  let thrown: unknown
  try {
    commit()
  } catch (err) {
    thrown = err
  }
  t.type(thrown, AggregateError)
  t.match((thrown as Error).message, /apply broke.*load broke/, 'the message names both')
  t.same(
    (thrown as AggregateError).errors.map((e: Error) => e.message),
    ['apply broke', 'load broke'],
  )
  // the next commit loads (still failing: reported again), then one that succeeds
  t.throws(() => commit(), /^load broke$/)
  t.equal(applies, 1, 'no apply onto a stale index')
  loadFails = false
  commit()
  t.equal(loads, 4)
  t.equal(applies, 1, 'the load covered the commit')
  t.throws(() => commit(), /^apply broke$/, 'current again: the next commit is applied')
  t.equal(applies, 2)
})
