// The room's view of each timeline item (UiMsg), and a cache by item object: an item the last
// change left alone (the timeline keeps its object) keeps its UiMsg object, so its memoised row in
// the message list does not render again; a stream's delta renders only the streaming row.
// Pure (no React): tests/e2e/09-stream-rows.test.mjs runs it in Node.
import type { FullMsg, Msg, UiMsg } from './types';

export const EMPTY_MODEL = {
  kind: 'text',
  replyTo: null,
  mentions: [],
  editedAt: null,
  deleted: false,
  reactions: [],
  notice: null,
  streaming: false,
  streamState: null,
} as const satisfies Partial<UiMsg>;

// The view of each timeline item, by the item object: an item the last change left alone keeps
// its UiMsg, so its memoised row does not render again (a delta renders only the streaming row).
const uiCache = new WeakMap<Msg, { selfId: number | undefined; ui: UiMsg | null }>();
export function cachedUiMsg(msg: Msg, selfId: number | undefined): UiMsg | null {
  const hit = uiCache.get(msg);
  if (hit && hit.selfId === selfId) return hit.ui;
  const ui = toUiMsg(msg, selfId);
  uiCache.set(msg, { selfId, ui });
  return ui;
}

// One confirmed entry as the room shows it, or null for entries that only change another message
// (edit, delete, reaction), which the timeline has already folded into it.
export function toUiMsg(msg: Msg, selfId: number | undefined): UiMsg | null {
  const m = msg as FullMsg;
  const kind = m.kind ?? 'text';
  if (kind !== 'text' && kind !== 'notice') return null;
  const own = m.clientMsgId && m.author.id === selfId;
  return {
    key: own ? m.clientMsgId! : `s${m.seq}`,
    seq: m.seq,
    author: m.author,
    body: m.deleted ? '' : m.body,
    createdAt: m.createdAt,
    clientMsgId: m.clientMsgId,
    status: 'sent',
    kind,
    replyTo: m.replyTo ?? null,
    mentions: m.mentions ?? [],
    editedAt: m.editedAt ?? null,
    deleted: !!m.deleted,
    reactions: m.reactions ?? [],
    streaming: !!m.streaming && !m.deleted,
    streamState: m.stream ? m.stream.state : null,
    notice:
      kind === 'notice'
        ? { action: m.action ?? 'joined', user: m.user ?? null, by: m.by ?? null, title: m.title, role: m.role }
        : null,
  };
}

