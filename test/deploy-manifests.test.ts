// deploy/: every manifest against the Kubernetes API schemas, and the RBAC
// rules against what the code does with the API.
//
// Schemas: kubernetes-models (JSON schemas generated from Kubernetes' published
// OpenAPI definitions, v1.27; types, enums, required fields) plus the model
// attribute maps of @kubernetes/client-node (generated from the same
// definitions, a newer release) for fields the API does not know, which the
// first does not reject. No schema is written here.
//
// RBAC: the kube executor is run against the fake API server in each of its
// pod-lookup modes and every request it makes is turned into the RBAC
// permission the API server checks; the Role must grant exactly those. The
// same for the Kubernetes Lease election of deploy/ha (acquire, renew,
// release) and its Role.
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import * as k8s from '@kubernetes/client-node'
import t, { type Test } from 'tap'
import { parseAllDocuments } from 'yaml'
import { kubeLeaseApi } from '../api/kube-lease.ts'
import { parseEtcdUrl } from '../db/etcd.ts'
import { KubeLeaseElection, type TermClient } from '../db/kube-lease-election.ts'
import { KubeRunner, kubeConfigFromHeketi } from '../executors/kube.ts'
import { parseConfig } from '../src/config.ts'
import { DEFAULT_DRIVER_NAME, parseCsiArgs } from '../src/csi/main.ts'
import { FakeKube, type FakePod, spawnLocally } from './e2e/lib/fake-kube.ts'
import { renderKustomization } from './helpers/kustomize.ts'

const ROOT = join(import.meta.dirname, '..')
const DEPLOY = join(ROOT, 'deploy')

type Obj = Record<string, any>

interface Manifest {
  file: string
  doc: Obj
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return yamlFiles(path)
    return e.name.endsWith('.yaml') ? [path] : []
  })
}

function load(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`)
    return d.toJS() as Obj
  })
}

const manifests: Manifest[] = yamlFiles(DEPLOY)
  .filter((f) => !f.endsWith('kustomization.yaml'))
  .flatMap((file) => load(file).map((doc) => ({ file: relative(ROOT, file), doc })))

/** kubernetes-models' module for an apiVersion: v1, apps/v1, storage.k8s.io/v1 … */
async function modelClass(apiVersion: string, kind: string): Promise<new (o: Obj) => { validate(): void }> {
  const mod = (await import(`kubernetes-models/${apiVersion}`)) as Record<string, unknown>
  const cls = mod[kind]
  if (typeof cls !== 'function') throw new Error(`kubernetes-models has no ${apiVersion} ${kind}`)
  return cls as new (
    o: Obj,
  ) => { validate(): void }
}

interface Attribute {
  baseName: string
  type: string
}

/** Fields of `value` that the client-node model of `type` does not declare (dotted paths). */
function unknownFields(value: unknown, type: string, path: string): string[] {
  if (value === null || value === undefined) return []
  const array = /^Array<(.+)>$/.exec(type)
  if (array)
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`)) : []
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type)
  if (map) {
    return typeof value === 'object'
      ? Object.entries(value as Obj).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`))
      : []
  }
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] }>)[type]
  if (!model?.getAttributeTypeMap || typeof value !== 'object') return []
  const attributes = model.getAttributeTypeMap()
  return Object.entries(value as Obj).flatMap(([key, v]) => {
    const attribute = attributes.find((a) => a.baseName === key)
    return attribute ? unknownFields(v, attribute.type, `${path}.${key}`) : [`${path}.${key}`]
  })
}

/** client-node's model name: V1Deployment, V1CSIDriver, V1ClusterRole … */
function clientModel(doc: Obj): string {
  const version = String(doc['apiVersion']).split('/').pop()!
  return `${version[0]!.toUpperCase()}${version.slice(1)}${doc['kind']}`
}

t.test('every manifest is valid for the Kubernetes API', async (t) => {
  t.ok(manifests.length >= 15, `${manifests.length} objects`)
  for (const { file, doc } of manifests) {
    const name = `${file}: ${doc['kind']} ${doc['metadata']?.['name']}`
    const Model = await modelClass(doc['apiVersion'], doc['kind'])
    t.doesNotThrow(() => new Model(doc).validate(), `${name} (schema)`)
    const model = clientModel(doc)
    t.ok((k8s as Obj)[model], `${name}: client-node knows ${model}`)
    t.same(unknownFields(doc, model, ''), [], `${name} (no unknown fields)`)
  }
})

t.test('the validators can fail', async (t) => {
  const Deployment = await modelClass('apps/v1', 'Deployment')
  const broken = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x' },
    spec: {
      selector: {},
      template: { spec: { containers: [{ name: 'a', image: 'b', ports: [{ containerPort: 'http' }] }] } },
    },
  }
  t.throws(() => new Deployment(broken).validate(), /containerPort must be integer/)
  const typo = structuredClone(broken) as Obj
  typo['spec']['template']['spec']['containers'][0]['ports'] = [{ containerPort: 80 }]
  typo['spec']['template']['spec']['containers'][0]['imagePullPolicyy'] = 'Always'
  t.same(unknownFields(typo, 'V1Deployment', ''), ['.spec.template.spec.containers[0].imagePullPolicyy'])
})

t.test('kustomizations: every manifest listed once, the layouts as documented', async (t) => {
  const kustomization = (dir: string) => load(join(DEPLOY, dir, 'kustomization.yaml'))[0]!
  const yamlIn = (dir: string) =>
    readdirSync(join(DEPLOY, dir)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  t.same(kustomization('.')['resources'], ['core', 'csi'], 'Kubernetes >= 1.26: core and CSI')
  t.same(
    kustomization('legacy')['resources'],
    ['../core', 'storageclass-in-tree.yaml'],
    'older: core and in-tree',
  )
  t.same(yamlIn('.'), [], 'no stray manifest at the top')
  for (const dir of ['core', 'csi'])
    t.same([...kustomization(dir)['resources']].sort(), yamlIn(dir).sort(), dir)
  t.same(yamlIn('legacy'), ['storageclass-in-tree.yaml'])
  t.same(
    kustomization('ha')['resources'],
    ['../core', '../csi', ...yamlIn('ha').sort()],
    'replicated: core, CSI and every file of ha/',
  )
  for (const dir of ['.', 'legacy', 'ha']) {
    const k = kustomization(dir)
    t.equal(k['namespace'], 'glusterfs')
    const images = new Set(
      manifests
        .filter((m) => /^deploy\/(core|csi|ha)\//.test(m.file))
        .flatMap(({ doc }) =>
          [...(doc['spec']?.['template']?.['spec']?.['containers'] ?? [])].map((c: Obj) => c['image']),
        ),
    )
    for (const { name } of k['images']) t.ok(images.has(name), `${dir}: image ${name} is used`)
  }
})

/** an object of deploy/core or deploy/csi, or of `dirs` (e.g. deploy/legacy) */
const find = (kind: string, name: string, dirs = ['deploy/core', 'deploy/csi']): Obj => {
  const found = manifests.find(
    (m) =>
      dirs.some((d) => m.file.startsWith(`${d}/`)) &&
      m.doc['kind'] === kind &&
      m.doc['metadata']['name'] === name,
  )
  if (!found) throw new Error(`no ${kind} ${name} in ${dirs.join(', ')}`)
  return found.doc
}

t.test('hyper-converged layout', async (t) => {
  const gluster = find('DaemonSet', 'glusterfs')['spec']['template']
  t.equal(gluster['metadata']['labels']['glusterfs-node'], 'pod', 'label key the kube executor looks for')
  t.equal(gluster['spec']['hostNetwork'], true)
  const container = gluster['spec']['containers'][0]
  t.equal(container['securityContext']['privileged'], true)
  const hostPaths = new Map<string, string>(
    gluster['spec']['volumes'].map((v: Obj) => [v['name'], v['hostPath']?.['path']]),
  )
  const mounted = container['volumeMounts'].map((m: Obj) => [m['mountPath'], hostPaths.get(m['name'])])
  for (const path of ['/dev', '/var/lib/glusterd', '/var/lib/heketi', '/etc/glusterfs']) {
    t.ok(
      mounted.some(([at, host]: string[]) => at === path && host === path),
      `${path} from the host`,
    )
  }

  const heqet = find('Deployment', 'heqet')['spec']
  t.equal(heqet['replicas'], 1)
  t.equal(heqet['strategy']['type'], 'Recreate')
  const pod = heqet['template']['spec']
  t.equal(pod['serviceAccountName'], 'heqet')
  t.equal(pod['securityContext']['runAsNonRoot'], true)
  const server = pod['containers'][0]
  t.equal(server['readinessProbe']['httpGet']['path'], '/hello')
  t.equal(server['livenessProbe']['httpGet']['path'], '/hello')
  const keyEnv = server['env'].map((e: Obj) => [e['name'], e['valueFrom']?.['secretKeyRef']?.['name']])
  t.same(keyEnv, [
    ['HEKETI_ADMIN_KEY', 'heqet-keys'],
    ['HEKETI_USER_KEY', 'heqet-keys'],
  ])
  const db = pod['volumes'].find((v: Obj) => v['name'] === 'db')
  t.equal(db['persistentVolumeClaim']['claimName'], 'heqet-db')
  const config = JSON.parse(find('ConfigMap', 'heqet-config')['data']['heketi.json'])
  t.equal(config.glusterfs.executor, 'kubernetes')
  t.equal(config.glusterfs.kubeexec.gluster_daemonset, true)
  t.equal(config.glusterfs.db, '/var/lib/heketi/heketi.db', 'DB on the claim')
  t.equal(find('Service', 'heqet')['spec']['ports'][0]['port'], 8080)
})

t.test('replicated layout (deploy/ha): 3 heqet replicas on a 3-member etcd', async (t) => {
  const objects = renderKustomization(join(DEPLOY, 'ha'))
  const one = (kind: string, name: string): Obj => {
    const hits = objects.filter((o) => o['kind'] === kind && o['metadata']['name'] === name)
    if (hits.length !== 1) throw new Error(`${hits.length} ${kind} ${name} in the rendered overlay`)
    return hits[0]!
  }
  for (const doc of objects) {
    const name = `rendered ha: ${doc['kind']} ${doc['metadata']['name']}`
    const Model = await modelClass(doc['apiVersion'], doc['kind'])
    t.doesNotThrow(() => new Model(doc).validate(), `${name} (schema)`)
    t.same(unknownFields(doc, clientModel(doc), ''), [], `${name} (no unknown fields)`)
    if (
      doc['kind'] !== 'Namespace' &&
      !['ClusterRole', 'ClusterRoleBinding', 'StorageClass', 'CSIDriver'].includes(doc['kind'])
    )
      t.equal(doc['metadata']['namespace'], 'glusterfs', `${name} in glusterfs`)
  }
  t.notOk(
    objects.some((o) => o['kind'] === 'PersistentVolumeClaim'),
    'no LMDB claim',
  )

  const heqet = one('Deployment', 'heqet')['spec']
  t.equal(heqet['replicas'], 3)
  t.same(heqet['strategy'], { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } })
  const pod = heqet['template']['spec']
  const server = pod['containers'][0]
  t.same(
    pod['volumes'].map((v: Obj) => v['name']),
    ['config', 'tmp'],
    'no DB volume',
  )
  t.same(
    server['volumeMounts'].map((m: Obj) => m['name']),
    ['config', 'tmp'],
  )
  t.equal(server['image'], 'localhost:5000/heqet:0.1.0')
  const env = new Map<string, Obj>(server['env'].map((e: Obj) => [e['name'], e]))
  t.equal(env.get('POD_IP')?.['valueFrom']['fieldRef']['fieldPath'], 'status.podIP')
  t.equal(env.get('POD_NAME')?.['valueFrom']['fieldRef']['fieldPath'], 'metadata.name')
  t.equal(
    env.get('HEQET_ADVERTISE_URL')?.['value'],
    'http://$(POD_IP):8080',
    'writes are forwarded to the pod IP',
  )
  t.equal(env.get('HEQET_REPLICA_ID')?.['value'], '$(POD_NAME)')
  const names = [...env.keys()]
  t.ok(
    names.indexOf('POD_IP') < names.indexOf('HEQET_ADVERTISE_URL'),
    '$(POD_IP) is defined before it is used',
  )
  t.equal(
    pod['affinity']['podAntiAffinity']['preferredDuringSchedulingIgnoredDuringExecution'][0][
      'podAffinityTerm'
    ]['topologyKey'],
    'kubernetes.io/hostname',
  )
  t.equal(one('PodDisruptionBudget', 'heqet')['spec']['maxUnavailable'], 1)

  // heketi.json as heqet reads it, with the keys from the Secret's env
  const text = one('ConfigMap', 'heqet-config')['data']['heketi.json']
  const config = parseConfig(text, {
    HEKETI_ADMIN_KEY: 'a',
    HEKETI_USER_KEY: 'u',
    HEQET_ADVERTISE_URL: 'http://10.0.0.5:8080',
    HEQET_REPLICA_ID: 'heqet-7d9f-abcde',
  })
  t.ok(config.adminKey && config.userKey, 'JWT keys from the env (required with etcd)')
  t.equal(config.haAdvertiseUrl, 'http://10.0.0.5:8080', 'the advertised URL from the env the pod sets')
  t.equal(config.haReplicaId, 'heqet-7d9f-abcde')
  t.equal(config.haLeaseTtlSec, 10)
  t.equal(config.haElection, 'kubernetes', 'the leader is elected on a Kubernetes Lease')
  t.same(
    config.haKubeLease,
    {
      namespace: '',
      name: 'heqet-leader',
      leaseDurationSec: 15,
      renewDeadlineSec: 10,
      retryPeriodSec: 2,
      kubeconfig: '',
    },
    "the Lease heqet-leader in the pod's namespace, client-go's usual times, the service account",
  )
  t.equal(pod['serviceAccountName'], 'heqet')
  t.not(pod['automountServiceAccountToken'], false, 'the service account token is mounted (in-cluster auth)')
  const electionRole = one('Role', 'heqet-leader-election')
  t.same(
    electionRole['rules'].filter((r: Obj) => r['resourceNames']).flatMap((r: Obj) => r['resourceNames']),
    [config.haKubeLease.name],
    'get/update only on the configured Lease',
  )
  t.same(one('RoleBinding', 'heqet-leader-election')['subjects'], [
    { kind: 'ServiceAccount', name: 'heqet', namespace: 'glusterfs' },
  ])
  const db = parseEtcdUrl(config.dbPath)
  t.equal(db.prefix, 'heqet')

  // the db URL names exactly the etcd StatefulSet's members, on their client port
  const etcd = one('StatefulSet', 'heqet-etcd')['spec']
  t.equal(etcd['replicas'], 3)
  t.equal(etcd['serviceName'], 'heqet-etcd')
  const members = Array.from({ length: etcd['replicas'] }, (_, i) => `heqet-etcd-${i}.${etcd['serviceName']}`)
  t.same(
    db.hosts,
    members.map((m) => `http://${m}:2379`),
  )
  const args: string[] = etcd['template']['spec']['containers'][0]['args']
  const arg = (flag: string) => args.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3)
  t.equal(arg('initial-cluster'), members.map((m, i) => `heqet-etcd-${i}=http://${m}:2380`).join(','))
  t.equal(Number(arg('max-txn-ops')), db.maxTxnOps, "etcd's --max-txn-ops = the URL's max-txn-ops")
  t.equal(etcd['template']['spec']['containers'][0]['image'], 'quay.io/coreos/etcd:v3.5.17')
  const headless = one('Service', 'heqet-etcd')['spec']
  t.equal(headless['clusterIP'], 'None')
  t.equal(headless['publishNotReadyAddresses'], true)
  t.equal(one('PodDisruptionBudget', 'heqet-etcd')['spec']['maxUnavailable'], 1, 'a quorum stays')
  const policy = one('NetworkPolicy', 'heqet-etcd')['spec']
  t.same(policy['ingress'][0]['from'], [
    { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'heqet' } } },
  ])
  t.same(
    policy['ingress'][0]['ports'],
    [{ port: 2379, protocol: 'TCP' }],
    'heqet pods reach the client port only',
  )
})

t.test('the kustomize subset renderer refuses what it does not know', async (t) => {
  const dir = t.testdir({
    'kustomization.yaml':
      'resources: [a.yaml]\npatches:\n  - target: {kind: ConfigMap, name: x}\n    patch: |-\n      - op: move\n        path: /data\n',
    'a.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\n',
  })
  t.throws(() => renderKustomization(dir), /op move not supported/)
})

t.test('CSI driver, controller and node plugin', async (t) => {
  t.equal(find('CSIDriver', 'heqet.gluster.org')['spec']['attachRequired'], false)
  const controller = find('Deployment', 'heqet-csi-controller')['spec']['template']['spec']
  const names = controller['containers'].map((c: Obj) => c['name'])
  t.same(names, ['heqet-csi', 'csi-provisioner', 'csi-resizer'])
  const driver = controller['containers'][0]
  t.same(driver['args'].slice(0, 3), ['csi', '--mode=controller', '--endpoint=unix:///csi/csi.sock'])
  t.ok(driver['args'].includes('--server=http://heqet.glusterfs.svc:8080'))
  t.equal(driver['env'][0]['name'], 'HEKETI_CLI_KEY')

  const node = find('DaemonSet', 'heqet-csi-node')['spec']['template']['spec']
  const plugin = node['containers'][0]
  t.same(plugin['args'].slice(0, 4), [
    'csi',
    '--mode=node',
    '--endpoint=unix:///csi/csi.sock',
    '--nodeid=$(NODE_NAME)',
  ])
  const kubelet = plugin['volumeMounts'].find((m: Obj) => m['mountPath'] === '/var/lib/kubelet')
  t.equal(kubelet['mountPropagation'], 'Bidirectional')
  const registrar = node['containers'].find((c: Obj) => c['name'] === 'node-driver-registrar')
  t.ok(
    registrar['args'].includes(
      '--kubelet-registration-path=/var/lib/kubelet/plugins/heqet.gluster.org/csi.sock',
    ),
  )
  t.equal(node['automountServiceAccountToken'], false, 'the node plugin has no API access')
  // the arguments as `heqet csi` reads them (api/main.ts passes what follows `csi`)
  const env = { HEKETI_CLI_KEY: 'from-the-secret' }
  const asRun = (args: string[]) => args.slice(1).map((a) => a.replace('$(NODE_NAME)', 'worker-1'))
  t.match(parseCsiArgs(asRun(driver['args']), env), {
    mode: 'controller',
    endpoint: 'unix:///csi/csi.sock',
    server: 'http://heqet.glusterfs.svc:8080',
    user: 'admin',
    secret: 'from-the-secret',
    driverName: DEFAULT_DRIVER_NAME,
  })
  t.match(parseCsiArgs(asRun(plugin['args']), env), { mode: 'node', nodeid: 'worker-1' })
  t.equal(DEFAULT_DRIVER_NAME, 'heqet.gluster.org', 'the CSIDriver object names the driver')
  const sc = find('StorageClass', 'glusterfs-replica3')
  t.equal(sc['provisioner'], 'heqet.gluster.org')
  const inTree = find('StorageClass', 'glusterfs-replica3', ['deploy/legacy'])
  t.equal(inTree['provisioner'], 'kubernetes.io/glusterfs', 'older clusters: the in-tree provisioner')
  t.equal(inTree['parameters']['resturl'], 'http://heqet.glusterfs.svc.cluster.local:8080')
})

// ---------------------------------------------------------------------------
// RBAC

type Permission = string // "group/resource:verb", group '' for the core API

/** Rules as the set of permissions they grant (no wildcards allowed in deploy/). */
function granted(rules: Obj[]): Set<Permission> {
  const out = new Set<Permission>()
  for (const rule of rules) {
    for (const group of rule['apiGroups'])
      for (const resource of rule['resources'])
        for (const verb of rule['verbs']) out.add(`${group}/${resource}:${verb}`)
  }
  return out
}

/**
 * The permissions the API server checks for a request, by its request-info
 * rules: GET on a collection is list (watch with ?watch=true), on an object
 * get, POST create; a WebSocket exec (GET) is checked as get on pods/exec,
 * and since Kubernetes 1.35 also as create.
 */
function permissionsOf(request: string): Permission[] {
  const [method, target] = request.split(' ') as [string, string]
  const url = new URL(target, 'http://api')
  const m = /^\/api\/v1\/namespaces\/[^/]+\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?$/.exec(url.pathname)
  if (!m) throw new Error(`unexpected request ${request}`)
  const [, resource, name, sub] = m
  const res = sub ? `${resource}/${sub}` : resource!
  if (method === 'POST') return [`/${res}:create`]
  if (method !== 'GET') throw new Error(`unexpected method in ${request}`)
  if (sub === 'exec') return [`/${res}:get`, `/${res}:create`]
  if (!name) return [url.searchParams.get('watch') === 'true' ? `/${res}:watch` : `/${res}:list`]
  return [`/${res}:get`]
}

async function executorRequests(t: Test): Promise<string[]> {
  const NS = 'glusterfs'
  const exec = (argv: string[], ctx: Parameters<typeof spawnLocally>[1]) => spawnLocally(argv, ctx)
  const pods: FakePod[] = [
    { name: 'by-label', nodeName: 'n1', labels: { 'glusterfs-node': 'n1' }, exec },
    { name: 'ds-pod', nodeName: 'node-b', labels: { 'glusterfs-node': 'pod' }, exec },
  ]
  const fake = new FakeKube({ pods, namespace: NS })
  await fake.start()
  const dir = t.testdir()
  const kubeconfig = await fake.writeKubeconfig(join(dir, 'kubeconfig'))
  const modes = [
    { host: 'n1', config: {} },
    { host: 'node-b', config: { glusterDaemonset: true } },
    { host: 'by-label', config: { usePodNames: true } },
  ]
  for (const { host, config } of modes) {
    const runner = new KubeRunner(
      { ...kubeConfigFromHeketi({ kubeconfig }, {}), ...config },
      { env: {}, serviceAccountDir: join(dir, 'none'), podCacheMs: 0 },
    )
    try {
      const [result] = await runner.runBatch(host, ['true'], { timeoutMinutes: 1 })
      t.equal(result?.exitCode, 0, `${JSON.stringify(config)}: command ran`)
    } finally {
      await runner.close()
    }
  }
  await fake.stop()
  return fake.requests
}

/** What the Lease election asks of the API server: acquire (create), renew, release, read. */
async function electionRequests(t: Test): Promise<{ requests: string[]; lease: string }> {
  const NS = 'glusterfs'
  const fake = new FakeKube({ namespace: NS })
  await fake.start()
  t.teardown(() => fake.stop())
  const dir = t.testdir()
  const kubeconfig = await fake.writeKubeconfig(join(dir, 'kubeconfig'))
  const lease = {
    namespace: '',
    name: 'heqet-leader',
    leaseDurationSec: 10,
    renewDeadlineSec: 5,
    retryPeriodSec: 0.1,
    kubeconfig,
  }
  // the term key in a map: the election's etcd side does not matter here
  const terms = new Map<string, { value: Buffer; rev: number }>()
  let rev = 1
  const client: TermClient = {
    kv: {
      range: async ({ key }) => {
        const kv = terms.get(key.toString())
        return { kvs: kv ? [{ key, value: kv.value, mod_revision: String(kv.rev) }] : [] }
      },
      txn: async ({ compare, success }) => {
        const [c] = compare
        const kv = terms.get(c!.key.toString())
        const ok = c!.target === 'Mod' ? String(kv?.rev) === c!.mod_revision : kv === undefined
        if (ok)
          for (const { request_put: p } of success)
            terms.set(p.key.toString(), { value: p.value, rev: ++rev })
        return { succeeded: ok, header: { revision: String(rev) } }
      },
    },
  }
  const election = new KubeLeaseElection({
    api: kubeLeaseApi(lease, { env: {}, serviceAccountDir: join(dir, 'none') }),
    client,
    prefix: 'heqet',
    id: 'r1',
    url: 'http://r1',
    leaseDurationSec: lease.leaseDurationSec,
    renewDeadlineMs: lease.renewDeadlineSec * 1000,
    retryPeriodMs: lease.retryPeriodSec * 1000,
    log: { info: () => {}, warn: () => {}, error: () => {} },
    onChange: () => {},
  })
  election.start()
  const renewed = () => election.isLeader() && fake.requests.filter((r) => r.startsWith('PUT ')).length >= 2
  for (let i = 0; i < 400 && !renewed(); i++) await new Promise((r) => setTimeout(r, 50))
  t.ok(renewed(), 'the Lease taken and renewed')
  await election.stop()
  t.equal(fake.leases.get(`${NS}/heqet-leader`)?.spec['holderIdentity'], '', 'taken, renewed, released')
  return { requests: fake.requests, lease: lease.name }
}

t.test('heqet leader-election Role: exactly what the Lease election does', async (t) => {
  const { requests, lease } = await electionRequests(t)
  const needed = new Set<string>()
  for (const request of requests) {
    const [method, path] = request.split(' ') as [string, string]
    const m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/glusterfs\/leases(?:\/([^/?]+))?$/.exec(path)
    if (!m) throw new Error(`unexpected request ${request}`)
    const verb = { GET: 'get', POST: 'create', PUT: 'update' }[method]
    if (!verb) throw new Error(`unexpected method in ${request}`)
    // a create names no object: it cannot be limited by resourceNames
    needed.add(`coordination.k8s.io/leases:${verb}${method === 'POST' ? '' : `@${m[1]}`}`)
  }
  t.same([...needed].sort(), [
    `coordination.k8s.io/leases:create`,
    `coordination.k8s.io/leases:get@${lease}`,
    `coordination.k8s.io/leases:update@${lease}`,
  ])
  const role = find('Role', 'heqet-leader-election', ['deploy/ha'])
  const grantedNamed = new Set<string>()
  for (const rule of role['rules'] as Obj[])
    for (const p of granted([rule]))
      for (const name of rule['resourceNames'] ?? ['']) grantedNamed.add(name ? `${p}@${name}` : p)
  t.same([...grantedNamed].sort(), [...needed].sort(), 'the Role grants exactly that')
  t.same(find('RoleBinding', 'heqet-leader-election', ['deploy/ha'])['roleRef'], {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'Role',
    name: 'heqet-leader-election',
  })
})

t.test('heqet Role: exactly what the kube executor does', async (t) => {
  const requests = await executorRequests(t)
  t.ok(requests.length >= 6, `${requests.length} API requests seen`)
  const needed = new Set(requests.flatMap(permissionsOf))
  const role = find('Role', 'heqet-executor')
  t.same([...granted(role['rules'])].sort(), [...needed].sort())
  const binding = find('RoleBinding', 'heqet-executor')
  t.same(binding['subjects'], [{ kind: 'ServiceAccount', name: 'heqet', namespace: 'glusterfs' }])
  t.same(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'heqet-executor' })
  t.notOk(
    manifests.some(
      ({ doc }) =>
        doc['kind'] === 'ClusterRoleBinding' && doc['subjects'].some((s: Obj) => s['name'] === 'heqet'),
    ),
    'no cluster-wide grant to heqet',
  )
})

/**
 * What the sidecars of the CSI controller use, per their upstream projects'
 * RBAC at the pinned images (deploy/README.md lists them). Changing an image
 * tag fails this test until the rules are checked again.
 */
const SIDECAR_RULES: Record<string, { clusterRole: string; permissions: Permission[] }> = {
  'registry.k8s.io/sig-storage/csi-provisioner:v5.1.0': {
    clusterRole: 'heqet-csi-provisioner',
    permissions: [
      ...['get', 'list', 'watch', 'create', 'patch', 'delete'].map((v) => `/persistentvolumes:${v}`),
      ...['get', 'list', 'watch', 'update'].map((v) => `/persistentvolumeclaims:${v}`),
      ...['get', 'list', 'watch'].map((v) => `storage.k8s.io/storageclasses:${v}`),
      ...['list', 'watch', 'create', 'update', 'patch'].map((v) => `/events:${v}`),
      ...['get', 'list'].map((v) => `snapshot.storage.k8s.io/volumesnapshots:${v}`),
      ...['get', 'list'].map((v) => `snapshot.storage.k8s.io/volumesnapshotcontents:${v}`),
      ...['get', 'list', 'watch'].map((v) => `storage.k8s.io/csinodes:${v}`),
      ...['get', 'list', 'watch'].map((v) => `/nodes:${v}`),
      ...['get', 'list', 'watch'].map((v) => `storage.k8s.io/volumeattachments:${v}`),
      'storage.k8s.io/volumeattributesclasses:get',
    ],
  },
  'registry.k8s.io/sig-storage/csi-resizer:v1.12.0': {
    clusterRole: 'heqet-csi-resizer',
    permissions: [
      ...['get', 'list', 'watch', 'patch'].map((v) => `/persistentvolumes:${v}`),
      ...['get', 'list', 'watch'].map((v) => `/persistentvolumeclaims:${v}`),
      ...['get', 'list', 'watch'].map((v) => `/pods:${v}`),
      '/persistentvolumeclaims/status:patch',
      ...['list', 'watch', 'create', 'update', 'patch'].map((v) => `/events:${v}`),
      ...['get', 'list', 'watch'].map((v) => `storage.k8s.io/volumeattributesclasses:${v}`),
    ],
  },
}
const LEADER_ELECTION = ['get', 'watch', 'list', 'delete', 'update', 'create'].map(
  (v) => `coordination.k8s.io/leases:${v}`,
)

t.test('CSI controller RBAC: its sidecars and nothing for the driver', async (t) => {
  const pod = find('Deployment', 'heqet-csi-controller')['spec']['template']['spec']
  const sidecars = pod['containers'].filter((c: Obj) => c['name'] !== 'heqet-csi').map((c: Obj) => c['image'])
  t.same(sidecars.sort(), Object.keys(SIDECAR_RULES).sort(), 'a rule set for every sidecar image')
  const sa = pod['serviceAccountName']
  for (const [image, { clusterRole, permissions }] of Object.entries(SIDECAR_RULES)) {
    t.same([...granted(find('ClusterRole', clusterRole)['rules'])].sort(), [...permissions].sort(), image)
    const binding = find('ClusterRoleBinding', clusterRole)
    t.same(binding['subjects'], [{ kind: 'ServiceAccount', name: sa, namespace: 'glusterfs' }])
  }
  t.same([...granted(find('Role', 'heqet-csi-leader-election')['rules'])].sort(), [...LEADER_ELECTION].sort())
  for (const c of pod['containers'].filter((c: Obj) => c['name'] !== 'heqet-csi')) {
    t.ok(c['args'].includes('--leader-election'), `${c['name']} elects a leader (the Lease rules)`)
  }
  // the driver (src/) is a client of heqet's REST API: only executors/kube.ts (and the Lease
  // election's client, api/kube-lease.ts) talk to Kubernetes
  const sources = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    )
  const users = ['src', 'api', 'db', 'executors']
    .flatMap((d) => sources(join(ROOT, d)))
    .filter((f) => readFileSync(f, 'utf8').includes("from '@kubernetes/client-node'"))
    .map((f) => relative(ROOT, f))
  t.same(users, ['api/kube-lease.ts', 'executors/kube.ts'])
})
