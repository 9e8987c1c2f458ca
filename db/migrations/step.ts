// What every upgrade step is, and the attribute helpers they share.
import type { HeketiDb } from '../heketi-format.ts'

export interface Migration {
  name: string
  /** changes the export in place; one line per entry it changed */
  up(doc: HeketiDb): string[]
}

export function attribute(doc: HeketiDb, key: string): string | undefined {
  return doc.dbattributeentries[key]?.Value
}

export function setAttribute(doc: HeketiDb, key: string, value: string): void {
  doc.dbattributeentries[key] = { Key: key, Value: value }
}
