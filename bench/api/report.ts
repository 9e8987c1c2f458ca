// The markdown report of one scenario run, with heketi's figures beside
// heqet's for scenario A (bench/heketi-baseline.json says where they come from).
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { runtimeEnv } from '../../deploy/image-steps.ts'
import { fmt } from './log.ts'
import type { Options } from './options.ts'
import type { ScenarioResult } from './scenario.ts'

/** the figures issue 12's table compares, all required in the baseline file */
const FIGURES = ['createsPerSec', 'infoPerSec', 'listPerSec', 'deletesPerSec', 'peakRssMiB'] as const
/** figures an older baseline may also have */
type OptionalFigure = 'createP99Ms' | 'infoP99Ms' | 'topologyWalkSec'

export interface HeketiBaseline {
  version: string
  scenario: string
  source: string
  figures: Record<(typeof FIGURES)[number], number> & Partial<Record<OptionalFigure, number>>
}

/** issue 12's targets for scenario A (reads with wrk at 32 connections) */
export const TARGETS = {
  createsPerSec: { value: 600, higher: true },
  infoPerSec: { value: 28000, higher: true },
  infoP99Ms: { value: 5, higher: false },
  listPerSec: { value: 27000, higher: true },
  deletesPerSec: { value: 1400, higher: true },
  peakRssMiB: { value: 80, higher: false },
} as const

function target(key: keyof typeof TARGETS, ours: number): string {
  const t = TARGETS[key]
  const met = t.higher ? ours >= t.value : ours <= t.value
  return `${t.higher ? '≥' : '≤'} ${fmt(t.value)} ${met ? '(met)' : '(not met)'}`
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
      ? `| measurement | heqet | heketi ${HEKETI.version} | ratio heqet/heketi | target (issue 12) |`
      : '| measurement | heqet |',
  )
  lines.push(withHeketi ? '|---|---:|---:|---|---|' : '|---|---:|')
  const row = (
    label: string,
    ours: string,
    theirs?: number,
    oursN?: number,
    higher?: boolean,
    goal?: keyof typeof TARGETS,
  ) => {
    const t = goal && oursN !== undefined ? target(goal, oursN) : ''
    if (!withHeketi) lines.push(`| ${label} | ${ours} |`)
    else if (theirs === undefined || oursN === undefined || higher === undefined)
      lines.push(`| ${label} | ${ours} | – | | ${t} |`)
    else lines.push(`| ${label} | ${ours} | ${fmt(theirs)} | ${ratio(oursN, theirs, higher)} | ${t} |`)
  }
  const c = opts.concurrency
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
    'createsPerSec',
  )
  row('volume create latency p50, ms', fmt(r.create.p50))
  row('volume create latency p99, ms', fmt(r.create.p99), HEKETI.figures.createP99Ms, r.create.p99, false)
  row('volume create server CPU per create, µs', fmt(r.create.serverCpuUs, 0))
  row('– of it on the server main thread, µs', fmt(r.create.serverMainCpuUs, 0))
  row(
    `volume info GET /volumes/{id}, req/s (${r.info.reader})`,
    fmt(r.info.perSec),
    HEKETI.figures.infoPerSec,
    r.info.perSec,
    true,
    'infoPerSec',
  )
  row('volume info latency p50, ms', fmt(r.info.p50))
  row(
    'volume info latency p99, ms',
    fmt(r.info.p99),
    HEKETI.figures.infoP99Ms,
    r.info.p99,
    false,
    'infoP99Ms',
  )
  row('volume info server CPU per request, µs', fmt(r.info.serverCpuUs))
  if (r.floor) {
    row(
      `bare node:http floor, req/s (same wrk, ${fmt(r.info.bodyBytes, 0)}-byte body; heqet = ${fmt((r.info.perSec / r.floor.perSec) * 100, 0)} % of it)`,
      fmt(r.floor.perSec),
    )
    row('bare node:http floor, server CPU per request, µs', fmt(r.floor.serverCpuUs))
  }
  row(
    `volume list GET /volumes, req/s (${r.list.reader})`,
    fmt(r.list.perSec),
    HEKETI.figures.listPerSec,
    r.list.perSec,
    true,
    'listPerSec',
  )
  row('volume list latency p99, ms', fmt(r.list.p99))
  row('volume list server CPU per request, µs', fmt(r.list.serverCpuUs))
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
  row(
    `${delLabel} (conc ${c})`,
    fmt(r.del.perSec),
    HEKETI.figures.deletesPerSec,
    r.del.perSec,
    true,
    'deletesPerSec',
  )
  row('volume delete latency p99, ms', fmt(r.del.p99))
  row('volume delete server CPU per delete, µs', fmt(r.del.serverCpuUs, 0))
  row('– of it on the server main thread, µs', fmt(r.del.serverMainCpuUs, 0))
  row(
    'server peak RSS (VmHWM), MiB',
    fmt(r.peakRssMiB, 1),
    HEKETI.figures.peakRssMiB,
    r.peakRssMiB,
    false,
    'peakRssMiB',
  )
  lines.push('')
  lines.push(
    `Details: ${opts.named ? 'named' : 'unnamed'} volumes; queue poll interval ${opts.pollMs} ms (${fmt(r.create.pollsPerCreate, 1)} polls per create, ${fmt(r.del.pollsPerDelete, 1)} per delete); ` +
      (r.create.store && r.del.store
        ? `store writes / commits per create ${fmt(r.create.store.writes, 2)} / ${fmt(r.create.store.commits, 2)}, per delete ${fmt(r.del.store.writes, 2)} / ${fmt(r.del.store.commits, 2)}; `
        : '') +
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

/** The closing line: what machine the figures come from, how busy it was, what ran. */
export function machineLine(opts: Options, loadAtStart: number[], server: string): string {
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ')
  const reads =
    opts.reader === 'wrk'
      ? `reads from wrk (${opts.wrkThreads} threads, ${opts.readConcurrency} connections, tokens made beforehand)`
      : `reads from the bench's Node.js client (${opts.readConcurrency} workers, a fresh token per request)`
  return (
    `Machine: ${cpus().length} vCPU (${cpus()[0]?.model ?? '?'}), node ${process.version}, ` +
    `load average at start ${load(loadAtStart)}, at end ${load(loadavg())}; server ${server}, ` +
    (opts.imageEnv
      ? `with the image's environment (Dockerfile ENV: ${Object.entries(runtimeEnv())
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}); `
      : "without the image's environment (--no-image-env); ") +
    `client and server on the same machine, HTTP/1.1 keep-alive on 127.0.0.1; ${reads}; ` +
    'creates, deletes and the topology walk with one HS256 token per request.'
  )
}
