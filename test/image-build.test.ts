// The Dockerfile's steps, run without a container engine (deploy/image-steps.ts):
// the build stage compiles with the full dependencies, the runtime stage holds
// production dependencies and dist/ only, and the server started from it the
// way the image's ENTRYPOINT starts it answers /hello and the HEALTHCHECK.
// Needs the npm registry (or a warm npm cache); bounded by tap's timeout.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  buildImage,
  forbiddenInRuntime,
  freePort,
  healthcheck,
  parseDockerfile,
  REPO,
  runtimeEnv,
  startImage,
} from '../deploy/image-steps.ts'

t.test('the Dockerfile parses into the instructions image-steps knows', async (t) => {
  const ops = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'))
  t.same(
    ops.filter((o) => o.op === 'FROM').map((o) => o.args.split(/\s+/)[0]),
    [
      `node:${process.versions.node.split('.')[0]}-bookworm-slim`,
      `node:${process.versions.node.split('.')[0]}-bookworm-slim`,
    ],
    'two stages on the Node major this suite runs on',
  )
  const runs = ops.filter((o) => o.op === 'RUN').map((o) => o.args)
  t.ok(
    runs.some((r) => r.endsWith('npm ci --omit=dev --no-audit --no-fund')),
    'runtime installs production deps only',
  )
  t.ok(runs.includes('npm run build'), 'build stage compiles')
  const health = ops.find((o) => o.op === 'HEALTHCHECK')
  t.match(health?.args, /\/hello/, 'HEALTHCHECK on /hello')
  t.same(parseDockerfile('# c\nRUN a \\\n  && b\n\nCMD ["x"]\n'), [
    { op: 'RUN', args: 'a && b' },
    { op: 'CMD', args: '["x"]' },
  ])
  // the environment npm run bench starts its server with: the last stage's ENV only
  t.same(runtimeEnv('FROM a\nENV X=1\nFROM b AS c\nENV Y="2 3" Z=4\nENV Z=5\n'), { Y: '2 3', Z: '5' })
  t.match(runtimeEnv(), { NODE_ENV: 'production', MALLOC_ARENA_MAX: '2' }, "the image's malloc settings")
})

t.test('build, start from the result, /hello and HEALTHCHECK', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-image-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lines: string[] = []
  const image = buildImage({ dir, log: (l) => lines.push(l) })

  t.equal(image.stages.length, 2, 'multi-stage')
  t.equal(image.stages[0]!.name, 'build')
  const buildApp = join(image.stages[0]!.root, image.stages[0]!.workdir)
  t.ok(readdirSync(join(buildApp, 'node_modules')).includes('typescript'), 'build stage has typescript')
  t.equal(image.user, 'node', 'runs as the unprivileged node user')
  t.same(image.expose, ['8080'])
  t.same(image.volumes, ['/var/lib/heketi'])
  t.equal(image.runtime.env['NODE_ENV'], 'production')
  t.same(forbiddenInRuntime(image), [], 'no dev tools, sources or tests in the runtime stage')
  const app = join(image.runtime.root, image.runtime.workdir)
  t.ok(readdirSync(join(app, 'dist', 'api')).includes('main.js'), 'compiled output present')
  t.ok(readdirSync(join(app, 'node_modules')).includes('fastify'), 'production deps present')

  const server = await startImage(image, { dataDir: join(dir, 'data'), timeoutMs: 90_000 })
  t.teardown(() => server.stop())
  const res = await fetch(`http://127.0.0.1:${server.port}/hello`)
  t.equal(res.status, 200)
  t.equal(await res.text(), 'Hello from Heketi')
  // no loader child (esbuild) and no tsx: the server is the compiled JavaScript alone
  const children = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === server.child.pid
      } catch {
        return false // the process ended while /proc was read
      }
    })
  t.same(children, [], 'the server started no other process')
  const maps = readFileSync(`/proc/${server.child.pid}/maps`, 'utf8')
  t.notMatch(maps, /esbuild/, 'no esbuild binary mapped')

  // the CSI driver from the same image (its csi.proto must be beside the compiled code)
  const socket = join(dir, 'csi.sock')
  const csi = spawn(
    process.execPath,
    [
      'bin/heqet.js',
      'csi',
      '--mode=controller',
      `--endpoint=unix://${socket}`,
      `--server=http://127.0.0.1:${server.port}`,
    ],
    {
      cwd: app,
      env: { PATH: process.env.PATH, HEKETI_CLI_KEY: 'unused', ...image.runtime.env },
      stdio: 'ignore',
    },
  )
  t.teardown(() => {
    if (csi.exitCode === null) csi.kill('SIGKILL')
  })
  for (let i = 0; i < 300 && !existsSync(socket) && csi.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 100))
  t.ok(existsSync(socket), 'heqet csi listens on its socket')
  csi.kill('SIGTERM')

  t.equal(healthcheck(image, server.port), 0, 'HEALTHCHECK passes against the running server')
  t.not(healthcheck(image, await freePort()), 0, 'HEALTHCHECK fails where nothing answers')
  await server.stop()
})
