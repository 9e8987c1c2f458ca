#!/usr/bin/env node
// Loads a heketi topology file into heqet, as `heketi-cli topology load` does,
// without heketi-cli: plain JavaScript in the image, so deploy/heqet-deploy can
// run it inside the heqet pod (kubectl exec … < topology.json).
//
//   node bin/heqet-topology-load.js --server=http://localhost:8080 --user=admin --secret=KEY < topology.json
//   (or --json=FILE; HEKETI_CLI_SERVER / HEKETI_CLI_USER / HEKETI_CLI_KEY as heketi-cli reads them)
//
// Like heketi-cli it is safe to run again: nodes are matched by their manage
// hostname and devices by name, and only what is missing is added. A node or
// device that cannot be added is reported and the load goes on; the exit code
// is 1 when anything failed.
import { createHash, createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    server: { type: 'string', default: process.env.HEKETI_CLI_SERVER ?? 'http://localhost:8080' },
    user: { type: 'string', default: process.env.HEKETI_CLI_USER ?? 'admin' },
    // in the heqet pod the server's own HEKETI_ADMIN_KEY serves
    secret: { type: 'string', default: process.env.HEKETI_CLI_KEY ?? process.env.HEKETI_ADMIN_KEY ?? '' },
    json: { type: 'string' },
  },
})

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** heketi's client token: HS256, iss, iat, exp, qsh = sha256(METHOD&path) */
function token(method, path) {
  const now = Math.floor(Date.now() / 1000)
  const qsh = createHash('sha256').update(`${method}&${path}`).digest('hex')
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: args.user, iat: now, exp: now + 600, qsh })}`
  return `${body}.${createHmac('sha256', args.secret).update(body).digest('base64url')}`
}

async function call(method, path, body) {
  const res = await fetch(new URL(path, args.server), {
    method,
    redirect: 'manual',
    headers: {
      authorization: `bearer ${token(method, path)}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  const pending = res.headers.get('x-pending') === 'true'
  return { status: res.status, location: res.headers.get('location') ?? '', pending, text }
}

/** An asynchronous request followed through heketi's queue; the final response. */
async function run(method, path, body) {
  const first = await call(method, path, body)
  if (first.status !== 202) return first
  // bounded: a node add waits on the peer probe, a device add on pvcreate/vgcreate
  for (let i = 0; i < 3000; i++) {
    const poll = await call('GET', first.location)
    if (!poll.pending) return poll
    await new Promise((r) => setTimeout(r, 200))
  }
  return { status: 0, location: '', pending: true, text: `still pending after 10 minutes: ${first.location}` }
}

const failure = (res) => res.text.trim() || `HTTP ${res.status}`

async function get(path) {
  const res = await call('GET', path)
  if (res.status !== 200) throw new Error(`GET ${path}: ${failure(res)}`)
  return JSON.parse(res.text)
}

async function main() {
  const topology = JSON.parse(readFileSync(args.json ?? 0, 'utf8'))
  // what heqet already holds: node by manage hostname, with its cluster and devices
  const existing = new Map()
  for (const clusterId of (await get('/clusters')).clusters) {
    for (const nodeId of (await get(`/clusters/${clusterId}`)).nodes) {
      const node = await get(`/nodes/${nodeId}`)
      existing.set(node.hostnames.manage[0], node)
    }
  }
  let failed = 0
  for (const cluster of topology.clusters ?? []) {
    const known = cluster.nodes.map((n) => existing.get(n.node.hostnames.manage[0])).find(Boolean)
    let clusterId = known?.cluster
    if (clusterId) {
      console.log(`Found cluster ${clusterId}`)
    } else {
      const res = await call('POST', '/clusters', { file: true, block: true })
      if (res.status !== 201) throw new Error(`Unable to create cluster: ${failure(res)}`)
      clusterId = JSON.parse(res.text).id
      console.log(`Creating cluster ... ID: ${clusterId}`)
    }
    for (const { node, devices = [] } of cluster.nodes) {
      const name = node.hostnames.manage[0]
      let entry = existing.get(name)
      if (entry) {
        console.log(`\tFound node ${name} on cluster ${entry.cluster}`)
      } else {
        console.log(`\tCreating node ${name} ...`)
        const res = await run('POST', '/nodes', { ...node, cluster: clusterId })
        if (res.status !== 303) {
          console.log(`\tUnable to create node: ${failure(res)}`)
          failed++
          continue
        }
        entry = await get(res.location)
        console.log(`\tCreating node ${name} ... ID: ${entry.id}`)
      }
      const have = new Set(entry.devices.map((d) => d.name))
      for (const device of devices) {
        const request = typeof device === 'string' ? { name: device } : { ...device }
        if (have.has(request.name)) {
          console.log(`\t\tFound device ${request.name}`)
          continue
        }
        const res = await run('POST', '/devices', { ...request, node: entry.id })
        if (res.status === 204) {
          console.log(`\t\tAdding device ${request.name} ... OK`)
        } else {
          console.log(`\t\tAdding device ${request.name} ... Unable to add device: ${failure(res)}`)
          failed++
        }
      }
    }
  }
  if (failed) {
    console.error(`${failed} node(s) or device(s) could not be added`)
    process.exit(1)
  }
}

main().catch((err) => {
  console.error(`Error: ${err.message}`)
  process.exit(1)
})
