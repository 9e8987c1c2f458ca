// The command line of `npm run bench`: scenarios, scale and knobs.
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

export interface Scale {
  nodes: number
  devices: number
  zones: number
  volumes: number
  /** how many volumes the delete phase removes (<= volumes) */
  deletes: number
  /** concurrency of node/device adds during setup */
  setupConcurrency: number
  infoSeconds: number
  listSeconds: number
}

export type StoreName = 'lmdb' | 'etcd'

export interface Options {
  scenarios: ('A' | 'B')[]
  /** the stores each scenario runs on (B: LMDB only unless --store was given) */
  stores: Record<'A' | 'B', StoreName[]>
  /** an etcd to use (host:port,...) instead of starting one */
  etcd: string | undefined
  quick: boolean
  concurrency: number
  /** connections of the read phases (wrk -c, or the Node.js client's workers) */
  readConcurrency: number
  /** who sends the read load: wrk (default) or the bench's own Node.js client */
  reader: 'wrk' | 'node'
  /** the wrk binary */
  wrk: string
  /** wrk -t */
  wrkThreads: number
  /** measure a bare node:http server with the same wrk after the info phase */
  floor: boolean
  /** start the server with the image's ENV (Dockerfile), as a container does; undefined: not */
  imageEnv?: boolean
  pollMs: number
  inflight: number
  logLevel: string
  cpuProf: string | undefined
  json: string | undefined
  keep: boolean
  /** scrape /metrics around the creates and deletes for the store's writes and commits per operation */
  storeCounts: boolean
  repeat: number
  named: boolean
  scale: Record<'A' | 'B', Scale>
}

export const USAGE = `usage: npm run bench -- [options]
  --scenario A|B|all     which scenario(s) to run (default all)
  --quick                ~1 minute smoke run (small scale, short read phases)
  --nodes N              nodes (overrides the selected scenario(s))
  --devices N            devices per node
  --zones N              zones (nodes get zone i % N + 1)
  --volumes N            1 GiB replica-3 volumes to create
  --deletes N            volumes to delete at the end (default: all for A, a sample of 1000 for B)
  --concurrency N        create/delete concurrency (default 8)
  --read-concurrency N   connections of the GET phases (default 32)
  --reader wrk|node      who sends the GETs: wrk (default; Debian package wrk) or the
                         bench's Node.js client (a fresh token per request; client-bound)
  --wrk PATH             the wrk binary (default: wrk on PATH)
  --wrk-threads N        wrk threads (default 2)
  --no-floor             skip the bare node:http floor measured after GET /volumes/{id}
  --no-image-env         start the server without the image's ENV (by default the Dockerfile's
                         ENV lines, e.g. MALLOC_ARENA_MAX, are set for it, as in a container)
  --info-seconds S       duration of the GET /volumes/{id} phase (default 10)
  --list-seconds S       duration of the GET /volumes phase (default 10)
  --poll-ms N            /queue polling interval in ms (default 2, as issue 12's figures)
  --inflight N           server max_inflight_operations (default 8, heketi's default; 429s are retried)
  --loglevel L           server glusterfs.loglevel (default info, as heketi)
  --cpu-prof DIR         run the server with node --cpu-prof, profiles written to DIR
  --json FILE            also write the results as JSON
  --named                give every volume a name (as Kubernetes provisioners do); default unnamed
  --repeat N             run each scenario N times (fresh server each) and add a median table
  --keep                 keep the temp directory (DB, config, server log)
  --store-counts         store writes and commits per create/delete (scrapes /metrics: loads prom-client, adds to RSS)
  --store lmdb|etcd|both the DB (default both for A, lmdb for B: a full B on etcd takes long)
  --etcd HOST:PORT,...   use this etcd (a fresh key prefix per run) instead of starting one`

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'all' },
      quick: { type: 'boolean', default: false },
      nodes: { type: 'string' },
      devices: { type: 'string' },
      zones: { type: 'string' },
      volumes: { type: 'string' },
      deletes: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
      'read-concurrency': { type: 'string', default: '32' },
      reader: { type: 'string', default: 'wrk' },
      wrk: { type: 'string', default: 'wrk' },
      'wrk-threads': { type: 'string', default: '2' },
      'no-floor': { type: 'boolean', default: false },
      'no-image-env': { type: 'boolean', default: false },
      'info-seconds': { type: 'string' },
      'list-seconds': { type: 'string' },
      'poll-ms': { type: 'string', default: '2' },
      inflight: { type: 'string', default: '8' },
      loglevel: { type: 'string', default: 'info' },
      'cpu-prof': { type: 'string' },
      json: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'store-counts': { type: 'boolean', default: false },
      repeat: { type: 'string', default: '1' },
      named: { type: 'boolean', default: false },
      store: { type: 'string' },
      etcd: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const int = (name: string, v: string | undefined, min = 0): number | undefined => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`)
    return n
  }
  const num = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`)
    return n
  }
  const sc = values.scenario.toUpperCase()
  if (!['A', 'B', 'ALL'].includes(sc)) throw new Error('--scenario must be A, B or all')
  const scenarios: ('A' | 'B')[] = sc === 'ALL' ? ['A', 'B'] : [sc as 'A' | 'B']
  const quick = values.quick
  if (values.reader !== 'wrk' && values.reader !== 'node') throw new Error('--reader must be wrk or node')
  const scale: Record<'A' | 'B', Scale> = {
    A: {
      nodes: 6,
      devices: 4,
      zones: 3,
      volumes: quick ? 100 : 300,
      deletes: Number.POSITIVE_INFINITY,
      setupConcurrency: 1,
      infoSeconds: quick ? 2 : 10,
      listSeconds: quick ? 2 : 10,
    },
    B: {
      nodes: quick ? 50 : 1000,
      devices: 10,
      zones: 10,
      volumes: quick ? 500 : 10000,
      // full deletion of 10 000 volumes adds minutes; a sample of 1000 is timed
      deletes: quick ? Number.POSITIVE_INFINITY : 1000,
      setupConcurrency: 16,
      infoSeconds: quick ? 2 : 10,
      listSeconds: quick ? 2 : 10,
    },
  }
  for (const s of scenarios) {
    const x = scale[s]
    x.nodes = int('nodes', values.nodes, 1) ?? x.nodes
    x.devices = int('devices', values.devices, 1) ?? x.devices
    x.zones = int('zones', values.zones, 1) ?? x.zones
    x.volumes = int('volumes', values.volumes, 1) ?? x.volumes
    x.deletes = int('deletes', values.deletes, 0) ?? x.deletes
    x.infoSeconds = num('info-seconds', values['info-seconds']) ?? x.infoSeconds
    x.listSeconds = num('list-seconds', values['list-seconds']) ?? x.listSeconds
    x.deletes = Math.min(x.deletes, x.volumes)
  }
  const storeArg = values.store ?? 'default'
  const storeChoice: Record<string, StoreName[]> = { lmdb: ['lmdb'], etcd: ['etcd'], both: ['lmdb', 'etcd'] }
  if (storeArg !== 'default' && !storeChoice[storeArg]) throw new Error('--store must be lmdb, etcd or both')
  const stores: Record<'A' | 'B', StoreName[]> =
    storeArg === 'default'
      ? { A: ['lmdb', 'etcd'], B: ['lmdb'] }
      : { A: storeChoice[storeArg]!, B: storeChoice[storeArg]! }
  if (values.etcd !== undefined && !/^[A-Za-z0-9.-]+:\d+(,[A-Za-z0-9.-]+:\d+)*$/.test(values.etcd))
    throw new Error('--etcd must be host:port[,host:port...]')
  return {
    scenarios,
    stores,
    etcd: values.etcd,
    quick,
    concurrency: int('concurrency', values.concurrency, 1)!,
    readConcurrency: int('read-concurrency', values['read-concurrency'], 1)!,
    reader: values.reader,
    wrk: values.wrk,
    wrkThreads: int('wrk-threads', values['wrk-threads'], 1)!,
    floor: !values['no-floor'],
    imageEnv: !values['no-image-env'],
    pollMs: int('poll-ms', values['poll-ms'], 0)!,
    inflight: int('inflight', values.inflight, 1)!,
    logLevel: values.loglevel,
    cpuProf: values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined,
    json: values.json,
    keep: values.keep,
    storeCounts: values['store-counts'],
    repeat: int('repeat', values.repeat, 1)!,
    named: values.named,
    scale,
  }
}
