// HostQueue (executors/host-queue.ts): heketi's per-host 1-slot semaphore.
import t from 'tap'
import { HostQueue } from '../executors/host-queue.ts'

function gate() {
  let open: () => void = () => {}
  const shut = new Promise<void>((r) => {
    open = r
  })
  return { shut, open }
}

t.test('one host: one after another; a failure is the caller’s and does not stop the next', async (t) => {
  const idle: string[] = []
  const q = new HostQueue((host) => idle.push(host))
  const order: string[] = []
  const first = gate()
  const a = q.run('h1', async () => {
    order.push('a start')
    await first.shut
    order.push('a end')
    throw new Error('a failed')
  })
  const b = q.run('h1', async () => {
    order.push('b')
    return 2
  })
  const c = q.run('h2', async () => {
    order.push('c')
    return 3
  })
  t.equal(await c, 3, 'another host does not wait')
  t.ok(q.busy('h1'))
  t.same(order, ['a start', 'c'])
  first.open()
  await t.rejects(a, /a failed/)
  t.equal(await b, 2, 'runs after the failed one')
  t.same(order, ['a start', 'c', 'a end', 'b'])
  await new Promise((r) => setImmediate(r))
  t.notOk(q.busy('h1'))
  t.notOk(q.busy('h2'))
  t.same(idle.sort(), ['h1', 'h2'], 'idle once per host, after its last batch')
})
