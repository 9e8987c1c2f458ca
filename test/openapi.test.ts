// openapi.yaml and the server agree: every registered route is documented
// and every documented operation is served. The file is read line by line
// (no YAML dependency), relying on its documented layout: top-level keys at
// column 0, paths at 2 spaces, methods and component names at 4 spaces.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { makeApp } from './helpers/app.ts'
import { outline, responseCodes } from './helpers/openapi-outline.ts'

const spec = outline(readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8'))
const key = (method: string, path: string) => `${method} ${path}`

t.test('the outline reader sees the document', async (t) => {
  t.equal(spec.version, '3.0.3')
  t.ok(spec.operations.length >= 30, `${spec.operations.length} operations`)
  t.equal(
    new Set(spec.operations.map((o) => key(o.method, o.path))).size,
    spec.operations.length,
    'no operation listed twice',
  )
})

t.test('every registered route is documented, every documented route is registered', async (t) => {
  const app = await makeApp(t)
  const served = new Set(app.routes.map((r) => key(r.method, r.path)))
  const documented = new Set(spec.operations.map((o) => key(o.method, o.path)))
  t.ok(served.size > 0)
  for (const route of served) t.ok(documented.has(route), `${route} is in openapi.yaml`)
  for (const op of documented) t.ok(served.has(op), `${op} is served`)
})

t.test('operations document their responses', async (t) => {
  for (const op of spec.operations) {
    const name = key(op.method, op.path)
    const codes = responseCodes(op)
    t.ok(codes.length > 0, `${name} has responses`)
    const isPublic = op.path === '/hello' || op.path === '/metrics'
    if (isPublic) {
      t.ok(
        op.body.some((l) => /^ {6}security: \[\]\s*$/.test(l)),
        `${name} needs no token`,
      )
      t.notOk(codes.includes('401'), `${name} never answers 401`)
    } else {
      t.ok(codes.includes('401'), `${name} documents 401`)
      t.notOk(
        op.body.some((l) => /^ {6}security:/.test(l)),
        `${name} uses the global bearer scheme`,
      )
    }
    if (!isPublic && op.method !== 'GET') t.ok(codes.includes('503'), `${name} documents 503`)
    if (op.path.includes('{id}')) t.ok(codes.includes('404'), `${name} documents 404`)
  }
})

t.test('async routes answer 202 and the queue documents its outcomes', async (t) => {
  const codesOf = (method: string, path: string) => {
    const op = spec.operations.find((o) => o.method === method && o.path === path)
    t.ok(op, `${method} ${path} documented`)
    return op ? responseCodes(op) : []
  }
  const asyncRoutes: [string, string][] = [
    ['POST', '/nodes'],
    ['DELETE', '/nodes/{id}'],
    ['POST', '/nodes/{id}/state'],
    ['POST', '/devices'],
    ['DELETE', '/devices/{id}'],
    ['POST', '/devices/{id}/state'],
    ['GET', '/devices/{id}/resync'],
    ['POST', '/volumes'],
    ['DELETE', '/volumes/{id}'],
    ['POST', '/volumes/{id}/expand'],
    ['POST', '/volumes/{id}/clone'],
    ['POST', '/volumes/{id}/block-restriction'],
    ['POST', '/bricks/to-evict/{id}'],
    ['POST', '/operations/pending/cleanup'],
  ]
  for (const [method, path] of asyncRoutes)
    t.ok(codesOf(method, path).includes('202'), `${method} ${path} 202`)
  t.same(codesOf('GET', '/queue/{id}').sort(), ['200', '204', '303', '400', '401', '404', '500'])
  t.ok(codesOf('POST', '/clusters').includes('201'))
})

t.test('components exist', async (t) => {
  const has = (section: string, name: string) =>
    t.ok(spec.components.get(section)?.includes(name), `components.${section}.${name}`)
  has('securitySchemes', 'bearerAuth')
  has('parameters', 'Id')
  has('headers', 'QueueLocation')
  has('headers', 'XPending')
  for (const name of ['Accepted', 'Unauthorized', 'NotFound', 'Unparsable', 'Busy', 'Maintenance']) {
    has('responses', name)
  }
  for (const name of [
    'ClusterInfo',
    'ClusterList',
    'NodeAddRequest',
    'NodeInfo',
    'DeviceAddRequest',
    'DeviceInfo',
    'BrickInfo',
    'VolumeCreateRequest',
    'VolumeInfo',
    'VolumeList',
    'TagsChangeRequest',
    'StateRequest',
    'OperationsInfo',
    'PendingOperationList',
    'AdminStatus',
    'LogLevelInfo',
    'DbDump',
  ]) {
    has('schemas', name)
  }
})

t.test('every $ref points at a component that exists', async (t) => {
  const text = readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8')
  const refs = [...text.matchAll(/\$ref: '#\/components\/(\w+)\/(\w+)'/g)]
  t.ok(refs.length > 50)
  for (const [, section, name] of refs) {
    t.ok(spec.components.get(section!)?.includes(name!), `#/components/${section}/${name}`)
  }
})

t.test('the security scheme explains the qsh claim', async (t) => {
  const text = readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8')
  t.match(text, /^security:\n {2}- bearerAuth: \[\]$/m)
  t.match(text, /scheme: bearer/)
  t.match(text, /`qsh` \(required\)/)
  t.match(text, /SHA-256/)
})
