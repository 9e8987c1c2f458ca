// KubeRunner against FakeKube: a real HTTP + WebSocket API server whose pods
// run their argv as local processes. No cluster, no root.

import { join } from 'node:path'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import {
  type KubeExecConfig,
  KubeRunner,
  type KubeRunnerRuntime,
  kubeConfigFromHeketi,
} from '../executors/kube.ts'
import { type ExecHandler, FakeKube, type FakePod, spawnLocally } from './e2e/lib/fake-kube.ts'

const NS = 'glusterfs'
const opts = { timeoutMinutes: 11 }
const local: ExecHandler = (argv, ctx) => spawnLocally(argv, ctx)

function glusterPod(name: string, node: string, exec: ExecHandler = local): FakePod {
  return { name, nodeName: node, labels: { 'glusterfs-node': node }, exec }
}

interface Setup {
  pods: FakePod[]
  config?: Partial<KubeExecConfig>
  runtime?: KubeRunnerRuntime
  token?: string
}

async function setup(t: Test, { pods, config = {}, runtime = {}, token }: Setup) {
  const fake = new FakeKube({ pods, namespace: NS })
  await fake.start()
  const dir = t.testdir()
  const kubeconfig = await fake.writeKubeconfig(join(dir, 'kubeconfig'), { token })
  const runner = new KubeRunner(
    { ...kubeConfigFromHeketi({ kubeconfig }, {}), ...config },
    { env: {}, serviceAccountDir: join(dir, 'no-service-account'), ...runtime },
  )
  t.teardown(async () => {
    await runner.close()
    await fake.stop()
  })
  return { fake, runner, dir }
}

t.test('kubeConfigFromHeketi reads heketi keys and HEKETI_KUBE_* overrides', async (t) => {
  t.same(kubeConfigFromHeketi({}, {}), {
    namespace: undefined,
    glusterDaemonset: false,
    usePodNames: false,
    maxConnections: 64,
    disableTimeoutPrefix: false,
  })
  const json = {
    namespace: 'a',
    gluster_daemonset: true,
    use_pod_names: false,
    max_connections: -1,
    disable_timeout_prefix: true,
    kubeconfig: '/etc/heqet/kubeconfig',
    host: 'https://legacy:8443', // ignored, as in heketi
  }
  t.same(kubeConfigFromHeketi(json, {}), {
    namespace: 'a',
    glusterDaemonset: true,
    usePodNames: false,
    maxConnections: -1,
    disableTimeoutPrefix: true,
    kubeconfig: '/etc/heqet/kubeconfig',
  })
  const env = {
    HEKETI_KUBE_NAMESPACE: 'b',
    HEKETI_KUBE_GLUSTER_DAEMONSET: 'No',
    HEKETI_KUBE_USE_POD_NAMES: '1',
  }
  const overridden = kubeConfigFromHeketi(json, env)
  t.equal(overridden.namespace, 'b')
  t.equal(overridden.glusterDaemonset, false)
  t.equal(overridden.usePodNames, true)
  t.equal(
    kubeConfigFromHeketi({ use_pod_names: true }, { HEKETI_KUBE_USE_POD_NAMES: 'maybe' }).usePodNames,
    true,
  )
  t.throws(() => kubeConfigFromHeketi({ max_connections: '10' }, {}), /max_connections/)
})

t.test('start-up errors and namespace sources', async (t) => {
  const dir = t.testdir({
    sa: { namespace: '  \n' },
    nosa: {},
    pod: { token: 'sa-token', namespace: 'gluster-ns\n' },
  })
  const base = kubeConfigFromHeketi({}, {})
  t.throws(() => new KubeRunner(base, { env: {}, serviceAccountDir: join(dir, 'sa') }), {
    message:
      'Unable to create configuration for Kubernetes: unable to load in-cluster configuration, ' +
      'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined',
  })

  const fake = new FakeKube({ pods: [] })
  await fake.start()
  t.teardown(() => fake.stop())
  const noNamespace = join(dir, 'kc-no-ns')
  await fake.writeKubeconfig(noNamespace, { namespace: '' })
  const fromFile = { ...base, kubeconfig: noNamespace }
  t.throws(() => new KubeRunner(fromFile, { env: {}, serviceAccountDir: join(dir, 'nosa') }), {
    message: `Namespace must be provided in configuration: File ${join(dir, 'nosa', 'namespace')} not found`,
  })
  // an empty service-account namespace file means `default`, as in heketi
  t.equal(new KubeRunner(fromFile, { env: {}, serviceAccountDir: join(dir, 'sa') }).namespace, 'default')
  t.equal(new KubeRunner({ ...fromFile, namespace: 'cfg' }, { env: {} }).namespace, 'cfg')
  // KUBECONFIG is honoured when no explicit path and not in a pod
  const withNs = await fake.writeKubeconfig(join(dir, 'kc-ns'), { namespace: 'ctx' })
  t.equal(new KubeRunner(base, { env: { KUBECONFIG: withNs } }).namespace, 'ctx')
  // in a pod the service account wins over KUBECONFIG; only an explicit path beats it
  const inPod = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: withNs }
  t.equal(new KubeRunner(base, { env: inPod, serviceAccountDir: join(dir, 'pod') }).namespace, 'gluster-ns')
  t.throws(() => new KubeRunner(base, { env: inPod, serviceAccountDir: join(dir, 'nosa') }), {
    message: `Unable to create configuration for Kubernetes: open ${join(dir, 'nosa', 'token')}: no such file or directory`,
  })
  const explicit = { ...base, kubeconfig: withNs }
  t.equal(new KubeRunner(explicit, { env: inPod, serviceAccountDir: join(dir, 'pod') }).namespace, 'ctx')
})

t.test('default rule: label glusterfs-node==<host>', async (t) => {
  const { fake, runner } = await setup(t, {
    pods: [glusterPod('g1', 'n1'), glusterPod('g2a', 'n2'), glusterPod('g2b', 'n2')],
  })
  await t.rejects(runner.runBatch('n0', ['true'], opts), {
    message: "No pods with the label 'glusterfs-node=n0' were found",
  })
  await t.rejects(runner.runBatch('n2', ['true'], opts), {
    message: "Found 2 pods sharing the same label 'glusterfs-node=n2': g2a, g2b",
  })
  const [r] = await runner.runBatch('n1', ['echo hello'], opts)
  t.same(r, { command: 'echo hello', exitCode: 0, stdout: 'hello\n', stderr: '' })
  t.equal(fake.execs.at(-1)?.pod, 'g1')
  t.ok(fake.requests.includes(`GET /api/v1/namespaces/${NS}/pods?labelSelector=glusterfs-node%3D%3Dn1`))
})

t.test('daemonset rule: label key glusterfs-node and spec.nodeName', async (t) => {
  const pods: FakePod[] = [
    { name: 'ds-x', nodeName: 'node-a', labels: { 'glusterfs-node': 'pod' }, exec: local },
    { name: 'ds-y', nodeName: 'node-b', labels: { 'glusterfs-node': 'pod' }, exec: local },
    { name: 'other', nodeName: 'node-c', labels: { app: 'web' }, exec: local },
  ]
  const { fake, runner } = await setup(t, { pods, config: { glusterDaemonset: true } })
  await runner.runBatch('node-b', ['true'], opts)
  t.equal(fake.execs.at(-1)?.pod, 'ds-y')
  t.ok(fake.requests.includes(`GET /api/v1/namespaces/${NS}/pods?labelSelector=glusterfs-node`))
  await t.rejects(runner.runBatch('node-c', ['true'], opts), {
    message: 'Unable to find a GlusterFS pod on host node-c with a label key glusterfs-node',
  })
})

t.test('pod-name rule, first container, argv shape', async (t) => {
  const pods = [{ name: 'gfs-0', containers: ['glusterfs', 'sidecar'], exec: local }]
  const { fake, runner } = await setup(t, { pods, config: { usePodNames: true } })
  await runner.runBatch('gfs-0', ['  echo  spaced  '], opts)
  t.same(fake.execs.at(-1), {
    namespace: NS,
    pod: 'gfs-0',
    container: 'glusterfs',
    argv: ['timeout', '11m', 'bash', '-c', 'echo  spaced'],
  })
  t.ok(fake.requests.includes(`GET /api/v1/namespaces/${NS}/pods/gfs-0`))
  await t.rejects(runner.runBatch('gfs-9', ['true'], opts), {
    message: 'Unable to get pod spec for gfs-9: HTTP 404: pods "gfs-9" not found',
  })
})

t.test('disable_timeout_prefix runs bash -c directly; 124 is then an ordinary exit', async (t) => {
  const { fake, runner } = await setup(t, {
    pods: [glusterPod('g1', 'n1')],
    config: { disableTimeoutPrefix: true },
  })
  const [r] = await runner.runBatch('n1', ['exit 124'], { timeoutMinutes: 5 })
  t.same(fake.execs.at(-1)?.argv, ['bash', '-c', 'exit 124'])
  t.equal(r.exitCode, 124)
})

t.test('stdout, stderr, exit codes; stop at the first failure', async (t) => {
  const { fake, runner } = await setup(t, { pods: [glusterPod('g1', 'n1')] })
  const big = 'x'.repeat(100_000) // several frames on the wire
  const results = await runner.runBatch(
    'n1',
    ["head -c 100000 /dev/zero | tr '\\0' x; echo oops >&2", 'echo fails >&2; exit 3', 'echo never'],
    opts,
  )
  t.equal(results.length, 2)
  t.equal(results[0].stdout, big)
  t.equal(results[0].stderr, 'oops\n')
  t.equal(results[0].exitCode, 0)
  t.same(results[1], { command: 'echo fails >&2; exit 3', exitCode: 3, stdout: '', stderr: 'fails\n' })
  t.equal(fake.execs.length, 2, 'the third command never reached the pod')

  // no stderr: the text heketi would show (client-go's error) takes its place
  const [silent] = await runner.runBatch('n1', ['exit 2'], opts)
  t.same(silent, {
    command: 'exit 2',
    exitCode: 2,
    stdout: '',
    stderr: 'command terminated with exit code 2',
  })
})

t.test('an exec failure without exit code counts as exit 1', async (t) => {
  const broken: ExecHandler = async () => {
    throw new Error('OCI runtime exec failed')
  }
  const { runner } = await setup(t, { pods: [glusterPod('g1', 'n1', broken)] })
  const [r] = await runner.runBatch('n1', ['true'], opts)
  t.same(r, { command: 'true', exitCode: 1, stdout: '', stderr: 'OCI runtime exec failed' })
})

t.test('exit 124 under the timeout prefix fails the batch with `timeout`', async (t) => {
  const { runner } = await setup(t, { pods: [glusterPod('g1', 'n1')] })
  // a real coreutils timeout of 0.6 s killing a real sleep
  await t.rejects(runner.runBatch('n1', ['sleep 5'], { timeoutMinutes: 0.01 }), { message: 'timeout' })
})

t.test('the client gives up when the remote timeout never comes back', async (t) => {
  let aborted = false
  const hang: ExecHandler = (_argv, ctx) =>
    new Promise((resolve) =>
      ctx.signal.addEventListener('abort', () => {
        aborted = true
        resolve({ code: 137, stdout: '', stderr: '' })
      }),
    )
  const { runner } = await setup(t, { pods: [glusterPod('g1', 'n1', hang)], runtime: { clientGraceMs: 150 } })
  const started = Date.now()
  await t.rejects(runner.runBatch('n1', ['sleep 600'], { timeoutMinutes: 0.001 }), { message: 'timeout' })
  t.ok(Date.now() - started >= 200, 'waited N minutes plus the grace')
  await new Promise((r) => setTimeout(r, 100))
  t.ok(aborted, 'the server saw the client hang up')
})

t.test('max_connections limits concurrent exec streams', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((r) => {
    release = r
  })
  let started!: () => void
  const running = new Promise<void>((r) => {
    started = r
  })
  const slow: ExecHandler = async (argv, ctx) => {
    started()
    await gate
    return spawnLocally(argv, ctx)
  }
  const { runner } = await setup(t, {
    pods: [glusterPod('g1', 'n1', slow), glusterPod('g2', 'n2')],
    config: { maxConnections: 1 },
  })
  const first = runner.runBatch('n1', ['echo one'], opts)
  await running
  await t.rejects(runner.runBatch('n2', ['true'], opts), {
    message: 'Too many kube exec connections active (1)',
  })
  release()
  t.equal((await first)[0].stdout, 'one\n')
  t.equal((await runner.runBatch('n2', ['true'], opts))[0].exitCode, 0, 'the slot is free again')
})

t.test('batches on one host never interleave; other hosts run in parallel', async (t) => {
  const events: string[] = []
  const recording: ExecHandler = async (argv, ctx) => {
    const command = argv.at(-1)
    events.push(`start ${command}`)
    const result = await spawnLocally(argv, ctx)
    events.push(`end ${command}`)
    return result
  }
  const { runner } = await setup(t, {
    pods: [glusterPod('g1', 'n1', recording), glusterPod('g2', 'n2', recording)],
  })
  const a = runner.runBatch('n1', ['sleep 0.3; echo a1', 'echo a2'], opts)
  const b = runner.runBatch('n1', ['echo b1', 'echo b2'], opts)
  const c = runner.runBatch('n2', ['echo c1'], opts)
  const [ra, rb] = await Promise.all([a, b, c])
  t.same(
    events.filter((e) => !e.includes('c1')),
    [
      'start sleep 0.3; echo a1',
      'end sleep 0.3; echo a1',
      'start echo a2',
      'end echo a2',
      'start echo b1',
      'end echo b1',
      'start echo b2',
      'end echo b2',
    ],
  )
  t.ok(events.indexOf('end echo c1') < events.indexOf('end sleep 0.3; echo a1'), 'n2 did not wait for n1')
  t.same(
    [...ra, ...rb].map((r) => r.stdout),
    ['a1\n', 'a2\n', 'b1\n', 'b2\n'],
  )
  // a failed batch does not block the host's queue
  await t.rejects(runner.runBatch('n1', ['sleep 5'], { timeoutMinutes: 0.005 }), { message: 'timeout' })
  t.equal((await runner.runBatch('n1', ['echo after'], opts))[0].stdout, 'after\n')
})

t.test('pod lookups are cached and redone when the pod went away', async (t) => {
  const { fake, runner } = await setup(t, { pods: [glusterPod('g1-abc', 'n1')] })
  const lookups = () => fake.requests.filter((r) => r.includes('labelSelector')).length
  await runner.runBatch('n1', ['true'], opts)
  await runner.runBatch('n1', ['true'], opts)
  t.equal(lookups(), 1, 'second batch used the cached pod')
  // the daemonset restarted the pod under a new name
  fake.pods = [glusterPod('g1-xyz', 'n1')]
  const [r] = await runner.runBatch('n1', ['echo moved'], opts)
  t.equal(r.stdout, 'moved\n')
  t.equal(lookups(), 2)
  t.same(
    fake.execs.map((e) => e.pod),
    ['g1-abc', 'g1-abc', 'g1-xyz'],
  )
})

t.test('a wrong token is refused (401) and surfaces as an error', async (t) => {
  const { fake, runner } = await setup(t, { pods: [glusterPod('g1', 'n1')], token: 'wrong' })
  await t.rejects(runner.runBatch('n1', ['true'], opts), {
    message: 'Failed to get list of pods: HTTP 401: Unauthorized',
  })
  t.equal(fake.execs.length, 0)

  // the exec upgrade itself checks the token too
  const url = `${fake.url.replace('http', 'ws')}/api/v1/namespaces/${NS}/pods/g1/exec?command=true&stdout=true`
  const ws = new WebSocket(url, ['v4.channel.k8s.io'], { headers: { Authorization: 'Bearer wrong' } })
  const err = await new Promise<Error>((resolve) => ws.on('error', resolve))
  t.match(err.message, /401/)
})

t.test('closed runner refuses new batches', async (t) => {
  const { runner } = await setup(t, { pods: [glusterPod('g1', 'n1')] })
  await runner.close()
  await t.rejects(runner.runBatch('n1', ['true'], opts), { message: 'kube runner is closed' })
})
