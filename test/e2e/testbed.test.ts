// The e2e testbed itself: three nodes, reachable over SSH, that accept
// heketi's exact device, brick and volume command sequences, serve a
// replica-3 volume to a FUSE mount on the host, return to empty after
// heketi's teardown order, and vanish without residue on destroy().

import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { type SshTarget, sshBatch, sshBatchOk } from './lib/ssh-batch.ts'
import {
  createTestbed,
  nodeNamespaces,
  requireTestbed,
  type Testbed,
  type TestNode,
  testbedResidue,
} from './lib/testbed.ts'

const LVM = '/usr/sbin/lvm'
const UDEVADM = '/usr/bin/udevadm'
const GLUSTER = 'gluster --mode=script --timeout=600'
const MOUNT_OPTS = 'rw,inode64,noatime,nouuid'
const BRICK_KIB = 1024 * 1024 // 1 GiB bricks
const POOL_METADATA_KIB = 8192

const newId = () => randomBytes(16).toString('hex')

/** Times an async step and reports it as a TAP comment. */
async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now()
  const result = await fn()
  t.comment(`timing: ${label}: ${(performance.now() - start).toFixed(0)} ms`)
  return result
}

interface Brick {
  node: TestNode
  deviceId: string
  brickId: string
  mnt: string
}

async function runSuite(): Promise<void> {
  const tb = await timed('createTestbed (3 nodes x 2 devices)', () =>
    createTestbed({ nodes: 3, devicesPerNode: 2, name: 'hqe2e' }),
  )
  const namespaces = nodeNamespaces(tb.name)
  t.teardown(() => tb.destroy()) // also after a failed assertion
  const target = (node: TestNode): SshTarget => ({
    host: node.ip,
    port: tb.sshPort,
    user: tb.sshUser,
    keyFile: tb.sshKeyFile,
  })
  const deviceIds = new Map<TestNode, string>() // first device of each node
  const pvUuids = new Map<TestNode, string>()
  let bricks: Brick[] = []
  const volume = `vol_${newId()}`

  t.equal(namespaces.size, 6, 'each node has its own mount and network namespace')
  t.ok(
    tb.nodes.every((n) => !n.ip.startsWith('127.')),
    'nodes have addresses on the bridge',
  )

  await t.test('ssh with the testbed key reaches every node', async (t) => {
    for (const node of tb.nodes) {
      const [res] = await sshBatchOk(target(node), ['hostname', 'systemctl status glusterd'])
      t.equal(res.stdout.trim(), node.name, `${node.ip} is ${node.name}`)
    }
  })

  await t.test("systemctl status glusterd follows the node's own glusterd", async (t) => {
    const node = target(tb.nodes[2])
    const [, stopped] = await sshBatch(node, ['systemctl stop glusterd', 'systemctl status glusterd'])
    t.equal(stopped.code, 3, 'inactive once stopped')
    const [, others] = await sshBatch(target(tb.nodes[1]), ['true', 'systemctl status glusterd'])
    t.equal(others.code, 0, 'another node is unaffected')
    await sshBatchOk(node, ['systemctl start glusterd', 'systemctl status glusterd'])
  })

  await t.test('peer probe from node 1 to nodes 2 and 3', async (t) => {
    const [first, ...others] = tb.nodes
    await timed('peer probe x2', () =>
      sshBatchOk(
        target(first),
        others.map((n) => `${GLUSTER} peer probe ${n.ip}`),
      ),
    )
    await waitForPeers(first, others.length)
    t.pass('peers are in the cluster and connected')
  })

  await t.test('heketi device setup on every node', async (t) => {
    await timed('device setup (3 nodes in parallel)', () =>
      Promise.all(
        tb.nodes.map(async (node) => {
          const deviceId = newId()
          const device = node.devices[0]
          deviceIds.set(node, deviceId)
          await sshBatchOk(target(node), [
            `${LVM} pvcreate -qq --metadatasize=128M --dataalignment=256K '${device}'`,
            `${LVM} vgcreate -qq --physicalextentsize=4M --autobackup=n vg_${deviceId} ${device}`,
          ])
          const [pvs, udev] = await sshBatchOk(target(node), [
            `${LVM} pvs -o pv_name,pv_uuid,vg_name --reportformat=json ${device}`,
            `${UDEVADM} info --query=symlink --name=${device}`,
          ])
          const pv = JSON.parse(pvs.stdout).report[0].pv
          t.equal(pv.length, 1, 'pvs reports one PV')
          t.match(pv[0], { pv_name: device, vg_name: `vg_${deviceId}` })
          t.match(pv[0].pv_uuid, /^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/, 'LVM-style PV UUID')
          pvUuids.set(node, pv[0].pv_uuid)
          t.match(udev.stdout, /disk\/by-id\/wwn-0x[0-9a-f]+/, 'udevadm lists the device links')
          t.match(udev.stdout, `disk/by-id/lvm-pv-uuid-${pv[0].pv_uuid}`)

          const [vgdisplay] = await sshBatchOk(target(node), [`${LVM} vgdisplay -c vg_${deviceId}`])
          const fields = vgdisplay.stdout.trim().split(':')
          t.equal(fields.length, 17, 'vgdisplay -c has 17 fields')
          t.equal(fields[12], '4096', '4 MiB extents')
          // 8 GiB disk less 128 MiB of metadata area, in 4 MiB extents
          t.equal(fields[13], String((8 * 1024 - 128) / 4), 'total extents')
          t.equal(fields[14], '0', 'nothing allocated')
        }),
      ),
    )
  })

  await t.test('heketi brick create batch on every node', async (t) => {
    bricks = tb.nodes.map((node) => {
      const deviceId = deviceIds.get(node)!
      const brickId = newId()
      return { node, deviceId, brickId, mnt: `/var/lib/heketi/mounts/vg_${deviceId}/brick_${brickId}` }
    })
    await timed('brick create batch (3 nodes in parallel)', () =>
      Promise.all(bricks.map((b) => sshBatchOk(target(b.node), brickCreateBatch(b)))),
    )
    for (const [i, snap] of (await tb.snapshot()).entries()) {
      const b = bricks[i]
      t.same(snap.mounts, [b.mnt], `${b.node.name}: brick mounted`)
      t.same(snap.fstab, [`${brickDevice(b)} ${b.mnt} xfs ${MOUNT_OPTS} 1 2`], 'fstab line appended')
      t.same(snap.lvs.sort(), [`vg_${b.deviceId}/brick_${b.brickId}`, `vg_${b.deviceId}/tp_${b.brickId}`])
    }
  })

  await t.test('replica 3 volume serves a FUSE mount on the host', async (t) => {
    const [first] = tb.nodes
    const brickList = bricks.map((b) => `${b.node.ip}:${b.mnt}/brick `).join('')
    await timed('volume create', () =>
      sshBatchOk(target(first), [`${GLUSTER} volume create ${volume} replica 3 ${brickList}`]),
    )
    await timed('volume set', () =>
      sshBatchOk(target(first), [`${GLUSTER} volume set ${volume} user.heketi.id ${volume.slice(4)}`]),
    )
    await timed('volume start', () => sshBatchOk(target(first), [`${GLUSTER} volume start ${volume}`]))

    const mount = await timed('FUSE mount on host', () =>
      tb.mountVolume(
        first.ip,
        volume,
        tb.nodes.slice(1).map((n) => n.ip),
      ),
    )
    const content = `written through FUSE ${newId()}\n`
    writeFileSync(`${mount.path}/hello.txt`, content)
    t.equal(readFileSync(`${mount.path}/hello.txt`, 'utf8'), content, 'file reads back through the mount')
    for (const b of bricks) {
      const res = await b.node.exec(`cat ${b.mnt}/brick/hello.txt`)
      t.equal(res.stdout, content, `file is on the brick of ${b.node.name}`)
    }
    await timed('FUSE unmount', () => mount.unmount())
  })

  await t.test('heketi teardown order leaves the nodes empty', async (t) => {
    const [first] = tb.nodes
    await timed('volume stop force', () =>
      sshBatch(target(first), [`${GLUSTER} volume stop ${volume} force`]),
    )
    await timed('volume delete', () => sshBatchOk(target(first), [`${GLUSTER} volume delete ${volume}`]))
    await timed('brick destroy (3 nodes in parallel)', () =>
      Promise.all(bricks.map((b) => destroyBrick(target(b.node), b, t))),
    )
    await timed('device teardown (3 nodes in parallel)', () =>
      Promise.all(
        tb.nodes.map(async (node) => {
          const deviceId = deviceIds.get(node)!
          await sshBatchOk(target(node), [
            `${LVM} vgremove -qq vg_${deviceId}`,
            `${LVM} pvremove -qq '/dev/disk/by-id/lvm-pv-uuid-${pvUuids.get(node)}'`,
          ])
          await sshBatchOk(target(node), [`rmdir /var/lib/heketi/mounts/vg_${deviceId}`])
        }),
      ),
    )
    const empty = { lvs: [], mounts: [], fstab: [], brickDirs: [], glusterVolumes: [], pvs: [], vgs: [] }
    t.same(await tb.snapshot(), [empty, empty, empty], 'snapshot() is empty on every node')
  })

  await t.test('LVM simulator enforces LVM semantics', (t) => checkSimulator(t, tb, target(tb.nodes[0])))

  await t.test('destroy() leaves nothing behind', async (t) => {
    await timed('destroy', () => tb.destroy())
    t.same(
      testbedResidue(tb.name, namespaces),
      [],
      'no namespaces, processes, loop devices, links, mounts or files',
    )
  })
}

function brickDevice(b: Brick): string {
  return `/dev/mapper/vg_${b.deviceId}-brick_${b.brickId}`
}

/** heketi's brick create batch (spec §5.1), data brick, default options. */
function brickCreateBatch(b: Brick): string[] {
  const dev = brickDevice(b)
  return [
    `mkdir -p ${b.mnt}`,
    `${LVM} lvcreate -qq --autobackup=n --poolmetadatasize ${POOL_METADATA_KIB}K --chunksize 256K --size ${BRICK_KIB}K --thin vg_${b.deviceId}/tp_${b.brickId} --virtualsize ${BRICK_KIB}K --name brick_${b.brickId}`,
    `mkfs.xfs -i size=512 -n size=8192 ${dev}`,
    `awk "BEGIN {print \\"${dev} ${b.mnt} xfs ${MOUNT_OPTS} 1 2\\" >> \\"/etc/fstab\\"}"`,
    `mount -o ${MOUNT_OPTS} ${dev} ${b.mnt}`,
    `mkdir ${b.mnt}/brick`,
  ]
}

/** heketi's brick destroy (spec §5.2): each step its own batch. */
async function destroyBrick(target: SshTarget, b: Brick, t: Test): Promise<void> {
  const vg = `vg_${b.deviceId}`
  await sshBatchOk(target, [`umount ${b.mnt}`])
  await sshBatchOk(target, [`sed -i.save "/brick_${b.brickId}/d" /etc/fstab`])
  await sshBatchOk(target, [`${LVM} lvremove --autobackup=n -f ${vg}/brick_${b.brickId}`])
  const [count] = await sshBatchOk(target, [
    `${LVM} lvs --noheadings --options=thin_count ${vg}/tp_${b.brickId}`,
  ])
  t.equal(count.stdout.trim(), '0', 'thin pool is empty after the brick LV is removed')
  await sshBatchOk(target, [`${LVM} lvremove --autobackup=n -f ${vg}/tp_${b.brickId}`])
  await sshBatchOk(target, [`rmdir ${b.mnt}`])
}

async function waitForPeers(node: TestNode, count: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const res = await node.exec(`${GLUSTER} peer status`)
    if ((res.stdout.match(/Peer in Cluster \(Connected\)/g) ?? []).length === count) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('peers did not become connected')
}

async function checkSimulator(t: Test, tb: Testbed, target: SshTarget): Promise<void> {
  const device = tb.nodes[0].devices[1]
  const vg = `vg_${newId()}`
  const run = async (cmd: string) => (await sshBatch(target, [cmd]))[0]

  const bogus = await run(`${LVM} lvcreate --size 1G --name x ${vg}`)
  t.equal(bogus.code, 3, 'an argv heketi would not send is rejected')
  t.match(bogus.stderr, /unsupported command line/)

  const notPv = await run(`${LVM} vgcreate -qq --physicalextentsize=4M --autobackup=n ${vg} ${device}`)
  t.not(notPv.code, 0, 'vgcreate needs a PV')
  t.match(notPv.stderr, /Failed to find physical volume/)

  await sshBatchOk(target, [`${LVM} pvcreate -qq --metadatasize=128M --dataalignment=256K '${device}'`])
  const again = await run(`${LVM} pvcreate -qq --metadatasize=128M --dataalignment=256K '${device}'`)
  t.not(again.code, 0, 'pvcreate on a PV fails')
  t.match(again.stderr, /already a physical volume/)
  const blkid = await tb.nodes[0].exec(`blkid -p -o value -s TYPE ${device}`)
  t.equal(blkid.stdout.trim(), 'LVM2_member', 'blkid sees the PV label on disk')

  await sshBatchOk(target, [`${LVM} vgcreate -qq --physicalextentsize=4M --autobackup=n ${vg} ${device}`])
  const tooBig = await run(
    `${LVM} lvcreate -qq --autobackup=n --poolmetadatasize 8192K --chunksize 256K --size 9000000K --thin ${vg}/tp_x --virtualsize 9000000K --name brick_x`,
  )
  t.not(tooBig.code, 0, 'lvcreate beyond the VG fails')
  t.match(tooBig.stderr, /Insufficient free space/)

  const missing = await run(`${LVM} lvremove --autobackup=n -f ${vg}/brick_missing`)
  t.match(missing.stderr.toLowerCase(), /failed to find/, 'lvremove of a missing LV says "failed to find"')

  // wipefs on a PV destroys it (heketi's destroydata retry), as with real LVM.
  await sshBatchOk(target, [`wipefs --all ${device}`])
  const gone = await run(`${LVM} vgdisplay -c ${vg}`)
  t.match(gone.stderr, /not found/, 'a wiped PV takes its VG with it')
  t.same((await tb.snapshot())[0].pvs, [], 'no PV left')
}

// Last, so every declaration above is initialised before the suite runs.
if (requireTestbed(t)) await runSuite()
