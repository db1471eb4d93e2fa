// Issue 18's protocol as the web app uses it (docs/protocol.md: chat.activity, chat.notify,
// chat.browse, me.update, user.updated, POST /api/password, POST/DELETE /api/avatar): the SDK's
// methods, events and HTTP helpers (clients/js), named here once for the pages. Nothing here
// keeps state.
import {
  AVATAR_MAX_BYTES,
  AVATAR_TYPES,
  changePassword as sdkChangePassword,
  deleteAvatar as sdkDeleteAvatar,
  uploadAvatar as sdkUploadAvatar,
} from '../../../clients/js/src/http.js';
import type {
  BrowseChat,
  ChatActivityEvent,
  ChatBrowseArgs,
  ChatBrowseResult,
  ChatNotifyEvent,
  ChatNotifyResult,
  NotifyLevel,
  User,
  UserUpdatedEvent,
} from '../../../clients/js/src/types.js';
import type { Realtime } from './realtime-types';

export type { BrowseChat, ChatActivityEvent, ChatNotifyEvent, NotifyLevel, UserUpdatedEvent };
export type BrowseResult = ChatBrowseResult;
// A user as issue 18 sends it: `avatar` is a path under /avatars/ or null (the SDK's User).
export type AvatarUser = User;

export { notifyLevelOf } from './live-rules';
export { nextBrowseArgs } from '../../../clients/js/src/browse.js';
export { AVATAR_MAX_BYTES, AVATAR_TYPES };

export function onChatActivity(rt: Realtime, cb: (e: ChatActivityEvent) => void): () => void {
  return rt.on('chat.activity', cb);
}

export function onChatNotify(rt: Realtime, cb: (e: ChatNotifyEvent) => void): () => void {
  return rt.on('chat.notify', cb);
}

export function onUserUpdated(rt: Realtime, cb: (e: UserUpdatedEvent) => void): () => void {
  return rt.on('user.updated', cb);
}

export function setNotify(rt: Realtime, chat: string, level: NotifyLevel): Promise<ChatNotifyResult> {
  return rt.setNotify(chat, level);
}

export function browseChats(rt: Realtime, args: ChatBrowseArgs): Promise<BrowseResult> {
  return rt.browse(args);
}

export function updateMe(rt: Realtime, displayName: string): Promise<{ user: AvatarUser }> {
  return rt.updateMe(displayName);
}

// Errors reject as the SDK's ParleyError ({ code, message, retryAfter? }).
export async function changePassword(password: string, newPassword: string): Promise<void> {
  await sdkChangePassword({ password, newPassword });
}

// POST /api/avatar with the image itself as the body.
export function uploadAvatar(file: Blob): Promise<AvatarUser> {
  return sdkUploadAvatar(file);
}

export function deleteAvatar(): Promise<AvatarUser> {
  return sdkDeleteAvatar();
}
