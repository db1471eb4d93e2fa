// Text the UI shows for times, typers and presence. Pure functions, so they are easy to test.
import type { User } from './types';

// "1 participant", "2 participants", "0 participants": the word is chosen by the language's plural
// rules (Intl.PluralRules: English has "one" and "other"; the app's text is English), never by
// `n === 1` scattered through the UI, and screen-reader labels use the same helper.
const PLURALS = new Intl.PluralRules('en');
export function plural(n: number, one: string, other: string): string {
  return PLURALS.select(n) === 'one' ? one : other;
}
export function count(n: number, one: string, other: string): string {
  return `${n} ${plural(n, one, other)}`;
}

// "Try again in 1 second", "in 30 seconds", from a retryAfter in milliseconds (rounded up).
export function retryText(retryAfterMs: number | null | undefined): string {
  if (!retryAfterMs || retryAfterMs <= 0) return 'Try again in a few seconds.';
  return `Try again in ${count(Math.ceil(retryAfterMs / 1000), 'second', 'seconds')}.`;
}

// A signup over the network's budget (HTTP 429; Retry-After in seconds, often most of an hour):
// "try again in 1 minute", "in 42 minutes", rounded up.
export function signupLimitText(retryAfterMs: number | null | undefined): string {
  if (!retryAfterMs || retryAfterMs <= 0) return 'Too many sign-ups from this network; try again later.';
  return `Too many sign-ups from this network; try again in ${count(Math.ceil(retryAfterMs / 60_000), 'minute', 'minutes')}.`;
}

export function displayName(u: { displayName?: string; username: string }) {
  return u.displayName || u.username;
}

// Display names are limited in characters the way the server counts them: code points, so "🦊"
// is one character (a string's .length counts UTF-16 units, and an HTML maxlength does too).
export const DISPLAY_NAME_MAX = 64;

export function codePointLength(s: string): number {
  return Array.from(s).length;
}

// The server's rules for user-visible text (src/core/text.c), checked before sending so that a
// form can say what is wrong instead of the server's bad_request. Names (display names, chat
// titles) are counted in code points; they refuse control characters and the bidi
// embedding/override/isolate controls, which reorder what follows them on screen
// ("evil\u202Egnp.exe"). Names and message bodies need at least one visible character.
export const TITLE_MAX = 100; // chat titles, code points too (TEXT_TITLE_MAX)

// U+202A-U+202E and U+2066-U+2069, as text_is_bidi_control().
export function isBidiControl(c: number): boolean {
  return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

// As text_is_visible(): not white space, not default-ignorable, not a control (Cc) or format (Cf)
// character, not a blank lookalike. Unassigned code points count as visible (a newer emoji).
const INVISIBLE = /[\p{White_Space}\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}]/u;
const BLANKS = new Set([0x2800, 0x115f, 0x1160, 0x3164, 0xffa0]);
export function isVisible(c: number): boolean {
  return !BLANKS.has(c) && !INVISIBLE.test(String.fromCodePoint(c));
}

// Why the server would refuse the name s, or null: 'control' (C0, DEL, C1, U+2028, U+2029), 'bidi',
// 'too_long' (over max code points), 'blank' (empty or nothing visible). Bodies are only
// checked with hasVisible(); their length is the composer's (bytes) business.
export type TextProblem = 'control' | 'bidi' | 'too_long' | 'blank';

export function nameProblem(s: string, max: number): TextProblem | null {
  let chars = 0;
  let visible = false;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (/\p{Cc}/u.test(ch) || c === 0x2028 || c === 0x2029) return 'control';
    if (isBidiControl(c)) return 'bidi';
    if (!visible && isVisible(c)) visible = true;
    chars++;
  }
  if (chars > max) return 'too_long';
  return visible ? null : 'blank';
}

export function hasVisible(s: string): boolean {
  for (const ch of s) if (isVisible(ch.codePointAt(0)!)) return true;
  return false;
}

// The sentence a form shows for a name's problem; `what` is "Display names", "Titles"...
export function nameProblemText(p: TextProblem, what: string, max: number): string {
  switch (p) {
    case 'control':
      return `${what} cannot contain control characters or line breaks.`;
    case 'bidi':
      return `${what} cannot contain text-direction control characters.`;
    case 'too_long':
      return `${what} are at most ${max} characters.`;
    case 'blank':
      return `${what} need at least one visible character.`;
  }
}

// "Ana (@ana)": the display name with the username, which is unique and cannot be borrowed.
export function fullName(u: { displayName?: string; username: string }): string {
  return `${displayName(u)} (@${u.username})`;
}

// Display names can be chosen freely, so two people may show the same one. Names are compared
// after NFKC folding, lower-casing and squeezing white space, so "Ana", "ana " and "Ａｎａ" count as
// one name.
function nameKey(u: { displayName?: string; username: string }): string {
  return displayName(u).normalize('NFKC').toLowerCase().trim().replace(/\s+/g, ' ');
}

// A namer for the people in one view (a chat's participants and message authors): a person whose
// display name someone else in the view also shows gets their username too ("Ana (@ana)"), so
// nobody can pass for somebody else; everyone else is their display name.
export function makeNamer(
  users: Iterable<{ id: number; displayName?: string; username: string }>,
): (u: { displayName?: string; username: string }) => string {
  const owners = new Map<string, number>();
  const shared = new Set<string>();
  for (const u of users) {
    const k = nameKey(u);
    const id = owners.get(k);
    if (id === undefined) owners.set(k, u.id);
    else if (id !== u.id) shared.add(k);
  }
  return (u) => (shared.has(nameKey(u)) ? fullName(u) : displayName(u));
}

// "Ana is typing…", "Ana and Ben are typing…", "Ana, Ben and Cy are typing…",
// "Ana, Ben and 3 others are typing…". `others` counts typers the server did not list.
export function typingText(users: Pick<User, 'username' | 'displayName'>[], others = 0): string {
  const names = users.map(displayName);
  const total = names.length + Math.max(0, others);
  if (total === 0) return '';
  if (total === 1) return `${names[0] ?? 'Someone'} is typing…`;
  if (total === 2 && names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  if (total === 3 && names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  if (names.length === 0) return `${total} people are typing…`;
  if (names.length === 1) {
    const rest = total - 1;
    return `${names[0]} and ${count(rest, 'other', 'others')} are typing…`;
  }
  const rest = total - 2;
  return `${names[0]}, ${names[1]} and ${count(rest, 'other', 'others')} are typing…`;
}

// Bots waiting for their model: "Helper is thinking…", "Helper and Sage are thinking…".
export function thinkingText(bots: Pick<User, 'username' | 'displayName'>[]): string {
  const names = bots.map(displayName);
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is thinking…`;
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} are thinking…`;
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

// "just now", "5 min ago", "3 h ago", "yesterday", "Mar 4".
export function relativeTime(ts: number, now = Date.now()): string {
  const d = Math.max(0, now - ts);
  if (d < MIN) return 'just now';
  if (d < HOUR) return `${Math.floor(d / MIN)} min ago`;
  if (d < DAY) return `${Math.floor(d / HOUR)} h ago`;
  if (d < 2 * DAY) return 'yesterday';
  if (d < 7 * DAY) return `${Math.floor(d / DAY)} days ago`;
  return new Date(ts).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

export function lastSeenText(ts: number | null | undefined, now = Date.now()): string {
  if (!ts) return 'offline';
  return `last seen ${relativeTime(ts, now)}`;
}

export function clockTime(ts: number): string {
  return new Date(ts).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

// Local midnight of a timestamp: messages with the same key share a day separator.
export function dayKey(ts: number): number {
  const d = new Date(ts);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

export function dayLabel(ts: number, now = Date.now()): string {
  const diff = Math.round((dayKey(now) - dayKey(ts)) / DAY);
  if (diff === 0) return 'Today';
  if (diff === 1) return 'Yesterday';
  const d = new Date(ts);
  if (diff < 7) return d.toLocaleDateString(undefined, { weekday: 'long' });
  const sameYear = d.getFullYear() === new Date(now).getFullYear();
  return d.toLocaleDateString(undefined, {
    weekday: 'short',
    month: 'long',
    day: 'numeric',
    ...(sameYear ? {} : { year: 'numeric' }),
  });
}

// Short time for chat list rows: "14:05" today, "Yesterday", "Mon", "Mar 4".
export function listTime(ts: number, now = Date.now()): string {
  const diff = Math.round((dayKey(now) - dayKey(ts)) / DAY);
  if (diff === 0) return clockTime(ts);
  if (diff === 1) return 'Yesterday';
  if (diff < 7) return new Date(ts).toLocaleDateString(undefined, { weekday: 'short' });
  return new Date(ts).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

export function expiresText(ts: number, now = Date.now()): string {
  const d = ts - now;
  if (d <= 0) return 'expired';
  if (d < HOUR) return `expires in ${Math.max(1, Math.round(d / MIN))} min`;
  if (d < DAY) return `expires in ${Math.round(d / HOUR)} h`;
  const days = Math.round(d / DAY);
  return `expires in ${count(days, 'day', 'days')}`;
}

// Friendly text for protocol error codes, shown where the action happened.
export function errorText(err: unknown): string {
  const e = err as { code?: string; message?: string } | null;
  switch (e?.code) {
    case 'chat_full':
      return 'This chat is full: it has reached its participant limit.';
    case 'expired':
      return 'This invitation has expired.';
    case 'forbidden':
      return "You don't have permission to do that.";
    case 'not_found':
      return 'Not found: it may have been removed.';
    case 'unauthorized':
      return 'Your session has ended. Please log in again.';
    case 'rate_limited':
      return 'Slow down a little: too many requests. Try again in a moment.';
    case 'too_large':
      return 'That is too long.';
    case 'unavailable':
      return 'The server is busy or unreachable. Try again shortly.';
    case 'conflict':
      return e.message ? capitalize(e.message) : 'That conflicts with the current state.';
    case 'bad_request':
      return e.message ? capitalize(e.message) : 'Invalid request.';
    default:
      return e?.message ? capitalize(e.message) : 'Something went wrong.';
  }
}

function capitalize(s: string) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// A stable, calm colour per user for avatars.
const HUES = [12, 32, 145, 170, 195, 215, 245, 270, 295, 330];
export function userHue(username: string): number {
  let h = 0;
  for (let i = 0; i < username.length; i++) h = (h * 31 + username.charCodeAt(i)) >>> 0;
  return HUES[h % HUES.length];
}

// What a reader sees as characters: grapheme clusters ("👩‍💻", "é" written as e + accent) where
// Intl.Segmenter exists (every current browser), else code points. Never UTF-16 units, whose
// halves of an emoji show as "�".
export function graphemes(s: string): string[] {
  if (typeof Intl !== 'undefined' && typeof Intl.Segmenter === 'function') {
    return Array.from(new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(s), (g) => g.segment);
  }
  return Array.from(s);
}

// "Ana Lima" -> "AL", "ana" -> "AN", "🦊 Fox" -> "🦊F".
export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return '?';
  if (parts.length === 1) return graphemes(parts[0]).slice(0, 2).join('').toUpperCase();
  return (graphemes(parts[0])[0] + graphemes(parts[parts.length - 1])[0]).toUpperCase();
}
