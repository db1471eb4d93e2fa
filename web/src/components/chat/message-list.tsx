// The scrolling message list: day separators, messages grouped by author, our own marked and
// on the right, pending and failed sends with retry. Scrolling near the top loads older history
// (keeping the view still while it is inserted above); new messages keep the view pinned to the
// bottom when it was there, else a "New messages" button appears. Authors are named by `nameOf`
// (the room adds the username where display names collide) and always "Name (@user)" on hover.
// Opened at a message (`anchorSeq`, from a search), the list starts scrolled to it, marked, and
// offers newer messages by pages below until it reaches the newest.
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { Avatar } from '../ui/avatar';
import { clockTime, dayKey, dayLabel, displayName, fullName } from '../../lib/format';
import type { UiMsg } from '../../lib/types';

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
  anchorSeq?: number;
  hasNewer?: boolean;
  loadNewer?: () => Promise<void>;
  onJumpLatest?: () => void;
}) {
  const ref = useRef<HTMLDivElement>(null);
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
    const firstOfGroup =
      newDay || !prevMsg || prevMsg.author.id !== m.author.id || m.createdAt - prevMsg.createdAt > GROUP_GAP_MS;
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
      {showJump && (
        <button type="button" className="btn btn--primary btn--small jump-latest" onClick={jumpToLatest}>
          New messages ↓
        </button>
      )}
    </div>
  );
}

function MessageItem({
  m,
  own,
  anchor,
  first,
  onRetry,
  onDiscard,
  nameOf,
}: {
  m: UiMsg;
  own: boolean;
  anchor: boolean;
  first: boolean;
  onRetry: (id: string) => void;
  onDiscard: (id: string) => void;
  nameOf: (u: UiMsg['author']) => string;
}) {
  const cls = ['msg', own && 'msg--own', first && 'msg--first', anchor && 'msg--anchor', m.status !== 'sent' && `msg--${m.status}`]
    .filter(Boolean)
    .join(' ');
  return (
    <div
      className={cls}
      data-testid="message"
      data-seq={m.seq ?? ''}
      data-status={m.status}
      data-own={own ? 'true' : 'false'}
      data-anchor={anchor ? 'true' : undefined}
      aria-current={anchor ? 'true' : undefined}
    >
      {!own && <div className="msg__avatar">{first && <Avatar user={m.author} size={30} />}</div>}
      <div className="msg__content">
        {first && !own && (
          <div className="msg__author" title={fullName(m.author)} data-testid="message-author">
            {nameOf(m.author)}
          </div>
        )}
        <div className="msg__bubble">
          <span className="visually-hidden">{own ? 'You' : nameOf(m.author)}: </span>
          <span className="msg__body" data-testid="message-body">
            {m.body}
          </span>
          <time className="msg__time" dateTime={new Date(m.createdAt).toISOString()}>
            {clockTime(m.createdAt)}
          </time>
        </div>
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
