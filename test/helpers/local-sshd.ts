// A throw-away OpenSSH server on 127.0.0.1 for SshRunner tests: temp host
// key, a generated ed25519 client key, its own HOME (so the login shell reads
// no slow ~/.bashrc) and a PATH whose first entry is a fake `sudo` that logs
// its arguments and runs them.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'

export const SSHD_PATH = '/usr/sbin/sshd'

export interface LocalSshd {
  port: number
  user: string
  dir: string
  privateKey: Buffer
  /** `ssh-ed25519 AAAA…` of the server */
  hostPublicKey: string
  /** arguments the fake sudo was called with, one line per call */
  sudoLog(): string[]
  stop(): Promise<void>
}

/** why the local sshd cannot run here, or undefined when it can */
export function localSshdUnavailable(): string | undefined {
  if (!existsSync(SSHD_PATH)) return `${SSHD_PATH} is not installed (apt-get install openssh-server)`
  try {
    mkdirSync('/run/sshd', { recursive: true }) // privilege separation directory
  } catch (err) {
    return `cannot create /run/sshd: ${(err as Error).message}`
  }
  return undefined
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

async function waitForListener(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`sshd did not listen on ${port}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** `env`: extra variables every session gets (sshd SetEnv) */
export async function startLocalSshd(env: Record<string, string> = {}): Promise<LocalSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'heqet-sshd-'))
  const home = join(dir, 'home')
  const bin = join(dir, 'bin')
  mkdirSync(home)
  mkdirSync(bin)
  for (const name of ['host_key', 'client_key']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'heqet-test', '-f', join(dir, name)])
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')))
  writeFileSync(
    join(bin, 'sudo'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${join(dir, 'sudo.log')}'\nexec "$@"\n`,
    { mode: 0o755 },
  )
  const user = userInfo().username
  const port = await freePort()
  const config = [
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin yes',
    `AllowUsers ${user}`,
    'MaxSessions 64',
    'MaxStartups 100',
    'LogLevel ERROR',
    `SetEnv PATH=${bin}:/usr/bin:/bin HOME=${home} ${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  ]
  writeFileSync(join(dir, 'sshd_config'), `${config.join('\n')}\n`)
  const child = spawn(SSHD_PATH, ['-D', '-e', '-f', join(dir, 'sshd_config'), '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  child.stderr.on('data', (d: Buffer) => {
    log += d.toString()
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    await Promise.race([
      waitForListener(port, Date.now() + 10_000),
      exited.then(() => {
        throw new Error(`sshd exited: ${log}`)
      }),
    ])
  } catch (err) {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM')
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const hostPub = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim().split(/\s+/)
  return {
    port,
    user,
    dir,
    privateKey: readFileSync(join(dir, 'client_key')),
    hostPublicKey: `${hostPub[0]} ${hostPub[1]}`,
    sudoLog: () => {
      const file = join(dir, 'sudo.log')
      return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
    },
    stop: async () => {
      // only the listener we started, by its PID; its session children end with their connections
      if (child.pid !== undefined && child.exitCode === null) {
        process.kill(child.pid, 'SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
