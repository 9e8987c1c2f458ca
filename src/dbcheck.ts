// GET /db/check: heketi's consistency report over the whole store.
import type { ReadTxn } from '../db/store.ts'

interface Section {
  total: number
  pending: number
  ok: number
  notok: number
  inconsistencies: string[] | null
}

export interface CheckReport {
  clusters: Section
  volumes: Section
  bricks: Section
  nodes: Section
  devices: Section
  blockvolumes: Section
  dbattributes: Section
  pendingoperations: Section
  totalinconsistencies: number
}

function section<T>(
  items: T[],
  check: (item: T) => string[],
  isPending: (item: T) => boolean = () => false,
): Section {
  const problems: string[] = []
  let notok = 0
  let pending = 0
  for (const item of items) {
    const found = check(item)
    if (found.length > 0) notok++
    if (isPending(item)) pending++
    problems.push(...found)
  }
  return {
    total: items.length,
    pending,
    ok: items.length - notok,
    notok,
    inconsistencies: problems.length > 0 ? problems : null,
  }
}

export function checkConsistency(tx: ReadTxn): CheckReport {
  const clusters = section(tx.values('cluster'), (c) => {
    const p: string[] = []
    for (const n of c.nodes)
      if (tx.get('node', n)?.clusterId !== c.id) p.push(`Cluster ${c.id} unknown node ${n}`)
    for (const v of c.volumes) {
      const vol = tx.get('volume', v)
      // a clone target is only written when the clone finishes
      const cloning = tx
        .values('pendingop')
        .some((o) => o.actions.some((a) => a.change === 'add-volume-clone' && a.id === v))
      if (vol?.clusterId !== c.id && !cloning) p.push(`Cluster ${c.id} unknown volume ${v}`)
    }
    return p
  })
  const nodes = section(tx.values('node'), (n) => {
    const p: string[] = []
    const c = tx.get('cluster', n.clusterId)
    if (!c) p.push(`Node ${n.id} unknown cluster ${n.clusterId}`)
    else if (!c.nodes.includes(n.id)) p.push(`Node ${n.id} not in cluster ${c.id}`)
    for (const d of n.devices)
      if (tx.get('device', d)?.nodeId !== n.id) p.push(`Node ${n.id} unknown device ${d}`)
    return p
  })
  const devices = section(tx.values('device'), (d) => {
    const p: string[] = []
    const n = tx.get('node', d.nodeId)
    if (!n) p.push(`Device ${d.id} unknown node ${d.nodeId}`)
    else if (!n.devices.includes(d.id)) p.push(`Device ${d.id} not in node ${n.id}`)
    const { totalKiB, freeKiB, usedKiB } = d.storage
    if (totalKiB !== freeKiB + usedKiB) {
      p.push(`Device ${d.id} size values differ Total(${totalKiB}) != Free(${freeKiB}) + Used(${usedKiB})`)
    }
    let sum = 0
    for (const b of d.bricks) {
      const brick = tx.get('brick', b)
      if (brick?.deviceId !== d.id) p.push(`Device ${d.id} unknown brick ${b}`)
      else if (brick.lvmLv === '') sum += brick.tpSizeKiB + brick.poolMetadataSizeKiB
    }
    if (sum !== usedKiB) p.push(`Device ${d.id} used size (${usedKiB}) does not match its bricks (${sum})`)
    return p
  })
  const bricks = section(
    tx.values('brick'),
    (b) => {
      const p: string[] = []
      if (b.pendingId && !tx.get('pendingop', b.pendingId))
        p.push(`Brick ${b.id} unknown pending operation ${b.pendingId}`)
      if (!tx.get('node', b.nodeId)) p.push(`Brick ${b.id} unknown node ${b.nodeId}`)
      if (!tx.get('device', b.deviceId)?.bricks.includes(b.id))
        p.push(`Brick ${b.id} not in device ${b.deviceId}`)
      const v = tx.get('volume', b.volumeId)
      if (!v) p.push(`Brick ${b.id} unknown volume ${b.volumeId}`)
      else if (!v.bricks.includes(b.id)) p.push(`Brick ${b.id} not in volume ${v.id}`)
      return p
    },
    (b) => b.pendingId !== '',
  )
  const volumes = section(
    tx.values('volume'),
    (v) => {
      const p: string[] = []
      if (v.pendingId && !tx.get('pendingop', v.pendingId))
        p.push(`Volume ${v.id} unknown pending operation ${v.pendingId}`)
      const c = tx.get('cluster', v.clusterId)
      if (!c) p.push(`Volume ${v.id} unknown cluster ${v.clusterId}`)
      else if (!c.volumes.includes(v.id)) p.push(`Volume ${v.id} not in cluster ${c.id}`)
      for (const b of v.bricks)
        if (tx.get('brick', b)?.volumeId !== v.id) p.push(`Volume ${v.id} unknown brick ${b}`)
      if (!v.block && v.blockInfo.blockVolumes.length > 0)
        p.push(`Volume ${v.id} is not block but has block volumes`)
      const bvs = v.blockInfo.blockVolumes.map((id) => tx.get('blockvolume', id))
      for (const [i, bv] of bvs.entries()) {
        const id = v.blockInfo.blockVolumes[i]
        if (bv?.blockHostingVolume !== v.id) p.push(`Volume ${v.id} unknown block volume ${id}`)
      }
      // a block volume being resized has its new size charged already
      if (v.block && bvs.every((bv) => bv && !bv.pendingId)) {
        const used = bvs.reduce((sum, bv) => sum + (bv?.sizeGiB ?? 0), 0)
        const { freeSizeGiB: free, reservedSizeGiB: reserved } = v.blockInfo
        if (used !== v.sizeGiB - free - reserved)
          p.push(
            `Volume ${v.id} block sizes differ: block volumes ${used} != size ${v.sizeGiB} - free ${free} - reserved ${reserved}`,
          )
      }
      return p
    },
    (v) => v.pendingId !== '',
  )
  const blockvolumes = section(
    tx.values('blockvolume'),
    (bv) => {
      const p: string[] = []
      if (bv.pendingId && !tx.get('pendingop', bv.pendingId))
        p.push(`BlockVolume ${bv.id} unknown pending operation ${bv.pendingId}`)
      if (!tx.get('cluster', bv.clusterId)?.blockVolumes.includes(bv.id))
        p.push(`BlockVolume ${bv.id} not in cluster`)
      if (!tx.get('volume', bv.blockHostingVolume)?.blockInfo.blockVolumes.includes(bv.id)) {
        p.push(`BlockVolume ${bv.id} not in hosting volume ${bv.blockHostingVolume}`)
      }
      return p
    },
    (bv) => bv.pendingId !== '',
  )
  const pendingoperations = section(tx.values('pendingop'), (op) => {
    const p: string[] = []
    for (const a of op.actions) {
      if (a.change === 'add-brick' || a.change === 'delete-brick') {
        const b = tx.get('brick', a.id)
        // clone bricks are only written when the clone finishes
        if (b && b.pendingId !== op.id) p.push(`PendingOperation ${op.id} brick ${a.id} not marked`)
        if (!b && op.type !== 'clone-volume') p.push(`PendingOperation ${op.id} unknown brick ${a.id}`)
      }
      if (
        a.change === 'add-block-volume' ||
        a.change === 'delete-block-volume' ||
        a.change === 'expand-block-volume'
      ) {
        if (tx.get('blockvolume', a.id)?.pendingId !== op.id)
          p.push(`PendingOperation ${op.id} block volume ${a.id} not marked`)
      }
      if (a.change === 'add-volume' || a.change === 'delete-volume') {
        if (tx.get('volume', a.id)?.pendingId !== op.id)
          p.push(`PendingOperation ${op.id} volume ${a.id} not marked`)
      }
    }
    return p
  })
  const dbattributes: Section = { total: 0, pending: 0, ok: 0, notok: 0, inconsistencies: null }
  const all = [clusters, volumes, bricks, nodes, devices, blockvolumes, pendingoperations]
  return {
    clusters,
    volumes,
    bricks,
    nodes,
    devices,
    blockvolumes,
    dbattributes,
    pendingoperations,
    totalinconsistencies: all.reduce((s, x) => s + (x.inconsistencies?.length ?? 0), 0),
  }
}
