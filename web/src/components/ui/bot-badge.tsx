// The "BOT" badge shown next to a bot's name wherever names are shown (issue 19). Screen readers
// hear "(bot)"; the visible text is the short badge.
export function BotBadge({ user }: { user: { bot?: boolean } | null | undefined }) {
  if (!user?.bot) return null;
  return (
    <span className="bot-badge" title="This account is a bot" data-testid="bot-badge">
      <span aria-hidden="true">BOT</span>
      <span className="visually-hidden"> (bot)</span>
    </span>
  );
}
