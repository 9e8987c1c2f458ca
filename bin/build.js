#!/usr/bin/env node
// `npm run build`: dist/ from scratch with tsc (tsconfig.build.json), then
// every non-TypeScript file the sources read at run time (e.g. the CSI
// driver's src/csi/csi.proto) copied beside the compiled JavaScript.
import { execFileSync } from 'node:child_process'
import { cpSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const SOURCES = ['api', 'src', 'db', 'executors']

rmSync(dist, { recursive: true, force: true })
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })

function assets(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return assets(path)
    return e.name.endsWith('.ts') ? [] : [path]
  })
}
for (const file of SOURCES.flatMap((d) => assets(join(root, d)))) {
  cpSync(file, join(dist, relative(root, file)))
}
