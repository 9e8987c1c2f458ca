// Shared fixture of the CSI tests: heqet on the mock executor listening on
// loopback (the driver talks HTTP to it like any heketi client), the driver
// on a unix socket in a temp dir, and real gRPC clients for its services.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import pino from 'pino'
import type { Test } from 'tap'
import type { Executor } from '../../executors/executor.ts'
import { HeqetClient } from '../../src/csi/heqet-client.ts'
import type { Mounter } from '../../src/csi/mounter.ts'
import { type CsiMode, type CsiServer, loadCsiPackage, startCsiServer } from '../../src/csi/server.ts'
import { ADMIN_KEY, makeApp, makeTopology, type TestApp } from './app.ts'

/** deadline: ms from now; cancelWhen: the CO cancels the call when this settles */
type Call = (request?: object, options?: { deadline?: number; cancelWhen?: Promise<unknown> }) => Promise<any>

export interface CsiClients {
  identity: Record<string, Call>
  controller: Record<string, Call>
  node: Record<string, Call>
  close(): void
}

/** Promise-returning stubs for every RPC of the driver's three services. */
export function csiClients(socketPath: string): CsiClients {
  const csi = loadCsiPackage()
  const make = (Service: any): { stub: any; calls: Record<string, Call> } => {
    const stub = new Service(`unix://${socketPath}`, grpc.credentials.createInsecure())
    const calls: Record<string, Call> = {}
    for (const name of Object.keys(Service.service)) {
      calls[name] = (request = {}, options = {}) =>
        new Promise((resolve, reject) => {
          const callOptions = options.deadline ? { deadline: Date.now() + options.deadline } : {}
          const call = stub[name](request, callOptions, (err: grpc.ServiceError | null, res: unknown) =>
            err ? reject(err) : resolve(res),
          )
          options.cancelWhen?.then(
            () => call.cancel(),
            () => call.cancel(),
          )
        })
    }
    return { stub, calls }
  }
  const identity = make(csi.Identity)
  const controller = make(csi.Controller)
  const node = make(csi.Node)
  return {
    identity: identity.calls,
    controller: controller.calls,
    node: node.calls,
    close() {
      for (const s of [identity, controller, node]) s.stub.close()
    },
  }
}

export interface CsiFixture {
  app: TestApp
  url: string
  dir: string
  driver: CsiServer
  clients: CsiClients
  topology: { cluster: string; nodes: string[]; devices: string[] }
}

/** heqet (3 nodes × 2 mock devices) + a driver in `mode` with `mounter`. */
export async function csiFixture(
  t: Test,
  opts: { mounter: Mounter; mode?: CsiMode; secret?: string; nodeClient?: boolean; executor?: Executor },
): Promise<CsiFixture> {
  const app = await makeApp(t, { executor: opts.executor })
  const topology = await makeTopology(app, { nodes: 3, devices: 2 })
  await app.app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  const dir = mkdtempSync(join(tmpdir(), 'heqet-csi-'))
  const driver = await startCsiServer({
    endpoint: `unix://${join(dir, 'csi.sock')}`,
    mode: opts.mode ?? 'both',
    driverName: 'heqet.gluster.org',
    nodeId: 'node-a',
    log: pino({ level: 'silent' }),
    mounter: opts.mounter,
    client:
      opts.nodeClient === false
        ? undefined
        : new HeqetClient({ server: url, user: 'admin', secret: opts.secret ?? ADMIN_KEY, pollMinMs: 2 }),
  })
  const clients = csiClients(driver.socketPath)
  t.teardown(async () => {
    clients.close()
    await driver.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { app, url, dir, driver, clients, topology }
}

/** a mount capability with an access mode */
export function mountCap(mode = 'SINGLE_NODE_WRITER', flags: string[] = []) {
  return { mount: { fs_type: '', mount_flags: flags }, access_mode: { mode } }
}

export const GiB = 1024 ** 3
