// The offer to turn on browser notifications, at the top of the chat list. The permission prompt
// only ever comes from the click on "Turn on notifications" (never on load); "Not now" hides the
// offer on this device (the profile page can still turn them on). Nothing shows where the browser
// has no Notification API or the user already answered.
import { useState } from 'react';
import { notificationPermission, requestNotifications, type Permission } from '../../lib/attention';
import { IconBell } from '../ui/icons';

const DISMISS_KEY = 'parley.notifications.dismissed';

function dismissed(): boolean {
  try {
    return localStorage.getItem(DISMISS_KEY) === '1';
  } catch {
    return false;
  }
}

export function NotificationPrompt() {
  const [perm, setPerm] = useState<Permission>(() => notificationPermission());
  const [hidden, setHidden] = useState(dismissed);
  if (perm !== 'default' || hidden) return null;
  return (
    <div className="notify-prompt" role="region" aria-label="Notifications" data-testid="notify-prompt">
      <span className="notify-prompt__icon" aria-hidden="true">
        <IconBell />
      </span>
      <p className="notify-prompt__text">Get notified of direct messages and mentions while Parley is in the background.</p>
      <div className="notify-prompt__actions">
        <button type="button" className="btn btn--primary btn--small" onClick={async () => setPerm(await requestNotifications())}>
          Turn on notifications
        </button>
        <button
          type="button"
          className="btn btn--ghost btn--small"
          onClick={() => {
            try {
              localStorage.setItem(DISMISS_KEY, '1');
            } catch {
              // private mode: hidden for this page only
            }
            setHidden(true);
          }}
        >
          Not now
        </button>
      </div>
    </div>
  );
}

// The same switch for the profile page, with the state spelled out (blocked needs the browser's
// site settings: a page cannot ask again).
export function NotificationSwitch() {
  const [perm, setPerm] = useState<Permission>(() => notificationPermission());
  if (perm === 'unsupported') return <p className="muted">This browser cannot show notifications.</p>;
  if (perm === 'granted') return <p data-testid="notify-state">Notifications are on for this browser.</p>;
  if (perm === 'denied')
    return <p data-testid="notify-state">Notifications are blocked for this site. Allow them in your browser's site settings to turn them on.</p>;
  return (
    <button type="button" className="btn" onClick={async () => setPerm(await requestNotifications())}>
      <IconBell /> Turn on notifications
    </button>
  );
}
