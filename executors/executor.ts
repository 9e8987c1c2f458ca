// The executor contract: every node-side action heqet needs. Three
// implementations: mock (no nodes), ssh and kube (both are RemoteExecutor
// over a different CommandRunner). Hosts are always a node's first manage
// hostname; gluster refers to peers and bricks by storage hostname.

export interface DeviceSetupRequest {
  /** manage hostname of the node */
  host: string
  /** device path as given by the admin, e.g. /dev/sdb (already validated) */
  device: string
  deviceId: string
  /** wipe an existing signature first (heketi's destroydata retry) */
  destroyData: boolean
}

export interface DeviceInfo {
  totalKiB: number
  freeKiB: number
  usedKiB: number
  extentSizeKiB: number
  pvUuid: string
  paths: string[]
}

export interface DeviceRef {
  host: string
  device: string
  deviceId: string
  pvUuid: string
  paths: string[]
}

export interface BrickRequest {
  host: string
  brickId: string
  deviceId: string
  /** full gluster brick path: /var/lib/heketi/mounts/vg_<did>/brick_<bid>/brick */
  path: string
  sizeKiB: number
  tpSizeKiB: number
  poolMetadataSizeKiB: number
  /** stored thin pool name (always use it, never recompute) */
  lvmThinPool: string
  /** stored LV name; '' means brick_<brickId> */
  lvmLv: string
  gid: number
  arbiter: boolean
}

export interface VolumeBrick {
  /** storage hostname of the brick's node */
  storageHost: string
  path: string
}

export type VolumeDurability =
  | { type: 'none' }
  | { type: 'replicate'; replica: number; arbiter: boolean }
  | { type: 'disperse'; data: number; redundancy: number }

export interface VolumeRequest {
  /** manage host the gluster commands run on */
  host: string
  id: string
  name: string
  durability: VolumeDurability
  /** bricks in gluster order (set by set) */
  bricks: VolumeBrick[]
  /** options to `volume set`, empty entries are skipped */
  options: string[]
}

export interface GlusterVolumeInfo {
  name: string
  id: string
  status: number
  bricks: { name: string; hostUuid: string; isArbiter: boolean }[]
  options: Record<string, string>
}

export interface HealInfoBrick {
  name: string
  status: string
  numberOfEntries: string
}

/** One brick process of `volume status <name> --xml` (bricks of disconnected peers are not listed). */
export interface BrickStatus {
  /** `host:path` as the volume lists it */
  name: string
  online: boolean
  pid: number
}

/** One self-heal crawl from `volume heal <name> statistics` (the history of the current shd graph). */
export interface HealCrawl {
  /** the brick's position in the volume (gluster's `brick no`) */
  brick: number
  /** `Hostname of brick` */
  host: string
  /** `FULL` or `INDEX` */
  type: string
  /** `Crawl is in progress` instead of an ending time */
  inProgress: boolean
  healed: number
}

/** What `volume rebalance <name> status --xml` reports, summed over the nodes. */
export interface RebalanceStatus {
  /** gluster's aggregate statusStr: `not started`, `in progress`, `completed`, `stopped`, `failed`, `fix-layout …` */
  state: string
  /** some node still moves files */
  running: boolean
  /** the rebalance ended (completed, stopped or failed) on every node that ran it */
  done: boolean
  /** it ended in failure, or some files failed to move */
  failed: boolean
  files: number
  failures: number
  /** seconds the rebalance ran, largest over the nodes */
  runtimeSec: number
}

export interface CloneRequest {
  host: string
  source: string
  clone: string
  /** random id for the temporary snapshot name tmpsnap_<id> */
  snapshotId: string
}

/** gluster-block create (heketi node commands §8.1) */
export interface BlockCreateRequest {
  /** manage host the command runs on */
  host: string
  /** gluster volume name of the block-hosting volume */
  hostingVolume: string
  name: string
  haCount: number
  auth: boolean
  /** storage hostnames that export the LUN */
  hosts: string[]
  sizeGiB: number
}

/** what gluster-block create answers (the portals are ignored, as heketi does) */
export interface BlockCreated {
  iqn: string
  /** '' without auth */
  username: string
  password: string
}

/** `gluster-block info` (§8.4), with heketi's derived values */
export interface BlockVolumeNodeInfo {
  name: string
  hostingVolume: string
  gbid: string
  sizeGiB: number
  ha: number
  password: string
  exportedOn: string[]
  /** host → size GiB the resize left there */
  resizeFailedOn: Record<string, number>
  /** iqn.2016-12.org.gluster-block:<GBID> */
  iqn: string
  /** the GBID */
  username: string
  /** the smallest size of `RESIZE FAILED ON`, else the size */
  usableSizeGiB: number
}

export type { NodeInventory } from './commands/inventory.ts'

import type { NodeInventory } from './commands/inventory.ts'

export interface Executor {
  /** `systemctl status glusterd`; rejects when glusterd is not running */
  glusterdCheck(host: string): Promise<void>
  peerProbe(host: string, newStorageHost: string): Promise<void>
  /** resolves when `storageHost` is not (or no longer) a peer of `host`'s pool */
  peerDetach(host: string, storageHost: string): Promise<void>

  deviceSetup(req: DeviceSetupRequest): Promise<DeviceInfo>
  deviceTeardown(dev: DeviceRef, forget: boolean): Promise<void>
  /**
   * Undo a device setup whose outcome is unknown (it failed, timed out, or a
   * crash interrupted it): remove vg_<deviceId> and its PV if they exist, and
   * a PV in no volume group left on the device by an interrupted pvcreate (it
   * holds no data). A PV of another volume group is left alone. Resolves only
   * when the node is known to hold none of it; rejects when it cannot tell.
   */
  deviceSetupRevert(dev: DeviceRef): Promise<void>
  /** re-read the VG sizes (resync) */
  deviceInfo(dev: DeviceRef): Promise<DeviceInfo>

  /** create one brick; on failure the brick's partial state is destroyed again */
  brickCreate(req: BrickRequest): Promise<void>
  /** destroy one brick; `spaceReclaimed` tells whether the thin pool went away */
  brickDestroy(req: BrickRequest): Promise<{ spaceReclaimed: boolean }>

  volumeCreate(req: VolumeRequest): Promise<void>
  /** add the request's bricks to an existing volume (`add-brick` only; the rebalance is separate) */
  volumeExpand(req: VolumeRequest): Promise<void>
  /**
   * heketi's `rebalance_on_expansion` (executor setting, on by default): an
   * expand is followed by `rebalanceStart`, which the domain tracks
   * (src/rebalance.ts) instead of waiting for it.
   */
  readonly rebalanceOnExpansion: boolean
  /** `volume rebalance <name> start`; resolves when gluster accepted it or one already runs */
  rebalanceStart(host: string, name: string): Promise<void>
  /** `volume rebalance <name> status --xml` */
  rebalanceStatus(host: string, name: string): Promise<RebalanceStatus>
  /** `volume rebalance <name> stop` (before a delete); resolves when none runs */
  rebalanceStop(host: string, name: string): Promise<void>
  /** stop (force, errors ignored) and delete; resolves when the volume does not exist */
  volumeDestroy(host: string, name: string): Promise<void>
  volumeInfo(host: string, name: string): Promise<GlusterVolumeInfo>
  healInfo(host: string, name: string): Promise<HealInfoBrick[]>
  replaceBrick(host: string, name: string, oldBrick: VolumeBrick, newBrick: VolumeBrick): Promise<void>
  /** every gluster volume the node's glusterd knows (`volume info --xml`) */
  volumeInfoAll(host: string): Promise<GlusterVolumeInfo[]>
  /** LVs, brick mounts, fstab lines and brick directories on the node (state repair) */
  nodeInventory(host: string): Promise<NodeInventory>
  /** mount an existing brick LV again (the brick create's mount line; the fstab line added if missing) */
  brickMount(req: BrickRequest): Promise<void>
  /** `volume heal <name> full`: ask every self-heal daemon to crawl its bricks now */
  healStart(host: string, name: string): Promise<void>
  /** the brick processes of a started volume (`volume status <name> --xml`) */
  volumeStatus(host: string, name: string): Promise<BrickStatus[]>
  /** `volume start <name> force`: start the bricks of a started volume that do not run */
  volumeStartForce(host: string, name: string): Promise<void>
  /** the crawls the self-heal daemons ran since their graph last changed (`volume heal <name> statistics`) */
  healStatistics(host: string, name: string): Promise<HealCrawl[]>
  /** snapshot + clone + start; returns the clone's gluster volume info */
  volumeClone(req: CloneRequest): Promise<GlusterVolumeInfo>

  /** `gluster-block create`: the block file in the hosting volume, exported as an iSCSI LUN */
  blockVolumeCreate(req: BlockCreateRequest): Promise<BlockCreated>
  /** `gluster-block delete`; resolves when the block volume (or its hosting volume) does not exist */
  blockVolumeDelete(host: string, hostingVolume: string, name: string): Promise<void>
  /** `gluster-block modify … size` to the new total size */
  blockVolumeExpand(host: string, hostingVolume: string, name: string, sizeGiB: number): Promise<void>
  /** `gluster-block info`; undefined when the block volume (or its hosting volume) does not exist */
  blockVolumeInfo(host: string, hostingVolume: string, name: string): Promise<BlockVolumeNodeInfo | undefined>
  /** `gluster-block list`: names of the block volumes in the hosting volume */
  blockVolumeList(host: string, hostingVolume: string): Promise<string[]>

  close(): Promise<void>
}

/** An error from a node: the message is what users see on the queue. */
export class NodeCommandError extends Error {
  constructor(
    message: string,
    readonly host: string,
    readonly command?: string,
    readonly exitCode?: number,
  ) {
    super(message)
    this.name = 'NodeCommandError'
  }
}
