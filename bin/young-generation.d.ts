// Types of bin/young-generation.js (plain JavaScript: it runs before any loader).
export const DEFAULT_NEW_SPACE_MIB: number
export function newSpaceTarget(env?: NodeJS.ProcessEnv, execArgv?: string[]): number
export function capYoungGeneration(target?: number): () => void
