// The newest copy of each user whose profile changed while the app is open (`user.updated`,
// and our own me.update / avatar replies). Messages, participants and list previews carry the
// author as of when they were loaded; components pass those through fresh() so a new display
// name or avatar shows everywhere at once, without reloading history.
import { useCallback, useSyncExternalStore } from 'react';
import type { AvatarUser } from './live';

const users = new Map<number, AvatarUser>();
const listeners = new Set<() => void>();
let version = 0;

export function putUser(u: AvatarUser): void {
  const prev = users.get(u.id);
  users.set(u.id, prev ? { ...prev, ...u } : u);
  version++;
  for (const l of listeners) l();
}

export function clearUsers(): void {
  users.clear();
  version++;
  for (const l of listeners) l();
}

function subscribe(cb: () => void) {
  listeners.add(cb);
  return () => {
    listeners.delete(cb);
  };
}

// u with the newest profile fields known for its id (the same object when nothing changed).
export function fresh<T extends { id: number }>(u: T): T {
  const n = users.get(u.id);
  return n ? { ...u, username: n.username, displayName: n.displayName, avatar: n.avatar ?? null } : u;
}

// fresh(u): u with the newest profile fields known for its id (same object when nothing changed).
// The returned function changes identity whenever a profile changes, so memos depending on it rerun.
export function useFreshUser(): <T extends { id: number }>(u: T) => T {
  const v = useSyncExternalStore(subscribe, () => version);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  return useCallback(<T extends { id: number }>(u: T): T => fresh(u), [v]);
}
