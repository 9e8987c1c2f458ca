// The part of kustomize deploy/ uses, to check an overlay's OUTPUT in tests
// without a kustomize binary: `resources` (files and directories with their
// own kustomization.yaml), `patches` with a target and a JSON 6902 op list
// (add / remove / replace / test; "-" appends), and strategic-merge patches
// that only say `$patch: delete`. Anything else throws, so a kustomization
// that outgrows this fails loudly instead of rendering wrong. `namespace`
// and `images` are applied as kustomize does for the fields deploy/ uses.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments, parse as parseYaml } from 'yaml'

type Obj = Record<string, any>

function loadDocs(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`)
    return d.toJS() as Obj
  })
}

const KNOWN = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images', 'patches'])

export function renderKustomization(dir: string): Obj[] {
  const k = loadDocs(join(dir, 'kustomization.yaml'))[0]!
  for (const key of Object.keys(k))
    if (!KNOWN.has(key)) throw new Error(`${dir}: kustomize field ${key} not supported here`)
  let objects: Obj[] = []
  for (const r of k['resources'] ?? []) {
    const path = join(dir, r)
    if (!existsSync(path)) throw new Error(`${dir}: resource ${r} not found`)
    objects.push(...(statSync(path).isDirectory() ? renderKustomization(path) : loadDocs(path)))
  }
  for (const p of k['patches'] ?? []) objects = applyPatch(objects, p, dir)
  if (k['namespace']) {
    for (const o of objects) {
      if (!CLUSTER_SCOPED.has(o['kind'])) o['metadata']['namespace'] = k['namespace']
      for (const s of o['subjects'] ?? []) if (s['kind'] === 'ServiceAccount') s['namespace'] = k['namespace']
    }
  }
  for (const img of k['images'] ?? []) {
    for (const c of containersOf(objects)) {
      if (c['image'] === img['name']) c['image'] = `${img['newName'] ?? img['name']}:${img['newTag']}`
    }
  }
  return objects
}

const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'StorageClass',
  'CSIDriver',
])

function containersOf(objects: Obj[]): Obj[] {
  return objects.flatMap((o) => {
    const pod = o['spec']?.['template']?.['spec']
    return pod ? [...(pod['containers'] ?? []), ...(pod['initContainers'] ?? [])] : []
  })
}

function applyPatch(objects: Obj[], p: Obj, dir: string): Obj[] {
  if (typeof p['patch'] !== 'string') throw new Error(`${dir}: only inline patches are supported`)
  const body = parseYaml(p['patch']) as unknown
  if (Array.isArray(body)) {
    const { kind, name } = p['target'] ?? {}
    const hits = objects.filter((o) => o['kind'] === kind && o['metadata']['name'] === name)
    if (hits.length !== 1)
      throw new Error(`${dir}: patch target ${kind} ${name} matched ${hits.length} objects`)
    for (const op of body as Obj[]) applyOp(hits[0]!, op, `${dir}: ${kind} ${name}`)
    return objects
  }
  const smp = body as Obj
  if (smp['$patch'] !== 'delete')
    throw new Error(`${dir}: only "$patch: delete" strategic-merge patches are supported`)
  const before = objects.length
  const rest = objects.filter(
    (o) => !(o['kind'] === smp['kind'] && o['metadata']['name'] === smp['metadata']['name']),
  )
  if (rest.length !== before - 1)
    throw new Error(`${dir}: delete of ${smp['kind']} ${smp['metadata']['name']} matched nothing`)
  return rest
}

function applyOp(doc: Obj, op: Obj, where: string): void {
  const parts = String(op['path'])
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
  const last = parts.pop()!
  let parent: any = doc
  for (const part of parts) {
    parent = parent?.[Array.isArray(parent) ? Number(part) : part]
    if (parent === undefined) throw new Error(`${where}: ${op['op']} ${op['path']}: no such path`)
  }
  const index = Array.isArray(parent) ? (last === '-' ? parent.length : Number(last)) : undefined
  switch (op['op']) {
    case 'test': {
      const value = index === undefined ? parent[last] : parent[index]
      if (JSON.stringify(value) !== JSON.stringify(op['value']))
        throw new Error(`${where}: test ${op['path']} failed: ${JSON.stringify(value)}`)
      return
    }
    case 'add':
      if (index === undefined) parent[last] = op['value']
      else parent.splice(index, 0, op['value'])
      return
    case 'replace':
      if (index === undefined ? !(last in parent) : index >= parent.length)
        throw new Error(`${where}: replace ${op['path']}: no such path`)
      if (index === undefined) parent[last] = op['value']
      else parent[index] = op['value']
      return
    case 'remove':
      if (index === undefined ? !(last in parent) : index >= parent.length)
        throw new Error(`${where}: remove ${op['path']}: no such path`)
      if (index === undefined) delete parent[last]
      else parent.splice(index, 1)
      return
    default:
      throw new Error(`${where}: JSON patch op ${op['op']} not supported`)
  }
}
