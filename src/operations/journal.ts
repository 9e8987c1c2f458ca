// Rebuilding operations from their journal records, so a restarted server
// (or the cleaner) can finish or undo what a previous process left behind.

import type { BlockVolumeEntry, PendingOperationEntry, VolumeEntry } from '../../db/entries.ts'
import type { AppContext } from '../context.ts'
import { type BlockCreateData, BlockVolumeCreateOperation } from './block-volume-create.ts'
import { type BlockTarget, BlockVolumeDeleteOperation } from './block-volume-delete.ts'
import { type BlockExpandData, BlockVolumeExpandOperation } from './block-volume-expand.ts'
import { BrickEvictOperation } from './brick-evict.ts'
import { type DeviceAddData, DeviceAddOperation, DeviceDeleteOperation } from './device-ops.ts'
import { type NodeAddData, NodeAddOperation, NodeDeleteOperation } from './node-ops.ts'
import type { Operation } from './operation.ts'
import { VolumeCloneOperation } from './volume-clone.ts'
import { VolumeCreateOperation } from './volume-create.ts'
import { VolumeDeleteOperation } from './volume-delete.ts'
import { VolumeExpandOperation } from './volume-expand.ts'
import { VolumeRebalanceOperation } from './volume-rebalance.ts'

export function operationFromJournal(ctx: AppContext, entry: PendingOperationEntry): Operation | undefined {
  const str = (key: string) => String(entry.data[key] ?? '')
  switch (entry.type) {
    case 'create-volume': {
      const stored = ctx.store.read((tx) => tx.get('volume', str('volumeId')))
      const template = stored ?? ({ id: str('volumeId'), name: '' } as VolumeEntry)
      return new VolumeCreateOperation(ctx, entry.id, template)
    }
    case 'delete-volume':
      return new VolumeDeleteOperation(ctx, entry.id, str('volumeId'))
    case 'expand-volume': {
      const delta = entry.actions.find((a) => a.change === 'expand-volume')?.delta ?? 0
      return new VolumeExpandOperation(ctx, entry.id, str('volumeId'), delta)
    }
    case 'clone-volume':
      return new VolumeCloneOperation(ctx, entry.id, str('sourceId'), str('cloneId'), str('cloneName'))
    case 'evict-brick':
      return new BrickEvictOperation(ctx, entry.id, str('brickId'), 'disable')
    case 'create-block-volume': {
      const data = entry.data as unknown as BlockCreateData
      const stored = ctx.store.read((tx) => tx.get('blockvolume', data.blockVolumeId))
      const template = stored ?? ({ id: data.blockVolumeId, name: data.blockVolumeName } as BlockVolumeEntry)
      return new BlockVolumeCreateOperation(ctx, entry.id, template, data)
    }
    case 'delete-block-volume': {
      const data = entry.data as unknown as BlockTarget
      return new BlockVolumeDeleteOperation(ctx, entry.id, data.blockVolumeId, data)
    }
    case 'expand-block-volume': {
      const data = entry.data as unknown as BlockExpandData
      const newSize = entry.actions.find((a) => a.change === 'expand-block-volume')?.delta ?? 0
      return new BlockVolumeExpandOperation(ctx, entry.id, data.blockVolumeId, newSize, data)
    }
    case 'add-device':
      return new DeviceAddOperation(ctx, entry.id, entry.data as unknown as DeviceAddData)
    case 'add-node':
      return new NodeAddOperation(ctx, entry.id, entry.data as unknown as NodeAddData)
    case 'delete-node':
      return new NodeDeleteOperation(ctx, entry.id, str('nodeId'))
    case 'rebalance-volume':
      return new VolumeRebalanceOperation(ctx, entry.id)
    case 'delete-device':
      return new DeviceDeleteOperation(ctx, entry.id, str('deviceId'), entry.data['forceForget'] === true)
    default:
      return undefined
  }
}
