// The Dockerfile's steps without a container engine: reads the Dockerfile,
// runs each stage in its own directory (COPY from the checkout or from an
// earlier stage, RUN of the npm commands with the stage's ENV), then starts
// the runtime stage's ENTRYPOINT from the result and runs its HEALTHCHECK.
// What it cannot do without an engine (a base image, a user switch, the
// image-only directory set-up line) it reports instead of doing.
//
//   node --import tsx deploy/image-steps.ts [--keep] [--dir DIR]
//
// test/image-build.test.ts runs it, so CI builds the image's contents.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, posix, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * RUN lines that only shape the image's filesystem outside the app
 * directory; run as they are they would touch this machine's /var and /etc.
 */
const IMAGE_ONLY_RUN = new Set([
  'apt-get update && apt-get install -y --no-install-recommends glusterfs-client && rm -rf /var/lib/apt/lists/*',
  'mkdir -p /var/lib/heketi /etc/heketi && chown node:node /var/lib/heketi',
])

export interface Stage {
  name: string
  image: string
  /** the stage's filesystem root on this machine */
  root: string
  /** WORKDIR inside the stage */
  workdir: string
  env: Record<string, string>
}

export interface ImageBuild {
  stages: Stage[]
  /** the last stage: what the image is */
  runtime: Stage
  user: string
  entrypoint: string[]
  cmd: string[]
  healthcheck: string[] | undefined
  expose: string[]
  volumes: string[]
  /** RUN lines left to the image build, and why */
  skipped: string[]
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
export function parseDockerfile(text: string): { op: string; args: string }[] {
  const out: { op: string; args: string }[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!pending && (line === '' || line.startsWith('#'))) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `
      continue
    }
    const full = (pending + line).trim()
    pending = ''
    const space = full.indexOf(' ')
    out.push({ op: full.slice(0, space).toUpperCase(), args: full.slice(space + 1).trim() })
  }
  return out
}

/** the NAME=value pairs of an ENV instruction */
function envPairs(args: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g))
    env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1')
  return env
}

/**
 * The environment the image's last stage sets (its ENV lines): what a
 * container of the image starts the server with, beside PATH and HOME.
 * `npm run bench` runs its server with it (bench/api/server-process.ts).
 */
export function runtimeEnv(
  dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8'),
): Record<string, string> {
  let env: Record<string, string> = {}
  for (const { op, args } of parseDockerfile(dockerfile)) {
    if (op === 'FROM') env = {}
    else if (op === 'ENV') Object.assign(env, envPairs(args))
  }
  return env
}

/** exec form (JSON array) or shell form of CMD/ENTRYPOINT/HEALTHCHECK CMD */
function commandForm(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args]
}

/** `--flag=value` options in front of an instruction's arguments */
function flags(args: string): { flags: Record<string, string>; rest: string } {
  const found: Record<string, string> = {}
  let rest = args
  for (let m = /^--([a-z-]+)=(\S+)\s+/.exec(rest); m; m = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
    found[m[1]!] = m[2]!
    rest = rest.slice(m[0].length)
  }
  return { flags: found, rest }
}

/** Run the Dockerfile's stages under `dir` (one folder per stage). */
export function buildImage(opts: { dir: string; log?: (line: string) => void }): ImageBuild {
  const log = opts.log ?? ((line: string) => console.log(line))
  const instructions = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'))
  const stages: Stage[] = []
  const build: Omit<ImageBuild, 'stages' | 'runtime'> = {
    user: 'root',
    entrypoint: [],
    cmd: [],
    healthcheck: undefined,
    expose: [],
    volumes: [],
    skipped: [],
  }
  const here = (stage: Stage, path: string) => join(stage.root, posix.resolve(stage.workdir, path))
  for (const { op, args } of instructions) {
    const stage = stages.at(-1)
    if (op !== 'FROM' && !stage) throw new Error(`${op} before FROM`)
    switch (op) {
      case 'FROM': {
        const [image, as, name] = args.split(/\s+/)
        const root = join(opts.dir, `stage-${stages.length}`)
        mkdirSync(root, { recursive: true })
        stages.push({
          name: as?.toUpperCase() === 'AS' ? name! : String(stages.length),
          image: image!,
          root,
          workdir: '/',
          env: {},
        })
        build.user = 'root'
        log(`FROM ${args} -> ${root}`)
        break
      }
      case 'WORKDIR':
        stage!.workdir = posix.resolve(stage!.workdir, args)
        mkdirSync(here(stage!, '.'), { recursive: true })
        break
      case 'ENV':
        Object.assign(stage!.env, envPairs(args))
        break
      case 'COPY': {
        const { flags: f, rest } = flags(args)
        const parts = rest.split(/\s+/)
        const dest = parts.pop()!
        const from = f['from'] ? stages.find((s) => s.name === f['from']) : undefined
        if (f['from'] && !from) throw new Error(`COPY --from=${f['from']}: no such stage`)
        for (const source of parts) {
          const src = from ? join(from.root, posix.resolve(from.workdir, source)) : join(REPO, source)
          const target = here(stage!, dest)
          const into = dest.endsWith('/') || parts.length > 1 ? join(target, posix.basename(source)) : target
          mkdirSync(dirname(into), { recursive: true })
          cpSync(src, into, { recursive: true })
        }
        log(`COPY ${args}`)
        break
      }
      case 'RUN': {
        // a cache mount (--mount=type=cache) is this machine's own npm cache
        const { flags: runFlags, rest: command } = flags(args)
        const mount = runFlags['mount']
        if (mount !== undefined && !mount.startsWith('type=cache,')) {
          throw new Error(`RUN ${args}: only cache mounts are handled`)
        }
        if (IMAGE_ONLY_RUN.has(command)) {
          build.skipped.push(`${command} (image filesystem only)`)
          log(`RUN ${command}: skipped, image filesystem only`)
          break
        }
        if (!command.startsWith('npm ')) {
          throw new Error(
            `RUN ${command}: image-steps runs npm commands only; add it to IMAGE_ONLY_RUN if it is image-only`,
          )
        }
        log(`RUN ${command}`)
        execFileSync('/bin/sh', ['-c', command], {
          cwd: here(stage!, '.'),
          // packages already in the cache are not fetched again
          env: { ...process.env, npm_config_prefer_offline: 'true', ...stage!.env },
          stdio: ['ignore', 'inherit', 'inherit'],
        })
        break
      }
      case 'USER':
        build.user = args
        break
      case 'EXPOSE':
        build.expose.push(...args.split(/\s+/))
        break
      case 'VOLUME':
        build.volumes.push(...(args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/)))
        break
      case 'HEALTHCHECK': {
        const { rest } = flags(args)
        if (rest === 'NONE') build.healthcheck = undefined
        else if (rest.startsWith('CMD ')) build.healthcheck = commandForm(rest.slice(4).trim())
        else throw new Error(`HEALTHCHECK ${args}: expected CMD or NONE`)
        break
      }
      case 'ENTRYPOINT':
        build.entrypoint = commandForm(args)
        break
      case 'CMD':
        build.cmd = commandForm(args)
        break
      case 'ARG':
      case 'LABEL':
        break
      default:
        throw new Error(`Dockerfile instruction ${op} is not handled by deploy/image-steps.ts`)
    }
  }
  if (stages.length === 0) throw new Error('Dockerfile has no FROM')
  return { ...build, stages, runtime: stages.at(-1)! }
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer()
    srv.on('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => res(typeof addr === 'object' && addr ? addr.port : 0))
    })
  })
}

function hello(port: number): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/hello', agent: false }, (r) => {
      let body = ''
      r.on('data', (c) => {
        body += c
      })
      r.on('end', () => res({ status: r.statusCode ?? 0, body }))
    })
    req.on('error', rej)
  })
}

export interface RunningImage {
  child: ChildProcess
  port: number
  /** what the server printed, for error reports */
  output(): string
  stop(): Promise<void>
}

/**
 * Start the runtime stage as `docker run IMAGE --config=FILE` would: its
 * ENTRYPOINT from its WORKDIR with its ENV, CMD replaced by the config.
 * Resolves once /hello answers 200 (within `timeoutMs`).
 */
export async function startImage(
  image: ImageBuild,
  opts: { dataDir: string; timeoutMs?: number },
): Promise<RunningImage> {
  const port = await freePort()
  mkdirSync(opts.dataDir, { recursive: true })
  const config = join(opts.dataDir, 'heketi.json')
  writeFileSync(
    config,
    JSON.stringify({
      port: String(port),
      glusterfs: { executor: 'mock', db: join(opts.dataDir, 'heketi.db'), loglevel: 'info' },
    }),
  )
  const [command, ...args] = image.entrypoint
  if (!command) throw new Error('the Dockerfile has no ENTRYPOINT')
  const runtime = image.runtime
  let output = ''
  const child = spawn(command === 'node' ? process.execPath : command, [...args, `--config=${config}`], {
    cwd: join(runtime.root, runtime.workdir),
    // a container's environment: the image's ENV and PATH, nothing of this shell's npm/tsx set-up
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.dataDir, ...runtime.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (c) => {
    output += c
  })
  child.stderr!.on('data', (c) => {
    output += c
  })
  const running: RunningImage = {
    child,
    port,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await gone
    },
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000)
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}):\n${output}`)
    if (Date.now() > deadline) {
      await running.stop()
      throw new Error(`no /hello within ${opts.timeoutMs ?? 60_000} ms:\n${output}`)
    }
    const answer = await hello(port).catch(() => undefined)
    if (answer?.status === 200) return running
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** Run the image's HEALTHCHECK command against a running server; its exit code. */
export function healthcheck(image: ImageBuild, port: number): number {
  if (!image.healthcheck) throw new Error('the Dockerfile has no HEALTHCHECK')
  const [command, ...args] = image.healthcheck
  try {
    execFileSync(command === 'node' ? process.execPath : command!, args, {
      cwd: join(image.runtime.root, image.runtime.workdir),
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ...image.runtime.env,
        HEQET_HEALTH_PORT: String(port),
      },
      stdio: 'ignore',
      timeout: 10_000,
    })
    return 0
  } catch (err) {
    return (err as { status?: number }).status ?? 1
  }
}

/** Paths under the runtime's WORKDIR that must not be in the image. */
export function forbiddenInRuntime(image: ImageBuild): string[] {
  const app = join(image.runtime.root, image.runtime.workdir)
  // development tools, the TypeScript sources, tests
  const forbidden = [
    'node_modules/tsx',
    'node_modules/typescript',
    'node_modules/esbuild',
    'node_modules/tap',
  ]
  forbidden.push('api', 'src', 'db', 'executors', 'test', 'tsconfig.json')
  return forbidden.filter((p) => existsSync(join(app, p)))
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { keep: { type: 'boolean' }, dir: { type: 'string' } } })
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'heqet-image-'))
  const started = Date.now()
  try {
    const image = buildImage({ dir })
    const app = join(image.runtime.root, image.runtime.workdir)
    const forbidden = forbiddenInRuntime(image)
    if (forbidden.length) throw new Error(`the runtime stage holds ${forbidden.join(', ')}`)
    if (!statSync(join(app, 'dist', 'api', 'main.js')).isFile()) throw new Error('no dist/api/main.js')
    const server = await startImage(image, { dataDir: join(dir, 'data') })
    try {
      const status = healthcheck(image, server.port)
      if (status !== 0) throw new Error(`HEALTHCHECK exited ${status}`)
      console.log(`server from ${app} answered /hello on :${server.port}; HEALTHCHECK passed`)
    } finally {
      await server.stop()
    }
    console.log(`user ${image.user}; skipped: ${image.skipped.join('; ') || 'nothing'}`)
    console.log(`done in ${Math.round((Date.now() - started) / 1000)} s`)
  } finally {
    if (values.keep) console.log(`kept ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
