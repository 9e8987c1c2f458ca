// The etcd store against a REAL etcd (Debian's etcd-server on loopback,
// started here and ended by PID): the shared Store contract, conflicting
// writers (retry, never half-apply), etcd's per-Txn op limit, the heqet app
// creating a volume on it, a 3-member cluster losing a member, and a TLS
// etcd with client-cert and user auth.
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { EtcdStore, type EtcdStoreOptions, parseEtcdUrl, TxnTooLargeError } from '../db/etcd.ts'
import type { Change } from '../db/store.ts'
import { runStoreContract } from './contract/store.case.ts'
import { makeApp, makeTopology } from './helpers/app.ts'
import { makeEtcdCerts, requireEtcd, startEtcd, startEtcdCluster, type TestEtcd } from './helpers/etcd.ts'

t.test('db URL parsing', async (t) => {
  t.same(parseEtcdUrl('etcd://h1:2379,10.0.0.2:2379/heqet/prod'), {
    hosts: ['http://h1:2379', 'http://10.0.0.2:2379'],
    prefix: 'heqet/prod',
    maxTxnOps: 128,
    cacert: undefined,
    cert: undefined,
    key: undefined,
    user: undefined,
    commandTimeoutSec: 5,
  })
  const tls = parseEtcdUrl(
    'etcd://h1:2379?cacert=/ca.pem&cert=/c.pem&key=/k.pem&user=heqet:pw&max-txn-ops=512&command-timeout=2.5',
  )
  t.equal(tls.commandTimeoutSec, 2.5, 'command-timeout in seconds, like etcdctl --command-timeout')
  t.same(tls.hosts, ['https://h1:2379'])
  t.equal(tls.prefix, 'heqet')
  t.equal(tls.maxTxnOps, 512)
  t.equal(tls.user, 'heqet:pw')
  t.same(parseEtcdUrl('etcds://h1:2379/p').hosts, ['https://h1:2379'])
  t.throws(() => parseEtcdUrl('etcd://h1/p'), /not host:port/)
  t.throws(() => parseEtcdUrl('etcd://h1:2379/p?bogus=1'), /unknown etcd option "bogus"/)
  t.throws(() => parseEtcdUrl('etcd://h1:2379/p?max-txn-ops=2'), /max-txn-ops/)
  t.throws(() => parseEtcdUrl('etcd://h1:2379/p?command-timeout=0'), /command-timeout/)
  t.throws(() => parseEtcdUrl('etcd://h1:2379/p?command-timeout=5s'), /command-timeout/)
})

t.test('on a real etcd', async (t) => {
  if (!requireEtcd(t)) return
  const etcd: TestEtcd = await startEtcd(t)
  const newPrefix = () => `test-${randomBytes(6).toString('hex')}`
  const open = async (t: Test, prefix: string, extra: Partial<EtcdStoreOptions> = {}) => {
    const store = await EtcdStore.open({ hosts: [etcd.endpoint], prefix, ...extra })
    t.teardown(() => store.close())
    return store
  }

  t.test('Store contract', async (t) => {
    runStoreContract(t, async (t) => {
      const prefix = newPrefix()
      const store = await open(t, prefix)
      return { store, reopen: () => open(t, prefix) }
    })
  })

  t.test(
    'a writer that lost to another retries on the new state; listeners hear the other write',
    async (t) => {
      const prefix = newPrefix()
      const a = await open(t, prefix)
      const b = await open(t, prefix, { watch: false }) // will not see a's write until it conflicts
      const heard: Change[][] = []
      b.onCommit((c) => heard.push(c))
      await a.write((tx) => tx.put('attribute', 'n', { key: 'n', value: '1' }))
      t.equal(
        b.read((tx) => tx.get('attribute', 'n')),
        undefined,
        'b has not seen it yet (no watch)',
      )
      let runs = 0
      await b.write((tx) => {
        runs++
        const n = Number(tx.get('attribute', 'n')?.value ?? '0')
        tx.put('attribute', 'n', { key: 'n', value: String(n + 1) })
      })
      t.equal(runs, 2, 'the callback ran twice: once on the stale view, once after catching up')
      t.equal(b.conflicts, 1)
      t.same(
        b.read((tx) => tx.get('attribute', 'n')?.value),
        '2',
      )
      t.same(heard, [
        [{ bucket: 'attribute', key: 'n', value: { key: 'n', value: '1' } }],
        [{ bucket: 'attribute', key: 'n', value: { key: 'n', value: '2' } }],
      ])
      const fresh = await open(t, prefix)
      t.equal(
        fresh.read((tx) => tx.get('attribute', 'n')?.value),
        '2',
      )
    },
  )

  t.test('two stores bumping one counter concurrently lose no update', async (t) => {
    const prefix = newPrefix()
    const a = await open(t, prefix, { watch: false })
    const b = await open(t, prefix, { watch: false })
    const bump = (s: EtcdStore) =>
      s.write((tx) => {
        const n = Number(tx.get('attribute', 'n')?.value ?? '0')
        tx.put('attribute', 'n', { key: 'n', value: String(n + 1) })
      })
    await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 2 ? a : b)))
    const fresh = await open(t, prefix)
    t.equal(
      fresh.read((tx) => tx.get('attribute', 'n')?.value),
      '20',
    )
    t.ok(a.conflicts + b.conflicts > 0, `the stores did conflict (${a.conflicts + b.conflicts} retries)`)
  })

  t.test('a whole-bucket read is guarded too: a key another writer added makes the Txn retry', async (t) => {
    const prefix = newPrefix()
    const a = await open(t, prefix)
    const b = await open(t, prefix, { watch: false })
    await a.write((tx) => tx.put('hostname', 'manage:n1', { nodeId: 'a' }))
    const counts: number[] = []
    await b.write((tx) => {
      counts.push(tx.count('hostname'))
      tx.put('attribute', 'hosts', { key: 'hosts', value: String(tx.count('hostname')) })
    })
    t.same(counts, [0, 1])
    t.equal(
      b.read((tx) => tx.get('attribute', 'hosts')?.value),
      '1',
    )
  })

  t.test('a conflicting multi-key write applies nothing when it gives up', async (t) => {
    const prefix = newPrefix()
    const a = await open(t, prefix)
    const b = await open(t, prefix, { maxConflictRetries: 0, watch: false })
    await a.write((tx) => tx.put('attribute', 'n', { key: 'n', value: '1' }))
    await t.rejects(
      b.write((tx) => {
        tx.put('attribute', 'k1', { key: 'k1', value: 'x' })
        tx.put('attribute', 'k2', { key: 'k2', value: 'x' })
        tx.put('attribute', 'n', {
          key: 'n',
          value: String(Number(tx.get('attribute', 'n')?.value ?? '0') + 1),
        })
      }),
      /lost to other writers/,
    )
    const fresh = await open(t, prefix)
    fresh.read((tx) => {
      t.equal(tx.get('attribute', 'k1'), undefined)
      t.equal(tx.get('attribute', 'k2'), undefined)
      t.equal(tx.get('attribute', 'n')?.value, '1')
    })
  })

  t.test(
    "the watch keeps every store current: others' puts and deletes reach cache and listeners",
    async (t) => {
      const prefix = newPrefix()
      const a = await open(t, prefix)
      const b = await open(t, prefix)
      const heard: Change[] = []
      b.onCommit((c) => heard.push(...c))
      const until = async (what: string, ok: () => boolean) => {
        for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10))
        t.ok(ok(), what)
      }
      await a.write((tx) => {
        tx.put('attribute', 'x', { key: 'x', value: '1' })
        tx.put('hostname', 'manage:n1', { nodeId: 'n1' })
      })
      await until("b sees a's put", () => b.read((tx) => tx.get('attribute', 'x')?.value) === '1')
      t.same(
        b.read((tx) => tx.keys('hostname')),
        ['manage:n1'],
      )
      await b.write((tx) => tx.del('attribute', 'x'))
      await until("a sees b's delete", () => a.read((tx) => tx.get('attribute', 'x')) === undefined)
      await a.write((tx) => tx.put('attribute', 'y', { key: 'y', value: '2' }))
      await until('b sees y', () => b.read((tx) => tx.get('attribute', 'y')?.value) === '2')
      // every change heard once, in order (b's own delete is not heard twice)
      t.same(heard, [
        { bucket: 'attribute', key: 'x', value: { key: 'x', value: '1' } },
        { bucket: 'hostname', key: 'manage:n1', value: { nodeId: 'n1' } },
        { bucket: 'attribute', key: 'x', value: undefined },
        { bucket: 'attribute', key: 'y', value: { key: 'y', value: '2' } },
      ])
      // b's view is current, so its write commits first time
      await b.write((tx) =>
        tx.put('attribute', 'y', { key: 'y', value: String(Number(tx.get('attribute', 'y')!.value) + 1) }),
      )
      t.equal(b.conflicts, 0)
      t.equal(a.watchErrors + b.watchErrors, 0)
    },
  )

  t.test(
    'a Txn the client re-sent after a lost response (already applied) is not applied twice',
    async (t) => {
      const prefix = newPrefix()
      const store = await open(t, prefix)
      const kv = store.client.kv
      const realTxn = kv.txn.bind(kv)
      let sent = 0
      // what etcd3's retry policy does when a response is lost: the same request again
      kv.txn = async (req) => {
        sent++
        await realTxn(req)
        return realTxn(req)
      }
      let runs = 0
      await store.write((tx) => {
        runs++
        const n = Number(tx.get('attribute', 'n')?.value ?? '0')
        tx.put('attribute', 'n', { key: 'n', value: String(n + 1) })
      })
      kv.txn = realTxn
      t.equal(sent, 1, 'one attempt')
      t.equal(runs, 1, 'the callback was not run again')
      t.equal(store.conflicts, 0)
      t.equal(
        store.read((tx) => tx.get('attribute', 'n')?.value),
        '1',
      )
      // and the cache's revisions are right: the next write commits first time
      await store.write((tx) => tx.put('attribute', 'n', { key: 'n', value: '2' }))
      t.equal(store.conflicts, 0)
      const fresh = await open(t, prefix)
      t.equal(
        fresh.read((tx) => tx.get('attribute', 'n')?.value),
        '2',
      )
    },
  )

  t.test("etcd's per-Txn op limit (--max-txn-ops, default 128)", async (t) => {
    const prefix = newPrefix()
    const store = await open(t, prefix)
    // 126 puts + the bucket's meta key + the writer token = 128 operations: fits
    await store.write((tx) => {
      for (let i = 0; i < 126; i++) tx.put('attribute', `k${i}`, { key: `k${i}`, value: 'v' })
    })
    t.equal(store.largestTxnOps, 128)
    // 128 puts + 1 meta = 129: refused before anything is sent
    const err = await store
      .write((tx) => {
        for (let i = 0; i < 127; i++) tx.put('attribute', `x${i}`, { key: `x${i}`, value: 'v' })
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    t.ok(err instanceof TxnTooLargeError, 'refused as too large')
    t.match((err as Error).message, /--max-txn-ops=129 or more/)
    t.equal(
      store.read((tx) => tx.get('attribute', 'x0')),
      undefined,
    )
    // 200 single-key reads would be 200 compares: guarded per bucket instead, and etcd accepts it
    await store.write((tx) => {
      let found = 0
      for (let i = 0; i < 200; i++) if (tx.get('attribute', `k${i}`)) found++
      tx.put('attribute', 'found', { key: 'found', value: String(found) })
    })
    const fresh = await open(t, prefix)
    t.equal(
      fresh.read((tx) => tx.get('attribute', 'found')?.value),
      '126',
    )
  })

  t.test(
    'the heqet app on the etcd store creates, expands and deletes a volume; /db/check is clean',
    async (t) => {
      const prefix = newPrefix()
      const app = await makeApp(t, { config: { dbPath: `etcd://${etcd.hostPort}/${prefix}` } })
      t.ok(app.ctx.store instanceof EtcdStore, 'the db URL selected the etcd store')
      await makeTopology(app, { nodes: 3, devices: 2 })
      const created = await app.run('POST', '/volumes', {
        size: 10,
        durability: { type: 'replicate', replicate: { replica: 3 } },
      })
      t.equal(created.statusCode, 303, created.body)
      const id = created.location!.split('/').pop()!
      t.equal((await app.call('GET', `/volumes/${id}`)).json().bricks.length, 3)
      const expanded = await app.run('POST', `/volumes/${id}/expand`, { expand_size: 5 })
      t.equal(expanded.statusCode, 303, expanded.body)
      const check = (await app.call('GET', '/db/check')).json()
      t.equal(check.totalinconsistencies, 0, `/db/check clean: ${JSON.stringify(check)}`)
      t.ok(check.volumes.total >= 1, 'the check saw the volume')

      // what a restarted replica reads from etcd is what this one holds
      const store = app.ctx.store as EtcdStore
      const fresh = await open(t, prefix)
      t.same(
        fresh.read((tx) => tx.values('volume')),
        store.read((tx) => tx.values('volume')),
      )
      t.same(
        fresh.read((tx) => tx.values('brick')),
        store.read((tx) => tx.values('brick')),
      )
      t.ok(store.largestTxnOps <= 128, `largest Txn: ${store.largestTxnOps} operations`)
      t.comment(`largest Txn of create+expand (3 nodes): ${store.largestTxnOps} operations`)

      const backup = await app.call('GET', '/backup/db')
      t.equal(backup.statusCode, 200)
      t.ok(backup.body.length > 0)

      const del = await app.run('DELETE', `/volumes/${id}`)
      t.equal(del.statusCode, 204, del.body)
      t.same((await app.call('GET', '/volumes')).json(), { volumes: [] })
      t.equal(
        (await app.call('GET', '/db/check')).json().totalinconsistencies,
        0,
        '/db/check clean after delete',
      )
    },
  )

  t.test(
    'the biggest heqet write (a volume of max_bricks_per_volume = 32 bricks) fits the default 128',
    async (t) => {
      const app = await makeApp(t, {
        config: { dbPath: `etcd://${etcd.hostPort}/${newPrefix()}`, brickMaxSizeGiB: 1 },
      })
      await makeTopology(app, { nodes: 6, devices: 4 })
      const store = app.ctx.store as EtcdStore
      const created = await app.run('POST', '/volumes', { size: 32, durability: { type: 'none' } })
      t.equal(created.statusCode, 303, created.body)
      const id = created.location!.split('/').pop()!
      t.equal((await app.call('GET', `/volumes/${id}`)).json().bricks.length, 32)
      const del = await app.run('DELETE', `/volumes/${id}`)
      t.equal(del.statusCode, 204, del.body)
      t.comment(`largest Txn for a 32-brick volume create + delete: ${store.largestTxnOps} operations`)
      t.ok(store.largestTxnOps <= 128, `${store.largestTxnOps} <= 128`)
      t.ok(store.largestTxnOps >= 32, 'the count is real: at least one put per brick')
    },
  )
})

t.test('on a 3-member etcd cluster: writes go on while one member is killed', async (t) => {
  if (!requireEtcd(t)) return
  let at = Date.now()
  const cluster = await startEtcdCluster(t, { members: 3 })
  t.equal(new Set(cluster.members.map((m) => m.pid)).size, 3, 'three etcd processes')
  const prefix = `test-${randomBytes(6).toString('hex')}`
  const url = `etcd://${cluster.hostList}/${prefix}`
  const store = await EtcdStore.open(parseEtcdUrl(url))
  t.teardown(() => store.close())
  const bump = () =>
    store.write((tx) => {
      const n = Number(tx.get('attribute', 'n')?.value ?? '0')
      tx.put('attribute', 'n', { key: 'n', value: String(n + 1) })
    })
  const lap = () => {
    const ms = Date.now() - at
    at = Date.now()
    return ms
  }
  t.comment(`3 members healthy in ${lap()} ms`)
  for (let i = 0; i < 5; i++) await bump()
  await cluster.members[0]!.kill()
  t.notOk(cluster.members[0]!.running(), 'member m0 is gone (SIGKILL by PID)')
  lap()
  for (let i = 0; i < 5; i++) await bump()
  t.comment(`5 writes with m0 dead: ${lap()} ms`)
  await cluster.members[0]!.start()
  t.comment(`m0 healthy again in ${lap()} ms`)
  t.ok(cluster.members[0]!.running(), 'm0 restarted on its data dir and rejoined')
  // a reader that only knows the restarted member sees every write
  const solo = await EtcdStore.open({ hosts: [cluster.members[0]!.endpoint], prefix })
  t.teardown(() => solo.close())
  t.equal(
    solo.read((tx) => tx.get('attribute', 'n')?.value),
    '10',
  )
})

t.test(
  'on a TLS etcd with client-cert auth and user auth (etcds://…?cacert=&cert=&key=&user=)',
  async (t) => {
    if (!requireEtcd(t)) return
    const certs = makeEtcdCerts(t)
    const password = randomBytes(9).toString('hex')
    const etcd = await startEtcd(t, { tls: certs, rootPassword: password })
    t.match(etcd.endpoint, /^https:/)
    const prefix = `test-${randomBytes(6).toString('hex')}`
    const tlsQuery = `cacert=${certs.cacert}&cert=${certs.clientCert}&key=${certs.clientKey}`
    const url = `etcds://${etcd.hostPort}/${prefix}?${tlsQuery}&user=root:${password}`
    const store = await EtcdStore.open(parseEtcdUrl(url))
    t.teardown(() => store.close())
    await store.write((tx) => tx.put('attribute', 'tls', { key: 'tls', value: 'yes' }))
    const again = await EtcdStore.open(parseEtcdUrl(url))
    t.teardown(() => again.close())
    t.equal(
      again.read((tx) => tx.get('attribute', 'tls')?.value),
      'yes',
      'a second client reads it back over TLS',
    )
    // the same etcd refuses a client without the password, and one without a client cert
    await t.rejects(
      EtcdStore.open(parseEtcdUrl(`etcds://${etcd.hostPort}/${prefix}?${tlsQuery}&user=root:wrong`)),
      'wrong password refused',
    )
    await t.rejects(
      EtcdStore.open(parseEtcdUrl(`etcds://${etcd.hostPort}/${prefix}?${tlsQuery}`)),
      'no user refused once auth is enabled',
    )
    await t.rejects(
      EtcdStore.open({
        ...parseEtcdUrl(`etcds://${etcd.hostPort}/${prefix}?cacert=${certs.cacert}&user=root:${password}`),
        connectTimeoutMs: 3000,
      } as EtcdStoreOptions),
      'no client certificate refused',
    )
  },
)
