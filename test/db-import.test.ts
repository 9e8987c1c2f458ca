// `heqet db import` of a real heketi v10.4.1 export: every entry keeps its id,
// exports back byte for byte, answers every GET exactly as heketi did, and
// the volumes heketi made can be filled around, expanded and deleted.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { exportDb, importDb } from '../api/db-commands.ts'
import { DEFAULT_REMOTE_EXECUTOR_CONFIG } from '../executors/config.ts'
import type { BrickRequest, Executor } from '../executors/executor.ts'
import { MockExecutor } from '../executors/mock.ts'
import { RecordingRunner } from '../executors/recording.ts'
import { RemoteExecutor } from '../executors/remote.ts'
import { makeApp, type TestApp } from './helpers/app.ts'

const SAMPLE = new URL('./fixtures/heketi-v10.4.1-db-export.json', import.meta.url)
const sampleText = readFileSync(SAMPLE, 'utf8')
const sample = JSON.parse(sampleText) as Record<string, Record<string, any>>

/** Import the sample (or a changed copy) into a fresh dir; returns the dir (DB at heqet.db). */
async function imported(text = sampleText): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-import-'))
  writeFileSync(join(dir, 'export.json'), text)
  await importDb({ jsonFile: join(dir, 'export.json'), dbFile: join(dir, 'heqet.db') })
  return dir
}

async function importedApp(tt: Parameters<typeof makeApp>[0], executor?: Executor): Promise<TestApp> {
  return makeApp(tt, { dir: await imported(), executor })
}

// heketi's answers, derived from its own export with heketi-api.md's shapes
type Doc = typeof sample
const brickInfo = (doc: Doc, id: string) => doc.brickentries![id].Info
const heketiDevice = (id: string, doc: Doc = sample) => {
  const d = doc.deviceentries![id]
  return { ...d.Info, state: d.State, bricks: [...d.Bricks].sort().map((b) => brickInfo(doc, b)) }
}
const heketiNode = (id: string, doc: Doc = sample) => {
  const n = doc.nodeentries![id]
  return { ...n.Info, state: n.State, devices: [...n.Devices].sort().map((d) => heketiDevice(d, doc)) }
}
const heketiVolume = (id: string) => {
  const { clusters: _requested, ...info } = sample.volumeentries![id].Info
  const v = sample.volumeentries![id]
  return {
    size: info.size,
    name: info.name,
    durability: info.durability,
    gid: info.gid,
    glustervolumeoptions: v.GlusterVolumeOptions,
    block: info.block,
    snapshot: info.snapshot,
    id: info.id,
    cluster: info.cluster,
    mount: info.mount,
    blockinfo: info.blockinfo,
    bricks: [...v.Bricks].sort().map((b) => brickInfo(sample, b)),
  }
}
const body = (value: unknown) => `${JSON.stringify(value)}\n`

t.test('the export comes back byte for byte (but for the new generation id)', async (t) => {
  const dir = await imported()
  await exportDb({ dbFile: join(dir, 'heqet.db'), jsonFile: join(dir, 'again.json') })
  const again = readFileSync(join(dir, 'again.json'), 'utf8')
  const oldId = sample.dbattributeentries!.DB_GENERATION_ID.Value as string
  const newId = JSON.parse(again).dbattributeentries.DB_GENERATION_ID.Value as string
  t.match(newId, /^[0-9a-f]{32}$/)
  t.not(newId, oldId, 'a fresh generation id, as heketi records on import')
  t.equal(again.replace(newId, oldId), sampleText)
})

t.test('every GET answers what heketi answered; /db/check is clean', async (t) => {
  const app = await importedApp(t)
  t.equal((await app.call('GET', '/clusters')).body, body({ clusters: Object.keys(sample.clusterentries!) }))
  for (const [id, c] of Object.entries(sample.clusterentries!))
    t.equal((await app.call('GET', `/clusters/${id}`)).body, body(c.Info), `cluster ${id}`)
  for (const id of Object.keys(sample.nodeentries!))
    t.equal((await app.call('GET', `/nodes/${id}`)).body, body(heketiNode(id)), `node ${id}`)
  for (const id of Object.keys(sample.deviceentries!))
    t.equal((await app.call('GET', `/devices/${id}`)).body, body(heketiDevice(id)), `device ${id}`)
  t.equal((await app.call('GET', '/volumes')).body, body({ volumes: Object.keys(sample.volumeentries!) }))
  for (const id of Object.keys(sample.volumeentries!))
    t.equal((await app.call('GET', `/volumes/${id}`)).body, body(heketiVolume(id)), `volume ${id}`)
  const check = (await app.call('GET', '/db/check')).json()
  t.equal(check.totalinconsistencies, 0)
  t.same(
    Object.fromEntries(
      Object.entries(check).flatMap(([k, s]) =>
        typeof s === 'object' ? [[k, (s as { total: number }).total]] : [],
      ),
    ),
    {
      clusters: 1,
      volumes: 4,
      bricks: 13,
      nodes: 6,
      devices: 12,
      blockvolumes: 0,
      dbattributes: 0,
      pendingoperations: 0,
    },
  )
})

t.test('new volumes fill the space around the old bricks, never on top of them', async (t) => {
  const app = await importedApp(t)
  let created = 0
  for (let i = 0; i < 40; i++) {
    const res = await app.run('POST', '/volumes', {
      size: 100,
      durability: { type: 'replicate', replicate: { replica: 3 } },
    })
    if (res.statusCode !== 303) {
      t.match(res.body, /^Failed to allocate new volume: No space/)
      break
    }
    created++
  }
  // 12 devices of 500 GiB, ~52 GiB taken by heketi's bricks; one replica-3 100 GiB volume takes 3 × 100.5 GiB
  t.equal(created, 19, 'as many volumes as the free space holds')
  for (const id of Object.keys(sample.deviceentries!)) {
    const d = (await app.call('GET', `/devices/${id}`)).json()
    const stored = app.ctx.store.read((tx) => tx.get('device', id)!)
    const taken = stored.bricks.reduce((sum, b) => {
      const brick = app.ctx.store.read((tx) => tx.get('brick', b)!)
      return sum + brick.tpSizeKiB + brick.poolMetadataSizeKiB
    }, 0)
    t.equal(d.storage.used, taken, `device ${id}: used is what its bricks take`)
    t.equal(d.storage.free, d.storage.total - taken, `device ${id}: free is the rest`)
    t.ok(d.storage.free >= 0)
    for (const old of sample.deviceentries![id].Bricks as string[])
      t.ok(stored.bricks.includes(old), `old brick ${old} kept`)
  }
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

/** MockExecutor that remembers every brick it was asked to destroy. */
class RecordingMock extends MockExecutor {
  readonly destroyed: BrickRequest[] = []
  override async brickDestroy(req: BrickRequest) {
    this.destroyed.push(req)
    return super.brickDestroy(req)
  }
}

t.test('volumes heketi made expand and delete; destroy uses the stored thin pool names', async (t) => {
  const executor = new RecordingMock()
  const app = await importedApp(t, executor)
  const arbiter = 'dcb4d104f968e24fb5ee57d61cb72d00'
  const expanded = await app.run('POST', `/volumes/${arbiter}/expand`, { expand_size: 4 })
  t.equal(expanded.statusCode, 303, expanded.body)
  const info = (await app.call('GET', `/volumes/${arbiter}`)).json()
  t.equal(info.size, 8)
  t.equal(info.bricks.length, 6, 'a second set of three')
  const subTypes = app.ctx.store.read((tx) =>
    info.bricks.map((b: { id: string }) => tx.get('brick', b.id)!.subType),
  )
  t.equal(subTypes.filter((s: string) => s === 'arbiter').length, 2, 'one arbiter brick per set')

  for (const id of Object.keys(sample.volumeentries!)) {
    const res = await app.run('DELETE', `/volumes/${id}`)
    t.equal(res.statusCode, 204, `volume ${id} deleted`)
  }
  for (const [id, b] of Object.entries(sample.brickentries!)) {
    const req = executor.destroyed.find((r) => r.brickId === id)
    t.equal(req?.lvmThinPool, b.LvmThinPool, `brick ${id} destroyed with its stored pool ${b.LvmThinPool}`)
  }
  for (const id of Object.keys(sample.deviceentries!)) {
    const d = (await app.call('GET', `/devices/${id}`)).json()
    t.same([d.storage.used, d.storage.free, d.bricks], [0, d.storage.total, []], `device ${id} empty again`)
  }
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('on nodes: destroying a brick whose pool name differs from its id removes that pool', async (t) => {
  const runner = new RecordingRunner((_host, command) =>
    command.includes('thin_count') ? { stdout: '  0\n' } : undefined,
  )
  const app = await importedApp(t, new RemoteExecutor(runner, DEFAULT_REMOTE_EXECUTOR_CONFIG))
  const volume = '7ce933b8c818b6a64d22ca66aef4d5bc' // app-data: brick 0cfcc7… lives in tp_9572…
  t.equal((await app.run('DELETE', `/volumes/${volume}`)).statusCode, 204)
  const commands = runner.calls.map((c) => c.command)
  const vg = 'vg_94473b8cbdaeb5783bc083905d20a252'
  t.ok(
    commands.includes(
      `/usr/sbin/lvm lvs --noheadings --options=thin_count '${vg}/tp_9572726b6f55ffb1bdb7e8fb433d90d4'`,
    ),
  )
  t.ok(
    commands.includes(`/usr/sbin/lvm lvremove --autobackup=n -f '${vg}/tp_9572726b6f55ffb1bdb7e8fb433d90d4'`),
  )
  t.ok(
    commands.includes(
      `/usr/sbin/lvm lvremove --autobackup=n -f '${vg}/brick_0cfcc7f43cb3bbe2010a3d1203904c75'`,
    ),
  )
  t.notOk(
    commands.some((c) => c.includes('tp_0cfcc7f43cb3bbe2010a3d1203904c75')),
    'never a pool named after the brick',
  )
})

t.test('pending operations come in stale and the cleaner finishes them', async (t) => {
  // a delete heketi had started: the volume and its bricks are marked, the record is new
  const doc = JSON.parse(sampleText)
  const op = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
  const volume = '7ce933b8c818b6a64d22ca66aef4d5bc'
  doc.volumeentries[volume].Pending.Id = op
  const bricks = doc.volumeentries[volume].Bricks as string[]
  for (const b of bricks) doc.brickentries[b].Pending.Id = op
  doc.pendingoperations[op] = {
    Id: op,
    Timestamp: 1700000000,
    Type: 2,
    Actions: [
      { Change: 4, Id: volume, Delta: null },
      ...bricks.map((b) => ({ Change: 3, Id: b, Delta: null })),
    ],
    Status: '',
  }
  const app = await makeApp(t, { dir: await imported(JSON.stringify(doc)) })
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
  t.same((await app.call('GET', '/operations/pending')).json().pendingoperations, [
    { id: op, type_name: 'delete-volume', status: 'stale', sub_status: '' },
  ])
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same((await app.call('GET', '/operations/pending')).json().pendingoperations, [])
  t.equal((await app.call('GET', `/volumes/${volume}`)).statusCode, 404, 'the delete was finished')
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

/** Import a changed copy of the sample: refused with `message`, nothing written. */
async function refused(t: Test, change: (doc: any) => unknown, message: string | RegExp) {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-import-'))
  const doc = JSON.parse(sampleText)
  const text = change(doc)
  writeFileSync(join(dir, 'export.json'), typeof text === 'string' ? text : JSON.stringify(doc))
  await t.rejects(importDb({ jsonFile: join(dir, 'export.json'), dbFile: join(dir, 'heqet.db') }), {
    message,
  })
  t.same(readdirSync(dir), ['export.json'], 'nothing written')
}

const VOL = '7ce933b8c818b6a64d22ca66aef4d5bc'
const NODE = '21022c6569ba52aec58f7a7983e0aad7'
const DEV = '02ab3391331d683de04cc76fb5af4450'
const BRICK = 'fd5923dbcfdc2a5448bed1c9670d45d2'

t.test('a document heqet cannot take whole is refused, naming the entry and the reason', async (t) => {
  await refused(t, () => '{"clusterentries": ', /^document: not JSON/)
  await refused(
    t,
    (d) => {
      d.snapshotentries = {}
    },
    'document: unknown section snapshotentries',
  )
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].Info.color = 'blue'
    },
    `volume ${VOL}: unknown field Info.color`,
  )
  await refused(
    t,
    (d) => {
      d.brickentries[BRICK].Snapshots = []
    },
    `brick ${BRICK}: unknown field Snapshots`,
  )
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].Info.size = '5'
    },
    `volume ${VOL}: Info.size must be an integer, not string "5"`,
  )
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].Info.durability.type = 'mirror'
    },
    `volume ${VOL}: Not a known volume durability type: mirror`,
  )
  await refused(
    t,
    (d) => {
      d.dbattributeentries.DB_HAS_QUOTAS = { Key: 'DB_HAS_QUOTAS', Value: 'yes' }
    },
    'db attribute DB_HAS_QUOTAS: Unable to initialize db, unknown attributes are present (db from a newer version of heketi?)',
  )
  await refused(
    t,
    (d) => {
      d.nodeentries[NODE].Info.id = 'ffffffffffffffffffffffffffffffff'
    },
    `node ${NODE}: is stored under ${NODE} but its id is "ffffffffffffffffffffffffffffffff"`,
  )
})

t.test('dangling references are refused', async (t) => {
  await refused(
    t,
    (d) => {
      d.nodeentries[NODE].Devices.push('0123456789abcdef0123456789abcdef')
    },
    `node ${NODE}: device 0123456789abcdef0123456789abcdef does not exist or is not on this node`,
  )
  await refused(
    t,
    (d) => {
      d.brickentries[BRICK].Info.volume = '0123456789abcdef0123456789abcdef'
    },
    `brick ${BRICK}: volume 0123456789abcdef0123456789abcdef does not exist or does not list it`,
  )
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].Info.cluster = '0123456789abcdef0123456789abcdef'
    },
    `cluster e30b2fb635f129a0045994049d126ab9: volume ${VOL} does not exist or is not in this cluster`,
  )
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].Pending.Id = '0123456789abcdef0123456789abcdef'
    },
    `volume ${VOL}: pending operation 0123456789abcdef0123456789abcdef does not exist`,
  )
  await refused(
    t,
    (d) => {
      d.nodeentries['466a371c3c6805ede85d20f9db262dfd'].Info.hostnames.storage = ['127.0.1.2']
    },
    /^node (21022c6569ba52aec58f7a7983e0aad7|466a371c3c6805ede85d20f9db262dfd): storage hostname 127\.0\.1\.2 is also used by node/,
  )
})

t.test('sizes that do not add up are refused', async (t) => {
  await refused(
    t,
    (d) => {
      d.deviceentries[DEV].Info.storage.free += 4096
    },
    `device ${DEV}: sizes do not add up: total 524288000 KiB != free 519020544 KiB + used 5271552 KiB`,
  )
  await refused(
    t,
    (d) => {
      d.deviceentries[DEV].Info.storage.free -= 4096
      d.deviceentries[DEV].Info.storage.used += 4096
    },
    `device ${DEV}: sizes do not add up: used 5275648 KiB but its bricks take 5271552 KiB`,
  )
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].Info.size = 6
    },
    `volume ${VOL}: sizes do not add up: size 6 GiB (6291456 KiB) but its bricks hold 5242880 KiB`,
  )
})

t.test('values that would reach node commands pass the allow-lists', async (t) => {
  await refused(
    t,
    (d) => {
      d.nodeentries[NODE].Info.hostnames.manage = ['node2;reboot']
    },
    `node ${NODE}: "node2;reboot" is not a valid manage hostname`,
  )
  await refused(
    t,
    (d) => {
      d.brickentries[BRICK].LvmThinPool = 'tp_$(reboot)'
    },
    `brick ${BRICK}: thin pool "tp_$(reboot)" is not an LVM name`,
  )
  await refused(
    t,
    (d) => {
      d.deviceentries[DEV].Info.name = '/dev/sdc && reboot'
    },
    `device ${DEV}: name "/dev/sdc && reboot" is not a device path`,
  )
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].GlusterVolumeOptions = ['', 'performance.x `reboot`', '']
    },
    `volume ${VOL}: volume option "performance.x \`reboot\`" has an invalid value`,
  )
  // the rules of issue 8: no leading '-', RFC 1123 names, devices under /dev
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].Info.name = '--version'
    },
    `volume ${VOL}: name "--version" is not a valid volume name`,
  )
  await refused(
    t,
    (d) => {
      d.nodeentries[NODE].Info.hostnames.storage = ['node_1']
    },
    `node ${NODE}: "node_1" is not a valid storage hostname`,
  )
  await refused(
    t,
    (d) => {
      d.deviceentries[DEV].Info.name = '/dev/../../etc'
    },
    `device ${DEV}: name "/dev/../../etc" is not a device path`,
  )
  await refused(
    t,
    (d) => {
      d.volumeentries[VOL].GlusterVolumeOptions = ['--log-file=/tmp/x']
    },
    `volume ${VOL}: volume option "--log-file=/tmp/x" must be "<key> <value>"`,
  )
})

t.test('old exports are upgraded by heketi steps (db/migrations)', async (t) => {
  const doc = JSON.parse(sampleText)
  // an export from before the cluster flags, brick volume ids and pending operations
  doc.dbattributeentries = {}
  delete doc.pendingoperations
  const cluster = Object.values(doc.clusterentries)[0] as { Info: { block: boolean; file: boolean } }
  cluster.Info.block = false
  cluster.Info.file = false
  for (const b of Object.values(doc.brickentries) as { Info: { volume: string } }[]) b.Info.volume = ''
  const dir = await imported(JSON.stringify(doc))
  await exportDb({ dbFile: join(dir, 'heqet.db'), jsonFile: join(dir, 'again.json') })
  const again = JSON.parse(readFileSync(join(dir, 'again.json'), 'utf8'))
  t.same(Object.keys(again.dbattributeentries).sort(), Object.keys(sample.dbattributeentries!).sort())
  t.same(again.brickentries, sample.brickentries, 'every brick knows its volume again')
  t.same(again.clusterentries, sample.clusterentries, 'the cluster takes block and file volumes')
})

/** the sample with volume acb5… (2 GiB, durability none) made a block-hosting volume holding one 1 GiB block volume */
function withBlockVolume(doc: any, hosting: string, bv: string) {
  const cluster = Object.keys(doc.clusterentries)[0]!
  doc.clusterentries[cluster].Info.blockvolumes = [bv]
  // in Go's field order: block comes before snapshot
  const { snapshot, id: vid, cluster: vc, mount, blockinfo: _old, ...head } = doc.volumeentries[hosting].Info
  doc.volumeentries[hosting].Info = {
    ...head,
    block: true,
    snapshot,
    id: vid,
    cluster: vc,
    mount,
    blockinfo: { reservedsize: 1, blockvolume: [bv] },
  }
  doc.blockvolumeentries[bv] = {
    Info: {
      size: 1,
      name: 'blockvol_pvc',
      clusters: [cluster],
      hacount: 3,
      auth: true,
      id: bv,
      blockvolume: {
        hosts: ['127.0.1.1', '127.0.1.2', '127.0.1.3'],
        iqn: `iqn.2016-12.org.gluster-block:${bv}`,
        lun: 0,
        username: bv,
        password: 'secret',
      },
      cluster,
      blockhostingvolume: hosting,
      usablesize: 1,
    },
    Pending: { Id: '' },
  }
  return cluster
}

t.test('block-hosting volumes and block volumes keep everything; old ones get their reserve', async (t) => {
  const doc = JSON.parse(sampleText)
  const hosting = 'acb55a06d6f5586ee7fef65af94d25fa' // 2 GiB, durability none
  const bv = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
  withBlockVolume(doc, hosting, bv)
  const text = `${JSON.stringify(doc, null, 4)}\n`
  const dir = await imported(text)
  await exportDb({ dbFile: join(dir, 'heqet.db'), jsonFile: join(dir, 'again.json') })
  const again = readFileSync(join(dir, 'again.json'), 'utf8')
  const id = (s: string) => JSON.parse(s).dbattributeentries.DB_GENERATION_ID.Value
  t.equal(again.replace(id(again), id(text)), text, 'exported back byte for byte')

  const app = await makeApp(t, { dir })
  const info = (await app.call('GET', `/volumes/${hosting}`)).json()
  t.same([info.block, info.blockinfo], [true, { reservedsize: 1, blockvolume: [bv] }])
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)

  // from before heketi reserved 2 % of hosting volumes: the upgrade step moves it from free
  doc.volumeentries[hosting].Info.blockinfo = { freesize: 1, blockvolume: [bv] }
  delete doc.dbattributeentries.DB_DEVICE_HAS_ID_META
  const upgraded = await imported(JSON.stringify(doc))
  await exportDb({ dbFile: join(upgraded, 'heqet.db'), jsonFile: join(upgraded, 'again.json') })
  const out = JSON.parse(readFileSync(join(upgraded, 'again.json'), 'utf8'))
  t.same(out.volumeentries[hosting].Info.blockinfo, { reservedsize: 1, blockvolume: [bv] })
  t.equal(out.dbattributeentries.DB_DEVICE_HAS_ID_META.Value, 'yes')
})

t.test('block volume operations heketi left unfinished are finished or undone by the cleaner', async (t) => {
  const doc = JSON.parse(sampleText)
  const hosting = 'acb55a06d6f5586ee7fef65af94d25fa'
  const bv = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
  withBlockVolume(doc, hosting, bv)
  const op = 'dddddddddddddddddddddddddddddddd'
  doc.blockvolumeentries[bv].Pending.Id = op
  // delete-block-volume (5) with its delete-block-volume change (7)
  doc.pendingoperations[op] = {
    Id: op,
    Timestamp: 1700000000,
    Type: 5,
    Actions: [{ Change: 7, Id: bv, Delta: null }],
    Status: '',
  }
  const app = await makeApp(t, { dir: await imported(JSON.stringify(doc)) })
  t.equal((await app.call('GET', `/blockvolumes/${bv}`)).statusCode, 404, 'hidden while pending')
  t.same((await app.call('GET', '/operations/pending')).json().pendingoperations, [
    { id: op, type_name: 'delete-block-volume', status: 'stale', sub_status: '' },
  ])
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same((await app.call('GET', '/blockvolumes')).json(), { blockvolumes: [] })
  t.same((await app.call('GET', `/volumes/${hosting}`)).json().blockinfo, { freesize: 1, reservedsize: 1 })
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('a create heketi left unfinished is hidden, then undone by the cleaner', async (t) => {
  const doc = JSON.parse(sampleText)
  const op = 'cccccccccccccccccccccccccccccccc'
  const volume = 'acb55a06d6f5586ee7fef65af94d25fa'
  const brick = '533e1f9c2519be9a22d2b1c2db862887'
  const device = doc.brickentries[brick].Info.device as string
  doc.volumeentries[volume].Pending.Id = op
  doc.brickentries[brick].Pending.Id = op
  doc.pendingoperations[op] = {
    Id: op,
    Timestamp: 1700000000,
    Type: 1,
    Actions: [
      { Change: 1, Id: brick, Delta: null },
      { Change: 2, Id: volume, Delta: null },
    ],
    Status: 'failed',
  }
  const app = await makeApp(t, { dir: await imported(JSON.stringify(doc)) })
  t.equal((await app.call('GET', `/volumes/${volume}`)).statusCode, 404, 'a volume being created is hidden')
  t.notOk((await app.call('GET', '/volumes')).json().volumes.includes(volume))
  t.same((await app.call('GET', '/operations/pending')).json().pendingoperations, [
    { id: op, type_name: 'create-volume', status: 'stale', sub_status: '' },
  ])
  const usedBefore = (await app.call('GET', `/devices/${device}`)).json().storage.used
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same((await app.call('GET', '/operations/pending')).json().pendingoperations, [])
  const after = (await app.call('GET', `/devices/${device}`)).json()
  const b = sample.brickentries![brick]
  t.equal(after.storage.used, usedBefore - b.TpSize - b.PoolMetadataSize, 'the brick space is given back')
  t.notOk(after.bricks.some((x: { id: string }) => x.id === brick))
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})

t.test('node and device states, tags, paths and PV UUIDs come through', async (t) => {
  const doc = JSON.parse(sampleText)
  const node = '466a371c3c6805ede85d20f9db262dfd' // both devices empty
  const device = '08d0f7e3d3968838457e4489105d0ebb'
  doc.nodeentries[node].State = 'offline'
  // written the way Go writes maps: keys sorted
  const { id: nodeId, ...nodeInfo } = doc.nodeentries[node].Info
  doc.nodeentries[node].Info = { ...nodeInfo, tags: { arbiter: 'disabled', rack: 'r6' }, id: nodeId }
  const { id, ...rest } = doc.deviceentries[device].Info
  doc.deviceentries[device].State = 'failed'
  doc.deviceentries[device].Info = {
    name: rest.name,
    tags: { tier: 'gold' },
    storage: rest.storage,
    id,
    paths: ['/dev/disk/by-id/wwn-0x5000c500a1b2c3d4', '/dev/sdc'],
    pv_uuid: 'x2b4Tq-9s1K-cD3e-Fg5H-iJ7k-Lm9N-oP1qRs',
  }
  const text = `${JSON.stringify(doc, null, 4)}\n`
  const dir = await imported(text)
  await exportDb({ dbFile: join(dir, 'heqet.db'), jsonFile: join(dir, 'again.json') })
  const again = readFileSync(join(dir, 'again.json'), 'utf8')
  const gen = (x: string) => JSON.parse(x).dbattributeentries.DB_GENERATION_ID.Value
  t.equal(again.replace(gen(again), gen(text)), text, 'exported back byte for byte')
  const app = await makeApp(t, { dir })
  t.equal((await app.call('GET', `/nodes/${node}`)).body, body(heketiNode(node, doc)))
  t.equal((await app.call('GET', `/devices/${device}`)).body, body(heketiDevice(device, doc)))
  // offline node and failed device take no new bricks
  const res = await app.run('POST', '/volumes', {
    size: 1,
    durability: { type: 'replicate', replicate: { replica: 3 } },
  })
  t.equal(res.statusCode, 303)
  const placed = (await app.call('GET', res.location!)).json().bricks.map((b: { node: string }) => b.node)
  t.notOk(placed.includes(node), 'nothing placed on the offline node')
})

t.test('an expand heketi left unfinished is undone: the new bricks go, the size stays', async (t) => {
  const doc = JSON.parse(sampleText)
  const op = 'dddddddddddddddddddddddddddddddd'
  const volume = 'acb55a06d6f5586ee7fef65af94d25fa' // durability none, one 2 GiB brick
  const device = '5aa17e545299ab0805dc81ece5617dbc' // empty, on another node
  const node = doc.deviceentries[device].NodeId as string
  const brick = 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee'
  const taken = 2097152 + 12288
  doc.brickentries[brick] = {
    Info: {
      id: brick,
      path: `/var/lib/heketi/mounts/vg_${device}/brick_${brick}/brick`,
      device,
      node,
      volume,
      size: 2097152,
    },
    TpSize: 2097152,
    PoolMetadataSize: 12288,
    Pending: { Id: op },
    LvmThinPool: `tp_${brick}`,
    LvmLv: '',
    SubType: 1,
  }
  doc.deviceentries[device].Bricks = [brick]
  doc.deviceentries[device].Info.storage = { total: 524288000, free: 524288000 - taken, used: taken }
  doc.volumeentries[volume].Bricks = [...doc.volumeentries[volume].Bricks, brick].sort()
  doc.pendingoperations[op] = {
    Id: op,
    Timestamp: 1700000000,
    Type: 3,
    Actions: [
      { Change: 5, Id: volume, Delta: 2 },
      { Change: 1, Id: brick, Delta: null },
    ],
    Status: '',
  }
  const dir = await imported(JSON.stringify(doc))
  await exportDb({ dbFile: join(dir, 'heqet.db'), jsonFile: join(dir, 'again.json') })
  const exported = JSON.parse(readFileSync(join(dir, 'again.json'), 'utf8'))
  t.same(exported.pendingoperations[op], { ...doc.pendingoperations[op], Status: 'stale' }, 'Delta kept')
  const app = await makeApp(t, { dir })
  t.equal(
    (await app.call('GET', `/volumes/${volume}`)).json().size,
    2,
    'a volume being expanded stays visible',
  )
  t.equal((await app.run('POST', '/operations/pending/cleanup', {})).statusCode, 204)
  t.same((await app.call('GET', '/operations/pending')).json().pendingoperations, [])
  const v = (await app.call('GET', `/volumes/${volume}`)).json()
  t.same([v.size, v.bricks.map((b: { id: string }) => b.id)], [2, ['533e1f9c2519be9a22d2b1c2db862887']])
  t.same(
    (await app.call('GET', `/devices/${device}`)).json().storage.used,
    0,
    'the new brick space is given back',
  )
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0)
})
