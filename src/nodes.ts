// Nodes: add (hostname registry, glusterd check, peer probe), delete (peer
// detach) - both journaled operations (operations/node-ops.ts) - state
// changes and tags.

import type { EntityState, Hostnames, NodeEntry } from '../db/entries.ts'
import type { ReadTxn } from '../db/store.ts'
import { hostnameProblems, requireValid } from './command-values.ts'
import type { AppContext, Job } from './context.ts'
import { removeDevice } from './devices.ts'
import { Errors } from './errors.ts'
import { newId } from './ids.ts'
import {
  checkRegistrations,
  NodeAddOperation,
  NodeDeleteOperation,
  registrations,
} from './operations/node-ops.ts'
import { newOperationId, startOperation } from './operations/operation.ts'

export interface NodeAddRequest {
  zone: number
  hostnames: Hostnames
  cluster: string
  tags: Record<string, string>
}

export function getNode(tx: ReadTxn, id: string): NodeEntry {
  const n = tx.get('node', id)
  if (!n) throw Errors.notFound()
  return n
}

export const manageHost = (n: NodeEntry) => n.hostnames.manage[0]!
export const storageHost = (n: NodeEntry) => n.hostnames.storage[0]!

/** Synchronous part of node add (heketi's checks, in heketi's order); resolves with the background job. */
export async function addNode(ctx: AppContext, req: NodeAddRequest): Promise<Job> {
  requireValid(hostnameProblems(req.hostnames), 'hostnames')
  const id = newId()
  const peers = ctx.store.read((tx) => {
    const cluster = tx.get('cluster', req.cluster)
    if (!cluster) throw Errors.clusterMissing()
    checkRegistrations(tx, registrations(req.hostnames), id)
    return { hasNodes: cluster.nodes.length > 0, nodeIds: cluster.nodes }
  })
  let peer: NodeEntry | undefined
  if (peers.hasNodes) {
    peer = await firstResponding(ctx, onlineNodes(ctx, peers.nodeIds))
    if (!peer) throw Errors.noGlusterdInCluster()
  } else {
    await ctx.executor.glusterdCheck(req.hostnames.manage[0]!).catch((err: Error) => {
      ctx.log.info(`glusterd check of new node ${req.hostnames.manage[0]}: ${err.message}`)
      throw Errors.noGlusterdOnNewNode()
    })
  }
  // heketi commits the registrations before the checks and keeps them when
  // the add fails; here they are written with the journal record and go
  // with it when the add is undone
  const op = new NodeAddOperation(ctx, newOperationId(), {
    nodeId: id,
    clusterId: req.cluster,
    zone: req.zone,
    hostnames: req.hostnames,
    tags: req.tags,
    probeFrom: peer ? manageHost(peer) : '',
  })
  const job = await startOperation(ctx, op, { throttled: false })
  return async () => {
    const result = await job()
    ctx.log.info(`Added node ${id}`)
    return result
  }
}

/** The first node (in the given order) whose glusterd answers. */
/** The online nodes among `ids`, read one at a time: the first usually answers (10,000 nodes are not all read). */
function* onlineNodes(ctx: AppContext, ids: readonly string[]): Generator<NodeEntry> {
  for (const id of ids) {
    const node = ctx.store.read((tx) => tx.get('node', id))
    if (node?.state === 'online') yield node
  }
}

export async function firstResponding(
  ctx: AppContext,
  nodes: Iterable<NodeEntry>,
): Promise<NodeEntry | undefined> {
  for (const node of nodes) {
    try {
      await ctx.executor.glusterdCheck(manageHost(node))
      return node
    } catch (err) {
      ctx.log.info(`glusterd check of ${manageHost(node)}: ${(err as Error).message}; trying the next node`)
    }
  }
  return undefined
}

export async function deleteNode(ctx: AppContext, id: string): Promise<Job> {
  const node = ctx.store.read((tx) => getNode(tx, id))
  if (node.devices.length > 0) throw Errors.nodeHasDevices(id)
  const job = await startOperation(ctx, new NodeDeleteOperation(ctx, newOperationId(), id), {
    throttled: false,
  })
  return async () => {
    const result = await job()
    ctx.log.info(`Deleted node ${id}`)
    return result
  }
}

/** Validate the request synchronously; the transition runs as a job. */
export function setNodeState(ctx: AppContext, id: string, state: EntityState, healcheck: string): Job {
  ctx.store.read((tx) => getNode(tx, id))
  const release = state === 'failed' ? ctx.throttle.acquire() : () => {}
  return async () => {
    try {
      const node = ctx.store.read((tx) => getNode(tx, id))
      if (node.state === state) return undefined
      if (node.state === 'failed') {
        throw state === 'online' ? Errors.nodeFailedToOnline() : Errors.nodeFailedToOffline()
      }
      if (state === 'failed') {
        if (node.state !== 'offline') throw Errors.nodeNotOfflineForRemove(id)
        for (const deviceId of node.devices) {
          await removeDevice(ctx, deviceId, healcheck, { nodeRemoval: true }).catch((err: Error) => {
            if (err.message.includes('No Replacement was found')) throw Errors.nodeNoReplacement(id, deviceId)
            throw err
          })
        }
      }
      await ctx.store.write((tx) => tx.put('node', id, { ...getNode(tx, id), state }))
      return undefined
    } finally {
      release()
    }
  }
}

export type TagChange = 'set' | 'update' | 'delete'

export function applyTagChange(
  current: Record<string, string>,
  change: TagChange,
  tags: Record<string, string>,
): Record<string, string> {
  if (change === 'set') return { ...tags }
  if (change === 'update') return { ...current, ...tags }
  const out = { ...current }
  for (const key of Object.keys(tags)) delete out[key]
  return out
}

export async function setNodeTags(
  ctx: AppContext,
  id: string,
  change: TagChange,
  tags: Record<string, string>,
) {
  return ctx.store.write((tx) => {
    const node = getNode(tx, id)
    const next = applyTagChange(node.tags, change, tags)
    tx.put('node', id, { ...node, tags: next })
    return next
  })
}
