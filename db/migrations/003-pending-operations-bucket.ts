// §7.4 step 3: the pending-operations bucket exists from now on.
import { type Migration, setAttribute } from './step.ts'

export const pendingOperationsBucket: Migration = {
  name: '003-pending-operations-bucket',
  up(doc) {
    setAttribute(doc, 'DB_HAS_PENDING_OPS_BUCKET', 'yes')
    return []
  },
}
