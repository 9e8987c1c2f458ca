// §7.4 step 7: devices carry their PV UUID and paths (empty for old ones).
import { type Migration, setAttribute } from './step.ts'

export const deviceIdMeta: Migration = {
  name: '005-device-id-meta',
  up(doc) {
    setAttribute(doc, 'DB_DEVICE_HAS_ID_META', 'yes')
    return []
  },
}
