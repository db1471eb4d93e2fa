// "New chat": a title, public or private, and an optional participant cap.
import { useState, type FormEvent } from 'react';
import { Modal } from '../ui/modal';
import { navigate } from '../../lib/router';
import { useRealtime } from '../../lib/session';
import { codePointLength, errorText, nameProblem, nameProblemText, TITLE_MAX } from '../../lib/format';

export function CreateChatModal({ onClose }: { onClose: () => void }) {
  const rt = useRealtime();
  const [title, setTitle] = useState('');
  const [isPublic, setIsPublic] = useState(false);
  const [cap, setCap] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const t = title.trim();
    if (!t) {
      setError('Give the chat a title.');
      return;
    }
    const problem = nameProblem(t, TITLE_MAX);
    if (problem) {
      setError(nameProblemText(problem, 'Titles', TITLE_MAX));
      return;
    }
    const max = cap.trim() ? Number(cap) : undefined;
    if (max !== undefined && (!Number.isInteger(max) || max < 2 || max > 10000)) {
      setError('The participant limit is a whole number from 2 to 10000.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const r = await rt.request('chat.create', {
        title: t,
        isPublic,
        ...(max !== undefined ? { maxParticipants: max } : {}),
      });
      // The chat list hears of it from the server's `chat.created` event.
      onClose();
      navigate(`/chat/${encodeURIComponent(r.chat.slug)}`);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  }

  return (
    <Modal title="New chat" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        {error && (
          <div className="alert alert--error" role="alert">
            {error}
          </div>
        )}
        <div className="field">
          <label htmlFor="new-chat-title">Title</label>
          <input
            id="new-chat-title"
            className="input"
            aria-describedby="new-chat-title-hint"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
            placeholder="e.g. Design review"
          />
          {/* No maxLength: the browser counts UTF-16 units, so emoji would count twice. */}
          <span className="field__hint" id="new-chat-title-hint">
            Up to {TITLE_MAX} characters ({codePointLength(title.trim())}/{TITLE_MAX})
          </span>
        </div>
        <div className="field">
          <label htmlFor="new-chat-cap">Participant limit</label>
          <input
            id="new-chat-cap"
            className="input"
            type="number"
            inputMode="numeric"
            min={2}
            max={10000}
            value={cap}
            onChange={(e) => setCap(e.target.value)}
            placeholder="No limit"
          />
          <span className="field__hint">Counts everyone, you included. Leave empty for no limit.</span>
        </div>
        <label className="check">
          <input type="checkbox" checked={isPublic} onChange={(e) => setIsPublic(e.target.checked)} />
          <span>
            Public chat
            <br />
            <span className="field__hint">Anyone with the link can join. Private chats are invitation only.</span>
          </span>
        </label>
        <div className="form-actions" style={{ justifyContent: 'flex-end' }}>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create chat'}
          </button>
        </div>
      </form>
    </Modal>
  );
}
