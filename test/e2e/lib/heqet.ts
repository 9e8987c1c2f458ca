// heqet wired to a testbed: the real SSH executor, or the kube executor
// through the fake Kubernetes API server whose pods run commands inside the
// testbed nodes.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { remoteConfigFromHeketi } from '../../../executors/config.ts'
import type { Executor } from '../../../executors/executor.ts'
import { KubeRunner } from '../../../executors/kube.ts'
import { RemoteExecutor } from '../../../executors/remote.ts'
import type { CommandRunner } from '../../../executors/runner.ts'
import { SshRunner } from '../../../executors/ssh.ts'
import { FakeKube } from './fake-kube.ts'
import type { Testbed } from './testbed.ts'

export function sshRunner(tb: Testbed): SshRunner {
  return new SshRunner({
    privateKey: readFileSync(tb.sshKeyFile),
    user: tb.sshUser,
    port: tb.sshPort,
    sudo: false,
  })
}

export function remoteExecutor(runner: CommandRunner, exitErrorText?: (code: number) => string): Executor {
  return new RemoteExecutor(runner, remoteConfigFromHeketi({}, {}), exitErrorText ? { exitErrorText } : {})
}

/** POSIX single-quoting of one argv word. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`
}

/** A fake API server with one gluster pod per testbed node (label glusterfs-node=<ip>). */
export async function kubeOnTestbed(tb: Testbed): Promise<{ runner: KubeRunner; kube: FakeKube }> {
  const kube = new FakeKube({
    pods: tb.nodes.map((node) => ({
      name: `glusterfs-${node.name}`,
      nodeName: node.ip,
      labels: { 'glusterfs-node': node.ip },
      exec: async (argv: string[]) => node.exec(argv.map(shellQuote).join(' ')),
    })),
  })
  await kube.start()
  const kubeconfig = await kube.writeKubeconfig(join(tb.dir, 'kubeconfig'))
  const runner = new KubeRunner({
    namespace: kube.namespace,
    glusterDaemonset: false,
    usePodNames: false,
    maxConnections: 64,
    disableTimeoutPrefix: false,
    kubeconfig,
  })
  return { runner, kube }
}
