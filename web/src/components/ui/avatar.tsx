// Initials on a soft colour derived from the username, with an optional presence dot.
import { displayName, initials, userHue } from '../../lib/format';
import type { PresenceState, User } from '../../lib/types';

export function Avatar({
  user,
  size = 36,
  presence,
}: {
  user: Pick<User, 'username' | 'displayName'>;
  size?: number;
  presence?: PresenceState;
}) {
  const hue = userHue(user.username);
  return (
    <span
      className="avatar"
      style={{
        width: size,
        height: size,
        fontSize: Math.round(size * 0.4),
        background: `hsl(${hue} 70% 92%)`,
        color: `hsl(${hue} 45% 32%)`,
      }}
      aria-hidden="true"
    >
      {initials(displayName(user))}
      {presence && <span className={`presence-dot presence-dot--${presence} avatar__dot`} />}
    </span>
  );
}
