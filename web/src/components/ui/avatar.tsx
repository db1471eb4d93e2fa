// The user's picture when they uploaded one (`avatar`, a content-addressed path served with long
// cache headers), else initials on a soft colour derived from the username; an optional presence
// dot. A picture that fails to load falls back to the initials.
import { useState } from 'react';
import { displayName, initials, userHue } from '../../lib/format';
import type { PresenceState, User } from '../../lib/types';

export function Avatar({
  user,
  size = 36,
  presence,
}: {
  user: Pick<User, 'username' | 'displayName'> & { avatar?: string | null };
  size?: number;
  presence?: PresenceState;
}) {
  const hue = userHue(user.username);
  const [broken, setBroken] = useState<string | null>(null);
  const src = user.avatar && user.avatar !== broken ? user.avatar : null;
  return (
    <span
      className={`avatar${src ? ' avatar--img' : ''}`}
      style={{
        width: size,
        height: size,
        fontSize: Math.round(size * 0.4),
        background: `hsl(${hue} 70% 92%)`,
        color: `hsl(${hue} 45% 32%)`,
      }}
      aria-hidden="true"
      data-testid={src ? 'avatar-img' : undefined}
    >
      {src ? (
        <img className="avatar__img" src={src} alt="" width={size} height={size} loading="lazy" decoding="async" onError={() => setBroken(src)} />
      ) : (
        initials(displayName(user))
      )}
      {presence && <span className={`presence-dot presence-dot--${presence} avatar__dot`} />}
    </span>
  );
}
