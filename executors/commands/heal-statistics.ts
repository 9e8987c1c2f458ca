// `gluster volume heal <vol> statistics` (text; gluster 10 has no --xml form):
//
//   Crawl statistics for brick no 2
//   Hostname of brick 172.31.209.14
//
//   Starting time of crawl: Sun Dec  6 22:48:56 2026
//
//   Ending time of crawl: Sun Dec  6 22:49:36 2026        (or: Crawl is in progress)
//
//   Type of crawl: FULL
//   No. of entries healed: 254
//   …
//
// one block per brick, one `Starting time` group per crawl. Times are the
// node's local clock and are not read: the history restarts whenever the
// self-heal daemons get a new graph (every replace-brick), which is what
// tells old crawls from new ones.
import type { HealCrawl } from '../executor.ts'

export function parseHealStatistics(stdout: string): HealCrawl[] {
  const crawls: HealCrawl[] = []
  let brick = -1
  let host = ''
  let crawl: HealCrawl | undefined
  for (const raw of stdout.split('\n')) {
    const line = raw.trim()
    const brickNo = /^Crawl statistics for brick no (\d+)$/.exec(line)
    const hostname = /^Hostname of brick (\S+)$/.exec(line)
    const type = /^Type of crawl: (\S+)$/.exec(line)
    const healed = /^No\. of entries healed: (\d+)$/.exec(line)
    if (brickNo) {
      brick = Number(brickNo[1])
      host = ''
      crawl = undefined
    } else if (hostname) {
      host = hostname[1]!
    } else if (/^Starting time of crawl:/.test(line) && brick >= 0) {
      crawl = { brick, host, type: '', inProgress: false, healed: 0 }
      crawls.push(crawl)
    } else if (line === 'Crawl is in progress' && crawl) {
      crawl.inProgress = true
    } else if (type && crawl) {
      crawl.type = type[1]!
    } else if (healed && crawl) {
      crawl.healed = Number(healed[1])
    }
  }
  return crawls
}
