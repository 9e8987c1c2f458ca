// A scripted responder that behaves like a few GlusterFS nodes for the exact
// command strings heketi sends: LVM volume groups and thin pools, mounts and
// fstab per node, and one gluster cluster. Enough for RemoteExecutor to pass
// the executor contract over a RecordingRunner; not a general simulator.
import { randomUUID } from 'node:crypto'
import type { ScriptedResponder } from '../../executors/recording.ts'
import type { CommandResult } from '../../executors/runner.ts'
import { shellWords } from '../helpers/shell-words.ts'

const EXTENT_KiB = 4096
const PV_LINK = '/dev/disk/by-id/lvm-pv-uuid-'
type Reply = Partial<CommandResult>

interface VolumeGroup {
  device: string
  pvUuid: string
  totalExtents: number
  /** LV name → extents; thin LVs (0 extents) name their pool */
  lvs: Map<string, { extents: number; pool?: string }>
}

interface FakeNode {
  pvs: Map<string, string> // device → pv uuid
  vgs: Map<string, VolumeGroup>
  mounts: Map<string, string> // mount point → device
  fstab: string[]
}

interface FakeBlock {
  gbid: string
  sizeGiB: number
  ha: number
  hosts: string[]
  password: string
}

interface FakeVolume {
  id: string
  bricks: string[]
  options: Map<string, string>
  started: boolean
  /** gluster-block volumes in this (block-hosting) volume */
  blocks: Map<string, FakeBlock>
  /** gluster's defrag status (1 in progress, 2 stopped, 3 completed); status looks since the start */
  rebalance?: { status: number; looks: number }
}

const fail = (stderr: string, exitCode = 5): Reply => ({ exitCode, stderr })

export class FakeNodes {
  private readonly nodes = new Map<string, FakeNode>()
  readonly volumes = new Map<string, FakeVolume>()
  /** storage hostnames probed into the trusted pool (not counted as leftovers) */
  readonly peers = new Set<string>()

  constructor(
    manageHosts: string[],
    private readonly deviceSizeKiB = 100 * 1048576,
  ) {
    for (const host of manageHosts)
      this.nodes.set(host, { pvs: new Map(), vgs: new Map(), mounts: new Map(), fstab: [] })
  }

  readonly responder: ScriptedResponder = (host, command) => {
    const node = this.nodes.get(host)
    if (!node) return new Error(`Unable to connect to ${host}:22: no route to host`)
    const words = shellWords(command)
    if (words[0] === 'awk') {
      // awk '<program>' <dev> <mnt> <opts> <fstab>
      node.fstab.push(`${words[2]} ${words[3]} xfs ${words[4]} 1 2`)
      return undefined
    }
    // the rules below read the unquoted words
    command = words.join(' ')
    const lvm = command.match(/^\/usr\/sbin\/lvm (\S+) (.*)$/)
    if (lvm) return this.lvm(node, lvm[1], lvm[2])
    const gluster = command.match(/^gluster --mode=script --timeout=\d+ (?:--xml )?(.*)$/)
    if (gluster) return this.gluster(gluster[1].trim().split(/\s+/))
    if (words[0] === 'gluster-block') return this.glusterBlock(words.slice(1))
    return this.shell(node, command)
  }

  private shell(node: FakeNode, command: string): Reply | undefined {
    const rules: [RegExp, (m: RegExpMatchArray) => Reply | undefined][] = [
      [/^systemctl status glusterd$/, () => ({ stdout: 'active (running)' })],
      [
        /^\/usr\/bin\/udevadm info --query=symlink --name=\/dev\/(\S+)$/,
        (m) => ({
          stdout: `disk/by-id/fake-${m[1]} disk/by-id/lvm-pv-uuid-${node.pvs.get(`/dev/${m[1]}`)}\n`,
        }),
      ],
      [
        /^mount -o \S+ (\S+) (\S+)$/,
        (m) => {
          node.mounts.set(m[2], m[1])
          return undefined
        },
      ],
      [
        /^mount$/,
        () => ({ stdout: [...node.mounts].map(([mnt, dev]) => `${dev} on ${mnt} type xfs (rw)\n`).join('') }),
      ],
      [
        /^umount (\S+)$/,
        (m) => (node.mounts.delete(m[1]) ? undefined : fail(`umount: ${m[1]}: not mounted.`, 32)),
      ],
      [
        /^sed -i\.save \/(brick_[0-9a-f]+)\/d \S+$/,
        (m) => {
          node.fstab = node.fstab.filter((line) => !line.includes(m[1]))
          return undefined
        },
      ],
      [/^(mkdir|rmdir|chown|chmod|mkfs\.xfs|wipefs) /, () => undefined],
    ]
    for (const [pattern, answer] of rules) {
      const m = command.match(pattern)
      if (m) return answer(m)
    }
    return fail(`bash: unexpected command: ${command}`, 127)
  }

  /** device behind a path, following /dev/disk/by-id/lvm-pv-uuid-<uuid> links */
  private resolve(node: FakeNode, path: string): string {
    if (!path.startsWith(PV_LINK)) return path
    return [...node.pvs].find(([, uuid]) => path === `${PV_LINK}${uuid}`)?.[0] ?? path
  }

  /** PVs and VGs of one node, e.g. ['pv /dev/sdb', 'vg vg_<id>'] */
  lvmOf(host: string): string[] {
    const node = this.nodes.get(host)
    if (!node) return []
    return [...[...node.pvs.keys()].map((d) => `pv ${d}`), ...[...node.vgs.keys()].map((v) => `vg ${v}`)]
  }

  /** every gluster-block volume, as `<hosting volume>/<name>` */
  blocks(): string[] {
    return [...this.volumes].flatMap(([vol, v]) => [...v.blocks.keys()].map((b) => `${vol}/${b}`))
  }

  /** what is left behind on the nodes and in the cluster, '' when clean */
  leftovers(): string {
    const found: string[] = []
    for (const [host, node] of this.nodes) {
      if (node.pvs.size + node.vgs.size + node.mounts.size + node.fstab.length > 0) {
        found.push(
          `${host}: ${node.pvs.size} PVs, ${node.vgs.size} VGs, ${node.mounts.size} mounts, ${node.fstab.length} fstab lines`,
        )
      }
    }
    if (this.volumes.size > 0) found.push(`volumes: ${[...this.volumes.keys()].join(', ')}`)
    return found.join('; ')
  }

  private lvm(node: FakeNode, verb: string, args: string): Reply | undefined {
    const last = this.resolve(node, args.split(' ').at(-1)!.replaceAll("'", ''))
    const vgOf = (name: string) => node.vgs.get(name.split('/')[0])
    switch (verb) {
      case 'pvcreate':
        if (node.pvs.has(last)) return fail(`Can't initialize physical volume "${last}" of volume group`)
        node.pvs.set(last, randomUUID().slice(0, 23))
        return undefined
      case 'vgcreate': {
        const [vg, device] = args.split(' ').slice(-2)
        node.vgs.set(vg, {
          device,
          pvUuid: node.pvs.get(device)!,
          totalExtents: Math.floor(this.deviceSizeKiB / EXTENT_KiB),
          lvs: new Map(),
        })
        return undefined
      }
      case 'pvs':
      case 'vgs': {
        const vg = verb === 'vgs' ? node.vgs.get(last) : [...node.vgs.values()].find((g) => g.device === last)
        const uuid = verb === 'vgs' ? vg?.pvUuid : node.pvs.get(last)
        if (!uuid) return fail(`  Failed to find physical volume "${last}".`)
        const entry = { pv_name: vg?.device ?? last, pv_uuid: uuid, vg_name: vg ? last : '' }
        return { stdout: JSON.stringify({ report: [{ [verb === 'vgs' ? 'vg' : 'pv']: [entry] }] }) }
      }
      case 'vgdisplay': {
        const vg = node.vgs.get(last)
        if (!vg) return fail(`  Volume group "${last}" not found`)
        const used = [...vg.lvs.values()].reduce((sum, lv) => sum + lv.extents, 0)
        const fields = [last, 'r/w', 772, -1, 0, 0, 0, -1, 0, 1, 1, vg.totalExtents * EXTENT_KiB]
        return {
          stdout: `  ${[...fields, EXTENT_KiB, vg.totalExtents, used, vg.totalExtents - used, 'uuid'].join(':')}\n`,
        }
      }
      case 'vgremove': {
        const vg = node.vgs.get(last)
        if (!vg) return fail(`  Volume group "${last}" not found`)
        if (vg.lvs.size > 0)
          return fail(`  Volume group "${last}" still contains ${vg.lvs.size} logical volume(s)`)
        node.vgs.delete(last)
        return undefined
      }
      case 'pvremove':
        return node.pvs.delete(last) ? undefined : fail(`  No PV found on device ${last}.`)
      case 'lvcreate': {
        const m = args.match(
          /--poolmetadatasize (\d+)K .* --size (\d+)K --thin (\S+)\/(\S+) --virtualsize \d+K --name (\S+)$/,
        )
        const vg = m && node.vgs.get(m[3])
        if (!m || !vg) return fail('  Volume group not found')
        vg.lvs.set(m[4], { extents: (Number(m[1]) + Number(m[2])) / EXTENT_KiB })
        vg.lvs.set(m[5], { extents: 0, pool: m[4] })
        return undefined
      }
      case 'lvremove':
        return vgOf(last)?.lvs.delete(last.split('/')[1])
          ? undefined
          : fail(`  Failed to find logical volume "${last}"`)
      case 'lvs': {
        const vg = vgOf(last)
        const pool = last.split('/')[1]
        if (!vg?.lvs.has(pool)) return fail(`  Failed to find logical volume "${last}"`)
        return { stdout: `  ${[...vg.lvs.values()].filter((lv) => lv.pool === pool).length}\n` }
      }
    }
    return fail(`  Unknown LVM command ${verb}`)
  }

  private glusterBlock(words: string[]): Reply {
    return glusterBlockOn(this.volumes, words)
  }

  private gluster(words: string[]): Reply | undefined {
    const [group, verb, name] = words
    if (group === 'snapshot') return undefined
    if (group === 'peer') {
      const host = words[2]!
      if (verb === 'probe') this.peers.add(host)
      else if (verb === 'detach' && !this.peers.delete(host))
        return fail(`peer detach: failed: ${host} is not part of cluster`, 1)
      return undefined
    }
    if (group !== 'volume') return fail(`unrecognized word: ${group}`, 1)
    const volume = this.volumes.get(name)
    const missing = fail(`volume ${verb}: ${name}: failed: Volume ${name} does not exist`, 1)
    const bricks = words.slice(3).filter((w) => w.includes(':/'))
    switch (verb) {
      case 'create':
        if (volume) return fail(`volume create: ${name}: failed: Volume ${name} already exists`, 1)
        this.volumes.set(name, {
          id: randomUUID(),
          bricks,
          options: new Map(),
          started: false,
          blocks: new Map(),
        })
        return undefined
      case 'add-brick':
        if (!volume) return missing
        volume.bricks.push(...bricks)
        return undefined
      case 'set':
        if (!volume) return missing
        volume.options.set(words[3], words.slice(4).join(' '))
        return undefined
      case 'start':
      case 'stop':
        if (!volume) return missing
        volume.started = verb === 'start'
        return undefined
      case 'delete':
        return this.volumes.delete(name) ? undefined : missing
      case 'rebalance':
        return volume ? rebalance(volume, name, words[3]) : missing
      case 'info':
        if (!volume)
          return {
            exitCode: 1,
            stdout: xml(`<opRet>-1</opRet><opErrstr>Volume ${name} does not exist</opErrstr>`),
          }
        return { stdout: xml(`<opRet>0</opRet><opErrstr/>${volumeXml(name, volume)}`) }
      case 'heal':
        if (!volume) return missing
        return {
          stdout: xml(
            `<healInfo><bricks>${volume.bricks.map((b) => `<brick hostUuid="u"><name>${b}</name><status>Connected</status><numberOfEntries>0</numberOfEntries></brick>`).join('')}</bricks></healInfo><opRet>0</opRet>`,
          ),
        }
    }
    return fail(`unrecognized word: ${verb}`, 1)
  }
}

/** gluster-block's JSON failure, on stderr */
const gbFail = (errMsg: string, errCode = 2): Reply => ({
  exitCode: 1,
  stderr: JSON.stringify({ RESULT: 'FAIL', errCode, errMsg }),
})

const gbSize = (sizeGiB: number) => `${sizeGiB.toFixed(1)} GiB`

/**
 * gluster-block for FakeNodes: exactly heketi's argv (§8), state kept in the
 * hosting volume, answers in gluster-block's JSON forms.
 */
function glusterBlockOn(volumes: Map<string, FakeVolume>, words: string[]): Reply {
  const [verb, target = ''] = words
  if (words.at(-1) !== '--json') return gbFail(`unexpected arguments: ${words.join(' ')}`, 22)
  const [hosting = '', name = ''] = target.split('/')
  const volume = volumes.get(hosting)
  if (!volume) return gbFail(`volume ${hosting} does not exist`, 2)
  const block = volume.blocks.get(name)
  const missing = gbFail(`block ${name} doesn't exist`, 2)
  switch (verb) {
    case 'create': {
      // create <bhv>/<name> ha <n> auth <enable|disable> prealloc <p> <hosts> <size>GiB --json
      const m = words
        .join(' ')
        .match(
          /^create (\S+) ha (\d+) auth (enable|disable) prealloc ([a-zA-Z0-9_-]+) (\S+) (\d+)GiB --json$/,
        )
      if (!m || words.length !== 11) return gbFail(`unexpected arguments: ${words.join(' ')}`, 22)
      if (block) return gbFail(`BLOCK with name: '${name}' already EXIST`, 17)
      const hosts = m[5]!.split(',')
      const gbid = randomUUID()
      const created: FakeBlock = { gbid, sizeGiB: Number(m[6]), ha: Number(m[2]), hosts, password: '' }
      if (m[3] === 'enable') created.password = randomUUID()
      volume.blocks.set(name, created)
      return {
        stdout: JSON.stringify({
          IQN: `iqn.2016-12.org.gluster-block:${gbid}`,
          ...(created.password ? { USERNAME: gbid, PASSWORD: created.password } : {}),
          'PORTAL(S)': hosts.map((h) => `${h}:3260`),
          RESULT: 'SUCCESS',
        }),
      }
    }
    case 'delete':
      if (words.length !== 3) return gbFail(`unexpected arguments: ${words.join(' ')}`, 22)
      if (!block) return missing
      volume.blocks.delete(name)
      return { stdout: JSON.stringify({ 'SUCCESSFUL ON': block.hosts, RESULT: 'SUCCESS' }) }
    case 'modify': {
      const m = words.join(' ').match(/^modify \S+ size (\d+)GiB --json$/)
      if (!m) return gbFail(`unexpected arguments: ${words.join(' ')}`, 22)
      if (!block) return missing
      block.sizeGiB = Number(m[1])
      return {
        stdout: JSON.stringify({
          IQN: `iqn.2016-12.org.gluster-block:${block.gbid}`,
          SIZE: gbSize(block.sizeGiB),
          'SUCCESSFUL ON': block.hosts,
          RESULT: 'SUCCESS',
        }),
      }
    }
    case 'info':
      if (!block) return missing
      return {
        stdout: JSON.stringify({
          NAME: name,
          VOLUME: hosting,
          GBID: block.gbid,
          SIZE: gbSize(block.sizeGiB),
          HA: block.ha,
          PASSWORD: block.password,
          'EXPORTED ON': block.hosts,
        }),
      }
    case 'list':
      if (words.length !== 3 || target.includes('/'))
        return gbFail(`unexpected arguments: ${words.join(' ')}`, 22)
      return { stdout: JSON.stringify({ blocks: [...volume.blocks.keys()], RESULT: 'SUCCESS' }) }
  }
  return gbFail(`unknown command: ${verb}`, 22)
}

const xml = (body: string) =>
  `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cliOutput>${body}</cliOutput>\n`

const REBALANCE_TEXT: Record<number, string> = { 1: 'in progress', 2: 'stopped', 3: 'completed' }

/** `volume rebalance <name> start|status --xml|stop`: a start reads in progress once, then completed */
function rebalance(volume: FakeVolume, name: string, action: string | undefined): Reply | undefined {
  const r = volume.rebalance
  if (action === 'start') {
    if (r?.status === 1)
      return fail(`volume rebalance: ${name}: failed: Rebalance on ${name} is already started`, 1)
    volume.rebalance = { status: 1, looks: 0 }
    return undefined
  }
  if (!r) return fail(`volume rebalance: ${name}: failed: Rebalance not started for volume ${name}.`, 1)
  if (action === 'stop') {
    if (r.status !== 1)
      return fail(`volume rebalance: ${name}: failed: Rebalance not started for volume ${name}.`, 1)
    r.status = 2
    return undefined
  }
  if (r.status === 1 && r.looks++ > 0) r.status = 3
  const text = REBALANCE_TEXT[r.status]
  const row = (tag: string) =>
    `<${tag}><files>0</files><size>0</size><lookups>0</lookups><failures>0</failures><skipped>0</skipped><status>${r.status}</status><statusStr>${text}</statusStr><runtime>0.00</runtime></${tag}>`
  return {
    stdout: xml(
      `<opRet>0</opRet><opErrno>0</opErrno><opErrstr/><volRebalance><task-id>t</task-id><op>3</op><nodeCount>1</nodeCount>${row('node')}${row('aggregate')}</volRebalance>`,
    ),
  }
}

function volumeXml(name: string, v: FakeVolume): string {
  const bricks = v.bricks.map(
    (b) => `<brick uuid="u">${b}<name>${b}</name><hostUuid>u</hostUuid><isArbiter>0</isArbiter></brick>`,
  )
  const options = [...v.options].map(([k, val]) => `<option><name>${k}</name><value>${val}</value></option>`)
  return `<volInfo><volumes><volume><name>${name}</name><id>${v.id}</id><status>${v.started ? 1 : 0}</status><bricks>${bricks.join('')}</bricks><options>${options.join('')}</options></volume><count>1</count></volumes></volInfo>`
}
