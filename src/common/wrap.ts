/**
 * The words of `text` in lines of at most `width` characters. A word longer than a line (a
 * path, a URL) stays whole unless `breakLongWords` asks for it to be cut.
 */
export function wrapWords(text: string, width: number, opts: { breakLongWords?: boolean } = {}): string[] {
  let words = text.split(/\s+/).filter(Boolean);
  if (opts.breakLongWords) words = words.flatMap((w) => w.match(new RegExp(`.{1,${width}}`, 'g')) ?? []);
  const out: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) out.push(line);
  return out;
}
