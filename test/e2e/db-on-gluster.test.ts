// heqet's own DB on GlusterFS, as the hyper-converged deployment keeps it:
// heketi-cli's setup-openshift-heketi-storage requests (the heketidbstorage
// volume and the /backup/db copy), the copy job's `cp` onto a FUSE mount of
// that replica-3 volume, then heqet serving from the LMDB file on the mount
// while it is killed -9 and restarted, and while one gluster node is down and
// back. Every change the API acknowledged must still be there afterwards.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { signToken } from '../../api/auth.ts'
import { loadTopology } from './lib/chaos.ts'
import { freePort, ServerProcess } from './lib/server.ts'
import { createTestbed, requireTestbed, type TestNode } from './lib/testbed.ts'

const ADMIN_KEY = 'dbgl-admin'
/** heketi-cli's default option list for heketidbstorage (clients spec 3.6) */
const DB_VOLUME_OPTIONS = [
  'performance.stat-prefetch off',
  'performance.write-behind off',
  'performance.open-behind off',
  'performance.quick-read off',
  'performance.strict-o-direct on',
  'performance.read-ahead off',
  'performance.io-cache off',
  'performance.readdir-ahead off',
  'user.heketi.dbstoragelevel 1',
]
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function heqetConfig(dir: string, db: string, tb: { sshKeyFile: string; sshUser: string; sshPort: number }) {
  const file = join(dir, `heketi-${Date.now()}.json`)
  writeFileSync(
    file,
    JSON.stringify({
      port: '8080',
      jwt: { admin: { key: ADMIN_KEY }, user: { key: 'dbgl-user' } },
      glusterfs: {
        executor: 'ssh',
        sshexec: { keyfile: tb.sshKeyFile, user: tb.sshUser, port: String(tb.sshPort) },
        db,
        loglevel: 'warning',
        disable_monitor_gluster_nodes: true,
      },
    }),
  )
  return file
}

/** kill -9 every glusterd and brick process of this node (pids are shared: match the node's mount namespace) */
const STOP_NODE = `me=$(readlink /proc/self/ns/mnt)
for p in $(pgrep -x 'glusterd|glusterfsd'); do
  [ "$(readlink /proc/$p/ns/mnt)" = "$me" ] && kill -9 "$p"
done
true`

/** how many of the volume's bricks gluster reports online (asked on `node`) */
async function bricksOnline(node: TestNode, volume: string): Promise<number> {
  const status = await node.exec(`gluster --mode=script volume status ${volume} detail`)
  return [...status.stdout.matchAll(/^Online\s*:\s*Y/gm)].length
}

/** poll `check` once a second until it is true or the time is up */
async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await sleep(1000)
  }
  return false
}

/** true when self-heal has nothing left to copy on any brick */
async function healed(node: TestNode, volume: string): Promise<boolean> {
  const info = await node.exec(`gluster --mode=script volume heal ${volume} info`)
  const counts = [...info.stdout.matchAll(/Number of entries:\s*(\d+)/g)].map((m) => Number(m[1]))
  return info.code === 0 && counts.length === 3 && counts.every((n) => n === 0)
}

t.test('LMDB on a FUSE mount of a replica-3 volume survives kill -9 and a node outage', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 1, name: 'hqdbfuse' })
  t.teardown(() => tb.destroy())
  const local = mkdtempSync(join(tmpdir(), 'heqet-dbgl-'))

  // 1. the bootstrap heqet (deploy-heketi): local DB, topology
  const boot = new ServerProcess(heqetConfig(local, join(local, 'boot.db'), tb), await freePort(), ADMIN_KEY)
  await boot.start()
  t.teardown(() => boot.stop())
  await loadTopology(boot, tb)

  // 2. setup-openshift-heketi-storage: no heketidbstorage yet, create it, read the DB
  const clusterIds: string[] = JSON.parse((await boot.call('GET', '/clusters')).body).clusters
  for (const id of clusterIds) {
    for (const vid of JSON.parse((await boot.call('GET', `/clusters/${id}`)).body).volumes) {
      t.not(JSON.parse((await boot.call('GET', `/volumes/${vid}`)).body).name, 'heketidbstorage')
    }
  }
  const created = await boot.run('POST', '/volumes', {
    size: 2,
    name: 'heketidbstorage',
    durability: { type: 'replicate', replicate: { replica: 3 }, disperse: {} },
    glustervolumeoptions: DB_VOLUME_OPTIONS,
    snapshot: { enable: false, factor: 0 },
  })
  t.equal(created.status, 303, created.body)
  const volume = JSON.parse((await boot.call('GET', created.location!)).body)
  t.equal(volume.name, 'heketidbstorage')
  const hosts: string[] = volume.mount.glusterfs.hosts
  t.equal(hosts.length, 3)
  t.ok(
    hosts.every((h) => /^\d+\.\d+\.\d+\.\d+$/.test(h)),
    'hosts are IP addresses (the Endpoints object needs them)',
  )
  const info = await tb.nodes[0]!.exec('gluster --mode=script volume info heketidbstorage')
  t.match(info.stdout, /performance\.write-behind: off/)
  t.match(info.stdout, /performance\.strict-o-direct: on/)
  const backup = await fetch(`http://127.0.0.1:${boot.port}/backup/db`, {
    headers: { authorization: `bearer ${signToken('admin', ADMIN_KEY, 'GET', '/backup/db')}` },
  })
  t.equal(backup.status, 200)
  const dbBytes = Buffer.from(await backup.arrayBuffer())
  await boot.stop()

  // 3. the copy job: `cp /db/heketi.db /heketi` onto the gluster volume
  const mount = await tb.mountVolume(hosts[0]!, 'heketidbstorage', hosts.slice(1))
  t.teardown(() => mount.unmount())
  const dbFile = join(mount.path, 'heketi.db')
  writeFileSync(dbFile, dbBytes)
  t.same(readFileSync(dbFile), dbBytes, 'DB copied onto the volume')

  // 4. heqet serving from the gluster volume
  const server = new ServerProcess(heqetConfig(local, dbFile, tb), await freePort(), ADMIN_KEY)
  await server.start()
  t.teardown(() => server.stop())
  t.same(JSON.parse((await server.call('GET', '/clusters')).body).clusters, clusterIds, 'the copied DB loads')
  const committed = { clusters: [...clusterIds], volumes: [volume.id as string] }
  const addCluster = async () => {
    const res = await server.call('POST', '/clusters', { file: true, block: false })
    t.equal(res.status, 201, res.body)
    committed.clusters.push(JSON.parse(res.body).id)
  }
  for (let i = 0; i < 5; i++) await addCluster()
  const vol = await server.run('POST', '/volumes', { size: 1 })
  t.equal(vol.status, 303, vol.body)
  committed.volumes.push(vol.location!.split('/').pop()!)

  const expectCommitted = async (when: string) => {
    const clusters: string[] = JSON.parse((await server.call('GET', '/clusters')).body).clusters
    t.same([...clusters].sort(), [...committed.clusters].sort(), `${when}: every acknowledged cluster`)
    const volumes: string[] = JSON.parse((await server.call('GET', '/volumes')).body).volumes
    t.same([...volumes].sort(), [...committed.volumes].sort(), `${when}: every acknowledged volume`)
    const check = JSON.parse((await server.call('GET', '/db/check')).body)
    t.equal(check.totalinconsistencies, 0, `${when}: DB consistent`)
  }

  // 5. kill -9 and restart on the FUSE mount
  await server.kill9()
  await server.start()
  await expectCommitted('after kill -9')

  // 6. one gluster node down while heqet serves reads and writes, then back
  const down = tb.nodes[2]!
  const up = tb.nodes[0]!
  t.equal(await bricksOnline(up, 'heketidbstorage'), 3, 'three bricks online before')
  t.equal((await down.exec(STOP_NODE)).code, 0)
  t.equal((await down.exec('systemctl status glusterd')).code, 3, 'glusterd stopped on the node')
  t.ok(
    await waitFor(async () => (await bricksOnline(up, 'heketidbstorage')) === 2, 30_000),
    'one brick offline while heqet serves',
  )
  for (let i = 0; i < 10; i++) {
    await addCluster()
    t.equal((await server.call('GET', '/volumes')).status, 200)
  }
  t.equal((await down.exec('systemctl start glusterd')).code, 0, 'node back')
  // glusterd restarts the bricks of started volumes by itself; once in a CI run
  // it did not within 90 s (the brick stayed offline). Then do what an operator
  // does with heqet: its state repair starts bricks that do not run (`volume
  // start … force`); say so with glusterd's own errors.
  let online = await waitFor(async () => (await bricksOnline(up, 'heketidbstorage')) === 3, 45_000)
  if (!online) {
    const log = await down.exec("grep -E '\\] (E|W) \\[' /var/log/glusterfs/glusterd.log | tail -n 20")
    t.comment(`brick not restarted by glusterd within 45 s; glusterd errors:\n${log.stdout}`)
    const repair = await server.call('POST', '/internal/state/repair')
    t.equal(repair.status, 200, `state repair: ${repair.body}`)
    t.match(
      JSON.parse(repair.body).offline_bricks,
      [{ volume: 'heketidbstorage', restarted: [/./] }],
      "heqet's repair started the brick glusterd left down",
    )
    online = await waitFor(async () => (await bricksOnline(up, 'heketidbstorage')) === 3, 45_000)
  }
  t.ok(online, 'every brick online again')
  t.ok(
    await waitFor(() => healed(up, 'heketidbstorage'), 120_000),
    'self-heal copied the changes to the brick',
  )
  for (let i = 0; i < 3; i++) await addCluster()
  await server.kill9()
  await server.start()
  await expectCommitted('after the node outage and kill -9')
  await server.stop()
})
