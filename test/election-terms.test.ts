// ElectionTerms (db/election-terms.ts): the term bookkeeping and change
// notification both leader elections share.
import t from 'tap'
import { ElectionTerms } from '../db/election-terms.ts'
import type { LeaderInfo } from '../db/etcd-election.ts'

class Probe extends ElectionTerms {
  begin(term: LeaderInfo, where: string) {
    this.termBegan(term, where)
  }
  over(reason: string) {
    this.termOver(reason)
  }
  see(next: LeaderInfo | undefined) {
    this.observeLeader(next)
  }
  stop() {
    this.stopped = true
  }
}

const info = (id: string, key: string): LeaderInfo => ({ id, url: `http://${id}`, key, createRevision: '1' })

t.test('terms, depositions and one change notice per change', async (t) => {
  const lines: string[] = []
  let changes = 0
  const log = {
    info: (m: string) => lines.push(`info ${m}`),
    warn: (m: string) => lines.push(`warn ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
  }
  const p = new Probe({ log, onChange: () => changes++ })
  t.notOk(p.isLeader())
  p.see(info('b', 'k1'))
  p.see(info('b', 'k1'))
  t.equal(changes, 1, 'the same leader seen again is no change')
  p.begin(info('a', 'k2'), 'key k2')
  t.ok(p.isLeader())
  t.equal(p.terms, 1)
  t.ok(p.electedAt > 0)
  t.equal(changes, 2)
  p.over('lease lost')
  t.notOk(p.isLeader())
  t.equal(p.depositions, 1, 'a term lost while running is a deposition')
  t.ok(p.termEndedAt >= p.electedAt)
  t.equal(changes, 3)
  p.begin(info('a', 'k3'), 'key k3')
  p.stop()
  p.over('stopping')
  t.equal(p.depositions, 1, 'a term ended by stop() is not')
  t.equal(p.terms, 2)
  t.same(lines, [
    'info leader election: this replica (a) is the leader (key k2)',
    'error leader election: no longer the leader: lease lost',
    'info leader election: this replica (a) is the leader (key k3)',
  ])
})
