// The end-to-end scenario through heqet's HTTP API on a real GlusterFS
// testbed: topology, replica-3 and disperse volumes mounted over FUSE,
// expand with data intact, delete with nothing left behind, device and node
// delete; once with the SSH executor and once with the kube executor.
import t, { type Test } from 'tap'
import type { Executor } from '../../executors/executor.ts'
import { makeApp, type TestApp } from '../helpers/app.ts'
import { kubeOnTestbed, remoteExecutor, sshRunner } from './lib/heqet.ts'
import { createTestbed, requireTestbed, type Testbed } from './lib/testbed.ts'
import { addTopology, ok } from './lib/topology.ts'

async function mountAndWrite(
  _t: Test,
  tb: Testbed,
  app: TestApp,
  volumeId: string,
  files: Record<string, string>,
) {
  const info = (await app.call('GET', `/volumes/${volumeId}`)).json()
  const [server, ...backups] = info.mount.glusterfs.hosts as string[]
  const m = await tb.mountVolume(server!, info.name, backups)
  try {
    const { writeFileSync } = await import('node:fs')
    for (const [name, text] of Object.entries(files)) writeFileSync(`${m.path}/${name}`, text)
  } finally {
    await m.unmount()
  }
}

async function mountAndRead(tb: Testbed, app: TestApp, volumeId: string, names: string[]) {
  const info = (await app.call('GET', `/volumes/${volumeId}`)).json()
  const [server, ...backups] = info.mount.glusterfs.hosts as string[]
  const m = await tb.mountVolume(server!, info.name, backups)
  try {
    const { readFileSync } = await import('node:fs')
    return Object.fromEntries(names.map((n) => [n, readFileSync(`${m.path}/${n}`, 'utf8')]))
  } finally {
    await m.unmount()
  }
}

async function scenario(t: Test, tb: Testbed, executor: Executor) {
  const app = await makeApp(t, { executor })
  const before = await tb.snapshot()

  const { cluster, nodeIds } = await addTopology(t, app, tb)
  const peers = await tb.nodes[0]!.exec('gluster --mode=script pool list')
  t.equal(peers.stdout.trim().split('\n').length, 1 + tb.nodes.length, 'all nodes in the trusted pool')

  // a failing node command surfaces on the queue with its stderr
  const bad = await app.run('POST', '/devices', { name: '/dev/sdz', node: nodeIds[0] })
  t.equal(bad.statusCode, 500)
  t.match(bad.body, /Initializing device \/dev\/sdz failed/)
  t.ok(
    bad.body.trim().length > 'Initializing device /dev/sdz failed'.length,
    `stderr carried: ${bad.body.trim()}`,
  )

  const r3 = await app.run('POST', '/volumes', {
    size: 2,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  await ok(t, r3, 303, 'replica-3 volume created')
  const r3Id = r3.location!.split('/').pop()!
  const files = { 'a.txt': 'hello gluster\n', 'b.txt': 'x'.repeat(100_000) }
  await mountAndWrite(t, tb, app, r3Id, files)
  const r3Info = (await app.call('GET', `/volumes/${r3Id}`)).json()
  for (const b of r3Info.bricks) {
    const node = tb.nodes[nodeIds.indexOf(b.node)]!
    const onBrick = await node.exec(`cat ${b.path}/a.txt`)
    t.equal(onBrick.stdout, files['a.txt'], `data on brick ${b.id}`)
  }

  await ok(t, await app.run('POST', `/volumes/${r3Id}/expand`, { expand_size: 2 }), 303, 'expanded')
  const expanded = (await app.call('GET', `/volumes/${r3Id}`)).json()
  t.equal(expanded.size, 4)
  t.equal(expanded.bricks.length, 6)
  const gInfo = await tb.nodes[0]!.exec(`gluster --mode=script volume info ${expanded.name}`)
  t.match(gInfo.stdout, /Number of Bricks: 2 x 3 = 6/)
  t.same(await mountAndRead(tb, app, r3Id, Object.keys(files)), files, 'data intact after expand')

  const ec = await app.run('POST', '/volumes', {
    size: 2,
    durability: { type: 'disperse', disperse: { data: 2, redundancy: 1 } },
  })
  await ok(t, ec, 303, 'disperse 2+1 volume created')
  const ecId = ec.location!.split('/').pop()!
  await mountAndWrite(t, tb, app, ecId, { 'ec.txt': 'erasure coded\n' })
  t.same(await mountAndRead(tb, app, ecId, ['ec.txt']), { 'ec.txt': 'erasure coded\n' })

  await ok(t, await app.run('DELETE', `/volumes/${r3Id}`), 204, 'replica volume deleted')
  await ok(t, await app.run('DELETE', `/volumes/${ecId}`), 204, 'disperse volume deleted')
  const afterVolumes = await tb.snapshot()
  for (const [i, s] of afterVolumes.entries()) {
    t.same(s.lvs, [], `node ${i}: no LVs left`)
    t.same(s.mounts, [], `node ${i}: no brick mounts left`)
    t.same(s.fstab, before[i]!.fstab, `node ${i}: fstab back to what it was`)
    // vg_<id> directories stay until the device is deleted, as with heketi
    t.same(
      s.brickDirs.filter((d) => d.includes('/brick_')),
      [],
      `node ${i}: no brick directories left`,
    )
    t.same(s.glusterVolumes, [], `node ${i}: no gluster volumes left`)
  }
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)

  for (const nodeId of nodeIds) {
    const node = (await app.call('GET', `/nodes/${nodeId}`)).json()
    for (const d of node.devices) {
      await ok(
        t,
        await app.run('POST', `/devices/${d.id}/state`, { state: 'offline' }),
        204,
        'device offline',
      )
      await ok(t, await app.run('POST', `/devices/${d.id}/state`, { state: 'failed' }), 204, 'device failed')
      await ok(t, await app.run('DELETE', `/devices/${d.id}`), 204, `device ${d.name} deleted`)
    }
    await ok(t, await app.run('DELETE', `/nodes/${nodeId}`), 204, 'node deleted')
  }
  await ok(t, await app.call('DELETE', `/clusters/${cluster}`), 200, 'cluster deleted')
  const end = await tb.snapshot()
  for (const [i, s] of end.entries()) {
    t.same(s.brickDirs, [], `node ${i}: no VG mount directories left`)
    t.same(s.pvs, before[i]!.pvs, `node ${i}: no PVs left`)
    t.same(s.vgs, before[i]!.vgs, `node ${i}: no VGs left`)
  }
  const pool = await tb.nodes[0]!.exec('gluster --mode=script pool list')
  t.equal(pool.stdout.trim().split('\n').length, 2, 'peers detached')
}

t.test('end-to-end with the SSH executor', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqssh' })
  t.teardown(() => tb.destroy())
  await scenario(t, tb, remoteExecutor(sshRunner(tb)))
})

t.test('end-to-end with the kube executor (fake API server)', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqkube' })
  t.teardown(() => tb.destroy())
  const { runner, kube } = await kubeOnTestbed(tb)
  t.teardown(() => kube.stop())
  await scenario(
    t,
    tb,
    remoteExecutor(runner, (code) => `command terminated with exit code ${code}`),
  )
  t.ok(kube.execs.length > 20, `commands went through pods/exec (${kube.execs.length})`)
})
