// /chat/:slug: the conversation. Header (title, who is here, invite, people, settings), the
// reconnecting banner, the message list, who is typing, the composer, and beside it (or in a
// drawer on narrower screens) who is in the chat and their presence.
import { useEffect, useMemo, useState } from 'react';
import { useRealtimeChat } from '../hooks/use-realtime-chat';
import { useRealtime, useSession } from '../lib/session';
import { canInvite } from '../../../clients/js/src/rules.js';
import { Link, navigate } from '../lib/router';
import { count, displayName, fullName, makeNamer, errorText } from '../lib/format';
import { recordRemoval, removalOf, type Removal } from '../lib/removals';
import { MessageList } from '../components/chat/message-list';
import { Composer } from '../components/chat/composer';
import { TypingIndicator } from '../components/chat/typing-indicator';
import { UserPresence, type PresenceEntry } from '../components/chat/user-presence';
import { ConnectionBanner } from '../components/chat/connection-banner';
import { InviteUserModal } from '../components/chat/invite-user-modal';
import { IconBack, IconSettings, IconUserPlus, IconUsers } from '../components/ui/icons';
import type { Chat } from '../lib/types';

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

function Room({ slug, around, onJoined }: { slug: string; around?: number; onJoined: () => void }) {
  const { user } = useSession();
  const rc = useRealtimeChat(slug, around);
  const latest = () => navigate(`/chat/${encodeURIComponent(slug)}`);
  const [inviting, setInviting] = useState(false);
  const [peopleOpen, setPeopleOpen] = useState(false);

  const activeIds = useMemo(() => new Set(rc.activeUsers.map((u) => u.id)), [rc.activeUsers]);
  // Everyone this room can name: where two of them show the same display name, both get their
  // username too, so nobody can pass for somebody else.
  const nameOf = useMemo(
    () => makeNamer([...rc.participants, ...rc.messages.map((m) => m.author), ...rc.typingUsers, ...rc.activeUsers]),
    [rc.participants, rc.messages, rc.typingUsers, rc.activeUsers],
  );
  const entries: PresenceEntry[] = rc.participants.map((p) => ({
    user: p,
    role: p.role,
    presence: p.id === user?.id && rc.connectionState === 'online' ? { user: p, state: 'online', lastSeen: null } : rc.presence[p.id],
  }));
  const onlineCount = entries.filter((e) => e.presence && e.presence.state !== 'offline').length;
  const hereOthers = rc.activeUsers.filter((u) => u.id !== user?.id);

  const blocked = rc.status === 'error' || rc.status === 'visitor';
  // Removed earlier (seen live, kept in localStorage): said at once, instead of a Join that fails
  // or a "No such chat" for a private chat.
  const removal = rc.status === 'removed' ? null : removalOf(user?.id, slug);
  useEffect(() => {
    document.title = `${rc.chat?.title || slug} · Parley`;
  }, [rc.chat?.title, slug]);
  const title = rc.chat?.title || (blocked ? 'Chat unavailable' : slug);

  return (
    <div className={`room${peopleOpen ? ' room--people-open' : ''}`}>
      <section className="room__main" aria-label={`Chat: ${title}`}>
        <header className="room-header">
          <Link to="/chat" className="btn btn--ghost btn--icon room-header__back" aria-label="Back to chats">
            <IconBack />
          </Link>
          <div className="room-header__title">
            <h1 data-testid="room-title">{title}</h1>
            <div className="room-header__sub">
              {rc.chat ? (
                <>
                  <span data-testid="room-participants">
                    {count(rc.chat.participantCount, 'participant', 'participants')}
                  </span>
                  {' · '}
                  {onlineCount} online
                  {hereOthers.length > 0 && (
                    <span data-testid="room-here">
                      {' · '}
                      {hereOthers.length === 1 ? `${nameOf(hereOthers[0])} is here` : `${hereOthers.length} others here`}
                    </span>
                  )}
                </>
              ) : (
                ' '
              )}
            </div>
          </div>
          <div className="room-header__actions">
            {canInvite(rc.chat) && rc.status === 'ready' && (
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
                onSend={(body) => {
                  // A send shows at the end of the chat: leave the search context for it first.
                  if (rc.hasNewer) latest();
                  rc.send(body);
                }}
                onTyping={rc.setTyping}
                disabled={rc.status !== 'ready'}
              />
            )}
          </>
        )}
      </section>
      <aside className="room__aside" id="room-people" aria-label="People">
        <UserPresence entries={entries} activeUserIds={activeIds} selfId={user?.id} nameOf={nameOf} />
      </aside>
      {inviting && rc.chat && <InviteUserModal chat={slug} chatTitle={rc.chat.title} onClose={() => setInviting(false)} />}
    </div>
  );
}
