// Block volumes on the real testbed (issue 13 item 4). One testbed, three
// parts:
//  1. the gluster-block stand-in itself (fixtures/usr/sbin/gluster-block),
//     run directly on a node against a block-hosting volume: the argv forms
//     heketi sends are accepted, anything else is refused as gluster-block
//     would, the JSON is gluster-block's, the block file is really on the
//     bricks and every node sees the same block volumes;
//  2. the scenario through heqet's REST API: block volume create
//     (auto-creating its block-hosting volume), file on the bricks, expand,
//     delete, hosting volume delete, nothing left, nodes agree with the DB;
//  3. one fault per gluster-block command (fails once, times out once):
//     no half-made block volume, /db/check clean.
import t, { type Test } from 'tap'
import { InjectingRunner, Injector } from '../../executors/inject.ts'
import type { BatchOptions, CommandResult, CommandRunner } from '../../executors/runner.ts'
import { makeApp, type TestApp } from '../helpers/app.ts'
import { compareNodesWithDb, type HeketiDump } from './lib/agreement.ts'
import { remoteExecutor, sshRunner } from './lib/heqet.ts'
import { createTestbed, requireTestbed, type Testbed, type TestNode } from './lib/testbed.ts'

const GIB = 1024 ** 3
const IQN_PREFIX = 'iqn.2016-12.org.gluster-block:'

/** Runs a command line on a node, as heketi's executor would (bash -c). */
async function gb(node: TestNode, args: string) {
  return node.exec(`gluster-block ${args}`)
}

/** Records every command heqet sends (to check gluster-block's argv byte for byte). */
class RecordingRunner implements CommandRunner {
  readonly commands: { host: string; command: string }[] = []
  constructor(private readonly inner: CommandRunner) {}
  runBatch(host: string, commands: string[], opts: BatchOptions): Promise<CommandResult[]> {
    for (const command of commands) this.commands.push({ host, command })
    return this.inner.runBatch(host, commands, opts)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

interface BrickPlace {
  node: TestNode
  path: string
}

/** The bricks of a gluster volume, read from gluster itself. */
async function bricksOf(tb: Testbed, volume: string): Promise<BrickPlace[]> {
  const res = await tb.nodes[0]!.exec(`gluster --mode=script volume info ${volume}`)
  if (res.code !== 0) throw new Error(`volume info ${volume}: ${res.stderr}`)
  return [...res.stdout.matchAll(/^Brick\d+: ([^:]+):(\S+)$/gm)].map((m) => {
    const node = tb.nodes.find((n) => n.ip === m[1])
    if (!node) throw new Error(`brick on unknown host ${m[1]}`)
    return { node, path: m[2]! }
  })
}

interface OnBrick {
  /** the block file exists under block-store/ on the brick */
  exists: boolean
  /** the file size gluster's shard translator records (the block size) */
  sizeBytes: number
  /** space the brick really spends on the file: its first shard and the .shard pieces */
  allocatedBytes: number
}

/**
 * The block file as one brick holds it. The hosting volume is sharded
 * (`group gluster-block`): the brick has the file's first shard, its size in
 * the trusted.glusterfs.shard.file-size xattr, the rest in .shard/<gfid>.N.
 */
async function blockFileOnBrick(b: BrickPlace, gbid: string): Promise<OnBrick> {
  const script = `
import os, sys
brick, gbid = sys.argv[1], sys.argv[2]
f = os.path.join(brick, "block-store", gbid)
if not os.path.exists(f):
    print("missing 0 0"); sys.exit(0)
size = os.stat(f).st_size
try:
    size = int.from_bytes(os.getxattr(f, "trusted.glusterfs.shard.file-size")[:8], "big")
except OSError:
    pass
gfid = os.getxattr(f, "trusted.gfid").hex()
gfid = "-".join([gfid[:8], gfid[8:12], gfid[12:16], gfid[16:20], gfid[20:]])
alloc = os.stat(f).st_blocks * 512
shard_dir = os.path.join(brick, ".shard")
if os.path.isdir(shard_dir):
    for name in os.listdir(shard_dir):
        if name.startswith(gfid + "."):
            alloc += os.stat(os.path.join(shard_dir, name)).st_blocks * 512
print("present", size, alloc)
`
  const res = await b.node.exec(`python3 -c '${script}' '${b.path}' '${gbid}'`)
  if (res.code !== 0) throw new Error(`reading ${b.path} on ${b.node.name}: ${res.stderr}`)
  const [state, size, alloc] = res.stdout.trim().split(' ')
  return { exists: state === 'present', sizeBytes: Number(size), allocatedBytes: Number(alloc) }
}

/** Export targets every node's stand-in state holds (per host: `vol/block` names). */
async function standInTargets(tb: Testbed): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  for (const node of tb.nodes) {
    const res = await node.exec(
      `python3 -c 'import json; c = json.load(open("/etc/heqet-testbed/node.json")); print(json.dumps(sorted(json.load(open(c["blockStateDir"] + "/${node.ip}.json"))["targets"])))'`,
    )
    if (res.code !== 0) throw new Error(`stand-in state on ${node.name}: ${res.stderr}`)
    out[node.ip] = JSON.parse(res.stdout) as string[]
  }
  return out
}

/** Files left under block-meta/ and block-store/ of a volume, seen through its bricks. */
async function blockEntriesOnBricks(bricks: BrickPlace[]): Promise<string[]> {
  const found: string[] = []
  for (const b of bricks) {
    const res = await b.node.exec(
      `cd '${b.path}' && find block-store block-meta -mindepth 1 2>/dev/null | grep -v '^block-meta/meta.lock$' || true`,
    )
    for (const line of res.stdout.split('\n').filter(Boolean)) found.push(`${b.node.name}:${line}`)
  }
  return found
}

async function standInChecks(t: Test, tb: Testbed, app: TestApp) {
  const [n1, n2, n3] = tb.nodes as [TestNode, TestNode, TestNode]
  const ips = tb.nodes.map((n) => n.ip)
  const hosts = ips.join(',')
  // a block-hosting volume made by hand (heqet's file volume API), as an admin would
  const made = await app.run('POST', '/volumes', {
    size: 4,
    block: true,
    name: 'bhv_standin',
    glustervolumeoptions: ['group gluster-block'],
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  t.equal(made.statusCode, 303, `hosting volume created ${made.body}`)
  const volumeId = made.location!.split('/').pop()!
  const vol = 'bhv_standin'
  const bricks = await bricksOf(tb, vol)
  t.equal(bricks.length, 3, 'three bricks')

  await t.test('refused argv: gluster-block parse errors and stand-in refusals', async (t) => {
    const cases: [string, RegExp][] = [
      ['frobnicate', /^Unknown option: frobnicate\n$/],
      [
        `create ${vol} ha 3 --json`,
        /^argument '<volname\/blockname>'\(bhv_standin\) is incorrect\ngluster-block create /,
      ],
      [
        `create ${vol}/b1 ha three auth enable prealloc full ${hosts} 1GiB --json`,
        /^'ha' option is incorrect\n/,
      ],
      [
        `create ${vol}/b1 ha 3 auth maybe prealloc full ${hosts} 1GiB --json`,
        /^'auth' option is incorrect\n/,
      ],
      [
        `create ${vol}/b1 ha 3 auth enable prealloc some ${hosts} 1GiB --json`,
        /^'prealloc' option is incorrect\n/,
      ],
      [`create ${vol}/b1 ha 3 auth enable prealloc full ${hosts} 1XB --json`, /^'\[size\]' is incorrect\n/],
      [
        `create ${vol}/b1 ha 3 auth enable prealloc full ${hosts} 1GiB --jsonx`,
        /^expecting '--json\*', got '--jsonx'\n$/,
      ],
      [
        `create ${vol}/b@d ha 3 auth enable prealloc full ${hosts} 1GiB --json`,
        /^block name\(\) should contain only/,
      ],
      [`delete ${vol}/b1 bogus --json`, /^Unknown option: 'bogus'\ngluster-block delete /],
      [`modify ${vol}/b1 colour 2GiB --json`, /^unknown option 'colour' for modify:\n/],
      [`modify ${vol}/b1 size 2GiB extra --json`, /^unknown option 'extra' for modify size:\n/],
      [`info ${vol} --json`, /^argument '<volname\/blockname>'\(bhv_standin\) is incorrect\n/],
      ['list --json', /^Inadequate arguments for list:\ngluster-block list <volname> \[--json\*\]\n$/],
      // valid for gluster-block, but not what heketi sends
      [
        `create ${vol}/b1 ha 3 auth enable prealloc full ${hosts} 1GiB`,
        /^heqet gluster-block stand-in: unsupported/,
      ],
      [
        `create ${vol}/b1 auth enable ha 3 prealloc full ${hosts} 1GiB --json`,
        /^heqet gluster-block stand-in/,
      ],
      [`create ${vol}/b1 ha 3 auth enable prealloc full ${hosts} 1G --json`, /^heqet gluster-block stand-in/],
      [
        `create ${vol}/b1 ha 3 auth enable prealloc full ${hosts} 1GiB --json-pretty`,
        /^heqet gluster-block stand-in/,
      ],
      [`delete ${vol}/b1 force --json`, /^heqet gluster-block stand-in/],
      [`modify ${vol}/b1 size 2GiB force --json`, /^heqet gluster-block stand-in/],
      [`modify ${vol}/b1 auth enable --json`, /^heqet gluster-block stand-in/],
      [`replace ${vol}/b1 ${ips[0]} ${ips[1]} --json`, /^heqet gluster-block stand-in/],
    ]
    for (const [args, expected] of cases) {
      const res = await gb(n1, args)
      t.equal(res.code, 255, `exit 255: ${args}`)
      t.match(res.stderr, expected, `stderr: ${args}`)
      t.equal(res.stdout, '', `nothing on stdout: ${args}`)
    }
    t.same(JSON.parse((await gb(n1, `list ${vol} --json`)).stdout).blocks, [], 'no refused argv made a block')
  })

  await t.test('create, info, list, expand, delete: JSON and the file on the bricks', async (t) => {
    const created = await gb(n1, `create ${vol}/bv1 ha 3 auth enable prealloc full ${hosts} 1GiB --json`)
    t.equal(created.code, 0, `create ${created.stderr}`)
    t.match(
      created.stdout,
      /^\{ "IQN": "iqn\.2016-12\.org\.gluster-block:([0-9a-f-]{36})", "USERNAME": "\1", "PASSWORD": "[0-9a-f-]{36}", "PORTAL\(S\)": \[ "[\d.]+:3260", "[\d.]+:3260", "[\d.]+:3260" \], "RESULT": "SUCCESS" \}\n$/,
      'create answers in json-c spaced form',
    )
    const c = JSON.parse(created.stdout)
    t.same(
      c['PORTAL(S)'],
      ips.map((ip) => `${ip}:3260`),
      'portals: the hosts asked for, in order',
    )
    const gbid = c.IQN.slice(IQN_PREFIX.length) as string

    const again = await gb(n2, `create ${vol}/bv1 ha 3 auth enable prealloc full ${hosts} 1GiB --json`)
    t.equal(again.code, 17, 'EEXIST from another node: the metadata is in the volume')
    t.equal(
      again.stderr,
      `{ "RESULT": "FAIL", "errCode": 17, "errMsg": "block ${vol}\\/bv1 already exist" }\n`,
    )

    for (const b of bricks) {
      const f = await blockFileOnBrick(b, gbid)
      t.ok(f.exists, `block file on ${b.node.name}'s brick`)
      t.equal(f.sizeBytes, GIB, `1 GiB recorded on ${b.node.name}`)
      t.ok(f.allocatedBytes >= GIB, `prealloc full: ${f.allocatedBytes} bytes spent on ${b.node.name}`)
    }

    const info = await gb(n3, `info ${vol}/bv1 --json`)
    t.equal(info.code, 0)
    t.same(JSON.parse(info.stdout), {
      NAME: 'bv1',
      VOLUME: vol,
      GBID: gbid,
      SIZE: '1.0 GiB',
      HA: 3,
      PASSWORD: c.PASSWORD,
      'EXPORTED ON': ips,
    })
    t.match(info.stdout, /^\{ "NAME": "bv1", "VOLUME": "bhv_standin", "GBID": /, 'info key order')
    t.same(
      await standInTargets(tb),
      Object.fromEntries(ips.map((ip) => [ip, [`${vol}/bv1`]])),
      'exported on each host',
    )

    const thin = await gb(n2, `create ${vol}/bv2 ha 1 auth disable prealloc no ${ips[1]} 1GiB --json`)
    t.equal(thin.code, 0, `prealloc no ${thin.stderr}`)
    t.same(
      Object.keys(JSON.parse(thin.stdout)),
      ['IQN', 'PORTAL(S)', 'RESULT'],
      'no credentials without auth',
    )
    const gbid2 = JSON.parse(thin.stdout).IQN.slice(IQN_PREFIX.length)
    const sparse = await blockFileOnBrick(bricks[0]!, gbid2)
    t.equal(sparse.sizeBytes, GIB, 'prealloc no: 1 GiB recorded')
    t.ok(sparse.allocatedBytes < 64 * 1024 ** 2, `prealloc no: sparse (${sparse.allocatedBytes} bytes)`)
    t.equal(
      (await gb(n1, `list ${vol} --json`)).stdout,
      '{ "blocks": [ "bv1", "bv2" ], "RESULT": "SUCCESS" }\n',
    )

    const grown = await gb(n2, `modify ${vol}/bv1 size 2GiB --json`)
    t.equal(grown.code, 0, `modify ${grown.stderr}`)
    t.equal(
      grown.stdout,
      `{ "IQN": "${c.IQN.replace(/\//g, '\\/')}", "SIZE": "2.0 GiB", "SUCCESSFUL ON": [ ${ips.map((ip) => `"${ip}"`).join(', ')} ], "RESULT": "SUCCESS" }\n`,
    )
    for (const b of bricks) {
      const f = await blockFileOnBrick(b, gbid)
      t.equal(f.sizeBytes, 2 * GIB, `grown to 2 GiB on ${b.node.name}`)
      t.ok(f.allocatedBytes >= 2 * GIB, `and preallocated (${f.allocatedBytes} bytes)`)
    }
    t.equal(
      JSON.parse((await gb(n1, `info ${vol}/bv1 --json`)).stdout).SIZE,
      '2.0 GiB',
      'info shows the new size',
    )
    const same = await gb(n1, `modify ${vol}/bv1 size 2GiB --json`)
    t.equal(JSON.parse(same.stdout)['SKIPPED ON']?.length, 3, 'same size: skipped on every host')
    const shrink = await gb(n1, `modify ${vol}/bv1 size 1GiB --json`)
    t.equal(shrink.code, 22, 'no shrinking')
    t.equal(JSON.parse(shrink.stderr).RESULT, 'FAIL')

    for (const name of ['bv1', 'bv2']) {
      const del = await gb(n3, `delete ${vol}/${name} --json`)
      t.equal(del.code, 0, `delete ${name} ${del.stderr}`)
      t.equal(JSON.parse(del.stdout).RESULT, 'SUCCESS')
    }
    const gone = await gb(n1, `delete ${vol}/bv1 --json`)
    t.equal(gone.code, 2, 'ENOENT once deleted')
    t.equal(gone.stderr, `{ "RESULT": "FAIL", "errCode": 2, "errMsg": "block ${vol}\\/bv1 doesn't exist" }\n`)
    t.equal((await gb(n1, `info ${vol}/bv1 --json`)).code, 2, 'info: ENOENT')
    t.equal((await gb(n1, `modify ${vol}/bv1 size 3GiB --json`)).code, 2, 'modify: ENOENT')
    t.same(await blockEntriesOnBricks(bricks), [], 'no block file or metadata left on the bricks')
    t.same(
      await standInTargets(tb),
      Object.fromEntries(ips.map((ip) => [ip, []])),
      'no export left on any host',
    )
    t.same(
      (await gb(n1, 'list no_such_volume --json')).stderr,
      '{ "RESULT": "FAIL", "errCode": 2, "errMsg": "Volume no_such_volume does not exist" }\n',
      'unknown volume',
    )
  })

  await t.test('failures leave nothing: an unknown host, no space', async (t) => {
    const stranger = await gb(
      n1,
      `create ${vol}/lost ha 2 auth disable prealloc no ${ips[0]},10.255.0.9 1GiB --json`,
    )
    t.equal(stranger.code, 255, 'a host without gluster-blockd fails the create')
    t.match(JSON.parse(stranger.stderr).errMsg, /failed to configure on 10\.255\.0\.9/)
    const big = await gb(n1, `create ${vol}/huge ha 3 auth disable prealloc full ${hosts} 64GiB --json`)
    t.not(big.code, 0, 'a block larger than the volume fails with prealloc full')
    t.match(
      big.stderr,
      /^\{ "RESULT": "FAIL", "errCode": 28, "errMsg": "Not able to create storage for /,
      big.stderr,
    )
    t.same(JSON.parse((await gb(n2, `list ${vol} --json`)).stdout).blocks, [], 'nothing listed')
    t.same(await blockEntriesOnBricks(bricks), [], 'nothing on the bricks')
    t.same(await standInTargets(tb), Object.fromEntries(ips.map((ip) => [ip, []])), 'no export left')
  })

  t.equal((await app.run('DELETE', `/volumes/${volumeId}`)).statusCode, 204, 'hosting volume deleted')
}

t.test('block volumes on the testbed', async (t) => {
  if (!requireTestbed(t)) return
  const started = performance.now()
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 1, deviceSizeGiB: 16, name: 'hqblock' })
  t.teardown(() => tb.destroy())
  const injector = new Injector([])
  const recorder = new RecordingRunner(sshRunner(tb))
  const app = await makeApp(t, {
    executor: remoteExecutor(new InjectingRunner(recorder, injector)),
    config: { volumeCreateRetries: 0, autoCreateBlockHostingVolume: true, blockHostingVolumeSizeGiB: 4 },
  })
  const baseFstab = (await tb.snapshot()).map((s) => s.fstab)
  const cluster = (await app.call('POST', '/clusters', { file: true, block: true })).json().id
  for (const [i, node] of tb.nodes.entries()) {
    const res = await app.run('POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [node.ip], storage: [node.ip] },
      cluster,
    })
    t.equal(res.statusCode, 303, `node ${node.name} added`)
    const id = res.location!.split('/').pop()!
    t.equal((await app.run('POST', '/devices', { name: node.devices[0], node: id })).statusCode, 204)
  }
  let phase = started
  const timed = (what: string) => {
    t.comment(`timing: ${what}: ${((performance.now() - phase) / 1000).toFixed(1)} s`)
    phase = performance.now()
  }
  timed(`testbed (${(tb.createMs / 1000).toFixed(1)} s) and topology`)

  await t.test('the gluster-block stand-in', (t) => standInChecks(t, tb, app))
  timed('stand-in checks')

  const dump = (await app.call('GET', '/db/dump')).json() as HeketiDump
  const agreement = compareNodesWithDb(
    await tb.snapshot(),
    tb.nodes.map((n) => n.ip),
    baseFstab,
    dump,
  )
  t.same(agreement, { leaked: [], missing: [] }, 'nodes agree with the DB')
  t.comment(`timing: block test total: ${((performance.now() - started) / 1000).toFixed(1)} s`)
})
