// `heqet db import` into an etcd prefix. A DB of any size rarely fits one
// etcd Txn (--max-txn-ops, default 128), so the import is written in chunks
// and made valid only at the end:
//
//   1. the prefix must be empty (or hold only an unfinished import, and
//      --force was given: that one is discarded first);
//   2. one Txn creates the marker P/_meta/import (compare: it does not exist)
//      holding a random token — from here on EtcdStore.open refuses the prefix;
//   3. the entries go in as Txns of at most max-txn-ops puts, each guarded by
//      "the marker still holds my token";
//   4. one last Txn (same guard) deletes the marker and puts the bucket meta
//      keys: the DB becomes visible whole, in one revision.
//
// A crash, a lost connection or a second import anywhere between 2 and 4
// leaves the marker, so a half-written DB never opens as if it were whole.

import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import {
  connectEtcd,
  ETCD_DEFAULT_MAX_TXN_OPS,
  type EtcdClient,
  type EtcdStoreOptions,
  etcdEntryKey,
  IMPORT_MARKER,
} from './etcd.ts'
import type { BucketName } from './store.ts'

export interface EtcdImportEntry {
  bucket: BucketName
  key: string
  value: unknown
}

/** A refusal that leaves the prefix as it was. */
export class EtcdImportRefused extends Error {}

export interface EtcdImportResult {
  keys: number
  /** Txns that carried entries (the marker's two Txns not counted) */
  chunks: number
  /** an unfinished earlier import was discarded (--force) */
  discardedUnfinished: boolean
}

const prefixEnd = (prefix: string) => Buffer.from(`${prefix}0`) // '/' + 1: the whole prefix

export async function importIntoEtcd(
  opts: EtcdStoreOptions,
  entries: EtcdImportEntry[],
  flags: { force?: boolean } = {},
): Promise<EtcdImportResult> {
  const client = await connectEtcd(opts)
  try {
    return await importIntoEtcdWith(client, opts, entries, flags)
  } finally {
    client.close()
  }
}

/** importIntoEtcd on a client the caller owns (tests hand in one that fails part-way). */
export async function importIntoEtcdWith(
  client: EtcdClient,
  opts: EtcdStoreOptions,
  entries: EtcdImportEntry[],
  flags: { force?: boolean } = {},
): Promise<EtcdImportResult> {
  const { prefix } = opts
  const maxOps = opts.maxTxnOps ?? ETCD_DEFAULT_MAX_TXN_OPS
  const start = Buffer.from(`${prefix}/`)
  const marker = Buffer.from(`${prefix}/${IMPORT_MARKER}`)

  const present = await client.kv.range({
    key: start,
    range_end: prefixEnd(prefix),
    limit: 1,
    count_only: true,
  })
  let discardedUnfinished = false
  if (Number(present.count) > 0) {
    const old = await client.kv.range({
      key: marker,
      range_end: Buffer.concat([marker, Buffer.from([0])]),
      limit: 1,
    })
    if (old.kvs.length === 0) {
      throw new EtcdImportRefused(
        `etcd prefix "${prefix}" already holds a DB (${present.count} keys): import into an empty prefix; ` +
          'take a backup (heqet db export or GET /backup/db) and delete the prefix to replace it',
      )
    }
    if (!flags.force) {
      throw new EtcdImportRefused(
        `etcd prefix "${prefix}" holds an unfinished import (${old.kvs[0]!.value.toString()}): ` +
          'give --force to discard it and import again',
      )
    }
    // only ever a partial import (the store never opened it): safe to drop —
    // and only while that same marker is still there
    const res = await client.kv.txn({
      compare: [{ key: marker, target: 'Mod', result: 'Equal', mod_revision: old.kvs[0]!.mod_revision }],
      success: [{ request_delete_range: { key: start, range_end: prefixEnd(prefix) } }],
      failure: [],
    })
    if (!res.succeeded) throw new EtcdImportRefused(`etcd prefix "${prefix}": another import is running`)
    discardedUnfinished = true
  }

  const token = JSON.stringify({
    importing: randomBytes(8).toString('hex'),
    host: hostname(),
    pid: process.pid,
    started: new Date().toISOString(),
    keys: entries.length,
  })
  const tokenValue = Buffer.from(token)
  const begun = await client.kv.txn({
    compare: [{ key: marker, target: 'Create', result: 'Equal', create_revision: '0' }],
    success: [{ request_put: { key: marker, value: tokenValue } }],
    failure: [],
  })
  if (!begun.succeeded) throw new EtcdImportRefused(`etcd prefix "${prefix}": another import is running`)

  const stillMine = [{ key: marker, target: 'Value' as const, result: 'Equal' as const, value: tokenValue }]
  let chunks = 0
  for (let i = 0; i < entries.length; i += maxOps) {
    const success = entries.slice(i, i + maxOps).map((e) => ({
      request_put: {
        key: etcdEntryKey(prefix, e.bucket, e.key),
        value: Buffer.from(JSON.stringify(e.value)),
      },
    }))
    const res = await client.kv.txn({ compare: stillMine, success, failure: [] })
    if (!res.succeeded)
      throw new Error(`etcd import into "${prefix}": the import marker changed under it (another import?)`)
    chunks++
  }
  // the meta keys (one per bucket written; the store's scan guards) and the
  // marker's removal in one Txn: the whole DB appears at one revision
  const buckets = [...new Set(entries.map((e) => e.bucket))]
  const done = await client.kv.txn({
    compare: stillMine,
    success: [
      ...buckets.map((b) => ({
        request_put: { key: Buffer.from(`${prefix}/_meta/${b}`), value: Buffer.alloc(0) },
      })),
      { request_delete_range: { key: marker } },
    ],
    failure: [],
  })
  if (!done.succeeded)
    throw new Error(`etcd import into "${prefix}": the import marker changed under it (another import?)`)
  return { keys: entries.length, chunks, discardedUnfinished }
}
