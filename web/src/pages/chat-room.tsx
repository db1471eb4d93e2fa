// /chat/:slug: the conversation. Header (title, who is here, invite, people, settings), the
// reconnecting banner, the message list, who is typing, the composer, and beside it (or in a
// drawer on narrower screens) who is in the chat and their presence.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useFreshUser } from '../lib/users';
import { useChatList } from '../hooks/use-chat-list';
import { firstUnreadSeq } from '../lib/live-rules';
import { useRealtimeChat } from '../hooks/use-realtime-chat';
import { useRealtime, useSession } from '../lib/session';
import { canInvite } from '../../../clients/js/src/rules.js';
import { Link, navigate } from '../lib/router';
import { setPageTitle } from '../lib/attention';
import { count, displayName, fullName, makeNamer, errorText } from '../lib/format';
import { recordRemoval, removalOf, type Removal } from '../lib/removals';
import { MessageList, type MessageActions } from '../components/chat/message-list';
import { Composer, type EditTarget, type ReplyTarget } from '../components/chat/composer';
import { ConfirmDialog } from '../components/ui/modal';
import { BotBadge } from '../components/ui/bot-badge';
import { useOpenDm } from '../hooks/use-open-dm';
import { TypingIndicator } from '../components/chat/typing-indicator';
import { UserPresence, type PresenceEntry } from '../components/chat/user-presence';
import { ConnectionBanner } from '../components/chat/connection-banner';
import { InviteUserModal } from '../components/chat/invite-user-modal';
import { IconBack, IconSettings, IconUserPlus, IconUsers } from '../components/ui/icons';
import type { Chat, UiMsg } from '../lib/types';

export function ChatRoom({ slug, around }: { slug: string; around?: number }) {
  // Joining a public chat from its link remounts the room, which then subscribes as a participant.
  const [joins, setJoins] = useState(0);
  return <Room key={joins} slug={slug} around={around} onJoined={() => setJoins((n) => n + 1)} />;
}

// Shown to a visitor of a public chat they are not in: its title and size, and Join. Nothing
// failed, so no error is shown; chat.get (already loaded by the room) says all that is needed.
function JoinPublicChat({ slug, chat, onJoined }: { slug: string; chat: Chat; onJoined: () => void }) {
  const rt = useRealtime();
  const { user } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [removed, setRemoved] = useState(false);
  const [busy, setBusy] = useState(false);
  if (removed) return <RemovedNotice />;
  return (
    <>
      <p>
        <strong>{chat.title}</strong> is a public chat with {count(chat.participantCount, 'participant', 'participants')}.
      </p>
      {error && (
        <p className="inline-error" role="alert">
          {error}
        </p>
      )}
      <button
        type="button"
        className="btn btn--primary"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          setError(null);
          try {
            await rt.request('chat.join', { chat: slug });
            onJoined();
          } catch (err) {
            // A public chat refuses a join only to someone removed from it (docs/protocol.md).
            if ((err as { code?: string }).code === 'forbidden') {
              recordRemoval(user?.id, slug, null);
              setRemoved(true);
            } else setError(errorText(err));
            setBusy(false);
          }
        }}
      >
        {busy ? 'Joining…' : 'Join this chat'}
      </button>
    </>
  );
}

function RemovedNotice({ by }: { by?: Removal['by'] }) {
  return (
    <p data-testid="removed-notice">
      You were removed from this chat{by ? ` by ${fullName(by)}` : ''}; ask {by ? displayName(by) : 'someone in it'} for an invitation to come back.
    </p>
  );
}

// Where the "New messages" divider goes: the list's unread count for the chat as the room opened
// (frozen then: reading moves the marker at once), counted back from the newest message by
// someone else (your own messages are never unread). `seq` null while the first unread is older
// than the loaded history; findFirstUnread() pages back until it is loaded.
export interface UnreadDivider {
  seq: number | null;
  count: number;
}

function useUnreadDivider(slug: string, messages: UiMsg[], historyLoaded: boolean, hasMore: boolean, loadOlder: () => Promise<void>, selfId?: number) {
  const list = useChatList();
  const [atOpen, setAtOpen] = useState<number | null>(null);
  const [divider, setDivider] = useState<UnreadDivider | null>(null);
  const listed = list.chats.find((c) => c.slug === slug);
  useEffect(() => {
    if (atOpen === null && list.loaded) setAtOpen(listed?.unread ?? 0);
  }, [atOpen, list.loaded, listed?.unread]);

  const locate = useCallback((msgs: UiMsg[], n: number, more: boolean) => firstUnreadSeq(msgs, n, selfId, more), [selfId]);

  useEffect(() => {
    if (divider || atOpen === null || !historyLoaded) return;
    if (atOpen === 0) setDivider({ seq: null, count: 0 });
    else setDivider({ seq: locate(messages, atOpen, hasMore), count: atOpen });
  }, [divider, atOpen, historyLoaded, messages, hasMore, locate]);

  // Load older pages until the first unread message is in; bounded by what the count says.
  const latest = useRef({ messages, hasMore });
  latest.current = { messages, hasMore };
  const findFirstUnread = useCallback(async (): Promise<number | null> => {
    if (!divider || divider.count === 0) return null;
    if (divider.seq !== null) return divider.seq;
    for (let i = 0; i < 50; i++) {
      const seq = locate(latest.current.messages, divider.count, latest.current.hasMore);
      if (seq !== null || !latest.current.hasMore) {
        setDivider({ seq, count: divider.count });
        return seq;
      }
      await loadOlder();
      // Let the room render the page it loaded before counting again.
      await new Promise((r) => setTimeout(r, 0));
    }
    return null;
  }, [divider, locate, loadOlder]);

  return { divider: divider && divider.count > 0 ? divider : null, findFirstUnread };
}

function Room({ slug, around, onJoined }: { slug: string; around?: number; onJoined: () => void }) {
  const { user } = useSession();
  const rc0 = useRealtimeChat(slug, around);
  const fresh = useFreshUser();
  // Names and pictures as they are now (user.updated), not as when each message was loaded.
  const participants = useMemo(() => rc0.participants.map((p) => fresh(p)), [rc0.participants, fresh]);
  // Message authors may come without `avatar`: chat.get's participants carry it. A message whose
  // author did not change keeps its object (rows are memoised: a stream's delta renders one row).
  const authored = useRef(new WeakMap<UiMsg, { author: UiMsg['author']; out: UiMsg }>());
  const messages = useMemo(() => {
    const pics = new Map<number, string | null | undefined>(participants.map((p) => [p.id, (p as { avatar?: string | null }).avatar]));
    return rc0.messages.map((m) => {
      const a = fresh(m.author) as UiMsg['author'] & { avatar?: string | null };
      const author = a.avatar === undefined && pics.get(a.id) ? { ...a, avatar: pics.get(a.id) } : a;
      const hit = authored.current.get(m);
      if (hit && hit.author.displayName === author.displayName && hit.author.username === author.username &&
          (hit.author as { avatar?: string | null }).avatar === (author as { avatar?: string | null }).avatar &&
          hit.author.bot === author.bot) {
        return hit.out;
      }
      const out = author === m.author ? m : { ...m, author };
      authored.current.set(m, { author, out });
      return out;
    });
  }, [rc0.messages, participants, fresh]);
  const typingUsers = useMemo(() => rc0.typingUsers.map((u) => fresh(u)), [rc0.typingUsers, fresh]);
  const activeUsers = useMemo(() => rc0.activeUsers.map((u) => fresh(u)), [rc0.activeUsers, fresh]);
  const rc = { ...rc0, messages, participants, typingUsers, activeUsers };
  // Opened at a message (from a search): back to the newest messages (the room opens afresh).
  const latest = () => navigate(`/chat/${encodeURIComponent(slug)}`);
  const [inviting, setInviting] = useState(false);
  const [peopleOpen, setPeopleOpen] = useState(false);
  const [replyTo, setReplyTo] = useState<UiMsg | null>(null);
  const [editing, setEditing] = useState<UiMsg | null>(null);
  const [deleting, setDeleting] = useState<UiMsg | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const dm = useOpenDm();
  const isDm = rc.chat?.kind === 'dm';
  // Opened at a message (from a search) the list is not at the newest end, so it shows no unread
  // divider (it is placed counting back from the newest message).
  const { divider, findFirstUnread } = useUnreadDivider(slug, rc.messages, rc.historyLoaded, rc.hasMore, rc0.loadOlder, user?.id);

  const activeIds = useMemo(() => new Set(rc.activeUsers.map((u) => u.id)), [rc.activeUsers]);
  // Everyone this room can name: where two of them show the same display name, both get their
  // username too, so nobody can pass for somebody else.
  // Keyed by the names it sees, not the list: a stream's delta leaves it (and every row) alone.
  const namesKey = useMemo(() => {
    const seen = new Map<number, string>();
    for (const u of [...rc.participants, ...rc.messages.map((m) => m.author), ...rc.typingUsers, ...rc.activeUsers]) {
      seen.set(u.id, `${u.id}\u0001${u.username}\u0001${u.displayName ?? ''}`);
    }
    return [...seen.values()].sort().join('\u0002');
  }, [rc.participants, rc.messages, rc.typingUsers, rc.activeUsers]);
  const nameOf = useMemo(
    () =>
      makeNamer(
        namesKey
          .split('\u0002')
          .filter(Boolean)
          .map((s) => {
            const [id, username, displayName] = s.split('\u0001');
            return { id: Number(id), username: username!, displayName: displayName! };
          }),
      ),
    [namesKey],
  );
  const entries: PresenceEntry[] = rc.participants.map((p) => ({
    user: p,
    role: p.role,
    presence: p.id === user?.id && rc.connectionState === 'online' ? { user: p, state: 'online', lastSeen: null } : rc.presence[p.id],
  }));
  const usernames = useMemo(() => new Set(rc.participants.map((p) => p.username.toLowerCase())), [rc.participants]);
  const { react, edit, remove } = rc;
  const actions = useMemo<MessageActions>(
    () => ({
      onReply(m) {
        setEditing(null);
        setReplyTo(m);
      },
      onEdit(m) {
        setReplyTo(null);
        setEditing(m);
      },
      onDelete: setDeleting,
      onReact(seq, emoji, on) {
        setActionError(null);
        react(seq, emoji, on).catch((err) => setActionError(`Could not react: ${errorText(err)}`));
      },
    }),
    [react],
  );
  const replyTarget = useMemo<ReplyTarget | null>(
    () =>
      replyTo && replyTo.seq != null
        ? { seq: replyTo.seq, name: replyTo.author.id === user?.id ? 'yourself' : nameOf(replyTo.author), preview: replyTo.body.slice(0, 100) }
        : null,
    [replyTo, user?.id, nameOf],
  );
  const editTarget = useMemo<EditTarget | null>(() => (editing && editing.seq != null ? { seq: editing.seq, body: editing.body } : null), [editing]);
  // Up arrow in an empty composer: the newest of your messages that can still be edited.
  const editLast = () => {
    const mine = [...rc.messages].reverse().find((m) => m.author.id === user?.id && m.kind === 'text' && m.status === 'sent' && m.seq != null && !m.deleted);
    if (!mine) return false;
    setReplyTo(null);
    setEditing(mine);
    return true;
  };
  const onlineCount = entries.filter((e) => e.presence && e.presence.state !== 'offline').length;
  const hereOthers = rc.activeUsers.filter((u) => u.id !== user?.id);
  // In a big chat activeUsers is only the first ones; activeCount counts everyone, us included.
  const hereCount = rc.activeCount > rc.activeUsers.length ? rc.activeCount - 1 : hereOthers.length;

  const blocked = rc.status === 'error' || rc.status === 'visitor';
  // Removed earlier (seen live, kept in localStorage): said at once, instead of a Join that fails
  // or a "No such chat" for a private chat.
  const removal = rc.status === 'removed' ? null : removalOf(user?.id, slug);
  // A DM is titled by the other person, by their name as it is now (user.updated), as in the list.
  const peer = isDm && rc.chat?.peer ? fresh(rc.chat.peer) : null;
  const chatTitle = peer ? displayName(peer) : rc.chat?.title;
  useEffect(() => {
    setPageTitle(`${chatTitle || slug} · Parley`);
  }, [chatTitle, slug]);
  const title = chatTitle || (blocked ? 'Chat unavailable' : slug);

  return (
    <div className={`room${peopleOpen ? ' room--people-open' : ''}`}>
      <section className="room__main" aria-label={`Chat: ${title}`}>
        <header className="room-header">
          <Link to="/chat" className="btn btn--ghost btn--icon room-header__back" aria-label="Back to chats">
            <IconBack />
          </Link>
          <div className="room-header__title">
            <h1 data-testid="room-title">
              {title}
              <BotBadge user={peer} />
            </h1>
            <div className="room-header__sub">
              {rc.chat && isDm ? (
                <span data-testid="room-dm">Direct message{rc.chat.peer ? ` with @${rc.chat.peer.username}` : ''}</span>
              ) : rc.chat ? (
                <>
                  <span data-testid="room-participants">
                    {count(rc.chat.participantCount, 'participant', 'participants')}
                  </span>
                  {' · '}
                  {onlineCount} online
                  {hereCount > 0 && (
                    <span data-testid="room-here">
                      {' · '}
                      {hereCount === 1 && hereOthers.length === 1 ? `${nameOf(hereOthers[0])} is here` : `${hereCount} others here`}
                    </span>
                  )}
                </>
              ) : (
                ' '
              )}
            </div>
          </div>
          <div className="room-header__actions">
            {canInvite(rc.chat) && rc.status === 'ready' && !isDm && (
              <button type="button" className="btn btn--ghost btn--icon" onClick={() => setInviting(true)} aria-label="Invite people" title="Invite people">
                <IconUserPlus />
              </button>
            )}
            <button
              type="button"
              className="btn btn--ghost btn--icon people-toggle"
              onClick={() => setPeopleOpen((o) => !o)}
              aria-expanded={peopleOpen}
              aria-controls="room-people"
              aria-label="People in this chat"
              title="People"
            >
              <IconUsers />
            </button>
            {rc.status !== 'removed' && !blocked && (
              <Link to={`/chat/${encodeURIComponent(slug)}/settings`} className="btn btn--ghost btn--icon" aria-label="Chat settings" title="Settings">
                <IconSettings />
              </Link>
            )}
          </div>
        </header>
        <ConnectionBanner state={rc.connectionState} />
        {(actionError || dm.error) && (
          <div className="banner banner--error" role="alert" data-testid="action-error">
            {actionError ?? `Could not open the conversation: ${dm.error}`}{' '}
            <button type="button" className="link-btn" onClick={() => setActionError(null)}>
              Dismiss
            </button>
          </div>
        )}
        {rc.status === 'removed' && (
          <div className="banner banner--error" role="alert" data-testid="removed-banner">
            You were removed from this chat{rc.removedBy ? ` by ${fullName(rc.removedBy)}` : ''}; ask{' '}
            {rc.removedBy ? displayName(rc.removedBy) : 'someone in it'} for an invitation to come back.
          </div>
        )}
        {blocked ? (
          rc.status === 'visitor' || removal ? (
            <div className="empty-state" data-testid="room-visitor">
              <h2>{removal ? 'You were removed from this chat' : "You're not in this chat yet"}</h2>
              {removal ? (
                <RemovedNotice by={removal.by} />
              ) : (
                rc.chat && <JoinPublicChat slug={slug} chat={rc.chat} onJoined={onJoined} />
              )}
              <Link to="/chat" className="btn">
                Back to your chats
              </Link>
            </div>
          ) : (
            <div className="empty-state" role="alert" data-testid="room-error">
              <h2>{rc.error?.code === 'forbidden' ? "You're not in this chat" : rc.error?.code === 'not_found' ? 'No such chat' : 'Could not open this chat'}</h2>
              <p>{errorText(rc.error)}</p>
              <Link to="/chat" className="btn">
                Back to your chats
              </Link>
            </div>
          )
        ) : (
          <>
            <MessageList
              messages={rc.messages}
              selfId={user?.id}
              hasMore={rc.hasMore}
              historyLoaded={rc.historyLoaded}
              loadingOlder={rc.loadingOlder}
              loadOlder={rc.loadOlder}
              anchorSeq={around}
              hasNewer={rc.hasNewer}
              loadNewer={rc.loadNewer}
              onJumpLatest={latest}
              onRetry={rc.retry}
              onDiscard={rc.discard}
              nameOf={nameOf}
              self={user}
              myRole={rc.chat?.role ?? null}
              usernames={usernames}
              actions={rc.status === 'ready' ? actions : undefined}
              divider={around ? null : divider}
              findFirstUnread={around ? undefined : findFirstUnread}
            />
            <TypingIndicator users={rc.typingUsers} others={rc.typingOthers} nameOf={nameOf} />
            {rc.status === 'removed' ? (
              <div className="room-gone">
                <Link to="/chat" className="btn">
                  Back to your chats
                </Link>
              </div>
            ) : (
              <Composer
                draftKey={user ? `parley.draft.${user.id}.${slug}` : undefined}
                onSend={(body, replyTo) => {
                  // A send shows at the end of the chat: leave the search context for it first.
                  if (rc.hasNewer) latest();
                  rc.send(body, replyTo);
                }}
                onTyping={rc.setTyping}
                disabled={rc.status !== 'ready'}
                replyTo={replyTarget}
                onCancelReply={() => setReplyTo(null)}
                editing={editTarget}
                onSaveEdit={edit}
                onCancelEdit={() => setEditing(null)}
                onEditLast={editLast}
                people={rc.participants}
                selfId={user?.id}
              />
            )}
          </>
        )}
      </section>
      <aside className="room__aside" id="room-people" aria-label="People">
        <UserPresence
          entries={entries}
          activeUserIds={activeIds}
          selfId={user?.id}
          nameOf={nameOf}
          onMessage={isDm ? undefined : (u) => dm.open(u.username)}
          messageBusy={dm.busy}
          onMore={rc.participantsMore ? rc.loadMoreParticipants : undefined}
          total={rc.chat?.participantCount}
        />
      </aside>
      {deleting && deleting.seq != null && (
        <ConfirmDialog
          title="Delete this message?"
          confirmLabel="Delete"
          onCancel={() => setDeleting(null)}
          onConfirm={() => {
            const seq = deleting.seq!;
            setDeleting(null);
            if (editing?.seq === seq) setEditing(null);
            if (replyTo?.seq === seq) setReplyTo(null);
            setActionError(null);
            remove(seq).catch((err) => setActionError(`Could not delete: ${errorText(err)}`));
          }}
        >
          <p style={{ margin: 0 }}>
            It is deleted for everyone in this chat, and cannot be brought back.
          </p>
          {deleting.body && <blockquote className="confirm-quote">{deleting.body.slice(0, 200)}</blockquote>}
        </ConfirmDialog>
      )}
      {inviting && rc.chat && <InviteUserModal chat={slug} chatTitle={rc.chat.title} onClose={() => setInviting(false)} />}
    </div>
  );
}
