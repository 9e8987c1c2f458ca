// The CSI messages as @grpc/proto-loader hands them to the services (see
// server.ts for the loader options: snake_case names, enums as strings,
// int64 as number, unset fields filled with defaults, `null` for messages).

export type AccessModeName =
  | 'UNKNOWN'
  | 'SINGLE_NODE_WRITER'
  | 'SINGLE_NODE_READER_ONLY'
  | 'MULTI_NODE_READER_ONLY'
  | 'MULTI_NODE_SINGLE_WRITER'
  | 'MULTI_NODE_MULTI_WRITER'
  | 'SINGLE_NODE_SINGLE_WRITER'
  | 'SINGLE_NODE_MULTI_WRITER'

export interface VolumeCapability {
  block?: Record<string, never> | null
  mount?: { fs_type: string; mount_flags: string[]; volume_mount_group: string } | null
  access_type?: 'block' | 'mount'
  access_mode?: { mode: AccessModeName } | null
}

export interface CapacityRange {
  required_bytes: number
  limit_bytes: number
}

export type StringMap = Record<string, string>

export interface Volume {
  capacity_bytes: number
  volume_id: string
  volume_context: StringMap
}

export interface CreateVolumeRequest {
  name: string
  capacity_range: CapacityRange | null
  volume_capabilities: VolumeCapability[]
  parameters: StringMap
  volume_content_source: { type?: string } | null
  accessibility_requirements: unknown | null
}

export interface ValidateVolumeCapabilitiesRequest {
  volume_id: string
  volume_context: StringMap
  volume_capabilities: VolumeCapability[]
  parameters: StringMap
}

export interface ListVolumesRequest {
  max_entries: number
  starting_token: string
}

export interface GetCapacityRequest {
  volume_capabilities: VolumeCapability[]
  parameters: StringMap
}

export interface ControllerExpandVolumeRequest {
  volume_id: string
  capacity_range: CapacityRange | null
  volume_capability: VolumeCapability | null
}

export interface NodeStageVolumeRequest {
  volume_id: string
  staging_target_path: string
  volume_capability: VolumeCapability | null
  volume_context: StringMap
}

export interface NodePublishVolumeRequest {
  volume_id: string
  staging_target_path: string
  target_path: string
  volume_capability: VolumeCapability | null
  readonly: boolean
  volume_context: StringMap
}

export interface NodeGetVolumeStatsRequest {
  volume_id: string
  volume_path: string
  staging_target_path: string
}

export interface NodeExpandVolumeRequest {
  volume_id: string
  volume_path: string
  capacity_range: CapacityRange | null
}
