// Brick eviction entry point: replace one brick of a volume with a new one elsewhere.
import type { AppContext } from './context.ts'
import { Errors } from './errors.ts'
import { BrickEvictOperation } from './operations/brick-evict.ts'
import { newOperationId, startOperation } from './operations/operation.ts'

/** Start an eviction (throttled); resolves with the background job. */
export async function startBrickEvict(ctx: AppContext, brickId: string, healcheck: string, throttled = true) {
  if (!ctx.store.read((tx) => tx.get('brick', brickId))) throw Errors.notFound()
  return startOperation(ctx, new BrickEvictOperation(ctx, newOperationId(), brickId, healcheck), {
    throttled,
  })
}

/** Evict and wait (device removal runs these one after another under its own slot). */
export async function evictBrick(ctx: AppContext, brickId: string, healcheck: string): Promise<void> {
  const job = await startBrickEvict(ctx, brickId, healcheck, false)
  await job()
}
