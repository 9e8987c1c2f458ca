// Runs a batch of command strings on a testbed node the way heketi's sshexec
// does: one connection per batch, one session per command, each command sent
// as `/bin/bash -c '<cmd>'` with `'` escaped, stopping at the first failure.
// Lets e2e tests exercise the exact node-side strings without heqet itself.

import { readFileSync } from 'node:fs'
import { Client } from 'ssh2'

export interface SshTarget {
  host: string
  port: number
  user: string
  keyFile: string
}

export interface SshCommandResult {
  command: string
  code: number
  stdout: string
  stderr: string
}

/** heketi's quoting: the whole command in single quotes, each `'` as `'\''`. */
export function heketiWrap(command: string): string {
  return `/bin/bash -c '${command.replaceAll("'", "'\\''")}'`
}

/** Resolves with one result per command that ran; the last one may have failed. */
export async function sshBatch(target: SshTarget, commands: string[]): Promise<SshCommandResult[]> {
  const client = await connect(target)
  try {
    const results: SshCommandResult[] = []
    for (const command of commands) {
      const res = await execOne(client, command)
      results.push(res)
      if (res.code !== 0) break
    }
    return results
  } finally {
    client.end()
  }
}

/** Like sshBatch, but any failing command is an error carrying its stderr. */
export async function sshBatchOk(target: SshTarget, commands: string[]): Promise<SshCommandResult[]> {
  const results = await sshBatch(target, commands)
  const last = results.at(-1)
  if (last && last.code !== 0) {
    throw new Error(`on ${target.host}: \`${last.command}\` exited ${last.code}: ${last.stderr.trim()}`)
  }
  return results
}

function connect(target: SshTarget): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client()
    client
      .once('ready', () => resolve(client))
      .once('error', reject)
      .connect({
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: readFileSync(target.keyFile),
        readyTimeout: 20_000,
      })
  })
}

function execOne(client: Client, command: string): Promise<SshCommandResult> {
  return new Promise((resolve, reject) => {
    client.exec(heketiWrap(command), (err, stream) => {
      if (err) return reject(err)
      let stdout = ''
      let stderr = ''
      let code = 1 // heketi: exit status 1 when the server sends none
      stream.on('data', (d: Buffer) => {
        stdout += d.toString()
      })
      stream.stderr.on('data', (d: Buffer) => {
        stderr += d.toString()
      })
      stream.on('exit', (status: number | null) => {
        if (typeof status === 'number') code = status
      })
      stream.on('close', () => resolve({ command, code, stdout, stderr }))
    })
  })
}
