// A tiny, strict-enough XML reader for gluster's `--xml` output: elements,
// attributes, text, entities, comments, CDATA, processing instructions.
// No DTDs or namespaces (gluster emits neither).

export interface XmlElement {
  name: string
  attributes: Record<string, string>
  children: XmlElement[]
  /** concatenated text content directly inside this element */
  text: string
}

export class XmlParseError extends Error {
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`)
    this.name = 'XmlParseError'
  }
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y
const ATTRIBUTE = /\s+([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/y
const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }

function decodeEntities(text: string, offset: number): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);|&/g, (match, entity: string | undefined) => {
    if (entity === undefined) throw new XmlParseError('bare &', offset)
    if (entity.startsWith('#x')) return String.fromCodePoint(Number.parseInt(entity.slice(2), 16))
    if (entity.startsWith('#')) return String.fromCodePoint(Number.parseInt(entity.slice(1), 10))
    const named = NAMED_ENTITIES[entity]
    if (named === undefined) throw new XmlParseError(`unknown entity ${match}`, offset)
    return named
  })
}

/** Parse a document and return its root element. Throws XmlParseError. */
export function parseXml(source: string): XmlElement {
  let pos = 0
  const stack: XmlElement[] = []
  let root: XmlElement | undefined

  const skipTo = (terminator: string) => {
    const end = source.indexOf(terminator, pos)
    if (end < 0) throw new XmlParseError(`unterminated construct, expected ${terminator}`, pos)
    const body = source.slice(pos, end)
    pos = end + terminator.length
    return body
  }

  while (pos < source.length) {
    const lt = source.indexOf('<', pos)
    const textEnd = lt < 0 ? source.length : lt
    if (textEnd > pos) {
      const text = source.slice(pos, textEnd)
      const top = stack[stack.length - 1]
      if (top) top.text += decodeEntities(text, pos)
      else if (text.trim() !== '') throw new XmlParseError('text outside the root element', pos)
      pos = textEnd
      continue
    }
    if (source.startsWith('<?', pos)) {
      pos += 2
      skipTo('?>')
    } else if (source.startsWith('<!--', pos)) {
      pos += 4
      skipTo('-->')
    } else if (source.startsWith('<![CDATA[', pos)) {
      pos += 9
      const top = stack[stack.length - 1]
      const data = skipTo(']]>')
      if (!top) throw new XmlParseError('CDATA outside the root element', pos)
      top.text += data
    } else if (source.startsWith('<!', pos)) {
      throw new XmlParseError('DTDs are not supported', pos)
    } else if (source.startsWith('</', pos)) {
      pos += 2
      NAME.lastIndex = pos
      const m = NAME.exec(source)
      if (!m) throw new XmlParseError('bad closing tag', pos)
      pos += m[0].length
      const close = /\s*>/y
      close.lastIndex = pos
      if (!close.exec(source)) throw new XmlParseError('bad closing tag', pos)
      pos = close.lastIndex
      const open = stack.pop()
      if (!open || open.name !== m[0]) throw new XmlParseError(`mismatched closing tag </${m[0]}>`, pos)
    } else {
      pos += 1
      NAME.lastIndex = pos
      const m = NAME.exec(source)
      if (!m) throw new XmlParseError('bad tag', pos)
      pos += m[0].length
      const element: XmlElement = { name: m[0], attributes: {}, children: [], text: '' }
      for (;;) {
        ATTRIBUTE.lastIndex = pos
        const a = ATTRIBUTE.exec(source)
        if (!a) break
        element.attributes[a[1]] = decodeEntities(a[2] ?? a[3] ?? '', pos)
        pos = ATTRIBUTE.lastIndex
      }
      const end = /\s*(\/?)>/y
      end.lastIndex = pos
      const e = end.exec(source)
      if (!e) throw new XmlParseError(`bad tag <${element.name}>`, pos)
      pos = end.lastIndex
      const parent = stack[stack.length - 1]
      if (parent) parent.children.push(element)
      else if (root) throw new XmlParseError('more than one root element', pos)
      else root = element
      if (e[1] !== '/') stack.push(element)
    }
  }
  if (stack.length > 0) throw new XmlParseError(`unclosed element <${stack[stack.length - 1].name}>`, pos)
  if (!root) throw new XmlParseError('no root element', pos)
  return root
}

/** first child with this name */
export function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name)
}

export function childrenNamed(element: XmlElement | undefined, name: string): XmlElement[] {
  return element?.children.filter((c) => c.name === name) ?? []
}

/** trimmed text of the element at `path` (child names), '' when absent */
export function textAt(element: XmlElement | undefined, ...path: string[]): string {
  let current = element
  for (const name of path) current = child(current, name)
  return current?.text.trim() ?? ''
}
