// .ci/run and .ci/count-tap on fabricated TAP streams: skips are not passes,
// a killed test run is a failure, and a missing testbed prerequisite fails
// when HEQET_E2E_REQUIRED=1 (which .ci/run sets).
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const COUNT = join(ROOT, '.ci/count-tap')
const LAST_LINE = /^\d+ passed, \d+ failed$/

function count(stream: string, ...statuses: number[]) {
  const r = spawnSync(COUNT, statuses.map(String), { input: stream, encoding: 'utf8' })
  const lines = r.stdout.trimEnd().split('\n')
  return { code: r.status, skippedLine: lines.at(-2), lastLine: lines.at(-1) ?? '' }
}

t.test('count-tap: skips and todos are counted apart, at any depth', async (t) => {
  const stream = [
    'TAP version 14',
    'ok 1 - plain',
    '    ok 1 - nested # time=3ms',
    '    ok 2 - nested skip # SKIP e2e testbed unavailable',
    '    not ok 3 - known bug # TODO fix later',
    '    ok 4 - lower case # skip no root',
    'ok 2 - escaped \\# SKIP is only a name',
    'not ok 3 - broken',
    '1..3',
  ].join('\n')
  const r = count(stream, 0)
  t.equal(r.skippedLine, '3 skipped (# SKIP or # TODO)')
  t.equal(r.lastLine, '3 passed, 1 failed')
  t.match(r.lastLine, LAST_LINE)
  t.equal(r.code, 1)
})

t.test('count-tap: a run killed before any `not ok` is a failure', async (t) => {
  const killed = 'TAP version 14\n# Subtest: test/a.test.ts\n    ok 1 - first\n'
  const r = count(killed, 137)
  t.equal(r.lastLine, '1 passed, 1 failed')
  t.equal(r.code, 1)
  const clean = count(killed, 0)
  t.equal(clean.lastLine, '1 passed, 0 failed')
  t.equal(clean.code, 0)
})

t.test('count-tap: Bail out! is a failure', async (t) => {
  const r = count('ok 1 - a\nBail out! testbed gone\n', 0)
  t.equal(r.lastLine, '1 passed, 1 failed')
  t.equal(r.code, 1)
})

t.test('a missing prerequisite: skipped by default, a failure when required', async (t) => {
  const fixture = join(ROOT, 'test/fixtures/ci/prerequisite-missing.ts')
  const run = (required: boolean) => {
    const env: NodeJS.ProcessEnv = { ...process.env, HEQET_E2E_REQUIRED: required ? '1' : '' }
    // the fixture runs as a plain script, not under this test's runner
    for (const k of Object.keys(env)) if (k.startsWith('TAP')) delete env[k]
    const r = spawnSync(process.execPath, ['--import', 'tsx', fixture], { cwd: ROOT, env, encoding: 'utf8' })
    return { ...count(r.stdout, r.status ?? 1), stdout: r.stdout }
  }
  const relaxed = run(false)
  t.equal(relaxed.skippedLine, '1 skipped (# SKIP or # TODO)', 'skips counted apart')
  t.equal(relaxed.lastLine, '2 passed, 0 failed', 'the other subtest ran')
  const required = run(true)
  t.equal(required.skippedLine, '0 skipped (# SKIP or # TODO)', 'nothing skipped when required')
  t.match(required.stdout, /not ok 1 - prerequisite missing \(HEQET_E2E_REQUIRED=1\): no such thing/)
  t.match(required.lastLine, /^\d+ passed, [1-9]\d* failed$/, 'counted as a failure')
  t.equal(required.code, 1)
})

t.test('.ci/run with stubbed npm/npx: the test status and HEQET_E2E_REQUIRED reach the count', async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'heqet-ci-stub-'))
  t.teardown(() => rmSync(bin, { recursive: true, force: true }))
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`)
    chmodSync(join(bin, name), 0o755)
  }
  // `bash .ci/e2e-deps.sh` must not install anything; every other bash is the real one
  stub('bash', 'if [ "$1" = .ci/e2e-deps.sh ]; then exit 0; fi\nexec /bin/bash "$@"')
  stub('npx', 'exit 0')
  stub(
    'npm',
    [
      '[ "$1" = test ] || exit 0',
      'echo "TAP version 14"',
      'echo "ok 1 - a"',
      'echo "ok 2 - b # SKIP not here"',
      '[ "$HEQET_E2E_REQUIRED" = 1 ] || echo "not ok 3 - HEQET_E2E_REQUIRED not exported"',
      'exit "$FAKE_TEST_STATUS"',
    ].join('\n'),
  )
  const ci = (status: number) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      FAKE_TEST_STATUS: String(status),
    }
    delete env.HEQET_E2E_REQUIRED
    const r = spawnSync('/bin/bash', [join(ROOT, '.ci/run')], { env, encoding: 'utf8' })
    const lines = r.stdout.trimEnd().split('\n')
    return { code: r.status, skippedLine: lines.at(-2), lastLine: lines.at(-1), stdout: r.stdout }
  }
  const ok = ci(0)
  // 4 steps + "ok 1 - a"; the skip is not a pass
  t.equal(ok.lastLine, '5 passed, 0 failed', 'four steps and one test point pass')
  t.equal(ok.skippedLine, '1 skipped (# SKIP or # TODO)')
  t.equal(ok.code, 0)
  const killed = ci(143)
  t.equal(killed.lastLine, '5 passed, 1 failed', 'the killed run is a failure')
  t.match(killed.stdout, /npm test exited with status 143/)
  t.equal(killed.code, 1)
})
