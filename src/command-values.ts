// Request values that end up in node commands, checked with the command
// builders' own rules (executors/commands/validate.ts) so the API can refuse
// them with 400 before anything is reserved. The API adds these problems to
// its validation answer; the domain functions call `requireValid` again so a
// caller that skipped the API (a script, a test) gets the same refusal.

import {
  devicePathRule,
  glusterOptionRule,
  hostnameRule,
  volumeNameRule,
} from '../executors/commands/validate.ts'
import { Errors } from './errors.ts'

/** [field, message] as ozzo-validation reports it */
export type Problem = [field: string, message: string]

/** Go's fmt rendering of a []string: [a b c] */
export function goList(values: string[]): string {
  return `[${values.join(' ')}]`
}

/** a volume or clone name; '' means "pick the default name" */
export function volumeNameProblems(name: string): Problem[] {
  const problem = name === '' ? undefined : volumeNameRule(name)
  return problem ? [['name', problem]] : []
}

/** the first unusable `<key> <value>` entry ('' entries are skipped, as heketi does) */
export function volumeOptionProblems(options: string[]): Problem[] {
  for (const option of options) {
    const problem = option === '' ? undefined : glusterOptionRule(option)
    if (problem) return [['glustervolumeoptions', `${JSON.stringify(option)} ${problem}`]]
  }
  return []
}

/** per list, heketi's text: `[a b] is not a valid manage hostname` */
export function hostnameProblems(hostnames: { manage: string[]; storage: string[] }): Problem[] {
  const problems: Problem[] = []
  for (const kind of ['manage', 'storage'] as const) {
    const list = hostnames[kind]
    if (list.some((h) => hostnameRule(h) !== undefined))
      problems.push([kind, `${goList(list)} is not a valid ${kind} hostname`])
  }
  return problems
}

export function deviceNameProblems(name: string): Problem[] {
  const problem = devicePathRule(name)
  return problem ? [['name', problem]] : []
}

/** throws heketi's 400 `validation failed: <field>: <message>.` for the first problem */
export function requireValid(problems: Problem[], nestedIn?: string): void {
  const first = problems[0]
  if (!first) return
  const text = `${first[0]}: ${first[1]}.`
  throw Errors.validation(`validation failed: ${nestedIn ? `${nestedIn}: (${text}).` : text}`)
}
