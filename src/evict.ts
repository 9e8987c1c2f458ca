// Brick eviction: replace one brick of a volume with a new one elsewhere.
import type { AppContext } from './context.ts'
import { Errors } from './errors.ts'

export async function evictBrick(ctx: AppContext, brickId: string, _healcheck: string): Promise<void> {
  const brick = ctx.store.read((tx) => tx.get('brick', brickId))
  if (!brick) throw Errors.notFound()
  throw Errors.noReplacement()
}
