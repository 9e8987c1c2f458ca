// Summarise a V8 .cpuprofile (from `npm run bench -- --cpu-prof DIR`):
// top functions by self time and by inclusive time, and the share of the
// project's own code, dependencies and node internals.
//
//   node --import tsx bench/cpuprofile.ts DIR/CPU.*.cpuprofile [--top 25] [--match volumeView]
//   node --import tsx bench/cpuprofile.ts --phases DIR/phases-A-<pid>.json DIR/CPU.*.<pid>.0.001.cpuprofile
//
// With --phases the samples are split by the bench's phase boundaries
// (both use CLOCK_MONOTONIC microseconds) and each phase is summarised.
//
// Note: the main thread is sampled while blocked in native code too (e.g.
// an fsync inside an LMDB commit), so "busy" is main-thread wall time not
// spent idle in the event loop, not CPU time.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  options: {
    top: { type: 'string', default: '25' },
    match: { type: 'string' },
    phases: { type: 'string' },
  },
  allowPositionals: true,
})
const top = Number(values.top)

function label(f: CallFrame): string {
  const name = f.functionName || '(anonymous)'
  if (!f.url) return name
  const url = f.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/work\/main\//, '')
    .replace(/\?.*$/, '')
  return `${name} ${url}:${f.lineNumber + 1}`
}

function area(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : 'native/V8'
  if (f.url.includes('node_modules/')) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url)
    return `dep ${m?.[1] ?? '?'}`
  }
  if (f.url.startsWith('node:')) return 'node internals'
  return 'heqet'
}

const phases: { name: string; startUs: number; endUs: number }[] = values.phases
  ? JSON.parse(readFileSync(values.phases, 'utf8'))
  : [{ name: 'whole profile', startUs: 0, endUs: Number.POSITIVE_INFINITY }]

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  for (const phase of phases) summarise(file, p, phase)
}

function summarise(file: string, p: Profile, phase: { name: string; startUs: number; endUs: number }): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfUs = new Map<number, number>()
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0
    const dt = p.timeDeltas[i + 1] ?? 0
    if (t < phase.startUs || t >= phase.endUs) continue
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + dt)
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const idle = [...selfUs].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)')
  const idleUs = idle.reduce((a, [, us]) => a + us, 0)
  const busy = total - idleUs

  const self = new Map<string, number>()
  const incl = new Map<string, number>()
  const areas = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame
    if (f.functionName === '(idle)') continue
    self.set(label(f), (self.get(label(f)) ?? 0) + us)
    areas.set(area(f), (areas.get(area(f)) ?? 0) + us)
    // inclusive: each distinct label on the stack once
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!.callFrame)
      if (seen.has(l)) continue
      seen.add(l)
      incl.set(l, (incl.get(l) ?? 0) + us)
    }
  }
  const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)} %`
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`
  console.log(`\n== ${file}: ${phase.name}`)
  console.log(`sampled ${ms(total)}: main thread busy ${ms(busy)}, idle ${ms(idleUs)}`)
  console.log('\n-- busy time by area')
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1])) console.log(`${ms(us)} ${pct(us)}  ${a}`)
  console.log(`\n-- top ${top} by self time`)
  for (const [l, us] of [...self].sort((x, y) => y[1] - x[1]).slice(0, top))
    console.log(`${ms(us)} ${pct(us)}  ${l}`)
  console.log(`\n-- top ${top} by inclusive time`)
  const inclusive = [...incl]
    .filter(([l]) => !values.match || l.includes(values.match))
    .sort((x, y) => y[1] - x[1])
    .slice(0, values.match ? 1000 : top)
  for (const [l, us] of inclusive) console.log(`${ms(us)} ${pct(us)}  ${l}`)
}
