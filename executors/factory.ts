// Picks the executor named by the configuration (glusterfs.executor):
// mock, ssh or kube, optionally wrapped by the fault injector (inject/...).
import type { Logger } from 'pino'
import { remoteConfigFromHeketi, sshConfigFromHeketi } from './config.ts'
import type { Executor } from './executor.ts'
import { InjectingRunner, Injector, injectingExecutor } from './inject.ts'
import { MockExecutor } from './mock.ts'
import { RemoteExecutor } from './remote.ts'
import type { CommandRunner } from './runner.ts'

/** What the factory reads of the server configuration (src/config.ts's Config has these). */
export interface ExecutorSettings {
  /** glusterfs.executor: mock, ssh, kubernetes, or one of those behind inject/ */
  executor: string
  mockDeviceSizeGiB: number
  sshexec: Record<string, unknown>
  kubeexec: Record<string, unknown>
  injectexec: Record<string, unknown>
}

export async function createExecutor(config: ExecutorSettings, log: Logger): Promise<Executor> {
  const warn = (message: string) => log.warn(message)
  const logger = { warn, info: (m: string) => log.info(m), debug: (m: string) => log.debug(m) }
  const inject = config.executor.startsWith('inject/') ? Injector.fromConfig(config.injectexec) : undefined
  if (config.executor === 'mock' || config.executor === 'inject/mock') {
    const mock = new MockExecutor({ deviceSizeGiB: config.mockDeviceSizeGiB })
    return inject ? injectingExecutor(mock, inject) : mock
  }
  let runner: CommandRunner
  let section: Record<string, unknown>
  // loaded on demand: the Kubernetes client alone costs ~120 MB of memory
  if (config.executor.endsWith('kube')) {
    const { KubeRunner, kubeConfigFromHeketi } = await import('./kube.ts')
    section = config.kubeexec
    runner = new KubeRunner(kubeConfigFromHeketi(section))
  } else {
    const { SshRunner } = await import('./ssh.ts')
    section = config.sshexec
    runner = SshRunner.fromConfig(sshConfigFromHeketi(section))
  }
  if (inject) runner = new InjectingRunner(runner, inject)
  return new RemoteExecutor(runner, remoteConfigFromHeketi(section, process.env, warn), {
    logger,
    // kube reports a silent failure the way kubectl does; ssh keeps heketi's text
    ...(config.executor.endsWith('kube')
      ? { exitErrorText: (code: number) => `command terminated with exit code ${code}` }
      : {}),
  })
}
