// /chat/:slug/settings: the chat's title, public toggle, participant cap and invite policy
// (owner and admins edit, others read); participants with roles, where the owner changes roles
// and removes anyone and admins remove members; pending invitations with revoke; leave chat. A DM
// shows only its two participants, the link and notifications: no invitations, roles or leaving.
// Every server error shows next to what caused it.
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { useRealtime, useSession } from '../lib/session';
import { useNow } from '../hooks/use-now';
import { useChatDetails } from '../hooks/use-chat-details';
import { canInvite } from '../../../clients/js/src/rules.js';
import { Link, navigate } from '../lib/router';
import { codePointLength, displayName, errorText, expiresText, fullName, nameProblem, nameProblemText, relativeTime, TITLE_MAX } from '../lib/format';
import { ConfirmDialog } from '../components/ui/modal';
import { Avatar } from '../components/ui/avatar';
import { BotBadge } from '../components/ui/bot-badge';
import { IconBack, IconUserPlus } from '../components/ui/icons';
import { InviteUserModal } from '../components/chat/invite-user-modal';
import { useOpenDm } from '../hooks/use-open-dm';
import type { Chat, Invitation, InvitePolicy, Participant, Role } from '../lib/types';
import type { ChatUpdateArgs } from '../../../clients/js/src/types.js';
import { notifyLevelOf, setNotify, type NotifyLevel } from '../lib/live';
import { useChatList } from '../hooks/use-chat-list';
import { setPageTitle } from '../lib/attention';
import { IconLink } from '../components/ui/icons';

// The chat's pending invitations (owner and admins see every one, others their own), reloaded
// on every `invite` event about the chat and after a reconnect.
function usePendingInvites(slug: string): { invites: Invitation[]; reload(): void } {
  const rt = useRealtime();
  const [invites, setInvites] = useState<Invitation[]>([]);
  const reload = useCallback(() => {
    rt.request('invite.list', {}).then(
      (r) => setInvites(r.outgoing.filter((i) => i.chat === slug && i.status === 'pending')),
      () => setInvites([]),
    );
  }, [rt, slug]);
  useEffect(() => {
    reload();
    const offs = [
      rt.on('invite', (e) => e.invitation.chat === slug && reload()),
      rt.onReconnect(reload),
    ];
    return () => offs.forEach((f) => f());
  }, [rt, slug, reload]);
  return { invites, reload };
}

export function ChatSettings({ slug }: { slug: string }) {
  const { user } = useSession();
  const details = useChatDetails(slug);
  const { chat, error: loadError } = details;
  // Oldest first, as chat.get lists a whole chat (pages of a big chat come by user id).
  const participants = useMemo(
    () => [...details.participants].sort((a, b) => a.joinedAt - b.joinedAt || a.id - b.id),
    [details.participants],
  );
  const { invites, reload: reloadInvites } = usePendingInvites(slug);
  const [inviting, setInviting] = useState(false);
  const load = useCallback(() => {
    details.reload();
    reloadInvites();
  }, [details.reload, reloadInvites]);

  useEffect(() => {
    setPageTitle(`Settings · ${chat?.title || slug} · Parley`);
  }, [chat?.title, slug]);

  const role: Role | null = chat?.role ?? null;
  // A direct-message chat has no invitations, joins or role changes (docs/protocol.md, dm.open).
  const dm = chat?.kind === 'dm';
  const manage = !dm && (role === 'owner' || role === 'admin');

  return (
    <div className="room__main" style={{ height: '100%' }}>
      <header className="room-header">
        <Link to={`/chat/${encodeURIComponent(slug)}`} className="btn btn--ghost btn--icon" aria-label="Back to the chat">
          <IconBack />
        </Link>
        <div className="room-header__title">
          <h1>Settings</h1>
          <div className="room-header__sub">{chat?.title ?? slug}</div>
        </div>
      </header>
      <div className="settings">
        <div className="settings__inner">
          {loadError && (
            <div className="card" role="alert" data-testid="settings-error">
              <p style={{ margin: '0 0 12px' }}>{loadError.code === 'forbidden' ? "You're not a participant of this chat." : errorText(loadError)}</p>
              <Link to="/chat" className="btn">
                Back to your chats
              </Link>
            </div>
          )}
          {chat && !loadError && (
            <>
              {/* A DM has no title, visibility, cap or invite policy of its own to show. */}
              {!dm && <GeneralForm chat={chat} editable={manage} />}
              <ShareCard chat={chat} />
              <NotifyCard chat={chat} />
              <section className="card" aria-labelledby="participants-title">
                <div className="card__head">
                  <h2 id="participants-title">
                    Participants <span className="muted">({chat.participantCount}{chat.maxParticipants ? ` of ${chat.maxParticipants}` : ''})</span>
                  </h2>
                  {canInvite(chat) && !dm && (
                    <button type="button" className="btn btn--small" onClick={() => setInviting(true)}>
                      <IconUserPlus /> Invite
                    </button>
                  )}
                </div>
                <ul className="member-list" data-testid="participants">
                  {participants.map((p) => (
                    <MemberRow key={p.id} slug={slug} p={p} myRole={dm ? null : role} selfId={user?.id} onChanged={load} dm={dm} />
                  ))}
                </ul>
                {details.more && (
                  <button type="button" className="btn btn--ghost" onClick={details.loadMore}>
                    Show more participants ({participants.length} of {chat.participantCount})
                  </button>
                )}
              </section>
              {!dm && (manage || invites.length > 0) ? (
                <section className="card" aria-labelledby="pending-title">
                  <h2 id="pending-title">Pending invitations</h2>
                  {invites.length === 0 ? (
                    <p className="muted" style={{ margin: 0 }}>
                      No pending invitations.
                    </p>
                  ) : (
                    <ul className="member-list" data-testid="pending-invitations">
                      {invites.map((inv) => (
                        <PendingRow key={inv.id} inv={inv} onChanged={load} />
                      ))}
                    </ul>
                  )}
                </section>
              ) : null}
              {/* Nobody leaves a DM (the server refuses it): no "Leave" to offer. */}
              {!dm && <LeaveCard slug={slug} chat={chat} role={role} />}
            </>
          )}
          {!chat && !loadError && <p className="muted" style={{ marginTop: 24 }}>Loading…</p>}
        </div>
      </div>
      {inviting && chat && <InviteUserModal chat={slug} chatTitle={chat.title} onClose={() => { setInviting(false); load(); }} />}
    </div>
  );
}

// The saved values come back as the server's `chat.updated` event, which useChatDetails merges.
function GeneralForm({ chat, editable }: { chat: Chat; editable: boolean }) {
  const rt = useRealtime();
  const [title, setTitle] = useState(chat.title);
  const [isPublic, setIsPublic] = useState(chat.isPublic);
  const [cap, setCap] = useState(chat.maxParticipants ? String(chat.maxParticipants) : '');
  const [policy, setPolicy] = useState<InvitePolicy>(chat.invitePolicy);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  // Follow changes made elsewhere while the form is untouched.
  useEffect(() => {
    setTitle(chat.title);
    setIsPublic(chat.isPublic);
    setCap(chat.maxParticipants ? String(chat.maxParticipants) : '');
    setPolicy(chat.invitePolicy);
  }, [chat.title, chat.isPublic, chat.maxParticipants, chat.invitePolicy]);

  // Editing again clears the last outcome.
  function edit<T>(set: (v: T) => void) {
    return (v: T) => {
      set(v);
      setError(null);
      setSaved(false);
    };
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const args: ChatUpdateArgs = { chat: chat.slug };
    const t = title.trim();
    if (!t) return setError('The title cannot be empty.');
    const problem = nameProblem(t, TITLE_MAX);
    if (problem) return setError(nameProblemText(problem, 'Titles', TITLE_MAX));
    if (t !== chat.title) args.title = t;
    if (isPublic !== chat.isPublic) args.isPublic = isPublic;
    const max = cap.trim() === '' ? null : Number(cap);
    if (max !== null && (!Number.isInteger(max) || max < 2 || max > 10000)) {
      return setError('The participant limit is a whole number from 2 to 10000, or empty for none.');
    }
    if (max !== chat.maxParticipants) args.maxParticipants = max;
    if (policy !== chat.invitePolicy) args.invitePolicy = policy;
    if (Object.keys(args).length === 1) {
      setSaved(true);
      return;
    }
    setBusy(true);
    try {
      await rt.request('chat.update', args);
      setSaved(true);
    } catch (err) {
      const code = (err as { code?: string }).code;
      setError(code === 'conflict' && 'maxParticipants' in args ? `The limit cannot be below the current number of participants (${chat.participantCount}).` : errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby="general-title" noValidate>
      <h2 id="general-title">General</h2>
      {error && (
        <div className="alert alert--error" role="alert">
          {error}
        </div>
      )}
      {saved && !error && (
        <div className="alert alert--ok" role="status">
          Saved.
        </div>
      )}
      {!editable && (
        <p className="field__hint" style={{ marginTop: -6 }}>
          Only the owner and admins can change these.
        </p>
      )}
      <div className="field">
        <label htmlFor="set-title">Title</label>
        {/* No maxLength: the browser counts UTF-16 units, so emoji would count twice. */}
        <input id="set-title" className="input" aria-describedby="set-title-hint" value={title} disabled={!editable} onChange={(e) => edit(setTitle)(e.target.value)} />
        {editable && (
          <span className="field__hint" id="set-title-hint">
            Up to {TITLE_MAX} characters ({codePointLength(title.trim())}/{TITLE_MAX})
          </span>
        )}
      </div>
      <div className="form-row">
        <div className="field">
          <label htmlFor="set-cap">Participant limit</label>
          <input
            id="set-cap"
            className="input"
            type="number"
            inputMode="numeric"
            min={2}
            max={10000}
            placeholder="No limit"
            value={cap}
            disabled={!editable}
            onChange={(e) => edit(setCap)(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="set-policy">Who can invite</label>
          <select id="set-policy" className="select" value={policy} disabled={!editable} onChange={(e) => edit(setPolicy)(e.target.value as InvitePolicy)}>
            <option value="owner">Only the owner</option>
            <option value="admins">Owner and admins</option>
            <option value="members">Every participant</option>
          </select>
        </div>
      </div>
      <label className="check">
        <input type="checkbox" checked={isPublic} disabled={!editable} onChange={(e) => edit(setIsPublic)(e.target.checked)} />
        <span>
          Public chat
          <br />
          <span className="field__hint">Anyone with the link can join without an invitation.</span>
        </span>
      </label>
      {editable && (
        <div className="form-actions">
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save changes'}
          </button>
        </div>
      )}
    </form>
  );
}

function MemberRow({
  slug,
  p,
  myRole,
  selfId,
  onChanged,
  dm: inDm = false,
}: {
  slug: string;
  p: Participant;
  myRole: Role | null;
  selfId?: number;
  onChanged: () => void;
  /** In a direct-message chat: this row's person is the one already talked to. */
  dm?: boolean;
}) {
  const rt = useRealtime();
  const now = useNow(); // the shared 30 s clock: relative times tick
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [confirmRemove, setConfirmRemove] = useState(false);
  const self = p.id === selfId;
  const canRemove = !self && (myRole === 'owner' || (myRole === 'admin' && p.role === 'member'));
  const canSetRole = !self && myRole === 'owner';
  const dm = useOpenDm();

  async function run(act: () => Promise<unknown>) {
    setBusy(true);
    setError(null);
    try {
      await act();
      onChanged();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <li className="member" data-user={p.username}>
      <Avatar user={p} size={36} />
      <div className="member__text">
        <strong>
          {displayName(p)}
          <BotBadge user={p} />
          {self && <span className="muted"> (you)</span>}
          {!inDm && (
            <span className={`role-badge role-badge--${p.role}`} data-testid="role">
              {p.role}
            </span>
          )}
        </strong>
        <span>
          @{p.username} · joined {relativeTime(p.joinedAt, now)}
        </span>
        {(error || dm.error) && (
          <span className="inline-error" role="alert">
            {error ?? `Could not open the conversation: ${dm.error}`}
          </span>
        )}
      </div>
      {(canSetRole || canRemove || (!self && !inDm)) && (
        <div className="member__actions">
          {!self && !inDm && (
            <button
              type="button"
              className="btn btn--small"
              disabled={dm.busy === p.username}
              onClick={() => dm.open(p.username)}
              aria-label={`Message ${displayName(p)}`}
            >
              Message
            </button>
          )}
          {canSetRole && (
            <>
              <label className="visually-hidden" htmlFor={`role-${p.id}`}>
                Role of {displayName(p)}
              </label>
              <select
                id={`role-${p.id}`}
                className="select"
                value={p.role}
                disabled={busy}
                onChange={(e) => {
                  const role = e.target.value as Role;
                  if (role === 'owner' && !confirm(`Make ${displayName(p)} the owner? You will become an admin.`)) return;
                  run(() => rt.request('chat.setRole', { chat: slug, user: p.username, role }));
                }}
              >
                <option value="member">Member</option>
                <option value="admin">Admin</option>
                <option value="owner">Owner</option>
              </select>
            </>
          )}
          {canRemove && (
            <button
              type="button"
              className="btn btn--danger btn--small"
              disabled={busy}
              onClick={() => setConfirmRemove(true)}
              aria-label={`Remove ${displayName(p)}`}
            >
              Remove
            </button>
          )}
          {confirmRemove && (
            <ConfirmDialog
              title={`Remove ${displayName(p)}?`}
              confirmLabel="Remove"
              onCancel={() => setConfirmRemove(false)}
              onConfirm={() => {
                setConfirmRemove(false);
                run(() => rt.request('chat.remove', { chat: slug, user: p.username }));
              }}
            >
              <p style={{ margin: 0 }}>
                {fullName(p)} will leave this chat at once and cannot come back without a new invitation.
              </p>
            </ConfirmDialog>
          )}
        </div>
      )}
    </li>
  );
}

function PendingRow({ inv, onChanged }: { inv: Invitation; onChanged: () => void }) {
  const rt = useRealtime();
  const now = useNow(); // the shared 30 s clock: relative times tick
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <li className="member" data-user={inv.to.username}>
      <Avatar user={inv.to} size={36} />
      <div className="member__text">
        <strong>{displayName(inv.to)}</strong>
        <span>
          invited by {displayName(inv.from)} · {expiresText(inv.expiresAt, now)}
        </span>
        {error && (
          <span className="inline-error" role="alert">
            {error}
          </span>
        )}
      </div>
      <div className="member__actions">
        <button
          type="button"
          className="btn btn--small"
          disabled={busy}
          aria-label={`Revoke invitation for ${displayName(inv.to)}`}
          onClick={async () => {
            setBusy(true);
            setError(null);
            try {
              await rt.request('invite.revoke', { invitation: inv.id });
              onChanged();
            } catch (err) {
              setError(errorText(err));
              setBusy(false);
            }
          }}
        >
          Revoke
        </button>
      </div>
    </li>
  );
}

function LeaveCard({ slug, chat, role }: { slug: string; chat: Chat; role: Role | null }) {
  const rt = useRealtime();
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const last = chat.participantCount <= 1;
  return (
    <section className="card danger-zone" aria-labelledby="leave-title">
      <h2 id="leave-title">Leave chat</h2>
      <p>
        {last
          ? 'You are the last participant: leaving archives this chat.'
          : role === 'owner'
            ? 'Ownership passes to the longest-standing admin, or else member.'
            : 'You will stop receiving messages and need a new invitation to come back.'}
      </p>
      {error && (
        <div className="alert alert--error" role="alert">
          {error}
        </div>
      )}
      {!confirming ? (
        <button type="button" className="btn btn--danger" onClick={() => setConfirming(true)}>
          Leave chat
        </button>
      ) : (
        <div className="form-actions">
          <button
            type="button"
            className="btn btn--danger"
            disabled={busy}
            autoFocus
            onClick={async () => {
              setBusy(true);
              setError(null);
              try {
                await rt.request('chat.leave', { chat: slug });
                navigate('/chat', { replace: true });
              } catch (err) {
                setError(errorText(err));
                setBusy(false);
              }
            }}
          >
            {busy ? 'Leaving…' : 'Yes, leave'}
          </button>
          <button type="button" className="btn" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      )}
    </section>
  );
}

// The chat's address, to paste anywhere: a public chat's link lets anyone join; a private chat's
// opens it for its participants only. The clipboard API needs a secure context (https or
// localhost); elsewhere the link is selected in its field for the user to copy.
function ShareCard({ chat }: { chat: Chat }) {
  const url = `${location.origin}/chat/${encodeURIComponent(chat.slug)}`;
  const field = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<'yes' | 'select' | null>(null);
  return (
    <section className="card" aria-labelledby="share-title">
      <h2 id="share-title">Link</h2>
      <p className="field__hint" style={{ marginTop: -6 }}>
        {chat.kind === 'dm'
          ? 'Only the two of you can open this link.'
          : chat.isPublic
            ? 'Anyone with this link can join this public chat.'
            : 'Only participants can open this link; invite others to let them in.'}
      </p>
      <div className="copy-row">
        <label htmlFor="share-url" className="visually-hidden">
          Link to this chat
        </label>
        <input id="share-url" ref={field} className="input" readOnly value={url} onFocus={(e) => e.currentTarget.select()} data-testid="share-url" />
        <button
          type="button"
          className="btn"
          onClick={async () => {
            try {
              await navigator.clipboard.writeText(url);
              setCopied('yes');
            } catch {
              field.current?.focus();
              field.current?.select();
              setCopied('select');
            }
          }}
        >
          <IconLink /> Copy link
        </button>
      </div>
      <p className="field__hint" role="status" data-testid="copy-status">
        {copied === 'yes' ? 'Link copied.' : copied === 'select' ? 'Press Ctrl+C (⌘C on a Mac) to copy the selected link.' : ''}
      </p>
    </section>
  );
}

const LEVELS: { level: NotifyLevel; label: string; hint: string }[] = [
  { level: 'all', label: 'All messages', hint: 'Every new message notifies you.' },
  { level: 'mentions', label: 'Mentions only', hint: 'Only messages that mention you.' },
  { level: 'none', label: 'Nothing', hint: 'No notifications; unread counts still show.' },
];

// Stored on the server (chat.notify), so it follows the user to every device; the reply updates
// this tab and the server tells the user's other sockets.
function NotifyCard({ chat }: { chat: Chat }) {
  const rt = useRealtime();
  const list = useChatList();
  const listed = list.chats.find((c) => c.slug === chat.slug);
  const current = notifyLevelOf(listed ?? chat);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section className="card" aria-labelledby="notify-level-title">
      <h2 id="notify-level-title">Notifications</h2>
      {error && (
        <div className="alert alert--error" role="alert">
          {error}
        </div>
      )}
      <fieldset className="radio-group" disabled={busy}>
        <legend className="visually-hidden">Notify me about</legend>
        {LEVELS.map((l) => (
          <label key={l.level} className="check">
            <input
              type="radio"
              name="notify-level"
              value={l.level}
              checked={current === l.level}
              onChange={async () => {
                setBusy(true);
                setError(null);
                const prev = current;
                list.patchChat(chat.slug, { notify: l.level });
                try {
                  const r = await setNotify(rt, chat.slug, l.level);
                  list.patchChat(chat.slug, { notify: r.level });
                } catch (err) {
                  list.patchChat(chat.slug, { notify: prev });
                  setError(errorText(err));
                } finally {
                  setBusy(false);
                }
              }}
            />
            <span>
              {l.label}
              <br />
              <span className="field__hint">{l.hint}</span>
            </span>
          </label>
        ))}
      </fieldset>
    </section>
  );
}
