// A reader for openapi.yaml that needs no YAML dependency: it relies on the
// file's documented layout (top-level keys at column 0, paths at 2 spaces,
// methods and component names at 4 spaces, response codes at 8).
import { readFileSync } from 'node:fs'

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'])

export interface Operation {
  method: string
  path: string
  /** the operation's lines (indented 6+ spaces) */
  body: string[]
}

export interface OpenApiOutline {
  version: string
  operations: Operation[]
  /** section name → component names, e.g. schemas → [ClusterInfo, ...] */
  components: Map<string, string[]>
}

export function outline(text: string): OpenApiOutline {
  const operations: Operation[] = []
  const components = new Map<string, string[]>()
  let version = ''
  let top = ''
  let path = ''
  let section = ''
  let op: Operation | undefined
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue
    const topKey = /^([A-Za-z]\w*):\s*(.*)$/.exec(line)
    if (topKey) {
      top = topKey[1]!
      if (top === 'openapi') version = topKey[2]!.trim()
      op = undefined
      continue
    }
    if (top === 'paths') {
      const pathKey = /^ {2}(\/\S*):\s*$/.exec(line)
      if (pathKey) {
        path = pathKey[1]!
        op = undefined
        continue
      }
      const methodKey = /^ {4}([a-z]+):\s*$/.exec(line)
      if (methodKey) {
        op = METHODS.has(methodKey[1]!) ? { method: methodKey[1]!.toUpperCase(), path, body: [] } : undefined
        if (op) operations.push(op)
        continue
      }
      if (op && line.startsWith('      ')) op.body.push(line)
    } else if (top === 'components') {
      const sectionKey = /^ {2}(\w+):\s*$/.exec(line)
      if (sectionKey) {
        section = sectionKey[1]!
        components.set(section, [])
        continue
      }
      const nameKey = /^ {4}(\w+):\s*$/.exec(line)
      if (nameKey && section) components.get(section)!.push(nameKey[1]!)
    }
  }
  return { version, operations, components }
}

/** The response codes an operation documents, e.g. ['200', '401']. */
export function responseCodes(op: Operation): string[] {
  return op.body.flatMap((l) => {
    const m = /^ {8}'(\d{3})':/.exec(l)
    return m ? [m[1]!] : []
  })
}

/** openapi.yaml of this repository, outlined. */
export function readOpenApi(): OpenApiOutline {
  return outline(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8'))
}
