// GET /internal/leader: which replica leads (replicated heqet on etcd,
// api/replica.ts). One server (LMDB) answers that it is the leader itself.
import { sendJson } from '../http.ts'
import { type Api, addRoute } from '../server.ts'

export function registerReplicaRoutes(api: Api): void {
  addRoute(api, {
    method: 'GET',
    path: '/internal/leader',
    handler: async (_req, reply) => {
      const replica = api.replica
      if (!replica) return sendJson(reply, 200, { replicated: false, leader: true })
      const leader = replica.leader()
      return sendJson(reply, 200, {
        replicated: true,
        id: replica.id,
        leader: replica.isLeader(),
        ready: replica.ready,
        ...(leader ? { leader_id: leader.id, leader_url: leader.url } : {}),
        terms: replica.election.terms,
        depositions: replica.election.depositions,
        forwarded: replica.forwarded,
      })
    },
  })
}
