// SshRunner against a real OpenSSH server started by the test on 127.0.0.1.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadKnownHostsFromEnv } from '../executors/known-hosts.ts'
import { SSH_COMMAND_TIMEOUT, SshRunner, type SshRunnerOptions } from '../executors/ssh.ts'
import { localSshdUnavailable, startLocalSshd } from './helpers/local-sshd.ts'
import { requirePrerequisite } from './helpers/prerequisite.ts'

const HOST = '127.0.0.1'
const quick = { timeoutMinutes: 1 }
const unavailable = localSshdUnavailable()

t.test('SshRunner against a local sshd', async (t) => {
  if (!requirePrerequisite(t, unavailable)) return
  const sshd = await startLocalSshd()
  t.teardown(() => sshd.stop())

  const runner = (t: Test, options: Partial<SshRunnerOptions> = {}) => {
    const r = new SshRunner({
      privateKey: sshd.privateKey,
      user: sshd.user,
      port: sshd.port,
      sudo: false,
      knownHosts: undefined,
      ...options,
    })
    t.teardown(() => r.close())
    return r
  }

  for (const singleRoundTrip of [true, false]) {
    const mode = singleRoundTrip ? 'single round trip' : 'one session per command'

    t.test(`${mode}: quoting of ' " $ round-trips`, async (t) => {
      const r = runner(t, { singleRoundTrip })
      const results = await r.runBatch(
        HOST,
        [`echo "it's a \\"dq\\" and \\$HOME"`, `echo 'single $HOME'`, `printf '%s' "back\\\\slash"`],
        quick,
      )
      t.same(
        results.map((x) => x.stdout),
        [`it's a "dq" and $HOME\n`, 'single $HOME\n', 'back\\slash'],
      )
      t.same(
        results.map((x) => x.command),
        [`echo "it's a \\"dq\\" and \\$HOME"`, `echo 'single $HOME'`, `printf '%s' "back\\\\slash"`],
      )
    })

    t.test(`${mode}: exit codes, stderr, stop at first failure`, async (t) => {
      const r = runner(t, { singleRoundTrip })
      const results = await r.runBatch(
        HOST,
        ['echo one', 'echo err >&2; echo out; exit 7', 'echo never'],
        quick,
      )
      t.same(results, [
        { command: 'echo one', exitCode: 0, stdout: 'one\n', stderr: '' },
        { command: 'echo err >&2; echo out; exit 7', exitCode: 7, stdout: 'out\n', stderr: 'err\n' },
      ])
    })

    t.test(`${mode}: large, marker-like and unterminated output`, async (t) => {
      const r = runner(t, { singleRoundTrip })
      const results = await r.runBatch(
        HOST,
        [
          "head -c 300000 /dev/zero | tr '\\0' a",
          "printf 'HEQET 0 0 0 0\\nHEQET-END\\n'; printf 'HEQET-START x\\n' >&2",
          "printf 'h\\303\\251llo'",
        ],
        quick,
      )
      t.equal(results[0].stdout.length, 300000)
      t.match(results[0].stdout, /^a+$/)
      t.equal(results[1].stdout, 'HEQET 0 0 0 0\nHEQET-END\n')
      t.equal(results[1].stderr, 'HEQET-START x\n')
      t.equal(results[2].stdout, 'héllo')
    })

    t.test(`${mode}: per-command timeout kills and fails the batch`, async (t) => {
      const r = runner(t, { singleRoundTrip })
      const started = Date.now()
      await t.rejects(r.runBatch(HOST, ['true', 'sleep 30'], { timeoutMinutes: 0.02 }), {
        message: SSH_COMMAND_TIMEOUT,
      })
      t.ok(Date.now() - started < 10_000, 'gave up at the timeout')
      const after = await r.runBatch(HOST, ['echo alive'], quick)
      t.equal(after[0].stdout, 'alive\n', 'the runner still works afterwards')
    })

    t.test(`${mode}: the timeout is per command, not per batch`, async (t) => {
      const r = runner(t, { singleRoundTrip })
      // 3 × 0.8 s > 1.8 s, but each command stays under it
      const results = await r.runBatch(HOST, ['sleep 0.8', 'sleep 0.8', 'sleep 0.8'], {
        timeoutMinutes: 0.03,
      })
      t.equal(results.length, 3)
    })
  }

  t.test('one connection per host, reused across batches (server-side check)', async (t) => {
    const r = runner(t)
    const ports = new Set<string>()
    for (let i = 0; i < 5; i++) {
      const [result] = await r.runBatch(HOST, ['echo $SSH_CONNECTION'], quick)
      ports.add(result.stdout.split(' ')[1])
    }
    t.equal(ports.size, 1, 'same client port every time')
    t.equal(r.connectionsOpened, 1)
  })

  t.test('idle connections close; the next batch reconnects', async (t) => {
    const r = runner(t, { idleCloseMs: 100 })
    await r.runBatch(HOST, ['true'], quick)
    await new Promise((resolve) => setTimeout(resolve, 400))
    const [result] = await r.runBatch(HOST, ['echo again'], quick)
    t.equal(result.stdout, 'again\n')
    t.equal(r.connectionsOpened, 2)
  })

  t.test('a connection killed under the runner is replaced', async (t) => {
    const r = runner(t)
    const [pid] = await r.runBatch(HOST, ['echo $PPID'], quick)
    t.ok(pid.stdout.trim())
    // kill this connection's sshd session process (found from the login shell's parent chain)
    await r
      .runBatch(HOST, ['kill -9 $(ps -o ppid= -p $PPID)'], { timeoutMinutes: 0.05 })
      .catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, 200))
    const [result] = await r.runBatch(HOST, ['echo back'], quick)
    t.equal(result.stdout, 'back\n')
    t.ok(r.connectionsOpened >= 2)
  })

  t.test('batches on one host never interleave', async (t) => {
    const r = runner(t)
    const log = join(sshd.dir, 'order.log')
    await Promise.all([
      r.runBatch(HOST, [`echo a1 >> ${log}; sleep 0.3`, `echo a2 >> ${log}`], quick),
      r.runBatch(HOST, [`echo b1 >> ${log}`], quick),
      r.runBatch(HOST, [`echo c1 >> ${log}`], quick),
    ])
    const [result] = await r.runBatch(HOST, [`cat ${log}`], quick)
    t.equal(result.stdout, 'a1\na2\nb1\nc1\n')
  })

  t.test('sudo prefix: the node sees `sudo <command>`', async (t) => {
    const r = runner(t, { sudo: true })
    const results = await r.runBatch(HOST, [`echo "it's" ok`, 'echo two'], quick)
    t.same(
      results.map((x) => x.stdout),
      ["it's ok\n", 'two\n'],
    )
    t.same(sshd.sudoLog().slice(-2), ["echo it's ok", 'echo two'])
  })

  t.test('host-key verification with SSH_KNOWN_HOSTS', async (t) => {
    const good = join(sshd.dir, 'known_hosts_good')
    const bad = join(sshd.dir, 'known_hosts_bad')
    writeFileSync(good, `[${HOST}]:${sshd.port} ${sshd.hostPublicKey}\n`)
    const otherKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEOQq2aBUwYt3rx5QKFe7uvx1uYoTx2vMTCzJ9HHX2hV'
    writeFileSync(bad, `[${HOST}]:${sshd.port} ${otherKey}\n${HOST} ${sshd.hostPublicKey}\n`)
    const empty = join(sshd.dir, 'known_hosts_empty')
    writeFileSync(empty, '# nothing\n')
    const trusted = runner(t, { knownHosts: loadKnownHostsFromEnv({ SSH_KNOWN_HOSTS: `${empty}:${good}` }) })
    t.equal((await trusted.runBatch(HOST, ['echo ok'], quick))[0].stdout, 'ok\n')
    const untrusted = runner(t, { knownHosts: loadKnownHostsFromEnv({ SSH_KNOWN_HOSTS: bad }) })
    await t.rejects(untrusted.runBatch(HOST, ['echo no'], quick), {
      message: /Unable to connect to 127.0.0.1/,
    })
  })

  t.test('connection failures reject quickly', async (t) => {
    const refused = runner(t, { port: 1 })
    await t.rejects(refused.runBatch(HOST, ['true'], quick), { message: /Unable to connect to 127.0.0.1:1/ })
    const badKey = runner(t, { privateKey: sshd.privateKey, user: 'nobody-here' })
    await t.rejects(badKey.runBatch(HOST, ['true'], quick), { message: /Unable to connect/ })
    // a blackholed address must not hang: the connect timeout ends it
    const started = Date.now()
    const dead = runner(t, { connectTimeoutMs: 1000 })
    await t.rejects(dead.runBatch('10.255.255.1', ['true'], quick), {
      message: /Unable to connect to 10.255.255.1/,
    })
    t.ok(Date.now() - started < 5000, 'connect gave up within the timeout')
  })

  t.test(
    'single round trip: one session per batch instead of one per command (8-command batch)',
    async (t) => {
      const batch = Array.from({ length: 8 }, (_, i) => `echo ${i}`)
      const measure = async (singleRoundTrip: boolean) => {
        const r = runner(t, { singleRoundTrip })
        await r.runBatch(HOST, batch, quick) // connect + warm up
        const rounds = 8
        const sessionsBefore = r.sessionsOpened
        const started = performance.now()
        for (let i = 0; i < rounds; i++) await r.runBatch(HOST, batch, quick)
        return {
          ms: (performance.now() - started) / rounds,
          sessions: (r.sessionsOpened - sessionsBefore) / rounds,
        }
      }
      const perCommand = await measure(false)
      const single = await measure(true)
      // the time is information only (speed belongs in bench/); the sessions are what the mode changes
      t.comment(
        `8-command batch: single round trip ${single.ms.toFixed(1)} ms, one session per command ${perCommand.ms.toFixed(1)} ms`,
      )
      t.equal(single.sessions, 1, 'one exec session per batch')
      t.equal(perCommand.sessions, 8, 'one exec session per command without it')
    },
  )
})

t.test('a node without a writable temp dir falls back to one session per command', async (t) => {
  if (!requirePrerequisite(t, unavailable)) return
  const sshd = await startLocalSshd({ TMPDIR: '/nonexistent-heqet-tmp' })
  t.teardown(() => sshd.stop())
  const r = new SshRunner({ privateKey: sshd.privateKey, user: sshd.user, port: sshd.port, sudo: false })
  t.teardown(() => r.close())
  for (let i = 0; i < 2; i++) {
    const results = await r.runBatch(HOST, ['echo $TMPDIR', 'exit 4', 'echo never'], quick)
    t.same(
      results.map((x) => [x.stdout, x.exitCode]),
      [
        ['/nonexistent-heqet-tmp\n', 0],
        ['', 4],
      ],
    )
  }
})
