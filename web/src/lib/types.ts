// Shapes of the protocol objects the app uses (docs/protocol.md). The wire types are the SDK's
// (clients/js/src/types.ts), so the app and the SDK cannot drift apart; only the room's view of
// a message is the app's own.
import type {
  Chat as WireChat,
  Msg,
  Participant,
  User,
} from '../../../clients/js/src/types.js';
export type {
  Invitation,
  InvitationStatus,
  InvitePolicy,
  Msg,
  Participant,
  Presence,
  PresenceState,
  Role,
  SearchUser,
  User,
} from '../../../clients/js/src/types.js';

// A chat as the app keeps it: chat.list adds unread and lastMessage, chat.get participants.
// Issue 18 adds `mentions` (unread messages mentioning the caller) and `notify` (the caller's
// notification level); issue 17 `kind` and, for a DM, `peer`.
export interface Chat extends WireChat {
  unread?: number;
  mentions?: number;
  notify?: 'all' | 'mentions' | 'none';
  kind?: 'group' | 'dm';
  peer?: User & { avatar?: string | null };
  lastMessage?: Msg | null;
  participants?: Participant[];
}

// A message as the room shows it: confirmed ones carry a seq; our own unconfirmed sends are
// `pending` (waiting for the server) or `failed` (rejected or given up, with a retry button).
export interface UiMsg {
  key: string; // clientMsgId for our own sends, else "s<seq>"
  seq: number | null;
  author: User;
  body: string;
  createdAt: number;
  clientMsgId: string | null;
  status: 'sent' | 'pending' | 'failed';
  error?: string;
}
