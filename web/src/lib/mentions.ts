// `@username` mentions: finding the one being typed at the caret (for suggestions), inserting a
// pick, and splitting a body into text and mention pieces for highlighting. Usernames are
// [a-z0-9_.-], 3-32 characters (docs/protocol.md); the server resolves mentions itself, so this
// is only about what the person sees.
import type { User } from './types';

const USERNAME_CHARS = /[A-Za-z0-9_.-]/;

// The "@que" being typed right before the caret, or null: the @ starts the text or follows
// white space or an opening bracket, so e-mail addresses do not trigger suggestions.
export function mentionQuery(text: string, caret: number): { start: number; query: string } | null {
  let i = caret;
  while (i > 0 && USERNAME_CHARS.test(text[i - 1])) i--;
  if (i === 0 || text[i - 1] !== '@') return null;
  const at = i - 1;
  if (at > 0 && !/[\s([{"']/.test(text[at - 1])) return null;
  const query = text.slice(i, caret);
  if (query.length > 32) return null;
  return { start: at, query };
}

// Participants matching the query by username or any word of the display name, best first.
export function mentionCandidates<T extends User>(people: T[], query: string, selfId: number | undefined, max = 6): T[] {
  const q = query.toLowerCase();
  const score = (u: T) => {
    if (u.username.startsWith(q)) return 0;
    if (u.displayName.toLowerCase().startsWith(q)) return 1;
    if (u.displayName.toLowerCase().split(/\s+/).some((w) => w.startsWith(q))) return 2;
    if (u.username.includes(q)) return 3;
    return -1;
  };
  return people
    .filter((u) => u.id !== selfId)
    .map((u) => ({ u, s: score(u) }))
    .filter((x) => x.s >= 0)
    .sort((a, b) => a.s - b.s || a.u.username.localeCompare(b.u.username))
    .slice(0, max)
    .map((x) => x.u);
}

// Replaces "@que" (from `start` to the caret) with "@username "; returns the text and the caret.
export function insertMention(text: string, start: number, caret: number, username: string) {
  const ins = `@${username} `;
  const rest = text.slice(caret).replace(/^ /, '');
  return { text: text.slice(0, start) + ins + rest, caret: start + ins.length };
}

export type BodyPiece = { text: string; mention?: string };

// Splits a body into plain text and `@username` pieces (usernames lower-cased), in order.
export function splitMentions(body: string): BodyPiece[] {
  const out: BodyPiece[] = [];
  const re = /(^|[\s([{"'])@([A-Za-z0-9_.-]{3,32})/g;
  let last = 0;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const at = m.index + m[1].length;
    // A trailing dot ends the sentence, it is not part of the name.
    const name = m[2].replace(/[.-]+$/, '');
    if (name.length < 3) continue;
    if (at > last) out.push({ text: body.slice(last, at) });
    out.push({ text: `@${name}`, mention: name.toLowerCase() });
    last = at + 1 + name.length;
    re.lastIndex = last;
  }
  if (last < body.length) out.push({ text: body.slice(last) });
  return out;
}
