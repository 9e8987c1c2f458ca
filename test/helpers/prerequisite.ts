// A test that needs something from the machine (root, glusterd, sshd …) calls
// requirePrerequisite(t, why) first. When `why` is undefined the test runs.
// Otherwise, by default it is skipped with the reason (a developer's laptop);
// with HEQET_E2E_REQUIRED=1 (set by .ci/run) it FAILS, so CI cannot pass by
// skipping the work it was meant to do.
import type { Test } from 'tap'

export const REQUIRED_ENV = 'HEQET_E2E_REQUIRED'

export function prerequisitesRequired(): boolean {
  const v = process.env[REQUIRED_ENV]
  return v !== undefined && v !== '' && v !== '0'
}

/** true when the test may go on; otherwise the test is already skipped or failed */
export function requirePrerequisite(t: Test, why: string | undefined): boolean {
  if (why === undefined) return true
  if (prerequisitesRequired()) {
    t.fail(`prerequisite missing (${REQUIRED_ENV}=1): ${why}`)
  } else {
    t.plan(0, `skipped: ${why}`)
  }
  return false
}
