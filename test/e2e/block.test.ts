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
//  3. one fault per gluster-block command heqet sends (create, modify,
//     delete, info in the undo of a failed expand, list in the examiner),
//     injected on the way to the node: it fails (on every host heqet tries)
//     or times out (it ran, the answer is lost). Afterwards no half-made block volume, nodes = DB,
//     /db/check clean, journal empty. `list` is the examiner's: its fault is
//     a report line and changes nothing.
import t, { type Test } from 'tap'
import { InjectingRunner, Injector } from '../../executors/inject.ts'
import type { BatchOptions, CommandResult, CommandRunner } from '../../executors/runner.ts'
import { makeApp, type TestApp } from '../helpers/app.ts'
import { assertAgreement } from './lib/agreement.ts'
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

/** The words a POSIX shell makes of a command line (quotes as heqet writes them). */
function shellWords(command: string): string[] {
  const words: string[] = []
  let word: string | undefined
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!
    if (ch === "'") {
      const end = command.indexOf("'", i + 1)
      if (end < 0) throw new Error(`unterminated quote in ${command}`)
      word = (word ?? '') + command.slice(i + 1, end)
      i = end
    } else if (ch === '\\' && i + 1 < command.length) {
      word = (word ?? '') + command[++i]
    } else if (ch === ' ') {
      if (word !== undefined) words.push(word)
      word = undefined
    } else {
      word = (word ?? '') + ch
    }
  }
  if (word !== undefined) words.push(word)
  return words
}

interface World {
  tb: Testbed
  app: TestApp
  recorder: RecordingRunner
  injector: Injector
  baseFstab: string[][]
}

/** The last gluster-block command heqet sent for `verb`, as argv, and its raw text. */
function lastSent(w: World, verb: string): { argv: string[]; raw: string } {
  const sent = w.recorder.commands.filter((c) => c.command.startsWith(`gluster-block ${verb} `))
  const raw = sent.at(-1)?.command ?? ''
  return { argv: raw ? shellWords(raw) : [], raw }
}

interface DbBlock {
  id: string
  name: string
  size: number
  hosts: string[]
  hostingVolume: string
}

async function dbBlocks(app: TestApp): Promise<DbBlock[]> {
  const ids = (await app.call('GET', '/blockvolumes')).json().blockvolumes as string[]
  const out: DbBlock[] = []
  for (const id of ids) {
    const bv = (await app.call('GET', `/blockvolumes/${id}`)).json()
    const hv = (await app.call('GET', `/volumes/${bv.blockhostingvolume}`)).json()
    out.push({ id, name: bv.name, size: bv.size, hosts: bv.blockvolume.hosts, hostingVolume: hv.name })
  }
  return out
}

/** Block-hosting volumes (name → id) the DB knows. */
async function dbHostingVolumes(app: TestApp): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const id of (await app.call('GET', '/volumes')).json().volumes as string[]) {
    const v = (await app.call('GET', `/volumes/${id}`)).json()
    if (v.block) out.set(v.name, id)
  }
  return out
}

/**
 * Do the nodes hold exactly the DB's block volumes? gluster-block's list and
 * info on every hosting volume, the exports of every host, no FUSE mount of
 * the stand-in left behind.
 */
async function blocksAgree(t: Test, w: World, what: string) {
  const db = await dbBlocks(w.app)
  const onNodes: string[] = []
  const sizes: Record<string, string> = {}
  for (const name of (await dbHostingVolumes(w.app)).keys()) {
    const listed = await gb(w.tb.nodes[0]!, `list ${name} --json`)
    if (listed.code !== 0) throw new Error(`${what}: list ${name}: ${listed.stderr}`)
    for (const block of JSON.parse(listed.stdout).blocks as string[]) {
      onNodes.push(`${name}/${block}`)
      const info = await gb(w.tb.nodes[1]!, `info ${name}/${block} --json`)
      sizes[`${name}/${block}`] = JSON.parse(info.stdout).SIZE
    }
  }
  t.same(
    onNodes.sort(),
    db.map((b) => `${b.hostingVolume}/${b.name}`).sort(),
    `${what}: gluster-block lists the DB's block volumes`,
  )
  t.same(
    sizes,
    Object.fromEntries(db.map((b) => [`${b.hostingVolume}/${b.name}`, `${b.size}.0 GiB`])),
    `${what}: sizes agree`,
  )
  const expected: Record<string, string[]> = Object.fromEntries(w.tb.nodes.map((n) => [n.ip, []]))
  for (const b of db) for (const h of b.hosts) expected[h]!.push(`${b.hostingVolume}/${b.name}`)
  for (const list of Object.values(expected)) list.sort()
  t.same(await standInTargets(w.tb), expected, `${what}: each host exports the DB's block volumes`)
  for (const node of w.tb.nodes) {
    const left = await node.exec(
      'awk \'$3 == "fuse.glusterfs" {print $2}\' /proc/self/mounts; ls /run/heqet-gluster-block 2>/dev/null',
    )
    t.equal(left.stdout, '', `${what}: no stand-in mount left on ${node.name}`)
  }
}

/** Journal, DB check and the nodes (LVM, mounts, bricks, gluster volumes, block volumes) agree. */
async function allAgree(t: Test, w: World, what: string) {
  const ops = (await w.app.call('GET', '/operations/pending')).json().pendingoperations as {
    status: string
  }[]
  t.ok(
    ops.every((o) => o.status === 'failed'),
    `${what}: nothing left but failed records (${ops.length})`,
  )
  if (ops.length) {
    const cleanup = await w.app.run('POST', '/operations/pending/cleanup', {})
    t.equal(cleanup.statusCode, 204, `${what}: cleanup finished everything ${cleanup.body.trim()}`)
  }
  await assertAgreement(t, w.app, w.tb, w.baseFstab, what)
  await blocksAgree(t, w, what)
}

async function scenario(t: Test, w: World) {
  const { tb, app } = w
  const ips = tb.nodes.map((n) => n.ip)
  let step = performance.now()
  const timed = (what: string) => {
    t.comment(`timing: scenario ${what}: ${((performance.now() - step) / 1000).toFixed(1)} s`)
    step = performance.now()
  }

  const made = await app.run('POST', '/blockvolumes', { size: 1, hacount: 3, auth: true, name: 'bvscen' })
  t.equal(made.statusCode, 303, `block volume created ${made.body}`)
  timed('create (with its hosting volume)')
  const id = made.location!.split('/').pop()!
  const bv = (await app.call('GET', `/blockvolumes/${id}`)).json()
  t.match(bv, { id, name: 'bvscen', size: 1, hacount: 3, usablesize: 1, blockvolume: { lun: 0 } })
  t.same([...bv.blockvolume.hosts].sort(), [...ips].sort(), 'exported on the three nodes')
  t.match(bv.blockvolume.iqn, /^iqn\.2016-12\.org\.gluster-block:[0-9a-f-]{36}$/, 'IQN from gluster-block')
  const gbid = (bv.blockvolume.iqn as string).slice(IQN_PREFIX.length)
  t.equal(bv.blockvolume.username, gbid, 'username is the GBID')
  t.match(bv.blockvolume.password, /^[0-9a-f-]{36}$/, 'password from gluster-block')
  const hv = (await app.call('GET', `/volumes/${bv.blockhostingvolume}`)).json()
  t.equal(hv.block, true, 'auto-created hosting volume')
  t.equal(hv.size, 4, 'of block_hosting_volume_size')
  t.same(hv.blockinfo.blockvolume, [id], 'holding the block volume')
  t.equal(
    hv.blockinfo.freesize + hv.blockinfo.reservedsize + 1,
    4,
    'Size = FreeSize + ReservedSize + Σ block sizes',
  )

  const create = lastSent(w, 'create')
  t.same(
    create.argv,
    [
      'gluster-block',
      'create',
      `${hv.name}/bvscen`,
      'ha',
      '3',
      'auth',
      'enable',
      'prealloc',
      'full',
      bv.blockvolume.hosts.join(','),
      '1GiB',
      '--json',
    ],
    `create argv as heketi's (§8.1): ${create.raw}`,
  )
  const bricks = await bricksOf(tb, hv.name)
  t.equal(bricks.length, 3, 'replica 3 hosting volume')
  for (const b of bricks) {
    const f = await blockFileOnBrick(b, gbid)
    t.ok(f.exists && f.sizeBytes === GIB, `1 GiB block file on ${b.node.name}'s brick`)
    t.ok(f.allocatedBytes >= GIB, `preallocated (prealloc full): ${f.allocatedBytes} bytes`)
  }
  const info = JSON.parse((await gb(tb.nodes[2]!, `info ${hv.name}/bvscen --json`)).stdout)
  t.match(info, {
    NAME: 'bvscen',
    VOLUME: hv.name,
    GBID: gbid,
    SIZE: '1.0 GiB',
    HA: 3,
    PASSWORD: bv.blockvolume.password,
  })
  t.same([...info['EXPORTED ON']].sort(), [...ips].sort(), 'gluster-block info: exported on the three nodes')

  const grown = await app.run('POST', `/blockvolumes/${id}/expand`, { new_size: 2 })
  t.equal(grown.statusCode, 303, `expanded ${grown.body}`)
  timed('expand')
  t.match((await app.call('GET', `/blockvolumes/${id}`)).json(), { size: 2, usablesize: 2 })
  const modify = lastSent(w, 'modify')
  t.same(
    modify.argv,
    ['gluster-block', 'modify', `${hv.name}/bvscen`, 'size', '2GiB', '--json'],
    `modify argv (§8.3): ${modify.raw}`,
  )
  t.match(modify.raw, /^gluster-block modify \S+ {2}size /, 'two spaces before size, as heketi sends it')
  for (const b of bricks) {
    const f = await blockFileOnBrick(b, gbid)
    t.equal(f.sizeBytes, 2 * GIB, `block file grown to 2 GiB on ${b.node.name}`)
    t.ok(f.allocatedBytes >= 2 * GIB, `and preallocated: ${f.allocatedBytes} bytes`)
  }
  await blocksAgree(t, w, 'after expand')

  const deleted = await app.run('DELETE', `/blockvolumes/${id}`)
  t.equal(deleted.statusCode, 204, `block volume deleted ${deleted.body}`)
  timed('delete')
  const del = lastSent(w, 'delete')
  t.same(
    del.argv,
    ['gluster-block', 'delete', `${hv.name}/bvscen`, '--json'],
    `delete argv (§8.2): ${del.raw}`,
  )
  t.same(await blockEntriesOnBricks(bricks), [], 'block file and metadata gone from the bricks')
  t.same((await app.call('GET', '/blockvolumes')).json().blockvolumes, [], 'no block volume in the DB')
  await blocksAgree(t, w, 'after delete')

  const hvDeleted = await app.run('DELETE', `/volumes/${hv.id}`)
  t.equal(hvDeleted.statusCode, 204, `hosting volume deleted ${hvDeleted.body}`)
  timed('hosting volume delete')
  await allAgree(t, w, 'scenario end')
  t.same(
    (await tb.snapshot()).map((s) => [
      s.lvs.filter((lv) => lv.includes('/brick_')),
      s.mounts,
      s.glusterVolumes,
    ]),
    tb.nodes.map(() => [[], [], []]),
    'no brick LV, mount or gluster volume left',
  )
}

type Action = 'fail' | 'timeout'
const ACTIONS: Action[] = ['fail', 'timeout']

/**
 * A gluster-block command fails (every host heqet tries) or times out (it
 * runs, its answer is lost); `also` adds a fault to the undo's command.
 */
function faults(w: World, command: string, action: Action, also?: { command: string; action: Action }) {
  const rule = (cmd: string, a: Action) => ({
    pattern: `^gluster-block ${cmd} `,
    action: a,
    message: a === 'fail' ? `{ "RESULT": "FAIL", "errCode": 5, "errMsg": "injected: ${cmd}" }` : undefined,
    count: w.tb.nodes.length,
  })
  w.injector.setRules([rule(command, action), ...(also ? [rule(also.command, also.action)] : [])])
}

async function faultCases(t: Test, w: World) {
  const { app } = w
  const timedCase = (what: string, since: number) =>
    t.comment(`timing: fault ${what}: ${((performance.now() - since) / 1000).toFixed(1)} s`)

  // create fails: the undo removes the block volume (none was made) and the hosting volume it auto-created
  let since = performance.now()
  faults(w, 'create', 'fail')
  const failedCreate = await app.run('POST', '/blockvolumes', { size: 1, name: 'bvfail' })
  t.equal(w.injector.fired, 1, 'create fail: the fault fired')
  t.equal(failedCreate.statusCode, 500, `create fail: reported ${failedCreate.body.trim()}`)
  t.match(failedCreate.body, /injected: create/, "create fail: with gluster-block's message")
  w.injector.setRules([])
  t.same((await app.call('GET', '/blockvolumes')).json().blockvolumes, [], 'create fail: no block volume')
  t.same([...(await dbHostingVolumes(app)).keys()], [], 'create fail: no hosting volume')
  await allAgree(t, w, 'create fail')
  timedCase('create fail (auto-created hosting volume undone)', since)

  // one block volume to fault the others on
  const made = await app.run('POST', '/blockvolumes', { size: 1, name: 'bvfault' })
  t.equal(made.statusCode, 303, `block volume for the fault cases ${made.body}`)
  const id = made.location!.split('/').pop()!

  // create times out: it ran on a node; the undo deletes it there (the hosting volume stays)
  since = performance.now()
  faults(w, 'create', 'timeout')
  const lostCreate = await app.run('POST', '/blockvolumes', { size: 1, name: 'bvtimeout' })
  t.equal(w.injector.fired, 1, 'create timeout: the fault fired')
  t.equal(lostCreate.statusCode, 500, `create timeout: reported ${lostCreate.body.trim()}`)
  w.injector.setRules([])
  t.same(
    (await app.call('GET', '/blockvolumes')).json().blockvolumes,
    [id],
    'create timeout: only the earlier block volume',
  )
  await allAgree(t, w, 'create timeout')
  timedCase('create timeout', since)

  const size = async () => (await app.call('GET', `/blockvolumes/${id}`)).json().size as number

  // modify: the undo checks with info that the size did not change; a grow
  // that reached the nodes is settled by the cleaner from `info`
  for (const action of ACTIONS) {
    const what = `modify ${action}`
    const since = performance.now()
    const before = await size()
    faults(w, 'modify', action)
    const res = await app.run('POST', `/blockvolumes/${id}/expand`, { new_size: before + 1 })
    t.ok(w.injector.fired >= 1, `${what}: the fault fired`)
    t.equal(res.statusCode, 500, `${what}: reported ${res.body.trim()}`)
    w.injector.setRules([])
    await allAgree(t, w, what)
    t.equal(await size(), action === 'fail' ? before : before + 1, `${what}: the size is what the nodes say`)
    timedCase(what, since)
  }

  // info (in the undo of a failed expand / delete): the record stays failed, the cleaner finishes
  for (const action of ACTIONS) {
    const what = `info ${action} (undo of a failed expand)`
    const since = performance.now()
    const before = await size()
    faults(w, 'modify', 'fail', { command: 'info', action })
    const res = await app.run('POST', `/blockvolumes/${id}/expand`, { new_size: before + 1 })
    t.ok(w.injector.fired >= 2, `${what}: both faults fired`)
    t.equal(res.statusCode, 500, `${what}: reported ${res.body.trim()}`)
    w.injector.setRules([])
    await allAgree(t, w, what)
    t.equal(await size(), before, `${what}: size unchanged`)
    timedCase(what, since)
  }

  // list (the examiner, one per node and hosting volume): a failure is a report line, nothing changes
  const examine = async () => (await app.call('GET', '/internal/state/examine/gluster')).json()
  const hvName = (await dbHostingVolumes(app)).keys().next().value as string
  const clean = await examine()
  t.same(
    clean.clusters[0].NodesData.map((n: { BlockVolumeNames: string[] }) => n.BlockVolumeNames),
    w.tb.nodes.map(() => [`${hvName}/bvfault`]),
    'examiner: every node lists the block volume',
  )
  for (const action of ACTIONS) {
    const what = `list ${action} (examiner)`
    since = performance.now()
    w.injector.setRules([
      {
        pattern: '^gluster-block list ',
        action,
        message: action === 'fail' ? 'injected: list' : undefined,
        count: 1,
      },
    ])
    const report = (await examine()).report as string[]
    t.equal(w.injector.fired, 1, `${what}: the fault fired`)
    t.ok(
      report.some((line) => line.startsWith(`could not list block volumes of ${hvName} on node `)),
      `${what}: reported (${report.join(' | ')})`,
    )
    w.injector.setRules([])
    await allAgree(t, w, what)
    timedCase(what, since)
  }

  // delete: fails → the block volume stays (DB and nodes); times out → it is gone on the
  // nodes, the cleaner finishes the delete
  const what = 'delete fail'
  since = performance.now()
  faults(w, 'delete', 'fail')
  const failed = await app.run('DELETE', `/blockvolumes/${id}`)
  t.ok(w.injector.fired >= 1, `${what}: the fault fired`)
  t.equal(failed.statusCode, 500, `${what}: reported ${failed.body.trim()}`)
  w.injector.setRules([])
  await allAgree(t, w, what)
  t.equal((await app.call('GET', `/blockvolumes/${id}`)).statusCode, 200, `${what}: the block volume stays`)
  timedCase(what, since)

  since = performance.now()
  faults(w, 'delete', 'timeout')
  const timedOut = await app.run('DELETE', `/blockvolumes/${id}`)
  t.ok(w.injector.fired >= 1, 'delete timeout: the fault fired')
  t.equal(timedOut.statusCode, 500, `delete timeout: reported ${timedOut.body.trim()}`)
  w.injector.setRules([])
  await allAgree(t, w, 'delete timeout')
  t.equal(
    (await app.call('GET', `/blockvolumes/${id}`)).statusCode,
    404,
    'delete timeout: the delete was finished',
  )
  timedCase('delete timeout', since)

  // the hosting volume goes last: nothing left
  for (const hvId of (await dbHostingVolumes(app)).values()) {
    t.equal((await app.run('DELETE', `/volumes/${hvId}`)).statusCode, 204, 'hosting volume deleted')
  }
  await allAgree(t, w, 'fault cases end')
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
  const world: World = { tb, app, recorder, injector, baseFstab }
  await t.test('scenario through the REST API', (t) => scenario(t, world))
  timed('scenario')
  await t.test('one fault per gluster-block command', (t) => faultCases(t, world))
  timed('fault cases')

  await assertAgreement(t, app, tb, baseFstab, 'at the end')
  t.comment(`timing: block test total: ${((performance.now() - started) / 1000).toFixed(1)} s`)
})
