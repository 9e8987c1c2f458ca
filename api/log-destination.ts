// Where the server's log lines go: stdout, with the lines made within a few
// milliseconds handed to the writer together. Under load (one access line
// per request, as heketi logs) that is one asynchronous write per 10 ms
// instead of one per request or per event-loop turn: writing to a file, that
// write is a syscall made on the event loop, which cost 7 % of the main
// thread during the bench's creates when it went out every turn. A burst
// larger than 16 KiB goes out at the next turn. At exit the held lines are
// passed on before pino's own exit flush of the stdout writer (registered
// after this one, so it runs after it); a SIGKILL loses at most the last
// 10 ms of lines.
import pino from 'pino'

/** how long a line waits for others before the lot is written */
const HOLD_MS = 10
/** held text written at the next turn without waiting */
const HOLD_CHARS = 16 * 1024

export function batchedStdout(): pino.DestinationStream & { flush(cb?: (err?: Error) => void): void } {
  let pending = ''
  let timer: NodeJS.Timeout | undefined
  let immediate = false
  const pass = () => {
    if (timer) {
      clearTimeout(timer)
      timer = undefined
    }
    immediate = false
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
      if (pending.length >= HOLD_CHARS) {
        if (!immediate) {
          immediate = true
          setImmediate(pass)
        }
      } else if (!timer) {
        timer = setTimeout(pass, HOLD_MS)
        // the held lines never keep the process alive: exit passes them on
        timer.unref()
      }
    },
    flush(cb?: (err?: Error) => void) {
      pass()
      out.flush(cb)
    },
  }
}
