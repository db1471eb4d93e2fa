// The sidebar (and, on phones, the whole /chat page): pending invitations with accept and
// decline, the user's chats with participant count, unread and mention counts and last message,
// "New chat", "Browse chats", the offer to turn notifications on, and the user's own card, which
// opens their profile. The list updates live from events (hooks/use-chat-list.ts).
import { useEffect, useMemo, useRef, useState } from 'react';
import { useNow } from '../hooks/use-now';
import { Link } from '../lib/router';
import { useFreshUser } from '../lib/users';
import { NotificationPrompt } from '../components/chat/notification-prompt';
import { useSession } from '../lib/session';
import { useChatList } from '../hooks/use-chat-list';
import { count, displayName, listTime, userHue } from '../lib/format';
import { Avatar } from '../components/ui/avatar';
import { BotBadge } from '../components/ui/bot-badge';
import { IconChat, IconCompass, IconGlobe, IconLogout, IconPlus, IconSearch, IconUsers } from '../components/ui/icons';
import { CreateChatModal } from '../components/chat/create-chat-modal';
import { InvitationCard } from '../components/chat/invitation-card';
import type { Chat, FullMsg } from '../lib/types';
import type { ConnState } from '../lib/realtime-types';

export function ChatSidebar({
  activeSlug,
  connection,
  path,
  onSearch,
}: {
  activeSlug?: string;
  connection: ConnState;
  path?: string;
  onSearch?: () => void;
}) {
  const { user, logout } = useSession();
  const fresh = useFreshUser();
  const { chats, invitations, loaded, error, reload } = useChatList();
  const [creating, setCreating] = useState(false);
  const lookedFor = useRef(new Set<string>());
  const now = useNow();
  // Two chats may have the same title: those rows also show their slug, which is unique.
  const sharedTitles = useMemo(() => {
    const seen = new Set<string>();
    const shared = new Set<string>();
    for (const c of chats) {
      const k = titleKey(c.title);
      if (seen.has(k)) shared.add(k);
      seen.add(k);
    }
    return shared;
  }, [chats]);

  // A chat just created or joined may not be in the list yet (creating one sends no event to
  // its creator): reload once when the open chat is missing.
  useEffect(() => {
    if (!loaded || !activeSlug || chats.some((c) => c.slug === activeSlug) || lookedFor.current.has(activeSlug)) return;
    lookedFor.current.add(activeSlug);
    reload();
  }, [loaded, activeSlug, chats, reload]);

  return (
    <nav className="sidebar" aria-label="Chats">
      <div className="sidebar__head">
        <Link to="/chat" className="brand" aria-label="Parley home">
          <span className="brand__mark">
            <IconChat />
          </span>
          Parley
        </Link>
        <div className="sidebar__actions">
          {onSearch && (
            <button
              type="button"
              className="btn btn--ghost btn--icon"
              onClick={onSearch}
              aria-label="Search messages"
              title="Search messages (Ctrl+K jumps to a chat)"
              data-testid="open-search"
            >
              <IconSearch />
            </button>
          )}
          <button type="button" className="btn btn--primary btn--small" onClick={() => setCreating(true)}>
            <IconPlus /> New chat
          </button>
        </div>
      </div>
      <div className="sidebar__body">
        <NotificationPrompt />
        {invitations.length > 0 && (
          <section aria-labelledby="invites-title">
            <h2 className="section-title" id="invites-title">
              Invitations <span className="count-pill">{invitations.length}</span>
            </h2>
            {invitations.map((inv) => (
              <InvitationCard key={inv.id} invitation={inv} onDone={reload} />
            ))}
          </section>
        )}
        <section aria-labelledby="chats-title">
          <div className="section-head">
            <h2 className="section-title" id="chats-title">
              Chats
            </h2>
            <Link to="/browse" className="btn btn--ghost btn--small section-head__link" aria-current={path === '/browse' ? 'page' : undefined} data-testid="browse-link">
              <IconCompass /> Browse chats
            </Link>
          </div>
          {error && (
            <div className="alert alert--error" role="alert">
              Could not load your chats: {error.message}
            </div>
          )}
          {loaded && chats.length === 0 && (
            <p className="muted" style={{ padding: '4px 10px', fontSize: 14 }}>
              No chats yet. Create one, or accept an invitation.
            </p>
          )}
          {!loaded && !error && <p className="muted" style={{ padding: '4px 10px', fontSize: 14 }}>Loading…</p>}
          <ul className="chat-list" data-testid="chat-list">
            {chats.map((c) => (
              <ChatRow
                key={c.slug}
                chat={c}
                active={c.slug === activeSlug}
                selfId={user?.id}
                now={now}
                fresh={fresh}
                disambiguator={sharedTitles.has(titleKey(c.title)) ? `/${c.slug}` : undefined}
              />
            ))}
          </ul>
        </section>
      </div>
      {user && (
        <div className="sidebar__foot">
          <Link to="/profile" className="sidebar__profile" aria-current={path === '/profile' ? 'page' : undefined} aria-label={`Your profile: ${displayName(user)} (@${user.username})`} data-testid="profile-link">
            <Avatar user={user} size={34} presence={connection === 'online' ? 'online' : 'offline'} />
            <span className="sidebar__me">
              <strong data-testid="me-name">{displayName(user)}</strong>
              <span className="muted">@{user.username}</span>
            </span>
          </Link>
          <button type="button" className="btn btn--ghost btn--icon" onClick={logout} aria-label="Log out" title="Log out">
            <IconLogout />
          </button>
        </div>
      )}
      {creating && <CreateChatModal onClose={() => setCreating(false)} />}
    </nav>
  );
}

function titleKey(title: string): string {
  return title.normalize('NFKC').toLowerCase().trim().replace(/\s+/g, ' ');
}

function ChatRow({
  chat,
  active,
  selfId,
  now,
  disambiguator,
  fresh,
}: {
  chat: Chat;
  active: boolean;
  selfId?: number;
  now: number;
  disambiguator?: string;
  fresh: ReturnType<typeof useFreshUser>;
}) {
  const hue = userHue(chat.slug);
  const last = chat.lastMessage as FullMsg | null | undefined;
  const unread = active ? 0 : chat.unread || 0;
  const mentions = active ? 0 : chat.mentions || 0;
  // Direct messages are titled by the other person (the server sends their name as the title);
  // their name and picture as they are now (user.updated).
  const dm = chat.kind === 'dm';
  const peer = dm && chat.peer ? fresh(chat.peer) : null;
  const title = peer ? displayName(peer) : chat.title;
  const lastText = last
    ? `${last.author.id === selfId ? 'You' : displayName(fresh(last.author))}: ${last.deleted ? 'message deleted' : last.streaming && !last.body.trim() ? '…' : last.body.replace(/\s+/g, ' ')}`
    : 'No messages yet';
  return (
    <li>
      <Link
        to={`/chat/${encodeURIComponent(chat.slug)}`}
        className={`chat-row${unread ? ' chat-row--unread' : ''}`}
        aria-current={active ? 'page' : undefined}
        data-slug={chat.slug}
        data-kind={dm ? 'dm' : 'group'}
        aria-label={`${title}${disambiguator ? ` (${disambiguator})` : ''}, ${dm ? 'direct message' : count(chat.participantCount, 'participant', 'participants')}${unread ? `, ${unread} unread` : ''}${mentions ? `, ${count(mentions, 'mention', 'mentions')} of you` : ''}`}
      >
        {peer ? (
          <span className="chat-row__avatar" aria-hidden="true">
            <Avatar user={peer} size={40} />
          </span>
        ) : (
          <span className="chat-row__icon" style={{ background: `hsl(${hue} 70% 93%)`, color: `hsl(${hue} 45% 35%)` }} aria-hidden="true">
            {chat.title.trim().charAt(0).toUpperCase() || '#'}
          </span>
        )}
        <span className="chat-row__body">
          <span className="chat-row__top">
            <span className="chat-row__title" data-testid="chat-title">
              {title}
              <BotBadge user={peer} />
              {disambiguator && (
                <span className="chat-row__slug" data-testid="chat-slug">
                  {' '}
                  {disambiguator}
                </span>
              )}
            </span>
            <span className="chat-row__time">{listTime(last?.createdAt || chat.lastActivity || chat.createdAt, now)}</span>
          </span>
          <span className="chat-row__bottom">
            <span className="chat-row__last" data-testid="last-message">
              {lastText}
            </span>
            <span className="chat-row__meta">
              {chat.isPublic && (
                <span title="Public chat" aria-hidden="true" style={{ display: 'inline-flex' }}>
                  <IconGlobe />
                </span>
              )}
              {!dm && (
                <span className="participants-chip" title={count(chat.participantCount, 'participant', 'participants')} data-testid="participant-count">
                  <IconUsers />
                  {chat.participantCount}
                </span>
              )}
              {mentions > 0 && (
                <span className="mention-badge" data-testid="mentions" title={count(mentions, 'mention', 'mentions')}>
                  @
                </span>
              )}
              {unread > 0 && (
                <span className="unread-badge" data-testid="unread">
                  {unread > 99 ? '99+' : unread}
                </span>
              )}
            </span>
          </span>
        </span>
      </Link>
    </li>
  );
}
