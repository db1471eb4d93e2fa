// Shapes of the protocol objects the app uses (docs/protocol.md). The wire types are the SDK's
// (clients/js/src/types.ts), so the app and the SDK cannot drift apart; only the room's view of
// a message is the app's own.
import type {
  Chat as WireChat,
  Msg,
  Participant,
  Role,
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

// The message model of issue 17 (docs/protocol.md, "Message kinds"): every change is an entry
// of the chat's sequence. Declared here as optional fields so the app reads them the same way
// whether or not a server sends them.
export type MsgKind = 'text' | 'edit' | 'delete' | 'reaction' | 'notice' | 'stream.end';
export type NoticeAction = 'joined' | 'left' | 'removed' | 'renamed' | 'role' | 'created';
export interface Reaction {
  emoji: string;
  count: number;
  me: boolean;
}
export interface ReplyRef {
  seq: number;
  author: User;
  /** The first 100 characters of the current body; "" when deleted. */
  preview: string;
}
export interface MsgModel {
  kind?: MsgKind;
  ref?: number | null;
  replyTo?: ReplyRef | null;
  mentions?: number[];
  editedAt?: number | null;
  deleted?: boolean;
  reactions?: Reaction[];
  action?: NoticeAction;
  user?: User | null;
  by?: User | null;
  title?: string;
  role?: Role;
}
/** A message (or entry) with the issue 17 fields, as the server sends it. */
export type FullMsg = Msg & MsgModel;

// A chat as the app keeps it: chat.list adds unread and lastMessage, chat.get participants.
// Direct messages (`kind: "dm"`, issue 17) carry the other person as `peer`; their title is the
// peer's name. Issue 18 adds `notify` (the caller's notification level).
export interface Chat extends WireChat {
  unread?: number;
  /** Unread messages that mention the caller. */
  mentions?: number;
  notify?: 'all' | 'mentions' | 'none';
  kind?: 'group' | 'dm';
  peer?: User & { avatar?: string | null };
  lastMessage?: Msg | null;
  participants?: Participant[];
}

// A notice entry as the timeline shows it: who did what ("Cai joined").
export interface NoticeInfo {
  action: NoticeAction;
  user: User | null;
  by: User | null;
  title?: string;
  role?: Role;
}

// A message as the room shows it: confirmed ones carry a seq; our own unconfirmed sends are
// `pending` (waiting for the server) or `failed` (rejected or given up, with a retry button).
// Text messages carry their folded state (edited, deleted, reactions, the message replied to);
// notices (`kind: 'notice'`) are timeline items with `notice` set and an empty body.
export interface UiMsg {
  key: string; // clientMsgId for our own sends, else "s<seq>"
  seq: number | null;
  author: User;
  body: string;
  createdAt: number;
  clientMsgId: string | null;
  status: 'sent' | 'pending' | 'failed';
  error?: string;
  kind: 'text' | 'notice';
  replyTo: ReplyRef | null;
  mentions: number[];
  editedAt: number | null;
  deleted: boolean;
  reactions: Reaction[];
  notice: NoticeInfo | null;
  /** Issue 19: a streamed message still growing (shown with a cursor). */
  streaming: boolean;
  /** How a streamed message stands (null for an ordinary one). */
  streamState: 'streaming' | 'done' | 'error' | 'interrupted' | null;
}
