// Fuzzy matching for the quick switcher: the query's characters must appear in order in the
// text; matches at word starts and runs of consecutive characters score higher, a prefix highest.
// null means no match. Case-insensitive; white space in the query is ignored.

export function fuzzyScore(query: string, text: string): number | null {
  const q = query.toLowerCase().replace(/\s+/g, '');
  const t = text.toLowerCase();
  if (!q) return 0;
  let score = 0;
  let from = 0;
  let prev = -2;
  for (const ch of q) {
    const i = t.indexOf(ch, from);
    if (i < 0) return null;
    score += 1;
    if (i === prev + 1) score += 4;
    if (i === 0 || /[\s\-_.@/]/.test(t[i - 1])) score += 6;
    score -= Math.min(i - from, 12) * 0.1;
    prev = i;
    from = i + ch.length;
  }
  if (t.startsWith(q)) score += 20;
  return score;
}

// The best score of several texts naming one thing (a title and a slug; a name and a username).
export function bestScore(query: string, texts: string[]): number | null {
  let best: number | null = null;
  for (const t of texts) {
    const s = fuzzyScore(query, t);
    if (s !== null && (best === null || s > best)) best = s;
  }
  return best;
}
