#!/usr/bin/env node
// Entry point of `heqet` / `npx heqet`. Runs the compiled JavaScript in
// dist/ (`npm run build`; what the image ships) when it is there and not
// older than the sources beside it; otherwise, in a development checkout,
// the TypeScript sources through tsx's loader, so no build step stands
// between a checkout and a server. tsx is a dev dependency: a production
// install (npm ci --omit=dev) never loads it.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { capHeapGrowth } from './heap-growth.js'
import { capYoungGeneration } from './young-generation.js'

// V8's new space at 8 MiB, not 32: ~18 MiB less peak RSS (young-generation.js)
capYoungGeneration()
// the old generation grows by 20 % past what is live, not up to 4×: at 10,000 nodes
// 154 MiB instead of 288 MiB peak RSS while adding them (heap-growth.js)
capHeapGrowth()

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const compiled = join(root, 'dist', 'api', 'main.js')

/** Newest modification time (ms) of the .ts sources under the given folders. */
function newestSource(folders) {
  let newest = 0
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs)
    }
  }
  for (const folder of folders) if (existsSync(join(root, folder))) walk(join(root, folder))
  return newest
}

function useCompiled() {
  if (process.env.HEQET_RUN_SOURCES === '1' || !existsSync(compiled)) return false
  // a checkout edited after its last build runs the sources, never stale code
  return newestSource(['api', 'src', 'db', 'executors']) <= statSync(compiled).mtimeMs
}

let main
if (useCompiled()) {
  ;({ main } = await import(pathToFileURL(compiled).href))
} else {
  const { register } = await import('tsx/esm/api')
  register()
  ;({ main } = await import('../api/main.ts'))
}
await main(process.argv)
