// Shared test fixture: an in-process heqet on a temp LMDB file with the mock
// executor, and a client that signs tokens like heketi's clients do.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import type { Test } from 'tap'
import { type App, buildApp } from '../../api/app.ts'
import { signToken } from '../../api/auth.ts'
import type { Executor } from '../../executors/executor.ts'
import { MockExecutor } from '../../executors/mock.ts'
import { type Config, parseConfig } from '../../src/config.ts'

export const ADMIN_KEY = 'admin-secret'
export const USER_KEY = 'user-secret'

export interface TestApp extends App {
  dir: string
  /** a request signed as admin (or `iss`), body JSON-encoded unless a string */
  call(
    method: string,
    path: string,
    body?: unknown,
    opts?: { iss?: string; headers?: Record<string, string> },
  ): Promise<{ statusCode: number; body: string; headers: Record<string, unknown>; json(): any }>
  /** start an async operation and poll its queue entry to the end */
  run(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ statusCode: number; body: string; location?: string }>
}

export async function makeApp(
  t: Test,
  opts: { config?: Partial<Config>; executor?: Executor; dir?: string; env?: Record<string, string> } = {},
): Promise<TestApp> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'heqet-test-'))
  const config: Config = {
    ...parseConfig(
      JSON.stringify({
        jwt: { admin: { key: ADMIN_KEY }, user: { key: USER_KEY } },
        glusterfs: { executor: 'mock', db: join(dir, 'heqet.db') },
      }),
      opts.env ?? {},
    ),
    disableBackgroundCleaner: true,
    disableMonitor: true,
    // heketi's poll (answered at once): the protocol tests see a running job's 200 X-Pending;
    // test/queue-hold.test.ts covers the held poll (production default 1000 ms)
    queuePollHoldMs: 0,
    ...opts.config,
  }
  const app = await buildApp({
    config,
    executor: opts.executor ?? new MockExecutor({ deviceSizeGiB: config.mockDeviceSizeGiB }),
    logger: pino({ level: 'silent' }),
  })
  let closed = false
  const close = app.close
  const testApp: TestApp = {
    ...app,
    dir,
    async close() {
      if (closed) return
      closed = true
      await close()
    },
    async call(method, path, body, callOpts = {}) {
      const iss = callOpts.iss ?? 'admin'
      const key = iss === 'user' ? USER_KEY : ADMIN_KEY
      const res = await app.app.inject({
        method: method as never,
        url: path,
        headers: {
          authorization: `bearer ${signToken(iss, key, method, path.split('?')[0]!)}`,
          ...callOpts.headers,
        },
        payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      })
      return {
        statusCode: res.statusCode,
        body: res.body,
        headers: res.headers as Record<string, unknown>,
        json: () => JSON.parse(res.body),
      }
    },
    async run(method, path, body) {
      const first = await testApp.call(method, path, body)
      if (first.statusCode !== 202) return { statusCode: first.statusCode, body: first.body }
      const queue = first.headers['location'] as string
      for (;;) {
        const poll = await testApp.call('GET', queue)
        if (poll.headers['x-pending'] === 'true') {
          await new Promise((r) => setTimeout(r, 2))
          continue
        }
        return { statusCode: poll.statusCode, body: poll.body, location: poll.headers['location'] as string }
      }
    },
  }
  t.teardown(async () => {
    await testApp.close()
    if (!opts.dir) rmSync(dir, { recursive: true, force: true })
  })
  return testApp
}

/** cluster + n nodes (zone i % zones + 1) + d devices each; returns ids */
export async function makeTopology(
  app: TestApp,
  opts: { nodes: number; devices: number; zones?: number },
): Promise<{ cluster: string; nodes: string[]; devices: string[] }> {
  const cluster = (await app.call('POST', '/clusters', { block: true, file: true })).json().id as string
  const nodes: string[] = []
  const devices: string[] = []
  for (let i = 0; i < opts.nodes; i++) {
    const res = await app.run('POST', '/nodes', {
      zone: (i % (opts.zones ?? opts.nodes)) + 1,
      hostnames: { manage: [`node${i}.example.com`], storage: [`10.0.0.${i + 1}`] },
      cluster,
    })
    if (res.statusCode !== 303) throw new Error(`node add failed: ${res.statusCode} ${res.body}`)
    const nodeId = res.location!.split('/').pop()!
    nodes.push(nodeId)
    for (let d = 0; d < opts.devices; d++) {
      const dev = await app.run('POST', '/devices', {
        name: `/dev/sd${String.fromCharCode(98 + d)}`,
        node: nodeId,
      })
      if (dev.statusCode !== 204) throw new Error(`device add failed: ${dev.statusCode} ${dev.body}`)
    }
    devices.push(
      ...(await app.call('GET', `/nodes/${nodeId}`)).json().devices.map((x: { id: string }) => x.id),
    )
  }
  return { cluster, nodes, devices }
}
