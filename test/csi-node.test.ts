// The CSI Node service over gRPC with an in-memory mounter: which FUSE mount
// it asks for (server, ':'-separated backup servers, read-only), the bind
// mounts, idempotency, and where the mount info comes from.
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { status } from '@grpc/grpc-js'
import t from 'tap'
import { csiFixture, GiB, mountCap } from './helpers/csi.ts'
import { FakeMounter } from './helpers/fake-mounter.ts'

async function volumeFor(fx: Awaited<ReturnType<typeof csiFixture>>, name = 'pvc-node') {
  return (
    await fx.clients.controller.CreateVolume({
      name,
      capacity_range: { required_bytes: GiB },
      volume_capabilities: [mountCap('MULTI_NODE_MULTI_WRITER')],
      parameters: { volumetype: 'replicate:3' },
    })
  ).volume
}

t.test('stage, publish, unpublish, unstage', async (t) => {
  const mounter = new FakeMounter()
  const fx = await csiFixture(t, { mounter })
  const { node } = fx.clients
  const volume = await volumeFor(fx)
  const staging = join(fx.dir, 'staging')
  const target = join(fx.dir, 'pods', 'target')
  mkdirSync(staging)
  const stage = {
    volume_id: volume.volume_id,
    staging_target_path: staging,
    volume_capability: mountCap('MULTI_NODE_MULTI_WRITER', ['log-level=ERROR']),
    volume_context: volume.volume_context,
  }
  await node.NodeStageVolume(stage)
  const [first, ...backups] = volume.volume_context.glusterServers.split(',')
  t.same(mounter.calls, [
    [
      'mount',
      '-t',
      'glusterfs',
      '-o',
      `backup-volfile-servers=${backups.join(':')},log-level=ERROR`,
      `${first}:/pvc-node`,
      staging,
    ],
  ])
  await node.NodeStageVolume(stage)
  t.equal(mounter.calls.length, 1, 'staged already: nothing mounted twice')

  const publish = {
    volume_id: volume.volume_id,
    staging_target_path: staging,
    target_path: target,
    volume_capability: mountCap('MULTI_NODE_MULTI_WRITER'),
    volume_context: volume.volume_context,
  }
  await node.NodePublishVolume(publish)
  t.ok(existsSync(target), 'the driver creates the target directory')
  t.same(mounter.calls[1], ['mount', '--bind', staging, target])
  await node.NodePublishVolume(publish)
  t.equal(mounter.calls.length, 2, 'published already')
  const ro = await node.NodePublishVolume({ ...publish, readonly: true }).catch((e: any) => e)
  t.equal(ro.code, status.ALREADY_EXISTS, 'the same target read-only is another publication')

  const roTarget = join(fx.dir, 'pods', 'ro')
  await node.NodePublishVolume({ ...publish, target_path: roTarget, readonly: true })
  t.same(mounter.calls.at(-1), ['mount', '--bind', staging, roTarget, '(ro)'])

  const stats = await node.NodeGetVolumeStats({ volume_id: volume.volume_id, volume_path: target })
  t.same(
    stats.usage.map((u: any) => [u.unit, u.total]),
    [
      ['BYTES', 2 * GiB],
      ['INODES', 1000],
    ],
  )
  const expanded = await node.NodeExpandVolume({ volume_id: volume.volume_id, volume_path: target })
  t.equal(expanded.capacity_bytes, 2 * GiB, 'node expansion: nothing to do, the mount sees the size')

  for (const path of [target, roTarget]) {
    await node.NodeUnpublishVolume({ volume_id: volume.volume_id, target_path: path })
    t.notOk(existsSync(path), `${path} removed`)
  }
  await node.NodeUnpublishVolume({ volume_id: volume.volume_id, target_path: target })
  t.pass('unpublishing twice succeeds')
  const statsGone = await node
    .NodeGetVolumeStats({ volume_id: volume.volume_id, volume_path: target })
    .catch((e: any) => e)
  t.equal(statsGone.code, status.NOT_FOUND)

  await node.NodeUnstageVolume({ volume_id: volume.volume_id, staging_target_path: staging })
  await node.NodeUnstageVolume({ volume_id: volume.volume_id, staging_target_path: staging })
  t.equal(mounter.mounts.size, 0, 'nothing left mounted')
  t.ok(existsSync(staging), 'the staging directory belongs to the CO')
  const notStaged = await node.NodePublishVolume(publish).catch((e: any) => e)
  t.equal(notStaged.code, status.FAILED_PRECONDITION)
})

t.test('read-only access modes and refused requests', async (t) => {
  const mounter = new FakeMounter()
  const fx = await csiFixture(t, { mounter })
  const { node } = fx.clients
  const volume = await volumeFor(fx)
  const staging = join(fx.dir, 'staging')
  const base = {
    volume_id: volume.volume_id,
    staging_target_path: staging,
    volume_capability: mountCap('MULTI_NODE_READER_ONLY'),
    volume_context: volume.volume_context,
  }
  await node.NodeStageVolume(base)
  t.match(mounter.calls[0]!.join(' '), /-o backup-volfile-servers=[0-9.:]+,ro /)
  await node.NodeUnstageVolume(base)

  const code = async (p: Promise<unknown>) => ((await p.catch((e: any) => e)) as any).code
  t.equal(await code(node.NodeStageVolume({ ...base, volume_id: '' })), status.INVALID_ARGUMENT)
  t.equal(await code(node.NodeStageVolume({ ...base, staging_target_path: '' })), status.INVALID_ARGUMENT)
  t.equal(await code(node.NodeStageVolume({ ...base, volume_capability: null })), status.INVALID_ARGUMENT)
  t.equal(
    await code(node.NodeStageVolume({ ...base, staging_target_path: `${staging}/../../etc` })),
    status.INVALID_ARGUMENT,
  )
  t.equal(
    await code(node.NodeStageVolume({ ...base, staging_target_path: `${staging} x` })),
    status.INVALID_ARGUMENT,
    'no spaces in mount paths',
  )
  t.equal(
    await code(node.NodeStageVolume({ ...base, volume_id: 'f'.repeat(32) })),
    status.NOT_FOUND,
    'heqet does not know the volume',
  )
  t.equal(await code(node.NodePublishVolume({ volume_id: 'x' })), status.INVALID_ARGUMENT)
  t.equal(await code(node.NodeUnpublishVolume({ volume_id: 'x' })), status.INVALID_ARGUMENT)
  t.equal(await code(node.NodeUnstageVolume({ staging_target_path: staging })), status.INVALID_ARGUMENT)
  t.equal(await code(node.NodeGetVolumeStats({ volume_path: 'some/path' })), status.INVALID_ARGUMENT)
  t.equal(await code(node.NodeGetVolumeStats({ volume_id: 'x', volume_path: 'some/path' })), status.NOT_FOUND)
  t.equal(await code(node.NodeExpandVolume({ volume_id: 'x', volume_path: 'some/path' })), status.NOT_FOUND)

  mounter.failNextMount = 'Mount failed. Check the log file for more details.'
  const failed = await node.NodeStageVolume(base).catch((e: any) => e)
  t.equal(failed.code, status.INTERNAL)
  t.match(failed.details, /Mount failed/, 'the mount error reaches the CO')
  t.equal(mounter.mounts.size, 0)

  const info = await node.NodeGetInfo()
  t.same(info, { node_id: 'node-a', max_volumes_per_node: 0, accessible_topology: null })
  const caps = await node.NodeGetCapabilities()
  t.same(
    caps.capabilities.map((c: any) => c.rpc.type),
    ['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'EXPAND_VOLUME', 'SINGLE_NODE_MULTI_WRITER'],
  )
})

t.test('a node without --server mounts from the volume_context', async (t) => {
  const controller = await csiFixture(t, { mounter: new FakeMounter() })
  const volume = await volumeFor(controller, 'ctx-vol')
  const mounter = new FakeMounter()
  const nodeOnly = await csiFixture(t, { mounter, mode: 'node', nodeClient: false })
  const caps = await nodeOnly.clients.identity.GetPluginCapabilities()
  t.same(caps.capabilities, [], 'a node-only plugin offers no controller')
  const staging = join(nodeOnly.dir, 'staging')
  await nodeOnly.clients.node.NodeStageVolume({
    volume_id: volume.volume_id,
    staging_target_path: staging,
    volume_capability: mountCap(),
    volume_context: volume.volume_context,
  })
  t.match(mounter.calls[0]!.join(' '), /-o backup-volfile-servers=[0-9.]+:[0-9.]+ [0-9.]+:\/ctx-vol /)
  const none = await nodeOnly.clients.node
    .NodeStageVolume({
      volume_id: volume.volume_id,
      staging_target_path: join(nodeOnly.dir, 'other'),
      volume_capability: mountCap(),
    })
    .catch((e: any) => e)
  t.equal(none.code, status.FAILED_PRECONDITION)
  t.match(none.details, /no gluster mount info/)
  const ctrl = await nodeOnly.clients.controller.ListVolumes({}).catch((e: any) => e)
  t.equal(ctrl.code, status.UNIMPLEMENTED, 'no Controller service in node mode')
})
