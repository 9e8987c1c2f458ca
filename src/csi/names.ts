// CSI volume name → heqet volume name. heqet (like heketi) takes names of
// [a-zA-Z0-9_-] only, and gluster must never see one that starts with '-';
// the CO may send any string up to 128 bytes. A name that passes unchanged
// is used as is (Kubernetes sends pvc-<uid>); anything rewritten or cut gets
// a hash of the original appended, so two different CSI names can never
// end up as the same heqet volume (idempotency is by name).
import { createHash } from 'node:crypto'
import type { VolumeParameters } from './parameters.ts'

/** gluster keeps <volume>.<host>.<brick path>.vol files: stay far below NAME_MAX */
export const MAX_VOLUME_NAME = 128
const ALLOWED = /^[a-zA-Z0-9][a-zA-Z0-9_-]*$/

function hash8(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8)
}

export function sanitizeVolumeName(wanted: string): string {
  if (ALLOWED.test(wanted) && wanted.length <= MAX_VOLUME_NAME) return wanted
  let clean = wanted.replace(/[^a-zA-Z0-9_-]/g, '-')
  if (!/^[a-zA-Z0-9]/.test(clean)) clean = `v${clean}`
  return `${clean.slice(0, MAX_VOLUME_NAME - 9)}-${hash8(wanted)}`
}

/**
 * The in-tree plugin named volumes <prefix>_<namespace>_<pvc>_<uuid> when a
 * volumenameprefix was set; here the CSI name (pvc-<uid>) plays the uuid, so
 * the name stays the same on every retry.
 */
export function heqetVolumeName(csiName: string, params: VolumeParameters): string {
  if (!params.namePrefix) return sanitizeVolumeName(csiName)
  const parts = [params.namePrefix]
  if (params.pvcNamespace && params.pvcName) parts.push(params.pvcNamespace, params.pvcName)
  parts.push(csiName)
  return sanitizeVolumeName(parts.join('_'))
}
