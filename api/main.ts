// The heqet command: the server (heqet --config=FILE [--disable-auth]) and
// its offline subcommands (heqet db ...).
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Command } from 'commander'
import pino from 'pino'
import { FencedWriteError, isEtcdUrl } from '../db/etcd.ts'
import { type Config, ConfigError, loadConfigFile } from '../src/config.ts'
import { buildApp } from './app.ts'
import { batchedStdout } from './log-destination.ts'
import { pinoLevel } from './routes/core.ts'

const VERSION = '0.1.0'
/** also api/db-commands.ts's, where the real `db` command is built */
export const DB_COMMAND_DESCRIPTION = 'heqet db management (offline: stop the server first)'

/**
 * heketi refuses to start without JWT keys; heqet instead generates a pair
 * on first start and keeps it beside the DB, so no secret ever ships in a
 * repository and a fresh install still answers authenticated requests.
 */
function ensureKeys(config: Config, log: pino.Logger): void {
  if (config.adminKey && config.userKey) return
  // replicas on etcd must share keys: a file beside "the DB" would differ per replica
  if (isEtcdUrl(config.dbPath)) {
    throw new ConfigError('with an etcd db, jwt.admin.key and jwt.user.key must be set in the configuration')
  }
  const file = join(dirname(resolve(config.dbPath)), 'heqet-keys.json')
  let keys: { admin: string; user: string }
  if (existsSync(file)) {
    keys = JSON.parse(readFileSync(file, 'utf8'))
  } else {
    mkdirSync(dirname(file), { recursive: true })
    keys = { admin: randomBytes(24).toString('base64url'), user: randomBytes(24).toString('base64url') }
    writeFileSync(file, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 })
    chmodSync(file, 0o600)
    log.warn(
      `No JWT keys configured: generated ${file}. Use them with heketi-cli as ` +
        `heketi-cli --server http://localhost:${config.port} --user admin --secret "$(jq -r .admin ${file})" cluster list`,
    )
  }
  config.adminKey ||= keys.admin
  config.userKey ||= keys.user
}

interface ServerOptions {
  config?: string
  disableAuth?: boolean
  version?: boolean
}

export async function main(argv: string[]): Promise<void> {
  // `heqet csi ...` is the CSI driver, a client of this server (src/csi/main.ts)
  if (argv[2] === 'csi') return (await import('../src/csi/main.ts')).csiMain(argv.slice(3))
  const program = new Command()
    .name('heqet')
    .description('A heketi-compatible RESTful volume manager for GlusterFS')
    .option('--config <file>', 'configuration file (heketi.json format)')
    .option('--disable-auth', 'turn off JWT authentication and authorization')
    .option('-v, --version', 'print the version and exit')
    .allowExcessArguments(false)
    .action((opts: ServerOptions) => serve(opts))
  // The offline DB commands (heketi import/export, etcd import) are loaded only
  // for `heqet db ...`; otherwise `db` is listed for --help and never runs.
  program.addCommand(
    argv.slice(2).includes('db')
      ? (await import('./db-commands.ts')).dbCommand()
      : new Command('db').description(DB_COMMAND_DESCRIPTION),
  )
  await program.parseAsync(argv)
}

async function serve(opts: ServerOptions): Promise<void> {
  console.log(`Heqet ${VERSION} (using node: ${process.version})`)
  if (opts.version) return
  if (!opts.config) {
    console.error('Please provide configuration file')
    process.exit(1)
  }
  let config: Config
  try {
    config = loadConfigFile(opts.config)
  } catch (err) {
    console.error(`ERROR: ${err instanceof ConfigError ? err.message : String(err)}`)
    process.exit(1)
  }
  config.disableAuth = Boolean(opts.disableAuth)
  if (config.disableAuth) console.error('WARNING: Heqet started with --disable-auth')
  const log = pino({ level: pinoLevel(config.logLevel), name: 'heqet' }, batchedStdout())
  if (!config.disableAuth) ensureKeys(config, log)

  let app: Awaited<ReturnType<typeof buildApp>>
  try {
    app = await buildApp({ config, logger: log })
  } catch (err) {
    console.error(`ERROR: Unable to start application: ${(err as Error).message}`)
    process.exit(1)
  }
  // A write the lease fence refused applied nothing and this replica has stepped down; if its
  // caller forgot to await it, say so loudly (with the caller's stack) but do not take the
  // replica down: it must stay up to rejoin as a follower. Anything else still ends the process.
  process.on('unhandledRejection', (err) => {
    if (err instanceof FencedWriteError) {
      log.error({ err }, `a write refused by the leader fence was not awaited by its caller: ${err.message}`)
      return
    }
    log.fatal({ err }, 'unhandled rejection')
    console.error(err)
    process.exit(1)
  })
  process.on('SIGUSR2', () => {
    app.state.admin = 'normal'
    log.info('admin state reset to normal (SIGUSR2)')
  })
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    console.log('Shutting down...')
    await app.close().catch((err: Error) => console.error(`ERROR: shutdown: ${err.message}`))
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  try {
    await app.app.listen({ port: config.port, host: config.listenHost || '::' })
  } catch (err) {
    console.error(`ERROR: HTTP Server error: ${(err as Error).message}`)
    await app.close().catch((err: Error) => console.error(`ERROR: shutdown: ${err.message}`))
    process.exit(1)
  }
  console.log(`Listening on port ${config.port}`)
}
