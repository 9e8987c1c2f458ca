import { createCluster, deleteCluster, getCluster, setClusterFlags } from '../../src/clusters.ts'
import { decodeBody, goJson, sendJson, sendJsonText } from '../http.ts'
import { type Api, addRoute } from '../server.ts'
import { clusterView } from '../views.ts'

const flagsSchema = { block: 'bool', file: 'bool' } as const

export function registerClusterRoutes(api: Api): void {
  const { ctx } = api
  addRoute(api, {
    method: 'POST',
    path: '/clusters',
    handler: async (req, reply) => {
      const flags = decodeBody(req, flagsSchema)
      const cluster = await createCluster(ctx, flags)
      return sendJson(
        reply,
        201,
        ctx.store.read((tx) => clusterView(tx, cluster)),
      )
    },
  })
  addRoute(api, {
    method: 'GET',
    path: '/clusters',
    handler: async (_req, reply) =>
      sendJson(reply, 200, { clusters: ctx.store.read((tx) => tx.keys('cluster')) }),
  })
  addRoute(api, {
    method: 'GET',
    path: '/clusters/{id}',
    // synchronous, and kept until the next commit like GET /volumes: at
    // 10,000 nodes and volumes the body is ~700 KB, rendered once per commit
    handler: (req, reply) => {
      const id = req.params.id
      sendJsonText(
        reply,
        200,
        api.bodies.get(`/clusters/${id}`, () =>
          goJson(ctx.store.read((tx) => clusterView(tx, getCluster(tx, id)))),
        ),
      )
      return undefined
    },
  })
  addRoute(api, {
    method: 'POST',
    path: '/clusters/{id}/flags',
    handler: async (req, reply) => {
      const flags = decodeBody(req, flagsSchema)
      await setClusterFlags(ctx, req.params.id, flags)
      return reply.code(200).header('content-type', 'application/json; charset=UTF-8').send('')
    },
  })
  addRoute(api, {
    method: 'DELETE',
    path: '/clusters/{id}',
    handler: async (req, reply) => {
      await deleteCluster(ctx, req.params.id)
      return reply.code(200).send()
    },
  })
}
