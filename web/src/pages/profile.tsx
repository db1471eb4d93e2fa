// /profile: the signed-in user's own settings. Display name (me.update; everyone who shows it
// gets `user.updated` and changes at once), picture (POST /api/avatar, PNG/JPEG/WebP up to 1 MB,
// checked here first so the user learns why before uploading), password (POST /api/password
// with the current one; every other session of the user is signed out, this one stays), and
// browser notifications for this device.
import { useRef, useState, type FormEvent } from 'react';
import { useRealtime, useSession } from '../lib/session';
import { Link } from '../lib/router';
import { codePointLength, DISPLAY_NAME_MAX, displayName, errorText, nameProblem, nameProblemText } from '../lib/format';
import { AVATAR_MAX_BYTES, AVATAR_TYPES, changePassword, deleteAvatar, updateMe, uploadAvatar, type AvatarUser } from '../lib/live';
import { putUser } from '../lib/users';
import { Avatar } from '../components/ui/avatar';
import { IconBack } from '../components/ui/icons';
import { NotificationSwitch } from '../components/chat/notification-prompt';

export function ProfilePage() {
  const { user } = useSession();
  if (!user) return null;
  return (
    <div className="room__main page" style={{ height: '100%' }}>
      <header className="room-header">
        <Link to="/chat" className="btn btn--ghost btn--icon room-header__back" aria-label="Back to chats">
          <IconBack />
        </Link>
        <div className="room-header__title">
          <h1>Profile</h1>
          <div className="room-header__sub">@{user.username}</div>
        </div>
      </header>
      <div className="settings">
        <div className="settings__inner">
          <AvatarCard user={user} />
          <NameCard user={user} />
          <PasswordCard />
          <section className="card" aria-labelledby="notify-title">
            <h2 id="notify-title">Notifications</h2>
            <p className="field__hint" style={{ marginTop: -6 }}>
              Direct messages and mentions notify you by default; choose per chat in its settings.
            </p>
            <NotificationSwitch />
          </section>
          <section className="card" aria-labelledby="bots-link-title">
            <h2 id="bots-link-title">Bots</h2>
            <p className="field__hint" style={{ marginTop: -6 }}>
              Accounts for your programs: an assistant that answers in your chats, a notifier, a bridge.
            </p>
            <Link to="/bots" className="btn" data-testid="bots-link">
              Manage bots
            </Link>
          </section>
        </div>
      </div>
    </div>
  );
}

// Our own changes: the session's user and every place that shows us.
function useApplyMe() {
  const { setUser, user } = useSession();
  return (u: AvatarUser) => {
    putUser(u);
    setUser(user ? { ...user, ...u } : u);
  };
}

function NameCard({ user }: { user: AvatarUser }) {
  const rt = useRealtime();
  const applyMe = useApplyMe();
  const [name, setName] = useState(user.displayName);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const t = name.trim();
    if (!t) return setError('The display name cannot be empty.');
    const problem = nameProblem(t, DISPLAY_NAME_MAX);
    if (problem) return setError(nameProblemText(problem, 'Display names', DISPLAY_NAME_MAX));
    if (t === user.displayName) return setSaved(true);
    setBusy(true);
    try {
      const r = await updateMe(rt, t);
      applyMe(r.user);
      setName(r.user.displayName);
      setSaved(true);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby="name-title" noValidate>
      <h2 id="name-title">Your name</h2>
      {error && (
        <div className="alert alert--error" role="alert">
          {error}
        </div>
      )}
      {saved && !error && (
        <div className="alert alert--ok" role="status">
          Saved. Everyone in your chats sees the new name.
        </div>
      )}
      <div className="field">
        <label htmlFor="profile-name">Display name</label>
        <input
          id="profile-name"
          className="input"
          autoComplete="name"
          aria-describedby="profile-name-hint"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            setSaved(false);
            setError(null);
          }}
        />
        <span className="field__hint" id="profile-name-hint">
          Up to {DISPLAY_NAME_MAX} characters ({codePointLength(name.trim())}/{DISPLAY_NAME_MAX}). Your username @{user.username} stays the same.
        </span>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn--primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save name'}
        </button>
      </div>
    </form>
  );
}

function AvatarCard({ user }: { user: AvatarUser }) {
  const applyMe = useApplyMe();
  const input = useRef<HTMLInputElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function run(act: () => Promise<AvatarUser>, done: string) {
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      applyMe(await act());
      setStatus(done);
    } catch (err) {
      const e = err as { code?: string };
      setError(
        e.code === 'too_large'
          ? 'That picture is over 1 MB. Choose a smaller one.'
          : e.code === 'bad_request' || e.code === 'unsupported'
            ? 'That file is not a PNG, JPEG or WebP picture the server can read.'
            : errorText(err),
      );
    } finally {
      setBusy(false);
    }
  }

  function picked(file: File | undefined) {
    if (!file) return;
    if (!(AVATAR_TYPES as readonly string[]).includes(file.type)) {
      setError('Choose a PNG, JPEG or WebP picture.');
      setStatus(null);
    } else if (file.size > AVATAR_MAX_BYTES) {
      setError(`That picture is ${(file.size / (1024 * 1024)).toFixed(1)} MB; the limit is 1 MB.`);
      setStatus(null);
    } else {
      run(() => uploadAvatar(file), 'Picture updated.');
    }
    if (input.current) input.current.value = '';
  }

  return (
    <section className="card" aria-labelledby="avatar-title">
      <h2 id="avatar-title">Picture</h2>
      {error && (
        <div className="alert alert--error" role="alert">
          {error}
        </div>
      )}
      {status && !error && (
        <div className="alert alert--ok" role="status">
          {status}
        </div>
      )}
      <div className="profile-avatar">
        <Avatar user={user} size={72} />
        <div className="profile-avatar__actions">
          <input
            ref={input}
            id="profile-avatar-file"
            className="visually-hidden"
            type="file"
            accept={AVATAR_TYPES.join(',')}
            disabled={busy}
            aria-describedby="profile-avatar-hint"
            onChange={(e) => picked(e.target.files?.[0])}
          />
          {/* The input is visually hidden but keeps focus; its label is the visible button. */}
          <label className={`btn file-btn${busy ? ' btn--disabled' : ''}`} htmlFor="profile-avatar-file">
            {busy ? 'Uploading…' : user.avatar ? 'Change picture' : 'Upload picture'}
          </label>
          {user.avatar && (
            <button type="button" className="btn btn--ghost" disabled={busy} onClick={() => run(deleteAvatar, 'Picture removed.')}>
              Remove picture
            </button>
          )}
          <span className="field__hint" id="profile-avatar-hint">
            PNG, JPEG or WebP, up to 1 MB. Shown next to your name as {displayName(user)}.
          </span>
        </div>
      </div>
    </section>
  );
}

function PasswordCard() {
  const { user } = useSession();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setDone(false);
    if (!current) return setError('Enter your current password.');
    if (next.length < 8) return setError('The new password needs at least 8 characters.');
    if (next !== again) return setError('The two new passwords are not the same.');
    setBusy(true);
    try {
      await changePassword(current, next);
      setDone(true);
      setCurrent('');
      setNext('');
      setAgain('');
    } catch (err) {
      const code = (err as { code?: string }).code;
      setError(
        code === 'unauthorized' || code === 'forbidden'
          ? 'Your current password is not right.'
          : code === 'rate_limited'
            ? 'Too many attempts. Try again in a few minutes.'
            : errorText(err),
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby="password-title" noValidate>
      <h2 id="password-title">Password</h2>
      <p className="field__hint" style={{ marginTop: -6 }} id="password-note">
        Changing your password signs you out everywhere else (other browsers, phones and tabs logged in separately). This browser stays signed in.
      </p>
      {error && (
        <div className="alert alert--error" role="alert">
          {error}
        </div>
      )}
      {done && !error && (
        <div className="alert alert--ok" role="status">
          Password changed. Your other sessions were signed out.
        </div>
      )}
      {/* For password managers: which account this is. */}
      <input type="text" name="username" autoComplete="username" value={user?.username ?? ''} readOnly hidden />
      <div className="field">
        <label htmlFor="pw-current">Current password</label>
        <input id="pw-current" className="input" type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />
      </div>
      <div className="form-row">
        <div className="field">
          <label htmlFor="pw-new">New password</label>
          <input id="pw-new" className="input" type="password" autoComplete="new-password" aria-describedby="pw-new-hint" value={next} onChange={(e) => setNext(e.target.value)} />
          <span className="field__hint" id="pw-new-hint">
            At least 8 characters.
          </span>
        </div>
        <div className="field">
          <label htmlFor="pw-again">New password again</label>
          <input id="pw-again" className="input" type="password" autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} />
        </div>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn--primary" disabled={busy} aria-describedby="password-note">
          {busy ? 'Changing…' : 'Change password'}
        </button>
      </div>
    </form>
  );
}
