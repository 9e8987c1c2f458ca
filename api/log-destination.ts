// Where the server's log lines go: stdout, with the lines made within a few
// milliseconds handed to the writer together. Under load (one access line
// per request, as heketi logs) that is one asynchronous write per 10 ms
// instead of one per request or per event-loop turn: writing to a file, that
// write is a syscall made on the event loop, which cost 7 % of the main
// thread during the bench's creates when it went out every turn. A burst
// larger than 16 KiB goes out at the next turn. At exit the held lines are
// written synchronously; a SIGKILL loses at most the last 10 ms of lines.
//
// No line vanishes unseen (pino's own stdout writer held lines without a
// bound when stdout was slow, and silently dropped every line after an
// EPIPE):
// * stdout slower than the log: at most `maxHeldBytes` wait for it; past
//   that the lines are dropped until half of it was written, counted in
//   `logStats.droppedLines` (/metrics `heqet_log_lines_dropped_total`), with
//   one line on stderr when the dropping starts and one when it ends;
// * stdout a closed pipe (EPIPE): one line on stderr, every line from then on
//   counted as dropped, nothing written to stdout again (no retry loop); the
//   process stays up (also for console.log's EPIPE on process.stdout, which
//   would otherwise be an unhandled 'error' event);
// * another write error: counted (`heqet_log_write_errors_total`), the lines of
//   that write counted as dropped, one stderr line per error code;
// * at exit, a full non-blocking stdout (EAGAIN) is waited for at most
//   `exitFlushMs`; what is left is counted and said on stderr. (A blocking
//   pipe whose reader never reads blocks the write in the kernel; nothing in
//   the process can bound that.)
import fs from 'node:fs'
import type pino from 'pino'

/** how long a line waits for others before the lot is written */
const HOLD_MS = 10
/** held text written at the next turn without waiting */
const HOLD_CHARS = 16 * 1024
/** pause before a write that found stdout full (EAGAIN) is tried again */
const RETRY_MS = 50

export interface LogStats {
  /** log lines never written to stdout (slow stdout past the bound, a closed pipe, a write error) */
  droppedLines: number
  /** failed writes to stdout (EPIPE once; any other error each time) */
  writeErrors: number
}

/** This process's stdout log counters, shown in /metrics. */
export const logStats: LogStats = { droppedLines: 0, writeErrors: 0 }

export interface BatchedStdoutOptions {
  /** default 1 (stdout) */
  fd?: number
  /** bytes handed to the writer and not yet written, at most (default 4 MiB) */
  maxHeldBytes?: number
  /** how long the exit flush waits for a full stdout (default 2000 ms) */
  exitFlushMs?: number
  /** where a notice about dropped lines goes (default: one line written to fd 2) */
  notice?: (line: string) => void
}

export type BatchedStdout = pino.DestinationStream & {
  flush(cb?: (err?: Error) => void): void
  /** bytes handed to the writer, not yet written */
  heldBytes(): number
}

function stderrNotice(line: string): void {
  try {
    fs.writeSync(2, `${line}\n`)
  } catch {
    // stderr is gone too: the counters in /metrics still show it
    logStats.writeErrors++
  }
}

function countLines(text: string): number {
  let n = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++
  return n
}

export function batchedStdout(opts: BatchedStdoutOptions = {}): BatchedStdout {
  const fd = opts.fd ?? 1
  const maxHeldBytes = opts.maxHeldBytes ?? 4 * 1024 * 1024
  const exitFlushMs = opts.exitFlushMs ?? 2000
  const notice = opts.notice ?? stderrNotice
  /** lines made within HOLD_MS, not yet handed to the writer */
  let pending = ''
  let timer: NodeJS.Timeout | undefined
  let immediate = false
  /** handed to the writer, oldest first; the first one is being written while `writing` */
  const queue: { buf: Buffer; lines: number }[] = []
  let queuedBytes = 0
  let writing = false
  /** an fs.write of the first entry is outstanding (not waiting for an EAGAIN retry) */
  let inFlight = false
  /** stdout no longer takes lines (EPIPE) */
  let broken = false
  /** lines dropped since stdout fell behind the bound (0: not dropping) */
  let slowDropped = 0
  const noticedErrors = new Set<string>()
  let flushWaiters: ((err?: Error) => void)[] = []

  const drop = (lines: number) => {
    logStats.droppedLines += lines
  }

  const dropQueue = () => {
    for (const entry of queue) drop(entry.lines)
    queue.length = 0
    queuedBytes = 0
  }

  const settleWaiters = (err?: Error) => {
    const waiters = flushWaiters
    flushWaiters = []
    for (const cb of waiters) cb(err)
  }

  const closed = (how: string) => {
    if (broken) return
    broken = true
    notice(
      `heqet: stdout is closed (${how}): log lines are dropped from now on (counted in heqet_log_lines_dropped_total)`,
    )
  }

  const failed = (err: NodeJS.ErrnoException) => {
    logStats.writeErrors++
    if (err.code === 'EPIPE') closed('EPIPE')
    else if (!noticedErrors.has(err.code ?? err.message)) {
      noticedErrors.add(err.code ?? err.message)
      notice(
        `heqet: writing the log to stdout failed: ${err.message} (lines counted in heqet_log_lines_dropped_total)`,
      )
    }
  }

  const writeNext = () => {
    const first = queue[0]
    if (!first || broken) {
      writing = false
      settleWaiters()
      return
    }
    writing = true
    inFlight = true
    fs.write(fd, first.buf, 0, first.buf.length, null, (err, n) => {
      inFlight = false
      if (err?.code === 'EAGAIN') {
        // a non-blocking stdout is full: its reader is slow
        setTimeout(writeNext, RETRY_MS).unref()
        return
      }
      if (err) {
        failed(err)
        if (broken) dropQueue()
        else {
          // the lines of this write are lost; later ones are tried
          queue.shift()
          queuedBytes -= first.buf.length
          drop(first.lines)
        }
        writeNext()
        return
      }
      // a closed process.stdout dropped the queue meanwhile
      if (broken) return writeNext()
      queuedBytes -= n
      if (n < first.buf.length) first.buf = first.buf.subarray(n)
      else queue.shift()
      writeNext()
    })
  }

  const pass = () => {
    if (timer) {
      clearTimeout(timer)
      timer = undefined
    }
    immediate = false
    if (pending.length === 0) return
    const text = pending
    pending = ''
    const lines = countLines(text)
    if (broken) {
      drop(lines)
      return
    }
    const buf = Buffer.from(text)
    // once behind, lines are dropped until half the bound was written (no notice per pass)
    const limit = slowDropped > 0 ? maxHeldBytes / 2 : maxHeldBytes
    if (queuedBytes + buf.length > limit) {
      if (slowDropped === 0)
        notice(
          `heqet: stdout is slower than the log (${queuedBytes} bytes waiting): log lines are dropped until it catches up (counted in heqet_log_lines_dropped_total)`,
        )
      slowDropped += lines
      drop(lines)
      return
    }
    if (slowDropped > 0) {
      notice(`heqet: stdout caught up; ${slowDropped} log lines were dropped meanwhile`)
      slowDropped = 0
    }
    queue.push({ buf, lines })
    queuedBytes += buf.length
    if (!writing) writeNext()
  }

  const flushAtExit = () => {
    pass()
    if (broken) return
    // an asynchronous write in flight (the first entry) is the kernel's by now: written or
    // not, nobody here can tell
    let next = inFlight ? 1 : 0
    const deadline = Date.now() + exitFlushMs
    const pause = new Int32Array(new SharedArrayBuffer(4))
    while (next < queue.length) {
      const entry = queue[next]!
      try {
        const n = fs.writeSync(fd, entry.buf)
        if (n < entry.buf.length) entry.buf = entry.buf.subarray(n)
        else next++
      } catch (err) {
        const e = err as NodeJS.ErrnoException
        if (e.code === 'EAGAIN' && Date.now() < deadline) {
          Atomics.wait(pause, 0, 0, 10)
          continue
        }
        logStats.writeErrors++
        const lost = queue.slice(next).reduce((sum, q) => sum + q.lines, 0)
        drop(lost)
        notice(`heqet: ${lost} log lines not written at exit: ${e.message}`)
        return
      }
    }
  }

  process.on('exit', flushAtExit)
  if (fd === 1) {
    // console.log's lines (start-up, shutdown) go through process.stdout: an EPIPE there
    // is an 'error' event that would end the process
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      failed(err)
      if (broken) dropQueue()
    })
  }

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
      if (!cb) return
      if (!writing) process.nextTick(cb)
      else flushWaiters.push(cb)
    },
    heldBytes: () => queuedBytes,
  }
}
