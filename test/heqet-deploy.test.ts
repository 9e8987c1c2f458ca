// deploy/heqet-deploy with a stand-in kubectl on PATH: the calls it makes, in
// order, and the topology load it runs "in the heqet pod" (the stand-in runs
// bin/heqet-topology-load.js against a heqet on the mock executor).
import { execFile } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { ADMIN_KEY, makeApp } from './helpers/app.ts'

const ROOT = join(import.meta.dirname, '..')

/** kubectl stand-in: logs its argv, answers the few reads heqet-deploy makes. */
const FAKE_KUBECTL = `#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
case "$*" in
  "version -o json") echo "{\\"serverVersion\\":{\\"major\\":\\"1\\",\\"minor\\":\\"$FAKE_MINOR\\"}}" ;;
  *"get secret heqet-keys -o jsonpath"*) printf %s "$FAKE_ADMIN_KEY" | base64 ;;
  *"get secret "*) exit 1 ;;
  *"get pods -l glusterfs-node=pod -o json"*)
    ready='{"status":{"conditions":[{"type":"Ready","status":"True"}]}}'
    echo "{\\"items\\":[$ready,$ready,$ready]}" ;;
  *"exec -i deployment/heqet"*)
    shift 8  # -n glusterfs exec -i deployment/heqet -c heqet --
    [ "$1" = node ] && [ "$2" = /opt/heqet/bin/heqet-topology-load.js ] || exit 9
    HEKETI_ADMIN_KEY="$FAKE_ADMIN_KEY" exec node "$FAKE_REPO/bin/heqet-topology-load.js" "--server=$FAKE_SERVER" --user=admin ;;
esac
exit 0
`

async function heqetDeploy(t: Test, extra: string[], minor: string) {
  const app = await makeApp(t)
  await app.app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const bin = t.testdir({})
  writeFileSync(join(bin, 'kubectl'), FAKE_KUBECTL)
  chmodSync(join(bin, 'kubectl'), 0o755)
  const log = join(bin, 'calls.log')
  const { stdout } = await promisify(execFile)(
    'bash',
    [
      join(ROOT, 'deploy', 'heqet-deploy'),
      join(ROOT, 'deploy', 'examples', 'topology.json'),
      '--timeout=30',
      ...extra,
    ],
    {
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        FAKE_LOG: log,
        FAKE_REPO: ROOT,
        FAKE_SERVER: `http://127.0.0.1:${port}`,
        FAKE_ADMIN_KEY: ADMIN_KEY,
        FAKE_MINOR: minor,
      },
      timeout: 120_000,
    },
  )
  const calls = readFileSync(log, 'utf8').trim().split('\n')
  return { app, stdout, calls }
}

const deploy = join(ROOT, 'deploy')
const redact = (c: string) => c.replace(/--from-literal=(admin|user)-key=\S+/g, '--from-literal=$1-key=KEY')

t.test('heqet-deploy: label, keys, apply, wait, load', async (t) => {
  const { app, stdout, calls } = await heqetDeploy(t, [], '29+')
  t.same(calls.map(redact), [
    'version -o json',
    'label node worker-1 storagenode=glusterfs --overwrite',
    'label node worker-2 storagenode=glusterfs --overwrite',
    'label node worker-3 storagenode=glusterfs --overwrite',
    `apply -f ${deploy}/core/namespace.yaml`,
    '-n glusterfs get secret heqet-keys',
    '-n glusterfs create secret generic heqet-keys --from-literal=admin-key=KEY --from-literal=user-key=KEY',
    `apply -k ${deploy}`,
    '-n glusterfs get pods -l glusterfs-node=pod -o json',
    '-n glusterfs rollout status deployment/heqet --timeout=30s',
    '-n glusterfs exec -i deployment/heqet -c heqet -- node /opt/heqet/bin/heqet-topology-load.js --server=http://localhost:8080 --user=admin',
    '-n glusterfs rollout status deployment/heqet-csi-controller --timeout=30s',
    '-n glusterfs rollout status daemonset/heqet-csi-node --timeout=30s',
  ])
  const keys = /admin-key=(\S+) --from-literal=user-key=(\S+)/.exec(calls[6]!)
  t.ok(keys && keys[1]!.length >= 32 && keys[1] !== keys[2], 'two random keys')
  t.match(stdout, /Adding device \/dev\/sdc \.\.\. OK/)
  const clusters = (await app.call('GET', '/clusters')).json().clusters
  t.equal(clusters.length, 1, 'topology loaded')
  t.equal((await app.call('GET', `/clusters/${clusters[0]}`)).json().nodes.length, 3)
})

t.test('heqet-deploy --legacy: in-tree StorageClass and its Secret, no CSI', async (t) => {
  const { app, calls } = await heqetDeploy(t, ['--legacy'], '24')
  const tail = calls.slice(7).map(redact)
  t.same(tail, [
    '-n glusterfs get secret heqet-admin-secret',
    '-n glusterfs get secret heqet-keys -o jsonpath={.data.admin-key}',
    `-n glusterfs create secret generic heqet-admin-secret --type=kubernetes.io/glusterfs --from-literal=key=${ADMIN_KEY}`,
    `apply -k ${deploy}/legacy`,
    '-n glusterfs get pods -l glusterfs-node=pod -o json',
    '-n glusterfs rollout status deployment/heqet --timeout=30s',
    '-n glusterfs exec -i deployment/heqet -c heqet -- node /opt/heqet/bin/heqet-topology-load.js --server=http://localhost:8080 --user=admin',
  ])
  t.equal((await app.call('GET', '/clusters')).json().clusters.length, 1, 'topology loaded')
})

t.test('heqet-deploy refuses a layout the cluster cannot run', async (t) => {
  for (const [extra, minor, text] of [
    [[], '19', /too old for the CSI driver: use --legacy/],
    [['--legacy'], '26', /no in-tree glusterfs provisioner: drop --legacy/],
  ] as const) {
    await t.rejects(
      heqetDeploy(t, [...extra], minor),
      { code: 2, stderr: text },
      `1.${minor} ${extra.join(' ')}`,
    )
  }
})
