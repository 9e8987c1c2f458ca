// gluster-block answers read as heketi reads them (node commands §8): which
// stream, FAIL texts, "does not exist", sizes, info and list — through the
// real RemoteExecutor over a scripted runner, so the command lines are
// checked byte for byte too.
import t from 'tap'
import { parseGbSizeGiB } from '../executors/commands/block-output.ts'
import { remoteConfigFromHeketi } from '../executors/config.ts'
import { RecordingRunner } from '../executors/recording.ts'
import { RemoteExecutor } from '../executors/remote.ts'
import type { CommandResult } from '../executors/runner.ts'

function executorAnswering(answer: Partial<CommandResult> | Error) {
  const runner = new RecordingRunner(() => answer)
  return { runner, executor: new RemoteExecutor(runner, remoteConfigFromHeketi({}, {})) }
}

const create = {
  host: 'n1',
  hostingVolume: 'vol_1',
  name: 'bv1',
  haCount: 2,
  auth: true,
  hosts: ['10.0.0.1', '10.0.0.2'],
  sizeGiB: 5,
}

t.test('create: stdout JSON, else stderr; FAIL and unparsable texts; quiet with auth', async (t) => {
  const ok = executorAnswering({
    stdout:
      '{ "IQN": "iqn.2016-12.org.gluster-block:g1", "USERNAME": "g1", "PASSWORD": "pw", "PORTAL(S)": [ "10.0.0.1:3260" ], "RESULT": "SUCCESS" }\n',
  })
  t.same(await ok.executor.blockVolumeCreate(create), {
    iqn: 'iqn.2016-12.org.gluster-block:g1',
    username: 'g1',
    password: 'pw',
  })
  t.same(ok.runner.batches[0]!.commands, [
    "gluster-block create 'vol_1/bv1' ha '2' auth enable prealloc 'full' '10.0.0.1,10.0.0.2' '5GiB' --json",
  ])
  t.equal(ok.runner.batches[0]!.opts.timeoutMinutes, 10)
  t.equal(ok.runner.batches[0]!.opts.quiet, true, 'the answer carries the password')
  const noAuth = executorAnswering({ stdout: '{"IQN":"iqn.x","PORTAL(S)":[],"RESULT":"SUCCESS"}' })
  t.same(await noAuth.executor.blockVolumeCreate({ ...create, auth: false }), {
    iqn: 'iqn.x',
    username: '',
    password: '',
  })
  t.equal(noAuth.runner.batches[0]!.opts.quiet, false)

  const fail = executorAnswering({
    exitCode: 17,
    stderr: '{"RESULT":"FAIL","errCode":17,"errMsg":"BLOCK with name: \'bv1\' already EXIST"}',
  })
  await t.rejects(fail.executor.blockVolumeCreate(create), {
    message: "Failed to create block volume: BLOCK with name: 'bv1' already EXIST",
  })
  const garbage = executorAnswering({ exitCode: 1, stderr: 'Segmentation fault' })
  await t.rejects(garbage.executor.blockVolumeCreate(create), {
    message: 'Unparsable error during block volume create: Segmentation fault',
  })
  const exit = executorAnswering({ exitCode: 3, stdout: '{"RESULT":"SUCCESS"}' })
  await t.rejects(exit.executor.blockVolumeCreate(create), {
    message: 'Failed to create block volume: Process exited with status 3',
  })
  const transport = executorAnswering(new Error('ssh: handshake failed'))
  await t.rejects(transport.executor.blockVolumeCreate(create), { message: 'ssh: handshake failed' })
})

t.test('delete: stderr first; "does not exist" counts as deleted', async (t) => {
  for (const errMsg of ["block bv1 doesn't exist", 'Volume vol_1 does not exist']) {
    const gone = executorAnswering({
      exitCode: 2,
      stderr: JSON.stringify({ RESULT: 'FAIL', errCode: 2, errMsg }),
    })
    await t.resolves(gone.executor.blockVolumeDelete('n1', 'vol_1', 'bv1'), errMsg)
    t.same(gone.runner.batches[0]!.commands, ["gluster-block delete 'vol_1/bv1' --json"])
  }
  // "doesn't exist" naming another block volume is a failure
  const other = executorAnswering({
    exitCode: 2,
    stderr: '{"RESULT":"FAIL","errMsg":"block bv2 doesn\'t exist"}',
  })
  await t.rejects(other.executor.blockVolumeDelete('n1', 'vol_1', 'bv1'), {
    message: "block bv2 doesn't exist",
  })
  const busy = executorAnswering({ exitCode: 1, stderr: '{"RESULT":"FAIL","errMsg":"target busy"}' })
  await t.rejects(busy.executor.blockVolumeDelete('n1', 'vol_1', 'bv1'), { message: 'target busy' })
  const ok = executorAnswering({ stdout: '{"SUCCESSFUL ON":["10.0.0.1"],"RESULT":"SUCCESS"}' })
  await t.resolves(ok.executor.blockVolumeDelete('n1', 'vol_1', 'bv1'))
  const silent = executorAnswering({ exitCode: 255 })
  await t.rejects(silent.executor.blockVolumeDelete('n1', 'vol_1', 'bv1'), {
    message: 'Process exited with status 255',
  })
})

t.test('modify: two spaces before size; FAIL texts', async (t) => {
  const ok = executorAnswering({
    stdout: '{"IQN":"x","SIZE":"10.0 GiB","SUCCESSFUL ON":["a"],"RESULT":"SUCCESS"}',
  })
  await ok.executor.blockVolumeExpand('n1', 'vol_1', 'bv1', 10)
  t.same(ok.runner.batches[0]!.commands, ["gluster-block modify 'vol_1/bv1'  size '10GiB' --json"])
  const fail = executorAnswering({ exitCode: 5, stderr: '{"RESULT":"FAIL","errCode":5,"errMsg":"no space"}' })
  await t.rejects(fail.executor.blockVolumeExpand('n1', 'vol_1', 'bv1', 10), {
    message: 'Failed to expand block volume: no space (see logs for details, and retry the operation)',
  })
  const bare = executorAnswering({ exitCode: 5, stderr: '{"RESULT":"FAIL","errCode":5}' })
  await t.rejects(bare.executor.blockVolumeExpand('n1', 'vol_1', 'bv1', 10), {
    message: 'Failed to expand block volume (see logs for details, and retry the operation)',
  })
  const garbage = executorAnswering({ stdout: 'ok' })
  await t.rejects(garbage.executor.blockVolumeExpand('n1', 'vol_1', 'bv1', 10), {
    message: 'Unparsable error during block volume expand: ok',
  })
})

t.test('info and list', async (t) => {
  const info = executorAnswering({
    stdout: JSON.stringify({
      NAME: 'bv1',
      VOLUME: 'vol_1',
      GBID: 'g-1',
      SIZE: '10.0 GiB',
      HA: 3,
      PASSWORD: 'pw',
      'EXPORTED ON': ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
      'RESIZE FAILED ON': { '10.0.0.3': '5.0 GiB', '10.0.0.2': '8.0 GiB' },
    }),
  })
  t.same(await info.executor.blockVolumeInfo('n1', 'vol_1', 'bv1'), {
    name: 'bv1',
    hostingVolume: 'vol_1',
    gbid: 'g-1',
    sizeGiB: 10,
    ha: 3,
    password: 'pw',
    exportedOn: ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
    resizeFailedOn: { '10.0.0.3': 5, '10.0.0.2': 8 },
    iqn: 'iqn.2016-12.org.gluster-block:g-1',
    username: 'g-1',
    usableSizeGiB: 5,
  })
  t.same(info.runner.batches[0]!.commands, ["gluster-block info 'vol_1/bv1' --json"])
  t.equal(info.runner.batches[0]!.opts.quiet, true)
  const gone = executorAnswering({
    exitCode: 2,
    stderr: '{"RESULT":"FAIL","errMsg":"block vol_1/bv1 doesn\'t exist"}',
  })
  t.equal(await gone.executor.blockVolumeInfo('n1', 'vol_1', 'bv1'), undefined)
  const list = executorAnswering({ stdout: '{"blocks":["bv1","bv2"],"RESULT":"SUCCESS"}' })
  t.same(await list.executor.blockVolumeList('n1', 'vol_1'), ['bv1', 'bv2'])
  t.same(list.runner.batches[0]!.commands, ["gluster-block list 'vol_1' --json"])
})

t.test('sizes as heketi parses them', async (t) => {
  const cases: [string, number][] = [
    ['5.0 GiB', 5],
    ['5GiB', 5],
    ['5.9 G', 5],
    ['1 TiB', 1024],
    ['1.5 TB', 1536],
    ['2 PiB', 2 * 1024 ** 2],
    ['1 eib', 1024 ** 3],
  ]
  for (const [text, gib] of cases) t.equal(parseGbSizeGiB(text), gib, text)
  for (const bad of ['512 MiB', 'GiB', '', '5 GX', 'x GiB'])
    t.throws(() => parseGbSizeGiB(bad), { message: 'Not a valid Size' }, bad)
})
