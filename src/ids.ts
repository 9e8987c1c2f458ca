import { randomBytes } from 'node:crypto'

/** 16 random bytes as 32 lower-case hex characters, heketi's id format. */
export function newId(): string {
  return randomBytes(16).toString('hex')
}

export const ID_PATTERN = /^[0-9a-fA-F]{32}$/

export function isId(value: string): boolean {
  return ID_PATTERN.test(value)
}
