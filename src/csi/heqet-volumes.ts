// What the controller knows about heqet's volumes, read through the REST
// API: a volume's JSON, its CSI form, and an index of the fields that never
// change (name, gid, cluster) so a CreateVolume can find a volume by name
// and pick a free gid without fetching every volume every time.
import { GiB } from './capacity.ts'
import { type HeqetClient, HeqetHttpError } from './heqet-client.ts'
import type { Volume } from './messages.ts'
import type { Durability } from './parameters.ts'

/** The parts of heketi's VolumeInfo JSON the driver reads. */
export interface HeqetVolume {
  id: string
  name: string
  size: number
  cluster: string
  gid?: number
  durability: {
    type?: string
    replicate?: { replica?: number }
    disperse?: { data?: number; redundancy?: number }
  }
  mount: { glusterfs: { hosts: string[]; device: string; options: Record<string, string> } }
}

export const HEQET_ID = /^[0-9a-f]{32}$/

/** volume_context keys: what a node needs to mount without asking heqet */
export const CONTEXT_VOLUME = 'glusterVolume'
export const CONTEXT_SERVERS = 'glusterServers'
export const CONTEXT_GID = 'gid'
export const CONTEXT_CLUSTER = 'heqetCluster'

export function toCsiVolume(v: HeqetVolume): Volume {
  const context: Record<string, string> = {
    [CONTEXT_VOLUME]: v.name,
    [CONTEXT_SERVERS]: mountServers(v).join(','),
    [CONTEXT_CLUSTER]: v.cluster,
  }
  if (v.gid) context[CONTEXT_GID] = String(v.gid)
  return { capacity_bytes: v.size * GiB, volume_id: v.id, volume_context: context }
}

/**
 * The volfile server first, then the backups. heqet's mount info names the
 * first in `device` ("host:volume") and the rest in backup-volfile-servers,
 * comma-separated as heketi writes it.
 */
export function mountServers(v: HeqetVolume): string[] {
  const g = v.mount.glusterfs
  const first = g.device.slice(0, g.device.lastIndexOf(':')) || g.hosts[0] || ''
  const backups = (g.options['backup-volfile-servers'] ?? '').split(',').filter((h) => h !== '')
  return [first, ...backups.filter((h) => h !== first)].filter((h) => h !== '')
}

/** heqet echoes the requested durability; a replicate without a count is replica 2 internally. */
export function sameDurability(v: HeqetVolume, want: Durability): boolean {
  const type = v.durability.type || 'none'
  if (type !== want.type) return false
  if (want.type === 'replicate') return (v.durability.replicate?.replica || 2) === want.replicate.replica
  if (want.type === 'disperse') {
    return (
      v.durability.disperse?.data === want.disperse.data &&
      v.durability.disperse?.redundancy === want.disperse.redundancy
    )
  }
  return true
}

export function describeVolume(v: HeqetVolume): string {
  const d = v.durability
  const kind =
    d.type === 'replicate'
      ? `replicate:${d.replicate?.replica ?? 2}`
      : d.type === 'disperse'
        ? `disperse:${d.disperse?.data}:${d.disperse?.redundancy}`
        : 'none'
  return `${v.size} GiB ${kind} in cluster ${v.cluster}`
}

/** GET /volumes/{id}; undefined when heqet says it does not exist (or is still pending). */
export async function fetchVolume(
  client: HeqetClient,
  id: string,
  signal?: AbortSignal,
): Promise<HeqetVolume | undefined> {
  if (!HEQET_ID.test(id)) return undefined
  try {
    return await client.getJson<HeqetVolume>(`/volumes/${id}`, signal)
  } catch (err) {
    if (err instanceof HeqetHttpError && err.status === 404) return undefined
    throw err
  }
}

interface IndexEntry {
  name: string
  gid: number
  cluster: string
}

const FETCH_PARALLEL = 8

export class VolumeIndex {
  private readonly entries = new Map<string, IndexEntry>()
  /** gids handed to creates that heqet does not list yet */
  private readonly reservedGids = new Set<number>()

  constructor(private readonly client: HeqetClient) {}

  /** GET /volumes, then GET only the volumes not seen before. */
  async refresh(signal?: AbortSignal): Promise<void> {
    const { volumes } = await this.client.getJson<{ volumes: string[] }>('/volumes', signal)
    const listed = new Set(volumes)
    for (const id of this.entries.keys()) if (!listed.has(id)) this.entries.delete(id)
    const unknown = volumes.filter((id) => !this.entries.has(id))
    for (let i = 0; i < unknown.length; i += FETCH_PARALLEL) {
      const batch = await Promise.all(
        unknown.slice(i, i + FETCH_PARALLEL).map((id) => fetchVolume(this.client, id, signal)),
      )
      for (const v of batch) if (v) this.remember(v)
    }
  }

  remember(v: HeqetVolume): void {
    this.entries.set(v.id, { name: v.name, gid: v.gid ?? 0, cluster: v.cluster })
  }

  forget(id: string): void {
    this.entries.delete(id)
  }

  idsNamed(name: string): string[] {
    return [...this.entries].filter(([, e]) => e.name === name).map(([id]) => id)
  }

  /** The lowest gid of [min, max] no listed volume and no running create uses (heqet takes < 2^31 - 1). */
  reserveGid(min: number, max: number): number | undefined {
    const used = new Set([...this.entries.values()].map((e) => e.gid))
    const top = Math.min(max, 2147483646)
    for (let gid = min; gid <= top; gid++) {
      if (!used.has(gid) && !this.reservedGids.has(gid)) {
        this.reservedGids.add(gid)
        return gid
      }
    }
    return undefined
  }

  releaseGid(gid: number): void {
    this.reservedGids.delete(gid)
  }
}
