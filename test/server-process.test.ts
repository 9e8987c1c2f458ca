// The real `heqet` process: start-up from a heketi.json, generated JWT keys,
// fatal configuration errors, path cleaning over a real socket, SIGUSR2,
// and data surviving a SIGTERM restart. Every child is killed by its PID.
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { signToken } from '../api/auth.ts'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
const ADMIN = 'process-admin-secret'
const USER = 'process-user-secret'
// tsx compiles the sources at every start: allow for a loaded machine
const START_TIMEOUT_MS = 120_000

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** The environment without any HEKETI_* variable of the caller, plus `extra`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HEKETI_')) env[k] = v
  return { ...env, HEKETI_DISABLE_HEALTH_MONITOR: 'true', ...extra }
}

interface Server {
  child: ChildProcess
  port: number
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stdout(): string
  stderr(): string
}

function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = join(dir, 'heketi.json')
  writeFileSync(file, JSON.stringify(config, null, 2))
  return file
}

function baseConfig(dir: string, port: number, withKeys: boolean): Record<string, unknown> {
  return {
    port: String(port),
    ...(withKeys ? { jwt: { admin: { key: ADMIN }, user: { key: USER } } } : {}),
    glusterfs: { executor: 'mock', db: join(dir, 'heketi.db'), loglevel: 'none' },
  }
}

/** Spawn `node bin/heqet.js --config=<file>`; the child is killed at teardown. */
function spawnServer(t: Test, configFile: string, port: number, env: Record<string, string> = {}): Server {
  const child = spawn(process.execPath, [join(ROOT, 'bin/heqet.js'), `--config=${configFile}`], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString()
  })
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL')
      await exited
    }
  })
  return { child, port, exited, stdout: () => out, stderr: () => err }
}

async function waitForExit(server: Server, ms = START_TIMEOUT_MS) {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no exit within ${ms} ms: ${server.stderr()}`)), ms)
  })
  try {
    return await Promise.race([server.exited, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Poll /hello until it answers; fails if the process exits first. */
async function waitForHello(server: Server): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      throw new Error(`server exited early: ${server.stdout()} ${server.stderr()}`)
    }
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/hello`)
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`server did not answer /hello: ${server.stdout()} ${server.stderr()}`)
}

async function call(server: Server, method: string, path: string, key = ADMIN, body?: string, iss = 'admin') {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method,
    headers: { authorization: `bearer ${signToken(iss, key, method, path.split('?')[0]!)}` },
    body,
    redirect: 'manual',
  })
  return { status: res.status, text: await res.text(), headers: res.headers }
}

/** A raw request whose path is sent exactly as written (no URL normalisation). */
function rawGet(port: number, path: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }))
    })
    req.on('error', reject)
    req.end()
  })
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-process-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('starts without JWT keys, generates heqet-keys.json and authenticates with it', async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const server = spawnServer(t, writeConfig(dir, baseConfig(dir, port, false)), port)
  await waitForHello(server)

  const hello = await fetch(`http://127.0.0.1:${port}/hello`)
  t.equal(hello.status, 200)
  t.equal(await hello.text(), 'Hello from Heketi')
  t.match(server.stdout(), /^Heqet \S+ \(using node: v\d+/m)
  t.match(server.stdout(), new RegExp(`^Listening on port ${port}$`, 'm'))

  const keysFile = join(dir, 'heqet-keys.json')
  t.ok(existsSync(keysFile), 'heqet-keys.json beside the DB')
  t.equal(statSync(keysFile).mode & 0o777, 0o600, 'mode 0600')
  const keys = JSON.parse(readFileSync(keysFile, 'utf8')) as { admin: string; user: string }
  t.type(keys.admin, 'string')
  t.type(keys.user, 'string')
  t.ok(keys.admin.length >= 16 && keys.user.length >= 16)
  t.not(keys.admin, keys.user)

  const anonymous = await fetch(`http://127.0.0.1:${port}/clusters`)
  t.equal(anonymous.status, 401)
  t.equal(await anonymous.text(), 'Required authorization token not found\n')
  const admin = await call(server, 'GET', '/clusters', keys.admin)
  t.equal(admin.status, 200)
  t.equal(admin.text, '{"clusters":[]}\n')
  t.equal(admin.headers.get('content-type'), 'application/json; charset=UTF-8')
  const user = await call(server, 'GET', '/volumes', keys.user, undefined, 'user')
  t.equal(user.status, 200)
  const wrong = await call(server, 'GET', '/clusters', 'guessed')
  t.equal(wrong.status, 401)

  // path cleaning over a real socket, where the raw path reaches the server
  const dots = await rawGet(port, '/a/../volumes')
  t.equal(dots.status, 301)
  t.equal(dots.location, '/volumes')
  const double = await rawGet(port, '//clusters?x=1')
  t.equal(double.status, 301)
  t.equal(double.location, '/clusters?x=1')
})

t.test('a type mismatch in heketi.json is fatal', async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const cases: [string, Record<string, unknown>][] = [
    [
      'glusterfs.brick_max_size_gb as a string',
      {
        ...baseConfig(dir, port, true),
        glusterfs: { executor: 'mock', db: join(dir, 'heketi.db'), brick_max_size_gb: '4' },
      },
    ],
    ['port as a number', { ...baseConfig(dir, port, true), port }],
    [
      'glusterfs.db_read_only as a string',
      {
        ...baseConfig(dir, port, true),
        glusterfs: { executor: 'mock', db: join(dir, 'x.db'), db_read_only: 'no' },
      },
    ],
  ]
  // independent start-ups, run side by side (each has its own config file)
  const runs = cases.map(([name, config], i) => {
    const caseDir = join(dir, `case${i}`)
    mkdirSync(caseDir)
    const server = spawnServer(t, writeConfig(caseDir, config), port)
    // a timeout must not become an unhandled rejection while another case is awaited
    const exit = waitForExit(server).catch(() => ({ code: null, signal: null }))
    return { name, server, exit }
  })
  for (const { name, server, exit } of runs) {
    t.equal((await exit).code, 1, `${name}: exit 1`)
    t.match(server.stderr(), /^ERROR: Unable to parse configuration/m, `${name}: error line`)
  }
  t.notOk(existsSync(join(dir, 'heketi.db')), 'no database was created')
})

t.test('HEKETI_DEFAULT_STATE=bogus is fatal', async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const server = spawnServer(t, writeConfig(dir, baseConfig(dir, port, true)), port, {
    HEKETI_DEFAULT_STATE: 'bogus',
  })
  const exit = await waitForExit(server)
  t.equal(exit.code, 1)
  t.match(server.stderr(), /^ERROR: unable to set admin state: unknown admin state name: bogus$/m)
})

t.test('data survives a SIGTERM restart; read-only start and SIGUSR2', async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const configFile = writeConfig(dir, baseConfig(dir, port, true))

  const first = spawnServer(t, configFile, port)
  await waitForHello(first)
  const created = await call(first, 'POST', '/clusters', ADMIN, '{"block":true,"file":true}')
  t.equal(created.status, 201, created.text)
  const id = (JSON.parse(created.text) as { id: string }).id
  t.ok(first.child.pid)
  process.kill(first.child.pid!, 'SIGTERM')
  const exit = await waitForExit(first)
  t.equal(exit.code, 0, 'clean exit on SIGTERM')
  t.match(first.stdout(), /^Shutting down\.\.\.$/m)
  t.notOk(existsSync(join(dir, 'heqet-keys.json')), 'configured keys: nothing generated')

  const second = spawnServer(t, configFile, port, { HEKETI_DEFAULT_STATE: 'read-only' })
  await waitForHello(second)
  const list = await call(second, 'GET', '/clusters')
  t.equal(list.status, 200)
  t.same(JSON.parse(list.text), { clusters: [id] })
  t.equal(JSON.parse((await call(second, 'GET', `/clusters/${id}`)).text).file, true)
  t.equal((await call(second, 'GET', '/admin')).text, '{"state":"read-only"}\n')
  const refused = await call(second, 'POST', '/clusters', ADMIN, '{}')
  t.equal(refused.status, 503)
  t.equal(refused.text, 'Service disabled for maintenance\n')

  process.kill(second.child.pid!, 'SIGUSR2')
  let state = ''
  for (let i = 0; i < 50 && state !== '{"state":"normal"}\n'; i++) {
    await new Promise((r) => setTimeout(r, 100))
    state = (await call(second, 'GET', '/admin')).text
  }
  t.equal(state, '{"state":"normal"}\n', 'SIGUSR2 resets the admin state')
  t.equal((await call(second, 'POST', '/clusters', ADMIN, '{}')).status, 201)
  process.kill(second.child.pid!, 'SIGTERM')
  t.equal((await waitForExit(second)).code, 0)
})

t.test('stdout a closed pipe: the server runs on, counts the lost log lines and stops cleanly', async (t) => {
  const dir = tempDir(t)
  const port = await freePort()
  const config = baseConfig(dir, port, true)
  ;(config['glusterfs'] as Record<string, unknown>)['loglevel'] = 'info'
  const server = spawnServer(t, writeConfig(dir, config), port)
  // the reader goes away before the server writes anything: every write to stdout is an EPIPE
  server.child.stdout!.destroy()
  await waitForHello(server)
  for (let i = 0; i < 5; i++) t.equal((await call(server, 'GET', '/clusters')).status, 200)
  // the access lines are handed to the writer within 10 ms
  await new Promise((r) => setTimeout(r, 100))
  const metrics = (await call(server, 'GET', '/metrics')).text
  const dropped = Number(/^heqet_log_lines_dropped_total (\d+)$/m.exec(metrics)?.[1])
  t.ok(dropped >= 5, `the lost lines are counted (${dropped})`)
  t.match(metrics, /^heqet_log_write_errors_total [12]$/m, 'one EPIPE (and console.log’s), not one per line')
  t.equal(
    server
      .stderr()
      .split('\n')
      .filter((l) => l.includes('stdout is closed (EPIPE)')).length,
    1,
    'said once on stderr',
  )
  server.child.kill('SIGTERM')
  const exit = await waitForExit(server)
  t.same(exit, { code: 0, signal: null }, `stopped cleanly (stderr: ${server.stderr().slice(-300)})`)
})
