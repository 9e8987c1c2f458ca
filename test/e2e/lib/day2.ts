// Helpers shared by the day-2 testbed tests (day2.test.ts, day2-repair.test.ts).
import type { Test } from 'tap'
import type { TestApp } from '../../helpers/app.ts'
import type { Testbed } from './testbed.ts'

import { ok, type Topology } from './topology.ts'

export { addTopology, ok, type Topology } from './topology.ts'

const GLUSTER = 'gluster --mode=script'

export async function glusterBricks(tb: Testbed, volume: string): Promise<string[]> {
  const res = await tb.nodes[0]!.exec(`${GLUSTER} volume info ${volume}`)
  return [...res.stdout.matchAll(/^Brick\d+: (\S+)/gm)].map((m) => m[1]!)
}

export async function timedRun(app: TestApp, method: string, path: string, body?: unknown) {
  const start = performance.now()
  const res = await app.run(method, path, body)
  return { ...res, ms: performance.now() - start }
}

export async function removeTopology(t: Test, app: TestApp, topo: Topology) {
  for (const nodeId of topo.nodeIds) {
    const node = (await app.call('GET', `/nodes/${nodeId}`)).json()
    for (const d of node.devices) {
      if (d.state === 'online')
        await ok(t, await app.run('POST', `/devices/${d.id}/state`, { state: 'offline' }), 204, 'offline')
      if (d.state !== 'failed')
        await ok(t, await app.run('POST', `/devices/${d.id}/state`, { state: 'failed' }), 204, 'failed')
      await ok(t, await app.run('DELETE', `/devices/${d.id}`), 204, `device ${d.name} deleted`)
    }
    await ok(t, await app.run('DELETE', `/nodes/${nodeId}`), 204, 'node deleted')
  }
  await ok(t, await app.call('DELETE', `/clusters/${topo.cluster}`), 200, 'cluster deleted')
}
