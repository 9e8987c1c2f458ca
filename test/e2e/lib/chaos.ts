// kill -9 the server at a random moment of a volume create, expand or
// delete on the real testbed, restart it, let the cleaner run, then check
// that the nodes and the DB agree and nothing leaked.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compareNodesWithDb, type HeketiDump } from './agreement.ts'
import { freePort, ServerProcess } from './server.ts'
import type { Testbed } from './testbed.ts'

export interface ChaosResult {
  runs: number
  leaked: number
  inconsistencies: number
  details: string[]
}

export async function startHeqetOnTestbed(tb: Testbed): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-chaos-'))
  const adminKey = 'chaos-admin'
  const config = {
    port: '8080',
    jwt: { admin: { key: adminKey }, user: { key: 'chaos-user' } },
    glusterfs: {
      executor: 'ssh',
      sshexec: { keyfile: tb.sshKeyFile, user: tb.sshUser, port: String(tb.sshPort) },
      db: join(dir, 'heqet.db'),
      loglevel: 'warning',
      start_time_background_cleaner: 1,
      refresh_time_background_cleaner: 5,
      disable_monitor_gluster_nodes: true,
    },
  }
  writeFileSync(join(dir, 'heketi.json'), JSON.stringify(config))
  const server = new ServerProcess(join(dir, 'heketi.json'), await freePort(), adminKey)
  await server.start()
  return server
}

export async function loadTopology(server: ServerProcess, tb: Testbed): Promise<void> {
  const cluster = JSON.parse((await server.call('POST', '/clusters', { file: true, block: true })).body).id
  for (const [i, node] of tb.nodes.entries()) {
    const res = await server.run('POST', '/nodes', {
      zone: i + 1,
      hostnames: { manage: [node.ip], storage: [node.ip] },
      cluster,
    })
    if (res.status !== 303) throw new Error(`node add: ${res.status} ${res.body}`)
    const nodeId = res.location!.split('/').pop()!
    for (const dev of node.devices) {
      const d = await server.run('POST', '/devices', { name: dev, node: nodeId })
      if (d.status !== 204) throw new Error(`device add: ${d.status} ${d.body}`)
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function volumes(server: ServerProcess): Promise<string[]> {
  return JSON.parse((await server.call('GET', '/volumes')).body).volumes
}

/** Wait until the cleaner has emptied the journal (asking it to run now, too). */
async function waitClean(server: ServerProcess, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await server.run('POST', '/operations/pending/cleanup', {})
    const ops = JSON.parse((await server.call('GET', '/operations')).body)
    if (ops.total === 0 || Date.now() > deadline) return ops.total
    await sleep(500)
  }
}

export async function checkAgreement(server: ServerProcess, tb: Testbed, baseFstab: string[][]) {
  const dump = JSON.parse((await server.call('GET', '/db/dump')).body) as HeketiDump
  const check = JSON.parse((await server.call('GET', '/db/check')).body)
  const snaps = await tb.snapshot()
  const agreement = compareNodesWithDb(
    snaps,
    tb.nodes.map((n) => n.ip),
    baseFstab,
    dump,
  )
  return { ...agreement, dbInconsistencies: check.totalinconsistencies as number }
}

export async function chaosRuns(
  tb: Testbed,
  server: ServerProcess,
  runs: number,
  log: (line: string) => void = () => {},
  random: () => number = Math.random,
): Promise<ChaosResult> {
  const baseFstab = (await tb.snapshot()).map((s) => s.fstab)
  const result: ChaosResult = { runs: 0, leaked: 0, inconsistencies: 0, details: [] }
  for (let run = 1; run <= runs; run++) {
    // keep a couple of settled volumes around so deletes and expands get killed too
    let existing = await volumes(server)
    while (existing.length < 2) {
      const made = await server.run('POST', '/volumes', {
        size: 1,
        durability: { type: 'replicate', replicate: { replica: 3 } },
      })
      if (made.status !== 303) throw new Error(`setup create: ${made.status} ${made.body}`)
      existing = await volumes(server)
    }
    const roll = random()
    const id = existing[Math.floor(random() * existing.length)]!
    let action: string
    let started: { status: number; body: string }
    if (existing.length >= 4 || roll < 0.34) {
      action = `delete ${id}`
      started = await server.call('DELETE', `/volumes/${id}`)
    } else if (roll < 0.67) {
      action = `expand ${id}`
      started = await server.call('POST', `/volumes/${id}/expand`, { expand_size: 1 })
    } else {
      action = 'create'
      started = await server.call('POST', '/volumes', {
        size: 1,
        durability: { type: 'replicate', replicate: { replica: 3 } },
      })
    }
    const delayMs = Math.floor(random() * 2500)
    await sleep(delayMs)
    await server.kill9()
    await server.start()
    const left = await waitClean(server)
    const a = await checkAgreement(server, tb, baseFstab)
    result.runs++
    result.leaked += a.leaked.length
    result.inconsistencies += a.missing.length + a.dbInconsistencies + Math.max(left, 0)
    const line = `run ${run}: ${action} (${started.status}) killed after ${delayMs} ms; journal left ${left}; leaked ${a.leaked.length}; missing ${a.missing.length}; db ${a.dbInconsistencies}`
    log(line)
    result.details.push(
      line,
      ...a.leaked.map((l) => `  leaked ${l}`),
      ...a.missing.map((m) => `  missing ${m}`),
    )
  }
  return result
}
