// The one line heqet adds after heketi's error text, saying why placement
// failed. heketi's bare `No space` cost users hours (#1016): the usual cause
// is too few nodes or zones with room, not too little space in total.

import type { Id } from '../../db/entries.ts'
import {
  DEFAULT_DISPERSE_DATA,
  DEFAULT_DISPERSE_REDUNDANCY,
  DEFAULT_REPLICA,
  type Durability,
  GiB_IN_KiB,
} from './geometry.ts'
import {
  type BrickNeed,
  bestDeviceOn,
  type DeviceFilters,
  nodeUsable,
  type SetMembers,
  SpaceOverlay,
} from './set-search.ts'
import type { ClusterSummary, ClusterView, NodeView } from './topology-index.ts'

const MAX_LISTED = 3

export interface ShortageFacts {
  cluster: ClusterView
  filters: DeviceFilters
  strictZones: boolean
  durability: Durability
  /** gluster order, the arbiter (if any) at position 2 */
  needs: readonly BrickNeed[]
  setCount: number
  setsPlaced: number
}

export function explainShortage(facts: ShortageFacts): string {
  const { needs, strictZones } = facts
  const data = needs.find((n) => n.role === 'data') ?? needs[0]
  const arbiter = needs.find((n) => n.role === 'arbiter')
  const dataNodes = nodesWithRoom(facts.cluster, data, facts.filters)
  const arbiterNodes = arbiter === undefined ? [] : nodesWithRoom(facts.cluster, arbiter, facts.filters)
  const what = durabilityText(facts.durability, arbiter !== undefined)
  const where = strictZones ? ' in distinct zones' : ''
  const matching =
    facts.filters.tagRule === undefined ? '' : ` on devices matching ${facts.filters.tagRule.text}`
  const count = (nodes: NodeView[]) => (strictZones ? onePerZone(nodes) : nodes)
  const dataCount = needs.length - (arbiter === undefined ? 0 : 1)

  const foundData = count(dataNodes)
  if (foundData.length < dataCount) {
    const role = arbiter === undefined ? '' : 'data '
    return (
      `${what} needs ${dataCount} ${role}nodes${where} with ≥ ${formatKiB(spaceNeeded(data))} free${matching}: ` +
      `found ${foundData.length}${listNodes(foundData)}`
    )
  }
  if (arbiter !== undefined) {
    const all = count(unique([...dataNodes, ...arbiterNodes]))
    if (arbiterNodes.length === 0 || all.length < needs.length) {
      return (
        `${what} needs ${needs.length} nodes${where}, one of them for the arbiter with ≥ ` +
        `${formatKiB(spaceNeeded(arbiter))} free${matching}: found ${all.length}` +
        ` (${arbiterNodes.length} can take the arbiter)`
      )
    }
  }
  return (
    `${what} needs ${facts.setCount} sets of ${formatKiB(data.brickSizeKiB)} bricks${where}: ` +
    `room for only ${facts.setsPlaced}`
  )
}

export function explainNoReplacement(
  cluster: ClusterView,
  need: BrickNeed,
  filters: DeviceFilters,
  others: SetMembers,
  strictZones: boolean,
): string {
  const outside = nodesWithRoom(cluster, need, filters).filter(
    (n) => !others.nodes.has(n.id) && !(strictZones && others.zoneUse.has(n.zone)),
  )
  const where = strictZones ? ' in a zone the set does not use' : ''
  const matching = filters.tagRule === undefined ? '' : ` on devices matching ${filters.tagRule.text}`
  return (
    `needs a node other than the set's ${others.nodes.size}${where} with ≥ ${formatKiB(spaceNeeded(need))} ` +
    `free${matching}: found ${outside.length}`
  )
}

export function explainNoDevices(summary: ClusterSummary, usableNodes: number): string {
  return (
    `${summary.nodes} nodes (${summary.onlineNodes} online, ${usableNodes} usable), ` +
    `${summary.onlineDevices} of ${summary.devices} devices online`
  )
}

// What a device with the usual 4 MiB extents gives up for the brick.
function spaceNeeded(need: BrickNeed): number {
  return need.spaceOn(4096).totalKiB
}

/** Nodes that could take the brick on an otherwise empty request. */
function nodesWithRoom(cluster: ClusterView, need: BrickNeed, filters: DeviceFilters): NodeView[] {
  const empty = new SpaceOverlay()
  const found: NodeView[] = []
  for (const zone of cluster.zones) {
    for (const node of zone.nodes) {
      if (nodeUsable(node, filters) && bestDeviceOn(node, need, filters, empty) !== undefined)
        found.push(node)
    }
  }
  return found
}

function onePerZone(nodes: NodeView[]): NodeView[] {
  const seen = new Set<number>()
  return nodes.filter((n) => !seen.has(n.zone) && seen.add(n.zone))
}

function unique(nodes: NodeView[]): NodeView[] {
  const seen = new Set<Id>()
  return nodes.filter((n) => !seen.has(n.id) && seen.add(n.id))
}

function listNodes(nodes: NodeView[]): string {
  if (nodes.length === 0) return ''
  const shown = [...nodes].sort((a, b) => a.zone - b.zone || (a.id < b.id ? -1 : 1)).slice(0, MAX_LISTED)
  const more = nodes.length > MAX_LISTED ? ', …' : ''
  return ` (${shown.map((n) => `zone ${n.zone}: node ${n.id}`).join(', ')}${more})`
}

export function durabilityText(durability: Durability, arbiter: boolean): string {
  switch (durability.type) {
    case 'none':
      return 'distribute'
    case 'replicate':
      return `replica ${durability.replica || DEFAULT_REPLICA}${arbiter ? ' arbiter' : ''}`
    case 'disperse':
      return `disperse ${durability.data || DEFAULT_DISPERSE_DATA}+${durability.redundancy || DEFAULT_DISPERSE_REDUNDANCY}`
  }
}

/** Sizes for people: `5 GiB`, `512 MiB`, one decimal at most. */
export function formatKiB(kib: number): string {
  const oneDecimal = (x: number) => String(Math.round(x * 10) / 10)
  if (kib >= GiB_IN_KiB) return `${oneDecimal(kib / GiB_IN_KiB)} GiB`
  if (kib >= 1024) return `${oneDecimal(kib / 1024)} MiB`
  return `${kib} KiB`
}
