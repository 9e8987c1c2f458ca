// The CSI driver's pure parts: sizes, names, StorageClass parameters, the
// FUSE mount argv, mountinfo parsing, the JWT it signs, its command line,
// and its proto file against the CSI v1.10 specification's wire format.
import { createHash, createHmac } from 'node:crypto'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import t from 'tap'
import { fitsRange, sizeGiBFor } from '../src/csi/capacity.ts'
import { heketiToken } from '../src/csi/heqet-client.ts'
import { type HeqetVolume, mountServers, sameDurability } from '../src/csi/heqet-volumes.ts'
import { parseCsiArgs } from '../src/csi/main.ts'
import { glusterMountArgs, parseMountInfo } from '../src/csi/mounter.ts'
import { heqetVolumeName, sanitizeVolumeName } from '../src/csi/names.ts'
import { parseParameters, rawPerUsableGiB } from '../src/csi/parameters.ts'
import { PROTO_PATH } from '../src/csi/server.ts'

const GiB = 1024 ** 3
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))

t.test('sizes: whole GiB, rounded up, within the limit', async (t) => {
  t.equal(sizeGiBFor(null, 1), 1)
  t.equal(sizeGiBFor({ required_bytes: 1, limit_bytes: 0 }, 1), 1)
  t.equal(sizeGiBFor({ required_bytes: GiB + 1, limit_bytes: 0 }, 1), 2)
  t.equal(sizeGiBFor({ required_bytes: 0, limit_bytes: 3.5 * GiB }, 1), 1)
  t.equal(sizeGiBFor({ required_bytes: GiB, limit_bytes: 0 }, 4), 4, 'disperse 4+2 needs 4 GiB')
  t.throws(() => sizeGiBFor({ required_bytes: GiB, limit_bytes: 2 * GiB }, 4), { code: 11 })
  t.throws(() => sizeGiBFor({ required_bytes: 2 * GiB, limit_bytes: GiB }, 1), { code: 3 })
  t.throws(() => sizeGiBFor({ required_bytes: -1, limit_bytes: 0 }, 1), { code: 3 })
  t.ok(fitsRange(2, { required_bytes: 2 * GiB, limit_bytes: 2 * GiB }))
  t.notOk(fitsRange(2, { required_bytes: 3 * GiB, limit_bytes: 0 }))
  t.notOk(fitsRange(2, { required_bytes: 0, limit_bytes: GiB }))
})

t.test('names: the allow-list, never a leading dash, no collisions', async (t) => {
  t.equal(
    sanitizeVolumeName('pvc-0d2d2c5e-1c63-4b0a-9f3e-8d1f0c6b7a11'),
    'pvc-0d2d2c5e-1c63-4b0a-9f3e-8d1f0c6b7a11',
  )
  t.match(sanitizeVolumeName('a b'), /^a-b-[0-9a-f]{8}$/)
  t.not(sanitizeVolumeName('a b'), sanitizeVolumeName('a-b'))
  t.not(sanitizeVolumeName('a b'), sanitizeVolumeName('a.b'))
  t.match(sanitizeVolumeName('_x'), /^v_x-[0-9a-f]{8}$/)
  t.match(sanitizeVolumeName('Ω'), /^v--[0-9a-f]{8}$/)
  const long = sanitizeVolumeName('y'.repeat(300))
  t.equal(long.length, 128)
  t.not(long, sanitizeVolumeName(`${'y'.repeat(299)}z`))
  for (const n of ['-', '--x', '$(reboot)', '../../etc', 'a\nb', '']) {
    t.match(sanitizeVolumeName(n), /^[a-zA-Z0-9][a-zA-Z0-9_-]*$/, JSON.stringify(n))
  }
  const params = parseParameters({ volumenameprefix: 'team' })
  t.equal(heqetVolumeName('pvc-1', params), 'team_pvc-1')
})

t.test('StorageClass parameters', async (t) => {
  const defaults = parseParameters({})
  t.same(defaults.durability, { type: 'replicate', replicate: { replica: 3 } }, 'in-tree default replicate:3')
  t.equal(defaults.snapFactor, 1)
  t.same([defaults.gidMin, defaults.gidMax], [2000, 2147483647])
  t.same(parseParameters({ volumetype: 'replicate' }).durability, {
    type: 'replicate',
    replicate: { replica: 3 },
  })
  t.same(parseParameters({ volumetype: 'replicate:2' }).durability, {
    type: 'replicate',
    replicate: { replica: 2 },
  })
  t.same(parseParameters({ VOLUMETYPE: 'disperse:4:2' }).durability, {
    type: 'disperse',
    disperse: { data: 4, redundancy: 2 },
  })
  t.same(parseParameters({ clusterid: 'a, b,,c' }).clusters, ['a', 'b', 'c'])
  t.same(parseParameters({ volumeoptions: 'client.ssl on,server.ssl on' }).volumeOptions, [
    'client.ssl on',
    'server.ssl on',
  ])
  t.equal(rawPerUsableGiB(parseParameters({ volumetype: 'replicate:3', snapfactor: '2' })), 6)
  t.equal(rawPerUsableGiB(parseParameters({ volumetype: 'disperse:4:2' })), 1.5)
  const refused: Record<string, string>[] = [
    { volumetype: 'replicate:-1' },
    { volumetype: 'replicate:1:2' },
    { volumetype: 'none:1' },
    { snapfactor: '101' },
    { snapfactor: 'x' },
    { gidMax: '2147483648' },
    { gidMin: '3000', gidMax: '2500' },
    { restuser: 'admin' },
    { secretName: 's' },
    { 'csi.storage.k8s.io/fstype': 'xfs' },
  ]
  for (const bad of refused) {
    t.throws(() => parseParameters(bad), { code: 3 }, JSON.stringify(bad))
  }
})

t.test('the FUSE mount argv, checked before it runs', async (t) => {
  t.same(
    glusterMountArgs('10.0.0.1', 'vol_1', '/var/lib/kubelet/plugins/kubernetes.io/csi/x/globalmount', [
      'backup-volfile-servers=10.0.0.2:10.0.0.3',
      'ro',
    ]),
    [
      '-t',
      'glusterfs',
      '-o',
      'backup-volfile-servers=10.0.0.2:10.0.0.3,ro',
      '10.0.0.1:/vol_1',
      '/var/lib/kubelet/plugins/kubernetes.io/csi/x/globalmount',
    ],
  )
  t.same(glusterMountArgs('fd00::1', 'v', '/m', []), ['-t', 'glusterfs', 'fd00::1:/v', '/m'])
  const bad: [string, string, string, string[]][] = [
    ['10.0.0.1;reboot', 'v', '/m', []],
    ['-oexec', 'v', '/m', []],
    ['10.0.0.1', 'v w', '/m', []],
    ['10.0.0.1', 'v', 'relative', []],
    ['10.0.0.1', 'v', '/a/../b', []],
    ['10.0.0.1', 'v', '/m', ['ro,exec']],
    ['10.0.0.1', 'v', '/m', ['x y']],
  ]
  for (const args of bad) t.throws(() => glusterMountArgs(...args), JSON.stringify(args))
})

t.test('mountinfo', async (t) => {
  const text = [
    '36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
    '120 25 0:52 / /tmp/with\\040space rw,relatime shared:60 - fuse.glusterfs 10.0.0.1:/vol_a rw,user_id=0',
    '121 25 0:52 / /tmp/bind ro,relatime shared:60 - fuse.glusterfs 10.0.0.1:/vol_a rw,user_id=0',
  ].join('\n')
  const entries = parseMountInfo(text)
  t.equal(entries.length, 3)
  t.same(entries[1], {
    mountPoint: '/tmp/with space',
    fsType: 'fuse.glusterfs',
    source: '10.0.0.1:/vol_a',
    options: ['rw', 'relatime'],
  })
  t.ok(entries[2]!.options.includes('ro'))
})

t.test("heqet's mount info: backup servers from commas to a list", async (t) => {
  const v = {
    mount: {
      glusterfs: {
        hosts: ['10.0.0.2', '10.0.0.1', '10.0.0.3'],
        device: '10.0.0.2:vol_x',
        options: { 'backup-volfile-servers': '10.0.0.1,10.0.0.3' },
      },
    },
  } as unknown as HeqetVolume
  t.same(mountServers(v), ['10.0.0.2', '10.0.0.1', '10.0.0.3'])
  const single = {
    mount: { glusterfs: { hosts: ['h'], device: 'h:v', options: { 'backup-volfile-servers': '' } } },
  }
  t.same(mountServers(single as unknown as HeqetVolume), ['h'])
  const replicaDefault = { durability: { type: 'replicate', replicate: {} } } as unknown as HeqetVolume
  t.ok(sameDurability(replicaDefault, { type: 'replicate', replicate: { replica: 2 } }))
  t.notOk(sameDurability(replicaDefault, { type: 'replicate', replicate: { replica: 3 } }))
})

t.test("the driver's JWT is heketi's (heqet accepting it is shown by every controller test)", async (t) => {
  const token = heketiToken('admin', 'k', 'POST', '/volumes', 1_700_000_000)
  const [head, claims, sig] = token.split('.') as [string, string, string]
  const decode = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'))
  t.same(decode(head), { alg: 'HS256', typ: 'JWT' })
  t.same(decode(claims), {
    iss: 'admin',
    iat: 1_700_000_000,
    exp: 1_700_000_300,
    qsh: createHash('sha256').update('POST&/volumes').digest('hex'),
  })
  t.equal(sig, createHmac('sha256', 'k').update(`${head}.${claims}`).digest('base64url'))
})

t.test('command line', async (t) => {
  const env = { HEKETI_CLI_SERVER: 'http://h:8080', HEKETI_CLI_KEY: 'secret', HEKETI_CLI_USER: 'admin' }
  const o = parseCsiArgs(['--endpoint=unix:///csi/csi.sock', '--nodeid=n1'], env)
  t.match(o, {
    endpoint: 'unix:///csi/csi.sock',
    nodeid: 'n1',
    server: 'http://h:8080',
    secret: 'secret',
    mode: 'both',
  })
  t.equal(parseCsiArgs(['--endpoint=unix:///s', '--mode=node', '--nodeid=n'], {}).server, undefined)
  t.equal(parseCsiArgs(['--endpoint=unix:///s', '--mode=controller', '--server=http://x'], {}).user, 'admin')
  t.throws(() => parseCsiArgs(['--nodeid=n'], env), /--endpoint/)
  t.throws(() => parseCsiArgs(['--endpoint=unix:///s', '--mode=controller'], {}), /--server/)
  t.throws(() => parseCsiArgs(['--endpoint=unix:///s', '--mode=node'], {}), /--nodeid/)
  t.throws(() => parseCsiArgs(['--endpoint=unix:///s', '--nodeid=n', '--mode=both', '--mode=all'], env))
  t.throws(
    () => parseCsiArgs(['--endpoint=unix:///s', '--nodeid=n', '--mount-log-dir=/a,b'], env),
    /mount-log-dir/,
  )
})

// The wire format must be the specification's: every message, field
// (number, type, label), enum value and RPC of heqet's proto, compared with
// the spec's own proto where the reference copy is at hand.
const SPEC = [
  join(ROOT, '../shared/spec/csi/csi-v1.10.0.proto'),
  join(ROOT, '../../shared/spec/csi/csi-v1.10.0.proto'),
  '/work/shared/spec/csi/csi-v1.10.0.proto',
].find(existsSync)
t.test(
  'csi.proto matches the CSI v1.10 wire format',
  // CI (HEQET_E2E_REQUIRED=1) must not pass this check by skipping it
  { skip: SPEC || process.env['HEQET_E2E_REQUIRED'] === '1' ? false : 'no copy of the CSI spec proto' },
  async (t) => {
    if (!SPEC) {
      t.fail('no copy of the CSI spec proto (../shared/spec/csi) to compare with')
      return
    }
    const bundled = join(ROOT, 'node_modules/protobufjs')
    const load = (file: string) => {
      const root = new protobuf.Root()
      root.resolvePath = (origin, target) =>
        target.startsWith('google/protobuf/')
          ? join(bundled, target)
          : protobuf.util.path.resolve(origin, target)
      root.loadSync(file, { keepCase: true })
      root.resolveAll()
      return root
    }
    const ours = load(PROTO_PATH)
    const spec = load(SPEC!)
    let checked = 0
    const walk = (ns: protobuf.NamespaceBase) => {
      for (const obj of ns.nestedArray) {
        const other = spec.lookup(obj.fullName)
        t.ok(other, `${obj.fullName} exists in the spec`)
        if (obj instanceof protobuf.Type && other instanceof protobuf.Type) {
          for (const f of obj.fieldsArray) {
            const g = other.fields[f.name]
            checked++
            t.same(
              g && [g.id, g.resolvedType?.fullName ?? g.type, g.repeated, g.map, g.partOf?.name],
              [f.id, f.resolvedType?.fullName ?? f.type, f.repeated, f.map, f.partOf?.name],
              `${obj.fullName}.${f.name}`,
            )
          }
        } else if (obj instanceof protobuf.Enum && other instanceof protobuf.Enum) {
          for (const [name, value] of Object.entries(obj.values)) {
            checked++
            t.equal(other.values[name], value, `${obj.fullName}.${name}`)
          }
        } else if (obj instanceof protobuf.Service && other instanceof protobuf.Service) {
          for (const m of obj.methodsArray) {
            checked++
            const o = other.methods[m.name]
            t.same(o && [o.requestType, o.responseType], [m.requestType, m.responseType], `rpc ${m.name}`)
          }
        }
        if ('nestedArray' in obj && (obj as protobuf.Namespace).nestedArray.length)
          walk(obj as protobuf.Namespace)
      }
    }
    walk(ours.lookup('csi.v1') as protobuf.Namespace)
    t.ok(checked > 150, `${checked} fields, enum values and RPCs compared`)
  },
)
