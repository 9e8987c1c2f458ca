// Picks the executor named by the configuration (glusterfs.executor).
import type { Logger } from 'pino'
import type { Config } from '../src/config.ts'
import type { Executor } from './executor.ts'
import { MockExecutor } from './mock.ts'

export async function createExecutor(config: Config, _log: Logger): Promise<Executor> {
  switch (config.executor) {
    case 'mock':
      return new MockExecutor({ deviceSizeGiB: config.mockDeviceSizeGiB })
    default:
      throw new Error(`executor ${config.executor} is not available yet`)
  }
}
