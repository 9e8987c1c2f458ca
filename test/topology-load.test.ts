// bin/heqet-topology-load.js (what deploy/heqet-deploy runs in the heqet pod)
// against a heqet on the mock executor: deploy/examples/topology.json loads,
// a second run adds nothing, a device that cannot be added fails the run.
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ADMIN_KEY, makeApp } from './helpers/app.ts'

const ROOT = join(import.meta.dirname, '..')
const LOADER = join(ROOT, 'bin', 'heqet-topology-load.js')
const TOPOLOGY = join(ROOT, 'deploy', 'examples', 'topology.json')

async function load(server: string, file: string, secret = ADMIN_KEY) {
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [LOADER, `--server=${server}`, `--json=${file}`],
      {
        env: { PATH: process.env.PATH, HEKETI_CLI_USER: 'admin', HEKETI_CLI_KEY: secret },
        timeout: 60_000,
      },
    )
    return { code: 0, stdout }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout + e.stderr }
  }
}

t.test('load, load again, refusals', async (t) => {
  const app = await makeApp(t)
  await app.app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.app.server.address()
  const server = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`

  const first = await load(server, TOPOLOGY)
  t.equal(first.code, 0, first.stdout)
  t.match(first.stdout, /Creating cluster \.\.\. ID: [0-9a-f]{32}/)
  t.equal(first.stdout.match(/Adding device \S+ \.\.\. OK/g)?.length, 6)
  const clusters = (await app.call('GET', '/clusters')).json().clusters
  t.equal(clusters.length, 1)
  const cluster = (await app.call('GET', `/clusters/${clusters[0]}`)).json()
  t.equal(cluster.nodes.length, 3)
  const nodes = await Promise.all(
    cluster.nodes.map(async (id: string) => (await app.call('GET', `/nodes/${id}`)).json()),
  )
  t.same(nodes.map((n) => n.hostnames.manage[0]).sort(), ['worker-1', 'worker-2', 'worker-3'])
  t.same(nodes.map((n) => n.zone).sort(), [1, 2, 3])
  t.ok(nodes.every((n) => n.devices.length === 2))

  const again = await load(server, TOPOLOGY)
  t.equal(again.code, 0, again.stdout)
  t.notMatch(again.stdout, /Creating|Adding/, 'nothing added twice')
  t.equal(again.stdout.match(/Found device/g)?.length, 6)
  t.equal((await app.call('GET', '/clusters')).json().clusters.length, 1)

  // a new device on a known node is added to it; an invalid one fails the run
  const extra = join(app.dir, 'extra.json')
  writeFileSync(
    extra,
    JSON.stringify({
      clusters: [
        {
          nodes: [
            {
              node: { hostnames: { manage: ['worker-1'], storage: ['10.0.0.11'] }, zone: 1 },
              devices: ['/dev/sdd', '/dev/sdb', 'not a device'],
            },
          ],
        },
      ],
    }),
  )
  const third = await load(server, extra)
  t.equal(third.code, 1, 'a refused device fails the run')
  t.match(third.stdout, /Adding device \/dev\/sdd \.\.\. OK/)
  t.match(third.stdout, /Adding device not a device \.\.\. Unable to add device: /)

  const denied = await load(server, TOPOLOGY, 'wrong-key')
  t.equal(denied.code, 1)
  t.match(denied.stdout, /signature is invalid/)
})
