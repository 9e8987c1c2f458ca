// The machine's HTTP floor at the moment of a run: a bare node:http server
// (no framework, no auth, no logging) answering every GET with a fixed JSON
// body of the size heqet answers, loaded by the same wrk with the same
// connections. The other agents on these 2 vCPUs move every figure by a
// factor of two or more from one minute to the next; heqet's req/s divided
// by the floor's, measured back to back, moves much less.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { processCpuSec } from './server-process.ts'
import { runWrk, type WrkResult } from './wrk.ts'

const SERVER = `
const http = require('node:http')
const body = 'x'.repeat(Number(process.argv[1]) - 1) + '\\n'
const len = Buffer.byteLength(body)
const srv = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': len })
  res.end(body)
})
srv.listen(0, '127.0.0.1', () => process.stdout.write(srv.address().port + '\\n'))
process.on('SIGTERM', () => process.exit(0))
`

export async function measureFloor(opts: {
  wrk: string
  bodyBytes: number
  connections: number
  threads: number
  seconds: number
}): Promise<WrkResult & { serverCpuUs: number }> {
  const child = spawn(process.execPath, ['-e', SERVER, String(Math.max(1, opts.bodyBytes))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    const [chunk] = (await once(child.stdout, 'data')) as [Buffer]
    const port = Number(chunk.toString().trim())
    if (!Number.isInteger(port) || port <= 0) throw new Error(`floor server printed ${chunk.toString()}`)
    const cpu0 = processCpuSec(child.pid!)
    const r = await runWrk({
      bin: opts.wrk,
      port,
      connections: opts.connections,
      threads: opts.threads,
      seconds: opts.seconds,
      requests: [['/', 'none']],
    })
    return { ...r, serverCpuUs: ((processCpuSec(child.pid!) - cpu0) * 1e6) / r.count }
  } finally {
    if (child.exitCode === null && child.pid) {
      const gone = once(child, 'exit')
      process.kill(child.pid, 'SIGTERM')
      await gone
    }
  }
}
