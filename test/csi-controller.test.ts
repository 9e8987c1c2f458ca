// The CSI Identity and Controller services through a real gRPC client on a
// unix socket, against heqet on the mock executor over HTTP: what a CO sees
// (codes, idempotency, sizes) and what heqet receives (the in-tree
// provisioner's request shape).
import { Client, credentials, status } from '@grpc/grpc-js'
import t from 'tap'
import { MockExecutor } from '../executors/mock.ts'
import { csiFixture, GiB, mountCap } from './helpers/csi.ts'
import { FakeMounter } from './helpers/fake-mounter.ts'

const REPLICA3 = { volumetype: 'replicate:3' }

t.test('identity', async (t) => {
  const { clients, driver } = await csiFixture(t, { mounter: new FakeMounter() })
  const info = await clients.identity.GetPluginInfo()
  t.equal(info.name, 'heqet.gluster.org')
  t.match(info.vendor_version, /^\d+\.\d+\.\d+/)
  const caps = await clients.identity.GetPluginCapabilities()
  t.same(
    caps.capabilities.map((c: any) => c.type),
    ['service', 'volume_expansion'],
  )
  t.equal(caps.capabilities[0].service.type, 'CONTROLLER_SERVICE')
  t.equal(caps.capabilities[1].volume_expansion.type, 'ONLINE')
  t.same((await clients.identity.Probe()).ready, { value: true })
  const ctrl = await clients.controller.ControllerGetCapabilities()
  t.same(
    ctrl.capabilities.map((c: any) => c.rpc.type),
    ['CREATE_DELETE_VOLUME', 'EXPAND_VOLUME', 'LIST_VOLUMES', 'GET_CAPACITY', 'SINGLE_NODE_MULTI_WRITER'],
  )
  // an RPC the driver does not serve (no attach step for gluster)
  const raw = new Client(`unix://${driver.socketPath}`, credentials.createInsecure())
  t.teardown(() => raw.close())
  const unimplemented = await new Promise<any>((resolve) =>
    raw.makeUnaryRequest(
      '/csi.v1.Controller/ControllerPublishVolume',
      () => Buffer.alloc(0),
      (b: Buffer) => b,
      {},
      (err) => resolve(err),
    ),
  )
  t.equal(unimplemented.code, status.UNIMPLEMENTED)
})

t.test('CreateVolume: the in-tree request, idempotent by name', async (t) => {
  const { clients, app } = await csiFixture(t, { mounter: new FakeMounter() })
  const request = {
    name: 'pvc-0d2d2c5e-1c63-4b0a-9f3e-8d1f0c6b7a11',
    capacity_range: { required_bytes: 1.5 * GiB },
    volume_capabilities: [mountCap('MULTI_NODE_MULTI_WRITER')],
    parameters: {
      ...REPLICA3,
      snapfactor: '1.5',
      volumeoptions: 'performance.readdir-ahead off, client.ssl off',
    },
  }
  const first = (await clients.controller.CreateVolume(request)).volume
  t.equal(first.capacity_bytes, 2 * GiB, '1.5 GiB rounds up to 2 GiB, as in-tree')
  t.match(first.volume_id, /^[0-9a-f]{32}$/)
  const v = (await app.call('GET', `/volumes/${first.volume_id}`)).json()
  t.equal(v.name, request.name, 'the heqet volume carries the CSI name')
  t.same(v.durability, { type: 'replicate', replicate: { replica: 3 }, disperse: {} })
  t.equal(v.gid, 2000, 'first gid of the default range')
  t.same(v.snapshot, { enable: true, factor: 1.5 })
  t.same(v.glustervolumeoptions, ['', 'performance.readdir-ahead off', 'client.ssl off', ''])
  const g = v.mount.glusterfs
  const servers = [g.device.split(':')[0], ...g.options['backup-volfile-servers'].split(',')]
  t.same([...servers].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
  t.same(first.volume_context, {
    glusterVolume: request.name,
    glusterServers: servers.join(','),
    heqetCluster: v.cluster,
    gid: '2000',
  })

  const again = (await clients.controller.CreateVolume(request)).volume
  t.equal(again.volume_id, first.volume_id, 'same name and size: the same volume')
  t.equal((await app.call('GET', '/volumes')).json().volumes.length, 1)

  const bigger = { ...request, capacity_range: { required_bytes: 5 * GiB } }
  const err = await clients.controller.CreateVolume(bigger).catch((e: any) => e)
  t.equal(err.code, status.ALREADY_EXISTS)
  t.match(err.details, /already exists with 2 GiB replicate:3/)

  const otherType = { ...request, parameters: { volumetype: 'none' } }
  t.equal((await clients.controller.CreateVolume(otherType).catch((e: any) => e)).code, status.ALREADY_EXISTS)

  const second = (
    await clients.controller.CreateVolume({ ...request, name: 'pvc-second', capacity_range: null })
  ).volume
  t.equal(second.capacity_bytes, GiB, 'no capacity range: 1 GiB')
  t.equal((await app.call('GET', `/volumes/${second.volume_id}`)).json().gid, 2001, 'next free gid')
})

t.test('CreateVolume: parameters as the in-tree plugin read them', async (t) => {
  const { clients, app, topology } = await csiFixture(t, { mounter: new FakeMounter() })
  const create = (name: string, parameters: Record<string, string>, required = GiB) =>
    clients.controller.CreateVolume({
      name,
      capacity_range: { required_bytes: required },
      volume_capabilities: [mountCap()],
      parameters,
    })
  const code = async (p: Promise<unknown>) => ((await p.catch((e: any) => e)) as any).code

  const ec = (await create('ec', { VolumeType: 'disperse:2:1' })).volume
  const ecInfo = (await app.call('GET', `/volumes/${ec.volume_id}`)).json()
  t.same(ecInfo.durability.disperse, { data: 2, redundancy: 1 }, 'keys are case-insensitive')
  t.equal(ecInfo.size, 2, 'a disperse volume is at least 1 GiB per data brick')
  const plain = (await create('plain', { volumetype: 'none' })).volume
  t.equal((await app.call('GET', `/volumes/${plain.volume_id}`)).json().durability.type, 'none')

  const gid = (await create('gids', { gidMin: '5000', gidMax: '5001' })).volume
  t.equal((await app.call('GET', `/volumes/${gid.volume_id}`)).json().gid, 5000)
  await create('gids2', { gidMin: '5000', gidMax: '5001' })
  const full = await create('gids3', { gidMin: '5000', gidMax: '5001' }).catch((e: any) => e)
  t.equal(full.code, status.RESOURCE_EXHAUSTED, 'gid range used up')

  const prefixed = (
    await create('pvc-77', {
      volumenameprefix: 'dept',
      'csi.storage.k8s.io/pvc/name': 'data',
      'csi.storage.k8s.io/pvc/namespace': 'shop',
    })
  ).volume
  t.equal((await app.call('GET', `/volumes/${prefixed.volume_id}`)).json().name, 'dept_shop_data_pvc-77')

  const pinned = (await create('pinned', { clusterid: topology.cluster })).volume
  t.equal(pinned.volume_context.heqetCluster, topology.cluster)
  const wrongCluster = await create('nowhere', { clusterid: 'ffffffffffffffffffffffffffffffff' }).catch(
    (e) => e,
  )
  t.equal(wrongCluster.code, status.INVALID_ARGUMENT)
  t.match(wrongCluster.details, /Cluster id ffffffffffffffffffffffffffffffff not found/)

  t.equal(await code(create('x1', { color: 'blue' })), status.INVALID_ARGUMENT, 'unknown parameter')
  const resturl = await create('x2', { resturl: 'http://heketi:8080' }).catch((e: any) => e)
  t.equal(resturl.code, status.INVALID_ARGUMENT)
  t.match(resturl.details, /in-tree .* --server/)
  t.equal(await code(create('x3', { volumetype: 'mirror:2' })), status.INVALID_ARGUMENT)
  t.equal(await code(create('x4', { volumetype: 'disperse:4' })), status.INVALID_ARGUMENT)
  t.equal(await code(create('x5', { snapfactor: '0.5' })), status.INVALID_ARGUMENT)
  t.equal(await code(create('x6', { volumenameprefix: 'a_b' })), status.INVALID_ARGUMENT)
  t.equal(await code(create('x7', { gidMin: '100' })), status.INVALID_ARGUMENT)
  t.equal(await code(create('x8', { volumetype: 'disperse:3:1' })), status.INVALID_ARGUMENT, 'heqet 400')
  const volumes = (await app.call('GET', '/volumes')).json().volumes
  t.equal(volumes.length, 6, 'no volume for any refused request')
})

t.test('CreateVolume: refused requests', async (t) => {
  const { clients } = await csiFixture(t, { mounter: new FakeMounter() })
  const base = { name: 'v', volume_capabilities: [mountCap()], parameters: REPLICA3 }
  const fail = (req: object) => clients.controller.CreateVolume(req).catch((e: any) => e)
  t.equal((await fail({ ...base, name: '' })).code, status.INVALID_ARGUMENT)
  t.equal((await fail({ ...base, volume_capabilities: [] })).code, status.INVALID_ARGUMENT)
  const block = await fail({
    ...base,
    volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
  })
  t.equal(block.code, status.INVALID_ARGUMENT)
  t.match(block.details, /block access/)
  const ext4 = await fail({
    ...base,
    volume_capabilities: [{ mount: { fs_type: 'ext4' }, access_mode: { mode: 1 } }],
  })
  t.equal(ext4.code, status.INVALID_ARGUMENT)
  const flag = await fail({ ...base, volume_capabilities: [mountCap('SINGLE_NODE_WRITER', ['ro,exec'])] })
  t.equal(flag.code, status.INVALID_ARGUMENT, 'a mount flag cannot carry several options')
  const snap = await fail({ ...base, volume_content_source: { snapshot: { snapshot_id: 'x' } } })
  t.equal(snap.code, status.INVALID_ARGUMENT)
  const limit = await fail({ ...base, capacity_range: { required_bytes: 100, limit_bytes: GiB / 2 } })
  t.equal(limit.code, status.OUT_OF_RANGE, 'no whole GiB under the limit')
  const huge = await fail({ ...base, capacity_range: { required_bytes: 100_000 * GiB } })
  t.equal(huge.code, status.RESOURCE_EXHAUSTED, 'placement failure')
  t.match(huge.details, /^Failed to allocate new volume: No space/, "heqet's explanation")
})

t.test('CreateVolume: CSI names become heqet names', async (t) => {
  const { clients, app } = await csiFixture(t, { mounter: new FakeMounter() })
  const names: string[] = []
  for (const csiName of ['data.v1', 'data_v1', '-lead', 'x'.repeat(128)]) {
    const v = (
      await clients.controller.CreateVolume({
        name: csiName,
        volume_capabilities: [mountCap()],
        parameters: REPLICA3,
      })
    ).volume
    names.push((await app.call('GET', `/volumes/${v.volume_id}`)).json().name)
  }
  t.match(names[0], /^data-v1-[0-9a-f]{8}$/)
  t.equal(names[1], 'data_v1', 'an allowed name stays as it is')
  t.match(names[2], /^v-lead-[0-9a-f]{8}$/, 'never a leading dash')
  t.equal(names[3], 'x'.repeat(128), 'the CSI maximum fits')
  t.equal(new Set(names).size, 4)
})

t.test('ListVolumes, GetCapacity, ValidateVolumeCapabilities', async (t) => {
  const { clients, app } = await csiFixture(t, { mounter: new FakeMounter() })
  const ids: string[] = []
  for (const name of ['a', 'b', 'c']) {
    const req = { name, volume_capabilities: [mountCap()], parameters: REPLICA3 }
    ids.push((await clients.controller.CreateVolume(req)).volume.volume_id)
  }
  ids.sort()
  const all = await clients.controller.ListVolumes({})
  t.same(
    all.entries.map((e: any) => e.volume.volume_id),
    ids,
  )
  t.equal(all.next_token, '')
  const page1 = await clients.controller.ListVolumes({ max_entries: 2 })
  t.same(
    page1.entries.map((e: any) => e.volume.volume_id),
    ids.slice(0, 2),
  )
  t.equal(page1.next_token, ids[2])
  const page2 = await clients.controller.ListVolumes({ max_entries: 2, starting_token: page1.next_token })
  t.same(
    page2.entries.map((e: any) => e.volume.volume_id),
    [ids[2]],
  )
  t.equal(page2.next_token, '')
  const bad = await clients.controller.ListVolumes({ starting_token: 'invalid-token' }).catch((e: any) => e)
  t.equal(bad.code, status.ABORTED)

  // 6 mock devices of HEQET_MOCK_DEVICE_SIZE_GB, 3 volumes of 1 GiB × 3 replicas used
  const free = (await app.call('GET', '/clusters')).json().clusters.length
  t.equal(free, 1)
  const cap3 = (await clients.controller.GetCapacity({ parameters: REPLICA3 })).available_capacity
  const cap1 = (await clients.controller.GetCapacity({ parameters: { volumetype: 'none' } }))
    .available_capacity
  t.ok(cap3 > 0, `capacity ${cap3}`)
  t.equal(Math.round(cap1 / cap3), 3, 'replica 3 costs three times the raw space')

  const ok = await clients.controller.ValidateVolumeCapabilities({
    volume_id: ids[0],
    volume_capabilities: [mountCap('MULTI_NODE_MULTI_WRITER')],
  })
  t.equal(ok.confirmed.volume_capabilities[0].access_mode.mode, 'MULTI_NODE_MULTI_WRITER', 'RWX confirmed')
  const block = await clients.controller.ValidateVolumeCapabilities({
    volume_id: ids[0],
    volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
  })
  t.equal(block.confirmed, null)
  t.match(block.message, /block/)
  const missing = await clients.controller
    .ValidateVolumeCapabilities({ volume_id: 'f'.repeat(32), volume_capabilities: [mountCap()] })
    .catch((e: any) => e)
  t.equal(missing.code, status.NOT_FOUND)
  const noCaps = await clients.controller
    .ValidateVolumeCapabilities({ volume_id: ids[0] })
    .catch((e: any) => e)
  t.equal(noCaps.code, status.INVALID_ARGUMENT)
})

t.test('ControllerExpandVolume and DeleteVolume', async (t) => {
  const { clients, app } = await csiFixture(t, { mounter: new FakeMounter() })
  const { volume } = await clients.controller.CreateVolume({
    name: 'grow',
    volume_capabilities: [mountCap()],
    parameters: REPLICA3,
  })
  const expand = (bytes: number, id = volume.volume_id) =>
    clients.controller.ControllerExpandVolume({ volume_id: id, capacity_range: { required_bytes: bytes } })
  const grown = await expand(3 * GiB)
  t.same(grown, { capacity_bytes: 3 * GiB, node_expansion_required: false })
  t.equal((await app.call('GET', `/volumes/${volume.volume_id}`)).json().size, 3)
  t.same(await expand(2 * GiB), { capacity_bytes: 3 * GiB, node_expansion_required: false }, 'no shrinking')
  t.equal((await expand(GiB, 'f'.repeat(32)).catch((e: any) => e)).code, status.NOT_FOUND)
  t.equal((await expand(GiB, 'no-such-volume').catch((e: any) => e)).code, status.NOT_FOUND)
  const huge = await expand(100_000 * GiB).catch((e: any) => e)
  t.equal(huge.code, status.RESOURCE_EXHAUSTED)
  t.match(huge.details, /^Failed to allocate volume expansion/)
  const noRange = await clients.controller
    .ControllerExpandVolume({ volume_id: volume.volume_id })
    .catch((e: any) => e)
  t.equal(noRange.code, status.INVALID_ARGUMENT)

  await clients.controller.DeleteVolume({ volume_id: volume.volume_id })
  t.same((await app.call('GET', '/volumes')).json().volumes, [], 'gone from heqet')
  await clients.controller.DeleteVolume({ volume_id: volume.volume_id })
  t.pass('deleting it again succeeds')
  await clients.controller.DeleteVolume({ volume_id: 'reallyfakevolumeid' })
  t.pass('a volume id heqet never gave out: nothing to delete')
  t.equal((await clients.controller.DeleteVolume({}).catch((e: any) => e)).code, status.INVALID_ARGUMENT)

  const db = (
    await app.run('POST', '/volumes', { size: 1, name: 'heketidbstorage', durability: { type: 'none' } })
  ).location!.split('/')
  const dbDelete = await clients.controller.DeleteVolume({ volume_id: db.pop() }).catch((e: any) => e)
  t.equal(dbDelete.code, status.FAILED_PRECONDITION, "heqet's 409")
  t.match(dbDelete.details, /Heketi database/)
})

t.test('heqet unreachable or refusing the key', async (t) => {
  const wrongKey = await csiFixture(t, { mounter: new FakeMounter(), secret: 'not-the-key' })
  const err = await wrongKey.clients.controller.ListVolumes({}).catch((e: any) => e)
  t.equal(err.code, status.FAILED_PRECONDITION)
  t.match(err.details, /signature is invalid/)

  const down = await csiFixture(t, { mounter: new FakeMounter() })
  await down.app.app.close()
  const unreachable = await down.clients.controller.ListVolumes({}).catch((e: any) => e)
  t.equal(unreachable.code, status.UNAVAILABLE)
  t.match(unreachable.details, /unreachable/)
  const probe = await down.clients.identity.Probe().catch((e: any) => e)
  t.equal(probe.code, status.FAILED_PRECONDITION)
})

t.test('a call cut short, a call in flight', async (t) => {
  // node actions wait at a gate the test opens: the create stays in flight however slow the machine
  let held: Promise<void> | undefined
  const executor = new MockExecutor({ gate: () => held ?? Promise.resolve() })
  const { clients, app } = await csiFixture(t, { mounter: new FakeMounter(), executor })
  let open = () => {}
  held = new Promise<void>((resolve) => {
    open = resolve
  })
  const request = { name: 'pvc-slow', volume_capabilities: [mountCap()], parameters: REPLICA3 }
  // the CO gives up once heqet holds the create (looked for at most 10 s)
  const accepted = (async () => {
    for (let i = 0; i < 200; i++) {
      if ((await app.call('GET', '/operations')).json().in_flight === 1) return true
      await new Promise((r) => setTimeout(r, 50))
    }
    return false
  })()
  const cut = await clients.controller.CreateVolume(request, { cancelWhen: accepted }).catch((e: any) => e)
  t.ok(await accepted, 'heqet accepted the create')
  t.equal(cut.code, status.CANCELLED, 'the CO gave up')
  t.equal((await app.call('GET', '/operations')).json().in_flight, 1, 'while heqet still creates the volume')
  held = undefined
  open()
  // heqet goes on with the volume; another claim meanwhile must not get its gid
  const other = (await clients.controller.CreateVolume({ ...request, name: 'pvc-other' })).volume
  t.equal(other.volume_context.gid, '2001', 'the gid of the unfinished create stays taken')

  const retried = clients.controller.CreateVolume(request)
  const concurrent = await clients.controller.CreateVolume(request).catch((e: any) => e)
  t.equal(concurrent.code, status.ABORTED, 'a second call for the same name while one is in flight')
  const { volume } = await retried
  t.equal(volume.volume_context.gid, '2000', "the retry is answered with the first call's volume")
  const named = []
  for (const id of (await app.call('GET', '/volumes')).json().volumes) {
    named.push((await app.call('GET', `/volumes/${id}`)).json().name)
  }
  t.same(named.sort(), ['pvc-other', 'pvc-slow'], 'one volume per name')
})
