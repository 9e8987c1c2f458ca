// Splits a command line as heqet's builders write it (plain words and
// single-quoted words, `'\''` for a quote) into its words. For test
// doubles that answer commands; the argv-stub tests use a real bash.
export function shellWords(command: string): string[] {
  const words: string[] = []
  let word: string | undefined
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!
    if (c === ' ') {
      if (word !== undefined) words.push(word)
      word = undefined
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1)
      if (end < 0) throw new Error(`unterminated quote in ${command}`)
      word = (word ?? '') + command.slice(i + 1, end)
      i = end
    } else if (c === '\\' && command[i + 1] === "'") {
      word = `${word ?? ''}'`
      i++
    } else {
      word = (word ?? '') + c
    }
  }
  if (word !== undefined) words.push(word)
  return words
}
