// The message box: Enter sends, Shift+Enter starts a new line, the box grows with its text.
// Typing is reported while there is text (the realtime client refreshes it every 3 s and the
// server forgets it after 6 s), and cleared on send, on emptying the box and on leaving it.
// The text is a per-chat draft (useDraft): it survives switching chats and reloads.
// Issue 17:
// - "Replying to X" above the box while a reply is being written, with a cancel button;
// - editing a message (from its menu, or Up arrow in an empty box for your last one) puts its
//   text in the box with "Editing message"; Enter saves, Escape cancels; the draft is kept aside;
// - typing `@` suggests participants in a listbox under the caret's line: Up/Down move, Enter or
//   Tab pick, Escape closes (the box keeps its textbox role, with aria-activedescendant).
import { useCallback, useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { useDraft } from '../../hooks/use-draft';
import { IconSend, IconX } from '../ui/icons';
import { displayName, errorText, hasVisible } from '../../lib/format';
import { insertMention, mentionCandidates, mentionQuery } from '../../lib/mentions';
import type { User } from '../../lib/types';

const MAX_BYTES = 16384;

export interface ReplyTarget {
  seq: number;
  name: string;
  preview: string;
}

export interface EditTarget {
  seq: number;
  body: string;
}

export function Composer({
  draftKey,
  onSend,
  onTyping,
  disabled,
  placeholder = 'Write a message…',
  replyTo = null,
  onCancelReply,
  editing = null,
  onSaveEdit,
  onCancelEdit,
  onEditLast,
  people = [],
  selfId,
}: {
  /** Where the unsent text is kept (one key per user and chat); see useDraft. */
  draftKey?: string;
  onSend: (body: string, replyTo?: number) => void;
  onTyping: (on: boolean) => void;
  disabled?: boolean;
  placeholder?: string;
  replyTo?: ReplyTarget | null;
  onCancelReply?: () => void;
  editing?: EditTarget | null;
  /** Saves the edit; rejects with the server's error, which is shown under the box. */
  onSaveEdit?: (seq: number, body: string) => Promise<void>;
  onCancelEdit?: () => void;
  /** Up arrow in an empty box: start editing your last message; false when there is none. */
  onEditLast?: () => boolean;
  /** Who can be mentioned. */
  people?: User[];
  selfId?: number;
}) {
  const [draft, setDraft] = useDraft(draftKey);
  // The edited text, with the edit it belongs to: until the box is typed in, an edit shows the
  // message's body from its first render (set by an effect, the box was empty for one render with
  // "Editing message" already shown).
  const [edited, setEdited] = useState<{ of: EditTarget; text: string } | null>(null);
  const editText = editing ? (edited?.of === editing ? edited.text : editing.body) : '';
  const setEditText = useCallback((t: string) => setEdited(editing ? { of: editing, text: t } : null), [editing]);
  const [editError, setEditError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [caret, setCaret] = useState(0);
  const [active, setActive] = useState(0);
  const [dismissed, setDismissed] = useState<number | null>(null); // the @ whose list was closed
  const ref = useRef<HTMLTextAreaElement>(null);
  const listId = useId();
  const text = editing ? editText : draft;
  const setText = editing ? setEditText : setDraft;
  const tooLong = new TextEncoder().encode(text).length > MAX_BYTES;
  // Only white space or invisible characters (U+200B...): the server refuses it, so Send is off,
  // and a box that is not empty says why.
  const blank = !hasVisible(text);

  const mq = mentionQuery(text, caret);
  const candidates = mq && mq.start !== dismissed ? mentionCandidates(people, mq.query, selfId) : [];
  const suggesting = candidates.length > 0;
  const activeIdx = Math.min(active, Math.max(0, candidates.length - 1));

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 180)}px`;
  }, [text]);

  // Starting an edit loads the message's text; a reply or an edit puts the caret in the box.
  useEffect(() => {
    if (!editing) return;
    setEditError(null);
    requestAnimationFrame(() => {
      const el = ref.current;
      if (!el) return;
      el.focus();
      el.setSelectionRange(el.value.length, el.value.length);
    });
  }, [editing]);
  const replySeq = replyTo?.seq;
  useEffect(() => {
    if (replySeq != null) ref.current?.focus();
  }, [replySeq]);

  async function submit(e?: FormEvent) {
    e?.preventDefault();
    if (disabled || tooLong || blank || saving) return;
    if (editing) {
      if (text === editing.body) return onCancelEdit?.();
      setSaving(true);
      setEditError(null);
      try {
        await onSaveEdit?.(editing.seq, text);
        onCancelEdit?.();
      } catch (err) {
        setEditError(errorText(err));
      } finally {
        setSaving(false);
      }
      ref.current?.focus();
      return;
    }
    onSend(text, replyTo?.seq);
    onTyping(false);
    setText('');
    onCancelReply?.();
    ref.current?.focus();
  }

  function pick(u: User) {
    if (!mq) return;
    const next = insertMention(text, mq.start, caret, u.username);
    setText(next.text);
    setCaret(next.caret);
    setActive(0);
    requestAnimationFrame(() => ref.current?.setSelectionRange(next.caret, next.caret));
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.nativeEvent.isComposing) return;
    if (suggesting) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const n = candidates.length;
        setActive((activeIdx + (e.key === 'ArrowDown' ? 1 : n - 1)) % n);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        pick(candidates[activeIdx]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        setDismissed(mq!.start);
        return;
      }
    }
    if (e.key === 'Escape' && (editing || replyTo)) {
      e.preventDefault();
      if (editing) onCancelEdit?.();
      else onCancelReply?.();
      return;
    }
    if (e.key === 'ArrowUp' && text === '' && !editing && onEditLast?.()) {
      e.preventDefault();
      return;
    }
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      submit();
    }
  }

  const syncCaret = () => setCaret(ref.current?.selectionStart ?? 0);

  return (
    <form className="composer" onSubmit={submit}>
      {(replyTo || editing) && (
        <div className="composer__context" data-testid="composer-context">
          <div className="composer__context-text">
            {editing ? (
              <strong>Editing message</strong>
            ) : (
              <>
                <strong>Replying to {replyTo!.name}</strong>
                <span className="composer__context-preview">{replyTo!.preview}</span>
              </>
            )}
          </div>
          <button
            type="button"
            className="btn btn--ghost btn--icon"
            aria-label={editing ? 'Cancel editing' : 'Cancel reply'}
            title={editing ? 'Cancel editing (Escape)' : 'Cancel reply (Escape)'}
            onClick={() => {
              if (editing) onCancelEdit?.();
              else onCancelReply?.();
              ref.current?.focus();
            }}
          >
            <IconX />
          </button>
        </div>
      )}
      {editError && (
        <div className="composer__error inline-error" role="alert">
          Could not save: {editError}
        </div>
      )}
      <div className="composer__box">
        <label htmlFor="composer-input" className="visually-hidden">
          Message
        </label>
        {suggesting && (
          <ul className="mention-list" id={listId} role="listbox" aria-label="People to mention" data-testid="mention-list">
            {candidates.map((u, i) => (
              <li
                key={u.id}
                id={`${listId}-${u.id}`}
                role="option"
                aria-selected={i === activeIdx}
                className={`mention-option${i === activeIdx ? ' mention-option--active' : ''}`}
                data-user={u.username}
                // Keep focus (and the caret) in the box.
                onMouseDown={(e) => e.preventDefault()}
                onClick={() => pick(u)}
              >
                <strong>{displayName(u)}</strong> <span className="mention-option__user">@{u.username}</span>
              </li>
            ))}
          </ul>
        )}
        <textarea
          id="composer-input"
          ref={ref}
          rows={1}
          value={text}
          disabled={disabled}
          placeholder={editing ? 'Edit your message…' : placeholder}
          aria-invalid={tooLong || (blank && text.trim() !== '') || undefined}
          aria-describedby="composer-hint"
          aria-autocomplete="list"
          aria-controls={suggesting ? listId : undefined}
          aria-activedescendant={suggesting ? `${listId}-${candidates[activeIdx].id}` : undefined}
          onChange={(e) => {
            setText(e.target.value);
            setCaret(e.target.selectionStart ?? e.target.value.length);
            setActive(0);
            if (!editing) onTyping(e.target.value.trim().length > 0);
          }}
          onSelect={syncCaret}
          onClick={syncCaret}
          onBlur={() => onTyping(false)}
          onKeyDown={onKeyDown}
        />
        <button
          type="submit"
          className="btn btn--primary btn--icon composer__send"
          disabled={disabled || tooLong || blank || saving}
          aria-label={editing ? 'Save changes' : 'Send message'}
        >
          <IconSend />
        </button>
      </div>
      <div className="composer__hint" id="composer-hint" aria-live="polite">
        {tooLong ? (
          <span className="inline-error">Message is too long (16 KB at most).</span>
        ) : blank && text.trim() !== '' ? (
          <span className="inline-error">Messages need at least one visible character.</span>
        ) : editing ? (
          'Enter to save · Escape to cancel'
        ) : suggesting ? (
          '↑ ↓ to choose · Enter to mention · Escape to close'
        ) : (
          'Enter to send · Shift+Enter for a new line · ↑ to edit your last message'
        )}
      </div>
    </form>
  );
}
