// RemoteExecutor passes the executor contract against scripted fake nodes,
// and leaves no PV, VG, mount, fstab line or volume behind.
import t from 'tap'
import { remoteConfigFromHeketi } from '../executors/config.ts'
import { RecordingRunner } from '../executors/recording.ts'
import { RemoteExecutor } from '../executors/remote.ts'
import { contractHosts, runExecutorContract } from './contract/executor.case.ts'
import { FakeNodes } from './contract/fake-nodes.ts'

runExecutorContract(t, {
  make: () => {
    const hosts = contractHosts()
    const nodes = new FakeNodes(hosts.map((h) => h.manage))
    const executor = new RemoteExecutor(new RecordingRunner(nodes.responder), remoteConfigFromHeketi({}, {}))
    return {
      executor,
      hosts,
      cleanup: async () => {
        await executor.close()
        const left = nodes.leftovers()
        if (left) throw new Error(`left behind: ${left}`)
      },
    }
  },
})
