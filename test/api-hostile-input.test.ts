// Request text that would reach a node command (issue 8, items 1–3): the
// reported values are refused with 400 before anything is reserved, and
// generated hostile values are either refused with 400 or, once accepted,
// reach the real program through bash as one unchanged argument.
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { deviceSetupCommands } from '../executors/commands/device.ts'
import {
  peerProbeCommand,
  snapshotCloneCommand,
  volumeCreateCommands,
  volumeSetCommand,
} from '../executors/commands/gluster.ts'
import { DEFAULT_REMOTE_EXECUTOR_CONFIG } from '../executors/config.ts'
import type { BrickRequest, VolumeRequest } from '../executors/executor.ts'
import { MockExecutor } from '../executors/mock.ts'
import { makeApp, makeTopology, type TestApp } from './helpers/app.ts'
import { ArgvStub, type Invocation } from './helpers/argv-stub.ts'
import { hostileOption, hostileString, hostileWithPrefix, joinedWords } from './helpers/hostile.ts'

const cfg = { ...DEFAULT_REMOTE_EXECUTOR_CONFIG, lvmWrapper: 'stubwrap' }
const G = ['--mode=script', '--timeout=600']
const DID = 'd'.repeat(32)
const VID = 'e'.repeat(32)

/** everything a refused request could have left behind */
async function state(app: TestApp) {
  return {
    dump: (await app.call('GET', '/db/dump')).body,
    operations: (await app.call('GET', '/operations')).json(),
  }
}

async function refusedUpFront(
  t: Test,
  app: TestApp,
  req: { method: string; path: string; body: unknown; iss?: string },
  text: RegExp,
  what: string,
) {
  const before = await state(app)
  const res = await app.call(req.method, req.path, req.body, { iss: req.iss })
  t.equal(res.statusCode, 400, `${what}: 400`)
  t.match(res.body, text, `${what}: ${res.body.trim()}`)
  t.same(await state(app), before, `${what}: nothing stored, reserved or journaled`)
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0, `${what}: db check clean`)
}

t.test('values reported in issue 8 are refused with 400 before anything is reserved', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 3, devices: 1 })
  const source = await app.run('POST', '/volumes', { size: 1 })
  t.equal(source.statusCode, 303)
  const sourceId = source.location!.split('/').pop()!

  const nameText = /^validation failed: name: must be in a valid format\.\n$/
  await refusedUpFront(
    t,
    app,
    { method: 'POST', path: '/volumes', body: { size: 1, name: '--version' }, iss: 'user' },
    nameText,
    'volume named --version (user token)',
  )
  for (const name of ['-v', '--help', '-']) {
    await refusedUpFront(
      t,
      app,
      { method: 'POST', path: '/volumes', body: { size: 1, name } },
      nameText,
      name,
    )
  }
  await refusedUpFront(
    t,
    app,
    { method: 'POST', path: `/volumes/${sourceId}/clone`, body: { name: '--version' } },
    nameText,
    'clone named --version',
  )

  for (const option of [
    '--log-file=/tmp/heqet-owned',
    'performance.readdir-ahead --log-file=/tmp/heqet-owned',
    '--remote-host=1.2.3.4',
    'a --remote-host=1.2.3.4',
    'a;b',
    'a b;reboot',
    'a *',
    'a ?',
    'a [ab]',
    'a {,x}',
    'a ~',
    'a #',
    'a $(id)',
    'a `id`',
    'a b\nc d',
    'performance.readdir-ahead',
  ]) {
    await refusedUpFront(
      t,
      app,
      { method: 'POST', path: '/volumes', body: { size: 1, glustervolumeoptions: ['', option] } },
      /^validation failed: glustervolumeoptions: ".*" (must be|has an invalid)/,
      `option ${JSON.stringify(option)}`,
    )
  }

  for (const host of ['node_1', '-rf', '--help', 'a b', 'host.', '1.2.3.4;x', 'fe80::1%eth0']) {
    for (const kind of ['manage', 'storage'] as const) {
      const hostnames = { manage: ['ok.example.com'], storage: ['10.9.9.9'], [kind]: [host] }
      await refusedUpFront(
        t,
        app,
        { method: 'POST', path: '/nodes', body: { zone: 1, cluster: topo.cluster, hostnames } },
        new RegExp(
          `^validation failed: hostnames: \\(${kind}: \\[.*\\] is not a valid ${kind} hostname\\.\\)\\.\\n$`,
        ),
        `${kind} host ${JSON.stringify(host)}`,
      )
    }
  }

  for (const name of [
    '/dev/../../etc',
    '/dev/../etc/passwd',
    '/etc/passwd',
    '/dev//sdb',
    '/dev/sdb/',
    '/dev/./sdb',
  ]) {
    await refusedUpFront(
      t,
      app,
      { method: 'POST', path: '/devices', body: { name, node: topo.nodes[0] } },
      /^validation failed: name: must be in a valid format\.\n$/,
      `device ${name}`,
    )
  }
})

/** the single invocation `commands[i]` made, or a description of what went wrong */
function only(runs: Invocation[][], i: number): Invocation | string {
  const run = runs[i] ?? []
  return run.length === 1 ? run[0]! : `${run.length} invocations: ${JSON.stringify(run)}`
}

t.test('generated request values: 400, or one unchanged argument on the node', async (t) => {
  const app = await makeApp(t)
  const topo = await makeTopology(app, { nodes: 1, devices: 1 })
  const source = (await app.run('POST', '/volumes', { size: 1 })).location!.split('/').pop()!
  const stub = new ArgvStub()
  t.teardown(() => stub.close())
  const counts: Record<string, { refused: number; accepted: number }> = {}

  /** each accepted value builds these commands; bash must hand each program exactly `expected` */
  async function check(
    kind: string,
    status: number,
    value: string,
    build: () => string[],
    expected: (value: string) => Invocation[],
  ): Promise<void> {
    counts[kind] ??= { refused: 0, accepted: 0 }
    const count = counts[kind]
    if (status === 400) {
      count.refused++
      return
    }
    count.accepted++
    const commands = build()
    const want = expected(value)
    for (const sudo of [false, true]) {
      const runs = stub.run(commands, { sudo })
      want.forEach((w, i) => {
        const got = only(runs, i)
        if (JSON.stringify(got) !== JSON.stringify(w))
          throw new Error(
            `${JSON.stringify(value)} was accepted (${status}) but ran as ${JSON.stringify(got)}`,
          )
      })
    }
  }

  // '' asks for the default name (vol_<id>), so it is not a value that reaches a command
  const names = fc
    .oneof(hostileString, hostileWithPrefix(['vol', '-', '--']), joinedWords('', '_'))
    .filter((n) => n !== '')
  await fc.assert(
    fc.asyncProperty(names, async (name) => {
      const res = await app.run('POST', '/volumes', { size: 1, name })
      await check(
        'volume name',
        res.statusCode,
        name,
        () =>
          volumeCreateCommands(cfg, {
            id: VID,
            name,
            durability: { type: 'none' },
            bricks: [{ storageHost: 'h', path: '/p/brick' }],
            options: [],
          }),
        (v) => [
          { program: 'gluster', args: [...G, 'volume', 'create', v, 'h:/p/brick'] },
          { program: 'gluster', args: [...G, 'volume', 'set', v, 'user.heketi.id', VID] },
          { program: 'gluster', args: [...G, 'volume', 'start', v] },
        ],
      )
      const clone = await app.call('POST', `/volumes/${source}/clone`, { name })
      await check(
        'clone name',
        clone.statusCode,
        name,
        () => [snapshotCloneCommand(cfg, name, 'tmpsnap_1')],
        (v) => [{ program: 'gluster', args: [...G, '--xml', 'snapshot', 'clone', v, 'tmpsnap_1'] }],
      )
      if (clone.statusCode === 202) await app.run('GET', clone.headers['location'] as string)
    }),
    { numRuns: 60 },
  )

  await fc.assert(
    fc.asyncProperty(
      hostileOption.filter((o) => o !== ''),
      async (option) => {
        const res = await app.run('POST', '/volumes', { size: 1, glustervolumeoptions: [option] })
        await check(
          'gluster option',
          res.statusCode,
          option,
          () => [volumeSetCommand(cfg, 'v', option)],
          (o) => [
            {
              program: 'gluster',
              args: [...G, 'volume', 'set', 'v', o.slice(0, o.indexOf(' ')), o.slice(o.indexOf(' ') + 1)],
            },
          ],
        )
      },
    ),
    { numRuns: 80 },
  )

  const hosts = fc.oneof(
    hostileString,
    hostileWithPrefix(['node', '10.0.0.', 'fd00::', '-']),
    joinedWords('', '.'),
  )
  await fc.assert(
    fc.asyncProperty(hosts, async (host) => {
      const res = await app.run('POST', '/nodes', {
        zone: 1,
        cluster: topo.cluster,
        hostnames: { manage: [host], storage: [host] },
      })
      await check(
        'hostname',
        res.statusCode,
        host,
        () => [
          peerProbeCommand(cfg, host),
          ...volumeCreateCommands(cfg, {
            id: VID,
            name: 'v',
            durability: { type: 'none' },
            bricks: [{ storageHost: host, path: '/p/brick' }],
            options: [],
          }).slice(0, 1),
        ],
        (h) => [
          { program: 'gluster', args: [...G, 'peer', 'probe', h] },
          { program: 'gluster', args: [...G, 'volume', 'create', 'v', `${h}:/p/brick`] },
        ],
      )
    }),
    { numRuns: 60 },
  )

  const devices = fc.oneof(
    hostileString,
    hostileWithPrefix(['/dev/', '/dev/disk/by-id/', '/', '/dev/..']),
    joinedWords('/dev/', '/'),
  )
  await fc.assert(
    fc.asyncProperty(devices, async (device) => {
      const res = await app.run('POST', '/devices', { name: device, node: topo.nodes[0] })
      await check(
        'device name',
        res.statusCode,
        device,
        () => deviceSetupCommands(cfg, DID, device, true),
        (d) => [
          { program: 'wipefs', args: ['--all', d] },
          {
            program: 'stubwrap',
            args: ['/usr/sbin/lvm', 'pvcreate', '-qq', '--metadatasize=128M', '--dataalignment=256K', d],
          },
          {
            program: 'stubwrap',
            args: [
              '/usr/sbin/lvm',
              'vgcreate',
              '-qq',
              '--physicalextentsize=4M',
              '--autobackup=n',
              `vg_${DID}`,
              d,
            ],
          },
        ],
      )
    }),
    { numRuns: 60 },
  )

  for (const [kind, { refused, accepted }] of Object.entries(counts)) {
    t.ok(refused >= 5, `${kind}: ${refused} generated values refused with 400`)
    t.ok(accepted >= 3, `${kind}: ${accepted} generated values accepted, each ran as one unchanged argument`)
  }
  t.equal(Object.keys(counts).length, 5, 'every kind was exercised')
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0, 'db check clean afterwards')
  t.equal((await app.call('GET', '/operations')).json().total, 0, 'no pending operation left')
})

/** a node-side view as from an old DB: the builder refuses the stored volume name */
class RefusingExecutor extends MockExecutor {
  readonly calls = { brickCreate: 0, brickDestroy: 0, volumeCreate: 0 }
  override async brickCreate(req: BrickRequest): Promise<void> {
    this.calls.brickCreate++
    return super.brickCreate(req)
  }
  override async brickDestroy(req: BrickRequest): Promise<{ spaceReclaimed: boolean }> {
    this.calls.brickDestroy++
    return super.brickDestroy(req)
  }
  override async volumeCreate(req: VolumeRequest): Promise<void> {
    this.calls.volumeCreate++
    volumeCreateCommands(cfg, { ...req, name: '--version' })
    return super.volumeCreate(req)
  }
}

t.test('a value the command builder refuses fails the create once, without retries', async (t) => {
  const executor = new RefusingExecutor()
  const app = await makeApp(t, { executor })
  await makeTopology(app, { nodes: 3, devices: 1 })
  t.ok(app.ctx.config.volumeCreateRetries > 0, 'creates are normally retried')
  const res = await app.run('POST', '/volumes', { size: 1 })
  t.equal(res.statusCode, 500)
  t.equal(res.body, 'refusing to build node command: invalid volume name "--version"\n')
  t.same(executor.calls, { brickCreate: 1, brickDestroy: 1, volumeCreate: 1 }, 'one attempt, bricks undone')
  t.same((await app.call('GET', '/volumes')).json(), { volumes: [] })
  t.equal((await app.call('GET', '/operations')).json().total, 0, 'no pending operation left')
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0, 'db check clean')
})
