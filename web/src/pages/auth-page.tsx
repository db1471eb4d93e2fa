// Sign up and log in. Errors from the server appear above the form (taken username, wrong
// password, too many attempts); field rules are checked before sending. The requests are the
// SDK's HTTP helpers; the session is the HttpOnly cookie the server sets, so the JSON `token` in
// the reply is ignored on purpose (a token readable by scripts is what the cookie avoids).
import { useState, type FormEvent } from 'react';
import { login, signup as apiSignup } from '../../../clients/js/src/http.js';
import type { ParleyError } from '../../../clients/js/src/errors.js';
import { codePointLength, DISPLAY_NAME_MAX, errorText, nameProblem, nameProblemText, retryText, signupLimitText } from '../lib/format';
import { Link, navigate } from '../lib/router';
import { safeNext } from '../lib/live-rules';
import { useSession } from '../lib/session';
import { IconChat } from '../components/ui/icons';

const USERNAME_RE = /^[a-z0-9_.-]{3,32}$/;

// Where to go after logging in: the `next` the app put in the URL when a signed-out visitor
// opened one of its pages (a shared chat link), if it is a path of this site; else /chat.
export function nextPath(search: string = location.search): string {
  return safeNext(new URLSearchParams(search).get('next'));
}

// The other auth page's link keeps `next`.
function withNext(to: string): string {
  return location.search.includes('next=') ? `${to}${location.search}` : to;
}

export function AuthPage({ mode }: { mode: 'login' | 'signup' }) {
  const { setUser } = useSession();
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signup = mode === 'signup';

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    const uname = username.trim().toLowerCase();
    if (signup && !USERNAME_RE.test(uname)) {
      setError('Usernames are 3-32 characters: lower-case letters, digits, "_", "." or "-".');
      return;
    }
    // The server's rules (counted in code points, so an emoji is one character); an empty one
    // means "use my username".
    const problem = signup && displayName.trim() ? nameProblem(displayName.trim(), DISPLAY_NAME_MAX) : null;
    if (problem) {
      setError(nameProblemText(problem, 'Display names', DISPLAY_NAME_MAX));
      return;
    }
    if (signup && password.length < 8) {
      setError('Passwords need at least 8 characters.');
      return;
    }
    setBusy(true);
    try {
      const dn = displayName.trim();
      const r = signup
        ? await apiSignup({ username: uname, password, ...(dn ? { displayName: dn } : {}) })
        : await login({ username: uname, password });
      // Navigate first: the app's redirect for a signed-in user on an auth page reads `next` too.
      navigate(nextPath(), { replace: true });
      setUser(r.user);
    } catch (err) {
      const e2 = err as ParleyError;
      if (e2.code === 'conflict') setError('That username is taken. Try another one.');
      else if (e2.code === 'unauthorized') setError('Wrong username or password.');
      else if (e2.code === 'rate_limited' && signup) setError(signupLimitText(e2.retryAfter));
      else if (e2.code === 'rate_limited') setError(`Too many attempts. ${retryText(e2.retryAfter)}`);
      // 503 with Retry-After: 1: the password-hash queue is full, a moment's wait is enough.
      else if (e2.code === 'unavailable') setError('The server is busy; try again in a moment.');
      else setError(errorText(e2));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="auth-page">
      <div className="auth-card">
        <div className="brand">
          <span className="brand__mark">
            <IconChat />
          </span>
          Parley
        </div>
        <h1>{signup ? 'Create your account' : 'Welcome back'}</h1>
        <p className="lead">{signup ? 'Start chatting in real time in under a minute.' : 'Log in to pick up where you left off.'}</p>
        <form onSubmit={submit} noValidate>
          {error && (
            <div className="alert alert--error" role="alert">
              {error}
            </div>
          )}
          <div className="field">
            <label htmlFor="auth-username">Username</label>
            <input
              id="auth-username"
              className="input"
              name="username"
              autoComplete="username"
              autoCapitalize="none"
              spellCheck={false}
              required
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              autoFocus
            />
            {signup && <span className="field__hint">3-32 characters: a-z, 0-9, _ . -</span>}
          </div>
          {signup && (
            <div className="field">
              <label htmlFor="auth-display">Display name</label>
              <input
                id="auth-display"
                className="input"
                name="displayName"
                autoComplete="name"
                aria-describedby="auth-display-hint"
                value={displayName}
                onChange={(e) => setDisplayName(e.target.value)}
                placeholder="Optional: how others see you"
              />
              {/* No maxLength: the browser counts it in UTF-16 units, so emoji would count twice. */}
              <span className="field__hint" id="auth-display-hint">
                Up to {DISPLAY_NAME_MAX} characters ({codePointLength(displayName.trim())}/{DISPLAY_NAME_MAX})
              </span>
            </div>
          )}
          <div className="field">
            <label htmlFor="auth-password">Password</label>
            <input
              id="auth-password"
              className="input"
              type="password"
              name="password"
              autoComplete={signup ? 'new-password' : 'current-password'}
              required
              minLength={signup ? 8 : undefined}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
            {signup && <span className="field__hint">At least 8 characters.</span>}
          </div>
          <button className="btn btn--primary btn--block" type="submit" disabled={busy}>
            {busy ? (signup ? 'Creating account…' : 'Logging in…') : signup ? 'Sign up' : 'Log in'}
          </button>
        </form>
        <p className="auth-switch">
          {signup ? (
            <>
              Already have an account? <Link to={withNext('/login')}>Log in</Link>
            </>
          ) : (
            <>
              New to Parley? <Link to={withNext('/signup')}>Create an account</Link>
            </>
          )}
        </p>
      </div>
    </main>
  );
}
