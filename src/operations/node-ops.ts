// Node add and delete as journaled operations. heketi runs them as plain
// jobs: a crash (or a failed DB write) after `peer probe` leaves a peer the
// DB does not know, and a failed `peer detach` is logged and forgotten.
// Here the record names the peer until the node is saved (add) or removed
// (delete), so the cleaner detaches it or finishes the delete.

import type { Hostnames, NodeEntry } from '../../db/entries.ts'
import type { ReadTxn, WriteTxn } from '../../db/store.ts'
import { NodeCommandError } from '../../executors/executor.ts'
import type { AppContext, JobResult } from '../context.ts'
import { insertSorted, without } from '../context.ts'
import { Errors } from '../errors.ts'
import { onAnyHost } from './bricks.ts'
import type { Operation } from './operation.ts'

export interface NodeAddData {
  nodeId: string
  clusterId: string
  zone: number
  hostnames: Hostnames
  tags: Record<string, string>
  /** manage host of the node that probes the new one; '' for a cluster's first node */
  probeFrom: string
}

/** `manage:<h>` / `storage:<h>` keys of the hostname registry */
export function registrations(hostnames: Hostnames): string[] {
  return [...hostnames.manage.map((h) => `manage:${h}`), ...hostnames.storage.map((h) => `storage:${h}`)]
}

export function unregister(tx: WriteTxn, keys: string[], nodeId: string): void {
  for (const key of keys) if (tx.get('hostname', key)?.nodeId === nodeId) tx.del('hostname', key)
}

/**
 * 409 when a hostname belongs to another node that exists or is being
 * added; a registration whose node is gone is stale and may be taken over.
 */
export function checkRegistrations(tx: ReadTxn, keys: string[], nodeId: string): void {
  const live = (owner: string) =>
    tx.get('node', owner) !== undefined ||
    tx.values('pendingop').some((op) => op.type === 'add-node' && op.data['nodeId'] === owner)
  for (const key of keys) {
    const owner = tx.get('hostname', key)
    if (owner && owner.nodeId !== nodeId && live(owner.nodeId)) {
      throw Errors.hostnameUsed(key.slice(key.indexOf(':') + 1), owner.nodeId)
    }
  }
}

/** Manage hosts of the cluster's other nodes, `first` (if any) in front. */
function peersOf(tx: ReadTxn, clusterId: string, nodeId: string, first = ''): string[] {
  const hosts = (tx.get('cluster', clusterId)?.nodes ?? []).flatMap((id) => {
    if (id === nodeId) return []
    const host = tx.get('node', id)?.hostnames.manage[0]
    return host ? [host] : []
  })
  return first ? [first, ...hosts.filter((h) => h !== first)] : hosts
}

export class NodeAddOperation implements Operation {
  readonly type = 'add-node' as const
  readonly cleanMode = 'rollback' as const

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly d: NodeAddData,
  ) {}

  build(tx: WriteTxn) {
    if (!tx.get('cluster', this.d.clusterId)) throw Errors.clusterMissing()
    const keys = registrations(this.d.hostnames)
    checkRegistrations(tx, keys, this.d.nodeId)
    for (const key of keys) tx.put('hostname', key, { nodeId: this.d.nodeId })
    return { actions: [], data: { ...this.d } }
  }

  async exec(): Promise<void> {
    if (this.d.probeFrom) await this.ctx.executor.peerProbe(this.d.probeFrom, this.d.hostnames.storage[0]!)
  }

  finalize(tx: WriteTxn): JobResult {
    const cluster = tx.get('cluster', this.d.clusterId)
    if (!cluster) throw Errors.clusterMissing()
    const node: NodeEntry = {
      id: this.d.nodeId,
      clusterId: this.d.clusterId,
      zone: this.d.zone,
      hostnames: this.d.hostnames,
      tags: this.d.tags,
      state: 'online',
      devices: [],
    }
    tx.put('node', node.id, node)
    tx.put('cluster', cluster.id, { ...cluster, nodes: insertSorted(cluster.nodes, node.id) })
    return { kind: 'node', id: node.id }
  }

  /**
   * Take the new host out of the trusted pool again (a probe that failed or
   * timed out may have gone through). Detaching a host that is not a peer
   * is fine; any other failure throws and the record stays for the cleaner.
   */
  async undo(): Promise<void> {
    if (!this.d.probeFrom) return
    const hosts = this.ctx.store.read((tx) => peersOf(tx, this.d.clusterId, this.d.nodeId, this.d.probeFrom))
    await onAnyHost(hosts, (h) => this.ctx.executor.peerDetach(h, this.d.hostnames.storage[0]!))
  }

  undoDb(tx: WriteTxn): void {
    unregister(tx, registrations(this.d.hostnames), this.d.nodeId)
  }
}

/** A failure that says the command did not run to completion: its effect is unknown. */
function outcomeUnknown(err: unknown): boolean {
  return !(err instanceof NodeCommandError) || err.exitCode === undefined
}

export class NodeDeleteOperation implements Operation {
  readonly type = 'delete-node' as const
  readonly cleanMode = 'rollforward' as const
  private detachUnknown = false

  constructor(
    private readonly ctx: AppContext,
    readonly id: string,
    private readonly nodeId: string,
  ) {}

  build(tx: WriteTxn) {
    const node = tx.get('node', this.nodeId)
    if (!node) throw Errors.notFound()
    if (node.devices.length > 0) throw Errors.nodeHasDevices(this.nodeId)
    return {
      actions: [],
      data: { nodeId: node.id, clusterId: node.clusterId, storageHost: node.hostnames.storage[0]! },
    }
  }

  private data() {
    const entry = this.ctx.store.read((tx) => tx.get('pendingop', this.id))
    return entry?.data as { nodeId: string; clusterId: string; storageHost: string } | undefined
  }

  /**
   * `gluster peer detach` from another node of the cluster (heketi's choice
   * first, then the others). heketi ignores a failure; here it fails the
   * delete, since the DB would forget a host gluster still trusts.
   */
  async exec(): Promise<void> {
    const d = this.data()
    if (!d) throw new Error(`node delete ${this.id}: journal record missing`)
    const hosts = this.ctx.store.read((tx) => peersOf(tx, d.clusterId, d.nodeId))
    if (hosts.length === 0) return // the cluster's last node: no pool to leave
    const errors: unknown[] = []
    const result = onAnyHost(hosts, async (h) => {
      try {
        await this.ctx.executor.peerDetach(h, d.storageHost)
      } catch (err) {
        errors.push(err)
        throw err
      }
    })
    await result.catch((err: Error) => {
      this.detachUnknown = errors.some(outcomeUnknown)
      throw err
    })
  }

  finalize(tx: WriteTxn): JobResult {
    const node = tx.get('node', this.nodeId)
    if (!node) return undefined
    if (node.devices.length > 0) throw Errors.nodeHasDevices(this.nodeId)
    const cluster = tx.get('cluster', node.clusterId)
    if (cluster) tx.put('cluster', cluster.id, { ...cluster, nodes: without(cluster.nodes, node.id) })
    // block volumes are no longer exported by the node (volume mounts are recomputed on read)
    const storage = node.hostnames.storage[0]
    for (const id of cluster?.blockVolumes ?? []) {
      const bv = tx.get('blockvolume', id)
      if (bv && storage && bv.hosts.includes(storage))
        tx.put('blockvolume', id, { ...bv, hosts: bv.hosts.filter((h) => h !== storage) })
    }
    unregister(tx, registrations(node.hostnames), node.id)
    tx.del('node', node.id)
    return undefined
  }

  /** A refused detach left the pool as it was; one that may have happened is finished by the cleaner. */
  async undo(): Promise<void> {
    if (this.detachUnknown) {
      throw new Error(
        `peer detach of node ${this.nodeId} may have happened; finishing is left to the cleaner`,
      )
    }
  }

  undoDb(_tx: WriteTxn): void {}
}
