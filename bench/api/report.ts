// The markdown report of one scenario run, with heketi's figures beside
// heqet's for scenario A (bench/heketi-baseline.json says where they come from).
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { fmt } from './log.ts'
import type { Options } from './options.ts'
import type { ScenarioResult } from './scenario.ts'

const FIGURES = [
  'createsPerSec',
  'createP99Ms',
  'infoPerSec',
  'infoP99Ms',
  'listPerSec',
  'topologyWalkSec',
  'deletesPerSec',
  'peakRssMiB',
] as const

export interface HeketiBaseline {
  version: string
  scenario: string
  source: string
  figures: Record<(typeof FIGURES)[number], number>
}

export function loadHeketiBaseline(
  file = new URL('../heketi-baseline.json', import.meta.url),
): HeketiBaseline {
  const data = JSON.parse(readFileSync(file, 'utf8')) as HeketiBaseline
  for (const key of FIGURES) {
    const v = data.figures?.[key]
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw new Error(`${file}: figures.${key} must be a positive number`)
  }
  return data
}

export const HEKETI = loadHeketiBaseline()

function ratio(ours: number, theirs: number, higherIsBetter: boolean): string {
  const r = ours / theirs
  const better = higherIsBetter ? r >= 1 : r <= 1
  const factor = r >= 1 ? r : 1 / r
  return `${fmt(r, 2)} (${fmt(factor, factor >= 10 ? 0 : 1)}× ${better ? 'better' : 'worse'})`
}

export function report(r: ScenarioResult, opts: Options, suffix = ''): string {
  const sc = r.scale
  const lines: string[] = []
  const title = r.name === 'A' ? `Scenario A — heketi's comparison load` : `Scenario B — scale`
  lines.push(
    `### ${title}: ${sc.nodes} nodes × ${sc.devices} devices (zones 1..${sc.zones}), ${sc.volumes} × 1 GiB replica-3 volumes${suffix}`,
  )
  lines.push('')
  const withHeketi = r.name === 'A'
  lines.push(
    withHeketi
      ? `| measurement | heqet | heketi ${HEKETI.version} | ratio heqet/heketi |`
      : '| measurement | heqet |',
  )
  lines.push(withHeketi ? '|---|---:|---:|---|' : '|---|---:|')
  const row = (label: string, ours: string, theirs?: number, oursN?: number, higher?: boolean) => {
    if (!withHeketi) lines.push(`| ${label} | ${ours} |`)
    else if (theirs === undefined || oursN === undefined || higher === undefined)
      lines.push(`| ${label} | ${ours} | – | |`)
    else lines.push(`| ${label} | ${ours} | ${fmt(theirs)} | ${ratio(oursN, theirs, higher)} |`)
  }
  const c = opts.concurrency
  const rc = opts.readConcurrency
  if (r.name === 'B') {
    row(
      `setup: cluster + ${sc.nodes} node adds (conc ${sc.setupConcurrency})`,
      `${fmt(r.setup.clusterNodesSec)} s (${fmt(r.setup.nodesPerSec)}/s)`,
    )
    row(
      `setup: ${sc.nodes * sc.devices} device adds (conc ${sc.setupConcurrency})`,
      `${fmt(r.setup.devicesSec)} s (${fmt(r.setup.devicesPerSec)}/s)`,
    )
    row(`setup: ${sc.volumes} volume creates (conc ${c})`, `${fmt(r.create.seconds)} s`)
  }
  row(
    `volume create, creates/s (conc ${c})`,
    fmt(r.create.perSec),
    HEKETI.figures.createsPerSec,
    r.create.perSec,
    true,
  )
  row('volume create latency p50, ms', fmt(r.create.p50))
  row('volume create latency p99, ms', fmt(r.create.p99), HEKETI.figures.createP99Ms, r.create.p99, false)
  row(
    `volume info GET /volumes/{id}, req/s (conc ${rc})`,
    fmt(r.info.perSec),
    HEKETI.figures.infoPerSec,
    r.info.perSec,
    true,
  )
  row('volume info latency p50, ms', fmt(r.info.p50))
  row('volume info latency p99, ms', fmt(r.info.p99), HEKETI.figures.infoP99Ms, r.info.p99, false)
  row(
    `volume list GET /volumes, req/s (conc ${rc})`,
    fmt(r.list.perSec),
    HEKETI.figures.listPerSec,
    r.list.perSec,
    true,
  )
  row('volume list latency p99, ms', fmt(r.list.p99))
  row(
    `topology walk (${r.walk.requests} sequential GETs), s`,
    fmt(r.walk.seconds, 3),
    HEKETI.figures.topologyWalkSec,
    r.walk.seconds,
    false,
  )
  const delLabel =
    sc.deletes < sc.volumes
      ? `volume delete (sample of ${sc.deletes}), deletes/s`
      : 'volume delete, deletes/s'
  row(`${delLabel} (conc ${c})`, fmt(r.del.perSec), HEKETI.figures.deletesPerSec, r.del.perSec, true)
  row('volume delete latency p99, ms', fmt(r.del.p99))
  row('server peak RSS (VmHWM), MiB', fmt(r.peakRssMiB, 1), HEKETI.figures.peakRssMiB, r.peakRssMiB, false)
  lines.push('')
  lines.push(
    `Details: ${opts.named ? 'named' : 'unnamed'} volumes; queue poll interval ${opts.pollMs} ms (${fmt(r.create.pollsPerCreate, 1)} polls per create); ` +
      `creates/s per tenth of the volumes ${r.create.curve.map((x) => fmt(x)).join(' → ')}; ` +
      `max_inflight_operations ${opts.inflight}` +
      (opts.inflight === 8 ? ' (heketi default, not raised)' : ' (raised)') +
      `; 429 answers retried after ${opts.pollMs || 1} ms: ${r.create.busyRetries} during creates, ${r.del.busyRetries} during deletes; ` +
      `mock device size ${r.deviceSizeGiB} GiB; ` +
      (r.maxVolumesPerCluster < 0
        ? 'max_volumes_per_cluster lifted to unlimited (heketi default 1000); '
        : '') +
      `server RSS idle after start ${fmt(r.rssStartMiB, 1)} MiB, after creates ${fmt(r.rssAfterCreatesMiB, 1)} MiB, ` +
      `at end ${fmt(r.rssEndMiB, 1)} MiB (anon ${fmt(r.rssEndAnonMiB, 1)}, file-backed ${fmt(r.rssEndFileMiB, 1)}); ` +
      `LMDB file ${fmt(r.dbMiB, 1)} MiB; topology walk ${r.walk.volumes} volumes, ${r.walk.nodes} nodes, ` +
      `${r.walk.devices} devices, ${r.walk.bricks} bricks, ${fmt(r.walk.bytes / 1048576, 1)} MiB of JSON.`,
  )
  lines.push('')
  lines.push(
    '| phase | wall, s | server CPU, s (% of wall) | bench client CPU, s (% of wall) | other processes CPU, s (% of wall) |',
  )
  lines.push('|---|---:|---:|---:|---:|')
  const pct = (cpu: number, wall: number) => `${fmt(cpu)} (${fmt((cpu / wall) * 100, 0)} %)`
  for (const p of r.phases)
    lines.push(
      `| ${p.name} | ${fmt(p.wallSec)} | ${pct(p.serverCpuSec, p.wallSec)} | ${pct(p.clientCpuSec, p.wallSec)} | ${pct(p.otherCpuSec, p.wallSec)} |`,
    )
  lines.push('')
  return lines.join('\n')
}

/** The closing line: what machine the figures come from. */
export function machineLine(): string {
  return (
    `Machine: ${cpus().length} vCPU (${cpus()[0]?.model ?? '?'}), node ${process.version}, ` +
    `load average at end ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; client and server on the same machine, HTTP/1.1 keep-alive on 127.0.0.1, ` +
    `one HS256 token per request.`
  )
}
