// Types of bin/heap-growth.js (plain JavaScript: it runs before any loader).
export const DEFAULT_HEAP_GROWING_PERCENT: number
export function heapGrowingPercent(env?: NodeJS.ProcessEnv, execArgv?: string[]): number
export function capHeapGrowth(percent?: number): number
