// GET /internal/state/examine/gluster: compare heqet's volumes with what
// gluster reports on each cluster (diagnostic; clients only print it).
import { heketiDump } from '../../db/heketi-export.ts'
import { repairState } from '../../src/repair.ts'
import { sendJson, Validation } from '../http.ts'
import { type Api, addRoute } from '../server.ts'

export function registerExamineRoutes(api: Api): void {
  const { ctx } = api
  addRoute(api, {
    method: 'GET',
    path: '/internal/state/examine/gluster',
    handler: async (_req, reply) => {
      const { dump, clusters } = ctx.store.read((tx) => ({
        dump: heketiDump(tx),
        clusters: tx.values('cluster').map((c) => ({
          id: c.id,
          nodes: c.nodes.flatMap((id) => {
            const n = tx.get('node', id)
            return n && n.state === 'online' ? [{ id: n.id, host: n.hostnames.manage[0]! }] : []
          }),
          volumes: c.volumes.flatMap((id) => {
            const v = tx.get('volume', id)
            return v && !v.pendingId ? [v.name] : []
          }),
          hostingVolumes: c.volumes.flatMap((id) => {
            const v = tx.get('volume', id)
            return v?.block && !v.pendingId ? [v.name] : []
          }),
        })),
      }))
      const report = [`OnDemand Examiner invoked while ${ctx.throttle.inFlight} ops are in flight`]
      const out = []
      let allMatch = true
      for (const c of clusters) {
        const nodesData = []
        for (const node of c.nodes) {
          const found: Record<string, unknown> = {}
          for (const name of c.volumes) {
            found[name] = await ctx.executor.volumeInfo(node.host, name).then(
              (info) => info.bricks.map((b) => b.name),
              () => null,
            )
          }
          const missing = Object.entries(found).filter(([, v]) => v === null)
          if (missing.length > 0) {
            allMatch = false
            report.push(`heketi volume list does not match with volume list of node ${node.id}`)
          }
          // `gluster-block list <bhv> --json` per block-hosting volume, as `bhv/name`
          const blockNames: string[] = []
          for (const bhv of c.hostingVolumes) {
            const names = await ctx.executor.blockVolumeList(node.host, bhv).catch((err: Error) => {
              report.push(`could not list block volumes of ${bhv} on node ${node.id}: ${err.message}`)
              return []
            })
            blockNames.push(...names.map((n) => `${bhv}/${n}`))
          }
          nodesData.push({ NodeHeketiID: node.id, VolumeInfo: found, BlockVolumeNames: blockNames })
        }
        if (c.nodes.length === 0 && c.volumes.length > 0) {
          allMatch = false
          report.push(`not able to fetch any data from cluster ${c.id}`)
        }
        out.push({ ClusterHeketiID: c.id, NodesData: nodesData })
      }
      if (allMatch) report.push('heketi volume list matches with volume list of all nodes')
      return sendJson(reply, 200, { heketidb: dump, report, clusters: out }, 4)
    },
  })

  // beyond heketi: list (dry_run=true) or fix what the nodes hold that the DB does not explain
  addRoute(api, {
    method: 'POST',
    path: '/internal/state/repair',
    handler: async (req, reply) => {
      const raw = (req.query as Record<string, string | undefined>)['dry_run'] ?? 'false'
      const v = new Validation()
      if (raw !== 'true' && raw !== 'false') v.add('dry_run', `${raw} is not true or false`)
      v.throwIfAny()
      const release = ctx.throttle.acquire()
      try {
        return sendJson(reply, 200, await repairState(ctx, raw === 'true'))
      } finally {
        release()
      }
    },
  })
}
