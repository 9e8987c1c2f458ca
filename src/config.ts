// heketi.json, read unchanged, plus the HEKETI_* environment overrides.
// A file written for heketi must start heqet; type mismatches are fatal as
// they are for heketi (Go's decoder rejects them).
import { readFileSync } from 'node:fs'
import { DecodeError, decodeGo, type Schema } from './godecode.ts'

const OBJECT_ANY: Schema = {}

const configSchema = {
  port: 'string',
  use_auth: 'bool',
  jwt: { object: { admin: { object: { key: 'string' } }, user: { object: { key: 'string' } } } },
  backup_db_to_kube_secret: 'bool',
  enable_tls: 'bool',
  cert_file: 'string',
  key_file: 'string',
  profiling: 'bool',
  default_state: 'string',
  glusterfs: {
    object: {
      executor: 'string',
      db: 'string',
      db_read_only: 'bool',
      allocator: 'string',
      loglevel: 'string',
      brick_max_size_gb: 'int',
      brick_min_size_gb: 'int',
      max_bricks_per_volume: 'int',
      average_file_size_kb: 'int',
      pre_request_volume_options: 'string',
      post_request_volume_options: 'string',
      zone_checking: 'string',
      max_volumes_per_cluster: 'int',
      auto_create_block_hosting_volume: 'bool',
      block_hosting_volume_size: 'int',
      block_hosting_volume_options: 'string',
      disable_monitor_gluster_nodes: 'bool',
      refresh_time_monitor_gluster_nodes: 'int',
      start_time_monitor_gluster_nodes: 'int',
      max_inflight_operations: 'int',
      disable_background_cleaner: 'bool',
      refresh_time_background_cleaner: 'int',
      start_time_background_cleaner: 'int',
      operation_retry_limits: { object: { volume_create: 'int' } },
      // heqet only: how long a poll of a running job waits for its end (api/routes/core.ts)
      queue_poll_hold_ms: 'int',
      // replicas on one etcd db (api/replica.ts)
      ha: {
        object: {
          advertise_url: 'string',
          replica_id: 'string',
          lease_ttl_sec: 'int',
          // "etcd" (default) or "kubernetes": a coordination.k8s.io Lease (db/kube-lease-election.ts)
          election: 'string',
          lease_namespace: 'string',
          lease_name: 'string',
          lease_duration_sec: 'int',
          renew_deadline_sec: 'float',
          retry_period_sec: 'float',
          kubeconfig: 'string',
        },
      },
      // executor sections are validated by the executors themselves
      sshexec: { object: OBJECT_ANY },
      kubeexec: { object: OBJECT_ANY },
      injectexec: { object: OBJECT_ANY },
    },
  },
} as const satisfies Schema

export type AdminState = 'normal' | 'read-only' | 'local-client'
export const ADMIN_STATES: readonly AdminState[] = ['normal', 'read-only', 'local-client']
export const LOG_LEVELS = ['none', 'critical', 'error', 'warning', 'info', 'debug'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]
export type ExecutorKind = 'ssh' | 'kube' | 'mock' | 'inject/ssh' | 'inject/mock'

export interface Config {
  port: number
  /** '' = all interfaces, as heketi */
  listenHost: string
  adminKey: string
  userKey: string
  disableAuth: boolean
  jwtIatLeewaySec: number
  defaultState: AdminState
  backupDbToKubeSecret: boolean
  enableTls: boolean
  certFile: string
  keyFile: string
  executor: ExecutorKind
  dbPath: string
  dbReadOnly: boolean
  logLevel: LogLevel
  /** executor sections as in the file, keys lower-cased */
  sshexec: Record<string, unknown>
  kubeexec: Record<string, unknown>
  injectexec: Record<string, unknown>
  brickMaxSizeGiB: number
  brickMinSizeGiB: number
  maxBricksPerVolume: number
  averageFileSizeKiB: number
  preRequestVolumeOptions: string
  postRequestVolumeOptions: string
  zoneChecking: 'none' | 'strict'
  maxVolumesPerCluster: number
  autoCreateBlockHostingVolume: boolean
  blockHostingVolumeSizeGiB: number
  blockHostingVolumeOptions: string
  disableMonitor: boolean
  monitorRefreshSec: number
  monitorStartSec: number
  maxInflightOperations: number
  disableBackgroundCleaner: boolean
  cleanerRefreshSec: number
  cleanerStartSec: number
  volumeCreateRetries: number
  /** a poll of a job still running here waits this long for its end before answering pending (0: at once, as heketi) */
  queuePollHoldMs: number
  mockDeviceSizeGiB: number
  /** where the other replicas send writes to this one when it leads ('' = http://<first IPv4>:<port>) */
  haAdvertiseUrl: string
  /** this replica's name in the election ('' = random per process) */
  haReplicaId: string
  /** the leader lease's TTL: a dead leader is replaced within about this time */
  haLeaseTtlSec: number
  /** who elects the leader: an etcd lease, or a Kubernetes coordination.k8s.io Lease */
  haElection: 'etcd' | 'kubernetes'
  /** the Kubernetes Lease (haElection 'kubernetes'); times as client-go's leaderelection names them */
  haKubeLease: KubeLeaseConfig
}

export interface KubeLeaseConfig {
  /** '' = the service account's namespace (or the kubeconfig context's) */
  namespace: string
  name: string
  leaseDurationSec: number
  renewDeadlineSec: number
  retryPeriodSec: number
  /** '' = in-cluster service account, else $KUBECONFIG */
  kubeconfig: string
}

/** default leader lease TTL (seconds) */
export const DEFAULT_LEASE_TTL_SEC = 10
/** default hold of a /queue poll of a running job, and the most it may be set to */
export const DEFAULT_QUEUE_POLL_HOLD_MS = 1000
export const MAX_QUEUE_POLL_HOLD_MS = 30_000
/** client-go leaderelection's usual LeaseDuration / RenewDeadline / RetryPeriod */
export const DEFAULT_KUBE_LEASE = { leaseDurationSec: 15, renewDeadlineSec: 10, retryPeriodSec: 2 }

export class ConfigError extends Error {}

/** Go's strconv.ParseBool */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false
  return undefined
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name]
  if (v === undefined || v === '') return undefined
  return /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : Number.NaN
}

function orDefault(value: number, fallback: number): number {
  return value > 0 ? value : fallback
}

export function parseExecutor(value: string): ExecutorKind {
  switch (value) {
    case '':
    case 'ssh':
      return 'ssh'
    case 'kube':
    case 'kubernetes':
      return 'kube'
    case 'mock':
    case 'inject/ssh':
    case 'inject/mock':
      return value
    default:
      throw new ConfigError(`invalid executor: ${value}`)
  }
}

/** Build the effective configuration from heketi.json text and the environment. */
export function parseConfig(text: string, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: ReturnType<typeof decodeGo<typeof configSchema>>
  try {
    raw = decodeGo(text, configSchema)
  } catch (err) {
    if (err instanceof DecodeError) throw new ConfigError(`Unable to parse configuration: ${err.message}`)
    throw err
  }
  const g = raw.glusterfs
  const rawObject = (text: string, key: string): Record<string, unknown> => {
    // keep the executor sections as written (key case preserved for the executors)
    const parsed = JSON.parse(text) as Record<string, any>
    const gkey = Object.keys(parsed).find((k) => k.toLowerCase() === 'glusterfs')
    const gs = gkey ? parsed[gkey] : undefined
    if (!gs || typeof gs !== 'object') return {}
    const k = Object.keys(gs).find((x) => x.toLowerCase() === key)
    const section = k && gs[k] && typeof gs[k] === 'object' ? gs[k] : {}
    // Go matches keys case-insensitively; the executors read lower-case keys
    return Object.fromEntries(Object.entries(section).map(([key, v]) => [key.toLowerCase(), v]))
  }

  const cfg: Config = {
    port: 8080,
    listenHost: '',
    adminKey: raw.jwt.admin.key,
    userKey: raw.jwt.user.key,
    disableAuth: false,
    jwtIatLeewaySec: 120,
    defaultState: 'normal',
    backupDbToKubeSecret: raw.backup_db_to_kube_secret,
    enableTls: raw.enable_tls,
    certFile: raw.cert_file,
    keyFile: raw.key_file,
    executor: 'ssh',
    dbPath: g.db || 'heketi.db',
    dbReadOnly: g.db_read_only,
    logLevel: 'info',
    sshexec: rawObject(text, 'sshexec'),
    kubeexec: rawObject(text, 'kubeexec'),
    injectexec: rawObject(text, 'injectexec'),
    brickMaxSizeGiB: orDefault(g.brick_max_size_gb, 4096),
    brickMinSizeGiB: orDefault(g.brick_min_size_gb, 1),
    maxBricksPerVolume: orDefault(g.max_bricks_per_volume, 32),
    averageFileSizeKiB: orDefault(g.average_file_size_kb, 64),
    preRequestVolumeOptions: g.pre_request_volume_options,
    postRequestVolumeOptions: g.post_request_volume_options,
    zoneChecking: g.zone_checking === 'strict' ? 'strict' : 'none',
    maxVolumesPerCluster: g.max_volumes_per_cluster === 0 ? 1000 : g.max_volumes_per_cluster,
    autoCreateBlockHostingVolume: g.auto_create_block_hosting_volume,
    blockHostingVolumeSizeGiB: orDefault(g.block_hosting_volume_size, 1024),
    blockHostingVolumeOptions: g.block_hosting_volume_options || 'group gluster-block',
    disableMonitor: g.disable_monitor_gluster_nodes,
    monitorRefreshSec: orDefault(g.refresh_time_monitor_gluster_nodes, 120),
    monitorStartSec: orDefault(g.start_time_monitor_gluster_nodes, 10),
    maxInflightOperations: orDefault(g.max_inflight_operations, 8),
    disableBackgroundCleaner: g.disable_background_cleaner,
    cleanerRefreshSec: orDefault(g.refresh_time_background_cleaner, 3600),
    cleanerStartSec: orDefault(g.start_time_background_cleaner, 60),
    volumeCreateRetries:
      g.operation_retry_limits.volume_create > 0 ? g.operation_retry_limits.volume_create : 4,
    // 0 is a value here (no hold): only an absent key (or null) takes the default
    queuePollHoldMs: hasGlusterfsKey(text, 'queue_poll_hold_ms')
      ? g.queue_poll_hold_ms
      : DEFAULT_QUEUE_POLL_HOLD_MS,
    mockDeviceSizeGiB: 500,
    haAdvertiseUrl: g.ha.advertise_url,
    haReplicaId: g.ha.replica_id,
    haLeaseTtlSec: orDefault(g.ha.lease_ttl_sec, DEFAULT_LEASE_TTL_SEC),
    haElection: 'etcd',
    haKubeLease: {
      namespace: g.ha.lease_namespace,
      name: g.ha.lease_name || 'heqet-leader',
      leaseDurationSec: orDefault(g.ha.lease_duration_sec, DEFAULT_KUBE_LEASE.leaseDurationSec),
      renewDeadlineSec: orDefault(g.ha.renew_deadline_sec, DEFAULT_KUBE_LEASE.renewDeadlineSec),
      retryPeriodSec: orDefault(g.ha.retry_period_sec, DEFAULT_KUBE_LEASE.retryPeriodSec),
      kubeconfig: g.ha.kubeconfig,
    },
  }
  if (raw.port) cfg.port = parsePort(raw.port)
  if (g.loglevel && (LOG_LEVELS as readonly string[]).includes(g.loglevel))
    cfg.logLevel = g.loglevel as LogLevel
  cfg.executor = parseExecutor(g.executor)
  cfg.defaultState = parseAdminState(raw.default_state)
  cfg.haElection = parseElection(g.ha.election)
  applyEnv(cfg, env)
  checkKubeLease(cfg.haKubeLease)
  if (cfg.haLeaseTtlSec > MAX_LEASE_SEC)
    throw new ConfigError(`ha.lease_ttl_sec must be at most ${MAX_LEASE_SEC}`)
  checkQueuePollHold(cfg.queuePollHoldMs)
  if (cfg.haReplicaId !== '' && !REPLICA_ID.test(cfg.haReplicaId))
    throw new ConfigError(
      `invalid ha.replica_id ${JSON.stringify(cfg.haReplicaId)} (A-Z, a-z, 0-9, '.', '_', '-', at most 253)`,
    )
  return cfg
}

/** Whether heketi.json's glusterfs section sets `key` to a non-null value (keys match case-insensitively, as Go's). */
function hasGlusterfsKey(text: string, key: string): boolean {
  const parsed = JSON.parse(text) as Record<string, unknown>
  const gkey = Object.keys(parsed).find((k) => k.toLowerCase() === 'glusterfs')
  const gs = gkey ? parsed[gkey] : undefined
  if (!gs || typeof gs !== 'object') return false
  // Go's decoder takes the last of several keys that match
  const k = Object.keys(gs)
    .filter((x) => x.toLowerCase() === key)
    .pop()
  return k !== undefined && (gs as Record<string, unknown>)[k] !== null
}

function checkQueuePollHold(ms: number): void {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_QUEUE_POLL_HOLD_MS)
    throw new ConfigError(
      `queue_poll_hold_ms must be a whole number of milliseconds from 0 to ${MAX_QUEUE_POLL_HOLD_MS}`,
    )
}

function parsePort(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new ConfigError(`Unable to parse configuration: invalid port ${value}`)
  return n
}

export function parseElection(value: string): Config['haElection'] {
  if (value === '' || value === 'etcd') return 'etcd'
  if (value === 'kubernetes' || value === 'kube') return 'kubernetes'
  throw new ConfigError(`invalid ha.election: ${value} (etcd or kubernetes)`)
}

/** a Kubernetes namespace: a DNS-1123 label */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
/** a Lease's name: a DNS-1123 subdomain (at most 253 characters, checked apart) */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
/** a replica's id (the Lease's holderIdentity, in etcd values and log lines): a pod name or the like */
const REPLICA_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/
/** the longest lease time: its timers (× 1000 ms, doubled) stay below setTimeout's 2^31 ms */
const MAX_LEASE_SEC = 86_400
/** the shortest pause between two Lease calls of a replica (the API server's load) */
const MIN_RETRY_PERIOD_SEC = 0.1

/**
 * The Lease's namespace and name reach the API server's URL path: one
 * outside these names ('..', '/', '%') would address another object.
 * Checked at start-up (ConfigError) and again where the requests are built
 * (api/kube-lease.ts).
 */
export function kubeLeaseNameProblem(namespace: string, name: string): string | undefined {
  if (!DNS_LABEL.test(namespace))
    return `invalid Lease namespace ${JSON.stringify(namespace)} (a DNS-1123 label: a-z, 0-9, '-', at most 63)`
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name))
    return `invalid Lease name ${JSON.stringify(name)} (a DNS-1123 subdomain: a-z, 0-9, '-', '.', at most 253)`
  return undefined
}

/** client-go's checks: lease duration > renew deadline > 1.2 × retry period; names the API accepts */
function checkKubeLease(lease: KubeLeaseConfig): void {
  const problem = kubeLeaseNameProblem(lease.namespace || 'default', lease.name)
  if (problem) throw new ConfigError(`ha: ${problem}`)
  if (lease.leaseDurationSec > MAX_LEASE_SEC)
    throw new ConfigError(`ha.lease_duration_sec must be at most ${MAX_LEASE_SEC}`)
  if (lease.retryPeriodSec < MIN_RETRY_PERIOD_SEC)
    throw new ConfigError(`ha.retry_period_sec must be at least ${MIN_RETRY_PERIOD_SEC}`)
  if (lease.leaseDurationSec <= lease.renewDeadlineSec)
    throw new ConfigError('ha.lease_duration_sec must be greater than ha.renew_deadline_sec')
  if (lease.renewDeadlineSec <= 1.2 * lease.retryPeriodSec)
    throw new ConfigError('ha.renew_deadline_sec must be greater than 1.2 × ha.retry_period_sec')
}

export function parseAdminState(value: string): AdminState {
  if (value === '') return 'normal'
  if ((ADMIN_STATES as readonly string[]).includes(value)) return value as AdminState
  throw new ConfigError(`unable to set admin state: unknown admin state name: ${value}`)
}

function applyEnv(cfg: Config, env: NodeJS.ProcessEnv): void {
  const str = (name: string) => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined)
  const port = str('HEKETI_HTTP_PORT')
  if (port) cfg.port = parsePort(port)
  cfg.adminKey = str('HEKETI_ADMIN_KEY') ?? cfg.adminKey
  cfg.userKey = str('HEKETI_USER_KEY') ?? cfg.userKey
  const state = str('HEKETI_DEFAULT_STATE')
  if (state) cfg.defaultState = parseAdminState(state)
  if (str('HEKETI_BACKUP_DB_TO_KUBE_SECRET')) cfg.backupDbToKubeSecret = true
  const leeway = envInt(env, 'HEKETI_JWT_IAT_LEEWAY_SECONDS')
  if (leeway !== undefined && Number.isInteger(leeway) && leeway >= 0) cfg.jwtIatLeewaySec = leeway
  const executor = str('HEKETI_EXECUTOR')
  if (executor) cfg.executor = parseExecutor(executor)
  cfg.dbPath = str('HEKETI_DB_PATH') ?? cfg.dbPath
  const level = str('HEKETI_GLUSTERAPP_LOGLEVEL')
  if (level && (LOG_LEVELS as readonly string[]).includes(level)) cfg.logLevel = level as LogLevel
  const autoBhv = str('HEKETI_AUTO_CREATE_BLOCK_HOSTING_VOLUME')
  if (autoBhv) cfg.autoCreateBlockHostingVolume = parseGoBool(autoBhv) ?? false
  const bhvSize = envInt(env, 'HEKETI_BLOCK_HOSTING_VOLUME_SIZE')
  if (bhvSize !== undefined) cfg.blockHostingVolumeSizeGiB = bhvSize > 0 ? bhvSize : 1024
  cfg.blockHostingVolumeOptions = str('HEKETI_BLOCK_HOSTING_VOLUME_OPTIONS') ?? cfg.blockHostingVolumeOptions
  const inflight = envInt(env, 'HEKETI_MAX_INFLIGHT_OPERATIONS')
  if (inflight !== undefined && inflight > 0) cfg.maxInflightOperations = inflight
  if (env['HEKETI_PRE_REQUEST_VOLUME_OPTIONS'] !== undefined)
    cfg.preRequestVolumeOptions = env['HEKETI_PRE_REQUEST_VOLUME_OPTIONS']
  if (env['HEKETI_POST_REQUEST_VOLUME_OPTIONS'] !== undefined)
    cfg.postRequestVolumeOptions = env['HEKETI_POST_REQUEST_VOLUME_OPTIONS']
  const zone = str('HEKETI_ZONE_CHECKING')
  if (zone) cfg.zoneChecking = zone === 'strict' ? 'strict' : 'none'
  const maxVols = envInt(env, 'HEKETI_GLUSTER_MAX_VOLUMES_PER_CLUSTER')
  if (maxVols !== undefined)
    cfg.maxVolumesPerCluster = Number.isNaN(maxVols) || maxVols === 0 ? 1000 : maxVols
  if (env['HEKETI_DISABLE_HEALTH_MONITOR'] === 'true') cfg.disableMonitor = true
  if (env['HEKETI_DISABLE_BACKGROUND_CLEANER'] === 'true') cfg.disableBackgroundCleaner = true
  cfg.haAdvertiseUrl = str('HEQET_ADVERTISE_URL') ?? cfg.haAdvertiseUrl
  cfg.haReplicaId = str('HEQET_REPLICA_ID') ?? cfg.haReplicaId
  const ttl = envInt(env, 'HEQET_LEASE_TTL_SEC')
  if (ttl !== undefined && ttl > 0) cfg.haLeaseTtlSec = ttl
  // a value that is not a number is refused (NaN fails the range check), not ignored
  const hold = envInt(env, 'HEQET_QUEUE_POLL_HOLD_MS')
  if (hold !== undefined) cfg.queuePollHoldMs = hold
  const election = str('HEQET_ELECTION')
  if (election) cfg.haElection = parseElection(election)
  const mockSize = envInt(env, 'HEKETI_MOCK_DEVICE_SIZE_GB')
  if (mockSize !== undefined && mockSize > 0) cfg.mockDeviceSizeGiB = mockSize
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`Unable to open config file ${path}: ${(err as Error).message}`)
  }
  return parseConfig(text, env)
}
