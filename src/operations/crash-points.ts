// A test hook: HEQET_CRASH_AT=<point>:<operation type> (for example
// `journal:create-volume`) makes the process SIGKILL itself at that point,
// so a real-process test can show that what was committed before it
// survives. Points: `journal` (the build and journal record are durable, no
// node command has run yet) and `result` (the finalize is durable, the queue
// has not answered yet). Unset in production; nothing else reads it.
import type { OperationType } from '../../db/entries.ts'

export type CrashPoint = 'journal' | 'result'

const wanted = process.env['HEQET_CRASH_AT']

export function crashPoint(point: CrashPoint, type: OperationType): void {
  if (wanted !== undefined && wanted === `${point}:${type}`) {
    process.stderr.write(`HEQET_CRASH_AT: killing myself at ${wanted}\n`)
    process.kill(process.pid, 'SIGKILL')
  }
}
