// ../shared/tools/csi-sanity (the CSI conformance suite, see
// ../shared/tools/README.md): where to find it, how to run it against a
// driver's socket within a time bound, and its ginkgo summary.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = dirname(dirname(dirname(dirname(fileURLToPath(import.meta.url)))))

/** $CSI_SANITY, then PATH, then ../shared/tools beside the checkout (or beside a worktree's parent), then /work/shared/tools */
export function findCsiSanity(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [
    env['CSI_SANITY'],
    ...(env['PATH'] ?? '').split(':').map((d) => (d ? join(d, 'csi-sanity') : undefined)),
    join(ROOT, '../shared/tools/csi-sanity'),
    join(ROOT, '../../shared/tools/csi-sanity'),
    // CI clones main wherever it likes; the workplace keeps the tools here
    '/work/shared/tools/csi-sanity',
  ]
  return candidates.find((c): c is string => !!c && existsSync(c))
}

export interface SanitySummary {
  ran: number
  of: number
  passed: number
  failed: number
  pending: number
  skipped: number
  /** the two summary lines as printed */
  lines: string[]
}

/** ginkgo's last lines: "Ran N of M Specs in Xs", then "N Passed | M Failed | P Pending | S Skipped" */
export function parseSanitySummary(output: string): SanitySummary | undefined {
  const ran = /Ran (\d+) of (\d+) Specs? in [0-9.]+ ?\w*/.exec(output)
  const counts = /(\d+) Passed \| (\d+) Failed \| (?:(\d+) Flaked \| )?(\d+) Pending \| (\d+) Skipped/.exec(
    output,
  )
  if (!ran || !counts) return undefined
  return {
    ran: Number(ran[1]),
    of: Number(ran[2]),
    passed: Number(counts[1]),
    failed: Number(counts[2]),
    pending: Number(counts[4]),
    skipped: Number(counts[5]),
    lines: [ran[0], counts[0]],
  }
}

export interface SanityRun {
  code: number | null
  signal: NodeJS.Signals | null
  output: string
  seconds: number
  summary?: SanitySummary
}

/** Run csi-sanity; killed (by its PID) when it outlives `timeoutMs`. */
export function runCsiSanity(binary: string, args: string[], timeoutMs: number): Promise<SanityRun> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({
        code,
        signal,
        output,
        seconds: (performance.now() - started) / 1000,
        summary: parseSanitySummary(output),
      })
    })
  })
}
