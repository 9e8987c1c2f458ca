// The gRPC server on a unix socket: Identity always, Controller and Node by
// mode. Each RPC runs with an AbortSignal that fires when the CO gives up
// (deadline or cancel), and every failure leaves as a CSI status code with
// a message and a log line.
import { existsSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import type { Logger } from 'pino'
import { ControllerService } from './controller.ts'
import { CsiError, CsiErrors } from './errors.ts'
import type { HeqetClient } from './heqet-client.ts'
import type { Mounter } from './mounter.ts'
import { NodeService } from './node.ts'

// `npm run build` copies it beside the compiled module
export const PROTO_PATH = fileURLToPath(new URL('./csi.proto', import.meta.url))

/** snake_case fields, enums by name, int64 as number, defaults filled, `access_type`-style oneof names */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
}

export type CsiMode = 'controller' | 'node' | 'both'

export interface CsiServerOptions {
  /** unix:///absolute/path.sock */
  endpoint: string
  mode: CsiMode
  driverName: string
  nodeId: string
  log: Logger
  mounter: Mounter
  /** required for the controller; optional for the node (fresh mount info) */
  client?: HeqetClient
  mountLogDir?: string
}

export interface CsiServer {
  socketPath: string
  close(): Promise<void>
}

/** heqet's version from its package.json: two levels up in a checkout, three from dist/src/csi */
function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    const file = new URL(relative, import.meta.url)
    if (!existsSync(file)) continue
    const pkg = JSON.parse(readFileSync(file, 'utf8'))
    if (pkg.name === 'heqet' && pkg.version) return String(pkg.version)
  }
  throw new Error('heqet package.json not found beside the CSI driver')
}

export const DRIVER_VERSION = packageVersion()

export function loadCsiPackage(): any {
  const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)
  return (grpc.loadPackageDefinition(definition) as any).csi.v1
}

export function socketPathOf(endpoint: string): string {
  const m = /^unix:\/\/(\/.+)$/.exec(endpoint) ?? /^unix:(\/.+)$/.exec(endpoint)
  if (!m) throw new Error(`--endpoint must be unix:///absolute/path.sock, got ${endpoint}`)
  return m[1]!.replace(/^\/+/, '/')
}

type Handler = (request: any, signal: AbortSignal) => unknown

/** client mistakes are logged quietly, everything else loudly */
const QUIET_CODES = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
])

function unary(log: Logger, rpc: string, handler: Handler): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const abort = new AbortController()
    call.on('cancelled', () => abort.abort())
    const started = performance.now()
    Promise.resolve()
      .then(() => handler(call.request, abort.signal))
      .then(
        (response) => {
          log.debug({ rpc, ms: Math.round(performance.now() - started) }, 'ok')
          callback(null, response)
        },
        (err: unknown) => {
          const failure =
            err instanceof CsiError
              ? err
              : new CsiError(grpc.status.INTERNAL, `${rpc}: ${(err as Error)?.message ?? String(err)}`)
          const fields = { rpc, code: grpc.status[failure.code], ms: Math.round(performance.now() - started) }
          if (QUIET_CODES.has(failure.code)) log.info(fields, failure.message)
          else
            log.error(
              { ...fields, stack: err instanceof CsiError ? undefined : (err as Error)?.stack },
              failure.message,
            )
          callback({ code: failure.code, details: failure.message })
        },
      )
  }
}

export async function startCsiServer(opts: CsiServerOptions): Promise<CsiServer> {
  const socketPath = socketPathOf(opts.endpoint)
  const csi = loadCsiPackage()
  const server = new grpc.Server()
  const { log } = opts
  const withController = opts.mode !== 'node'
  const withNode = opts.mode !== 'controller'
  if (withController && !opts.client) throw new Error('the controller needs --server (heqet URL)')
  if (withNode && !opts.nodeId) throw new Error('the node service needs --nodeid')

  server.addService(csi.Identity.service, {
    GetPluginInfo: unary(log, 'GetPluginInfo', () => ({
      name: opts.driverName,
      vendor_version: DRIVER_VERSION,
      manifest: {},
    })),
    GetPluginCapabilities: unary(log, 'GetPluginCapabilities', () => ({
      capabilities: withController
        ? [{ service: { type: 'CONTROLLER_SERVICE' } }, { volume_expansion: { type: 'ONLINE' } }]
        : [],
    })),
    Probe: unary(log, 'Probe', async (_req, signal) => {
      const nodeProblem = withNode ? opts.mounter.problem() : undefined
      if (nodeProblem) throw CsiErrors.notReady(nodeProblem)
      if (withController) {
        const reply = await opts.client!.hello(signal).catch((err: Error) => {
          throw CsiErrors.notReady(`heqet at ${opts.client!.server} unreachable: ${err.message}`)
        })
        if (reply.status !== 200) {
          throw CsiErrors.notReady(`heqet at ${opts.client!.server} answered /hello with ${reply.status}`)
        }
      }
      return { ready: { value: true } }
    }),
  })

  if (withController) {
    const c = new ControllerService(opts.client!, log)
    server.addService(csi.Controller.service, {
      CreateVolume: unary(log, 'CreateVolume', (req, signal) => c.createVolume(req, signal)),
      DeleteVolume: unary(log, 'DeleteVolume', (req, signal) => c.deleteVolume(req.volume_id, signal)),
      ControllerExpandVolume: unary(log, 'ControllerExpandVolume', (req, signal) =>
        c.expandVolume(req, signal),
      ),
      ValidateVolumeCapabilities: unary(log, 'ValidateVolumeCapabilities', (req, signal) =>
        c.validateCapabilities(req, signal),
      ),
      ListVolumes: unary(log, 'ListVolumes', (req, signal) => c.listVolumes(req, signal)),
      GetCapacity: unary(log, 'GetCapacity', (req, signal) => c.getCapacity(req, signal)),
      ControllerGetCapabilities: unary(log, 'ControllerGetCapabilities', () => c.getCapabilities()),
    })
  }

  if (withNode) {
    const n = new NodeService({
      nodeId: opts.nodeId,
      mounter: opts.mounter,
      log,
      client: opts.client,
      mountLogDir: opts.mountLogDir,
    })
    server.addService(csi.Node.service, {
      NodeStageVolume: unary(log, 'NodeStageVolume', (req, signal) => n.stage(req, signal)),
      NodeUnstageVolume: unary(log, 'NodeUnstageVolume', (req) =>
        n.unstage(req.volume_id, req.staging_target_path),
      ),
      NodePublishVolume: unary(log, 'NodePublishVolume', (req) => n.publish(req)),
      NodeUnpublishVolume: unary(log, 'NodeUnpublishVolume', (req) =>
        n.unpublish(req.volume_id, req.target_path),
      ),
      NodeGetVolumeStats: unary(log, 'NodeGetVolumeStats', (req) => n.volumeStats(req)),
      NodeExpandVolume: unary(log, 'NodeExpandVolume', (req) => n.expand(req)),
      NodeGetCapabilities: unary(log, 'NodeGetCapabilities', () => n.getCapabilities()),
      NodeGetInfo: unary(log, 'NodeGetInfo', () => n.getInfo()),
    })
  }

  // a socket left by a previous run would make bind fail; anything else at that path is not ours
  if (existsSync(socketPath)) {
    if (!lstatSync(socketPath).isSocket()) throw new Error(`${socketPath} exists and is not a socket`)
    unlinkSync(socketPath)
  }
  mkdirSync(dirname(socketPath), { recursive: true })
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  )
  log.info({ socket: socketPath, mode: opts.mode, driver: opts.driverName }, 'CSI driver listening')

  return {
    socketPath,
    async close() {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5000)
        server.tryShutdown(() => {
          clearTimeout(force)
          resolve()
        })
      })
      opts.client?.close()
      if (existsSync(socketPath)) unlinkSync(socketPath)
    },
  }
}
