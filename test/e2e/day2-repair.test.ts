// Day-2 refusal and state repair on the real testbed (issue 9 items 2–3): a
// device remove refused because the rest of the set is down changes
// nothing, and the repair starts the two killed brick processes again
// (glusterd does not); then the nodes are broken on purpose and
// POST /internal/state/repair lists (dry run), then fixes; last, a node
// whose glusterd is dead is deleted.
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import type { Executor } from '../../executors/executor.ts'
import { makeApp, type TestApp } from '../helpers/app.ts'
import { addTopology, glusterBricks, ok, removeTopology, type Topology } from './lib/day2.ts'
import { remoteExecutor, sshRunner } from './lib/heqet.ts'
import { createTestbed, requireTestbed, type Testbed } from './lib/testbed.ts'

const GLUSTER = 'gluster --mode=script'

t.test('refusal and state repair on real nodes', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 4, devicesPerNode: 2, name: 'hqrepair' })
  t.teardown(() => tb.destroy())
  const executor = remoteExecutor(sshRunner(tb))
  const app = await makeApp(t, { executor })
  const before = await tb.snapshot()
  await refusalAndRepair(t, tb, app, executor)
  const end = await tb.snapshot()
  for (const [i, s] of end.entries()) {
    t.same(s.lvs, [], `node ${i}: no LVs left`)
    t.same(s.mounts, [], `node ${i}: no brick mounts left`)
    t.same(s.fstab, before[i]!.fstab, `node ${i}: fstab as before`)
    t.same(s.brickDirs, [], `node ${i}: no brick directories left`)
    t.same(s.vgs, before[i]!.vgs, `node ${i}: no VGs left`)
  }
})

/** pid of the brick process serving `brick` (from `gluster volume status`) */
async function brickPid(tb: Testbed, volume: string, brick: string): Promise<number> {
  const res = await tb.nodes[0]!.exec(`${GLUSTER} volume status ${volume} ${brick} --xml`)
  const pid = Number(/<pid>(\d+)<\/pid>/.exec(res.stdout)?.[1])
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid for ${brick}: ${res.stdout}${res.stderr}`)
  return pid
}

/**
 * A device remove refused because the rest of the set is down changes
 * nothing; then the nodes are broken on purpose (an orphan brick, a bare
 * brick directory, a brick unmounted, a brick LV removed, a gluster volume
 * heqet does not know) and POST /internal/state/repair lists, then fixes.
 */
async function refusalAndRepair(t: Test, tb: Testbed, app: TestApp, executor: Executor) {
  const topo = await addTopology(t, app, tb)
  const hostOf = (nodeId: string) => tb.nodes[topo.nodeIds.indexOf(nodeId)]!
  const created = await app.run('POST', '/volumes', {
    size: 1,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  await ok(t, created, 303, 'volume created')
  const vol = (await app.call('GET', created.location!)).json()
  type B = { id: string; node: string; device: string; path: string }
  const bricks = vol.bricks as B[]
  const addr = (b: B) => `${hostOf(b.node).ip}:${b.path}`
  try {
    // the other two bricks of the set are down: heketi's refusal, nothing changes
    const [victim, ...others] = bricks as [B, B, B]
    for (const b of others) {
      const pid = await brickPid(tb, vol.name, addr(b))
      await hostOf(b.node).exec(`kill -9 ${pid}`)
      let down = false
      for (let i = 0; i < 40 && !down; i++) {
        const st = await tb.nodes[0]!.exec(`${GLUSTER} volume status ${vol.name} ${addr(b)} --xml`)
        down = /<status>0<\/status>/.test(st.stdout)
        if (!down) await new Promise((r) => setTimeout(r, 250))
      }
      t.ok(down, `brick ${b.id} is down`)
    }
    await ok(
      t,
      await app.run('POST', `/devices/${victim.device}/state`, { state: 'offline' }),
      204,
      'offline',
    )
    const refused = await app.run('POST', `/devices/${victim.device}/state`, { state: 'failed' })
    t.equal(refused.statusCode, 500)
    t.equal(
      refused.body,
      `Cannot replace brick ${victim.id} as only 0 of 2 required peer bricks are online\n`,
      "heketi's text",
    )
    t.equal((await app.call('GET', `/devices/${victim.device}`)).json().state, 'offline', 'device unchanged')
    t.same((await app.call('GET', created.location!)).json().bricks, vol.bricks, 'bricks unchanged')
    t.same((await glusterBricks(tb, vol.name)).sort(), bricks.map(addr).sort(), 'gluster unchanged')
    t.equal((await app.call('GET', '/operations')).json().total, 0, 'journal empty')
    await ok(t, await app.run('POST', `/devices/${victim.device}/state`, { state: 'online' }), 204, 'online')

    // glusterd does not start a brick process that died: the repair does (volume start force)
    const killed = others.map(addr).sort()
    const listed = (await app.call('POST', '/internal/state/repair?dry_run=true')).json()
    t.same(
      listed.offline_bricks,
      [{ cluster: topo.cluster, volume: vol.name, bricks: killed, restarted: [] }],
      'dry run lists the two killed bricks, still down',
    )
    const started = (await app.call('POST', '/internal/state/repair')).json()
    t.same(started.offline_bricks[0]?.restarted, killed, 'repair started them')
    t.same(started.errors, [], 'without errors')
    for (const b of others) {
      const st = await tb.nodes[0]!.exec(`${GLUSTER} volume status ${vol.name} ${addr(b)} --xml`)
      t.match(st.stdout, /<status>1<\/status>/, `brick ${b.id} runs again`)
    }

    // break the nodes on purpose
    const [x, y] = others as [B, B]
    const n0 = hostOf(victim.node)
    const orphanId = randomBytes(16).toString('hex')
    const bareId = randomBytes(16).toString('hex')
    const orphanDir = `/var/lib/heketi/mounts/vg_${victim.device}/brick_${orphanId}`
    const bareDir = `/var/lib/heketi/mounts/vg_${victim.device}/brick_${bareId}`
    await executor.brickCreate({
      host: n0.ip,
      brickId: orphanId,
      deviceId: victim.device,
      path: `${orphanDir}/brick`,
      sizeKiB: 524288,
      tpSizeKiB: 524288,
      poolMetadataSizeKiB: 8192,
      lvmThinPool: `tp_${orphanId}`,
      lvmLv: '',
      gid: 0,
      arbiter: false,
    })
    await n0.exec(`mkdir ${bareDir}`)
    await n0.exec(`${GLUSTER} volume stop ${vol.name} force`)
    const dirOf = (b: B) => b.path.replace(/\/brick$/, '')
    t.equal((await hostOf(x.node).exec(`umount ${dirOf(x)}`)).code, 0, 'brick x unmounted')
    const yLv = `vg_${y.device}/brick_${y.id}`
    const removeY = await hostOf(y.node).exec(`umount ${dirOf(y)} && lvm lvremove --autobackup=n -f ${yLv}`)
    t.equal(removeY.code, 0, `brick y LV removed ${removeY.stderr}`)
    const foreign = await n0.exec(
      `mkdir -p /var/lib/heqet-foreign && ${GLUSTER} volume create vol_foreign ${n0.ip}:/var/lib/heqet-foreign/b force`,
    )
    t.equal(foreign.code, 0, `a gluster volume heqet does not know: ${foreign.stderr}`)

    const dry = await app.call('POST', '/internal/state/repair?dry_run=true')
    t.equal(dry.statusCode, 200)
    const at = (report: { nodes: { node: string }[] }, nodeId: string) =>
      report.nodes.find((n) => n.node === nodeId) as unknown as Record<string, string[]>
    const d = dry.json()
    t.same(
      [...at(d, victim.node)!.removed!].sort(),
      [`vg_${victim.device}/brick_${bareId}`, `vg_${victim.device}/brick_${orphanId}`].sort(),
      'dry run lists the orphan brick and the bare directory',
    )
    t.same(at(d, x.node)!.remounted, [x.id], 'dry run lists the unmounted brick')
    t.match(at(d, y.node)!.missing, [new RegExp(`brick ${y.id}: LV ${yLv} is gone`)], 'and the gone LV')
    t.same(d.unknown_gluster_volumes, [{ cluster: topo.cluster, volumes: ['vol_foreign'] }])
    t.ok(
      (await tb.snapshot())[tb.nodes.indexOf(n0)]!.lvs.includes(`vg_${victim.device}/brick_${orphanId}`),
      'dry run changed nothing',
    )

    const fixed = await app.call('POST', '/internal/state/repair')
    t.equal(fixed.statusCode, 200)
    t.same(
      fixed.json().nodes.flatMap((n: { errors: string[] }) => n.errors),
      [],
      'repair without errors',
    )
    const snaps = await tb.snapshot()
    const s0 = snaps[tb.nodes.indexOf(n0)]!
    t.notOk(
      s0.lvs.some((lv) => lv.includes(orphanId)),
      'orphan LV and thin pool removed',
    )
    t.notOk(s0.mounts.includes(orphanDir), 'orphan mount removed')
    t.notOk(
      s0.fstab.some((l) => l.includes(orphanId)),
      'orphan fstab line removed',
    )
    t.notOk(s0.brickDirs.includes(orphanDir) || s0.brickDirs.includes(bareDir), 'orphan directories removed')
    const sx = snaps[tb.nodes.indexOf(hostOf(x.node))]!
    t.ok(sx.mounts.includes(dirOf(x)), 'brick x mounted again')
    t.equal(sx.fstab.filter((l) => l.includes(x.id)).length, 1, 'brick x has one fstab line')
    t.ok(s0.glusterVolumes.includes('vol_foreign'), 'the unknown gluster volume is not deleted')
    const after = (await app.call('POST', '/internal/state/repair?dry_run=true')).json()
    t.same(
      after.nodes.flatMap((n: { removed: string[] }) => n.removed),
      [],
      'nothing more to remove',
    )
    t.same(
      after.nodes.flatMap((n: { remounted: string[] }) => n.remounted),
      [],
      'nothing more to mount',
    )
  } finally {
    await tb.nodes[0]!.exec(`${GLUSTER} volume delete vol_foreign; rm -rf /var/lib/heqet-foreign`)
    await ok(t, await app.run('DELETE', `/volumes/${vol.id}`), 204, 'volume deleted')
    await nodeDeleteWithDeadGlusterd(t, tb, app, topo)
    await removeTopology(t, app, { ...topo, nodeIds: topo.nodeIds.slice(0, -1) })
  }
}

/**
 * The last node's glusterd dies; its devices are removed and the node is
 * deleted. gluster 10 detaches a disconnected peer that holds no bricks
 * (`peer detach: success`), so the delete needs no force.
 */
async function nodeDeleteWithDeadGlusterd(t: Test, tb: Testbed, app: TestApp, topo: Topology) {
  const nodeId = topo.nodeIds.at(-1)!
  const node = tb.nodes[topo.nodeIds.indexOf(nodeId)]!
  const devices = (await app.call('GET', `/nodes/${nodeId}`)).json().devices as { id: string }[]
  t.equal((await node.exec('kill -9 $(cat /var/run/glusterd.pid)')).code, 0, 'glusterd killed')
  let disconnected = false
  for (let i = 0; i < 60 && !disconnected; i++) {
    const peers = await tb.nodes[0]!.exec(`${GLUSTER} pool list`)
    disconnected = new RegExp(`${node.ip.replaceAll('.', '\\.')}\\s+Disconnected`).test(peers.stdout)
    if (!disconnected) await new Promise((r) => setTimeout(r, 500))
  }
  t.ok(disconnected, 'the pool sees the peer disconnected')
  for (const d of devices) {
    await ok(t, await app.run('POST', `/devices/${d.id}/state`, { state: 'offline' }), 204, 'offline')
    await ok(t, await app.run('POST', `/devices/${d.id}/state`, { state: 'failed' }), 204, 'failed')
    await ok(t, await app.run('DELETE', `/devices/${d.id}`), 204, 'device deleted')
  }
  await ok(t, await app.run('DELETE', `/nodes/${nodeId}`), 204, 'node with a dead glusterd deleted')
  const pool = await tb.nodes[0]!.exec(`${GLUSTER} pool list`)
  t.notMatch(pool.stdout, node.ip, 'no longer in the trusted pool')
  t.equal((await app.call('GET', `/nodes/${nodeId}`)).statusCode, 404, 'gone from the DB')
  t.equal((await app.call('GET', '/operations')).json().total, 0, 'journal empty')
  // the machine comes back as a fresh, unpeered glusterd (for the final look at every node)
  const back = await node.exec('rm -f /var/lib/glusterd/peers/* && systemctl start glusterd')
  t.equal(back.code, 0, `glusterd started again, outside the pool ${back.stderr}`)
}
