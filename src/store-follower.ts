// The in-memory indexes (placement topology, volume names) are built from one
// read of the store and then kept current from every commit's changes.
import type { Change, Store } from '../db/store.ts'

const message = (err: unknown) => (err instanceof Error ? err.message : String(err))

/**
 * Runs `load` (a build from scratch in one read) now, then `apply` with
 * every commit's changes. A change that fails half applied makes the index
 * load again from the store (which has the commit); the error then goes on
 * to the store, which counts and reports a failed listener. When that load
 * fails too, both errors go on (one AggregateError naming both), and the
 * index loads again at the next commit instead of applying it to a stale
 * state.
 */
export function followStore(
  store: Pick<Store, 'read' | 'onCommit'>,
  load: (store: Pick<Store, 'read'>) => void,
  apply: (changes: readonly Change[]) => void,
): void {
  load(store)
  /** the last load failed: the index is not current until one succeeds */
  let stale = false
  store.onCommit((changes) => {
    if (stale) {
      // a failure here goes on to the store like any other
      load(store)
      stale = false
      return
    }
    try {
      apply(changes)
    } catch (applyError) {
      try {
        load(store)
      } catch (loadError) {
        stale = true
        throw new AggregateError(
          [applyError, loadError],
          `${message(applyError)}; loading the index again failed too: ${message(loadError)} (tried again at the next commit)`,
        )
      }
      throw applyError
    }
  })
}
