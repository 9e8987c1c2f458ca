// The mock executor (heketi's `executor: mock`): no node is contacted, every
// action succeeds and devices report HEKETI_MOCK_DEVICE_SIZE_GB. It keeps a
// small in-memory picture of the volumes it "created" so volume info and
// clone answer like a real cluster would. A product feature, not a test hack.
import { randomUUID } from 'node:crypto'
import type {
  BlockCreated,
  BlockCreateRequest,
  BlockVolumeNodeInfo,
  BrickRequest,
  BrickStatus,
  CloneRequest,
  DeviceInfo,
  DeviceRef,
  DeviceSetupRequest,
  Executor,
  GlusterVolumeInfo,
  HealCrawl,
  HealInfoBrick,
  NodeInventory,
  RebalanceStatus,
  VolumeBrick,
  VolumeRequest,
} from './executor.ts'

export interface MockExecutorOptions {
  /** size every device reports, GiB (heketi default 500) */
  deviceSizeGiB?: number
  /** artificial latency per action, ms (tests of throttling and concurrency) */
  delayMs?: number
  /** start a rebalance after every expand (heketi's rebalance_on_expansion; default true) */
  rebalanceOnExpansion?: boolean
  /** awaited before every action: tests hold node actions until they choose to go on */
  gate?: () => Promise<void>
}

const GiB_IN_KiB = 1048576

export class MockExecutor implements Executor {
  private readonly deviceSizeKiB: number
  private readonly delayMs: number
  private readonly gate: (() => Promise<void>) | undefined
  private readonly volumes = new Map<string, { id: string; bricks: VolumeBrick[] }>()
  /** block volumes by `<hosting volume>/<name>` */
  private readonly blocks = new Map<string, { req: BlockCreateRequest; gbid: string }>()
  /** bricks made on each host, so the state repair sees what a node would hold */
  private readonly bricksByHost = new Map<string, Map<string, BrickRequest>>()
  /** rebalance per volume: status queries seen since its start (the first says in progress) */
  private readonly rebalances = new Map<string, { looks: number }>()
  readonly rebalanceOnExpansion: boolean

  constructor(opts: MockExecutorOptions = {}) {
    this.deviceSizeKiB = (opts.deviceSizeGiB ?? 500) * GiB_IN_KiB
    this.delayMs = opts.delayMs ?? 0
    this.gate = opts.gate
    this.rebalanceOnExpansion = opts.rebalanceOnExpansion ?? true
  }

  private async pause(): Promise<void> {
    if (this.gate) await this.gate()
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs))
  }

  async glusterdCheck(): Promise<void> {
    await this.pause()
  }
  async peerProbe(): Promise<void> {
    await this.pause()
  }
  async peerDetach(): Promise<void> {
    await this.pause()
  }

  private sizes(): DeviceInfo {
    return {
      totalKiB: this.deviceSizeKiB,
      freeKiB: this.deviceSizeKiB,
      usedKiB: 0,
      extentSizeKiB: 4096,
      pvUuid: '',
      paths: [],
    }
  }

  async deviceSetup(_req: DeviceSetupRequest): Promise<DeviceInfo> {
    await this.pause()
    return this.sizes()
  }
  async deviceTeardown(_dev: DeviceRef, _forget: boolean): Promise<void> {
    await this.pause()
  }
  async deviceSetupRevert(_dev: DeviceRef): Promise<void> {
    await this.pause()
  }
  async deviceInfo(_dev: DeviceRef): Promise<DeviceInfo> {
    await this.pause()
    return this.sizes()
  }

  async brickCreate(req: BrickRequest): Promise<void> {
    await this.pause()
    this.nodeBricks(req.host).set(req.brickId, req)
  }
  async brickDestroy(req: BrickRequest): Promise<{ spaceReclaimed: boolean }> {
    await this.pause()
    this.nodeBricks(req.host).delete(req.brickId)
    return { spaceReclaimed: true }
  }

  private nodeBricks(host: string): Map<string, BrickRequest> {
    let bricks = this.bricksByHost.get(host)
    if (!bricks) {
      bricks = new Map()
      this.bricksByHost.set(host, bricks)
    }
    return bricks
  }

  async volumeCreate(req: VolumeRequest): Promise<void> {
    await this.pause()
    this.volumes.set(req.name, { id: randomUUID(), bricks: [...req.bricks] })
  }
  async volumeExpand(req: VolumeRequest): Promise<void> {
    await this.pause()
    const vol = this.volumes.get(req.name)
    if (vol) vol.bricks.push(...req.bricks)
  }
  async volumeDestroy(_host: string, name: string): Promise<void> {
    await this.pause()
    this.volumes.delete(name)
    this.rebalances.delete(name)
  }
  async rebalanceStart(_host: string, name: string): Promise<void> {
    await this.pause()
    this.rebalances.set(name, { looks: 0 })
  }
  /** a started rebalance reads `in progress` once, then `completed` */
  async rebalanceStatus(_host: string, name: string): Promise<RebalanceStatus> {
    await this.pause()
    const r = this.rebalances.get(name)
    const running = r !== undefined && r.looks++ === 0
    const done = r !== undefined && !running
    const state = r === undefined ? 'not started' : running ? 'in progress' : 'completed'
    return { state, running, done, failed: false, files: 0, failures: 0, runtimeSec: 0 }
  }
  async rebalanceStop(_host: string, name: string): Promise<void> {
    await this.pause()
    const r = this.rebalances.get(name)
    if (r) r.looks = Math.max(r.looks, 1)
  }
  async volumeInfo(host: string, name: string): Promise<GlusterVolumeInfo> {
    await this.pause()
    const vol = this.volumes.get(name)
    // heketi's mock answers three bricks at <host>:/mockpath for unknown volumes
    const bricks =
      vol?.bricks.map((b) => `${b.storageHost}:${b.path}`) ?? [1, 2, 3].map(() => `${host}:/mockpath`)
    return {
      name,
      id: vol?.id ?? randomUUID(),
      status: 1,
      bricks: bricks.map((n) => ({ name: n, hostUuid: '', isArbiter: false })),
      options: {},
    }
  }
  async healInfo(_host: string, name: string): Promise<HealInfoBrick[]> {
    await this.pause()
    // every brick connected with nothing to heal (heketi's mock answers an empty list,
    // which would make every eviction fail its quorum check)
    return (this.volumes.get(name)?.bricks ?? []).map((b) => ({
      name: `${b.storageHost}:${b.path}`,
      status: 'Connected',
      numberOfEntries: '0',
    }))
  }
  async volumeInfoAll(host: string): Promise<GlusterVolumeInfo[]> {
    return Promise.all([...this.volumes.keys()].map((name) => this.volumeInfo(host, name)))
  }
  async nodeInventory(host: string): Promise<NodeInventory> {
    await this.pause()
    const bricks = [...this.nodeBricks(host).values()]
    const dirs = bricks.map((b) => b.path.replace(/\/brick$/, ''))
    return {
      lvs: bricks.flatMap((b) => [
        `vg_${b.deviceId}/${b.lvmLv || `brick_${b.brickId}`}`,
        `vg_${b.deviceId}/${b.lvmThinPool || `tp_${b.brickId}`}`,
      ]),
      mounts: dirs,
      fstab: dirs,
      brickDirs: dirs,
    }
  }
  async brickMount(_req: BrickRequest): Promise<void> {
    await this.pause()
  }
  async healStart(_host: string, _name: string): Promise<void> {
    await this.pause()
  }
  async volumeStatus(_host: string, name: string): Promise<BrickStatus[]> {
    await this.pause()
    // every brick process runs
    return (this.volumes.get(name)?.bricks ?? []).map((b, i) => ({
      name: `${b.storageHost}:${b.path}`,
      online: true,
      pid: 1000 + i,
    }))
  }
  async volumeStartForce(_host: string, _name: string): Promise<void> {
    await this.pause()
  }
  async healStatistics(_host: string, name: string): Promise<HealCrawl[]> {
    await this.pause()
    // every brick's daemon has run one full crawl to its end
    return (this.volumes.get(name)?.bricks ?? []).map((b, brick) => ({
      brick,
      host: b.storageHost,
      type: 'FULL',
      inProgress: false,
      healed: 0,
    }))
  }
  async replaceBrick(
    _host: string,
    name: string,
    oldBrick: VolumeBrick,
    newBrick: VolumeBrick,
  ): Promise<void> {
    await this.pause()
    const vol = this.volumes.get(name)
    if (!vol) return
    const i = vol.bricks.findIndex((b) => b.storageHost === oldBrick.storageHost && b.path === oldBrick.path)
    if (i >= 0) vol.bricks[i] = newBrick
  }
  async volumeClone(req: CloneRequest): Promise<GlusterVolumeInfo> {
    await this.pause()
    const source = this.volumes.get(req.source)
    const id = randomUUID()
    const compact = id.replaceAll('-', '')
    const bricks = (source?.bricks ?? []).map((b, i) => ({
      storageHost: b.storageHost,
      path: `/run/gluster/snaps/${compact}/brick${i + 1}/brick`,
    }))
    this.volumes.set(req.clone, { id, bricks })
    return this.volumeInfo(req.host, req.clone)
  }

  // heketi's mock answers IQN `fakeIQN` and, with auth, heketi-user / secret
  async blockVolumeCreate(req: BlockCreateRequest): Promise<BlockCreated> {
    await this.pause()
    const key = `${req.hostingVolume}/${req.name}`
    if (this.blocks.has(key))
      throw new Error(`Failed to create block volume: BLOCK with name: '${req.name}' already EXIST`)
    this.blocks.set(key, { req: { ...req, hosts: [...req.hosts] }, gbid: randomUUID() })
    return req.auth
      ? { iqn: 'fakeIQN', username: 'heketi-user', password: 'secret' }
      : { iqn: 'fakeIQN', username: '', password: '' }
  }
  async blockVolumeDelete(_host: string, hostingVolume: string, name: string): Promise<void> {
    await this.pause()
    this.blocks.delete(`${hostingVolume}/${name}`)
  }
  async blockVolumeExpand(
    _host: string,
    hostingVolume: string,
    name: string,
    sizeGiB: number,
  ): Promise<void> {
    await this.pause()
    const block = this.blocks.get(`${hostingVolume}/${name}`)
    if (!block)
      throw new Error(
        `Failed to expand block volume: block ${hostingVolume}/${name} doesn't exist (see logs for details, and retry the operation)`,
      )
    block.req.sizeGiB = sizeGiB
  }
  async blockVolumeInfo(
    _host: string,
    hostingVolume: string,
    name: string,
  ): Promise<BlockVolumeNodeInfo | undefined> {
    await this.pause()
    const block = this.blocks.get(`${hostingVolume}/${name}`)
    if (!block) return undefined
    const { req, gbid } = block
    return {
      name,
      hostingVolume,
      gbid,
      sizeGiB: req.sizeGiB,
      ha: req.haCount,
      password: req.auth ? 'secret' : '',
      exportedOn: [...req.hosts],
      resizeFailedOn: {},
      iqn: 'fakeIQN',
      username: req.auth ? 'heketi-user' : '',
      usableSizeGiB: req.sizeGiB,
    }
  }
  async blockVolumeList(_host: string, hostingVolume: string): Promise<string[]> {
    await this.pause()
    return [...this.blocks.keys()]
      .filter((key) => key.startsWith(`${hostingVolume}/`))
      .map((key) => key.slice(hostingVolume.length + 1))
  }

  /** The bricks of a volume in gluster order, as a real `volume info` would list them. */
  glusterBricks(name: string): VolumeBrick[] | undefined {
    return this.volumes.get(name)?.bricks.map((b) => ({ ...b }))
  }

  async close(): Promise<void> {}
}
