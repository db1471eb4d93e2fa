// Invite people to a chat: a search box (debounced users.search, scoped to the chat so results
// say who is already in it or invited), an Invite button per person, and the status of the
// invitations sent from here, which updates live (accepted, declined, revoked, expired).
import { useEffect, useRef, useState } from 'react';
import { Modal } from '../ui/modal';
import { Avatar } from '../ui/avatar';
import { useRealtime } from '../../lib/session';
import { useNow } from '../../hooks/use-now';
import { count, displayName, errorText, expiresText } from '../../lib/format';
import { useOpenDm } from '../../hooks/use-open-dm';
import type { Invitation, SearchUser } from '../../lib/types';

const DEBOUNCE_MS = 250;

export function InviteUserModal({ chat, chatTitle, onClose }: { chat: string; chatTitle: string; onClose: () => void }) {
  const rt = useRealtime();
  const now = useNow();
  const [q, setQ] = useState('');
  const [results, setResults] = useState<SearchUser[]>([]);
  const [searching, setSearching] = useState(false);
  const [searchError, setSearchError] = useState<string | null>(null);
  const [sent, setSent] = useState<Record<string, Invitation>>({}); // by username
  const [rowError, setRowError] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<string | null>(null);
  const seq = useRef(0);
  const dm = useOpenDm();
  const lastDm = useRef<string | null>(null);

  // Debounced search; a stale answer (an older query) is dropped.
  useEffect(() => {
    const query = q.trim();
    if (!query) {
      setResults([]);
      setSearching(false);
      setSearchError(null);
      return;
    }
    const mine = ++seq.current;
    setSearching(true);
    const t = setTimeout(() => {
      rt.request('users.search', { q: query.slice(0, 64), chat }).then(
        (r) => {
          if (mine !== seq.current) return;
          setResults(r.users || []);
          setSearching(false);
          setSearchError(null);
        },
        (err) => {
          if (mine !== seq.current) return;
          setSearching(false);
          setSearchError(errorText(err));
        },
      );
    }, DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [q, rt, chat]);

  // Live status of what was sent from here.
  useEffect(
    () =>
      rt.on('invite', (e) => {
        const inv = e.invitation;
        if (inv.chat !== chat) return;
        setSent((prev) => (prev[inv.to.username] ? { ...prev, [inv.to.username]: inv } : prev));
      }),
    [rt, chat],
  );

  async function invite(u: SearchUser) {
    setBusy(u.username);
    setRowError((e) => ({ ...e, [u.username]: '' }));
    try {
      const r = await rt.request('invite.create', { chat, user: u.username });
      setSent((prev) => ({ ...prev, [u.username]: r.invitation }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      setRowError((e) => ({
        ...e,
        [u.username]: code === 'conflict' ? `${displayName(u)} is already in this chat.` : errorText(err),
      }));
    } finally {
      setBusy(null);
    }
  }

  const sentList = Object.values(sent);

  return (
    <Modal title={`Invite to ${chatTitle}`} onClose={onClose} initialFocus="#invite-search">
      <div className="field" style={{ marginBottom: 4 }}>
        <label htmlFor="invite-search">Search people</label>
        <input
          id="invite-search"
          className="input"
          type="search"
          autoComplete="off"
          spellCheck={false}
          placeholder="Name or username"
          value={q}
          onChange={(e) => setQ(e.target.value)}
          aria-describedby="invite-search-status"
        />
      </div>
      <div id="invite-search-status" className="search-hint" aria-live="polite">
        {!q.trim()
          ? 'Type a name to find people.'
          : searching
            ? 'Searching…'
            : searchError
              ? searchError
              : results.length === 0
                ? 'Nobody found.'
                : `${count(results.length, 'person', 'people')} found`}
      </div>
      <ul className="search-results" aria-label="Search results">
        {results.map((u) => {
          const inv = sent[u.username];
          const status = u.participant ? 'member' : inv ? inv.status : u.invited ? 'pending' : null;
          return (
            <li key={u.id} className="search-result" data-user={u.username}>
              <Avatar user={u} size={34} />
              <div className="search-result__text">
                <strong>{displayName(u)}</strong>
                <span>@{u.username}</span>
                {rowError[u.username] && (
                  <span className="inline-error" role="alert">
                    {rowError[u.username]}
                  </span>
                )}
                {dm.error && dm.busy === null && lastDm.current === u.username && (
                  <span className="inline-error" role="alert">
                    Could not open the conversation: {dm.error}
                  </span>
                )}
              </div>
              <button
                type="button"
                className="btn btn--small"
                onClick={() => {
                  lastDm.current = u.username;
                  // The modal goes away with the room it was opened from.
                  dm.open(u.username).then((ok) => ok && onClose());
                }}
                disabled={dm.busy === u.username}
                aria-label={`Message ${displayName(u)}`}
              >
                Message
              </button>
              {status === 'member' ? (
                <span className="status-chip status-chip--member">In chat</span>
              ) : status && status !== 'declined' && status !== 'revoked' && status !== 'expired' ? (
                <span className={`status-chip status-chip--${status}`} data-testid="invite-status">
                  {status === 'pending' ? 'Invited' : status === 'accepted' ? 'Joined' : status}
                </span>
              ) : (
                <button
                  type="button"
                  className="btn btn--primary btn--small"
                  onClick={() => invite(u)}
                  disabled={busy === u.username}
                  aria-label={`Invite ${displayName(u)}`}
                >
                  {busy === u.username ? 'Inviting…' : status ? 'Invite again' : 'Invite'}
                </button>
              )}
            </li>
          );
        })}
      </ul>
      {sentList.length > 0 && (
        <section className="sent-list" aria-label="Invitations sent">
          <h3 className="section-title" style={{ margin: '8px 0 4px' }}>
            Sent from here
          </h3>
          <ul className="search-results">
            {sentList.map((inv) => (
              <li key={inv.id} className="search-result" data-testid="sent-invitation" data-user={inv.to.username}>
                <Avatar user={inv.to} size={28} />
                <div className="search-result__text">
                  <strong>{displayName(inv.to)}</strong>
                  <span>{inv.status === 'pending' ? expiresText(inv.expiresAt, now) : `@${inv.to.username}`}</span>
                </div>
                <span className={`status-chip status-chip--${inv.status}`}>{inv.status}</span>
              </li>
            ))}
          </ul>
        </section>
      )}
    </Modal>
  );
}
