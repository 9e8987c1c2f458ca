// The ha section of heketi.json: values that reach the Kubernetes API's URL
// path, a Lease's holderIdentity or a timer are checked at start-up.
import t from 'tap'
import { kubeLeaseApi } from '../api/kube-lease.ts'
import { parseConfig } from '../src/config.ts'

const config = (ha: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
  parseConfig(JSON.stringify({ glusterfs: { ha: { election: 'kubernetes', ...ha } } }), env)

t.test('Lease namespace and name: DNS names only (they are path segments of the API URL)', async (t) => {
  t.equal(
    config({ lease_namespace: 'glusterfs', lease_name: 'heqet.leader-1' }).haKubeLease.name,
    'heqet.leader-1',
  )
  t.equal(config({}).haKubeLease.namespace, '', 'unset: resolved from the service account at start')
  for (const lease_name of ['..', 'a/b', 'x%2f..', 'Heqet', '-a', 'a b', `${'a'.repeat(254)}`]) {
    t.throws(() => config({ lease_name }), /^ha: invalid Lease name/, `name ${JSON.stringify(lease_name)}`)
  }
  for (const lease_namespace of ['..', 'kube-system/leases', 'a.b', 'NS', 'x'.repeat(64)]) {
    t.throws(
      () => config({ lease_namespace }),
      /^ha: invalid Lease namespace/,
      `namespace ${JSON.stringify(lease_namespace)}`,
    )
  }
})

t.test('the request builder refuses a namespace from outside the config too', async (t) => {
  // a kubeconfig context's namespace is not checked by parseConfig
  const dir = t.testdir({
    kubeconfig: [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u, namespace: ".."}}]',
      'current-context: x',
      '',
    ].join('\n'),
  })
  t.throws(
    () =>
      kubeLeaseApi(
        {
          namespace: '',
          name: 'heqet-leader',
          leaseDurationSec: 15,
          renewDeadlineSec: 10,
          retryPeriodSec: 2,
          kubeconfig: `${dir}/kubeconfig`,
        },
        { env: {}, serviceAccountDir: '/nonexistent' },
      ),
    /invalid Lease namespace/,
  )
})

t.test('replica id: a pod-name-like identity, from the file or HEQET_REPLICA_ID', async (t) => {
  t.equal(config({ replica_id: 'heqet-7d9f-abcde' }).haReplicaId, 'heqet-7d9f-abcde')
  t.equal(config({}).haReplicaId, '', 'unset: random per start')
  for (const id of ['a b', 'x\ny', '"quoted"', '../etc', '-lead', 'x'.repeat(254)]) {
    t.throws(
      () => config({ replica_id: id }),
      /^invalid ha.replica_id/,
      `ha.replica_id ${JSON.stringify(id)}`,
    )
    t.throws(
      () => config({}, { HEQET_REPLICA_ID: id }),
      /^invalid ha.replica_id/,
      `HEQET_REPLICA_ID ${JSON.stringify(id)}`,
    )
  }
})

t.test(
  'lease times stay within what a timer can wait (no 1 ms retry loop from an overflowed delay)',
  async (t) => {
    t.throws(
      () => config({ lease_duration_sec: 1e9, renew_deadline_sec: 1e8, retry_period_sec: 1e7 }),
      /at most 86400/,
    )
    t.throws(
      () => config({ lease_ttl_sec: 1e9 }),
      /lease_ttl_sec must be at most 86400/,
      'the etcd lease too',
    )
    t.throws(() => config({}, { HEQET_LEASE_TTL_SEC: '3000000' }), /lease_ttl_sec must be at most 86400/)
    t.equal(config({ lease_ttl_sec: 30 }).haLeaseTtlSec, 30)
    t.throws(
      () => config({ lease_duration_sec: 3, renew_deadline_sec: 2, retry_period_sec: 0.0001 }),
      /retry_period_sec must be at least 0.1/,
      'a retry period of 0.1 ms would call the API server 10,000 times a second',
    )
    t.equal(
      config({ lease_duration_sec: 3600, renew_deadline_sec: 60, retry_period_sec: 5 }).haKubeLease
        .leaseDurationSec,
      3600,
    )
  },
)
