// Which `chat.activity` events raise a browser notification, and what it says. Raised for a new
// message by someone else when the chat's level allows it ("all": every message; "mentions":
// messages that mention the user, and every DM message, which the server flags as `mentioned`;
// "none": never), except for the chat the user is looking at in a visible tab. Clicking it
// focuses the tab and opens the chat. Events that only move a read marker carry no newer message
// than the list already shows, so they never notify.
import { displayName } from './format';
import { navigate } from './router';
import { showNotification } from './attention';
import type { ChatActivityEvent } from './live';
import { shouldNotify } from './live-rules';
import { fresh } from './users';
import type { Chat } from './types';

const BODY_MAX = 140;
// The newest seq notified per chat, so a repeated event (two tabs, a reconnect) notifies once.
const notified = new Map<string, number>();

export function notifyForActivity(e: ChatActivityEvent, before: Chat, ctx: { selfId?: number; activeSlug?: string }): void {
  const visible = typeof document !== 'undefined' && document.visibilityState === 'visible';
  if (!shouldNotify(e, before, { ...ctx, visible, lastNotified: notified.get(e.chat) })) return;
  const m = e.lastMsg!;
  notified.set(e.chat, m.seq);
  const author = fresh(m.author) as typeof m.author & { avatar?: string | null };
  const isDm = before.kind === 'dm';
  // A streamed answer (issue 19) starts empty: say it is coming.
  const text = m.streaming && !m.body.trim() ? 'Answering…' : m.body.replace(/\s+/g, ' ').trim();
  const body = (isDm ? text : `${displayName(author)}: ${text}`).slice(0, BODY_MAX);
  showNotification({
    title: isDm ? displayName(author) : before.title,
    body,
    tag: `parley-chat-${e.chat}`,
    icon: author.avatar || undefined,
    onClick: () => navigate(`/chat/${encodeURIComponent(e.chat)}`),
  });
}
