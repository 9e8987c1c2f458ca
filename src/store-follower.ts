// The in-memory indexes (placement topology, volume names) are built from one
// read of the store and then kept current from every commit's changes.
import type { Change, Store } from '../db/store.ts'

/**
 * Runs `load` (a build from scratch in one read) now, then `apply` with
 * every commit's changes. A change that fails half applied makes the index
 * load again from the store (which has the commit); the error then goes on
 * to the store, which counts and reports a failed listener.
 */
export function followStore(
  store: Pick<Store, 'read' | 'onCommit'>,
  load: (store: Pick<Store, 'read'>) => void,
  apply: (changes: readonly Change[]) => void,
): void {
  load(store)
  store.onCommit((changes) => {
    try {
      apply(changes)
    } catch (err) {
      load(store)
      throw err
    }
  })
}
