// The testbed's nodes and disks added through heqet's API, and the status
// assertion every testbed test uses for its requests.
import type { Test } from 'tap'
import type { TestApp } from '../../helpers/app.ts'
import type { Testbed } from './testbed.ts'

/** Asserts the status; the message carries the body when it differs. */
export async function ok(t: Test, res: { statusCode: number; body: string }, status: number, what: string) {
  t.equal(res.statusCode, status, `${what}${res.statusCode === status ? '' : `: ${res.body.trim()}`}`)
}

export interface Topology {
  cluster: string
  nodeIds: string[]
}

/**
 * A new cluster with every testbed node (zone = position + 1, peer probe) and,
 * unless `disks` is false, its disks.
 */
export async function addTopology(
  t: Test,
  app: TestApp,
  tb: Testbed,
  opts: { disks?: boolean } = {},
): Promise<Topology> {
  const cluster = (await app.call('POST', '/clusters', { block: true, file: true })).json().id
  const nodeIds: string[] = []
  for (const [i, node] of tb.nodes.entries()) {
    const res = await app.run('POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [node.ip], storage: [node.ip] },
      cluster,
    })
    await ok(t, res, 303, `node ${node.name} added`)
    nodeIds.push(res.location!.split('/').pop()!)
    for (const dev of opts.disks === false ? [] : node.devices) {
      await ok(
        t,
        await app.run('POST', '/devices', { name: dev, node: nodeIds[i] }),
        204,
        `device ${dev} added`,
      )
    }
  }
  return { cluster, nodeIds }
}
