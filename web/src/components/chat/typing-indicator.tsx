// "Ana is typing…" under the message list, with three dots that bounce gently. The server sends
// the whole set of typers in every event, so this only renders what it is given. It keeps its
// height when nobody types so the composer does not jump, and announces changes politely to
// screen readers.
import { displayName, typingText } from '../../lib/format';
import type { User } from '../../lib/types';

export function TypingIndicator({
  users,
  others = 0,
  nameOf = displayName,
}: {
  users: User[];
  others?: number;
  nameOf?: (u: User) => string;
}) {
  const text = typingText(
    users.map((u) => ({ username: u.username, displayName: nameOf(u) })),
    others,
  );
  return (
    <div className={`typing-indicator${text ? ' typing-indicator--on' : ''}`} aria-live="polite" data-testid="typing">
      {text && (
        <>
          <span className="typing-dots" aria-hidden="true">
            <span />
            <span />
            <span />
          </span>
          <span className="typing-indicator__text">{text}</span>
        </>
      )}
    </div>
  );
}
