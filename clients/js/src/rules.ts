// Permission rules a client needs to decide what to offer (an Invite button), stated once.
// The server is the authority: it enforces every rule on every op, and where it sends a
// capability with the chat (`canInvite`) that answer is used as is. Until it does, the documented
// rule (docs/protocol.md, `invite.create`: "allowed per the chat's invitePolicy") is computed here
// and nowhere else, so a client cannot drift from it in several places.

import type { Chat, InvitePolicy, Role } from './types.js';

/**
 * Whether `role` may invite under `policy`: `"owner"` the owner only, `"admins"` the owner and
 * admins, `"members"` every participant. A non-participant (null) never may.
 */
export function invitePolicyAllows(policy: InvitePolicy, role: Role | null | undefined): boolean {
  if (!role) return false;
  switch (policy) {
    case 'owner':
      return role === 'owner';
    case 'admins':
      return role === 'owner' || role === 'admin';
    case 'members':
      return true;
    default:
      return false; // a policy this client does not know: offer nothing, the server decides
  }
}

/**
 * Whether the caller may invite to `chat` (a `chat.get`, `chat.list` or `sub` chat, which carry
 * the caller's `role`): the server's `canInvite` when present, else the invitePolicy rule.
 * `chat` is borrowed.
 */
export function canInvite(chat: Pick<Chat, 'invitePolicy' | 'role' | 'canInvite'> | null | undefined): boolean {
  if (!chat) return false;
  if (typeof chat.canInvite === 'boolean') return chat.canInvite;
  return invitePolicyAllows(chat.invitePolicy, chat.role);
}
