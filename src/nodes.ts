// Nodes: add (hostname registry, glusterd check, peer probe), delete (peer
// detach), state changes and tags.

import type { EntityState, Hostnames, NodeEntry } from '../db/entries.ts'
import type { ReadTxn, WriteTxn } from '../db/store.ts'
import { getCluster } from './clusters.ts'
import { type AppContext, insertSorted, type Job, without } from './context.ts'
import { removeDevice } from './devices.ts'
import { Errors } from './errors.ts'
import { newId } from './ids.ts'

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

function registrations(req: { hostnames: Hostnames }): string[] {
  return [
    ...req.hostnames.manage.map((h) => `manage:${h}`),
    ...req.hostnames.storage.map((h) => `storage:${h}`),
  ]
}

function unregister(tx: WriteTxn, keys: string[], nodeId: string) {
  for (const key of keys) if (tx.get('hostname', key)?.nodeId === nodeId) tx.del('hostname', key)
}

/** Synchronous part of node add; resolves with the background job. */
export async function addNode(ctx: AppContext, req: NodeAddRequest): Promise<Job> {
  const id = newId()
  const keys = registrations(req)
  const peers = await ctx.store.write((tx) => {
    const cluster = tx.get('cluster', req.cluster)
    if (!cluster) throw Errors.clusterMissing()
    for (const key of keys) {
      const owner = tx.get('hostname', key)
      // a registration whose node is gone is stale and may be taken over
      if (owner && owner.nodeId !== id && tx.get('node', owner.nodeId)) {
        throw Errors.hostnameUsed(key.slice(key.indexOf(':') + 1), owner.nodeId)
      }
    }
    for (const key of keys) tx.put('hostname', key, { nodeId: id })
    return {
      hasNodes: cluster.nodes.length > 0,
      online: cluster.nodes.map((n) => tx.get('node', n)!).filter((n) => n.state === 'online'),
    }
  })
  const release = () => ctx.store.write((tx) => unregister(tx, keys, id))

  let peer: NodeEntry | undefined
  try {
    if (peers.hasNodes) {
      peer = await firstResponding(ctx, peers.online)
      if (!peer) throw Errors.noGlusterdInCluster()
    } else {
      await ctx.executor.glusterdCheck(req.hostnames.manage[0]!).catch(() => {
        throw Errors.noGlusterdOnNewNode()
      })
    }
  } catch (err) {
    // heketi keeps the registrations of a refused add; nobody wants that
    await release()
    throw err
  }

  return async () => {
    try {
      if (peer) await ctx.executor.peerProbe(manageHost(peer), req.hostnames.storage[0]!)
      await ctx.store.write((tx) => {
        const cluster = getCluster(tx, req.cluster)
        const node: NodeEntry = {
          id,
          clusterId: req.cluster,
          zone: req.zone,
          hostnames: req.hostnames,
          tags: req.tags,
          state: 'online',
          devices: [],
        }
        tx.put('node', id, node)
        tx.put('cluster', cluster.id, { ...cluster, nodes: insertSorted(cluster.nodes, id) })
      })
    } catch (err) {
      await release()
      throw err
    }
    ctx.log.info(`Added node ${id}`)
    return { kind: 'node', id }
  }
}

/** The first node (in the given order) whose glusterd answers. */
export async function firstResponding(ctx: AppContext, nodes: NodeEntry[]): Promise<NodeEntry | undefined> {
  for (const node of nodes) {
    try {
      await ctx.executor.glusterdCheck(manageHost(node))
      return node
    } catch {
      // try the next one
    }
  }
  return undefined
}

export async function deleteNode(ctx: AppContext, id: string): Promise<Job> {
  const node = ctx.store.read((tx) => getNode(tx, id))
  if (node.devices.length > 0) throw Errors.nodeHasDevices(id)
  return async () => {
    const other = ctx.store.read((tx) => {
      const cluster = tx.get('cluster', node.clusterId)
      const otherId = cluster?.nodes.find((n) => n !== id)
      return otherId ? tx.get('node', otherId) : undefined
    })
    if (other) {
      await ctx.executor.peerDetach(manageHost(other), storageHost(node)).catch((err: Error) => {
        ctx.log.warn(`peer detach of ${storageHost(node)} failed (ignored): ${err.message}`)
      })
    }
    await ctx.store.write((tx) => {
      const current = getNode(tx, id)
      if (current.devices.length > 0) throw Errors.nodeHasDevices(id)
      const cluster = tx.get('cluster', current.clusterId)
      if (cluster) tx.put('cluster', cluster.id, { ...cluster, nodes: without(cluster.nodes, id) })
      unregister(tx, registrations(current), id)
      tx.del('node', id)
    })
    ctx.log.info(`Deleted node ${id}`)
    return undefined
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
