// /bots: the signed-in person's bot accounts (issue 19), in the settings area next to the profile.
// Create a bot (its token and webhook secret are shown once, each with a copy button), list them,
// rotate a token (every session of the bot ends) or the webhook secret, set or clear the webhook
// URL, delete one after a confirmation. Bots then join chats like anyone (invite them) and carry a
// "BOT" badge; bots/assistant/ in the repository is one to run.
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { Link } from '../lib/router';
import { useSession } from '../lib/session';
import { errorText } from '../lib/format';
import {
  createBot,
  deleteBot,
  listBots,
  rotateBotToken,
  rotateBotWebhookSecret,
  updateBot,
  type Bot,
} from '../../../clients/js/src/bots.js';
import { ConfirmDialog } from '../components/ui/modal';
import { Avatar } from '../components/ui/avatar';
import { BotBadge } from '../components/ui/bot-badge';
import { IconBack } from '../components/ui/icons';

// A secret shown this once: what it is, the value, a copy button.
interface Shown {
  label: string;
  value: string;
}

function Secret({ s }: { s: Shown }) {
  const [copied, setCopied] = useState(false);
  const id = `secret-${s.label.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <div className="field">
      <label htmlFor={id}>{s.label}</label>
      <div className="secret-row">
        <input id={id} className="input secret-row__value" readOnly value={s.value} data-testid={id} onFocus={(e) => e.currentTarget.select()} />
        <button
          type="button"
          className="btn"
          onClick={() => {
            navigator.clipboard?.writeText(s.value).then(
              () => setCopied(true),
              () => setCopied(false),
            );
          }}
          aria-label={`Copy ${s.label.toLowerCase()}`}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}

function SecretsNotice({ shown, onDone }: { shown: Shown[]; onDone: () => void }) {
  // Focus moves to the new secrets (keyboard and screen-reader users land on them).
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => ref.current?.focus(), [shown]);
  return (
    <div className="alert alert--ok secrets" role="status" data-testid="bot-secrets" ref={ref} tabIndex={-1}>
      <p style={{ marginTop: 0 }}>
        <strong>Copy these now:</strong> they are shown only this once.
      </p>
      {shown.map((s) => (
        <Secret key={s.label} s={s} />
      ))}
      <button type="button" className="btn" onClick={onDone}>
        Done
      </button>
    </div>
  );
}

export function BotsPage() {
  const { user } = useSession();
  const [bots, setBots] = useState<Bot[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [shown, setShown] = useState<Shown[] | null>(null);

  const reload = useCallback(() => {
    listBots().then(setBots, (err) => setError(errorText(err)));
  }, []);
  useEffect(reload, [reload]);

  if (!user) return null;
  return (
    <div className="room__main page" style={{ height: '100%' }}>
      <header className="room-header">
        <Link to="/profile" className="btn btn--ghost btn--icon room-header__back" aria-label="Back to your profile">
          <IconBack />
        </Link>
        <div className="room-header__title">
          <h1>Bots</h1>
          <div className="room-header__sub">Accounts your programs use to chat</div>
        </div>
      </header>
      <div className="settings">
        <div className="settings__inner">
          {shown && <SecretsNotice shown={shown} onDone={() => setShown(null)} />}
          <CreateBotCard
            onCreated={(res) => {
              setShown([
                { label: 'Token', value: res.token },
                { label: 'Webhook secret', value: res.webhookSecret },
              ]);
              reload();
            }}
          />
          <section className="card" aria-labelledby="bots-title">
            <h2 id="bots-title">Your bots</h2>
            {error && (
              <div className="alert alert--error" role="alert">
                {error}
              </div>
            )}
            {bots === null ? (
              <p className="muted">Loading…</p>
            ) : bots.length === 0 ? (
              <p className="muted">No bots yet.</p>
            ) : (
              <ul className="member-list" data-testid="bot-list">
                {bots.map((b) => (
                  <BotRow key={b.id} bot={b} onChanged={reload} onSecret={(s) => setShown([s])} />
                ))}
              </ul>
            )}
          </section>
        </div>
      </div>
    </div>
  );
}

function CreateBotCard({ onCreated }: { onCreated: (r: { token: string; webhookSecret: string }) => void }) {
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [webhookUrl, setWebhookUrl] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    const u = username.trim();
    if (!u) return setError('Choose a username for the bot.');
    setBusy(true);
    try {
      const res = await createBot({
        username: u,
        ...(displayName.trim() ? { displayName: displayName.trim() } : {}),
        ...(webhookUrl.trim() ? { webhookUrl: webhookUrl.trim() } : {}),
      });
      setUsername('');
      setDisplayName('');
      setWebhookUrl('');
      onCreated(res);
    } catch (err) {
      const code = (err as { code?: string }).code;
      setError(code === 'conflict' ? 'That username is taken, or you have 20 bots already.' : errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={submit} aria-labelledby="bot-create-title" noValidate data-testid="bot-create">
      <h2 id="bot-create-title">Create a bot</h2>
      {error && (
        <div className="alert alert--error" role="alert">
          {error}
        </div>
      )}
      <div className="form-row">
        <div className="field">
          <label htmlFor="bot-username">Username</label>
          <input id="bot-username" className="input" autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="bot-display">Display name (optional)</label>
          <input id="bot-display" className="input" autoComplete="off" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
        </div>
      </div>
      <div className="field">
        <label htmlFor="bot-webhook">Webhook URL (optional)</label>
        <input
          id="bot-webhook"
          className="input"
          type="url"
          inputMode="url"
          placeholder="https://example.com/parley-hook"
          aria-describedby="bot-webhook-hint"
          value={webhookUrl}
          onChange={(e) => setWebhookUrl(e.target.value)}
        />
        <span className="field__hint" id="bot-webhook-hint">
          Messages that mention the bot, and every message in a DM with it, are POSTed there, signed with the webhook secret.
        </span>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn--primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create bot'}
        </button>
      </div>
    </form>
  );
}

function BotRow({ bot, onChanged, onSecret }: { bot: Bot; onChanged: () => void; onSecret: (s: Shown) => void }) {
  const [editing, setEditing] = useState(false);
  const [url, setUrl] = useState(bot.webhookUrl ?? '');
  const [confirm, setConfirm] = useState<null | 'delete' | 'token'>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function run(fn: () => Promise<unknown>) {
    setError(null);
    setBusy(true);
    try {
      await fn();
      onChanged();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <li className="member" data-bot={bot.username} data-testid="bot-row">
      <Avatar user={bot} size={36} />
      <div className="member__text">
        <strong>
          {bot.displayName}
          <BotBadge user={bot} />
        </strong>
        <span>
          @{bot.username} · {bot.webhookUrl ? `webhook ${bot.webhookUrl}` : 'no webhook'}
        </span>
        {error && (
          <span className="alert alert--error" role="alert">
            {error}
          </span>
        )}
        {editing && (
          <form
            className="form-actions"
            style={{ marginTop: 8 }}
            onSubmit={(e) => {
              e.preventDefault();
              run(async () => {
                await updateBot(bot.username, { webhookUrl: url.trim() ? url.trim() : null });
                setEditing(false);
              });
            }}
          >
            <label className="visually-hidden" htmlFor={`hook-${bot.id}`}>
              Webhook URL of {bot.displayName}
            </label>
            <input id={`hook-${bot.id}`} className="input" type="url" placeholder="https://… (empty: none)" value={url} onChange={(e) => setUrl(e.target.value)} />
            <button type="submit" className="btn btn--primary" disabled={busy}>
              Save
            </button>
            <button type="button" className="btn" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        )}
      </div>
      <div className="member__actions form-actions">
        <button type="button" className="btn btn--small" onClick={() => setEditing((v) => !v)} aria-expanded={editing}>
          Webhook…
        </button>
        <button
          type="button"
          className="btn btn--small"
          disabled={busy}
          onClick={() => run(async () => onSecret({ label: 'Webhook secret', value: await rotateBotWebhookSecret(bot.username) }))}
        >
          New secret
        </button>
        <button type="button" className="btn btn--small" disabled={busy} onClick={() => setConfirm('token')}>
          New token
        </button>
        <button type="button" className="btn btn--small btn--danger" disabled={busy} onClick={() => setConfirm('delete')} aria-label={`Delete ${bot.displayName}`}>
          Delete
        </button>
      </div>
      {confirm === 'token' && (
        <ConfirmDialog
          title={`New token for ${bot.displayName}?`}
          confirmLabel="Make a new token"
          danger={false}
          onCancel={() => setConfirm(null)}
          onConfirm={() => {
            setConfirm(null);
            run(async () => onSecret({ label: 'Token', value: await rotateBotToken(bot.username) }));
          }}
        >
          <p style={{ margin: 0 }}>The old token stops working at once: the bot is disconnected until it uses the new one.</p>
        </ConfirmDialog>
      )}
      {confirm === 'delete' && (
        <ConfirmDialog
          title={`Delete ${bot.displayName}?`}
          confirmLabel="Delete bot"
          onCancel={() => setConfirm(null)}
          onConfirm={() => {
            setConfirm(null);
            run(() => deleteBot(bot.username));
          }}
        >
          <p style={{ margin: 0 }}>
            @{bot.username} is signed out and leaves every chat. Its username stays taken.
          </p>
        </ConfirmDialog>
      )}
    </li>
  );
}
