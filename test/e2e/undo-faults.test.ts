// Faults during undo, on the real testbed (issue 8): for volume create,
// expand and delete, device add and node add, the operation is made to fail
// and then every node command of its undo fails once, and times out once
// (the command runs, its answer is lost). Afterwards either the undo went
// round the fault and nodes and DB agree, or a `failed` record remains;
// a later `POST /operations/pending/cleanup` finishes it, and then the nodes
// hold exactly what the DB says (LVM, mounts, fstab, brick dirs, gluster
// volumes, the trusted pool), the journal is empty and /db/check is clean.
import t, { type Test } from 'tap'
import { InjectingRunner, type InjectionRule, Injector } from '../../executors/inject.ts'
import { makeApp, type TestApp } from '../helpers/app.ts'
import { assertAgreement } from './lib/agreement.ts'
import { remoteExecutor, sshRunner } from './lib/heqet.ts'
import { createTestbed, requireTestbed, type Testbed } from './lib/testbed.ts'

const replica3 = { size: 1, durability: { type: 'replicate', replicate: { replica: 3 } } }

/** node commands of each undo (brick destroy: one per brick, on every node) */
const BRICK_UNDO = ['^umount', 'sed -i', 'lvremove.*/brick_', 'thin_count', 'lvremove.*/tp_', '^rmdir']
const CREATE_UNDO = ['volume stop', 'volume delete', ...BRICK_UNDO]
// the same brick destroy as create's: one of its commands stands for all
const EXPAND_UNDO = ['volume info', 'lvremove.*/brick_']
const DELETE_UNDO = ['volume info']
const DEVICE_UNDO = ['vgs -o', 'vgremove', 'pvremove']
const NODE_UNDO = ['peer detach']
const ACTIONS = ['fail', 'timeout'] as const

const fault = (pattern: string, action: (typeof ACTIONS)[number]): InjectionRule => ({
  pattern,
  action,
  message: action === 'fail' ? `injected: ${pattern}` : undefined,
  count: 1,
})

/** storage hostnames in node 0's trusted pool, itself included */
async function pool(tb: Testbed): Promise<string[]> {
  const res = await tb.nodes[0]!.exec('gluster --mode=script pool list')
  if (res.code !== 0) throw new Error(`pool list: ${res.stderr}`)
  return res.stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s+/)[1]!)
    .map((h) => (h === 'localhost' ? tb.nodes[0]!.ip : h))
    .sort()
}

async function agree(t: Test, app: TestApp, tb: Testbed, baseFstab: string[][], what: string) {
  const ops = (await app.call('GET', '/operations/pending')).json().pendingoperations as { status: string }[]
  t.ok(
    ops.every((o) => o.status === 'failed'),
    `${what}: nothing left but failed records (${ops.length})`,
  )
  const cleanup = await app.run('POST', '/operations/pending/cleanup', {})
  t.equal(cleanup.statusCode, 204, `${what}: cleanup finished everything ${cleanup.body.trim()}`)
  const dump = await assertAgreement(t, app, tb, baseFstab, what)
  const dbPeers = Object.values(dump.nodeentries)
    .map((n) => n.Info.hostnames.manage[0]!)
    .sort()
  t.same(await pool(tb), dbPeers, `${what}: the trusted pool is the DB's nodes`)
}

t.test('every node command of every undo fails once, and times out once', async (t) => {
  if (!requireTestbed(t)) return
  const started = performance.now()
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 1, deviceSizeGiB: 32, name: 'hqundo' })
  t.teardown(() => tb.destroy())
  const injector = new Injector([])
  // no create retries: each faulted create ends after its undo
  const app = await makeApp(t, {
    executor: remoteExecutor(new InjectingRunner(sshRunner(tb), injector)),
    config: { volumeCreateRetries: 0 },
  })
  let caseStart = performance.now()
  const timed = (what: string) => {
    t.comment(`${what}: ${((performance.now() - caseStart) / 1000).toFixed(1)} s`)
    caseStart = performance.now()
  }
  const baseFstab = (await tb.snapshot()).map((s) => s.fstab)
  const cluster = (await app.call('POST', '/clusters', { file: true, block: true })).json().id
  const addNode = (i: number) =>
    app.run('POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [tb.nodes[i]!.ip], storage: [tb.nodes[i]!.ip] },
      cluster,
    })
  const nodeIds: string[] = []
  for (const i of [0, 1]) nodeIds.push((await addNode(i)).location!.split('/').pop()!)

  // node add: the probe goes through but its answer is lost, then the detach fails
  for (const pattern of NODE_UNDO) {
    for (const action of ACTIONS) {
      const what = `node add / ${pattern} ${action}`
      injector.setRules([{ pattern: 'peer probe', action: 'timeout', count: 1 }, fault(pattern, action)])
      const res = await addNode(2)
      t.equal(injector.fired, 2, `${what}: the undo hit the fault`)
      t.equal(res.statusCode, 500, `${what}: reported`)
      await agree(t, app, tb, baseFstab, what)
      timed(what)
    }
  }
  injector.setRules([])
  nodeIds.push((await addNode(2)).location!.split('/').pop()!)
  t.equal(nodeIds.length, 3)

  // device add: the VG is made, the size query fails, then the undo meets the fault
  for (const pattern of DEVICE_UNDO) {
    for (const action of ACTIONS) {
      const what = `device add / ${pattern} ${action}`
      injector.setRules([
        { pattern: 'vgdisplay', action: 'fail', message: 'injected: vgdisplay', count: 1 },
        fault(pattern, action),
      ])
      const res = await app.run('POST', '/devices', { name: tb.nodes[0]!.devices[0], node: nodeIds[0] })
      t.equal(injector.fired, 2, `${what}: the undo hit the fault`)
      t.equal(res.statusCode, 500, `${what}: reported`)
      await agree(t, app, tb, baseFstab, what)
      timed(what)
    }
  }
  injector.setRules([])
  for (const [i, node] of tb.nodes.entries()) {
    t.equal((await app.run('POST', '/devices', { name: node.devices[0], node: nodeIds[i] })).statusCode, 204)
  }

  // volume create: `volume start` fails, the undo meets the fault
  for (const pattern of CREATE_UNDO) {
    for (const action of ACTIONS) {
      const what = `create / ${pattern} ${action}`
      injector.setRules([
        { pattern: 'volume start', action: 'fail', message: 'injected: volume start', count: 1 },
        fault(pattern, action),
      ])
      const res = await app.run('POST', '/volumes', replica3)
      t.equal(injector.fired, 2, `${what}: the undo hit the fault`)
      t.equal(res.statusCode, 500, `${what}: reported`)
      t.equal(res.body, 'injected: volume start\n', `${what}: with the error that made it undo`)
      await agree(t, app, tb, baseFstab, what)
      timed(what)
    }
  }
  injector.setRules([])
  t.same((await app.call('GET', '/volumes')).json().volumes, [], 'no faulted create left a volume')
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await app.run('POST', '/volumes', replica3)
    t.equal(res.statusCode, 303)
    ids.push(res.location!.split('/').pop()!)
  }

  // volume expand: add-brick fails, the undo meets the fault
  for (const pattern of EXPAND_UNDO) {
    for (const action of ACTIONS) {
      const what = `expand / ${pattern} ${action}`
      injector.setRules([
        { pattern: 'add-brick', action: 'fail', message: 'injected: add-brick', count: 1 },
        fault(pattern, action),
      ])
      const res = await app.run('POST', `/volumes/${ids[0]}/expand`, { expand_size: 1 })
      t.equal(injector.fired, 2, `${what}: the undo hit the fault`)
      t.equal(res.statusCode, 500, `${what}: reported`)
      t.equal((await app.call('GET', `/volumes/${ids[0]}`)).json().size, 1, `${what}: size unchanged`)
      await agree(t, app, tb, baseFstab, what)
      timed(what)
    }
  }

  // volume delete: `volume delete` fails on every node after `volume stop`;
  // the undo's check meets the fault and the cleaner finishes the delete
  for (const pattern of DELETE_UNDO) {
    for (const action of ACTIONS) {
      const what = `delete / ${pattern} ${action}`
      const id = ids.pop()!
      injector.setRules([
        { pattern: 'volume delete', action: 'fail', message: 'injected: volume delete', count: 3 },
        fault(pattern, action),
      ])
      const res = await app.run('DELETE', `/volumes/${id}`)
      t.equal(injector.fired, 4, `${what}: the undo hit the fault`)
      t.equal(res.statusCode, 500, `${what}: reported`)
      await agree(t, app, tb, baseFstab, what)
      timed(what)
      t.equal((await app.call('GET', `/volumes/${id}`)).statusCode, 404, `${what}: the delete was finished`)
    }
  }

  injector.setRules([])
  for (const id of (await app.call('GET', '/volumes')).json().volumes) {
    t.equal((await app.run('DELETE', `/volumes/${id}`)).statusCode, 204)
  }
  await agree(t, app, tb, baseFstab, 'all deleted')
  t.comment(
    `undo faults: ${((performance.now() - started) / 1000).toFixed(1)} s (testbed ${(tb.createMs / 1000).toFixed(1)} s)`,
  )
})
