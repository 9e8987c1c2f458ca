// The mock executor passes the executor contract; and each contract case can
// fail: a mock broken in the one way a case checks makes that case fail (run
// through a recording stand-in for tap).
import t from 'tap'
import type { BrickRequest, DeviceInfo, RebalanceStatus, VolumeRequest } from '../executors/executor.ts'
import { MockExecutor } from '../executors/mock.ts'
import { contractHosts, runExecutorContract } from './contract/executor.case.ts'
import { RecordingTest } from './contract/recording-test.ts'

runExecutorContract(t, {
  make: () => ({ executor: new MockExecutor({}), hosts: contractHosts(), cleanup: async () => {} }),
})

const hostsDown = new Set([contractHosts()[2]!.manage])

/** one broken mock per contract case, and the case that must catch it */
const broken: { what: string; catches: string; make: () => MockExecutor }[] = [
  {
    what: 'a rebalance that fails',
    catches: 'replica-3 volume over 3 hosts: create, info, expand, destroy',
    make: () =>
      new (class extends MockExecutor {
        override async rebalanceStatus(): Promise<RebalanceStatus> {
          return {
            state: 'failed',
            running: false,
            done: true,
            failed: true,
            files: 0,
            failures: 1,
            runtimeSec: 0,
          }
        }
      })(),
  },
  {
    what: 'glusterd down on one host',
    catches: 'glusterd check succeeds on every host',
    make: () =>
      new (class extends MockExecutor {
        override async glusterdCheck(...[host]: string[]) {
          if (hostsDown.has(host!)) throw new Error(`glusterd is not running on ${host}`)
        }
      })(),
  },
  {
    what: 'sizes that do not add up',
    catches: 'device setup reports sizes, resync agrees, teardown succeeds',
    make: () =>
      new (class extends MockExecutor {
        override async deviceSetup(): Promise<DeviceInfo> {
          return {
            totalKiB: 1048576,
            freeKiB: 1048576,
            usedKiB: 4096,
            extentSizeKiB: 4096,
            pvUuid: '',
            paths: [],
          }
        }
      })(),
  },
  {
    what: 'teardown that fails',
    catches: 'device setup reports sizes, resync agrees, teardown succeeds',
    make: () =>
      new (class extends MockExecutor {
        override async deviceTeardown(_dev: unknown, forget: boolean) {
          if (!forget) throw new Error('vgremove: VG is busy')
        }
      })(),
  },
  {
    what: 'a thin pool left behind',
    catches: 'brick create and destroy round trip reclaims space',
    make: () =>
      new (class extends MockExecutor {
        override async brickDestroy(_req: BrickRequest) {
          return { spaceReclaimed: false }
        }
      })(),
  },
  {
    what: 'an expansion forgotten',
    catches: 'replica-3 volume over 3 hosts: create, info, expand, destroy',
    make: () =>
      new (class extends MockExecutor {
        override async volumeExpand(_req: VolumeRequest) {}
      })(),
  },
  {
    what: 'a destroy that leaves the volume',
    catches: 'replica-3 volume over 3 hosts: create, info, expand, destroy',
    make: () =>
      new (class extends MockExecutor {
        override async volumeDestroy() {}
      })(),
  },
  {
    what: 'destroying an unknown volume fails',
    catches: 'destroying a volume that does not exist resolves',
    make: () =>
      new (class extends MockExecutor {
        override async volumeDestroy(host: string, name: string) {
          if (!this.glusterBricks(name))
            throw new Error(`volume delete: ${name}: failed: Volume ${name} does not exist`)
          return super.volumeDestroy(host, name)
        }
      })(),
  },
  {
    what: 'a block expand forgotten',
    catches: 'gluster-block in a replica-3 volume: create, list, info, expand, delete',
    make: () =>
      new (class extends MockExecutor {
        override async blockVolumeExpand() {}
      })(),
  },
  {
    what: 'a block delete that leaves the block volume',
    catches: 'gluster-block in a replica-3 volume: create, list, info, expand, delete',
    make: () =>
      new (class extends MockExecutor {
        override async blockVolumeDelete() {}
      })(),
  },
  {
    what: 'peer detach fails',
    catches: 'peer probe and detach',
    make: () =>
      new (class extends MockExecutor {
        override async peerDetach() {
          throw new Error('peer detach: failed: Brick(s) with the peer exist in cluster')
        }
      })(),
  },
]

async function recordedRun(make: () => MockExecutor): Promise<RecordingTest> {
  const rt = new RecordingTest()
  runExecutorContract(rt.asTest(), {
    make: () => ({ executor: make(), hosts: contractHosts(), cleanup: async () => {} }),
  })
  await rt.settled()
  return rt
}

t.test('every contract case can fail: each broken mock fails the case meant to catch it', async (t) => {
  const real = await recordedRun(() => new MockExecutor({}))
  t.same(real.failedCases(), {}, 'the recording run of the real mock passes')
  for (const b of broken) {
    const failed = (await recordedRun(b.make)).failedCases()
    t.ok(b.catches in failed, `${b.what}: caught by "${b.catches}"`, { failed })
  }
  const caught = new Set(broken.map((b) => b.catches))
  t.same(
    [...real.children.keys()].filter((name) => !caught.has(name)),
    [],
    'every case of the contract has a broken mock it catches',
  )
})
