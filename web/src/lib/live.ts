// Issue 18's protocol as the web app uses it (docs/protocol.md: chat.activity, chat.notify,
// chat.browse, me.update, user.updated, POST /api/password, POST/DELETE /api/avatar): typed
// wrappers over the realtime connection's raw request and event channels, so the pages name
// these ops in one place. Each wrapper's shape is the contract's; nothing here keeps state.
import type { Realtime } from './realtime-types';
import type { Msg, User } from './types';

export type NotifyLevel = 'all' | 'mentions' | 'none';

// A user as issue 18 sends it: `avatar` is a path under /avatars/ or null.
export type AvatarUser = User & { avatar?: string | null };

// Sent to every socket of every participant on each new entry, and to a reader's own sockets when
// their read marker moves (then lastMsg is unchanged and only the counts are new).
export interface ChatActivityEvent {
  chat: string;
  lastMsg: Msg | null;
  unread: number;
  mentions: number;
  lastActivity: number;
  seq: number;
  /** This entry mentions the recipient, or the chat is a DM. */
  mentioned: boolean;
}

export interface ChatNotifyEvent {
  chat: string;
  level: NotifyLevel;
}

export interface UserUpdatedEvent {
  user: AvatarUser;
}

export interface BrowseChat {
  slug: string;
  title: string;
  participantCount: number;
  lastActivity: number;
  joined: boolean;
}

export interface BrowseResult {
  chats: BrowseChat[];
  hasMore: boolean;
}

export { notifyLevelOf } from './live-rules';

export function onChatActivity(rt: Realtime, cb: (e: ChatActivityEvent) => void): () => void {
  return rt.onRaw('chat.activity', (p) => cb(p as unknown as ChatActivityEvent));
}

export function onChatNotify(rt: Realtime, cb: (e: ChatNotifyEvent) => void): () => void {
  return rt.onRaw('chat.notify', (p) => cb(p as unknown as ChatNotifyEvent));
}

export function onUserUpdated(rt: Realtime, cb: (e: UserUpdatedEvent) => void): () => void {
  return rt.onRaw('user.updated', (p) => cb(p as unknown as UserUpdatedEvent));
}

export function setNotify(rt: Realtime, chat: string, level: NotifyLevel): Promise<ChatNotifyEvent> {
  return rt.requestRaw('chat.notify', { chat, level }) as Promise<ChatNotifyEvent>;
}

export function browseChats(rt: Realtime, args: { q?: string; before?: number; chat?: string; limit?: number }): Promise<BrowseResult> {
  const a: Record<string, unknown> = {};
  if (args.q) a.q = args.q;
  if (args.before !== undefined) a.before = args.before;
  if (args.chat !== undefined) a.chat = args.chat;
  if (args.limit !== undefined) a.limit = args.limit;
  return rt.requestRaw('chat.browse', a) as Promise<BrowseResult>;
}

export function updateMe(rt: Realtime, displayName: string): Promise<{ user: AvatarUser }> {
  return rt.requestRaw('me.update', { displayName }) as Promise<{ user: AvatarUser }>;
}

// HTTP errors as the SDK reports them: { code, message } from the server's error body.
export interface HttpError {
  code: string;
  message: string;
  status: number;
}

async function http<T>(method: string, path: string, body: BodyInit | undefined, type: string | undefined): Promise<T | null> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      ...(type ? { headers: { 'content-type': type } } : {}),
      ...(body !== undefined ? { body } : {}),
    });
  } catch (err) {
    throw { code: 'unavailable', message: `Network error: ${(err as Error)?.message ?? err}`, status: 0 } satisfies HttpError;
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string } } | null)?.error;
    throw { code: e?.code ?? (res.status === 413 ? 'too_large' : 'internal'), message: e?.message ?? `HTTP ${res.status}`, status: res.status } satisfies HttpError;
  }
  return json as T | null;
}

// POST /api/password: 204; the server ends every other session of the user.
export async function changePassword(password: string, newPassword: string): Promise<void> {
  await http('POST', '/api/password', JSON.stringify({ password, newPassword }), 'application/json');
}

export const AVATAR_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export const AVATAR_MAX_BYTES = 1024 * 1024;

// POST /api/avatar with the image itself as the body.
export async function uploadAvatar(file: Blob): Promise<AvatarUser> {
  const r = await http<{ user: AvatarUser }>('POST', '/api/avatar', file, file.type);
  return r!.user;
}

export async function deleteAvatar(): Promise<AvatarUser> {
  const r = await http<{ user: AvatarUser }>('DELETE', '/api/avatar', undefined, undefined);
  return r!.user;
}
