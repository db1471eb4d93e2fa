// Snippets of msg.search: the server wraps each match between U+0002 and U+0003 (characters it
// removes from bodies first). Splitting them here gives plain text parts that a UI renders as
// text nodes (a <mark> for matches), so a message can never inject markup through a result.

/** One run of a snippet: `match` for text between the marks. */
export interface SnippetPart {
  text: string;
  match: boolean;
}

export const SNIPPET_MATCH_OPEN = '\u0002';
export const SNIPPET_MATCH_CLOSE = '\u0003';

/** Splits a `msg.search` snippet into runs; a stray or unbalanced mark is dropped, empty runs
 * are left out. */
export function snippetParts(snippet: string): SnippetPart[] {
  const parts: SnippetPart[] = [];
  let match = false;
  let text = '';
  const flush = () => {
    if (text) parts.push({ text, match });
    text = '';
  };
  for (const ch of snippet) {
    if (ch === SNIPPET_MATCH_OPEN || ch === SNIPPET_MATCH_CLOSE) {
      flush();
      match = ch === SNIPPET_MATCH_OPEN;
    } else {
      text += ch;
    }
  }
  flush();
  return parts;
}
