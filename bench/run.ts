// heqet benchmark: starts the real server (`node bin/heqet.js --config=FILE`,
// mock executor, LMDB file in a temp dir) and drives it over real HTTP on
// 127.0.0.1 with a fresh JWT per request, the way heketi's clients do; the
// read phases go through wrk (Debian package `wrk`) with tokens made
// beforehand, so that the client is not the limit.
//
//   npm run bench                      # scenario A (heketi's comparison load) + B (scale)
//   npm run bench -- --scenario A      # only A
//   npm run bench -- --quick           # ~1 minute smoke run of both, small scale
//   npm run bench -- --scenario B --nodes 200 --devices 10 --volumes 2000
//
// See docs/benchmarks.md for the flags, the method and the measured figures.
//
// The parts: api/options.ts (command line), api/server-process.ts (the server
// as a child process), api/client.ts (HTTP), api/wrk.ts (the read load),
// api/stats.ts (latency figures), api/scenario.ts (the phases),
// api/report.ts (markdown, heketi's figures from heketi-baseline.json).
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { type BenchEtcd, etcdBinary, startBenchEtcd } from './api/etcd-process.ts'
import { log } from './api/log.ts'
import { type Options, parseOptions, USAGE } from './api/options.ts'
import { HEKETI, machineLine, report } from './api/report.ts'
import { runScenario, type ScenarioResult } from './api/scenario.ts'
import { Server, serverForm } from './api/server-process.ts'
import { medianOf } from './api/stats.ts'
import { type StoreRow, storeTable } from './api/stores.ts'
import { WRK_MISSING, wrkVersion } from './api/wrk.ts'

async function main(): Promise<void> {
  let opts: Options
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    process.exit(2)
  }
  if (opts.reader === 'wrk') {
    const version = wrkVersion(opts.wrk)
    if (!version) {
      console.error(WRK_MISSING)
      process.exit(2)
    }
    log(
      `reads through ${version} (${opts.wrk}), ${opts.wrkThreads} threads, ${opts.readConcurrency} connections`,
    )
  }
  const loadAtStart = loadavg()
  const servers = new Set<Server>()
  let etcd: BenchEtcd | undefined
  let interrupted = false
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = true
    log(`${sig}: stopping the server(s)`)
    Promise.all([...[...servers].map((s) => s.stop()), etcd?.stop()]).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true })
  const results: ScenarioResult[] = []
  let failed = false
  // --store: each scenario on each of its stores; etcd started once for all its runs
  const wantEtcd = opts.scenarios.some((n) => opts.stores[n].includes('etcd'))
  if (wantEtcd && !opts.etcd) {
    if (etcdBinary()) etcd = await startBenchEtcd(opts.keep)
    else log('etcd not installed (apt-get install etcd-server) and no --etcd: the etcd runs are left out')
  }
  const etcdHosts = opts.etcd ?? etcd?.hosts
  const plan = opts.scenarios.flatMap((name) =>
    opts.stores[name].filter((s) => s === 'lmdb' || etcdHosts).map((store) => ({ name, store })),
  )
  const byStore: StoreRow[] = []
  for (const { name, store } of plan) {
    const runs: ScenarioResult[] = []
    for (let run = 1; run <= opts.repeat && !failed; run++) {
      const dbUrl = store === 'etcd' ? `etcd://${etcdHosts}/bench-${name}-${run}-${Date.now()}` : undefined
      const server = new Server(name, opts, opts.scale[name], dbUrl)
      servers.add(server)
      try {
        await server.start()
        log(
          `${name}: run ${run}/${opts.repeat}, server pid ${server.pid} on 127.0.0.1:${server.port}, dir ${server.dir}`,
        )
        const r = await runScenario(name, opts, server)
        runs.push(r)
        results.push(r)
        byStore.push({ scenario: name, store, result: r })
        const suffix = `${store === 'etcd' ? ' — etcd store' : ''}${opts.repeat > 1 ? ` (run ${run} of ${opts.repeat})` : ''}`
        process.stdout.write(`\n${report(r, opts, suffix)}\n`)
        if (opts.cpuProf) {
          const file = join(opts.cpuProf, `phases-${name}-${server.pid}.json`)
          writeFileSync(file, `${JSON.stringify(r.phases, null, 2)}\n`)
          log(`${name}: phase boundaries in ${file} (bench/cpuprofile.ts --phases ${file} PROFILE)`)
        }
      } catch (err) {
        failed = true
        if (interrupted) break
        console.error(`\nScenario ${name} FAILED: ${(err as Error).stack ?? err}`)
        console.error(`--- last server log lines (${server.logFile}) ---\n${server.tail(30)}`)
      } finally {
        await server.stop()
        servers.delete(server)
      }
    }
    if (runs.length > 1) {
      process.stdout.write(
        `\n${report(medianOf(runs), opts, `${store === 'etcd' ? ' — etcd store' : ''} (median of ${runs.length} runs)`)}\n`,
      )
    }
    if (failed) break
  }
  if (etcd) await etcd.stop()
  if (byStore.some((r) => r.store === 'etcd'))
    process.stdout.write(`\n${storeTable(byStore, opts, etcd?.version ?? `etcd at ${opts.etcd}`)}\n`)
  process.stdout.write(`\n${machineLine(opts, loadAtStart, serverForm())}\n`)
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ heketi: HEKETI.figures, results }, null, 2)}\n`)
  process.exit(failed ? 1 : 0)
}

await main()
