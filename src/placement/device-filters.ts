// Per-volume device filters: the tag matching rule (§5.9) and the arbiter
// roles (§5.10). Both read the node's tags merged with the device's, the
// device's value winning.

import { badTagRuleError } from './errors.ts'

// heketi's regex, byte for byte in meaning: inside the class `.-_` is the
// range 0x2E–0x5F, so `=` belongs to it (the key match is greedy: `a=b=c` is
// key `a=b`) and a literal hyphen does not.
const TAG_RULE = /^([a-zA-Z0-9.-_]+)(!?=)([a-zA-Z0-9.-_]+)$/

export interface TagMatchRule {
  key: string
  op: '=' | '!='
  value: string
  /** the rule as the user wrote it, for messages */
  text: string
}

export function parseTagMatchRule(text: string): TagMatchRule {
  const m = TAG_RULE.exec(text)
  if (m === null) throw badTagRuleError(text)
  return { key: m[1], op: m[2] as '=' | '!=', value: m[3], text }
}

type Tags = Readonly<Record<string, string>>

export function mergedTag(nodeTags: Tags, deviceTags: Tags, key: string): string | undefined {
  if (Object.hasOwn(deviceTags, key)) return deviceTags[key]
  if (Object.hasOwn(nodeTags, key)) return nodeTags[key]
  return undefined
}

/** A missing tag reads as '' so untagged devices pass any `!=` rule. */
export function matchesTagRule(rule: TagMatchRule, nodeTags: Tags, deviceTags: Tags): boolean {
  const value = mergedTag(nodeTags, deviceTags, rule.key) ?? ''
  return rule.op === '=' ? value === rule.value : value !== rule.value
}

/** `required`: arbiter bricks only; `disabled`: data bricks only; anything else: both. */
export type ArbiterRole = 'required' | 'disabled' | 'supported'

export function arbiterRole(nodeTags: Tags, deviceTags: Tags): ArbiterRole {
  const value = mergedTag(nodeTags, deviceTags, 'arbiter')
  return value === 'required' || value === 'disabled' ? value : 'supported'
}

export type BrickRole = 'data' | 'arbiter'

export function roleAccepts(role: ArbiterRole, brick: BrickRole): boolean {
  return brick === 'arbiter' ? role !== 'disabled' : role !== 'required'
}

/** heketi's ParseBool, used for `user.heketi.arbiter`. */
export function parseHeketiBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false
  return undefined
}
