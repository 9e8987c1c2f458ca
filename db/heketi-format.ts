// The shape of heketi's JSON export (`heketi db export`, GET /db/dump;
// heketi-config-and-ops §7.5) and a strict reader for it. Keys match the Go
// way (exact first, then case-insensitive), missing or null values read as
// Go's zero value, and — unlike Go — a key heqet does not know is refused:
// a field of meaning silently dropped would be data lost in the migration.

export class ImportError extends Error {
  constructor(
    /** the entry the problem is in, e.g. `volume 6412…` or `document` */
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`${entry}: ${reason}`)
    this.name = 'ImportError'
  }
}

type Shape =
  | 'string'
  | 'int'
  | 'number'
  | 'bool'
  /** any JSON number, or null (pending-operation deltas) */
  | 'delta'
  /** accepted and ignored (heketi recomputes it on every read) */
  | 'ignored'
  | { list: Shape }
  | { map: Shape }
  | { fields: Readonly<Record<string, Shape>> }

const strings = { list: 'string' } as const
const stringMap = { map: 'string' } as const
const pending = { fields: { Id: 'string' } } as const

const CLUSTER = {
  fields: {
    Info: {
      fields: {
        id: 'string',
        nodes: strings,
        volumes: strings,
        block: 'bool',
        file: 'bool',
        blockvolumes: strings,
      },
    },
  },
} as const

const VOLUME = {
  fields: {
    Info: {
      fields: {
        size: 'int',
        clusters: strings,
        name: 'string',
        durability: {
          fields: {
            type: 'string',
            replicate: { fields: { replica: 'int' } },
            disperse: { fields: { data: 'int', redundancy: 'int' } },
          },
        },
        gid: 'int',
        // heketi answers from the outer GlusterVolumeOptions; this copy is never read
        glustervolumeoptions: { list: 'string' },
        block: 'bool',
        snapshot: { fields: { enable: 'bool', factor: 'number' } },
        id: 'string',
        cluster: 'string',
        // the mount info at the last update: every read recomputes it from the cluster
        mount: 'ignored',
        blockinfo: {
          fields: { freesize: 'int', reservedsize: 'int', blockvolume: strings, restriction: 'string' },
        },
      },
    },
    Bricks: strings,
    GlusterVolumeOptions: strings,
    Pending: pending,
  },
} as const

const BRICK = {
  fields: {
    Info: {
      fields: {
        id: 'string',
        path: 'string',
        device: 'string',
        node: 'string',
        volume: 'string',
        size: 'int',
      },
    },
    TpSize: 'int',
    PoolMetadataSize: 'int',
    Pending: pending,
    LvmThinPool: 'string',
    LvmLv: 'string',
    SubType: 'int',
  },
} as const

const NODE = {
  fields: {
    State: 'string',
    Info: {
      fields: {
        zone: 'int',
        hostnames: { fields: { manage: strings, storage: strings } },
        cluster: 'string',
        tags: stringMap,
        id: 'string',
      },
    },
    Devices: strings,
  },
} as const

const DEVICE = {
  fields: {
    State: 'string',
    Info: {
      fields: {
        name: 'string',
        tags: stringMap,
        storage: { fields: { total: 'int', free: 'int', used: 'int' } },
        id: 'string',
        paths: strings,
        pv_uuid: 'string',
      },
    },
    Bricks: strings,
    NodeId: 'string',
    ExtentSize: 'int',
  },
} as const

const BLOCK_VOLUME = {
  fields: {
    Info: {
      fields: {
        size: 'int',
        clusters: strings,
        name: 'string',
        hacount: 'int',
        auth: 'bool',
        id: 'string',
        blockvolume: {
          fields: { hosts: strings, iqn: 'string', lun: 'int', username: 'string', password: 'string' },
        },
        cluster: 'string',
        blockhostingvolume: 'string',
        usablesize: 'int',
      },
    },
    Pending: pending,
  },
} as const

const ATTRIBUTE = { fields: { Key: 'string', Value: 'string' } } as const

const PENDING_OPERATION = {
  fields: {
    Id: 'string',
    Timestamp: 'int',
    Type: 'int',
    Actions: { list: { fields: { Change: 'int', Id: 'string', Delta: 'delta' } } },
    Status: 'string',
  },
} as const

/** The eight sections of an export, each a map from id (or attribute name) to entry. */
export const SECTIONS = {
  clusterentries: { label: 'cluster', shape: CLUSTER },
  volumeentries: { label: 'volume', shape: VOLUME },
  brickentries: { label: 'brick', shape: BRICK },
  nodeentries: { label: 'node', shape: NODE },
  deviceentries: { label: 'device', shape: DEVICE },
  blockvolumeentries: { label: 'block volume', shape: BLOCK_VOLUME },
  dbattributeentries: { label: 'db attribute', shape: ATTRIBUTE },
  pendingoperations: { label: 'pending operation', shape: PENDING_OPERATION },
} as const

type Read<S> = S extends 'string'
  ? string
  : S extends 'int' | 'number'
    ? number
    : S extends 'bool'
      ? boolean
      : S extends 'delta'
        ? number | null
        : S extends 'ignored'
          ? undefined
          : S extends { list: infer E }
            ? Read<E>[]
            : S extends { map: infer E }
              ? Record<string, Read<E>>
              : S extends { fields: infer F }
                ? { -readonly [K in keyof F]: Read<F[K]> }
                : never

export type HeketiCluster = Read<typeof CLUSTER>
export type HeketiVolume = Read<typeof VOLUME>
export type HeketiBrick = Read<typeof BRICK>
export type HeketiNode = Read<typeof NODE>
export type HeketiDevice = Read<typeof DEVICE>
export type HeketiBlockVolume = Read<typeof BLOCK_VOLUME>
export type HeketiAttribute = Read<typeof ATTRIBUTE>
export type HeketiPendingOperation = Read<typeof PENDING_OPERATION>

export type HeketiDb = {
  -readonly [K in keyof typeof SECTIONS]: Record<string, Read<(typeof SECTIONS)[K]['shape']>>
}

function zero(shape: Shape): unknown {
  switch (shape) {
    case 'string':
      return ''
    case 'int':
    case 'number':
      return 0
    case 'bool':
      return false
    case 'delta':
      return null
    case 'ignored':
      return undefined
  }
  if ('list' in shape) return []
  if ('map' in shape) return {}
  return readFields(null, shape.fields, '', '')
}

function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${JSON.stringify(value)}`
}

function readValue(value: unknown, shape: Shape, entry: string, path: string): unknown {
  if (shape === 'ignored') return undefined
  if (value === null || value === undefined) return zero(shape)
  const wrong = (wanted: string) =>
    new ImportError(entry, `${path || 'the entry'} must be ${wanted}, not ${kindOf(value)}`)
  switch (shape) {
    case 'string':
      if (typeof value !== 'string') throw wrong('a string')
      return value
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw wrong('an integer')
      return value
    case 'number':
    case 'delta':
      if (typeof value !== 'number') throw wrong('a number')
      return value
    case 'bool':
      if (typeof value !== 'boolean') throw wrong('true or false')
      return value
  }
  if ('list' in shape) {
    if (!Array.isArray(value)) throw wrong('a list')
    return value.map((v, i) => readValue(v, shape.list, entry, `${path}[${i}]`))
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw wrong('an object')
  if ('map' in shape) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, readValue(v, shape.map, entry, `${path}.${k}`)]),
    )
  }
  return readFields(value as Record<string, unknown>, shape.fields, entry, path)
}

function readFields(
  value: Record<string, unknown> | null,
  fields: Readonly<Record<string, Shape>>,
  entry: string,
  path: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, shape] of Object.entries(fields)) out[name] = zero(shape)
  if (value === null) return out
  const names = Object.keys(fields)
  for (const [key, v] of Object.entries(value)) {
    // Go's rule: an exact match wins, otherwise the first case-insensitive one
    const name = names.find((n) => n === key) ?? names.find((n) => n.toLowerCase() === key.toLowerCase())
    const at = path ? `${path}.${key}` : key
    if (name === undefined) throw new ImportError(entry, `unknown field ${at}`)
    out[name] = readValue(v, fields[name]!, entry, at)
  }
  return out
}

/** Parse an export's text into its sections, refusing anything heqet cannot take whole. */
export function readHeketiExport(text: string): HeketiDb {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ImportError('document', `not JSON: ${(err as Error).message}`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ImportError('document', `must be a JSON object, not ${kindOf(parsed)}`)
  const doc = parsed as Record<string, unknown>
  const names = Object.keys(SECTIONS) as (keyof typeof SECTIONS)[]
  for (const key of Object.keys(doc)) {
    if (!names.some((n) => n.toLowerCase() === key.toLowerCase()))
      throw new ImportError('document', `unknown section ${key}`)
  }
  const out: Record<string, Record<string, unknown>> = {}
  for (const name of names) {
    const key =
      Object.keys(doc).find((k) => k === name) ?? Object.keys(doc).find((k) => k.toLowerCase() === name)
    const section = key === undefined ? null : doc[key]
    const { label, shape } = SECTIONS[name]
    if (section !== null && (typeof section !== 'object' || Array.isArray(section)))
      throw new ImportError('document', `${name} must be an object, not ${kindOf(section)}`)
    out[name] = Object.fromEntries(
      Object.entries((section ?? {}) as Record<string, unknown>).map(([id, entry]) => [
        id,
        readValue(entry, shape, `${label} ${id}`, ''),
      ]),
    )
  }
  return out as unknown as HeketiDb
}
