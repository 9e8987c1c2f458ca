// §7.4 step 2: bricks from before bricks knew their volume get its id (heketi
// walks each volume's bricks and stops at the first one that already has it);
// legacy bricks keep sub-type 0.
import { attribute, type Migration, setAttribute } from './step.ts'

const FLAG = 'DB_BRICK_HAS_SUBTYPE_FIELD'

export const brickVolumeIds: Migration = {
  name: '002-brick-volume-ids',
  up(doc) {
    const changed: string[] = []
    for (const [volumeId, volume] of Object.entries(doc.volumeentries)) {
      for (const brickId of volume.Bricks) {
        const brick = doc.brickentries[brickId]
        if (!brick) continue
        if (brick.Info.volume !== '') break
        brick.Info.volume = volumeId
        changed.push(`brick ${brickId} belongs to volume ${volumeId}`)
      }
    }
    if (attribute(doc, FLAG) === undefined) setAttribute(doc, FLAG, 'yes')
    return changed
  },
}
