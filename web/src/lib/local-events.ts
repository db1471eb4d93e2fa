// Changes this tab made that the server announces to no one (a read marker moved, a chat was
// created): the chat list listens so its unread counts and rows stay right.
type Listener = () => void;
const listeners = new Set<Listener>();

export function onChatsChanged(cb: Listener): () => void {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

export function chatsChanged() {
  for (const cb of [...listeners]) cb();
}
