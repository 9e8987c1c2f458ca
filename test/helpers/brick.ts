// A 1 GiB data brick as the executors receive it (heketi §5.4 sizes, 4 MiB extents).
import type { BrickSpec } from '../../executors/commands/brick.ts'

export function brickFixture(deviceId: string, brickId: string, over: Partial<BrickSpec> = {}): BrickSpec {
  return {
    brickId,
    deviceId,
    path: `/var/lib/heketi/mounts/vg_${deviceId}/brick_${brickId}/brick`,
    sizeKiB: 1048576,
    tpSizeKiB: 1052672,
    poolMetadataSizeKiB: 8192,
    lvmThinPool: `tp_${brickId}`,
    lvmLv: '',
    gid: 0,
    arbiter: false,
    ...over,
  }
}
