// The reaction picker's emoji: a short fixed set (a chat app's everyday reactions, not the whole
// Unicode list, so the picker stays one small grid) and the person's recent picks, kept in
// localStorage per user so they follow them across chats and reloads.
export interface EmojiChoice {
  emoji: string;
  name: string;
}

export const EMOJI: EmojiChoice[] = [
  { emoji: '👍', name: 'thumbs up' },
  { emoji: '❤️', name: 'heart' },
  { emoji: '😂', name: 'laughing' },
  { emoji: '🎉', name: 'party' },
  { emoji: '😮', name: 'surprised' },
  { emoji: '😢', name: 'sad' },
  { emoji: '🙏', name: 'thanks' },
  { emoji: '👀', name: 'eyes' },
  { emoji: '✅', name: 'done' },
  { emoji: '🔥', name: 'fire' },
  { emoji: '👎', name: 'thumbs down' },
  { emoji: '🚀', name: 'rocket' },
  { emoji: '🤔', name: 'thinking' },
  { emoji: '👏', name: 'clapping' },
  { emoji: '💯', name: 'hundred' },
  { emoji: '😅', name: 'sweat smile' },
];

const RECENT_MAX = 8;

export function emojiName(emoji: string): string {
  return EMOJI.find((e) => e.emoji === emoji)?.name ?? emoji;
}

function key(userId: number | undefined) {
  return `parley.emoji.recent.${userId ?? 'anon'}`;
}

export function recentEmoji(userId: number | undefined): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(key(userId)) || '[]');
    return Array.isArray(v) ? v.filter((e): e is string => typeof e === 'string').slice(0, RECENT_MAX) : [];
  } catch {
    return [];
  }
}

// Most recent first, no repeats.
export function rememberEmoji(userId: number | undefined, emoji: string): void {
  const next = [emoji, ...recentEmoji(userId).filter((e) => e !== emoji)].slice(0, RECENT_MAX);
  try {
    localStorage.setItem(key(userId), JSON.stringify(next));
  } catch {
    // storage full or disabled: recents are a convenience
  }
}
