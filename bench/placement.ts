// Placement micro-benchmark: 1000 nodes × 10 devices in 10 zones, 10 000
// replica-3 allocations. Each result is applied before the next request: by
// default to a plain copy of the device entries handed to the index as a
// commit (so the figures are placement's own), with --store through an
// in-memory Store (whose deep copies then dominate and add GC pauses).
//   node --import tsx bench/placement.ts [--store] [allocations]

import type { DeviceEntry } from '../db/entries.ts'
import { type AllocationRequest, allocateBricks, spaceTakenByDevice } from '../src/placement/allocator.ts'
import { DEFAULT_BRICK_LIMITS, GiB_IN_KiB, TiB_IN_KiB } from '../src/placement/geometry.ts'
import { TopologyIndex } from '../src/placement/topology-index.ts'
import { MemoryStore } from '../test/fixtures/memory-store.ts'
import { type NodeSpec, seedCluster } from '../test/fixtures/topology.ts'

const NODES = 1000
const DEVICES_PER_NODE = 10
const ZONES = 10
const THROUGH_STORE = process.argv.includes('--store')
const ALLOCATIONS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 10_000)
const SIZES_GiB = [1, 2, 5, 10, 20, 50, 100]

const nodes: NodeSpec[] = Array.from({ length: NODES }, (_, n) => ({
  id: `node${String(n).padStart(4, '0')}`,
  zone: (n % ZONES) + 1,
  devices: Array.from({ length: DEVICES_PER_NODE }, (_, d) => ({
    id: `dev${String(n).padStart(4, '0')}-${d}`,
    freeKiB: 2 * TiB_IN_KiB,
  })),
}))

const store = new MemoryStore()
await seedCluster(store, 'bench', nodes)
let t0 = performance.now()
const index = new TopologyIndex(store)
index.cluster('bench')
const buildMs = performance.now() - t0

const devices = new Map(store.read((tx) => tx.values('device')).map((d) => [d.id, d]))
function charged(d: DeviceEntry, kib: number): DeviceEntry {
  return {
    ...d,
    storage: { ...d.storage, freeKiB: d.storage.freeKiB - kib, usedKiB: d.storage.usedKiB + kib },
  }
}

const allocUs: number[] = []
// CPU time is not inflated by the process waiting for a core on a busy machine
const cpuUs: number[] = []
let applyMs = 0
let bricks = 0
t0 = performance.now()
for (let i = 0; i < ALLOCATIONS; i++) {
  const request: AllocationRequest = {
    clusterId: 'bench',
    volumeId: `vol${i}`,
    sizeKiB: SIZES_GiB[i % SIZES_GiB.length] * GiB_IN_KiB,
    durability: { type: 'replicate', replica: 3 },
    snapshotFactor: 1,
    existingBrickCount: 0,
    zoneChecking: 'strict',
    arbiter: false,
    averageFileSizeKiB: 64,
    limits: DEFAULT_BRICK_LIMITS,
  }
  const cpuStart = process.cpuUsage()
  const start = performance.now()
  const allocation = allocateBricks(index, request)
  allocUs.push((performance.now() - start) * 1000)
  const cpu = process.cpuUsage(cpuStart)
  cpuUs.push(cpu.user + cpu.system)
  bricks += allocation.sets.flat().length

  const applyStart = performance.now()
  if (THROUGH_STORE) {
    await store.write((tx) => {
      for (const [deviceId, kib] of spaceTakenByDevice(allocation))
        tx.put('device', deviceId, charged(tx.get('device', deviceId)!, kib))
    })
  } else {
    const changes = [...spaceTakenByDevice(allocation)].map(([deviceId, kib]) => {
      const entry = charged(devices.get(deviceId)!, kib)
      devices.set(deviceId, entry)
      return { bucket: 'device' as const, key: deviceId, value: entry }
    })
    index.apply(changes)
  }
  applyMs += performance.now() - applyStart
}
const totalMs = performance.now() - t0

allocUs.sort((a, b) => a - b)
cpuUs.sort((a, b) => a - b)
const at = (list: number[], p: number) =>
  list[Math.min(list.length - 1, Math.floor(list.length * p))].toFixed(1)
const pct = (p: number) => at(allocUs, p)
const allocTotalMs = allocUs.reduce((a, b) => a + b, 0) / 1000
const summary = index.clusterSummary('bench')
const frees = nodes.flatMap((n) => n.devices.map((d) => index.device(d.id)!.freeKiB))
const usedGiB = frees.map((f) => (2 * TiB_IN_KiB - f) / GiB_IN_KiB)

console.log(
  `topology: ${NODES} nodes × ${DEVICES_PER_NODE} devices, ${ZONES} zones; index build ${buildMs.toFixed(1)} ms`,
)
console.log(`${ALLOCATIONS} replica-3 allocations (strict zones), ${bricks} bricks`)
console.log(
  `allocate: ${Math.round(ALLOCATIONS / (allocTotalMs / 1000))} allocations/s, ` +
    `p50 ${pct(0.5)} µs, p99 ${pct(0.99)} µs, max ${pct(1)} µs (wall clock)`,
)
console.log(`allocate CPU time: p50 ${at(cpuUs, 0.5)} µs, p99 ${at(cpuUs, 0.99)} µs, max ${at(cpuUs, 1)} µs`)
console.log(
  `with applying each result (${THROUGH_STORE ? 'store commit' : 'plain copy'}): ` +
    `${Math.round(ALLOCATIONS / (totalMs / 1000))} allocations/s (applying ${applyMs.toFixed(0)} ms of ${totalMs.toFixed(0)} ms)`,
)
console.log(
  `spread: device used GiB min ${Math.min(...usedGiB).toFixed(0)}, max ${Math.max(...usedGiB).toFixed(0)}; ` +
    `cluster free ${(summary.freeKiB / TiB_IN_KiB).toFixed(1)} TiB`,
)
