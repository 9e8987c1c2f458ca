// The held poll: GET /queue/{id} of a job still running in this process
// answers when the job finishes (or `queue_poll_hold_ms` passes), with the
// bytes a poll at that moment would get; 0 answers at once as heketi does.
// A client that leaves is dropped, a closing server answers at once.
import { type ClientRequest, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import t from 'tap'
import { signToken } from '../api/auth.ts'
import { AsyncQueue, type JobRecord, type JobRecords } from '../api/queue.ts'
import { ConfigError, DEFAULT_QUEUE_POLL_HOLD_MS, parseConfig } from '../src/config.ts'
import { ADMIN_KEY, makeApp, makeTopology, type TestApp } from './helpers/app.ts'

/** A job the test ends itself. */
function deferred<T>() {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Wait (bounded by turns of the event loop, not by time) until `check` holds. */
async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 1))
  }
  throw new Error(`never: ${what}`)
}

const VOLUME = '/volumes/0123456789abcdef0123456789abcdef'

/** A job of this process that answers `result` when the test says so. */
function startJob(app: TestApp) {
  const job = deferred<string | undefined>()
  const id = app.queue.start(() => job.promise)
  return { id, job, path: `/queue/${id}` }
}

t.test('configuration: queue_poll_hold_ms', async (t) => {
  const base = (extra: Record<string, unknown>) =>
    JSON.stringify({ glusterfs: { executor: 'mock', db: '/tmp/x.db', ...extra } })
  t.equal(parseConfig(base({}), {}).queuePollHoldMs, DEFAULT_QUEUE_POLL_HOLD_MS)
  t.equal(DEFAULT_QUEUE_POLL_HOLD_MS, 1000)
  t.equal(parseConfig(base({ queue_poll_hold_ms: null }), {}).queuePollHoldMs, 1000, 'null: the default')
  t.equal(parseConfig(base({ queue_poll_hold_ms: 0 }), {}).queuePollHoldMs, 0, '0: answer at once')
  t.equal(parseConfig(base({ Queue_Poll_Hold_MS: 250 }), {}).queuePollHoldMs, 250, 'keys match as in Go')
  t.equal(parseConfig(base({}), { HEQET_QUEUE_POLL_HOLD_MS: '0' }).queuePollHoldMs, 0)
  t.equal(
    parseConfig(base({ queue_poll_hold_ms: 5 }), { HEQET_QUEUE_POLL_HOLD_MS: '70' }).queuePollHoldMs,
    70,
  )
  const refused = (() => {
    try {
      parseConfig(base({ queue_poll_hold_ms: -1 }), {})
    } catch (err) {
      return err
    }
    return undefined
  })()
  t.ok(refused instanceof ConfigError, 'a negative hold is a configuration error')
  t.throws(() => parseConfig(base({ queue_poll_hold_ms: 30_001 }), {}), /from 0 to 30000/)
  t.throws(() => parseConfig(base({ queue_poll_hold_ms: '100' }), {}), /queue_poll_hold_ms of type int/)
  t.throws(() => parseConfig(base({}), { HEQET_QUEUE_POLL_HOLD_MS: 'soon' }), /queue_poll_hold_ms/)
})

t.test('held until the job finishes: 303 with its Location, then forgotten', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 30_000 } })
  const { path, job } = startJob(app)
  const poll = app.call('GET', path)
  await until('the poll is held', () => app.queue.held === 1)
  job.resolve(VOLUME)
  const done = await poll
  t.equal(done.statusCode, 303)
  t.equal(done.headers['location'], VOLUME)
  t.notOk(done.headers['x-pending'])
  t.equal(done.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(done.body, `<a href="${VOLUME}">See Other</a>.\n\n`)
  t.equal(app.queue.held, 0)
  const again = await app.call('GET', path)
  t.equal(again.statusCode, 404, 'reported once')
  t.equal(again.body, 'Id not found\n')
})

t.test('held: 204 and 500 answers are the same bytes as an unheld poll', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 30_000 } })
  const none = startJob(app)
  const pollNone = app.call('GET', none.path)
  const failing = startJob(app)
  const pollFailing = app.call('GET', failing.path)
  await until('both polls are held', () => app.queue.held === 2)
  none.job.resolve(undefined)
  failing.job.reject(new Error('No space'))
  const done = await pollNone
  t.equal(done.statusCode, 204)
  t.equal(done.body, '')
  t.notOk(done.headers['content-type'])
  const failed = await pollFailing
  t.equal(failed.statusCode, 500)
  t.equal(failed.body, 'No space\n')
  t.equal(failed.headers['content-type'], 'text/plain; charset=utf-8')
})

t.test('a real create and delete: the first poll gets the result', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 30_000 } })
  await makeTopology(app, { nodes: 3, devices: 1 })
  const created = await app.call('POST', '/volumes', { size: 1, durability: { type: 'replicate' } })
  t.equal(created.statusCode, 202)
  const first = await app.call('GET', created.headers['location'] as string)
  t.equal(first.statusCode, 303, 'one poll')
  t.match(first.headers['location'], /^\/volumes\/[0-9a-f]{32}$/)
  const deleted = await app.call('DELETE', first.headers['location'] as string)
  t.equal(deleted.statusCode, 202)
  t.equal((await app.call('GET', deleted.headers['location'] as string)).statusCode, 204, 'one poll')
})

t.test('the bound passes: 200 X-Pending, as heketi answers a running job', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 20 } })
  const { path, job } = startJob(app)
  const pending = await app.call('GET', path)
  t.equal(pending.statusCode, 200)
  t.equal(pending.headers['x-pending'], 'true')
  t.equal(pending.body, '')
  t.equal(app.queue.held, 0, 'nothing left held')
  job.resolve(VOLUME)
  await until('the job is finished', () => app.queue.pending === 0)
  const done = await app.call('GET', path)
  t.equal(done.statusCode, 303, 'the result waits for the next poll')
})

t.test('bound 0: answered at once, nothing held', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 0 } })
  const { path, job } = startJob(app)
  t.equal(app.queue.hold(path.slice('/queue/'.length), 0), undefined)
  // the job never ends before the answer: only an unheld poll can answer
  const pending = await app.call('GET', path)
  t.equal(pending.statusCode, 200)
  t.equal(pending.headers['x-pending'], 'true')
  t.equal(app.queue.held, 0)
  job.resolve(undefined)
})

t.test('unknown and finished jobs are not held', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 30_000 } })
  const missing = await app.call('GET', '/queue/0123456789abcdef0123456789abcdef')
  t.equal(missing.statusCode, 404)
  const { path, job } = startJob(app)
  job.resolve(VOLUME)
  await until('the job is finished', () => app.queue.pending === 0)
  t.equal(app.queue.hold(path.slice('/queue/'.length), 30_000), undefined)
  t.equal((await app.call('GET', path)).statusCode, 303)
})

t.test('two polls held on one job: the first gets the result, the other 404', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 30_000 } })
  const { path, job } = startJob(app)
  const a = app.call('GET', path)
  const b = app.call('GET', path)
  await until('both polls are held', () => app.queue.held === 2)
  job.resolve(VOLUME)
  const answers = [await a, await b].map((r) => r.statusCode).sort()
  t.same(answers, [303, 404], 'the completion is reported once, as to two polls in a row')
})

/** A raw poll over a real socket (the test can abort it). */
function rawPoll(port: number, path: string) {
  let req!: ClientRequest
  const answer = new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'GET',
          headers: { authorization: `bearer ${signToken('admin', ADMIN_KEY, 'GET', path)}` },
        },
        (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => {
            body += c
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
        },
      )
      req.on('error', reject)
      req.end()
    },
  )
  return { req, answer }
}

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
}

t.test('aborted polls leave no hold, timer or listener, and read nothing', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 30_000 } })
  await app.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.app.server.address() as AddressInfo
  const { path, job } = startJob(app)
  const timersBefore = timeouts()
  const polls = Array.from({ length: 40 }, () => rawPoll(port, path))
  await until('every poll is held', () => app.queue.held === 40)
  t.ok(timeouts() >= timersBefore + 40, 'each hold has its bound timer')
  const ends = polls.map((p) =>
    p.answer.then(
      () => 'answered',
      () => 'aborted',
    ),
  )
  for (const p of polls) p.req.destroy()
  t.same(await Promise.all(ends), Array(40).fill('aborted'), 'each client saw its own abort, no answer')
  await until('every aborted poll is dropped', () => app.queue.held === 0)
  t.ok(timeouts() <= timersBefore, 'their timers are cleared')
  job.resolve(VOLUME)
  await until('the job is finished', () => app.queue.pending === 0)
  const done = await rawPoll(port, path).answer
  t.equal(done.status, 303, 'the aborted polls did not take the result')
  t.equal(done.headers['location'], VOLUME)
})

t.test('closing the server answers held polls at once', async (t) => {
  const app = await makeApp(t, { config: { queuePollHoldMs: 30_000 } })
  await app.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.app.server.address() as AddressInfo
  const { path, job } = startJob(app)
  const overSocket = rawPoll(port, path)
  const injected = app.call('GET', path)
  await until('both polls are held', () => app.queue.held === 2)
  // the hold is 30 s, tap's timeout is 30 s: a close that waited for the bound fails the test
  await app.close()
  const a = await overSocket.answer
  t.equal(a.status, 200)
  t.equal(a.headers['x-pending'], 'true')
  t.equal(a.headers['connection'], 'close')
  const b = await injected
  t.equal(b.statusCode, 200)
  t.equal(b.headers['x-pending'], 'true')
  t.equal(app.queue.held, 0)
  t.equal(app.queue.hold(path.slice('/queue/'.length), 30_000), undefined, 'no new hold once closed')
  job.resolve(undefined)
})

t.test('replicated: the leader holds its own job until its outcome is stored', async (t) => {
  const stored = new Map<string, JobRecord>()
  const put = deferred<void>()
  let holdPut = false
  const records: JobRecords = {
    put: async (id, record) => {
      if (holdPut && record.outcome.state !== 'pending') await put.promise
      stored.set(id, record)
    },
    get: async (id) => stored.get(id),
    delete: async (id) => {
      stored.delete(id)
    },
    list: async () => [...stored].map(([id, record]) => ({ id, record })),
  }
  const queue = new AsyncQueue(pino({ level: 'silent' }), { records, term: () => 'term-1' })
  const id = await queue.reserve()
  const job = deferred<string | undefined>()
  queue.run(id, () => job.promise)
  const hold = queue.hold(id, 30_000)
  t.ok(hold, 'a job running here is held')
  t.equal(queue.hold('0123456789abcdef0123456789abcdef', 30_000), undefined, 'another replica’s job is not')
  let ended: string | undefined
  hold!.ended.then((why) => {
    ended = why
  })
  holdPut = true
  job.resolve(VOLUME)
  await until('the job left this process', () => queue.pending === 0)
  t.equal(ended, undefined, 'still held while its outcome is being stored')
  put.resolve()
  t.equal(await hold!.ended, 'finished')
  t.same(await queue.read(id), { state: 'redirect', location: VOLUME }, 'the read after the hold sees it')
  t.equal(queue.held, 0)
})

t.test('replicated: an outcome the store refuses is counted, and its held poll still ends', async (t) => {
  const stored = new Map<string, JobRecord>()
  const records: JobRecords = {
    put: async (id, record) => {
      if (record.outcome.state !== 'pending') throw new Error('etcd unreachable')
      stored.set(id, record)
    },
    get: async (id) => stored.get(id),
    delete: async (id) => {
      stored.delete(id)
    },
    list: async () => [...stored].map(([id, record]) => ({ id, record })),
  }
  const queue = new AsyncQueue(pino({ level: 'silent' }), { records, term: () => 'term-1' })
  const id = await queue.reserve()
  queue.run(id, async () => VOLUME)
  const hold = queue.hold(id, 30_000)
  t.ok(hold, 'held while the job runs')
  t.equal(queue.recordFailures, 0)
  t.equal(await hold?.ended, 'finished', 'the hold ends although the outcome was not stored')
  t.equal(queue.recordFailures, 1, 'the refused write is counted (heqet_queue_record_failures_total)')
  t.same(
    await queue.read(id),
    { state: 'pending' },
    'the record still says pending: the next leader completes it',
  )
})
