#!/usr/bin/env node
// Entry point of `heqet` / `npx heqet`: runs the TypeScript sources through
// tsx's loader so no build step stands between a checkout and a server.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../api/main.ts')
await main(process.argv)
