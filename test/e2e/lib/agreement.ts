// Do the nodes hold exactly what the DB says? Compares a testbed snapshot
// with heqet's heketi-format DB dump: anything on a node the DB does not
// know is leaked; anything the DB knows that a node lacks is missing.
// assertAgreement is the one check every testbed test makes with it.
import type { Test } from 'tap'
import type { TestApp } from '../../helpers/app.ts'
import type { NodeSnapshot } from './snapshot.ts'
import type { Testbed } from './testbed.ts'

interface DumpBrick {
  Info: { id: string; path: string; device: string; node: string; volume: string }
  LvmThinPool: string
  LvmLv: string
  Pending: { Id: string }
}

export interface HeketiDump {
  brickentries: Record<string, DumpBrick>
  deviceentries: Record<string, { NodeId: string; Info: { name: string } }>
  nodeentries: Record<string, { Info: { hostnames: { manage: string[] } } }>
  volumeentries: Record<string, { Info: { name: string }; Pending: { Id: string } }>
}

export interface Agreement {
  leaked: string[]
  missing: string[]
}

/** `ips[i]` is the manage hostname of the node `snapshots[i]` was taken on; `baseFstab[i]` its fstab before heqet. */
export function compareNodesWithDb(
  snapshots: NodeSnapshot[],
  ips: string[],
  baseFstab: string[][],
  dump: HeketiDump,
): Agreement {
  const leaked: string[] = []
  const missing: string[] = []
  const nodeIdByIp = new Map(
    Object.entries(dump.nodeentries).map(([id, n]) => [n.Info.hostnames.manage[0], id]),
  )
  const volumeNames = new Set(Object.values(dump.volumeentries).map((v) => v.Info.name))
  snapshots.forEach((snap, i) => {
    const where = `node ${ips[i]}`
    const nodeId = nodeIdByIp.get(ips[i]!)
    const bricks = Object.values(dump.brickentries).filter((b) => b.Info.node === nodeId)
    const devices = Object.entries(dump.deviceentries)
      .filter(([, d]) => d.NodeId === nodeId)
      .map(([id]) => id)
    const expectLvs = new Set<string>()
    const expectMounts = new Set<string>()
    for (const b of bricks) {
      if (b.LvmLv !== '') continue // clones live in gluster's snapshot area
      expectLvs.add(`vg_${b.Info.device}/brick_${b.Info.id}`)
      expectLvs.add(`vg_${b.Info.device}/${b.LvmThinPool}`)
      expectMounts.add(b.Info.path.replace(/\/brick$/, ''))
    }
    const diff = (kind: string, actual: string[], expected: Set<string>) => {
      for (const a of actual) if (!expected.has(a)) leaked.push(`${where}: ${kind} ${a}`)
      for (const e of expected) if (!actual.includes(e)) missing.push(`${where}: ${kind} ${e}`)
    }
    diff('lv', snap.lvs, expectLvs)
    diff('mount', snap.mounts, expectMounts)
    diff('vg', snap.vgs, new Set(devices.map((d) => `vg_${d}`)))
    diff('pv', snap.pvs, new Set(devices.map((d) => dump.deviceentries[d]!.Info.name)))
    const brickDirs = snap.brickDirs.filter((d) => /\/brick_[0-9a-f]+$/.test(d))
    diff('brick dir', brickDirs, expectMounts)
    const extraFstab = snap.fstab.filter((l) => !baseFstab[i]!.includes(l))
    const expectFstab = new Set(
      extraFstab.filter((l) => [...expectMounts].some((m) => l.split(/\s+/)[1] === m)),
    )
    for (const l of extraFstab) if (!expectFstab.has(l)) leaked.push(`${where}: fstab line ${l}`)
    for (const m of expectMounts) {
      if (!extraFstab.some((l) => l.split(/\s+/)[1] === m)) missing.push(`${where}: fstab line for ${m}`)
    }
    if (i === 0) diff('gluster volume', snap.glusterVolumes, volumeNames)
  })
  return { leaked, missing }
}

/**
 * After a step: the journal is empty, the DB is consistent, and the nodes hold
 * exactly what the DB says (nothing leaked, nothing missing). `baseFstab[i]`
 * is node i's fstab before heqet. Returns the dump for further checks.
 */
export async function assertAgreement(
  t: Test,
  app: Pick<TestApp, 'call'>,
  tb: Pick<Testbed, 'nodes' | 'snapshot'>,
  baseFstab: string[][],
  what: string,
): Promise<HeketiDump> {
  t.equal((await app.call('GET', '/operations')).json().total, 0, `${what}: journal empty`)
  t.equal((await app.call('GET', '/db/check')).json().totalinconsistencies, 0, `${what}: db check clean`)
  const dump = (await app.call('GET', '/db/dump')).json() as HeketiDump
  const { leaked, missing } = compareNodesWithDb(
    await tb.snapshot(),
    tb.nodes.map((n) => n.ip),
    baseFstab,
    dump,
  )
  t.same(leaked, [], `${what}: nothing on the nodes the DB does not know`)
  t.same(missing, [], `${what}: nothing the DB knows is missing on the nodes`)
  return dump
}
