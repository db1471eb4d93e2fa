// A pending invitation to the signed-in user, with Accept and Decline. Errors (expired, chat full,
// revoked meanwhile) show on the card itself.
import { useState } from 'react';
import { useRealtime } from '../../lib/session';
import { useNow } from '../../hooks/use-now';
import { navigate } from '../../lib/router';
import { displayName, errorText, expiresText, fullName } from '../../lib/format';
import type { Invitation } from '../../lib/types';

export function InvitationCard({ invitation, onDone }: { invitation: Invitation; onDone: () => void }) {
  const rt = useRealtime();
  const now = useNow();
  const [busy, setBusy] = useState<'accept' | 'decline' | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function act(kind: 'accept' | 'decline') {
    setBusy(kind);
    setError(null);
    try {
      if (kind === 'accept') {
        const r = await rt.request('invite.accept', { invitation: invitation.id });
        onDone();
        navigate(`/chat/${encodeURIComponent(r.chat?.slug || invitation.chat)}`);
      } else {
        await rt.request('invite.decline', { invitation: invitation.id });
        onDone();
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      setError(
        code === 'conflict' ? 'This invitation is no longer pending (it was revoked or already answered).' : errorText(err),
      );
      setBusy(null);
      if (code === 'expired' || code === 'conflict' || code === 'not_found') setTimeout(onDone, 4000);
    }
  }

  return (
    <div className="invite-card" data-testid="invitation" data-chat={invitation.chat}>
      <p className="invite-card__text">
        {/* The username too: anyone can take a display name, nobody another's username. */}
        <strong title={fullName(invitation.from)}>{displayName(invitation.from)}</strong>{' '}
        <span className="muted">(@{invitation.from.username})</span> invited you to <strong>{invitation.chatTitle || invitation.chat}</strong>
      </p>
      <p className="invite-card__meta">{expiresText(invitation.expiresAt, now)}</p>
      <div className="invite-card__actions">
        <button
          type="button"
          className="btn btn--primary btn--small"
          onClick={() => act('accept')}
          disabled={busy !== null}
          aria-label={`Accept invitation to ${invitation.chatTitle}`}
        >
          {busy === 'accept' ? 'Joining…' : 'Accept'}
        </button>
        <button
          type="button"
          className="btn btn--small"
          onClick={() => act('decline')}
          disabled={busy !== null}
          aria-label={`Decline invitation to ${invitation.chatTitle}`}
        >
          Decline
        </button>
      </div>
      {error && (
        <p className="inline-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
