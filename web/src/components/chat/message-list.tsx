// The scrolling message list: day separators, messages grouped by author, our own marked and
// on the right, pending and failed sends with retry. Scrolling near the top loads older history
// (keeping the view still while it is inserted above); new messages keep the view pinned to the
// bottom when it was there, else a "New messages" button appears. Authors are named by `nameOf`
// (the room adds the username where display names collide) and always "Name (@user)" on hover.
// Issue 17: each message has an actions menu (reply, react, edit, delete; see message-menu.tsx),
// shows the message it answers (a click scrolls to it, loading older pages as needed), its
// reactions as toggle chips, "(edited)" with the time on hover, "message deleted" once deleted,
// and `@mentions` of participants highlighted (the reader's own most). Notices ("Cai joined")
// are lines of the timeline between messages.
// A "New messages" divider marks the first message that was unread when the chat opened; while
// it is above the view (or not loaded yet), "Jump to first unread" takes the reader there.
// Opened at a message (`anchorSeq`, from a search), the list starts scrolled to it, marked, and
// offers newer messages by pages below until it reaches the newest.
// Issue 19: a streamed message grows in place with a blinking cursor while `streaming`, and says
// "interrupted" or "error" when it ended so. Its text is rendered as text (never as HTML). Rows
// are memoised by their message object, which the timeline keeps for every message a change did
// not touch: a delta renders the streaming row only. Bots carry a "BOT" badge.
import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { Avatar } from '../ui/avatar';
import { BotBadge } from '../ui/bot-badge';
import { clockTime, dayKey, dayLabel, displayName, fullName } from '../../lib/format';
import { emojiName, rememberEmoji } from '../../lib/emoji';
import { splitMentions } from '../../lib/mentions';
import { noticeText } from '../../lib/notices';
import type { Role, UiMsg, User } from '../../lib/types';
import { EmojiPicker, MessageMenu, type MenuItem } from './message-menu';

// What a message's actions need from the room.
export interface MessageActions {
  onReply(m: UiMsg): void;
  onEdit(m: UiMsg): void;
  onDelete(m: UiMsg): void;
  onReact(seq: number, emoji: string, on: boolean): void;
}

const LONG_PRESS_MS = 450;

const GROUP_GAP_MS = 5 * 60_000;
const NEAR_BOTTOM_PX = 80;
const LOAD_MORE_PX = 150;

export function MessageList({
  messages,
  selfId,
  hasMore,
  historyLoaded,
  loadingOlder,
  loadOlder,
  onRetry,
  onDiscard,
  nameOf = displayName,
  self,
  myRole = null,
  usernames,
  actions,
  divider = null,
  findFirstUnread,
  anchorSeq,
  hasNewer = false,
  loadNewer,
  onJumpLatest,
}: {
  messages: UiMsg[];
  selfId?: number;
  hasMore: boolean;
  historyLoaded: boolean;
  loadingOlder: boolean;
  loadOlder: () => Promise<void>;
  onRetry: (clientMsgId: string) => void;
  onDiscard: (clientMsgId: string) => void;
  nameOf?: (u: UiMsg['author']) => string;
  /** The signed-in user: mentions of them stand out. */
  self?: User | null;
  /** The reader's role: owner and admins may delete anyone's messages. */
  myRole?: Role | null;
  /** Lower-cased usernames of the participants: only these `@names` are shown as mentions. */
  usernames?: Set<string>;
  actions?: MessageActions;
  divider?: { seq: number | null; count: number } | null;
  findFirstUnread?: () => Promise<number | null>;
  anchorSeq?: number;
  hasNewer?: boolean;
  loadNewer?: () => Promise<void>;
  onJumpLatest?: () => void;
}) {
  const ref = useRef<HTMLDivElement>(null);
  // Jump to a replied-to message: `target` is the seq still to be found (older pages load until
  // it is), `flash` the one just reached, highlighted for a moment.
  const [target, setTarget] = useState<number | null>(null);
  const [flash, setFlash] = useState<number | null>(null);
  const dividerRef = useRef<HTMLDivElement>(null);
  const [dividerAbove, setDividerAbove] = useState(true);
  const [jumpedToUnread, setJumpedToUnread] = useState(false);
  const [jumping, setJumping] = useState(false);

  // Is the divider above what the reader sees (or not rendered because it is older than what is loaded)?
  const checkDivider = useCallback(() => {
    const el = ref.current;
    const d = dividerRef.current;
    if (!el) return;
    if (!d) return setDividerAbove(true);
    setDividerAbove(d.offsetTop + d.offsetHeight <= el.scrollTop + 4);
  }, []);
  useLayoutEffect(checkDivider, [checkDivider, divider?.seq, messages.length, historyLoaded]);
  // The divider is placed once history and the unread count are both known, usually just after
  // the first scroll to the bottom: keep a view that was at the bottom there.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || divider?.seq == null) return;
    const p = prev.current;
    if (p.height - p.top - el.clientHeight < NEAR_BOTTOM_PX) {
      el.scrollTop = el.scrollHeight;
      prev.current = { ...p, height: el.scrollHeight, top: el.scrollTop };
    }
    checkDivider();
  }, [divider?.seq, checkDivider]);
  const prev = useRef({ first: '', last: '', height: 0, top: 0, count: 0 });
  const [showJump, setShowJump] = useState(false);
  const [olderError, setOlderError] = useState<string | null>(null);
  const initialScrolled = useRef(false);
  const hadNewer = useRef(hasNewer);
  const [newerError, setNewerError] = useState<string | null>(null);

  const tryLoadOlder = useCallback(() => {
    if (!hasMore || loadingOlder || !historyLoaded) return;
    setOlderError(null);
    loadOlder().catch((e) => setOlderError(e?.message || 'Could not load older messages.'));
  }, [hasMore, loadingOlder, historyLoaded, loadOlder]);

  useEffect(() => {
    if (target == null) return;
    const el = ref.current?.querySelector<HTMLElement>(`[data-testid="message"][data-seq="${target}"]`);
    if (el) {
      el.scrollIntoView({ block: 'center' });
      el.focus({ preventScroll: true });
      setFlash(target);
      setTarget(null);
      return;
    }
    const oldest = messages.find((m) => m.seq != null)?.seq ?? Infinity;
    if (!hasMore || oldest <= target) {
      setTarget(null); // gone (not in the history any more)
      return;
    }
    if (!loadingOlder && historyLoaded) {
      setOlderError(null);
      loadOlder().catch((e) => {
        setOlderError(e?.message || 'Could not load older messages.');
        setTarget(null);
      });
    }
  }, [target, messages, hasMore, loadingOlder, historyLoaded, loadOlder]);
  useEffect(() => {
    if (flash == null) return;
    const t = setTimeout(() => setFlash(null), 1600);
    return () => clearTimeout(t);
  }, [flash]);

  const first = messages.length ? messages[0].key : '';
  const last = messages.length ? messages[messages.length - 1].key : '';
  const lastOwn = messages.length ? messages[messages.length - 1].author.id === selfId : false;

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const p = prev.current;
    const wasNearBottom = p.height - p.top - el.clientHeight < NEAR_BOTTOM_PX;
    if (!initialScrolled.current) {
      if (historyLoaded) {
        const target = anchorSeq ? el.querySelector<HTMLElement>(`[data-seq="${anchorSeq}"]`) : null;
        if (target) target.scrollIntoView({ block: 'center' });
        else el.scrollTop = el.scrollHeight;
        initialScrolled.current = true;
      }
    } else if (hadNewer.current && last !== p.last) {
      // A page of newer messages came in below: keep what the user was reading in place.
    } else if (first !== p.first && p.first && messages.some((m, i) => i > 0 && m.key === p.first)) {
      // Older messages were inserted above: keep what the user was reading in place.
      el.scrollTop = p.top + (el.scrollHeight - p.height);
    } else if (last !== p.last || messages.length !== p.count) {
      if (wasNearBottom || lastOwn) {
        el.scrollTop = el.scrollHeight;
        setShowJump(false);
      } else if (last !== p.last) {
        setShowJump(true);
      }
    } else if (wasNearBottom && el.scrollHeight !== p.height) {
      // A message at the bottom grew (a reaction, an edit): stay at the bottom.
      el.scrollTop = el.scrollHeight;
    }
    prev.current = { first, last, height: el.scrollHeight, top: el.scrollTop, count: messages.length };
    hadNewer.current = hasNewer;
  }, [first, last, messages, historyLoaded, lastOwn, anchorSeq, hasNewer]);

  // When the first page does not fill the view, keep loading until it does (or history ends).
  useEffect(() => {
    const el = ref.current;
    if (el && historyLoaded && el.scrollHeight <= el.clientHeight + LOAD_MORE_PX) tryLoadOlder();
  }, [historyLoaded, messages.length, tryLoadOlder]);

  // Keep the view pinned to the bottom when the viewport resizes (phone keyboard opening).
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    let lastH = el.clientHeight;
    const ro = new ResizeObserver(() => {
      const p = prev.current;
      if (p.height - p.top - lastH < NEAR_BOTTOM_PX) el.scrollTop = el.scrollHeight;
      lastH = el.clientHeight;
      prev.current = { ...prev.current, height: el.scrollHeight, top: el.scrollTop };
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  function onScroll() {
    const el = ref.current!;
    prev.current = { ...prev.current, height: el.scrollHeight, top: el.scrollTop };
    if (el.scrollTop < LOAD_MORE_PX) tryLoadOlder();
    if (el.scrollHeight - el.scrollTop - el.clientHeight < NEAR_BOTTOM_PX) setShowJump(false);
    if (divider) checkDivider();
  }

  async function jumpToFirstUnread() {
    if (!findFirstUnread) return;
    setJumping(true);
    try {
      await findFirstUnread();
    } finally {
      setJumping(false);
    }
    // The older pages render before the divider can be measured.
    requestAnimationFrame(() => {
      const el = ref.current;
      const d = dividerRef.current;
      if (!el || !d) return;
      el.scrollTop = Math.max(0, d.offsetTop - 8);
      prev.current = { ...prev.current, height: el.scrollHeight, top: el.scrollTop };
      setJumpedToUnread(true);
      setDividerAbove(false);
      // Keyboard and screen-reader users land there too.
      d.focus({ preventScroll: true });
    });
  }

  function jumpToLatest() {
    const el = ref.current!;
    el.scrollTop = el.scrollHeight;
    setShowJump(false);
  }

  const items: React.ReactNode[] = [];
  let prevMsg: UiMsg | null = null;
  for (const m of messages) {
    const newDay = !prevMsg || dayKey(prevMsg.createdAt) !== dayKey(m.createdAt);
    if (newDay) {
      items.push(
        <div key={`d${dayKey(m.createdAt)}-${m.key}`} className="day-separator" role="separator" data-testid="day-separator">
          {dayLabel(m.createdAt)}
        </div>,
      );
    }
    // The "New messages" divider goes before the first message unread when the chat opened
    // (always a text message: notices are never counted as unread).
    const atDivider = divider?.seq != null && m.seq === divider.seq;
    if (atDivider) {
      items.push(
        <div key="unread-divider" ref={dividerRef} className="unread-divider" role="separator" aria-label="New messages" tabIndex={-1} data-testid="unread-divider">
          <span>New messages</span>
        </div>,
      );
    }
    if (m.kind === 'notice' && m.notice) {
      items.push(
        <div key={m.key} className="notice" data-testid="notice" data-seq={m.seq ?? ''} data-action={m.notice.action}>
          <span>{noticeText(m.notice, selfId, nameOf)}</span>{' '}
          <time className="notice__time" dateTime={new Date(m.createdAt).toISOString()}>
            {clockTime(m.createdAt)}
          </time>
        </div>,
      );
      prevMsg = m;
      continue;
    }
    const firstOfGroup =
      atDivider ||
      newDay ||
      !prevMsg ||
      prevMsg.kind === 'notice' ||
      prevMsg.author.id !== m.author.id ||
      m.createdAt - prevMsg.createdAt > GROUP_GAP_MS ||
      m.replyTo != null;
    items.push(
      <MessageItem
        key={m.key}
        m={m}
        own={m.author.id === selfId}
        anchor={anchorSeq !== undefined && m.seq === anchorSeq}
        first={firstOfGroup}
        onRetry={onRetry}
        onDiscard={onDiscard}
        nameOf={nameOf}
        self={self ?? null}
        canDelete={m.author.id === selfId || myRole === 'owner' || myRole === 'admin'}
        usernames={usernames}
        actions={actions}
        onJump={setTarget}
        flash={flash != null && m.seq === flash}
      />,
    );
    prevMsg = m;
  }

  return (
    <div style={{ position: 'relative', flex: 1, minHeight: 0, display: 'flex', flexDirection: 'column' }}>
      <div
        className="messages"
        ref={ref}
        onScroll={onScroll}
        role="log"
        aria-label="Messages"
        aria-live="polite"
        aria-relevant="additions"
        tabIndex={0}
        data-testid="messages"
      >
        <div className="messages__inner">
          <div className="history-status" data-testid="history-status">
            {olderError ? (
              <>
                {olderError}{' '}
                <button type="button" className="link-btn" onClick={tryLoadOlder}>
                  Try again
                </button>
              </>
            ) : !historyLoaded || loadingOlder ? (
              'Loading messages…'
            ) : hasMore ? (
              <button type="button" className="link-btn" onClick={tryLoadOlder}>
                Load older messages
              </button>
            ) : messages.length === 0 ? (
              'No messages yet. Say hello!'
            ) : (
              'This is the beginning of the conversation.'
            )}
          </div>
          {items}
          {hasNewer && loadNewer && (
            <div className="history-status" data-testid="newer-status">
              {newerError ? `${newerError} ` : null}
              <button
                type="button"
                className="link-btn"
                onClick={() => {
                  setNewerError(null);
                  loadNewer().catch((e) => setNewerError(e?.message || 'Could not load newer messages.'));
                }}
              >
                Load newer messages
              </button>
              {onJumpLatest && (
                <>
                  {' · '}
                  <button type="button" className="link-btn" onClick={onJumpLatest}>
                    Jump to latest
                  </button>
                </>
              )}
            </div>
          )}
        </div>
      </div>
      {divider && dividerAbove && !jumpedToUnread && findFirstUnread && historyLoaded && (
        <button type="button" className="btn btn--small jump-unread" onClick={jumpToFirstUnread} disabled={jumping} data-testid="jump-unread">
          {jumping ? 'Loading…' : `↑ Jump to first unread (${divider.count > 99 ? '99+' : divider.count})`}
        </button>
      )}
      {showJump && (
        <button type="button" className="btn btn--primary btn--small jump-latest" onClick={jumpToLatest}>
          New messages ↓
        </button>
      )}
    </div>
  );
}

const MessageItem = memo(MessageItemRow);

function MessageItemRow({
  m,
  own,
  anchor,
  first,
  onRetry,
  onDiscard,
  nameOf,
  self,
  canDelete,
  usernames,
  actions,
  onJump,
  flash,
}: {
  m: UiMsg;
  own: boolean;
  anchor: boolean;
  first: boolean;
  onRetry: (id: string) => void;
  onDiscard: (id: string) => void;
  nameOf: (u: UiMsg['author']) => string;
  self: User | null;
  canDelete: boolean;
  usernames?: Set<string>;
  actions?: MessageActions;
  onJump: (seq: number) => void;
  flash: boolean;
}) {
  const [menu, setMenu] = useState<null | 'menu' | 'react'>(null);
  const [up, setUp] = useState(false);
  const rootRef = useRef<HTMLDivElement>(null);
  const moreRef = useRef<HTMLButtonElement>(null);
  const press = useRef<{ timer: ReturnType<typeof setTimeout> | null; fired: boolean }>({ timer: null, fired: false });
  const live = m.status === 'sent' && m.seq != null && !m.deleted && !!actions;
  const mentionsMe = !!self && m.mentions.includes(self.id) && !own;
  const cls = [
    'msg',
    own && 'msg--own',
    anchor && 'msg--anchor',
    first && 'msg--first',
    m.status !== 'sent' && `msg--${m.status}`,
    m.deleted && 'msg--deleted',
    mentionsMe && 'msg--mentions-me',
    menu && 'msg--menu-open',
    flash && 'msg--flash',
    m.streaming && 'msg--streaming',
  ]
    .filter(Boolean)
    .join(' ');

  const open = useCallback((view: 'menu' | 'react') => {
    // Open towards the middle of the screen, so the popover is not cut off at an edge.
    const r = rootRef.current?.getBoundingClientRect();
    setUp(!!r && r.top > window.innerHeight / 2);
    setMenu(view);
  }, []);
  const close = useCallback(() => {
    setMenu(null);
    // Back to the "⋯" button when it can take focus (hidden on phones).
    if (moreRef.current && moreRef.current.offsetParent !== null) moreRef.current.focus();
  }, []);

  const items: MenuItem[] = [];
  if (live && actions) {
    items.push({ label: 'Reply', onSelect: () => actions.onReply(m) });
    items.push({ label: 'React…', onSelect: () => open('react'), keepOpen: true });
    if (own) items.push({ label: 'Edit', onSelect: () => actions.onEdit(m) });
    if (canDelete) items.push({ label: 'Delete…', onSelect: () => actions.onDelete(m), danger: true });
  }

  function react(emoji: string, on: boolean) {
    if (!actions || m.seq == null) return;
    if (on) rememberEmoji(self?.id, emoji);
    actions.onReact(m.seq, emoji, on);
  }

  // Phones: a long press or a tap on the bubble opens the menu (there is no hover). A right click
  // does too, unless text is selected (then the browser's menu is there to copy it).
  const touchHandlers = live
    ? {
        onPointerDown(e: React.PointerEvent) {
          if (e.pointerType !== 'touch') return;
          press.current.fired = false;
          press.current.timer = setTimeout(() => {
            press.current.fired = true;
            open('menu');
          }, LONG_PRESS_MS);
        },
        onPointerUp(e: React.PointerEvent) {
          if (press.current.timer) clearTimeout(press.current.timer);
          if (e.pointerType === 'touch' && !press.current.fired && !menu && !(e.target as HTMLElement).closest('button, a')) open('menu');
        },
        onPointerCancel() {
          if (press.current.timer) clearTimeout(press.current.timer);
        },
        onPointerMove(e: React.PointerEvent) {
          if (e.pointerType === 'touch' && press.current.timer && (Math.abs(e.movementX) > 4 || Math.abs(e.movementY) > 4)) {
            clearTimeout(press.current.timer);
            press.current.timer = null;
          }
        },
        onContextMenu(e: React.MouseEvent) {
          if (String(window.getSelection() ?? '').length > 0) return;
          e.preventDefault();
          if (!menu) open('menu');
        },
      }
    : {};

  return (
    <div
      ref={rootRef}
      className={cls}
      data-testid="message"
      data-seq={m.seq ?? ''}
      data-status={m.status}
      data-own={own ? 'true' : 'false'}
      data-deleted={m.deleted ? 'true' : undefined}
      data-stream={m.streamState ?? undefined}
      aria-busy={m.streaming ? 'true' : undefined}
      tabIndex={-1}
      data-anchor={anchor ? 'true' : undefined}
      aria-current={anchor ? 'true' : undefined}
    >
      {!own && <div className="msg__avatar">{first && <Avatar user={m.author} size={30} />}</div>}
      <div className="msg__content">
        {first && !own && (
          <div className="msg__author" title={fullName(m.author)} data-testid="message-author">
            {nameOf(m.author)}
            <BotBadge user={m.author} />
          </div>
        )}
        {m.replyTo && (
          <button
            type="button"
            className="msg__reply"
            data-testid="reply-quote"
            onClick={() => onJump(m.replyTo!.seq)}
            title="Show the original message"
          >
            <span className="visually-hidden">In reply to </span>
            <span className="msg__reply-author">{m.replyTo.author.id === self?.id ? 'You' : nameOf(m.replyTo.author)}</span>
            <span className="visually-hidden">: </span>
            <span className="msg__reply-text">{m.replyTo.preview || 'message deleted'}</span>
          </button>
        )}
        <div className="msg__row">
          <div className="msg__bubble" {...touchHandlers}>
            <span className="visually-hidden">{own ? 'You' : nameOf(m.author)}: </span>
            {m.deleted ? (
              <span className="msg__body msg__deleted" data-testid="message-body">
                message deleted
              </span>
            ) : (
              <span className="msg__body" data-testid="message-body">
                {splitMentions(m.body).map((p, i) =>
                  p.mention && usernames?.has(p.mention) ? (
                    <span
                      key={i}
                      className={`mention${p.mention === self?.username ? ' mention--me' : ''}`}
                      data-testid={p.mention === self?.username ? 'mention-me' : 'mention'}
                    >
                      {p.text}
                    </span>
                  ) : (
                    p.text
                  ),
                )}
                {m.streaming && <span className="stream-cursor" aria-hidden="true" data-testid="stream-cursor" />}
              </span>
            )}
            {(m.streamState === 'interrupted' || m.streamState === 'error') && !m.deleted && (
              <span className={`msg__stream-state msg__stream-state--${m.streamState}`} data-testid="stream-state">
                {' '}
                {m.streamState === 'interrupted' ? '(interrupted)' : '(answer failed)'}
              </span>
            )}
            {m.editedAt != null && !m.deleted && (
              <span className="msg__edited" data-testid="edited" title={`Edited ${new Date(m.editedAt).toLocaleString()}`}>
                {' '}
                (edited)
              </span>
            )}
            <time className="msg__time" dateTime={new Date(m.createdAt).toISOString()}>
              {clockTime(m.createdAt)}
            </time>
          </div>
          {live && (
            <div className="msg__tools">
              <button
                ref={moreRef}
                type="button"
                className="btn btn--ghost btn--icon msg__more"
                aria-label={`Actions for ${own ? 'your message' : `${nameOf(m.author)}'s message`}`}
                aria-haspopup="menu"
                aria-expanded={menu === 'menu'}
                title="More actions"
                onClick={() => (menu ? setMenu(null) : open('menu'))}
              >
                <span aria-hidden="true">⋯</span>
              </button>
              {menu === 'menu' && <MessageMenu items={items} up={up} onClose={close} />}
              {menu === 'react' && <EmojiPicker userId={self?.id} up={up} onPick={(e) => react(e, !m.reactions.some((r) => r.emoji === e && r.me))} onClose={close} />}
            </div>
          )}
        </div>
        {m.reactions.length > 0 && !m.deleted && (
          <div className="reactions" role="group" aria-label="Reactions">
            {m.reactions.map((r) => (
              <button
                key={r.emoji}
                type="button"
                className={`reaction${r.me ? ' reaction--me' : ''}`}
                aria-pressed={r.me}
                aria-label={`${emojiName(r.emoji)}: ${r.count}${r.me ? ', including you' : ''}`}
                title={r.me ? 'Remove your reaction' : `React with ${emojiName(r.emoji)}`}
                data-testid="reaction"
                data-emoji={r.emoji}
                disabled={!live}
                onClick={() => react(r.emoji, !r.me)}
              >
                <span aria-hidden="true">{r.emoji}</span>
                <span className="reaction__count" aria-hidden="true">
                  {r.count}
                </span>
              </button>
            ))}
          </div>
        )}
        {m.status === 'pending' && (
          <div className="msg__status" data-testid="message-pending">
            Sending…
          </div>
        )}
        {m.status === 'failed' && m.clientMsgId && (
          <div className="msg__status" role="alert">
            <span>Not sent{m.error ? ` (${m.error})` : ''}.</span>
            <button type="button" className="link-btn" onClick={() => onRetry(m.clientMsgId!)}>
              Retry
            </button>
            <button type="button" className="link-btn" onClick={() => onDiscard(m.clientMsgId!)}>
              Delete
            </button>
          </div>
        )}
      </div>
    </div>
  );
}
