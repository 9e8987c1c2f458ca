// `heqet csi`: the CSI driver for heqet volumes (Kubernetes ≥ 1.26).
//
// How to run it (one process serves Identity + Controller + Node):
//
//   heqet csi --endpoint=unix:///csi/csi.sock --nodeid=$(NODE_NAME) \
//     --server=http://heqet:8080 --user=admin --secret=$(ADMIN_KEY)
//
// Split deployment, as the manifests in deploy/ do it:
//   controller (Deployment, with csi-provisioner and csi-resizer sidecars):
//     heqet csi --mode=controller --endpoint=unix:///csi/csi.sock --server=URL --user=admin --secret=KEY
//     (give both sidecars --timeout=120s: a gluster volume create takes seconds, an
//     expand with its rebalance longer; a call cut short is answered by name on retry)
//   node (DaemonSet, privileged, /var/lib/kubelet mounted with Bidirectional
//   propagation, glusterfs-client installed, with node-driver-registrar):
//     heqet csi --mode=node --endpoint=unix:///csi/csi.sock --nodeid=$(NODE_NAME) [--server=URL ...]
//
// Flags (environment in brackets):
//   --endpoint=unix:///abs/path.sock   [CSI_ENDPOINT]  the gRPC socket
//   --nodeid=NAME                      [NODE_ID]       required in node mode
//   --server=URL                       [HEKETI_CLI_SERVER] heqet's REST API; required in controller mode;
//                                      optional in node mode (then mount info is read fresh from heqet)
//   --user=admin                       [HEKETI_CLI_USER]   JWT issuer (admin: volumes and queue polling)
//   --secret=KEY                       [HEKETI_CLI_KEY]    JWT key of that user
//   --mode=controller|node|both        default both
//   --driver-name=NAME                 default heqet.gluster.org (the CSIDriver object's name)
//   --mount-log-dir=DIR                FUSE client logs as DIR/<volume>.log (default: glusterfs's own)
//   --log-level=info                   pino level
// CSIDriver object: name = --driver-name, attachRequired: false, podInfoOnMount: false.
import { Command, Option } from 'commander'
import pino from 'pino'
import { HeqetClient } from './heqet-client.ts'
import { assertMountPath, SystemMounter } from './mounter.ts'
import { type CsiMode, type CsiServer, startCsiServer } from './server.ts'

export const DEFAULT_DRIVER_NAME = 'heqet.gluster.org'

export interface CsiCliOptions {
  endpoint?: string
  nodeid?: string
  server?: string
  user?: string
  secret?: string
  mode: CsiMode
  driverName: string
  mountLogDir?: string
  logLevel: string
}

export function parseCsiArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CsiCliOptions {
  const program = new Command('heqet csi')
    .description('CSI driver for heqet volumes (Identity, Controller, Node over a unix socket)')
    .option('--endpoint <url>', 'unix:///absolute/path.sock', env['CSI_ENDPOINT'])
    .option('--nodeid <name>', 'this node (NodeGetInfo)', env['NODE_ID'])
    .option('--server <url>', 'heqet URL', env['HEKETI_CLI_SERVER'])
    .option('--user <name>', 'JWT issuer', env['HEKETI_CLI_USER'] ?? 'admin')
    .option('--secret <key>', 'JWT key', env['HEKETI_CLI_KEY'])
    .addOption(
      new Option('--mode <mode>', 'services to serve')
        .choices(['controller', 'node', 'both'])
        .default('both'),
    )
    .option('--driver-name <name>', 'CSI driver name', DEFAULT_DRIVER_NAME)
    .option('--mount-log-dir <dir>', 'directory for FUSE client logs')
    .option('--log-level <level>', 'log level', 'info')
    .allowExcessArguments(false)
    .exitOverride()
  program.parse(argv, { from: 'user' })
  const opts = program.opts<CsiCliOptions>()
  if (!opts.endpoint) throw new Error('--endpoint is required (unix:///path/csi.sock)')
  if (opts.mode !== 'node' && !opts.server) throw new Error('--server (or HEKETI_CLI_SERVER) is required')
  if (opts.mode !== 'controller' && !opts.nodeid) throw new Error('--nodeid is required in node mode')
  if (opts.mountLogDir) assertMountPath(opts.mountLogDir, '--mount-log-dir')
  return opts
}

export async function runCsi(opts: CsiCliOptions, log = pino({ level: opts.logLevel, name: 'heqet-csi' })) {
  const client = opts.server
    ? new HeqetClient({ server: opts.server, user: opts.user ?? 'admin', secret: opts.secret ?? '' })
    : undefined
  return startCsiServer({
    endpoint: opts.endpoint!,
    mode: opts.mode,
    driverName: opts.driverName,
    nodeId: opts.nodeid ?? '',
    log,
    mounter: new SystemMounter(),
    client,
    mountLogDir: opts.mountLogDir,
  })
}

/** `heqet csi ...`: argv are the words after `csi`. */
export async function csiMain(argv: string[]): Promise<void> {
  let opts: CsiCliOptions
  try {
    opts = parseCsiArgs(argv)
  } catch (err) {
    const { code, exitCode } = err as { code?: string; exitCode?: number }
    // commander has already printed its help or its complaint
    if (code?.startsWith('commander.')) process.exit(exitCode ?? 1)
    console.error(`ERROR: ${(err as Error).message}`)
    process.exit(1)
  }
  let server: CsiServer
  try {
    server = await runCsi(opts)
  } catch (err) {
    console.error(`ERROR: ${(err as Error).message}`)
    process.exit(1)
  }
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await server.close()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
