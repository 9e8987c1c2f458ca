// CSI Controller service: volume lifecycle through heqet's REST API, as an
// external heketi client (the in-tree provisioner's requests, CSI's error
// codes). Volume id = heqet volume id; name → heqet name (names.ts).
import type { Logger } from 'pino'
import { firstUnsupported } from './capabilities.ts'
import { fitsRange, GiB, sizeGiBFor } from './capacity.ts'
import { asCsiError, CsiError, CsiErrors } from './errors.ts'
import { type HeqetClient, HeqetHttpError, OperationCancelledError } from './heqet-client.ts'
import {
  describeVolume,
  fetchVolume,
  HEQET_ID,
  type HeqetVolume,
  sameDurability,
  toCsiVolume,
  VolumeIndex,
} from './heqet-volumes.ts'
import type {
  ControllerExpandVolumeRequest,
  CreateVolumeRequest,
  GetCapacityRequest,
  ListVolumesRequest,
  StringMap,
  ValidateVolumeCapabilitiesRequest,
  Volume,
} from './messages.ts'
import { heqetVolumeName } from './names.ts'
import { minimumSizeGiB, parseParameters, rawPerUsableGiB, type VolumeParameters } from './parameters.ts'

export const CONTROLLER_CAPABILITIES = [
  'CREATE_DELETE_VOLUME',
  'EXPAND_VOLUME',
  'LIST_VOLUMES',
  'GET_CAPACITY',
  'SINGLE_NODE_MULTI_WRITER',
] as const

export class ControllerService {
  private readonly index: VolumeIndex
  /** names and ids with a call in flight: a second call gets ABORTED, as the spec allows */
  private readonly busy = new Set<string>()

  constructor(
    private readonly client: HeqetClient,
    private readonly log: Logger,
  ) {
    this.index = new VolumeIndex(client)
  }

  private async exclusive<T>(key: string, what: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(key)) throw CsiErrors.busy(what)
    this.busy.add(key)
    try {
      return await fn()
    } finally {
      this.busy.delete(key)
    }
  }

  getCapabilities() {
    return { capabilities: CONTROLLER_CAPABILITIES.map((type) => ({ rpc: { type } })) }
  }

  async createVolume(req: CreateVolumeRequest, signal: AbortSignal): Promise<{ volume: Volume }> {
    if (!req.name) throw CsiErrors.missing('name')
    if (!req.volume_capabilities?.length) throw CsiErrors.missing('volume_capabilities')
    const why = firstUnsupported(req.volume_capabilities)
    if (why) throw CsiErrors.unsupportedCapability(why)
    if (req.volume_content_source?.type) throw CsiErrors.contentSource()
    const params = parseParameters(req.parameters ?? {})
    const sizeGiB = sizeGiBFor(req.capacity_range, minimumSizeGiB(params.durability))
    const name = heqetVolumeName(req.name, params)
    return this.exclusive(`name:${name}`, `volume ${name}`, async () => {
      try {
        const existing = await this.findByName(name, params, signal)
        if (existing) {
          if (!fitsRange(existing.size, req.capacity_range) || !sameDurability(existing, params.durability)) {
            throw CsiErrors.alreadyExists(name, describeVolume(existing))
          }
          this.log.info({ volume: existing.id, name }, 'CreateVolume: volume exists already')
          return { volume: toCsiVolume(existing) }
        }
        const created = await this.create(name, sizeGiB, params, signal)
        this.log.info({ volume: created.id, name, sizeGiB }, 'CreateVolume: created')
        return { volume: toCsiVolume(created) }
      } catch (err) {
        throw asCsiError(err, `creating volume ${name}`)
      }
    })
  }

  private async findByName(
    name: string,
    params: VolumeParameters,
    signal: AbortSignal,
  ): Promise<HeqetVolume | undefined> {
    await this.index.refresh(signal)
    for (const id of this.index.idsNamed(name)) {
      const v = await fetchVolume(this.client, id, signal)
      if (v && (params.clusters.length === 0 || params.clusters.includes(v.cluster))) return v
    }
    return undefined
  }

  private async create(
    name: string,
    sizeGiB: number,
    params: VolumeParameters,
    signal: AbortSignal,
  ): Promise<HeqetVolume> {
    const gid = this.index.reserveGid(params.gidMin, params.gidMax)
    if (gid === undefined) {
      throw CsiErrors.placement(`no free gid between gidMin ${params.gidMin} and gidMax ${params.gidMax}`)
    }
    try {
      // the in-tree provisioner's request: snapshots always enabled, a gid from the class's range
      const body: Record<string, unknown> = {
        size: sizeGiB,
        name,
        durability: params.durability,
        gid,
        snapshot: { enable: true, factor: params.snapFactor },
      }
      if (params.clusters.length) body['clusters'] = params.clusters
      if (params.volumeOptions.length) body['glustervolumeoptions'] = params.volumeOptions
      let location: string | undefined
      try {
        location = await this.client.runOperation('POST', '/volumes', body, signal)
      } catch (err) {
        throw this.createError(err, name)
      }
      const id = location?.split('/').pop() ?? ''
      const volume = await fetchVolume(this.client, id, signal)
      if (!volume) throw CsiErrors.heqetFailed(`creating volume ${name}`, `heqet pointed at ${location}`)
      this.index.remember(volume)
      this.index.releaseGid(gid)
      return volume
    } catch (err) {
      // cut short (deadline, cancel): heqet may still finish the volume with this gid,
      // unlisted until then, so the gid stays reserved for this process's life
      if (!(err instanceof OperationCancelledError)) this.index.releaseGid(gid)
      throw err
    }
  }

  /** heqet's answer to POST /volumes → CSI: its 400s are our caller's mistakes, allocation is placement. */
  private createError(err: unknown, name: string): unknown {
    if (!(err instanceof HeqetHttpError) || err.phase !== 'request') return err
    const text = err.text
    if (/Volume name '.*' already in use|was being created/.test(text)) {
      return CsiErrors.alreadyExists(name, `another size or type (heqet: ${text})`)
    }
    if (err.status === 400 && text === 'No clusters configured') return CsiErrors.placement(text)
    if (err.status === 400) return CsiErrors.invalid(`heqet refused the volume: ${text}`)
    if (err.status === 500 && text.startsWith('Failed to allocate new volume'))
      return CsiErrors.placement(text)
    return err
  }

  async deleteVolume(volumeId: string, signal: AbortSignal): Promise<Record<string, never>> {
    if (!volumeId) throw CsiErrors.missing('volume_id')
    // not a heqet id: no such volume, and deleting what does not exist succeeds
    if (!HEQET_ID.test(volumeId)) return {}
    return this.exclusive(`id:${volumeId}`, `volume ${volumeId}`, async () => {
      try {
        await this.client.runOperation('DELETE', `/volumes/${volumeId}`, undefined, signal)
        this.log.info({ volume: volumeId }, 'DeleteVolume: deleted')
      } catch (err) {
        if (err instanceof HeqetHttpError && err.phase === 'request') {
          if (err.status === 404) {
            this.log.info({ volume: volumeId }, 'DeleteVolume: already gone')
            this.index.forget(volumeId)
            return {}
          }
          if (err.status === 409) throw CsiErrors.inUse(err.text)
          if (/in use/.test(err.text)) throw CsiErrors.busy(`volume ${volumeId} (heqet: ${err.text})`)
        }
        throw asCsiError(err, `deleting volume ${volumeId}`)
      }
      this.index.forget(volumeId)
      return {}
    })
  }

  async expandVolume(
    req: ControllerExpandVolumeRequest,
    signal: AbortSignal,
  ): Promise<{ capacity_bytes: number; node_expansion_required: boolean }> {
    if (!req.volume_id) throw CsiErrors.missing('volume_id')
    if (!req.capacity_range) throw CsiErrors.missing('capacity_range')
    if (req.volume_capability) {
      const why = firstUnsupported([req.volume_capability])
      if (why) throw CsiErrors.unsupportedCapability(why)
    }
    const wantGiB = sizeGiBFor(req.capacity_range, 1)
    return this.exclusive(`id:${req.volume_id}`, `volume ${req.volume_id}`, async () => {
      try {
        const volume = await fetchVolume(this.client, req.volume_id, signal)
        if (!volume) throw CsiErrors.volumeNotFound(req.volume_id)
        // a shared filesystem grows on the servers: nothing for the node to do
        if (volume.size >= wantGiB)
          return { capacity_bytes: volume.size * GiB, node_expansion_required: false }
        try {
          await this.client.runOperation(
            'POST',
            `/volumes/${volume.id}/expand`,
            { expand_size: wantGiB - volume.size },
            signal,
          )
        } catch (err) {
          if (err instanceof HeqetHttpError && err.phase === 'request') {
            if (err.status === 404) throw CsiErrors.volumeNotFound(req.volume_id)
            if (err.text.startsWith('Failed to allocate volume expansion'))
              throw CsiErrors.placement(err.text)
          }
          throw err
        }
        const grown = await fetchVolume(this.client, volume.id, signal)
        if (!grown) throw CsiErrors.volumeNotFound(req.volume_id)
        this.log.info({ volume: volume.id, from: volume.size, to: grown.size }, 'ControllerExpandVolume')
        return { capacity_bytes: grown.size * GiB, node_expansion_required: false }
      } catch (err) {
        throw asCsiError(err, `expanding volume ${req.volume_id}`)
      }
    })
  }

  async validateCapabilities(req: ValidateVolumeCapabilitiesRequest, signal: AbortSignal) {
    if (!req.volume_id) throw CsiErrors.missing('volume_id')
    if (!req.volume_capabilities?.length) throw CsiErrors.missing('volume_capabilities')
    let volume: HeqetVolume | undefined
    try {
      volume = await fetchVolume(this.client, req.volume_id, signal)
    } catch (err) {
      throw asCsiError(err, `reading volume ${req.volume_id}`)
    }
    if (!volume) throw CsiErrors.volumeNotFound(req.volume_id)
    const why = firstUnsupported(req.volume_capabilities)
    if (why) return { message: `not supported: ${why}` }
    const parameters: StringMap = req.parameters ?? {}
    try {
      const params = parseParameters(parameters)
      if (Object.keys(parameters).length > 0 && !sameDurability(volume, params.durability)) {
        return { message: `the volume is ${describeVolume(volume)}, not what the parameters ask for` }
      }
    } catch (err) {
      if (err instanceof CsiError) return { message: err.message }
      throw err
    }
    return {
      confirmed: {
        volume_context: req.volume_context ?? {},
        volume_capabilities: req.volume_capabilities,
        parameters,
      },
    }
  }

  /** Pages of heqet's sorted volume ids; the token is the first id of the next page. */
  async listVolumes(req: ListVolumesRequest, signal: AbortSignal) {
    if (req.max_entries < 0) throw CsiErrors.invalid('max_entries may not be negative')
    const token = req.starting_token ?? ''
    if (token !== '' && !HEQET_ID.test(token)) throw CsiErrors.badToken(token)
    try {
      const { volumes } = await this.client.getJson<{ volumes: string[] }>('/volumes', signal)
      const ids = [...volumes].sort()
      const start = token === '' ? 0 : ids.findIndex((id) => id >= token)
      const from = start < 0 ? ids.length : start
      const end = req.max_entries > 0 ? Math.min(ids.length, from + req.max_entries) : ids.length
      const page = await Promise.all(ids.slice(from, end).map((id) => fetchVolume(this.client, id, signal)))
      return {
        entries: page
          .filter((v): v is HeqetVolume => v !== undefined)
          .map((v) => ({ volume: toCsiVolume(v) })),
        next_token: end < ids.length ? ids[end]! : '',
      }
    } catch (err) {
      throw asCsiError(err, 'listing volumes')
    }
  }

  /**
   * Free space of the online devices on online nodes (of the class's
   * clusters), divided by what a GiB of this volume type costs in raw space.
   */
  async getCapacity(req: GetCapacityRequest, signal: AbortSignal) {
    const params = parseParameters(req.parameters ?? {})
    const why = firstUnsupported(req.volume_capabilities ?? [])
    if (why) return { available_capacity: 0 }
    try {
      const { clusters } = await this.client.getJson<{ clusters: string[] }>('/clusters', signal)
      let freeKiB = 0
      for (const clusterId of clusters) {
        if (params.clusters.length && !params.clusters.includes(clusterId)) continue
        const cluster = await this.client.getJson<{ nodes: string[] }>(`/clusters/${clusterId}`, signal)
        const nodes = await Promise.all(
          cluster.nodes.map((n) =>
            this.client.getJson<{ state: string; devices: { state: string; storage: { free: number } }[] }>(
              `/nodes/${n}`,
              signal,
            ),
          ),
        )
        for (const node of nodes) {
          if (node.state !== 'online') continue
          for (const d of node.devices) if (d.state === 'online') freeKiB += d.storage.free
        }
      }
      return { available_capacity: Math.floor((freeKiB * 1024) / rawPerUsableGiB(params)) }
    } catch (err) {
      throw asCsiError(err, 'reading capacity')
    }
  }
}
