// "Search messages": msg.search over the user's chats in a dialog. Results name the chat, the
// author and the time, and show the snippet with its matches in <mark>, built from text nodes
// only (snippetParts splits the server's U+0002/U+0003 marks), so a message can never inject
// markup. Choosing a result opens its chat at that message (/chat/:slug?msg=seq), with the
// history around it. Typing searches after a short pause; "More results" pages on.
import { useEffect, useRef, useState } from 'react';
import { Modal } from '../ui/modal';
import { navigate } from '../../lib/router';
import { useRealtime } from '../../lib/session';
import { count, displayName, errorText, listTime } from '../../lib/format';
import { snippetParts } from '../../../../clients/js/src/search.js';
import type { MsgSearchHit } from '../../../../clients/js/src/types.js';

const DEBOUNCE_MS = 300;
const PAGE = 20;

export function SearchPanel({ onClose }: { onClose: () => void }) {
  const rt = useRealtime();
  const [q, setQ] = useState('');
  const [results, setResults] = useState<MsgSearchHit[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [status, setStatus] = useState<'idle' | 'loading' | 'done' | 'error'>('idle');
  const [error, setError] = useState<string | null>(null);
  const seq = useRef(0); // the newest search asked for: older answers are dropped

  async function run(query: string, before = 0) {
    const mine = ++seq.current;
    if (!query.trim()) {
      setResults([]);
      setHasMore(false);
      setStatus('idle');
      return;
    }
    setStatus('loading');
    setError(null);
    try {
      const r = await rt.request('msg.search', { q: query, limit: PAGE, ...(before ? { before } : {}) });
      if (mine !== seq.current) return;
      setResults((prev) => (before ? [...prev, ...r.results] : r.results));
      setHasMore(r.hasMore);
      setStatus('done');
    } catch (err) {
      if (mine !== seq.current) return;
      setError(errorText(err));
      setStatus('error');
    }
  }

  useEffect(() => {
    const t = setTimeout(() => run(q), DEBOUNCE_MS);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [q]);

  function open(r: MsgSearchHit) {
    onClose();
    navigate(`/chat/${encodeURIComponent(r.chat.slug)}?msg=${r.msg.seq}`);
  }

  return (
    <Modal title="Search messages" onClose={onClose} className="modal--search">
      <form
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          run(q);
        }}
      >
        <label className="visually-hidden" htmlFor="search-q">
          Words to find in your chats
        </label>
        <input
          id="search-q"
          className="input"
          type="search"
          placeholder="Words, &quot;a phrase&quot;, -exclude"
          value={q}
          maxLength={256}
          autoComplete="off"
          onChange={(e) => setQ(e.target.value)}
          data-testid="search-input"
        />
      </form>
      <p className="muted search-status" aria-live="polite" data-testid="search-status">
        {status === 'loading'
          ? 'Searching…'
          : status === 'error'
            ? error
            : status === 'done'
              ? results.length
                ? `${count(results.length, 'result', 'results')}${hasMore ? ' so far' : ''}`
                : 'No messages found.'
              : 'Search the messages of your chats.'}
      </p>
      <ul className="search-results" data-testid="search-results">
        {results.map((r) => (
          <li key={`${r.chat.slug}#${r.msg.seq}`}>
            <button type="button" className="search-result" onClick={() => open(r)} data-testid="search-result">
              <span className="search-result__head">
                <strong className="search-result__chat">{r.chat.title}</strong>
                <span className="muted">
                  {displayName(r.msg.author)} · <time dateTime={new Date(r.msg.createdAt).toISOString()}>{listTime(r.msg.createdAt)}</time>
                </span>
              </span>
              <span className="search-result__snippet" data-testid="search-snippet">
                {snippetParts(r.snippet).map((p, i) => (p.match ? <mark key={i}>{p.text}</mark> : <span key={i}>{p.text}</span>))}
              </span>
            </button>
          </li>
        ))}
      </ul>
      {hasMore && status !== 'loading' && (
        <button type="button" className="btn btn--block" onClick={() => run(q, results.length)}>
          More results
        </button>
      )}
    </Modal>
  );
}
