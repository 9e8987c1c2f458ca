// heketi's ssh command wrapping and the single-round-trip batch script, run
// with a local bash (no sshd needed).
import { spawnSync } from 'node:child_process'
import t from 'tap'
import {
  BatchFrameParser,
  buildBatchScript,
  SCRIPT_NO_TEMP_DIR_EXIT,
  wrapHeketiCommand,
} from '../executors/ssh-script.ts'

t.test('heketi wrapping', async (t) => {
  t.equal(
    wrapHeketiCommand(
      `/usr/sbin/lvm pvcreate -qq --metadatasize=128M --dataalignment=256K '/dev/sdb'`,
      false,
    ),
    `/bin/bash -c '/usr/sbin/lvm pvcreate -qq --metadatasize=128M --dataalignment=256K '\\''/dev/sdb'\\'''`,
    'spec test idea 1, byte for byte',
  )
  t.equal(wrapHeketiCommand('mkdir -p /x', true), `/bin/bash -c 'sudo mkdir -p /x'`)
  t.equal(wrapHeketiCommand(`a 'b' "c" $d`, false), `/bin/bash -c 'a '\\''b'\\'' "c" $d'`)
})

function runScript(commands: string[], env: Record<string, string> = {}) {
  const nonce = 'n0nce'
  const script = buildBatchScript(
    commands.map((c) => wrapHeketiCommand(c, false)),
    nonce,
  )
  const run = spawnSync('/bin/sh', ['-c', script], { env: { ...process.env, ...env } })
  const parser = new BatchFrameParser(nonce)
  // feed byte by byte: frames must survive any chunking
  for (const byte of run.stdout) parser.push(Buffer.from([byte]))
  return { status: run.status, parser }
}

t.test('batch script: results, framing, stop at first failure', async (t) => {
  const { status, parser } = runScript([
    `printf 'no newline'`,
    `echo "it's"; echo err >&2`,
    "printf 'HEQET 9 9 9 9\\n'",
    'exit 3',
    'echo never',
  ])
  t.equal(status, 0)
  t.same(parser.results, [
    { index: 0, exitCode: 0, stdout: 'no newline', stderr: '' },
    { index: 1, exitCode: 0, stdout: "it's\n", stderr: 'err\n' },
    { index: 2, exitCode: 0, stdout: 'HEQET 9 9 9 9\n', stderr: '' },
    { index: 3, exitCode: 3, stdout: '', stderr: '' },
  ])
  t.notOk(parser.ended)
})

t.test('batch script: END marker after full success; temp files removed', async (t) => {
  const { parser } = runScript(['true', 'echo ok'])
  t.ok(parser.ended)
  t.equal(parser.results.length, 2)
  const leftovers = spawnSync('/bin/sh', ['-c', 'ls /tmp | grep -c heqet-n0nce || true'])
    .stdout.toString()
    .trim()
  t.equal(leftovers, '0')
})

t.test('batch script: no writable temp dir → exit 97 before the start marker', async (t) => {
  const { status, parser } = runScript(['true'], { TMPDIR: '/nonexistent-dir' })
  t.equal(status, SCRIPT_NO_TEMP_DIR_EXIT)
  t.notOk(parser.sawStart)
})

t.test('frame parser: noise before the start marker is skipped, bad headers throw', async (t) => {
  const parser = new BatchFrameParser('abc')
  parser.push(Buffer.from('motd banner\nHEQET 0 0 0 0\nHEQET-START abc\nHEQET 0 0 2 1\nhiX'))
  t.same(parser.results, [{ index: 0, exitCode: 0, stdout: 'hi', stderr: 'X' }])
  t.throws(() => parser.push(Buffer.from('garbage\n')), /malformed batch frame header/)
  t.throws(() => buildBatchScript(['true'], 'not-alnum!'))
})
