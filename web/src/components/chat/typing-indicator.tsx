// "Ana is typing…" under the message list, with three dots that bounce gently. The server sends
// the whole set of typers in every event, so this only renders what it is given. It keeps its
// height when nobody types so the composer does not jump, and announces changes politely to
// screen readers. Bots (issue 19) are "thinking…" rather than typing: a bot says so until its
// answer starts streaming.
import { displayName, thinkingText, typingText } from '../../lib/format';
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
  const named = (list: User[]) => list.map((u) => ({ username: u.username, displayName: nameOf(u) }));
  const people = users.filter((u) => !u.bot);
  const bots = users.filter((u) => u.bot);
  const text = [people.length || others ? typingText(named(people), others) : '', thinkingText(named(bots))]
    .filter(Boolean)
    .join(' · ');
  return (
    <div className={`typing-indicator${text ? ' typing-indicator--on' : ''}`} aria-live="polite" data-testid="typing" data-thinking={bots.length ? 'true' : undefined}>
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
