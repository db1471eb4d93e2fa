// Who is in a chat and whether they are here: a green dot for online, amber for away, grey for
// offline with "last seen 5 min ago". People with the chat open right now are marked "here".
// The list re-renders on the page's shared 30 s clock (useNow) so relative times stay true.
import { useNow } from '../../hooks/use-now';
import { Avatar } from '../ui/avatar';
import { BotBadge } from '../ui/bot-badge';
import { IconChat } from '../ui/icons';
import { displayName, fullName, lastSeenText } from '../../lib/format';
import type { Presence, PresenceState, Role, User } from '../../lib/types';

export interface PresenceEntry {
  user: User;
  role?: Role;
  presence?: Presence;
}

const ORDER: Record<PresenceState, number> = { online: 0, away: 1, offline: 2 };

export function presenceLabel(p: Presence | undefined, now: number): string {
  if (!p) return 'offline';
  if (p.state === 'online') return 'online';
  if (p.state === 'away') return 'away';
  return lastSeenText(p.lastSeen, now);
}

// One dot with an accessible label, for use next to a name anywhere.
export function PresenceDot({ state, label }: { state: PresenceState; label?: string }) {
  return (
    <span
      className={`presence-dot presence-dot--${state}`}
      role="img"
      aria-label={label ?? state}
      data-presence={state}
    />
  );
}

export function UserPresence({
  entries,
  activeUserIds,
  selfId,
  title = 'People',
  nameOf = displayName,
  onMessage,
  messageBusy = null,
  onMore,
  total,
}: {
  entries: PresenceEntry[];
  activeUserIds?: Set<number>;
  selfId?: number;
  title?: string;
  // The room adds the username where display names collide.
  nameOf?: (u: User) => string;
  /** "Message" next to everyone but yourself: opens the direct messages with them. */
  onMessage?: (u: User) => void;
  /** The username whose conversation is being opened. */
  messageBusy?: string | null;
  /** A big chat: not every participant is loaded yet; this loads the next page. */
  onMore?: () => void;
  /** How many participants there are in all (shown when not all are loaded). */
  total?: number;
}) {
  const now = useNow();
  const sorted = [...entries].sort((a, b) => {
    const sa = ORDER[a.presence?.state ?? 'offline'];
    const sb = ORDER[b.presence?.state ?? 'offline'];
    if (sa !== sb) return sa - sb;
    return displayName(a.user).localeCompare(displayName(b.user));
  });
  const online = entries.filter((e) => e.presence?.state && e.presence.state !== 'offline').length;
  return (
    <section className="presence-list" aria-label={title}>
      <h2 className="presence-list__title">
        {title} <span className="muted">· {online} online</span>
      </h2>
      <ul>
        {sorted.map(({ user, role, presence }) => {
          const state = presence?.state ?? 'offline';
          const label = presenceLabel(presence, now);
          const here = activeUserIds?.has(user.id);
          return (
            <li key={user.id} className="presence-item" data-user={user.username} data-presence={state}>
              <Avatar user={user} size={32} presence={state} />
              <div className="presence-item__text">
                <span className="presence-item__name" title={fullName(user)}>
                  {nameOf(user)}
                  <BotBadge user={user} />
                  {user.id === selfId && <span className="muted"> (you)</span>}
                  {role && role !== 'member' && <span className={`role-badge role-badge--${role}`}>{role}</span>}
                </span>
                <span className="presence-item__status">
                  <span className="visually-hidden">{nameOf(user)} is </span>
                  <span className="presence-item__state">{label}</span>
                  {here && state !== 'offline' && <span className="here-badge"> · in this chat</span>}
                </span>
              </div>
              {onMessage && user.id !== selfId && (
                <button
                  type="button"
                  className="btn btn--ghost btn--icon presence-item__message"
                  aria-label={`Message ${nameOf(user)}`}
                  title={`Message ${nameOf(user)}`}
                  disabled={messageBusy === user.username}
                  onClick={() => onMessage(user)}
                >
                  <IconChat />
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {onMore && (
        <button type="button" className="btn btn--ghost presence-list__more" onClick={onMore}>
          Show more people{total ? ` (${entries.length} of ${total})` : ''}
        </button>
      )}
    </section>
  );
}
