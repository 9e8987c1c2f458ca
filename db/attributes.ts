// heketi's DB attributes (heketi-config-and-ops §7.3): markers of which
// upgrade steps a DB has been through, plus a generation id that changes
// whenever the DB's contents left heketi's control (an import). heqet writes
// them like heketi so its exports can go back into heketi without heketi
// re-running upgrades over them (step 1 would turn every cluster's block
// and file flags back on).
import { randomBytes } from 'node:crypto'
import type { DbAttributeEntry } from './entries.ts'
import type { Store } from './store.ts'

export const GENERATION_ID = 'DB_GENERATION_ID'

const MARKERS = [
  'DB_CLUSTER_HAS_FILE_BLOCK_FLAG',
  'DB_BRICK_HAS_SUBTYPE_FIELD',
  'DB_HAS_PENDING_OPS_BUCKET',
  'DB_DEVICE_HAS_ID_META',
] as const

export const KNOWN_ATTRIBUTES: readonly string[] = [...MARKERS, GENERATION_ID]

export const newGenerationId = (): string => randomBytes(16).toString('hex')

/** What a DB in today's layout carries. */
export function currentAttributes(generationId: string): DbAttributeEntry[] {
  return [...MARKERS.map((key) => ({ key, value: 'yes' })), { key: GENERATION_ID, value: generationId }]
}

/** Record the attributes a DB is missing (a new DB, or one from before heqet wrote them). */
export async function ensureDbAttributes(store: Store): Promise<void> {
  const missing = currentAttributes(newGenerationId()).filter(
    (a) => store.read((tx) => tx.get('attribute', a.key)) === undefined,
  )
  if (missing.length === 0) return
  await store.write((tx) => {
    for (const a of missing) tx.put('attribute', a.key, a)
  })
}
