// glusterd runs one management transaction per volume and refuses a second
// one meanwhile ("Another transaction is in progress"). heqet's commands that
// take that lock wait for each other (src/volume-lock.ts). The executor here
// refuses an overlap the way glusterd does, and one command can be held open
// (as `rebalance start` holds the lock ~10 s on a real node).
import t, { type Test } from 'tap'
import type { Executor, VolumeRequest } from '../executors/executor.ts'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp, makeTopology, type TestApp } from './helpers/app.ts'

const replica3 = { size: 2, durability: { type: 'replicate', replicate: { replica: 3 } } }

/** the actions that take glusterd's volume lock, and where each finds the volume name */
const LOCKING: Record<string, (args: unknown[]) => string> = {
  volumeExpand: (a) => (a[0] as VolumeRequest).name,
  volumeDestroy: (a) => a[1] as string,
  rebalanceStart: (a) => a[1] as string,
  rebalanceStatus: (a) => a[1] as string,
  replaceBrick: (a) => a[1] as string,
  healStart: (a) => a[1] as string,
  healStatistics: (a) => a[1] as string,
  rebalanceStop: (a) => a[1] as string,
}

function glusterdLike(inner: Executor) {
  const inFlight = new Map<string, string>()
  const overlaps: string[] = []
  const calls: string[] = []
  let held: { action: string; gate: Promise<void>; open: () => void } | undefined
  const executor = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      const action = String(prop)
      const volumeOf = LOCKING[action]
      if (!volumeOf) return value.bind(target)
      return async (...args: unknown[]) => {
        const volume = volumeOf(args)
        calls.push(action)
        const holder = inFlight.get(volume)
        if (holder) {
          overlaps.push(`${action} while ${holder}`)
          throw new Error(
            `volume ${action}: failed: Another transaction is in progress for ${volume}. Please try again after some time.`,
          )
        }
        inFlight.set(volume, action)
        try {
          if (held?.action === action) await held.gate
          return await value.apply(target, args)
        } finally {
          inFlight.delete(volume)
        }
      }
    },
  })
  return {
    executor,
    overlaps,
    calls: (action: string) => calls.filter((c) => c === action).length,
    hold(action: string) {
      let open = () => {}
      const gate = new Promise<void>((r) => {
        open = r
      })
      held = { action, gate, open }
    },
    release() {
      held?.open()
      held = undefined
    },
  }
}

/** Poll (bounded) until `check` holds. */
async function until(t: Test, what: string, check: () => boolean | Promise<boolean>) {
  for (let i = 0; i < 1000; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 5))
  }
  t.fail(`${what}: never happened`)
}

/** Follow a queue entry (Location of a 202) to its end. */
async function outcome(app: TestApp, queue: string) {
  for (let i = 0; i < 5000; i++) {
    const poll = await app.call('GET', queue)
    if (poll.headers['x-pending'] !== 'true') return poll
    await new Promise((r) => setTimeout(r, 2))
  }
  throw new Error(`${queue} never finished`)
}

async function expandedVolume(t: Test, gd: ReturnType<typeof glusterdLike>) {
  const app = await makeApp(t, { executor: gd.executor })
  Object.assign(app.ctx.rebalance.settings, { retryBaseMs: 5, retryCapMs: 20, pollMs: 5 })
  Object.assign(app.ctx.heal.settings, { pollMs: 5 })
  await makeTopology(app, { nodes: 4, devices: 1 })
  const id = (await app.run('POST', '/volumes', replica3)).location!.split('/').pop()!
  const volume = (await app.call('GET', `/volumes/${id}`)).json()
  gd.hold('rebalanceStart')
  t.equal((await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })).statusCode, 303)
  await until(t, 'rebalance start sent', () => gd.calls('rebalanceStart') === 1)
  return { app, id, volume }
}

t.test('a brick evict during a rebalance start: replace-brick waits for it, then runs', async (t) => {
  const gd = glusterdLike(new MockExecutor())
  const { app, id, volume } = await expandedVolume(t, gd)
  const accepted = await app.call('POST', `/bricks/to-evict/${volume.bricks[0].id}`, {})
  t.equal(accepted.statusCode, 202)
  await until(t, 'replace-brick queued behind the start', () => app.ctx.volumeLock.holders(volume.name) === 2)
  t.equal(gd.calls('replaceBrick'), 0, 'not sent while glusterd holds the volume for the start')
  // what heketi refuses while an evict has a brick pending is refused the same way
  const second = await app.run('POST', `/bricks/to-evict/${volume.bricks[1].id}`, {})
  t.equal(second.statusCode, 500)
  t.match(second.body, /volume has pending bricks/)
  const refused = await app.run('DELETE', `/volumes/${id}`)
  t.equal(refused.statusCode, 500)
  t.match(refused.body, /is in use/)
  gd.release()
  const evicted = await outcome(app, accepted.headers['location'] as string)
  t.equal(evicted.statusCode, 204, `evict finished: ${evicted.body}`)
  t.equal(gd.calls('replaceBrick'), 1)
  // (the trackers' timers do not keep the process alive: poll with ours)
  await until(t, 'rebalance completed', () => app.ctx.rebalance.get(id)?.phase === 'completed')
  await until(t, 'heal finished', () => app.ctx.heal.get(volume.name)?.finishedAt !== undefined)
  t.ok(gd.calls('healStart') >= 1 && gd.calls('rebalanceStatus') >= 1, 'heal started, rebalance followed')
  t.same(gd.overlaps, [], 'no command overlapped another on the volume')
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('a delete during a rebalance start waits for it, then stops the rebalance and deletes', async (t) => {
  const gd = glusterdLike(new MockExecutor())
  const { app, id, volume } = await expandedVolume(t, gd)
  const deleting = await app.call('DELETE', `/volumes/${id}`)
  t.equal(deleting.statusCode, 202)
  await until(t, 'delete queued behind the start', () => app.ctx.volumeLock.holders(volume.name) === 2)
  t.equal(gd.calls('volumeDestroy'), 0, 'volume stop/delete not sent during the start')
  gd.release()
  const deleted = await outcome(app, deleting.headers['location'] as string)
  t.equal(deleted.statusCode, 204, `deleted: ${deleted.body}`)
  t.equal(gd.calls('rebalanceStop'), 1, 'the started rebalance was stopped first')
  t.equal(app.ctx.rebalance.get(id)?.phase, 'stopped')
  t.same(gd.overlaps, [], 'no command overlapped another on the volume')
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})
