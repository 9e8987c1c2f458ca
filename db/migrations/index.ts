// heketi's DB upgrade steps (heketi-config-and-ops §7.4), one numbered file
// each, applied in order to an export before it is imported. heketi runs
// them at every read-write start; heqet runs them once, at import, so an
// export written by any heketi version arrives in today's shape. Each step
// is recorded the way heketi records it: an attribute set to `yes`.
import type { HeketiDb } from '../heketi-format.ts'
import { clusterFileBlockFlag } from './001-cluster-file-block-flag.ts'
import { brickVolumeIds } from './002-brick-volume-ids.ts'
import { pendingOperationsBucket } from './003-pending-operations-bucket.ts'
import { blockHostingSizes } from './004-block-hosting-sizes.ts'
import { deviceIdMeta } from './005-device-id-meta.ts'
import type { Migration } from './step.ts'

export const MIGRATIONS: readonly Migration[] = [
  clusterFileBlockFlag,
  brickVolumeIds,
  pendingOperationsBucket,
  blockHostingSizes,
  deviceIdMeta,
]

/** Apply every step in order; returns what changed, as `<step>: <change>` lines. */
export function upgradeHeketiExport(doc: HeketiDb): string[] {
  return MIGRATIONS.flatMap((m) => m.up(doc).map((line) => `${m.name}: ${line}`))
}
