// What a notice entry says in the timeline ("Cai joined", "Ana renamed the chat to “Plans”").
// `nameOf` names people the way the room does; the signed-in user is "You".
import type { NoticeInfo, User } from './types';

const ROLE_TEXT = { owner: 'the owner', admin: 'an admin', member: 'a member' } as const;

export function noticeText(n: NoticeInfo, selfId: number | undefined, nameOf: (u: User) => string): string {
  const who = (u: User | null | undefined, fallback = 'Someone') => (!u ? fallback : u.id === selfId ? 'You' : nameOf(u));
  const whom = (u: User | null | undefined) => (!u ? 'someone' : u.id === selfId ? 'you' : nameOf(u));
  switch (n.action) {
    case 'joined':
      return n.by && n.user && n.by.id !== n.user.id ? `${who(n.by)} added ${whom(n.user)}` : `${who(n.user)} joined`;
    case 'left':
      return `${who(n.user)} left`;
    case 'removed':
      return n.by ? `${who(n.by)} removed ${whom(n.user)}` : `${who(n.user)} was removed`;
    case 'renamed':
      return `${who(n.by ?? n.user)} renamed the chat to “${n.title ?? ''}”`;
    case 'role':
      return `${who(n.by)} made ${whom(n.user)} ${n.role ? ROLE_TEXT[n.role] : 'a member'}`;
    case 'created':
      return `${who(n.by ?? n.user)} created the chat${n.title ? ` “${n.title}”` : ''}`;
    default:
      return `${who(n.user)} ${String(n.action)}`;
  }
}
