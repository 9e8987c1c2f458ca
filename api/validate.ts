// Input rules shared by several routes (tags, hostnames, ids, states).
import { isIP } from 'node:net'
import { ID_PATTERN } from '../src/ids.ts'
import type { Validation } from './http.ts'

const TAG_NAME = /^[a-zA-Z0-9_.-]+$/
const DNS_LABEL = /^[a-zA-Z0-9_-]{1,63}$/

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

/** An IP address or a DNS name (labels of letters, digits, _ and -, optional trailing dot). */
export function isValidHostname(host: string): boolean {
  if (isIP(host)) return true
  const name = host.endsWith('.') ? host.slice(0, -1) : host
  if (name === '' || name.length > 253) return false
  return name.split('.').every((label) => DNS_LABEL.test(label))
}

/** Go's fmt rendering of a []string: [a b c] */
export function goList(values: string[]): string {
  return `[${values.join(' ')}]`
}

export function checkUuid(v: Validation, field: string, value: string): void {
  if (value === '') v.add(field, 'cannot be blank')
  else if (!ID_PATTERN.test(value)) v.add(field, `${value} is not a valid UUID`)
}

export const STATES = ['online', 'offline', 'failed'] as const
export const HEALCHECKS = ['', 'enable', 'disable'] as const
