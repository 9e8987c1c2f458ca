// `heqet db import/export/consistency-check` and /backup/db with an etcd URL
// as the DB, against a real etcd: an import bigger than one Txn goes in as
// chunks behind a marker, and a half-done import never opens as a DB; the
// startup "mark the journal stale" pass fits etcd's op limit with any number
// of pending operations.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { signToken } from '../api/auth.ts'
import {
  connectEtcd,
  type EtcdClient,
  EtcdStore,
  IMPORT_MARKER,
  parseEtcdUrl,
  UnfinishedImportError,
} from '../db/etcd.ts'
import { type EtcdImportEntry, importIntoEtcdWith } from '../db/etcd-import.ts'
import { ADMIN_KEY, makeApp } from './helpers/app.ts'
import { requireEtcd, startEtcd } from './helpers/etcd.ts'

const BIN = new URL('../bin/heqet.js', import.meta.url).pathname
const SAMPLE = new URL('./fixtures/heketi-v10.4.1-db-export.json', import.meta.url).pathname

function heqet(...args: string[]) {
  const res = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: res.status, stdout: res.stdout, stderr: res.stderr }
}

const generation = (text: string) => JSON.parse(text).dbattributeentries.DB_GENERATION_ID.Value as string
const sameExport = (a: string, b: string) => a.replace(generation(a), generation(b)) === b

t.test('db commands and /backup/db on an etcd prefix', async (t) => {
  if (!requireEtcd(t)) return
  const etcd = await startEtcd(t)
  const dir = mkdtempSync(join(tmpdir(), 'heqet-db-etcd-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const newUrl = (query = '') => `etcd://${etcd.hostPort}/t-${randomBytes(5).toString('hex')}${query}`
  const sample = readFileSync(SAMPLE, 'utf8')

  t.test('import in chunks (max-txn-ops=16), export, consistency-check, no second import', async (t) => {
    const url = newUrl('?max-txn-ops=16')
    const imported = heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${url}`)
    t.equal(imported.code, 0, imported.stderr)
    const m = /(\d+) keys written in (\d+) etcd transactions of at most 16 puts/.exec(imported.stderr)
    t.ok(m, imported.stderr)
    t.ok(Number(m![2]) >= 3, `more than one Txn was needed (${m![1]} keys, ${m![2]} Txns)`)
    t.match(imported.stderr, new RegExp(`DB imported to ${url.replace(/[?]/g, '\\?')}\\n$`))

    const exported = heqet('db', 'export', `--dbfile=${url}`, '--jsonfile=-')
    t.equal(exported.code, 0, exported.stderr)
    t.ok(sameExport(exported.stdout, sample), 'etcd export = the heketi export imported')

    const check = heqet('db', 'consistency-check', `--dbfile=${url}`)
    t.equal(check.code, 0, check.stderr)
    t.equal(JSON.parse(check.stdout).totalinconsistencies, 0)

    const again = heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${url}`, '--force')
    t.equal(again.code, 1)
    t.match(again.stderr, /^db creation failed: etcd prefix "t-[0-9a-f]+" already holds a DB \(\d+ keys\)/)

    // the store opens it: the marker is gone, the meta keys are in
    const store = await EtcdStore.open(parseEtcdUrl(url))
    t.teardown(() => store.close())
    t.equal(
      store.read((tx) => tx.count('brick')),
      13,
    )
  })

  t.test('a password in the URL is not printed', async (t) => {
    const res = heqet('db', 'export', `--dbfile=${newUrl('?user=root:s3cret')}`, '--jsonfile=-')
    t.equal(res.code, 1)
    t.notMatch(res.stderr, /s3cret/)
    t.match(res.stderr, /user=root:\*\*\*/)
  })

  t.test('an import that dies part-way leaves a prefix no store opens; --force redoes it', async (t) => {
    const url = newUrl('?max-txn-ops=16')
    const opts = parseEtcdUrl(url)
    const entries: EtcdImportEntry[] = Array.from({ length: 100 }, (_, i) => ({
      bucket: 'attribute',
      key: `k${i}`,
      value: { key: `k${i}`, value: String(i) },
    }))
    const client: EtcdClient = await connectEtcd(opts)
    t.teardown(() => client.close())
    const realTxn = client.kv.txn.bind(client.kv)
    let txns = 0
    client.kv.txn = async (req) => {
      if (++txns === 4) throw new Error('connection lost (test)') // marker + 2 chunks went in
      return realTxn(req)
    }
    await t.rejects(importIntoEtcdWith(client, opts, entries), /connection lost/)
    client.kv.txn = realTxn
    const some = await client.kv.range({
      key: Buffer.from(`${opts.prefix}/attribute/`),
      range_end: Buffer.from(`${opts.prefix}/attribute0`),
      limit: 1000,
    })
    t.equal(some.kvs.length, 32, 'two chunks of 16 were written')
    const err = await EtcdStore.open(opts).then(
      (s) => s.close().then(() => undefined),
      (e: unknown) => e,
    )
    t.ok(err instanceof UnfinishedImportError, 'the store refuses the half-imported prefix')
    t.match((err as Error).message, /unfinished `heqet db import`/)

    const noForce = heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${url}`)
    t.equal(noForce.code, 1)
    t.match(noForce.stderr, /holds an unfinished import .*give --force/)
    const forced = heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${url}`, '--force')
    t.equal(forced.code, 0, forced.stderr)
    t.match(forced.stderr, /unfinished earlier import in the prefix was discarded/)
    const store = await EtcdStore.open(opts)
    t.teardown(() => store.close())
    t.equal(
      store.read((tx) => tx.get('attribute', 'k0')),
      undefined,
      'the partial import is gone',
    )
    t.equal(
      store.read((tx) => tx.count('volume')),
      4,
    )
    const marker = await client.kv.range({
      key: Buffer.from(`${opts.prefix}/${IMPORT_MARKER}`),
      range_end: Buffer.from(`${opts.prefix}/${IMPORT_MARKER}\u0000`),
      limit: 1,
    })
    t.equal(marker.kvs.length, 0, 'no marker left')
  })

  t.test('/backup/db of an etcd DB is an LMDB file the db commands read', async (t) => {
    const url = newUrl()
    t.equal(heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${url}`).code, 0)
    const app = await makeApp(t, { config: { dbPath: url } })
    const file = join(dir, `backup-${randomBytes(3).toString('hex')}.db`)
    const raw = await fetchBackupBytes(app)
    writeFileSync(file, raw)
    const fromBackup = heqet('db', 'export', `--dbfile=${file}`, '--jsonfile=-')
    t.equal(fromBackup.code, 0, fromBackup.stderr)
    const fromEtcd = heqet('db', 'export', `--dbfile=${url}`, '--jsonfile=-')
    t.equal(fromBackup.stdout, fromEtcd.stdout, 'the backup holds exactly what etcd holds')
    t.ok(sameExport(fromEtcd.stdout, sample))
  })

  t.test('startup marks 300 pending operations stale within --max-txn-ops', async (t) => {
    const url = newUrl()
    const seed = await EtcdStore.open(parseEtcdUrl(url))
    for (let c = 0; c < 3; c++) {
      await seed.write((tx) => {
        for (let i = c * 100; i < (c + 1) * 100; i++) {
          const id = i.toString(16).padStart(32, '0')
          tx.put('pendingop', id, {
            id,
            timestamp: 1,
            type: 'create-volume',
            actions: [],
            status: '',
            doneSteps: [],
            data: {},
          } as never)
        }
      })
    }
    await seed.close()
    const app = await makeApp(t, { config: { dbPath: url } })
    const store = app.ctx.store as EtcdStore
    t.equal(store.maxChangesPerWrite, 126)
    const statuses = store.read((tx) => tx.values('pendingop').map((op) => op.status))
    t.equal(statuses.length, 300)
    t.ok(
      statuses.every((s) => s === 'stale'),
      'every record stale',
    )
    t.ok(store.largestTxnOps <= 128, `largest Txn ${store.largestTxnOps} <= 128`)
  })
})

async function fetchBackupBytes(app: Awaited<ReturnType<typeof makeApp>>): Promise<Buffer> {
  const res = await app.app.inject({
    method: 'GET',
    url: '/backup/db',
    headers: { authorization: `bearer ${signToken('admin', ADMIN_KEY, 'GET', '/backup/db')}` },
  })
  return res.rawPayload
}
