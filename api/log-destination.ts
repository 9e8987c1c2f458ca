// Where the server's log lines go: stdout, with the lines of one event-loop
// turn handed to the writer together. Under load (one access line per
// request, as heketi logs) that is one asynchronous write per turn instead
// of one per request; when idle a line leaves in the same turn it was made.
// At exit the turn's lines are passed on before pino's own exit flush of the
// stdout writer (registered after this one, so it runs after it).
import pino from 'pino'

export function turnBatchedStdout(): pino.DestinationStream & { flush(cb?: (err?: Error) => void): void } {
  let pending = ''
  let scheduled = false
  const pass = () => {
    scheduled = false
    if (pending.length === 0) return
    const lines = pending
    pending = ''
    out.write(lines)
  }
  process.on('exit', pass)
  const out = pino.destination({ dest: 1, sync: false })
  return {
    write(line: string) {
      pending += line
      if (!scheduled) {
        scheduled = true
        setImmediate(pass)
      }
    },
    flush(cb?: (err?: Error) => void) {
      pass()
      out.flush(cb)
    },
  }
}
