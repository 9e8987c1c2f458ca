// The expand that does not wait on rebalance (issue 12 item 5), on the real
// GlusterFS testbed: the expand answers once add-brick went through, while
// the rebalance start is still in glusterd's hands; heqet then shows the
// rebalance start and complete (and gluster's own status says completed),
// the data stays readable, and a delete right after a second expand (its
// rebalance start in flight or running) still removes everything.
// One testbed (hqrebal, 3 nodes × 2 disks) for the whole file, about a minute.
import { readFileSync, writeFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { makeApp, type TestApp } from '../helpers/app.ts'
import { remoteExecutor, sshRunner } from './lib/heqet.ts'
import { createTestbed, requireTestbed, type Testbed } from './lib/testbed.ts'
import { addTopology, ok } from './lib/topology.ts'

const FILES = 40

async function mounted<T>(tb: Testbed, app: TestApp, id: string, fn: (dir: string) => T): Promise<T> {
  const info = (await app.call('GET', `/volumes/${id}`)).json()
  const [server, ...backups] = info.mount.glusterfs.hosts as string[]
  const m = await tb.mountVolume(server!, info.name, backups)
  try {
    return fn(m.path)
  } finally {
    await m.unmount()
  }
}

const content = (i: number) => `file ${i}\n${'r'.repeat(4096 + i)}`

async function rebalanceOf(app: TestApp, volumeId: string) {
  const ops = (await app.call('GET', '/operations')).json()
  return (ops.rebalances ?? []).find((r: { volume_id: string }) => r.volume_id === volumeId)
}

async function run(t: Test, tb: Testbed) {
  const app = await makeApp(t, { executor: remoteExecutor(sshRunner(tb)) })
  app.ctx.rebalance.settings.pollMs = 500
  const before = await tb.snapshot()
  await addTopology(t, app, tb)
  const created = await app.run('POST', '/volumes', {
    size: 1,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  await ok(t, created, 303, 'replica-3 volume created')
  const id = created.location!.split('/').pop()!
  const name = (await app.call('GET', `/volumes/${id}`)).json().name as string
  await mounted(tb, app, id, (dir) => {
    for (let i = 0; i < FILES; i++) writeFileSync(`${dir}/f${i}.txt`, content(i))
  })

  // the expand answers after add-brick, before the rebalance is over
  const t0 = performance.now()
  const expanded = await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 })
  const expandMs = performance.now() - t0
  await ok(t, expanded, 303, 'expanded')
  const atAnswer = await rebalanceOf(app, id)
  t.comment(`expand answered after ${expandMs.toFixed(0)} ms; rebalance then: ${JSON.stringify(atAnswer)}`)
  t.ok(
    atAnswer && ['pending', 'started'].includes(atAnswer.state),
    `the rebalance is not over when the expand answers (${atAnswer?.state})`,
  )
  const info = (await app.call('GET', `/volumes/${id}`)).json()
  t.equal(info.size, 2)
  t.equal(info.bricks.length, 6)
  const gInfo = await tb.nodes[0]!.exec(`gluster --mode=script volume info ${name}`)
  t.match(gInfo.stdout, /Number of Bricks: 2 x 3 = 6/, 'gluster serves the new bricks')

  // heqet shows it start, then complete (bounded: 3 minutes)
  let seen = atAnswer
  const states = new Set<string>([atAnswer?.state])
  for (let i = 0; i < 360 && seen?.state !== 'completed'; i++) {
    await new Promise((r) => setTimeout(r, 500))
    seen = await rebalanceOf(app, id)
    states.add(seen?.state)
    if (['failed', 'cancelled', 'stopped', 'unfollowed'].includes(seen?.state)) break
  }
  t.comment(`rebalance: ${JSON.stringify(seen)}`)
  t.ok(states.has('started') || states.has('pending'), `seen on its way: ${[...states].join(' → ')}`)
  t.equal(seen?.state, 'completed', 'heqet shows the rebalance completed')
  t.equal(seen?.gluster_status, 'completed')
  t.same(
    (await app.call('GET', '/operations/pending')).json().pendingoperations,
    [],
    'nothing left in the journal',
  )
  const status = await tb.nodes[1]!.exec(`gluster --mode=script volume rebalance ${name} status`)
  t.equal(status.code, 0, `gluster rebalance status: ${status.stderr}`)
  t.match(status.stdout, /completed/, "gluster's own status says completed")
  t.notMatch(status.stdout, /in progress/)
  const read = await mounted(tb, app, id, (dir) =>
    Array.from({ length: FILES }, (_, i) => readFileSync(`${dir}/f${i}.txt`, 'utf8') === content(i)),
  )
  t.equal(read.filter(Boolean).length, FILES, 'every file readable and intact after the rebalance')

  // a second expand, then a delete at once: the start in flight is waited
  // for, a running rebalance stopped, and the volume goes entirely
  await ok(t, await app.run('POST', `/volumes/${id}/expand`, { expand_size: 1 }), 303, 'expanded again')
  await ok(t, await app.run('DELETE', `/volumes/${id}`), 204, 'deleted right after the expand')
  t.same((await app.call('GET', '/operations/pending')).json().pendingoperations, [])
  const after = await tb.snapshot()
  for (const [i, s] of after.entries()) {
    t.same(s.glusterVolumes, [], `node ${i}: no gluster volume left`)
    t.same(s.lvs, [], `node ${i}: no LVs left`)
    t.same(s.fstab, before[i]!.fstab, `node ${i}: fstab as before`)
  }
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
}

t.test('expand without waiting on rebalance, on the testbed', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqrebal' })
  t.teardown(() => tb.destroy())
  await run(t, tb)
})
