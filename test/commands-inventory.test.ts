// Byte-exact: the read-only node inventory of the state repair, and its parser.
import t from 'tap'
import {
  brickDirsCommand,
  brickFstabCommand,
  brickMountsCommand,
  lvsReportCommand,
  parseInventory,
} from '../executors/commands/inventory.ts'
import { DEFAULT_REMOTE_EXECUTOR_CONFIG as cfg } from '../executors/config.ts'

t.test('inventory commands', async (t) => {
  t.equal(lvsReportCommand(cfg), '/usr/sbin/lvm lvs --reportformat json --units k')
  t.equal(brickMountsCommand(), `awk '$2 ~ "^/var/lib/heketi/mounts/" {print $2}' /proc/self/mounts`)
  t.equal(brickFstabCommand(cfg), `awk '$2 ~ "^/var/lib/heketi/mounts/" {print $2}' '/etc/fstab'`)
  t.equal(
    brickDirsCommand(),
    "find /var/lib/heketi/mounts -mindepth 2 -maxdepth 2 -type d -name 'brick_*' 2>/dev/null || true",
  )
  t.throws(() => brickFstabCommand({ fstab: "/etc/fstab' ; rm -rf /" }))
})

t.test('inventory parser', async (t) => {
  const lvs = JSON.stringify({
    report: [
      {
        lv: [
          { vg_name: 'vg_a', lv_name: 'brick_b' },
          { vg_name: 'vg_a', lv_name: 'tp_b' },
        ],
      },
    ],
  })
  t.same(parseInventory(lvs, '/m/1\n', '/m/1\n/m/2\n', ''), {
    lvs: ['vg_a/brick_b', 'vg_a/tp_b'],
    mounts: ['/m/1'],
    fstab: ['/m/1', '/m/2'],
    brickDirs: [],
  })
  t.same(parseInventory('{"report":[{}]}', '', '', '').lvs, [])
  t.throws(() => parseInventory('not json', '', '', ''))
})
