// markRecordFailed (src/operations/cleaner.ts): how the cleaner and the rebalance
// tracker leave a journal record `failed` for the cleaner's next run.
import t from 'tap'
import { markRecordFailed } from '../src/operations/cleaner.ts'
import { makeApp } from './helpers/app.ts'

t.test(
  'failed, with its error, one more attempt and the retry time; a refused write is counted',
  async (t) => {
    const app = await makeApp(t)
    const { ctx } = app
    await ctx.store.write((tx) =>
      tx.put('pendingop', 'op1', {
        id: 'op1',
        timestamp: 1,
        type: 'rebalance-volume',
        actions: [],
        status: '',
        doneSteps: [],
        data: {},
        cleanAttempts: 2,
      }),
    )
    await markRecordFailed(ctx, 'op1', 'glusterd: boom', (attempts) => 1000 + attempts, 'op1: not marked')
    t.match(
      ctx.store.read((tx) => tx.get('pendingop', 'op1')),
      {
        status: 'failed',
        lastError: 'glusterd: boom',
        cleanAttempts: 3,
        retryAt: 1003,
      },
    )
    await markRecordFailed(ctx, 'gone', 'x', () => 1, 'gone: not marked')
    t.equal(
      ctx.store.read((tx) => tx.get('pendingop', 'gone')),
      undefined,
      'no record: nothing written',
    )

    const errors: string[] = []
    const log = ctx.log as unknown as { error: (...a: unknown[]) => void }
    log.error = (...args: unknown[]) => errors.push(args.filter((a) => typeof a === 'string').join(' '))
    const store = ctx.store
    const write = store.write.bind(store)
    store.write = () => Promise.reject(new Error('not the leader'))
    const before = ctx.counters.journalWriteFailures
    await markRecordFailed(ctx, 'op1', 'again', () => 1, 'op1: not marked')
    store.write = write
    t.equal(ctx.counters.journalWriteFailures, before + 1, 'counted (heqet_journal_write_failures)')
    t.same(errors, ['op1: not marked: not the leader'])
    t.match(
      ctx.store.read((tx) => tx.get('pendingop', 'op1')),
      { lastError: 'glusterd: boom' },
      'left as it was',
    )
  },
)
