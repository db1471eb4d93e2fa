// The quick switcher (Ctrl+K, Cmd+K on a Mac): type a few letters of a chat or a person, pick with
// the arrow keys, Enter opens, Escape closes. An ARIA combobox (the input) controlling a listbox;
// the active option is announced through aria-activedescendant, so focus stays in the input, and
// the dialog keeps focus inside it (components/ui/modal.tsx). Chats come from chat.list, fuzzy
// filtered here; people from users.search (word starts, on the server), ranked by the same
// fuzzy score. Opening a person opens the direct chat with them (dm.open, issue 17).
import { useEffect, useMemo, useRef, useState } from 'react';
import { Modal } from '../ui/modal';
import { navigate } from '../../lib/router';
import { useRealtime } from '../../lib/session';
import { useChatList } from '../../hooks/use-chat-list';
import { bestScore } from '../../lib/fuzzy';
import { displayName, errorText } from '../../lib/format';
import type { SearchUser } from '../../lib/types';

const MAX_CHATS = 8;
const MAX_PEOPLE = 6;
const PEOPLE_DEBOUNCE_MS = 200;

type Option =
  | { kind: 'chat'; id: string; slug: string; label: string; detail: string }
  | { kind: 'person'; id: string; username: string; label: string; detail: string };

export function QuickSwitcher({ onClose }: { onClose: () => void }) {
  const rt = useRealtime();
  const { chats } = useChatList();
  const [q, setQ] = useState('');
  const [people, setPeople] = useState<SearchUser[]>([]);
  const [active, setActive] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const listRef = useRef<HTMLUListElement>(null);

  useEffect(() => {
    const query = q.trim();
    if (!query) {
      setPeople([]);
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      rt.request('users.search', { q: query.slice(0, 64) }).then(
        (r) => live && setPeople(r.users),
        () => live && setPeople([]),
      );
    }, PEOPLE_DEBOUNCE_MS);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [q, rt]);

  const options = useMemo<Option[]>(() => {
    const rank = <T,>(items: T[], texts: (x: T) => string[], max: number) =>
      items
        .map((x, i) => ({ x, i, s: bestScore(q, texts(x)) }))
        .filter((r) => r.s !== null)
        .sort((a, b) => b.s! - a.s! || a.i - b.i)
        .slice(0, max)
        .map((r) => r.x);
    const cs = rank(chats, (c) => [c.title, c.slug], MAX_CHATS).map<Option>((c) => ({
      kind: 'chat',
      id: `qs-chat-${c.slug}`,
      slug: c.slug,
      label: c.title,
      detail: `/${c.slug}`,
    }));
    const ps = rank(people, (u) => [u.displayName || '', u.username], MAX_PEOPLE).map<Option>((u) => ({
      kind: 'person',
      id: `qs-user-${u.username}`,
      username: u.username,
      label: displayName(u),
      detail: `@${u.username}`,
    }));
    return [...cs, ...ps];
  }, [chats, people, q]);

  useEffect(() => setActive(0), [q]);
  const current = options[Math.min(active, options.length - 1)];
  useEffect(() => {
    if (current) document.getElementById(current.id)?.scrollIntoView({ block: 'nearest' });
  }, [current]);

  async function choose(o: Option | undefined) {
    if (!o) return;
    if (o.kind === 'chat') {
      onClose();
      navigate(`/chat/${encodeURIComponent(o.slug)}`);
      return;
    }
    try {
      // dm.open (issue 17) answers with the direct chat, made on first use.
      const open = rt.request as unknown as (op: string, args: object) => Promise<{ chat: { slug: string } }>;
      const r = await open('dm.open', { user: o.username });
      onClose();
      navigate(`/chat/${encodeURIComponent(r.chat.slug)}`);
    } catch (err) {
      setError(`Could not open a conversation with ${o.label}: ${errorText(err)}`);
    }
  }

  function onKeyDown(e: React.KeyboardEvent<HTMLInputElement>) {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      if (!options.length) return;
      const step = e.key === 'ArrowDown' ? 1 : -1;
      setActive((a) => (Math.min(a, options.length - 1) + step + options.length) % options.length);
    } else if (e.key === 'Home' && e.ctrlKey) {
      setActive(0);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      choose(current);
    }
  }

  const firstPerson = options.findIndex((o) => o.kind === 'person');
  return (
    <Modal title="Jump to a chat or person" onClose={onClose} className="modal--switcher">
      <label className="visually-hidden" htmlFor="qs-input" id="qs-label">
        Chat or person
      </label>
      <input
        id="qs-input"
        className="input"
        role="combobox"
        aria-expanded={options.length > 0}
        aria-controls="qs-list"
        aria-autocomplete="list"
        aria-activedescendant={current?.id}
        autoComplete="off"
        placeholder="Type a chat or a name"
        value={q}
        onChange={(e) => setQ(e.target.value)}
        onKeyDown={onKeyDown}
        data-testid="switcher-input"
      />
      {error && (
        <p className="inline-error" role="alert">
          {error}
        </p>
      )}
      <ul className="switcher-list" role="listbox" id="qs-list" aria-labelledby="qs-label" ref={listRef} data-testid="switcher-list">
        {options.map((o, i) => (
          <li
            key={o.id}
            id={o.id}
            role="option"
            aria-selected={o === current}
            className={`switcher-option${o === current ? ' switcher-option--active' : ''}${i === firstPerson ? ' switcher-option--first-person' : ''}`}
            onMouseDown={(e) => e.preventDefault()}
            onClick={() => choose(o)}
            onMouseMove={() => setActive(i)}
            data-testid="switcher-option"
          >
            <span className="switcher-option__kind">{o.kind === 'chat' ? 'Chat' : 'Person'}</span>
            <span className="switcher-option__label">{o.label}</span>
            <span className="switcher-option__detail muted">{o.detail}</span>
          </li>
        ))}
        {options.length === 0 && (
          <li className="switcher-empty muted" role="presentation">
            {q.trim() ? 'Nothing matches.' : 'No chats yet.'}
          </li>
        )}
      </ul>
    </Modal>
  );
}
