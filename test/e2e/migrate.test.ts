// Switching servers on a real GlusterFS testbed: volumes made and mounted
// under one heqet, its DB exported in heketi's shape with `heqet db export`,
// imported by `heqet db import` into a new DB file, and a fresh heqet on that
// file expands and deletes them — with a client mount kept open across the
// switch and nothing left on the nodes at the end.
//
// One volume gets heketi v10's quirk: the first brick of every set lives in a
// thin pool whose name is not tp_<brick id> (heketi-allocation §1). The first
// server creates those pools under other names and the export is edited to
// say so, as heketi's own export would; the fresh server must remove them by
// their stored names.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { BrickRequest, Executor } from '../../executors/executor.ts'
import { makeApp } from '../helpers/app.ts'
import { assertAgreement } from './lib/agreement.ts'
import { remoteExecutor, sshRunner } from './lib/heqet.ts'
import { createTestbed, requireTestbed } from './lib/testbed.ts'

const BIN = new URL('../../bin/heqet.js', import.meta.url).pathname
const replica3 = { size: 1, durability: { type: 'replicate', replicate: { replica: 3 } } }

function heqetCli(t: Test, ...args: string[]): void {
  const res = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 })
  t.equal(res.status, 0, `heqet ${args.join(' ')}: ${res.stderr.trim()}`)
}

/** Creates the first brick of every set in a pool not named after the brick, as heketi v10 does. */
function heketiPoolNames(inner: Executor, renamed: Map<string, string>): Executor {
  let created = 0
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'brickCreate') {
        const value = Reflect.get(target, prop, receiver)
        return typeof value === 'function' ? value.bind(target) : value
      }
      return (req: BrickRequest) => {
        if (created++ % 3 === 0) {
          const pool = `tp_${req.brickId.split('').reverse().join('')}`
          renamed.set(req.brickId, pool)
          return target.brickCreate({ ...req, lvmThinPool: pool })
        }
        return target.brickCreate(req)
      }
    },
  })
}

async function ok(t: Test, res: { statusCode: number; body: string }, status: number, what: string) {
  t.equal(res.statusCode, status, `${what}${res.statusCode === status ? '' : `: ${res.body}`}`)
}

t.test('heqet → export → fresh heqet: expand and delete what the first one made', async (t) => {
  if (!requireTestbed(t)) return
  const started = performance.now()
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 1, name: 'hqmig' })
  t.teardown(() => tb.destroy())
  const work = mkdtempSync(join(tmpdir(), 'heqet-migrate-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const baseFstab = (await tb.snapshot()).map((s) => s.fstab)

  // the old server: topology, two volumes, data written through a mount that stays open
  const oldDir = mkdtempSync(join(work, 'old-'))
  const renamed = new Map<string, string>()
  const old = await makeApp(t, { dir: oldDir, executor: remoteExecutor(sshRunner(tb)) })
  const cluster = (await old.call('POST', '/clusters', { block: true, file: true })).json().id as string
  for (const [i, node] of tb.nodes.entries()) {
    const res = await old.run('POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [node.ip], storage: [node.ip] },
      cluster,
    })
    await ok(t, res, 303, `node ${node.name} added`)
    const nodeId = res.location!.split('/').pop()!
    await ok(
      t,
      await old.run('POST', '/devices', { name: node.devices[0], node: nodeId }),
      204,
      'device added',
    )
  }
  const v1 = await old.run('POST', '/volumes', { ...replica3, name: 'app-data' })
  await ok(t, v1, 303, 'volume app-data created')
  const v1Id = v1.location!.split('/').pop()!
  // the second volume's bricks go through heketi's pool naming
  ;(old.ctx as { executor: Executor }).executor = heketiPoolNames(old.ctx.executor, renamed)
  const v2 = await old.run('POST', '/volumes', replica3)
  await ok(t, v2, 303, 'volume with heketi pool names created')
  const v2Id = v2.location!.split('/').pop()!
  t.equal(renamed.size, 1, 'one brick (the first of its set) in a differently named pool')

  const before = {
    v1: (await old.call('GET', `/volumes/${v1Id}`)).body,
    v2: (await old.call('GET', `/volumes/${v2Id}`)).json(),
    cluster: (await old.call('GET', `/clusters/${cluster}`)).body,
  }
  const [server, ...backups] = before.v2.mount.glusterfs.hosts as string[]
  const v1Mount = await tb.mountVolume(server!, 'app-data', backups)
  let v1Mounted = true
  t.teardown(async () => {
    if (v1Mounted) await v1Mount.unmount()
  })
  writeFileSync(join(v1Mount.path, 'before.txt'), 'written under the old server\n')
  const v2Mount = await tb.mountVolume(server!, before.v2.name, backups)
  writeFileSync(join(v2Mount.path, 'data.bin'), 'x'.repeat(200_000))
  await v2Mount.unmount()

  // the switch: stop the old server, export its DB, fix the pool names as heketi's export has them
  await old.close()
  const exported = join(work, 'export.json')
  heqetCli(t, 'db', 'export', `--dbfile=${join(oldDir, 'heqet.db')}`, `--jsonfile=${exported}`)
  const doc = JSON.parse(readFileSync(exported, 'utf8'))
  for (const [brickId, pool] of renamed) doc.brickentries[brickId].LvmThinPool = pool
  writeFileSync(exported, JSON.stringify(doc, null, 4))
  const newDir = mkdtempSync(join(work, 'new-'))
  heqetCli(t, 'db', 'import', `--jsonfile=${exported}`, `--dbfile=${join(newDir, 'heqet.db')}`)

  // the fresh server on the imported file
  const fresh = await makeApp(t, { dir: newDir, executor: remoteExecutor(sshRunner(tb)) })
  t.equal((await fresh.call('GET', `/volumes/${v1Id}`)).body, before.v1, 'app-data answers as before')
  t.equal(
    (await fresh.call('GET', `/clusters/${cluster}`)).body,
    before.cluster,
    'the cluster answers as before',
  )
  t.equal((await fresh.call('GET', '/db/check')).json().totalinconsistencies, 0, 'db check clean')
  await assertAgreement(t, fresh, tb, baseFstab, 'after import')
  writeFileSync(join(v1Mount.path, 'after.txt'), 'written under the new server\n')

  await ok(t, await fresh.run('POST', `/volumes/${v2Id}/expand`, { expand_size: 1 }), 303, 'expanded')
  const expanded = (await fresh.call('GET', `/volumes/${v2Id}`)).json()
  t.same([expanded.size, expanded.bricks.length], [2, 6])
  const gInfo = await tb.nodes[0]!.exec(`gluster --mode=script volume info ${expanded.name}`)
  t.match(gInfo.stdout, /Number of Bricks: 2 x 3 = 6/)
  const again = await tb.mountVolume(server!, expanded.name, backups)
  t.equal(readFileSync(join(again.path, 'data.bin'), 'utf8').length, 200_000, 'data intact after expand')
  await again.unmount()
  await assertAgreement(t, fresh, tb, baseFstab, 'after expand')

  t.same(
    [
      readFileSync(join(v1Mount.path, 'before.txt'), 'utf8'),
      readFileSync(join(v1Mount.path, 'after.txt'), 'utf8'),
    ],
    ['written under the old server\n', 'written under the new server\n'],
    'the client mount served throughout',
  )
  await v1Mount.unmount()
  v1Mounted = false
  await ok(t, await fresh.run('DELETE', `/volumes/${v1Id}`), 204, 'app-data deleted')
  await ok(t, await fresh.run('DELETE', `/volumes/${v2Id}`), 204, 'expanded volume deleted')
  for (const [i, s] of (await tb.snapshot()).entries()) {
    t.same(s.lvs, [], `node ${i}: no LVs left (differently named pools included)`)
    t.same(s.mounts, [], `node ${i}: no brick mounts left`)
    t.same(s.fstab, baseFstab[i], `node ${i}: fstab back to what it was`)
    t.same(
      s.brickDirs.filter((d) => d.includes('/brick_')),
      [],
      `node ${i}: no brick directories left`,
    )
    t.same(s.glusterVolumes, [], `node ${i}: no gluster volumes left`)
  }
  t.equal((await fresh.call('GET', '/db/check')).json().totalinconsistencies, 0)
  t.comment(`migration scenario: ${Math.round((performance.now() - started) / 1000)} s`)
})
