// `heqet csi` as a real process: flags and HEKETI_CLI_* variables, the socket
// it serves, a clean stop on SIGTERM, and its refusal to start without an
// endpoint. Every child is killed by its PID at teardown.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { csiClients } from './helpers/csi.ts'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
// tsx compiles the sources at every start: allow for a loaded machine
const START_TIMEOUT_MS = 120_000

function spawnCsi(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [join(ROOT, 'bin/heqet.js'), 'csi', ...args], {
    env: { ...process.env, HEKETI_CLI_SERVER: '', HEKETI_CLI_KEY: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += d
  })
  child.stdout.resume()
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, exited, stderr: () => stderr }
}

t.test('serves the socket it was given and stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-csi-proc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const socket = join(dir, 'csi.sock')
  const proc = spawnCsi([`--endpoint=unix://${socket}`, '--mode=controller', '--log-level=warn'], {
    HEKETI_CLI_SERVER: 'http://127.0.0.1:9',
    HEKETI_CLI_KEY: 'k',
  })
  t.teardown(() => {
    if (proc.child.exitCode === null) proc.child.kill('SIGKILL')
  })
  const deadline = Date.now() + START_TIMEOUT_MS
  while (!existsSync(socket)) {
    if (proc.child.exitCode !== null) t.fail(`exited early: ${proc.stderr()}`)
    if (Date.now() > deadline || proc.child.exitCode !== null) return
    await new Promise((r) => setTimeout(r, 100))
  }
  const clients = csiClients(socket)
  const info = await clients.identity.GetPluginInfo()
  t.equal(info.name, 'heqet.gluster.org')
  const probe = await clients.identity.Probe().catch((e: any) => e)
  t.match(
    probe.details,
    /heqet at http:\/\/127\.0\.0\.1:9 unreachable/,
    'the server came from HEKETI_CLI_SERVER',
  )
  clients.close()
  proc.child.kill('SIGTERM')
  t.equal(await proc.exited, 0)
  t.notOk(existsSync(socket), 'socket removed')
})

t.test('refuses to start without an endpoint or a server', async (t) => {
  const noEndpoint = spawnCsi(['--nodeid=n'], { HEKETI_CLI_SERVER: 'http://h' })
  t.equal(await noEndpoint.exited, 1)
  t.match(noEndpoint.stderr(), /--endpoint is required/)
  const noServer = spawnCsi(['--endpoint=unix:///tmp/never.sock', '--mode=controller'], {})
  t.equal(await noServer.exited, 1)
  t.match(noServer.stderr(), /--server/)
})
