// The executor contract suite against the real testbed: the SSH executor,
// and the kube executor through the fake Kubernetes API server.
import t from 'tap'
import type { Executor } from '../../executors/executor.ts'
import { type ContractHost, runExecutorContract } from '../contract/executor.case.ts'
import { kubeOnTestbed, remoteExecutor, sshRunner } from './lib/heqet.ts'
import { createTestbed, requireTestbed, type Testbed } from './lib/testbed.ts'

const BLOCK_BRICK_KIB = 3 * 1048576

function hostsOf(tb: Testbed): ContractHost[] {
  return tb.nodes.map((n) => ({ manage: n.ip, storage: n.ip, devices: n.devices }))
}

async function peered(tb: Testbed): Promise<void> {
  for (const node of tb.nodes.slice(1)) {
    const res = await tb.nodes[0]!.exec(`gluster --mode=script peer probe ${node.ip}`)
    if (res.code !== 0) throw new Error(`peer probe ${node.ip}: ${res.stderr}`)
  }
}

t.test('executor contract: ssh on the testbed', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 1, name: 'hqcssh' })
  t.teardown(() => tb.destroy())
  await peered(tb)
  const executor: Executor = remoteExecutor(sshRunner(tb))
  t.teardown(() => executor.close())
  // gluster-block over ssh runs in block.test.ts (scenario and faults); here only over
  // kube (below), to keep CI time: the case costs ~30 s per executor
  runExecutorContract(t, {
    make: () => ({ executor, hosts: hostsOf(tb), cleanup: async () => {} }),
    block: false,
  })
})

t.test('executor contract: kube on the testbed', async (t) => {
  if (!requireTestbed(t)) return
  const tb = await createTestbed({ nodes: 3, devicesPerNode: 1, name: 'hqckube' })
  t.teardown(() => tb.destroy())
  await peered(tb)
  const { runner, kube } = await kubeOnTestbed(tb)
  t.teardown(() => kube.stop())
  const executor = remoteExecutor(runner, (code) => `command terminated with exit code ${code}`)
  t.teardown(() => executor.close())
  // the gluster-block case on the testbed's stand-in: 3 GiB bricks hold its 1 GiB block
  // volume grown to 2 GiB with prealloc full
  runExecutorContract(t, {
    make: () => ({ executor, hosts: hostsOf(tb), cleanup: async () => {} }),
    brickSizeKiB: BLOCK_BRICK_KIB,
  })
})
