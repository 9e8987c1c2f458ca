// bin/heap-growth.js: with the old generation's growing factor fixed at 1.2
// the heap carries less garbage over the same live data and allocation than
// with V8's own factor (up to 4).
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { DEFAULT_HEAP_GROWING_PERCENT, heapGrowingPercent } from '../bin/heap-growth.js'

const MODULE = new URL('../bin/heap-growth.js', import.meta.url).href

// ~40 MiB live (a map of small entries, as the store's cache), then garbage
// with some survivors in bursts with an event-loop turn between them, as a
// server's requests come; prints the largest heap V8 reserved, in MiB.
const LOAD = `
import { capHeapGrowth } from ${JSON.stringify(MODULE)}
capHeapGrowth()
const live = new Map()
for (let i = 0; i < 200000; i++) live.set('k' + i, { id: 'id-' + i + '-' + 'x'.repeat(40), n: i, tags: {} })
let keep = []
let max = 0
for (let round = 0; round < 200; round++) {
  for (let i = 0; i < 20000; i++) {
    const o = { a: i, b: 'y' + i, c: new Array(20).fill(i) }
    if (i % 10 === 0) keep.push(o)
  }
  if (keep.length > 40000) keep = keep.slice(20000)
  max = Math.max(max, process.memoryUsage().heapTotal)
  await new Promise((r) => setImmediate(r))
}
console.log(live.size === 200000 ? max / 1048576 : -1)
`

function maxHeapMiB(env: Record<string, string>): number {
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', LOAD], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    timeout: 120_000,
  })
  if (res.status !== 0) throw new Error(`load exited ${res.status}: ${res.stderr}`)
  return Number(res.stdout.trim())
}

t.test('the capped heap stays smaller than with V8 own growing factor', async (t) => {
  const capped = maxHeapMiB({})
  const uncapped = maxHeapMiB({ HEQET_HEAP_GROWING_PERCENT: '0' })
  t.ok(capped > 40, `the load keeps its live data: ${capped} MiB`)
  t.ok(capped < uncapped, `capped ${capped} MiB < uncapped ${uncapped} MiB`)
})

t.test('a --heap-growing-percent given to node wins; the variable is checked', async (t) => {
  t.equal(heapGrowingPercent({}, []), DEFAULT_HEAP_GROWING_PERCENT)
  t.equal(heapGrowingPercent({}, ['--heap-growing-percent=50']), 0)
  t.equal(heapGrowingPercent({ NODE_OPTIONS: '--heap_growing_percent=50' }, []), 0)
  t.equal(heapGrowingPercent({ HEQET_HEAP_GROWING_PERCENT: '0' }, []), 0)
  t.equal(heapGrowingPercent({ HEQET_HEAP_GROWING_PERCENT: '35' }, []), 35)
  t.throws(() => heapGrowingPercent({ HEQET_HEAP_GROWING_PERCENT: 'lots' }, []), /HEQET_HEAP_GROWING_PERCENT/)
  t.throws(() => heapGrowingPercent({ HEQET_HEAP_GROWING_PERCENT: '-5' }, []), /HEQET_HEAP_GROWING_PERCENT/)
})
