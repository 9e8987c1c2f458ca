// What an imported DB must satisfy before it is written: values that reach
// node commands pass the same allow-lists as API input, every reference
// resolves both ways, and every size adds up. Each failure names the entry.

import {
  devicePathRule,
  glusterOptionRule,
  hostnameRule,
  pathRule,
  volumeNameRule,
} from '../executors/commands/validate.ts'
import type {
  BlockVolumeEntry,
  BrickEntry,
  ClusterEntry,
  DeviceEntry,
  NodeEntry,
  PendingOperationEntry,
  VolumeEntry,
} from './entries.ts'
import { ImportError } from './heketi-format.ts'

export interface Entries {
  cluster: ClusterEntry[]
  node: NodeEntry[]
  device: DeviceEntry[]
  brick: BrickEntry[]
  volume: VolumeEntry[]
  blockvolume: BlockVolumeEntry[]
  pendingop: PendingOperationEntry[]
}

const ID = /^[0-9a-f]{32}$/
const LVM_NAME = /^[a-zA-Z0-9_][a-zA-Z0-9_.+-]*$/
const TAG_NAME = /^[a-zA-Z0-9_.-]+$/
const GiB_IN_KiB = 1048576

function fail(entry: string, reason: string): never {
  throw new ImportError(entry, reason)
}

// the command builders' own rules (one allow-list per kind of value)
const isHostname = (host: string) => hostnameRule(host) === undefined
const isPath = (p: string) => pathRule(p) === undefined
const isDevicePath = (p: string) => devicePathRule(p) === undefined
const isName = (name: string) => volumeNameRule(name) === undefined

function checkId(entry: string, what: string, id: string): void {
  if (!ID.test(id)) fail(entry, `${what} ${JSON.stringify(id)} is not a valid id (32 hex digits)`)
}

function checkTags(entry: string, tags: Record<string, string>): void {
  const keys = Object.keys(tags)
  if (keys.length > 32) fail(entry, `too many tags (${keys.length}), up to 32 supported`)
  for (const key of keys) {
    if (key.length < 1 || key.length > 32 || !TAG_NAME.test(key))
      fail(entry, `invalid tag name ${JSON.stringify(key)}`)
    if ((tags[key] ?? '').length > 64) fail(entry, `value of tag ${key} is longer than 64 characters`)
  }
}

function checkSize(entry: string, what: string, n: number): void {
  if (n < 0) fail(entry, `${what} ${n} is negative`)
}

/** Everything that can reach a node command passes the command builders' allow-lists. */
export function checkValues(db: Entries): void {
  for (const c of db.cluster) {
    const entry = `cluster ${c.id}`
    checkId(entry, 'id', c.id)
    for (const id of [...c.nodes, ...c.volumes, ...c.blockVolumes]) checkId(entry, 'listed id', id)
  }
  for (const n of db.node) {
    const entry = `node ${n.id}`
    checkId(entry, 'id', n.id)
    if (n.zone < 1) fail(entry, `zone ${n.zone} is less than 1`)
    for (const kind of ['manage', 'storage'] as const) {
      const hosts = n.hostnames[kind]
      if (hosts.length === 0) fail(entry, `has no ${kind} hostname`)
      for (const h of hosts)
        if (!isHostname(h)) fail(entry, `${JSON.stringify(h)} is not a valid ${kind} hostname`)
    }
    checkTags(entry, n.tags)
  }
  for (const d of db.device) {
    const entry = `device ${d.id}`
    checkId(entry, 'id', d.id)
    if (!isDevicePath(d.name)) fail(entry, `name ${JSON.stringify(d.name)} is not a device path`)
    for (const p of d.paths)
      if (!isDevicePath(p)) fail(entry, `path ${JSON.stringify(p)} is not a device path`)
    checkTags(entry, d.tags)
    checkSize(entry, 'total size', d.storage.totalKiB)
    checkSize(entry, 'free size', d.storage.freeKiB)
    checkSize(entry, 'used size', d.storage.usedKiB)
    checkSize(entry, 'extent size', d.extentSizeKiB)
  }
  for (const b of db.brick) {
    const entry = `brick ${b.id}`
    checkId(entry, 'id', b.id)
    // heketi has bricks with an empty path (`heketi db delete-bricks-with-empty-path`)
    if (b.path !== '' && !isPath(b.path)) fail(entry, `path ${JSON.stringify(b.path)} is not a brick path`)
    if (b.lvmThinPool !== '' && !LVM_NAME.test(b.lvmThinPool))
      fail(entry, `thin pool ${JSON.stringify(b.lvmThinPool)} is not an LVM name`)
    if (b.lvmLv !== '' && !LVM_NAME.test(b.lvmLv))
      fail(entry, `LV ${JSON.stringify(b.lvmLv)} is not an LVM name`)
    checkSize(entry, 'size', b.sizeKiB)
    checkSize(entry, 'thin pool size', b.tpSizeKiB)
    checkSize(entry, 'pool metadata size', b.poolMetadataSizeKiB)
  }
  for (const v of db.volume) {
    const entry = `volume ${v.id}`
    checkId(entry, 'id', v.id)
    if (!isName(v.name)) fail(entry, `name ${JSON.stringify(v.name)} is not a valid volume name`)
    if (v.sizeGiB < 1) fail(entry, `size ${v.sizeGiB} GiB is less than 1`)
    if (v.gid < 0 || v.gid >= 2147483647) fail(entry, `gid ${v.gid} is out of range`)
    for (const o of v.glusterVolumeOptions) {
      const problem = o === '' ? undefined : glusterOptionRule(o)
      if (problem) fail(entry, `volume option ${JSON.stringify(o)} ${problem}`)
    }
  }
  for (const bv of db.blockvolume) {
    const entry = `block volume ${bv.id}`
    checkId(entry, 'id', bv.id)
    if (!isName(bv.name)) fail(entry, `name ${JSON.stringify(bv.name)} is not a valid block volume name`)
    for (const h of bv.hosts) if (!isHostname(h)) fail(entry, `${JSON.stringify(h)} is not a valid hostname`)
  }
  for (const o of db.pendingop) checkId(`pending operation ${o.id}`, 'id', o.id)
}

/** Every reference resolves, and the entry it points at points back. */
export function checkReferences(db: Entries): void {
  const index = <T extends { id: string }>(list: T[]) => new Map(list.map((x) => [x.id, x]))
  const clusters = index(db.cluster)
  const nodes = index(db.node)
  const devices = index(db.device)
  const bricks = index(db.brick)
  const volumes = index(db.volume)
  const blockVolumes = index(db.blockvolume)
  const ops = index(db.pendingop)
  const cloneTargets = new Set(
    db.pendingop.flatMap((o) => o.actions.filter((a) => a.change === 'add-volume-clone').map((a) => a.id)),
  )
  const pendingExists = (entry: string, id: string) => {
    if (id !== '' && !ops.has(id)) fail(entry, `pending operation ${id} does not exist`)
  }

  for (const c of db.cluster) {
    const entry = `cluster ${c.id}`
    for (const id of c.nodes)
      if (nodes.get(id)?.clusterId !== c.id)
        fail(entry, `node ${id} does not exist or is not in this cluster`)
    for (const id of c.volumes) {
      if (volumes.get(id)?.clusterId !== c.id && !cloneTargets.has(id))
        fail(entry, `volume ${id} does not exist or is not in this cluster`)
    }
    for (const id of c.blockVolumes)
      if (blockVolumes.get(id)?.clusterId !== c.id)
        fail(entry, `block volume ${id} does not exist or is not in this cluster`)
  }
  const hostOwners = new Map<string, string>()
  for (const n of db.node) {
    const entry = `node ${n.id}`
    if (!clusters.get(n.clusterId)?.nodes.includes(n.id))
      fail(entry, `cluster ${n.clusterId} does not exist or does not list it`)
    for (const id of n.devices)
      if (devices.get(id)?.nodeId !== n.id) fail(entry, `device ${id} does not exist or is not on this node`)
    for (const [kind, hosts] of Object.entries(n.hostnames)) {
      for (const h of hosts) {
        const owner = hostOwners.get(`${kind}:${h}`)
        if (owner !== undefined && owner !== n.id)
          fail(entry, `${kind} hostname ${h} is also used by node ${owner}`)
        hostOwners.set(`${kind}:${h}`, n.id)
      }
    }
  }
  for (const d of db.device) {
    const entry = `device ${d.id}`
    if (!nodes.get(d.nodeId)?.devices.includes(d.id))
      fail(entry, `node ${d.nodeId} does not exist or does not list it`)
    for (const id of d.bricks)
      if (bricks.get(id)?.deviceId !== d.id)
        fail(entry, `brick ${id} does not exist or is not on this device`)
  }
  for (const b of db.brick) {
    const entry = `brick ${b.id}`
    const device = devices.get(b.deviceId)
    if (!device?.bricks.includes(b.id)) fail(entry, `device ${b.deviceId} does not exist or does not list it`)
    if (device.nodeId !== b.nodeId)
      fail(entry, `node ${b.nodeId} is not the node of its device (${device.nodeId})`)
    if (!volumes.get(b.volumeId)?.bricks.includes(b.id) && !cloneTargets.has(b.volumeId))
      fail(entry, `volume ${b.volumeId} does not exist or does not list it`)
    pendingExists(entry, b.pendingId)
  }
  for (const v of db.volume) {
    const entry = `volume ${v.id}`
    if (!clusters.get(v.clusterId)?.volumes.includes(v.id))
      fail(entry, `cluster ${v.clusterId} does not exist or does not list it`)
    for (const id of v.bricks)
      if (bricks.get(id)?.volumeId !== v.id)
        fail(entry, `brick ${id} does not exist or is not in this volume`)
    for (const id of v.blockInfo.blockVolumes)
      if (blockVolumes.get(id)?.blockHostingVolume !== v.id)
        fail(entry, `block volume ${id} does not exist or is not hosted here`)
    if (!v.block && v.blockInfo.blockVolumes.length > 0)
      fail(entry, 'is not block-hosting but lists block volumes')
    pendingExists(entry, v.pendingId)
  }
  for (const bv of db.blockvolume) {
    const entry = `block volume ${bv.id}`
    if (!clusters.get(bv.clusterId)?.blockVolumes.includes(bv.id))
      fail(entry, `cluster ${bv.clusterId} does not exist or does not list it`)
    if (!volumes.get(bv.blockHostingVolume)?.blockInfo.blockVolumes.includes(bv.id))
      fail(entry, `hosting volume ${bv.blockHostingVolume} does not exist or does not list it`)
    pendingExists(entry, bv.pendingId)
  }
  for (const o of db.pendingop) {
    const entry = `pending operation ${o.id}`
    for (const a of o.actions) {
      const marked = (x: { pendingId: string } | undefined) => x?.pendingId === o.id
      if (
        (a.change === 'add-brick' || a.change === 'delete-brick') &&
        bricks.has(a.id) &&
        !marked(bricks.get(a.id))
      )
        fail(entry, `brick ${a.id} is not marked with this operation`)
      if ((a.change === 'add-volume' || a.change === 'delete-volume') && !marked(volumes.get(a.id)))
        fail(entry, `volume ${a.id} does not exist or is not marked with this operation`)
      if (a.change === 'expand-volume' && !volumes.has(a.id))
        fail(entry, `volume ${a.id} to expand does not exist`)
    }
  }
}

/** Devices: total = free + used, used = what their bricks take. Volumes: their bricks hold their size. */
export function checkSizes(db: Entries): void {
  const bricks = new Map(db.brick.map((b) => [b.id, b]))
  for (const d of db.device) {
    const entry = `device ${d.id}`
    const { totalKiB, freeKiB, usedKiB } = d.storage
    if (totalKiB !== freeKiB + usedKiB)
      fail(entry, `sizes do not add up: total ${totalKiB} KiB != free ${freeKiB} KiB + used ${usedKiB} KiB`)
    // cloned bricks live in their source's thin pool and take nothing of their own
    const taken = d.bricks
      .map((id) => bricks.get(id)!)
      .filter((b) => b.lvmLv === '')
      .reduce((sum, b) => sum + b.tpSizeKiB + b.poolMetadataSizeKiB, 0)
    if (taken !== usedKiB)
      fail(entry, `sizes do not add up: used ${usedKiB} KiB but its bricks take ${taken} KiB`)
  }
  for (const v of db.volume) {
    const own = v.bricks.map((id) => bricks.get(id)!)
    // a running create, expand or evict has bricks the size does not count yet
    if (v.pendingId !== '' || own.some((b) => b.pendingId !== '')) continue
    const problem = volumeSizeProblem(v, own)
    if (problem) fail(`volume ${v.id}`, `sizes do not add up: ${problem}`)
  }
}

function volumeSizeProblem(v: VolumeEntry, bricks: BrickEntry[]): string | undefined {
  const d = v.durability
  const setSize =
    d.type === 'replicate'
      ? d.replicate.replica || 2
      : d.type === 'disperse'
        ? (d.disperse.data || 4) + (d.disperse.redundancy || 2)
        : 1
  const dataPerSet = d.type === 'disperse' ? d.disperse.data || 4 : 1
  if (bricks.length === 0 || bricks.length % setSize !== 0)
    return `${bricks.length} bricks do not make sets of ${setSize}`
  const sets = bricks.length / setSize
  const normal = bricks.filter((b) => b.subType !== 'arbiter')
  const normalPerSet = normal.length / sets
  const capacityKiB = (normal.reduce((sum, b) => sum + b.sizeKiB, 0) * dataPerSet) / normalPerSet
  const sizeKiB = v.sizeGiB * GiB_IN_KiB
  // brick sizes are whole KiB: each data brick may be rounded by less than 1 KiB
  if (Math.abs(capacityKiB - sizeKiB) > sets * dataPerSet)
    return `size ${v.sizeGiB} GiB (${sizeKiB} KiB) but its bricks hold ${capacityKiB} KiB`
  return undefined
}
