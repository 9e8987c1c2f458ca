// heketi's private volume options (user.heketi.*), read from the stored list.
export interface HeketiVolumeOptions {
  arbiter: boolean
  averageFileSizeKiB?: number
  zoneChecking?: 'none' | 'strict'
  tagMatch?: string
}

const TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True'])

/** key = text before the first space; later occurrences win; no value = ''. */
export function optionMap(options: string[]): Map<string, string> {
  const map = new Map<string, string>()
  for (const opt of options) {
    if (opt === '') continue
    const i = opt.indexOf(' ')
    map.set(i < 0 ? opt : opt.slice(0, i), i < 0 ? '' : opt.slice(i + 1))
  }
  return map
}

export function heketiOptions(options: string[]): HeketiVolumeOptions {
  const map = optionMap(options)
  const avg = Number.parseInt(map.get('user.heketi.average-file-size') ?? '', 10)
  const zone = map.get('user.heketi.zone-checking')
  return {
    arbiter: TRUE.has(map.get('user.heketi.arbiter') ?? ''),
    averageFileSizeKiB: Number.isInteger(avg) && avg > 0 ? avg : undefined,
    zoneChecking: zone === 'strict' ? 'strict' : zone === undefined ? undefined : 'none',
    tagMatch: map.get('user.heketi.device-tag-match'),
  }
}

/** split(s, ",") the Go way: "" gives [""]. */
export function splitOptions(text: string): string[] {
  return text.split(',')
}

/**
 * The stored option list (heketi allocation §6.1):
 * split(pre) ++ [split(block options) if block-hosting] ++ request ++ split(post).
 */
export function volumeOptionList(
  config: {
    preRequestVolumeOptions: string
    postRequestVolumeOptions: string
    blockHostingVolumeOptions: string
  },
  block: boolean,
  requested: string[],
): string[] {
  return [
    ...splitOptions(config.preRequestVolumeOptions),
    ...(block ? splitOptions(config.blockHostingVolumeOptions) : []),
    ...requested,
    ...splitOptions(config.postRequestVolumeOptions),
  ]
}
