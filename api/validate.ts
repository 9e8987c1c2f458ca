// Input rules shared by several routes (tags, ids, states); values that reach
// node commands are checked by src/command-values.ts.
import type { Problem } from '../src/command-values.ts'
import { ID_PATTERN } from '../src/ids.ts'
import type { Validation } from './http.ts'

const TAG_NAME = /^[a-zA-Z0-9_.-]+$/

export function tagProblem(tags: Record<string, string>): string | undefined {
  const keys = Object.keys(tags)
  if (keys.length > 32) return `too many tags specified (${keys.length}), up to 32 supported`
  for (const key of keys.sort()) {
    if (key === '') return 'tag names may not be empty'
    if (key.length > 32) return `tag name ${key}: the length must be between 1 and 32`
    if (!TAG_NAME.test(key)) return `invalid characters in tag name ${key}`
    if ((tags[key] ?? '').length > 64) return `value of tag ${key}: the length must be no more than 64`
  }
  return undefined
}

export function checkTags(v: Validation, tags: Record<string, string>): void {
  const problem = tagProblem(tags)
  if (problem) v.add('tags', problem)
}

/** Adds the problems of values that reach node commands (src/command-values.ts). */
export function addProblems(v: Validation, problems: Problem[]): void {
  for (const [field, message] of problems) v.add(field, message)
}

/** A whole number heketi requires and wants at least 1 (sizes, zone): 0 is "blank". */
export function checkAtLeastOne(v: Validation, field: string, value: number): void {
  if (value === 0) v.add(field, 'cannot be blank')
  else if (value < 1) v.add(field, 'must be no less than 1')
}

export function checkUuid(v: Validation, field: string, value: string): void {
  if (value === '') v.add(field, 'cannot be blank')
  else if (!ID_PATTERN.test(value)) v.add(field, `${value} is not a valid UUID`)
}

export const STATES = ['online', 'offline', 'failed'] as const
export const HEALCHECKS = ['', 'enable', 'disable'] as const
