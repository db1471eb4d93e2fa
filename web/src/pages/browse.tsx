// /browse: the public directory (chat.browse). A search box (matched by the server against the
// start of each word of a title, asked 250 ms after typing stops), each chat's size and last
// activity, and Join (then open it) or Open when already in. "Show more" pages on with `before`.
import { useEffect, useRef, useState } from 'react';
import { useRealtime } from '../lib/session';
import { Link, navigate } from '../lib/router';
import { browseChats, type BrowseChat } from '../lib/live';
import { count, errorText, relativeTime } from '../lib/format';
import { useNow } from '../hooks/use-now';
import { IconBack, IconUsers } from '../components/ui/icons';
import { userHue } from '../lib/format';

const PAGE = 30;

export function BrowsePage() {
  const rt = useRealtime();
  const now = useNow();
  const [q, setQ] = useState('');
  const [chats, setChats] = useState<BrowseChat[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const asked = useRef(0);

  // A next page starts after the last chat shown: (lastActivity, slug) is the server's keyset.
  function load(query: string, before?: number, chat?: string) {
    const n = ++asked.current;
    setLoading(true);
    setError(null);
    browseChats(rt, { q: query.trim() || undefined, before, chat, limit: PAGE }).then(
      (r) => {
        if (n !== asked.current) return; // an older answer after a newer question
        setChats((prev) => (before === undefined ? r.chats : [...prev, ...r.chats.filter((c) => !prev.some((p) => p.slug === c.slug))]));
        setHasMore(r.hasMore);
        setLoading(false);
      },
      (err) => {
        if (n !== asked.current) return;
        setError(errorText(err));
        setLoading(false);
      },
    );
  }

  useEffect(() => {
    const t = setTimeout(() => load(q), q ? 250 : 0);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [q, rt]);

  return (
    <div className="room__main page" style={{ height: '100%' }}>
      <header className="room-header">
        <Link to="/chat" className="btn btn--ghost btn--icon room-header__back" aria-label="Back to chats">
          <IconBack />
        </Link>
        <div className="room-header__title">
          <h1>Browse chats</h1>
          <div className="room-header__sub">Public chats anyone can join</div>
        </div>
      </header>
      <div className="settings">
        <div className="settings__inner">
          <form
            className="browse-search"
            role="search"
            onSubmit={(e) => {
              e.preventDefault();
              load(q);
            }}
          >
            <label htmlFor="browse-q" className="visually-hidden">
              Search public chats
            </label>
            <input
              id="browse-q"
              className="input"
              type="search"
              placeholder="Search public chats by title"
              autoComplete="off"
              value={q}
              onChange={(e) => setQ(e.target.value)}
            />
          </form>
          {error && (
            <div className="alert alert--error" role="alert">
              Could not load public chats: {error}{' '}
              <button type="button" className="link-btn" onClick={() => load(q)}>
                Try again
              </button>
            </div>
          )}
          <p className="visually-hidden" role="status">
            {loading ? 'Loading' : `${count(chats.length, 'chat', 'chats')} found`}
          </p>
          {!loading && !error && chats.length === 0 && (
            <p className="muted" data-testid="browse-empty">
              {q.trim() ? `No public chat matches “${q.trim()}”.` : 'There are no public chats yet.'}
            </p>
          )}
          <ul className="browse-list" data-testid="browse-list">
            {chats.map((c) => (
              <BrowseRow key={c.slug} chat={c} now={now} onJoined={(slug) => setChats((l) => l.map((x) => (x.slug === slug ? { ...x, joined: true, participantCount: x.participantCount + 1 } : x)))} />
            ))}
          </ul>
          {hasMore && (
            <button type="button" className="btn" disabled={loading} onClick={() => load(q, chats[chats.length - 1]?.lastActivity, chats[chats.length - 1]?.slug)}>
              {loading ? 'Loading…' : 'Show more'}
            </button>
          )}
        </div>
      </div>
    </div>
  );
}

function BrowseRow({ chat, now, onJoined }: { chat: BrowseChat; now: number; onJoined: (slug: string) => void }) {
  const rt = useRealtime();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const hue = userHue(chat.slug);
  const href = `/chat/${encodeURIComponent(chat.slug)}`;
  return (
    <li className="browse-row" data-slug={chat.slug} data-testid="browse-row">
      <span className="chat-row__icon" style={{ background: `hsl(${hue} 70% 93%)`, color: `hsl(${hue} 45% 35%)` }} aria-hidden="true">
        {chat.title.trim().charAt(0).toUpperCase() || '#'}
      </span>
      <div className="browse-row__text">
        <strong className="browse-row__title">{chat.title}</strong>
        <span className="muted">
          <span className="participants-chip" aria-hidden="true">
            <IconUsers />
          </span>{' '}
          {count(chat.participantCount, 'participant', 'participants')} · active {relativeTime(chat.lastActivity, now)}
        </span>
        {error && (
          <span className="inline-error" role="alert">
            {error}
          </span>
        )}
      </div>
      {chat.joined ? (
        <Link to={href} className="btn btn--small" aria-label={`Open ${chat.title}`}>
          Open
        </Link>
      ) : (
        <button
          type="button"
          className="btn btn--primary btn--small"
          disabled={busy}
          aria-label={`Join ${chat.title}`}
          onClick={async () => {
            setBusy(true);
            setError(null);
            try {
              await rt.request('chat.join', { chat: chat.slug });
              onJoined(chat.slug);
              navigate(href);
            } catch (err) {
              setError((err as { code?: string }).code === 'forbidden' ? 'You were removed from this chat; ask someone in it for an invitation.' : errorText(err));
              setBusy(false);
            }
          }}
        >
          {busy ? 'Joining…' : 'Join'}
        </button>
      )}
    </li>
  );
}
