// §7.4 steps 5 and 6: block-hosting volumes whose free size does not match
// their block volumes are repaired and locked; those without a reserve get
// heketi's 2 % reserve (or are locked when there is no room for it).
import type { HeketiDb, HeketiVolume } from '../heketi-format.ts'
import type { Migration } from './step.ts'

function blockVolumesSizeGiB(doc: HeketiDb, v: HeketiVolume): number {
  return v.Info.blockinfo.blockvolume.reduce(
    (sum, id) => sum + (doc.blockvolumeentries[id]?.Info.size ?? 0),
    0,
  )
}

const sizesAddUp = (v: HeketiVolume, bvSum: number) =>
  v.Info.size === v.Info.blockinfo.freesize + v.Info.blockinfo.reservedsize + bvSum

export const blockHostingSizes: Migration = {
  name: '004-block-hosting-sizes',
  up(doc) {
    const changed: string[] = []
    for (const [id, v] of Object.entries(doc.volumeentries)) {
      if (!v.Info.block || v.Pending.Id !== '') continue
      const bvSum = blockVolumesSizeGiB(doc, v)
      if (sizesAddUp(v, bvSum)) continue
      const free = v.Info.size - (v.Info.blockinfo.reservedsize + bvSum)
      if (free < 0 || free > v.Info.size) continue
      v.Info.blockinfo.freesize = free
      v.Info.blockinfo.restriction = 'locked-by-update'
      changed.push(`volume ${id} free size set to ${free} GiB and locked`)
    }
    for (const [id, v] of Object.entries(doc.volumeentries)) {
      const info = v.Info.blockinfo
      if (!v.Info.block || info.reservedsize > 0) continue
      if (!sizesAddUp(v, blockVolumesSizeGiB(doc, v)) || info.restriction === 'locked-by-update') continue
      const reserve = v.Info.size - Math.floor((v.Info.size * 98) / 100)
      if (info.freesize >= reserve) {
        info.freesize -= reserve
        info.reservedsize += reserve
        changed.push(`volume ${id} reserves ${reserve} GiB`)
      } else {
        info.restriction = 'locked-by-update'
        changed.push(`volume ${id} locked: no room for its ${reserve} GiB reserve`)
      }
    }
    return changed
  },
}
