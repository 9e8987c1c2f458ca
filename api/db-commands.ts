// `heqet db import|export|consistency-check`: heketi's offline DB commands
// (heketi-config-and-ops §1.2) with heketi's flags, messages and rules — the
// server must not be running on the DB, an export never overwrites a file,
// an import never overwrites a DB unless `--force` is given (heqet's own
// flag: the old file is kept beside it).
//
// `--dbfile` may also be an etcd URL (etcd://h1:2379,h2:2379/prefix?...).
// Export and check read one consistent revision (servers may keep running);
// an import goes into an EMPTY prefix in chunks behind a marker that keeps
// the store from opening it until the last chunk is in (db/etcd-import.ts).
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Command } from 'commander'
import { newGenerationId } from '../db/attributes.ts'
import { EtcdStore, isEtcdUrl, parseEtcdUrl, redactEtcdUrl } from '../db/etcd.ts'
import { type EtcdImportEntry, EtcdImportRefused, importIntoEtcd } from '../db/etcd-import.ts'
import { heketiDump } from '../db/heketi-export.ts'
import { ImportError, importHeketiExport, writeImported } from '../db/heketi-import.ts'
import { LmdbStore } from '../db/lmdb.ts'
import { BUCKETS, type ReadTxn } from '../db/store.ts'
import { type CheckReport, checkConsistency } from '../src/dbcheck.ts'
import { goJson } from './http.ts'

/** A refusal: printed on stderr after the command's prefix, exit 1. */
export class DbCommandError extends Error {}

const GO_ERRNO: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file exists',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
}

/** Go's `open <path>: <reason>` for a failed file operation */
function goOpenError(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code ?? ''
  return `open ${path}: ${GO_ERRNO[code] ?? (err as Error).message}`
}

const lockFile = (dbPath: string) => `${dbPath}-lock`

function removeDbFiles(dbPath: string): void {
  rmSync(dbPath, { force: true })
  rmSync(lockFile(dbPath), { force: true })
}

/** Read an existing DB (LMDB file, or an etcd prefix at one revision). */
async function readDb<R>(db: string, fn: (tx: ReadTxn) => R): Promise<R> {
  const store = isEtcdUrl(db) ? await openEtcd(db) : await openIdle(db, true)
  try {
    return store.read(fn)
  } finally {
    await store.close()
  }
}

async function openEtcd(db: string): Promise<EtcdStore> {
  let opts: ReturnType<typeof parseEtcdUrl>
  try {
    opts = parseEtcdUrl(db)
  } catch (err) {
    throw new DbCommandError((err as Error).message)
  }
  try {
    return await EtcdStore.open({ ...opts, readOnly: true, watch: false })
  } catch (err) {
    throw new DbCommandError(`Unable to open database: ${redactEtcdUrl(db)}: ${(err as Error).message}`)
  }
}

/** Open an existing DB, refusing while another process (a server) has it open. */
async function openIdle(dbPath: string, readOnly: boolean): Promise<LmdbStore> {
  if (!existsSync(dbPath))
    throw new DbCommandError(`Unable to open database: ${goOpenError(dbPath, { code: 'ENOENT' })}`)
  const store = new LmdbStore({ path: dbPath, readOnly })
  const others = store.otherProcesses()
  if (others.length > 0) {
    await store.close()
    throw new DbCommandError(
      `Unable to open database: ${dbPath} is in use by process ${others.join(', ')}: stop the server first`,
    )
  }
  return store
}

export interface ImportResult {
  notes: string[]
  /** where an existing DB went (with --force) */
  replacedBy?: string
}

export async function importDb(opts: {
  jsonFile: string
  dbFile: string
  force?: boolean
}): Promise<ImportResult> {
  const { jsonFile, dbFile } = opts
  let text: string
  try {
    text = readFileSync(jsonFile, 'utf8')
  } catch (err) {
    throw new DbCommandError(`Could not open input file: ${goOpenError(jsonFile, err)}`)
  }
  let imported: ReturnType<typeof importHeketiExport>
  try {
    imported = importHeketiExport(text, { generationId: newGenerationId() })
  } catch (err) {
    if (err instanceof ImportError) throw new DbCommandError(err.message)
    throw err
  }
  if (isEtcdUrl(dbFile)) return importIntoEtcdPrefix(imported, dbFile, opts.force ?? false)
  const exists = existsSync(dbFile)
  if (exists && !opts.force) throw new DbCommandError(`${dbFile} file already exists`)
  if (exists) await (await openIdle(dbFile, true)).close()

  // built beside the target and moved into place whole: no half-written DB ever sits at dbFile
  const tmp = join(dirname(dbFile), `.heqet-import-${process.pid}-${Date.now()}.db`)
  try {
    await buildChecked(tmp, imported)
    let replacedBy: string | undefined
    if (exists) {
      replacedBy = `${dbFile}.replaced-${Date.now()}`
      renameSync(dbFile, replacedBy)
      rmSync(lockFile(dbFile), { force: true })
    }
    try {
      linkSync(tmp, dbFile)
    } catch (err) {
      // put the replaced DB back where it was: a failed import leaves things as they were
      if (replacedBy && !existsSync(dbFile)) renameSync(replacedBy, dbFile)
      throw new DbCommandError(`${dbFile}: ${goOpenError(dbFile, err)}`)
    }
    chmodSync(dbFile, 0o600)
    return { notes: imported.notes, replacedBy }
  } finally {
    removeDbFiles(tmp)
  }
}

/** Write the import to an LMDB file at `path` and refuse it when inconsistent; returns every entry. */
async function buildChecked(
  path: string,
  imported: ReturnType<typeof importHeketiExport>,
): Promise<EtcdImportEntry[]> {
  const store = new LmdbStore({ path })
  let report: CheckReport
  let entries: EtcdImportEntry[]
  try {
    await store.write((tx) => writeImported(tx, imported))
    ;({ report, entries } = store.read((tx) => ({
      report: checkConsistency(tx),
      entries: BUCKETS.flatMap((bucket) =>
        tx.keys(bucket).map((key) => ({ bucket, key, value: tx.get(bucket, key) })),
      ),
    })))
  } finally {
    await store.close()
  }
  if (report.totalinconsistencies > 0) {
    const problems = Object.values(report).flatMap((s) =>
      typeof s === 'object' && s.inconsistencies ? s.inconsistencies : [],
    )
    throw new DbCommandError(`the imported DB is not consistent: ${problems.join('; ')}`)
  }
  return entries
}

async function importIntoEtcdPrefix(
  imported: ReturnType<typeof importHeketiExport>,
  db: string,
  force: boolean,
): Promise<ImportResult> {
  let opts: ReturnType<typeof parseEtcdUrl>
  try {
    opts = parseEtcdUrl(db)
  } catch (err) {
    throw new DbCommandError((err as Error).message)
  }
  const dir = mkdtempSync(join(tmpdir(), 'heqet-import-'))
  try {
    const entries = await buildChecked(join(dir, 'check.db'), imported)
    const result = await importIntoEtcd(opts, entries, { force })
    const notes = [...imported.notes]
    if (result.discardedUnfinished)
      notes.push('an unfinished earlier import in the prefix was discarded (--force)')
    notes.push(
      `${result.keys} keys written in ${result.chunks} etcd transactions of at most ${opts.maxTxnOps} puts`,
    )
    return { notes }
  } catch (err) {
    if (err instanceof EtcdImportRefused) throw new DbCommandError(err.message)
    throw err
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The export's text: heketi's JSON, 4-space indented, newline-terminated (Go's json.Encoder). */
export async function exportDb(opts: { dbFile: string; jsonFile: string }): Promise<string> {
  const { dbFile, jsonFile } = opts
  if (jsonFile !== '-' && existsSync(jsonFile))
    throw new DbCommandError(`Could not create json file: ${goOpenError(jsonFile, { code: 'EEXIST' })}`)
  const text = goJson(await readDb(dbFile, (tx) => heketiDump(tx)), 4)
  if (jsonFile === '-') {
    process.stdout.write(text)
  } else {
    try {
      writeFileSync(jsonFile, text, { flag: 'wx', mode: 0o600 })
    } catch (err) {
      throw new DbCommandError(`Could not create json file: ${goOpenError(jsonFile, err)}`)
    }
  }
  return text
}

export async function consistencyCheckDb(dbFile: string): Promise<CheckReport> {
  return readDb(dbFile, (tx) => checkConsistency(tx))
}

interface FileOptions {
  jsonfile?: string
  dbfile?: string
  force?: boolean
  debug?: boolean
}

/** heketi's argument checks, in heketi's order and words */
function requireFiles(opts: FileOptions, json: boolean): { jsonFile: string; dbFile: string } {
  if (json && !opts.jsonfile) fail('Please provide file for input')
  if (!opts.dbfile) fail('Please provide path for db file')
  return { jsonFile: opts.jsonfile ?? '', dbFile: opts.dbfile! }
}

function fail(message: string): never {
  console.error(message)
  process.exit(1)
}

async function run(prefix: string, work: () => Promise<void>): Promise<void> {
  try {
    await work()
  } catch (err) {
    if (err instanceof DbCommandError) fail(`${prefix}${err.message}`)
    throw err
  }
}

/** The `db` subcommand of the heqet CLI. */
export function dbCommand(): Command {
  const db = new Command('db').description('heqet db management (offline: stop the server first)')
  db.command('import')
    .description('import creates a db file from JSON input (a heketi or heqet export)')
    .option('--jsonfile <file>', 'JSON file written by `heketi db export` or `heqet db export`')
    .option(
      '--dbfile <file>',
      'DB file to create, or an etcd URL (etcd://host:port,.../prefix: an empty prefix)',
    )
    .option('--force', 'replace an existing DB file (it is kept as <dbfile>.replaced-<time>)')
    .option('--debug', 'accepted for heketi compatibility')
    .action(async (opts: FileOptions) => {
      const { jsonFile, dbFile } = requireFiles(opts, true)
      await run('db creation failed: ', async () => {
        const result = await importDb({ jsonFile, dbFile, force: opts.force })
        for (const note of result.notes) console.error(note)
        if (result.replacedBy) console.error(`previous DB kept as ${result.replacedBy}`)
        console.error('DB imported to', redactEtcdUrl(dbFile))
      })
    })
  db.command('export')
    .description('export creates a JSON file from a db file')
    .option('--dbfile <file>', 'DB file to read, or an etcd URL')
    .option('--jsonfile <file>', 'JSON file to create (must not exist), or - for stdout')
    .option('--debug', 'accepted for heketi compatibility')
    .action(async (opts: FileOptions) => {
      const { jsonFile, dbFile } = requireFiles(opts, true)
      await run('failed to dump db: ', async () => {
        await exportDb({ dbFile, jsonFile })
        console.error('DB exported to', jsonFile)
      })
    })
  db.command('consistency-check')
    .description('check the DB for inconsistencies (report as JSON on stdout)')
    .option('--dbfile <file>', 'DB file to check, or an etcd URL')
    .option('--debug', 'accepted for heketi compatibility')
    .action(async (opts: FileOptions) => {
      const { dbFile } = requireFiles(opts, false)
      await run('', async () => {
        console.log(JSON.stringify(await consistencyCheckDb(dbFile), null, 4))
      })
    })
  return db
}
