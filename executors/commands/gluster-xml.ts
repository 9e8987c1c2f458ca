// Parsers for gluster's `--xml` output (root <cliOutput>), heketi node
// commands §6.4 and §7.
import type { BrickStatus, GlusterVolumeInfo, HealInfoBrick, RebalanceStatus } from '../executor.ts'
import { CommandOutputError } from './parse.ts'
import { child, childrenNamed, parseXml, textAt, type XmlElement } from './xml.ts'

export interface CliStatus {
  opRet: number
  opErrno: number
  opErrstr: string
}

function parseCliOutput(stdout: string): XmlElement {
  let root: XmlElement
  try {
    root = parseXml(stdout)
  } catch (err) {
    throw new CommandOutputError((err as Error).message)
  }
  if (root.name !== 'cliOutput') throw new CommandOutputError(`unexpected XML root <${root.name}>`)
  return root
}

function integer(text: string, what: string): number {
  if (text === '') return 0
  if (!/^-?[0-9]+$/.test(text))
    throw new CommandOutputError(`${what} is not a number: ${JSON.stringify(text)}`)
  return Number(text)
}

function cliStatus(root: XmlElement): CliStatus {
  return {
    opRet: integer(textAt(root, 'opRet'), 'opRet'),
    opErrno: integer(textAt(root, 'opErrno'), 'opErrno'),
    opErrstr: textAt(root, 'opErrstr'),
  }
}

export function parseCliStatus(stdout: string): CliStatus {
  return cliStatus(parseCliOutput(stdout))
}

function volumeFromXml(volume: XmlElement): GlusterVolumeInfo {
  const options: Record<string, string> = {}
  for (const option of childrenNamed(child(volume, 'options'), 'option')) {
    options[textAt(option, 'name')] = textAt(option, 'value')
  }
  return {
    name: textAt(volume, 'name'),
    id: textAt(volume, 'id'),
    status: integer(textAt(volume, 'status'), 'status'),
    bricks: childrenNamed(child(volume, 'bricks'), 'brick').map((brick) => ({
      name: textAt(brick, 'name') || brick.text.trim(),
      hostUuid: textAt(brick, 'hostUuid') || (brick.attributes['uuid'] ?? ''),
      isArbiter: textAt(brick, 'isArbiter') === '1',
    })),
    options,
  }
}

export interface VolumeInfoOutput extends CliStatus {
  volumes: GlusterVolumeInfo[]
}

/** `volume info [<name>] --xml` */
export function parseVolumeInfoXml(stdout: string): VolumeInfoOutput {
  const root = parseCliOutput(stdout)
  const volumes = childrenNamed(child(child(root, 'volInfo'), 'volumes'), 'volume').map(volumeFromXml)
  return { ...cliStatus(root), volumes }
}

export interface HealInfoOutput extends CliStatus {
  bricks: HealInfoBrick[]
}

/** `volume heal <name> info --xml` */
export function parseHealInfoXml(stdout: string): HealInfoOutput {
  const root = parseCliOutput(stdout)
  const bricks = childrenNamed(child(child(root, 'healInfo'), 'bricks'), 'brick').map((brick) => ({
    name: textAt(brick, 'name'),
    status: textAt(brick, 'status'),
    numberOfEntries: textAt(brick, 'numberOfEntries'),
  }))
  return { ...cliStatus(root), bricks }
}

export interface VolumeStatusOutput extends CliStatus {
  bricks: BrickStatus[]
}

/**
 * `volume status <name> --xml`: <volStatus><volumes><volume><node> per
 * process; bricks have a path, the daemons (self-heal, NFS) have `localhost`
 * or a host name there instead.
 */
export function parseVolumeStatusXml(stdout: string): VolumeStatusOutput {
  const root = parseCliOutput(stdout)
  const volume = child(child(child(root, 'volStatus'), 'volumes'), 'volume')
  const bricks = childrenNamed(volume, 'node')
    .filter((n) => textAt(n, 'path').startsWith('/'))
    .map((n) => ({
      name: `${textAt(n, 'hostname')}:${textAt(n, 'path')}`,
      online: textAt(n, 'status') === '1',
      pid: integer(textAt(n, 'pid'), 'pid'),
    }))
  return { ...cliStatus(root), bricks }
}

export interface SnapshotOutput extends CliStatus {
  /** snapCreate/snapshot or CloneCreate/volume name and uuid, when present */
  name: string
  uuid: string
}

/** `--xml snapshot create|activate|clone|deactivate|delete` */
export function parseSnapshotXml(stdout: string): SnapshotOutput {
  const root = parseCliOutput(stdout)
  const target =
    child(child(root, 'snapCreate'), 'snapshot') ??
    child(child(root, 'CloneCreate'), 'volume') ??
    child(child(root, 'snapActivate'), 'snapshot') ??
    child(child(root, 'snapDeactivate'), 'snapshot') ??
    child(child(child(root, 'snapDelete'), 'snapshots'), 'snapshot')
  return { ...cliStatus(root), name: textAt(target, 'name'), uuid: textAt(target, 'uuid') }
}

/** gluster's gf_defrag_status_t: 1 and 5 are running, 0 never started, the rest ended */
const REBALANCE_RUNNING = new Set([1, 5])
const REBALANCE_FAILED = new Set([4, 8])
const REBALANCE_NOT_STARTED = 0

function decimal(text: string, what: string): number {
  if (text === '') return 0
  const n = Number(text)
  if (!Number.isFinite(n)) throw new CommandOutputError(`${what} is not a number: ${JSON.stringify(text)}`)
  return n
}

export interface RebalanceStatusOutput extends CliStatus {
  status: RebalanceStatus
}

/**
 * `volume rebalance <name> status --xml`: one <node> per peer with bricks
 * of the volume, plus an <aggregate>. A rebalance is over when no node still
 * runs it and at least one ran it; it failed when any node failed.
 */
export function parseRebalanceStatusXml(stdout: string): RebalanceStatusOutput {
  const root = parseCliOutput(stdout)
  const rebalance = child(root, 'volRebalance')
  const nodes = childrenNamed(rebalance, 'node')
  const aggregate = child(rebalance, 'aggregate')
  const rows = nodes.length > 0 ? nodes : aggregate ? [aggregate] : []
  const codes = rows.map((n) => integer(textAt(n, 'status'), 'rebalance status'))
  const sum = (field: string) => rows.reduce((s, n) => s + integer(textAt(n, field), field), 0)
  const running = codes.some((c) => REBALANCE_RUNNING.has(c))
  const status: RebalanceStatus = {
    state: textAt(aggregate, 'statusStr') || textAt(rows[0], 'statusStr'),
    running,
    done: !running && codes.some((c) => c !== REBALANCE_NOT_STARTED),
    failed: codes.some((c) => REBALANCE_FAILED.has(c)),
    files: sum('files'),
    failures: sum('failures'),
    runtimeSec: Math.max(0, ...rows.map((n) => decimal(textAt(n, 'runtime'), 'runtime'))),
  }
  return { ...cliStatus(root), status }
}
