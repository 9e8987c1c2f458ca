// The 202 of an operation may go out before its journal record is on disk
// (LMDB applies a write at once and commits it behind), but no node command
// may: the job awaits the journal commit first. A store whose commits the
// test holds back shows the order, for a create and a delete.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { LmdbStore } from '../db/lmdb.ts'
import type { Store, WriteTxn } from '../db/store.ts'
import type { Executor } from '../executors/executor.ts'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp, makeTopology, type TestApp } from './helpers/app.ts'

function deferred() {
  let resolve!: () => void
  let reject!: (err: Error) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** LMDB whose writeApplied() durability waits, while `hold` is set, for the test to release it. */
function heldStore(path: string) {
  const lmdb = new LmdbStore({ path })
  const state: { hold?: Promise<void>; held: number } = { held: 0 }
  const writeApplied = async <R>(fn: (tx: WriteTxn) => R) => {
    const applied = await lmdb.writeApplied(fn)
    const hold = state.hold
    if (!hold) return applied
    state.held++
    // both awaited at once: a hold the test rejects early is never left unhandled
    return { result: applied.result, durable: Promise.all([applied.durable, hold]).then(() => undefined) }
  }
  const store = new Proxy(lmdb, {
    get(target, prop) {
      if (prop === 'writeApplied') return writeApplied
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  }) as Store
  return { store, state }
}

/** The mock executor, every node action counted. */
function countingExecutor() {
  const mock = new MockExecutor()
  const calls: string[] = []
  const executor = new Proxy(mock, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls.push(String(prop))
        return value.apply(target, args)
      }
    },
  }) as Executor
  return { executor, calls }
}

/** Many turns of the event loop: a job that did not wait would have sent its commands by then. */
async function turns(n = 200): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

async function pollToEnd(app: TestApp, location: string) {
  for (let i = 0; i < 2000; i++) {
    const poll = await app.call('GET', location)
    if (poll.headers['x-pending'] !== 'true') return poll
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error(`${location} still pending`)
}

async function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-journal-first-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { store, state } = heldStore(join(dir, 'held.db'))
  const { executor, calls } = countingExecutor()
  const app = await makeApp(t, { store, executor, dir, config: { queuePollHoldMs: 0 } })
  await makeTopology(app, { nodes: 3, devices: 1 })
  return { app, state, calls }
}

t.test('create and delete: 202 before the journal commit, node commands only after it', async (t) => {
  const { app, state, calls } = await setup(t)

  for (const step of ['create', 'delete'] as const) {
    const commit = deferred()
    state.hold = commit.promise
    state.held = 0
    calls.length = 0
    const started =
      step === 'create'
        ? await app.call('POST', '/volumes', { size: 1, durability: { type: 'replicate' } })
        : await app.call('DELETE', `/volumes/${(await app.call('GET', '/volumes')).json().volumes[0]}`)
    t.equal(started.statusCode, 202, `${step}: answered while its journal commit is held`)
    t.equal(state.held, 1, `${step}: its journal write is the one held`)
    await turns()
    t.same(calls, [], `${step}: no node command before the journal commit resolves`)
    const pending = await app.call('GET', started.headers['location'] as string)
    t.equal(pending.headers['x-pending'], 'true')
    t.same(calls, [])

    state.hold = undefined
    commit.resolve()
    const done = await pollToEnd(app, started.headers['location'] as string)
    t.equal(done.statusCode, step === 'create' ? 303 : 204, `${step}: finished once the journal is on disk`)
    t.ok(calls.length > 0, `${step}: its node commands ran after the commit (${calls.join(', ')})`)
  }
})

t.test('a journal commit that fails: the job fails on the queue, no node command ran', async (t) => {
  const { app, state, calls } = await setup(t)
  const commit = deferred()
  state.hold = commit.promise
  calls.length = 0
  const started = await app.call('POST', '/volumes', { size: 1, durability: { type: 'replicate' } })
  t.equal(started.statusCode, 202)
  // a failed commit as the store reports it (the store's undo of the write in memory is
  // test/store-lmdb-commits.test.ts's subject; this file's store did commit it)
  commit.reject(new Error('MDB_DISK_FULL: held by the test'))
  const done = await pollToEnd(app, started.headers['location'] as string)
  t.equal(done.statusCode, 500)
  t.equal(done.body, 'MDB_DISK_FULL: held by the test\n')
  t.same(calls, [], 'no node command')
})

t.test('a build that fails is still the request’s own answer', async (t) => {
  const { app, calls } = await setup(t)
  calls.length = 0
  const refused = await app.call('POST', '/volumes', { size: 1000, durability: { type: 'replicate' } })
  t.equal(refused.statusCode, 500)
  t.match(refused.body, /No space/)
  t.same(calls, [])
  t.equal((await app.call('GET', '/operations')).json().total, 0, 'nothing journaled')
})
