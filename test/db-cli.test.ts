// `heqet db ...` as a process: heketi's flags, messages and exit codes, and
// the rules that protect a DB (no server on it, no overwrite unless asked).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { dbCommand } from '../api/db-commands.ts'
import { DB_COMMAND_DESCRIPTION } from '../api/main.ts'
import { LmdbStore } from '../db/lmdb.ts'

const BIN = new URL('../bin/heqet.js', import.meta.url).pathname
const SAMPLE = new URL('./fixtures/heketi-v10.4.1-db-export.json', import.meta.url).pathname

function heqet(...args: string[]) {
  const res = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: res.status, stdout: res.stdout, stderr: res.stderr }
}

const dir = mkdtempSync(join(tmpdir(), 'heqet-cli-'))
const db = join(dir, 'heketi.db')

t.test(
  'heqet --help lists db as the real command describes itself (the server does not load it)',
  async (t) => {
    t.equal(dbCommand().description(), DB_COMMAND_DESCRIPTION)
    const help = heqet('--help')
    t.equal(help.code, 0)
    t.match(help.stdout, new RegExp(`\\n  db +${DB_COMMAND_DESCRIPTION.replace(/[()]/g, '\\$&')}\\n`))
    const dbHelp = heqet('db', '--help')
    t.equal(dbHelp.code, 0)
    t.match(dbHelp.stdout, /consistency-check/)
  },
)

t.test('import, then heketi refusals for a second import and missing arguments', async (t) => {
  const first = heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${db}`)
  t.same([first.code, first.stderr], [0, `DB imported to ${db}\n`])
  t.ok(existsSync(db))

  const again = heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${db}`)
  t.same([again.code, again.stderr], [1, `db creation failed: ${db} file already exists\n`])

  const noJson = heqet('db', 'import', `--dbfile=${db}`)
  t.same([noJson.code, noJson.stderr], [1, 'Please provide file for input\n'])
  const noDb = heqet('db', 'export', '--jsonfile=-')
  t.same([noDb.code, noDb.stderr], [1, 'Please provide path for db file\n'])
  const missing = heqet(
    'db',
    'import',
    `--jsonfile=${join(dir, 'nope.json')}`,
    `--dbfile=${join(dir, 'x.db')}`,
  )
  t.same(
    [missing.code, missing.stderr],
    [
      1,
      `db creation failed: Could not open input file: open ${join(dir, 'nope.json')}: no such file or directory\n`,
    ],
  )
})

t.test('export to stdout and to a new file; never over an existing file', async (t) => {
  const toStdout = heqet('db', 'export', `--dbfile=${db}`, '--jsonfile=-')
  t.equal(toStdout.code, 0)
  t.equal(toStdout.stderr, 'DB exported to -\n')
  const sample = readFileSync(SAMPLE, 'utf8')
  const generation = (text: string) => JSON.parse(text).dbattributeentries.DB_GENERATION_ID.Value
  t.equal(toStdout.stdout.replace(generation(toStdout.stdout), generation(sample)), sample)

  const file = join(dir, 'out.json')
  t.equal(heqet('db', 'export', `--dbfile=${db}`, `--jsonfile=${file}`).code, 0)
  t.equal(readFileSync(file, 'utf8'), toStdout.stdout)
  const over = heqet('db', 'export', `--dbfile=${db}`, `--jsonfile=${file}`)
  t.same(
    [over.code, over.stderr],
    [1, `failed to dump db: Could not create json file: open ${file}: file exists\n`],
  )
  const noDb = heqet('db', 'export', `--dbfile=${join(dir, 'none.db')}`, `--jsonfile=${join(dir, 'x.json')}`)
  t.same(
    [noDb.code, noDb.stderr],
    [
      1,
      `failed to dump db: Unable to open database: open ${join(dir, 'none.db')}: no such file or directory\n`,
    ],
  )
  t.notOk(existsSync(join(dir, 'x.json')), 'no empty file left behind')
})

t.test('a DB a running process has open is refused by every db command', async (t) => {
  // this test process holds the DB open, as a running server does
  const server = new LmdbStore({ path: db })
  t.teardown(() => server.close())
  const inUse = `${db} is in use by process ${process.pid}: stop the server first`
  const exported = heqet('db', 'export', `--dbfile=${db}`, `--jsonfile=${join(dir, 'busy.json')}`)
  t.same([exported.code, exported.stderr], [1, `failed to dump db: Unable to open database: ${inUse}\n`])
  t.notOk(existsSync(join(dir, 'busy.json')))
  const forced = heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${db}`, '--force')
  t.same([forced.code, forced.stderr], [1, `db creation failed: Unable to open database: ${inUse}\n`])
  const check = heqet('db', 'consistency-check', `--dbfile=${db}`)
  t.same([check.code, check.stderr], [1, `Unable to open database: ${inUse}\n`])
})

t.test('--force replaces an idle DB and keeps the old one beside it', async (t) => {
  const before = readdirSync(dir).filter((f) => f.startsWith('heketi.db.replaced-'))
  const forced = heqet('db', 'import', `--jsonfile=${SAMPLE}`, `--dbfile=${db}`, '--force')
  t.equal(forced.code, 0, forced.stderr)
  const kept = readdirSync(dir).filter((f) => f.startsWith('heketi.db.replaced-'))
  t.equal(kept.length, before.length + 1)
  t.match(forced.stderr, new RegExp(`previous DB kept as ${db}\\.replaced-\\d+\\nDB imported to ${db}\\n$`))
  const check = heqet('db', 'consistency-check', `--dbfile=${db}`)
  t.equal(check.code, 0)
  t.equal(JSON.parse(check.stdout).totalinconsistencies, 0)
  t.ok(check.stdout.startsWith('{\n    "clusters"'), '4-space indented')
})

t.test('a refused import writes nothing', async (t) => {
  const bad = join(dir, 'bad.json')
  writeFileSync(
    bad,
    readFileSync(SAMPLE, 'utf8').replace('"ExtentSize": 4096', '"ExtentSize": 4096, "Crypt": true'),
  )
  const target = join(dir, 'bad.db')
  const res = heqet('db', 'import', `--jsonfile=${bad}`, `--dbfile=${target}`)
  t.equal(res.code, 1)
  t.match(res.stderr, /^db creation failed: device [0-9a-f]{32}: unknown field Crypt\n$/)
  t.notOk(existsSync(target))
  t.notOk(
    readdirSync(dir).some((f) => f.startsWith('.heqet-import-')),
    'no temporary file left',
  )
})
