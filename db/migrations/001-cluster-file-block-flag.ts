// §7.4 step 1: clusters from before the block/file flags take both volume kinds.
import { attribute, type Migration, setAttribute } from './step.ts'

const FLAG = 'DB_CLUSTER_HAS_FILE_BLOCK_FLAG'

export const clusterFileBlockFlag: Migration = {
  name: '001-cluster-file-block-flag',
  up(doc) {
    if (attribute(doc, FLAG) === 'yes') return []
    const changed = Object.entries(doc.clusterentries).map(([id, c]) => {
      c.Info.block = true
      c.Info.file = true
      return `cluster ${id} takes block and file volumes`
    })
    setAttribute(doc, FLAG, 'yes')
    return changed
  },
}
