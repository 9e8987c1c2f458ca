// Fault injection on the real testbed: for each node command of volume
// create, expand and delete and of device add, a run where that command
// fails once. Afterwards (and after the cleaner ran) every node holds
// exactly what the DB says, the journal is empty and /db/check is clean.
import t, { type Test } from 'tap'
import { InjectingRunner, Injector } from '../../executors/inject.ts'
import { makeApp, type TestApp } from '../helpers/app.ts'
import { assertAgreement } from './lib/agreement.ts'
import { remoteExecutor, sshRunner } from './lib/heqet.ts'
import { createTestbed, requireTestbed, type Testbed } from './lib/testbed.ts'
import { addTopology } from './lib/topology.ts'

const CREATE = [
  '^mkdir -p',
  'lvcreate',
  'mkfs\\.xfs',
  '^awk',
  '^mount -o',
  "^mkdir '/var",
  'volume create',
  'volume set',
  'volume start',
]
const EXPAND = ['lvcreate', 'mkfs\\.xfs', '^mount -o', 'add-brick']
const DELETE = ['volume stop', 'volume delete', '^umount', 'sed -i', 'lvremove', 'thin_count', '^rmdir']
const DEVICE = ['pvcreate', 'vgcreate', 'pvs -o', 'vgdisplay']

const replica3 = { size: 1, durability: { type: 'replicate', replicate: { replica: 3 } } }

async function agree(t: Test, app: TestApp, tb: Testbed, baseFstab: string[][], what: string) {
  await app.run('POST', '/operations/pending/cleanup', {})
  await assertAgreement(t, app, tb, baseFstab, what)
}

t.test('one failing node command at a time', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 1, deviceSizeGiB: 32, name: 'hqfault' })
  t.teardown(() => tb.destroy())
  const injector = new Injector([])
  const app = await makeApp(t, { executor: remoteExecutor(new InjectingRunner(sshRunner(tb), injector)) })
  const baseFstab = (await tb.snapshot()).map((s) => s.fstab)
  // disks come later, each add failing once per command first
  const { nodeIds } = await addTopology(t, app, tb, { disks: false })

  for (const pattern of DEVICE) {
    injector.setRules([{ pattern, action: 'fail', message: `injected: ${pattern}`, count: 1 }])
    const res = await app.run('POST', '/devices', { name: tb.nodes[0]!.devices[0], node: nodeIds[0] })
    t.equal(injector.fired, 1, `device add: ${pattern} failed once`)
    t.equal(res.statusCode, 500, `device add with ${pattern} failing reports 500`)
    t.match(res.body, /injected/, "the failing command's stderr reaches the queue")
    await agree(t, app, tb, baseFstab, `device add / ${pattern}`)
  }
  injector.setRules([])
  for (const [i, node] of tb.nodes.entries()) {
    t.equal((await app.run('POST', '/devices', { name: node.devices[0], node: nodeIds[i] })).statusCode, 204)
  }

  for (const pattern of CREATE) {
    injector.setRules([{ pattern, action: 'fail', message: `injected: ${pattern}`, count: 1 }])
    const res = await app.run('POST', '/volumes', replica3)
    t.equal(injector.fired, 1, `create: ${pattern} failed once`)
    t.equal(res.statusCode, 303, `create with ${pattern} failing once succeeds on retry`)
    await agree(t, app, tb, baseFstab, `create / ${pattern}`)
  }
  injector.setRules([])
  const ids: string[] = (await app.call('GET', '/volumes')).json().volumes
  t.equal(ids.length, CREATE.length)

  for (const pattern of EXPAND) {
    injector.setRules([{ pattern, action: 'fail', message: `injected: ${pattern}`, count: 1 }])
    const res = await app.run('POST', `/volumes/${ids[0]}/expand`, { expand_size: 1 })
    t.equal(res.statusCode, 500, `expand with ${pattern} failing reports 500`)
    t.match(res.body, /injected/)
    t.equal((await app.call('GET', `/volumes/${ids[0]}`)).json().size, 1, 'size unchanged')
    await agree(t, app, tb, baseFstab, `expand / ${pattern}`)
  }

  for (const [i, pattern] of DELETE.entries()) {
    injector.setRules([{ pattern, action: 'fail', message: `injected: ${pattern}`, count: 1 }])
    const res = await app.run('DELETE', `/volumes/${ids[i]}`)
    t.ok(
      [204, 500].includes(res.statusCode),
      `delete with ${pattern} failing: ${res.statusCode} ${res.body.trim()}`,
    )
    await agree(t, app, tb, baseFstab, `delete / ${pattern}`)
  }
  injector.setRules([])
  for (const id of (await app.call('GET', '/volumes')).json().volumes) {
    t.equal((await app.run('DELETE', `/volumes/${id}`)).statusCode, 204)
  }
  await agree(t, app, tb, baseFstab, 'all deleted')
})
