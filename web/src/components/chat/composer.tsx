// The message box: Enter sends, Shift+Enter starts a new line, the box grows with its text.
// Typing is reported while there is text (the realtime client refreshes it every 3 s and the
// server forgets it after 6 s), and cleared on send, on emptying the box and on leaving it.
// The text is a per-chat draft (useDraft): it survives switching chats and reloads.
import { useEffect, useRef, type FormEvent, type KeyboardEvent } from 'react';
import { useDraft } from '../../hooks/use-draft';
import { IconSend } from '../ui/icons';
import { hasVisible } from '../../lib/format';

const MAX_BYTES = 16384;

export function Composer({
  draftKey,
  onSend,
  onTyping,
  disabled,
  placeholder = 'Write a message…',
}: {
  /** Where the unsent text is kept (one key per user and chat); see useDraft. */
  draftKey?: string;
  onSend: (body: string) => void;
  onTyping: (on: boolean) => void;
  disabled?: boolean;
  placeholder?: string;
}) {
  const [text, setText] = useDraft(draftKey);
  const ref = useRef<HTMLTextAreaElement>(null);
  const tooLong = new TextEncoder().encode(text).length > MAX_BYTES;
  // Only white space or invisible characters (U+200B...): the server refuses it, so Send is off,
  // and a box that is not empty says why.
  const blank = !hasVisible(text);

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 180)}px`;
  }, [text]);

  function submit(e?: FormEvent) {
    e?.preventDefault();
    if (disabled || tooLong || blank) return;
    onSend(text);
    onTyping(false);
    setText('');
    ref.current?.focus();
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    }
  }

  return (
    <form className="composer" onSubmit={submit}>
      <div className="composer__box">
        <label htmlFor="composer-input" className="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={ref}
          rows={1}
          value={text}
          disabled={disabled}
          placeholder={placeholder}
          aria-invalid={tooLong || (blank && text.trim() !== '') || undefined}
          aria-describedby="composer-hint"
          onChange={(e) => {
            setText(e.target.value);
            onTyping(e.target.value.trim().length > 0);
          }}
          onBlur={() => onTyping(false)}
          onKeyDown={onKeyDown}
        />
        <button
          type="submit"
          className="btn btn--primary btn--icon composer__send"
          disabled={disabled || tooLong || blank}
          aria-label="Send message"
        >
          <IconSend />
        </button>
      </div>
      <div className="composer__hint" id="composer-hint">
        {tooLong ? (
          <span className="inline-error">Message is too long (16 KB at most).</span>
        ) : blank && text.trim() !== '' ? (
          <span className="inline-error">Messages need at least one visible character.</span>
        ) : (
          'Enter to send · Shift+Enter for a new line'
        )}
      </div>
    </form>
  );
}
