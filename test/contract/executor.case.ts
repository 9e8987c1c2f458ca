// The executor contract: ONE suite every Executor passes (mock in-process,
// ssh and kube on a real testbed). A new executor is correct when this runs
// green; each implementation's test file only says how to make one.
//
// What an executor must answer so the same asserts hold everywhere:
// * deviceSetup/deviceInfo: integer KiB sizes, totalKiB = freeKiB + usedKiB,
//   totalKiB > 0, extentSizeKiB > 0 (pvUuid and paths may be empty, as in
//   heketi's mock).
// * brickDestroy of a brick that was the only user of its thin pool reports
//   spaceReclaimed: true.
// * volumeInfo after volumeCreate/volumeExpand lists the volume's bricks in
//   gluster order, named `<storage host>:<brick path>` exactly as requested
//   (the mock must remember the bricks it was given, not answer /mockpath).
// * volumeDestroy of a volume that does not exist resolves; after a destroy,
//   volume info fails or no longer lists the volume's bricks.
// * peerProbe of a node's storage host and peerDetach of it resolve.
// * rebalanceStart after an expand resolves (a second one too: one already
//   runs or ran), rebalanceStatus then reports it done and completed within
//   two minutes, and rebalanceStop of a finished rebalance resolves.
// * gluster-block in a replica-3 volume: create answers a non-empty IQN (and
//   username/password with auth), list and info show the block volume with
//   its size, HA count and export hosts; expand changes the size info reports;
//   after delete, list and info no longer know it, and a second delete resolves.
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import type { BrickRequest, DeviceInfo, DeviceRef, Executor, VolumeBrick } from '../../executors/executor.ts'

export interface ContractHost {
  /** manage hostname: where commands run */
  manage: string
  /** storage hostname: how gluster names the node */
  storage: string
  /** unused block devices the suite may initialize and wipe */
  devices: string[]
}

export interface ContractSubject {
  executor: Executor
  /** at least 3 hosts, each with at least one device */
  hosts: ContractHost[]
  cleanup(): Promise<void>
}

export interface ContractOptions {
  make(): ContractSubject | Promise<ContractSubject>
  /** brick size used by the suite (default 1 GiB; XFS needs ~300 MiB at least) */
  brickSizeKiB?: number
  /**
   * run the gluster-block case (default true). It makes a 1 GiB block volume
   * and grows it to 2 GiB, so on real nodes with `prealloc full` the bricks
   * need about 3 GiB.
   */
  block?: boolean
}

/** hosts for in-process executors that contact no node */
export function contractHosts(count = 3): ContractHost[] {
  return Array.from({ length: count }, (_, i) => ({
    manage: `node${i + 1}.example.com`,
    storage: `10.0.0.${i + 11}`,
    devices: ['/dev/sdb', '/dev/sdc'],
  }))
}

const newId = () => randomBytes(16).toString('hex')

/** heketi's allocation §5.4 with snapshot factor 1 */
function thinPoolSizes(sizeKiB: number, extentKiB: number) {
  const roundUp = (x: number) => (x % extentKiB === 0 ? x : x + extentKiB - (x % extentKiB))
  const tp = roundUp(sizeKiB)
  const meta = roundUp(Math.min(Math.trunc(tp * 0.005), 16777216))
  return { tpSizeKiB: tp, poolMetadataSizeKiB: meta }
}

function brickOn(host: ContractHost, dev: DeviceRef, info: DeviceInfo, sizeKiB: number): BrickRequest {
  const brickId = newId()
  return {
    host: host.manage,
    brickId,
    deviceId: dev.deviceId,
    path: `/var/lib/heketi/mounts/vg_${dev.deviceId}/brick_${brickId}/brick`,
    sizeKiB,
    ...thinPoolSizes(sizeKiB, info.extentSizeKiB),
    lvmThinPool: `tp_${brickId}`,
    lvmLv: '',
    gid: 0,
    arbiter: false,
  }
}

function assertSizes(t: Test, info: DeviceInfo, what: string): void {
  for (const key of ['totalKiB', 'freeKiB', 'usedKiB', 'extentSizeKiB'] as const) {
    t.ok(Number.isSafeInteger(info[key]) && info[key] >= 0, `${what}: ${key} is a non-negative integer`)
  }
  t.ok(info.totalKiB > 0, `${what}: total > 0`)
  t.equal(info.totalKiB, info.freeKiB + info.usedKiB, `${what}: total = free + used`)
  t.ok(info.extentSizeKiB > 0, `${what}: extent size > 0`)
  t.type(info.pvUuid, 'string')
  t.ok(Array.isArray(info.paths), `${what}: paths is a list`)
}

export function runExecutorContract(
  t: Test,
  { make, brickSizeKiB = 1048576, block = true }: ContractOptions,
): void {
  /** run a case with a fresh subject; undo steps run last-in first-out, errors reported */
  const withSubject = (
    name: string,
    body: (t: Test, s: ContractSubject, undo: (fn: () => Promise<unknown>) => void) => Promise<void>,
  ) =>
    t.test(name, async (t) => {
      const subject = await make()
      const undos: (() => Promise<unknown>)[] = []
      let bodyPassed = false
      try {
        await body(t, subject, (fn) => undos.push(fn))
        bodyPassed = true
      } finally {
        for (const fn of undos.reverse()) {
          // after a passing body, clean-up is part of the contract; after a failure it is noise
          await fn().catch((err: Error) => {
            if (bodyPassed) t.fail(`clean-up: ${err.message}`)
            else t.comment(`clean-up: ${err.message}`)
          })
        }
        await subject.cleanup()
      }
    })

  const setupDevice = async (executor: Executor, host: ContractHost, index = 0) => {
    const device = host.devices[index]
    const deviceId = newId()
    const info = await executor.deviceSetup({ host: host.manage, device, deviceId, destroyData: false })
    const ref: DeviceRef = { host: host.manage, device, deviceId, pvUuid: info.pvUuid, paths: info.paths }
    return { info, ref }
  }

  withSubject('glusterd check succeeds on every host', async (t, { executor, hosts }) => {
    for (const host of hosts) await t.resolves(executor.glusterdCheck(host.manage), host.manage)
  })

  withSubject(
    'device setup reports sizes, resync agrees, teardown succeeds',
    async (t, { executor, hosts }) => {
      const { info, ref } = await setupDevice(executor, hosts[0])
      let tornDown = false
      try {
        assertSizes(t, info, 'setup')
        t.ok(info.freeKiB > 0, 'a fresh device has free space')
        const resync = await executor.deviceInfo(ref)
        assertSizes(t, resync, 'resync')
        t.equal(resync.totalKiB, info.totalKiB, 'resync reports the same total')
        await executor.deviceTeardown(ref, false) // a rejection fails the case
        tornDown = true
      } finally {
        if (!tornDown)
          await executor
            .deviceTeardown(ref, true)
            .catch((err: Error) => t.comment(`clean-up after a failure: ${err.message}`))
      }
    },
  )

  withSubject('brick create and destroy round trip reclaims space', async (t, { executor, hosts }, undo) => {
    const { info, ref } = await setupDevice(executor, hosts[0])
    undo(() => executor.deviceTeardown(ref, false))
    const brick = brickOn(hosts[0], ref, info, brickSizeKiB)
    await executor.brickCreate(brick)
    const { spaceReclaimed } = await executor.brickDestroy(brick)
    t.equal(spaceReclaimed, true, 'the thin pool went away with its only brick')
  })

  withSubject(
    'replica-3 volume over 3 hosts: create, info, expand, destroy',
    async (t, { executor, hosts }, undo) => {
      t.ok(hosts.length >= 3, 'the subject offers at least 3 hosts')
      const three = hosts.slice(0, 3)
      for (const peer of three.slice(1)) await executor.peerProbe(three[0].manage, peer.storage)

      const devices: { host: ContractHost; info: DeviceInfo; ref: DeviceRef }[] = []
      for (const host of three) {
        const { info, ref } = await setupDevice(executor, host)
        undo(() => executor.deviceTeardown(ref, false))
        devices.push({ host, info, ref })
      }
      const createBricks = async () => {
        const requests = devices.map(({ host, info, ref }) => brickOn(host, ref, info, brickSizeKiB))
        for (const req of requests) {
          await executor.brickCreate(req)
          undo(() => executor.brickDestroy(req))
        }
        return requests.map((req, i): VolumeBrick => ({ storageHost: three[i].storage, path: req.path }))
      }
      const name = `vol_${newId()}`
      const volume = (bricks: VolumeBrick[]) => ({
        host: three[0].manage,
        id: name.slice(4),
        name,
        durability: { type: 'replicate' as const, replica: 3, arbiter: false },
        bricks,
        options: ['performance.readdir-ahead off'],
      })

      const first = await createBricks()
      await executor.volumeCreate(volume(first))
      undo(() => executor.volumeDestroy(three[0].manage, name))
      const info = await executor.volumeInfo(three[0].manage, name)
      t.equal(info.name, name)
      t.same(
        info.bricks.map((b) => b.name),
        first.map((b) => `${b.storageHost}:${b.path}`),
        'info lists the 3 bricks in order',
      )

      const added = await createBricks()
      await executor.volumeExpand(volume(added))
      const expanded = await executor.volumeInfo(three[0].manage, name)
      t.same(
        expanded.bricks.map((b) => b.name),
        [...first, ...added].map((b) => `${b.storageHost}:${b.path}`),
        'info lists 6 bricks after expansion',
      )
      t.ok(Array.isArray(await executor.healInfo(three[0].manage, name)), 'heal info is a list')

      // the rebalance an expand owes: started, then reported over (bounded: 2 minutes)
      await executor.rebalanceStart(three[0].manage, name)
      await t.resolves(
        executor.rebalanceStart(three[0].manage, name),
        'a second start while one runs (or ran) resolves',
      )
      let status = await executor.rebalanceStatus(three[1].manage, name)
      for (let i = 0; i < 480 && !status.done; i++) {
        await new Promise((r) => setTimeout(r, 250))
        status = await executor.rebalanceStatus(three[1].manage, name)
      }
      t.same(
        [status.state, status.running, status.done, status.failed],
        ['completed', false, true, false],
        'rebalance completed',
      )
      await t.resolves(
        executor.rebalanceStop(three[0].manage, name),
        'stopping a finished rebalance resolves',
      )

      await executor.volumeDestroy(three[0].manage, name)
      // gone: `volume info` fails, or (the mock, like heketi's, answers any
      // name) no longer lists the volume's bricks
      const after = await executor.volumeInfo(three[0].manage, name).catch(() => undefined)
      const ours = new Set([...first, ...added].map((b) => `${b.storageHost}:${b.path}`))
      t.notOk(
        after?.bricks.some((b) => ours.has(b.name)),
        'after destroy, volume info no longer lists the volume',
      )
    },
  )

  withSubject('destroying a volume that does not exist resolves', async (t, { executor, hosts }) => {
    await t.resolves(executor.volumeDestroy(hosts[0].manage, `vol_${newId()}`))
  })

  withSubject('peer probe and detach', async (t, { executor, hosts }) => {
    await t.resolves(executor.peerProbe(hosts[0].manage, hosts[1].storage), 'probe')
    await t.resolves(executor.peerDetach(hosts[0].manage, hosts[1].storage), 'detach')
    await t.resolves(
      executor.peerProbe(hosts[0].manage, hosts[1].storage),
      'probe again (leave the cluster whole)',
    )
  })

  if (!block) return

  withSubject(
    'gluster-block in a replica-3 volume: create, list, info, expand, delete',
    async (t, { executor, hosts }, undo) => {
      const three = hosts.slice(0, 3)
      for (const peer of three.slice(1)) await executor.peerProbe(three[0].manage, peer.storage)
      const bricks: VolumeBrick[] = []
      for (const host of three) {
        const { info, ref } = await setupDevice(executor, host)
        undo(() => executor.deviceTeardown(ref, false))
        const req = brickOn(host, ref, info, brickSizeKiB)
        await executor.brickCreate(req)
        undo(() => executor.brickDestroy(req))
        bricks.push({ storageHost: host.storage, path: req.path })
      }
      const bhv = `vol_${newId()}`
      const manage = three[0].manage
      await executor.volumeCreate({
        host: manage,
        id: bhv.slice(4),
        name: bhv,
        durability: { type: 'replicate', replica: 3, arbiter: false },
        bricks,
        options: [],
      })
      undo(() => executor.volumeDestroy(manage, bhv))

      const name = `blockvol_${newId()}`
      const exportHosts = three.map((h) => h.storage)
      const created = await executor.blockVolumeCreate({
        host: manage,
        hostingVolume: bhv,
        name,
        haCount: 3,
        auth: true,
        hosts: exportHosts,
        sizeGiB: 1,
      })
      undo(() => executor.blockVolumeDelete(manage, bhv, name))
      t.ok(created.iqn.length > 0, 'create answers an IQN')
      t.ok(created.username.length > 0 && created.password.length > 0, 'auth: username and password')
      t.same(await executor.blockVolumeList(manage, bhv), [name], 'list shows the block volume')
      const info = await executor.blockVolumeInfo(manage, bhv, name)
      t.equal(info?.name, name)
      t.equal(info?.sizeGiB, 1, 'info: size')
      t.equal(info?.ha, 3, 'info: HA count')
      t.same([...(info?.exportedOn ?? [])].sort(), [...exportHosts].sort(), 'info: exported on the hosts')

      await executor.blockVolumeExpand(manage, bhv, name, 2)
      const grown = await executor.blockVolumeInfo(manage, bhv, name)
      t.equal(grown?.sizeGiB, 2, 'info after expand: the new size')
      t.equal(grown?.usableSizeGiB, 2, 'usable everywhere')

      await executor.blockVolumeDelete(manage, bhv, name)
      t.same(await executor.blockVolumeList(manage, bhv), [], 'list after delete: empty')
      t.equal(await executor.blockVolumeInfo(manage, bhv, name), undefined, 'info after delete: gone')
      await t.resolves(executor.blockVolumeDelete(manage, bhv, name), 'deleting it again resolves')
    },
  )
}
