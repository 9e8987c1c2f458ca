// `npm run bench` on several stores: the headline figures of each run side
// by side (LMDB file vs etcd), so the cost of the replicated store is one
// table away.
import type { Options, StoreName } from './options.ts'
import type { ScenarioResult } from './scenario.ts'
import { medianOf } from './stats.ts'

export interface StoreRow {
  scenario: 'A' | 'B'
  store: StoreName
  result: ScenarioResult
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))

export function storeTable(rows: StoreRow[], opts: Options, etcdVersion: string): string {
  const lines = [
    `### The stores side by side (etcd: ${etcdVersion})`,
    '',
    `| scenario | store | creates/s (conc ${opts.concurrency}) | create p99, ms | GET /volumes/{id} req/s (conc ${opts.readConcurrency}) | GET /volumes req/s | deletes/s | peak RSS, MiB |`,
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ]
  // one line per scenario and store: the median of its runs (--repeat)
  const groups = new Map<string, StoreRow[]>()
  for (const row of rows) {
    const key = `${row.scenario}\u0000${row.store}`
    groups.set(key, [...(groups.get(key) ?? []), row])
  }
  for (const group of groups.values()) {
    const { scenario, store } = group[0]!
    const r = group.length > 1 ? medianOf(group.map((g) => g.result)) : group[0]!.result
    const runs = group.length > 1 ? `, median of ${group.length} runs` : ''
    lines.push(
      `| ${scenario} (${r.scale.volumes} volumes${runs}) | ${store} | ${fmt(r.create.perSec)} | ${fmt(r.create.p99)} | ${fmt(r.info.perSec)} | ${fmt(r.list.perSec)} | ${fmt(r.del.perSec)} | ${fmt(r.peakRssMiB)} |`,
    )
  }
  return lines.join('\n')
}
