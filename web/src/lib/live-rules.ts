// The decisions behind the live chat list, notifications and the post-login redirect, as pure
// functions without imports of values (so tests/e2e/07-live-rules.test.mjs compiles and runs
// this file alone in Node): where an activity puts a chat, what it changes, whether it notifies,
// where the first unread message is, and which `next` paths are safe to follow.
import type { ChatActivityEvent, NotifyLevel } from './live';
import type { Chat } from './types';

// The default when a chat object carries no `notify`: DMs "all", groups "mentions".
export function notifyLevelOf(chat: { notify?: NotifyLevel; kind?: string }): NotifyLevel {
  return chat.notify ?? (chat.kind === 'dm' ? 'all' : 'mentions');
}

// Moves `chat` to where its lastActivity puts it (newest first; ties: the one just active first).
export function placeByActivity(list: Chat[], chat: Chat): Chat[] {
  const rest = list.filter((c) => c.slug !== chat.slug);
  let i = 0;
  while (i < rest.length && (rest[i].lastActivity || 0) > (chat.lastActivity || 0)) i++;
  rest.splice(i, 0, chat);
  return rest;
}

// The chat after an activity event: counts are the server's, the preview is kept when the event
// brings none or an older one (events of a read marker), and nothing moves backwards.
export function applyActivity(c: Chat, e: ChatActivityEvent): Chat {
  return {
    ...c,
    unread: e.unread,
    mentions: e.mentions,
    lastActivity: Math.max(c.lastActivity || 0, e.lastActivity || 0),
    lastSeq: Math.max(c.lastSeq || 0, e.seq || 0),
    lastMessage: e.lastMsg && (!c.lastMessage || e.lastMsg.seq >= c.lastMessage.seq) ? e.lastMsg : c.lastMessage,
  };
}

// Whether an activity raises a notification: a text message by someone else, newer than what the
// list showed and than the last one notified, not in the chat on screen in a visible tab, and
// allowed by the chat's level ("all"; "mentions": `mentioned`, which the server also sets for
// every DM message; "none": never).
export function shouldNotify(
  e: ChatActivityEvent,
  before: Chat,
  ctx: { selfId?: number; activeSlug?: string; visible: boolean; lastNotified?: number },
): boolean {
  const m = e.lastMsg;
  if (!m || m.author.id === ctx.selfId) return false;
  const kind = (m as { kind?: string }).kind;
  if (kind && kind !== 'text') return false;
  if (before.lastMessage && m.seq <= before.lastMessage.seq) return false;
  if ((ctx.lastNotified ?? 0) >= m.seq) return false;
  if (ctx.visible && ctx.activeSlug === e.chat) return false;
  const level = notifyLevelOf(before);
  return level === 'all' || (level === 'mentions' && e.mentioned);
}

// The seq of the first unread message: `unread` counted back over text messages by others (your
// own are never unread, and notices of issue 17 are not counted by the server either); null while
// it is older than what is loaded (`more` pages exist).
export function firstUnreadSeq(msgs: { seq: number | null; author: { id: number }; kind?: string }[], unread: number, selfId: number | undefined, more: boolean): number | null {
  if (unread <= 0) return null;
  const others = msgs.filter((m) => m.seq !== null && m.author.id !== selfId && (m.kind ?? 'text') === 'text');
  if (others.length >= unread) return others[others.length - unread].seq;
  return more ? null : (others[0]?.seq ?? null);
}

// Where to go after logging in: `next` when it is a path of this site, else /chat.
// "//host" and "/\host" are other sites to a browser; control characters are refused too.
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || /[\u0000-\u001f\u007f]/.test(next)) return '/chat';
  if (/^\/(login|signup)(\?|$)/.test(next)) return '/chat';
  return next;
}
