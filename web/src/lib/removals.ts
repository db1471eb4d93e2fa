// Chats this user was removed from, as seen live (the `removed` event), kept per user in
// localStorage. After a reload the server cannot tell us: chat.get answers a removed user like
// anyone who never joined (a public chat with role null, a private one not_found), and only a
// chat.join attempt says "removed". With this record the room says "You were removed; ask for an
// invitation" at once instead of offering a Join that fails. Accepting an invitation or joining
// again clears it. Server change that would make this record unnecessary: chat.get could tell a
// removed caller so (e.g. `"removed": {"by", "at"}` in its reply for a public chat, and a
// `removed` error code instead of not_found for a private one).
import type { User } from './types';

export interface Removal {
  by: Pick<User, 'id' | 'username' | 'displayName'> | null;
  at: number;
}

const MAX = 200;

function key(userId: number) {
  return `parley.removed.${userId}`;
}

function read(userId: number): Record<string, Removal> {
  try {
    const v = JSON.parse(localStorage.getItem(key(userId)) || '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

function write(userId: number, all: Record<string, Removal>) {
  try {
    const entries = Object.entries(all).sort((a, b) => a[1].at - b[1].at).slice(-MAX);
    if (entries.length === 0) localStorage.removeItem(key(userId));
    else localStorage.setItem(key(userId), JSON.stringify(Object.fromEntries(entries)));
  } catch {
    // storage full or disabled: only the live banner then
  }
}

export function removalOf(userId: number | undefined, chat: string): Removal | null {
  if (userId === undefined) return null;
  return read(userId)[chat] ?? null;
}

export function recordRemoval(userId: number | undefined, chat: string, by: Removal['by']) {
  if (userId === undefined) return;
  const all = read(userId);
  all[chat] = { by: by ? { id: by.id, username: by.username, displayName: by.displayName } : null, at: Date.now() };
  write(userId, all);
}

export function clearRemoval(userId: number | undefined, chat: string) {
  if (userId === undefined) return;
  const all = read(userId);
  if (!(chat in all)) return;
  delete all[chat];
  write(userId, all);
}
