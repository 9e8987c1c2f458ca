import t from 'tap'
import { MockExecutor } from '../executors/mock.ts'
import { contractHosts, runExecutorContract } from './contract/executor.case.ts'

runExecutorContract(t, {
  make: () => ({ executor: new MockExecutor({}), hosts: contractHosts(), cleanup: async () => {} }),
})
