// Every error placement can raise. heketi's wording is kept verbatim as the
// start of each message because clients (the k8s provisioner, scripts) match
// on it; heqet appends one short line of its own explaining why.

export type PlacementErrorKind =
  | 'no-space'
  | 'no-nodes'
  | 'no-devices'
  | 'max-bricks'
  | 'min-brick-size'
  | 'bad-tag-rule'
  | 'arbiter-size'
  | 'no-replacement'

/** heketi's texts for the kinds whose text does not depend on the request. */
export const HEKETI_PLACEMENT_TEXT = {
  'no-space': 'No space',
  'no-nodes': 'No nodes in cluster',
  'no-devices': 'No online storage devices in cluster',
  'max-bricks': 'Maximum number of bricks reached.',
  // two spaces: heketi's exact text
  'min-brick-size': 'Minimum brick size limit reached.  Out of space.',
  'no-replacement': 'No Replacement was found for resource requested to be removed',
} as const

export class PlacementError extends Error {
  override readonly name = 'PlacementError'
  readonly kind: PlacementErrorKind
  /** heketi's own text, without heqet's explanation */
  readonly heketiMessage: string
  /** heqet's one-line explanation ('' when there is nothing to add) */
  readonly detail: string

  constructor(kind: PlacementErrorKind, heketiMessage: string, detail = '') {
    super(detail === '' ? heketiMessage : heketiMessage + separatorAfter(heketiMessage) + detail)
    this.kind = kind
    this.heketiMessage = heketiMessage
    this.detail = detail
  }
}

// `No space: why` reads well; `reached.: why` does not.
function separatorAfter(text: string): string {
  return text.endsWith('.') ? ' ' : ': '
}

export function placementError(kind: keyof typeof HEKETI_PLACEMENT_TEXT, detail = ''): PlacementError {
  return new PlacementError(kind, HEKETI_PLACEMENT_TEXT[kind], detail)
}

export function badTagRuleError(rule: string): PlacementError {
  return new PlacementError('bad-tag-rule', `Invalid tag matching rule: Invalid tag match rule: ${rule}`)
}

export function arbiterSizeError(averageFileSizeKiB: number, dataBrickSizeKiB: number): PlacementError {
  return new PlacementError(
    'arbiter-size',
    `Average file size (${averageFileSizeKiB}) is greater than Brick size (${dataBrickSizeKiB})`,
  )
}

/**
 * The text a per-cluster failure is recorded with during volume create (§4):
 * running out of space in any of heketi's three ways becomes `No space`
 * (heqet keeps its explanation after it); everything else keeps its text.
 * On expand callers use `err.message` unchanged.
 */
export function createFailureText(err: PlacementError): string {
  if (err.kind === 'no-space' || err.kind === 'max-bricks' || err.kind === 'min-brick-size') {
    return err.detail === '' ? 'No space' : `No space: ${err.detail}`
  }
  return err.message
}
