// bin/young-generation.js: the server's V8 new space stays at its target
// (8 MiB) under an allocation load that grows an uncapped one to V8's 32 MiB.
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { DEFAULT_NEW_SPACE_MIB, newSpaceTarget } from '../bin/young-generation.js'

const MODULE = new URL('../bin/young-generation.js', import.meta.url).href

// Allocation with survivors (what makes V8 grow the new space), in bursts with
// an event-loop turn between them, as a server's requests come; prints the
// largest new space seen, in MiB.
const LOAD = `
import v8 from 'node:v8'
import { capYoungGeneration } from ${JSON.stringify(MODULE)}
capYoungGeneration()
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size
let keep = []
let max = 0
for (let round = 0; round < 300; round++) {
  for (let i = 0; i < 20000; i++) {
    const o = { a: i, b: 'x' + i, c: [i, i] }
    if (i % 50 === 0) keep.push(o)
  }
  if (keep.length > 20000) keep = keep.slice(10000)
  max = Math.max(max, newSpace())
  await new Promise((r) => setImmediate(r))
}
console.log(max / 1048576)
`

function maxNewSpaceMiB(env: Record<string, string>, nodeArgs: string[] = []): number {
  const res = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', LOAD], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    timeout: 60_000,
  })
  if (res.status !== 0) throw new Error(`load exited ${res.status}: ${res.stderr}`)
  return Number(res.stdout.trim())
}

t.test('the new space stays at the target; without the cap the same load grows it to 32 MiB', async (t) => {
  const capped = maxNewSpaceMiB({})
  t.ok(capped <= DEFAULT_NEW_SPACE_MIB, `capped: ${capped} MiB <= ${DEFAULT_NEW_SPACE_MIB} MiB`)
  const uncapped = maxNewSpaceMiB({ HEQET_YOUNG_GENERATION_MIB: '0' })
  t.ok(uncapped >= 32, `uncapped: ${uncapped} MiB (V8's default ceiling 32 MiB)`)
  const other = maxNewSpaceMiB({ HEQET_YOUNG_GENERATION_MIB: '16' })
  t.ok(other > DEFAULT_NEW_SPACE_MIB && other <= 16, `HEQET_YOUNG_GENERATION_MIB=16: ${other} MiB`)
})

t.test('a --max-semi-space-size given to node wins over the cap', async (t) => {
  t.equal(newSpaceTarget({}, ['--max-semi-space-size=2']), 0)
  t.equal(newSpaceTarget({ NODE_OPTIONS: '--max_semi_space_size=2' }, []), 0)
  t.equal(newSpaceTarget({}, []), DEFAULT_NEW_SPACE_MIB * 1024 * 1024)
  t.equal(newSpaceTarget({ HEQET_YOUNG_GENERATION_MIB: '0' }, []), 0)
  t.throws(() => newSpaceTarget({ HEQET_YOUNG_GENERATION_MIB: 'lots' }, []), /HEQET_YOUNG_GENERATION_MIB/)
  t.equal(maxNewSpaceMiB({}, ['--max-semi-space-size=1']), 2)
})
