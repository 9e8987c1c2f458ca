// gluster-block commands (heketi node commands §8); batch timeout 10 minutes.
import type { RemoteExecutorConfig } from '../config.ts'
import type { BlockCreateRequest } from '../executor.ts'
import {
  assertHost,
  assertName,
  assertPositiveInteger,
  shellArg as q,
  UnsafeCommandArgumentError,
} from './validate.ts'

/** what `gluster-block create` is given: the executor's request but for the host it runs on */
export type BlockCreateSpec = Omit<BlockCreateRequest, 'host'>

/** `<hosting volume>/<block volume>`, quoted */
function target(hostingVolume: string, name: string): string {
  return q(
    `${assertName(hostingVolume, 'block hosting volume name')}/${assertName(name, 'block volume name')}`,
  )
}

/** quiet when auth is enabled (the output carries the password) */
export function blockCreateCommand(
  cfg: Pick<RemoteExecutorConfig, 'blockPrealloc'>,
  spec: BlockCreateSpec,
): string {
  if (spec.hosts.length === 0) throw new UnsafeCommandArgumentError('block volume host list', spec.hosts)
  const hosts = spec.hosts.map((h) => assertHost(h)).join(',')
  const prealloc = assertName(cfg.blockPrealloc, 'block prealloc')
  return (
    `gluster-block create ${target(spec.hostingVolume, spec.name)} ha ${q(assertPositiveInteger(spec.haCount, 'ha count'))} ` +
    `auth ${spec.auth ? 'enable' : 'disable'} prealloc ${q(prealloc)} ${q(hosts)} ${q(`${assertPositiveInteger(spec.sizeGiB, 'block size')}GiB`)} --json`
  )
}

export function blockDeleteCommand(hostingVolume: string, name: string): string {
  return `gluster-block delete ${target(hostingVolume, name)} --json`
}

/** two spaces before `size`, as heketi sends it */
export function blockModifySizeCommand(hostingVolume: string, name: string, sizeGiB: number): string {
  return `gluster-block modify ${target(hostingVolume, name)}  size ${q(`${assertPositiveInteger(sizeGiB, 'block size')}GiB`)} --json`
}

export function blockInfoCommand(hostingVolume: string, name: string): string {
  return `gluster-block info ${target(hostingVolume, name)} --json`
}

export function blockListCommand(hostingVolume: string): string {
  return `gluster-block list ${q(assertName(hostingVolume, 'block hosting volume name'))} --json`
}
