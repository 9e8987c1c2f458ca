// JSON request decoding with Go's encoding/json rules, because heketi's
// clients were written against them: keys match field names
// case-insensitively, unknown keys are ignored, null leaves the zero value,
// and a type mismatch fails the whole decode.

export type FieldType =
  | 'string'
  | 'int'
  | 'bool'
  | 'float'
  | { array: FieldType }
  | { map: FieldType }
  | { object: Schema }

export type Schema = { readonly [field: string]: FieldType }

export class DecodeError extends Error {}

type Decoded<T extends FieldType> = T extends 'string'
  ? string
  : T extends 'int' | 'float'
    ? number
    : T extends 'bool'
      ? boolean
      : T extends { array: infer E extends FieldType }
        ? Decoded<E>[]
        : T extends { map: infer E extends FieldType }
          ? Record<string, Decoded<E>>
          : T extends { object: infer S extends Schema }
            ? DecodedObject<S>
            : never

export type DecodedObject<S extends Schema> = { -readonly [K in keyof S]: Decoded<S[K]> }

function zero(type: FieldType): unknown {
  if (type === 'string') return ''
  if (type === 'int' || type === 'float') return 0
  if (type === 'bool') return false
  if ('array' in type) return []
  if ('map' in type) return {}
  return decodeObject(null, type.object, '')
}

function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number') return 'number'
  return typeof value
}

function typeName(type: FieldType): string {
  if (typeof type === 'string') return type === 'float' ? 'float64' : type
  if ('array' in type) return `[]${typeName(type.array)}`
  if ('map' in type) return `map[string]${typeName(type.map)}`
  return 'struct'
}

function mismatch(value: unknown, type: FieldType, path: string): DecodeError {
  const kind = jsonKind(value)
  const shown = kind === 'number' ? `number ${value}` : kind
  return new DecodeError(
    `json: cannot unmarshal ${shown} into Go struct field ${path} of type ${typeName(type)}`,
  )
}

function decodeValue(value: unknown, type: FieldType, path: string): unknown {
  if (value === null) return zero(type)
  if (type === 'string') {
    if (typeof value !== 'string') throw mismatch(value, type, path)
    return value
  }
  if (type === 'int') {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw mismatch(value, type, path)
    return value
  }
  if (type === 'float') {
    if (typeof value !== 'number') throw mismatch(value, type, path)
    return value
  }
  if (type === 'bool') {
    if (typeof value !== 'boolean') throw mismatch(value, type, path)
    return value
  }
  if ('array' in type) {
    if (!Array.isArray(value)) throw mismatch(value, type, path)
    return value.map((v) => decodeValue(v, type.array, path))
  }
  if ('map' in type) {
    if (typeof value !== 'object' || Array.isArray(value)) throw mismatch(value, type, path)
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value as object)) out[k] = decodeValue(v, type.map, path)
    return out
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw mismatch(value, type, path)
  return decodeObject(value as Record<string, unknown>, type.object, path)
}

function decodeObject(value: Record<string, unknown> | null, schema: Schema, path: string): unknown {
  const out: Record<string, unknown> = {}
  for (const [field, type] of Object.entries(schema)) out[field] = zero(type)
  if (value === null) return out
  const fields = Object.keys(schema)
  for (const [key, v] of Object.entries(value)) {
    // an exact match wins, otherwise the first case-insensitive one (Go's rule)
    const field = fields.find((f) => f === key) ?? fields.find((f) => f.toLowerCase() === key.toLowerCase())
    if (field === undefined) continue
    out[field] = decodeValue(v, schema[field]!, path ? `${path}.${field}` : field)
  }
  return out
}

/** Decode a request body; an empty or malformed body is a DecodeError. */
export function decodeGo<S extends Schema>(body: string, schema: S): DecodedObject<S> {
  if (body.trim() === '') throw new DecodeError('EOF')
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch (err) {
    throw new DecodeError((err as Error).message)
  }
  if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
    throw new DecodeError(`json: cannot unmarshal ${jsonKind(parsed)} into Go value of type struct`)
  }
  return decodeObject(parsed as Record<string, unknown> | null, schema, '') as DecodedObject<S>
}
