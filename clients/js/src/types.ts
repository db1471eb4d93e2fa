// Types for every object, request, reply and event of Parley protocol v1 (docs/protocol.md).
// Times are Unix milliseconds; durations in requests (`ttl`) are seconds. Fields may be added by
// the server at any time, never renamed: these interfaces list what the protocol promises.

/** A user as the server sends it everywhere (`hello`, `msg.author`, participants...). */
export interface User {
  id: number;
  username: string;
  displayName: string;
  /** Path of the user's picture (`/avatars/<hash>.<ext>`, cacheable forever) or null. Filled in
   * `hello`, `/api/me`, `chat.get` participants, `users.search` and `user.updated`; null in
   * message authors and other embedded users. */
  avatar?: string | null;
  /** True for a bot account (issue 19); false for people. Absent from older servers. */
  bot?: boolean;
}

/** A participant's `chat.notify` level. Default: "all" for a DM, "mentions" for a group chat. */
export type NotifyLevel = 'all' | 'mentions' | 'none';

/** The short user reference inside a `presence` object. */
export interface UserRef {
  id: number;
  username: string;
}

export type Role = 'owner' | 'admin' | 'member';
export type InvitePolicy = 'owner' | 'admins' | 'members';

/** A chat. `role` is the caller's role (absent in `chat.updated` events). */
export interface Chat {
  slug: string;
  title: string;
  isPublic: boolean;
  /** null = no cap. Counts every participant, the owner included. */
  maxParticipants: number | null;
  invitePolicy: InvitePolicy;
  archived: boolean;
  createdAt: number;
  lastActivity: number;
  lastSeq: number;
  participantCount: number;
  role?: Role | null;
  /** Users with the chat open now: the first ones (at most 100 by default, PARLEY_SUB_PRESENCE_MAX). */
  activeUsers: User[];
  /** How many users have the chat open (activeUsers may hold only the first of them). */
  activeCount?: number;
  /**
   * Whether the caller may invite, when the server says so. Not sent by the server yet: read it
   * through canInvite() (rules.ts), which falls back to the documented invitePolicy rule.
   */
  canInvite?: boolean;
  /** "dm": a direct message between two users (issue 17); absent from older servers. */
  kind?: ChatKind;
  /** A DM's other participant; its `title` is their displayName. */
  peer?: User;
  /** The caller's notification level (in `chat.list`, and `chat.get` for a participant). */
  notify?: NotifyLevel;
  /** In a `sub` reply: the caller's unread count as of `lastSeq` (issue 15: the client counts on
   * from it, since a subscribed socket gets no chat.activity for new messages). */
  unread?: number;
  /** In a `sub` reply: the caller's unread mentions as of `lastSeq`. */
  mentions?: number;
}

export type ChatKind = 'group' | 'dm';

/** A chat in `chat.list`: with the unread count and the last message. */
export interface ChatListItem extends Chat {
  /** Messages after the read marker (your own messages are never unread). */
  unread: number;
  /** Unread text messages that mention you. */
  mentions?: number;
  lastMessage: Msg | null;
}

/** A participant in `chat.get` or `chat.members`, with their presence as of the reply. */
export interface Participant extends User {
  role: Role;
  joinedAt: number;
  state?: PresenceState;
  lastSeen?: number | null;
}

/** What an entry of a chat's sequence is (issue 17): every change is one, with its own seq. */
export type MsgKind = 'text' | 'edit' | 'delete' | 'reaction' | 'notice' | 'stream.end';

/** How a streamed message stands (issue 19). */
export type StreamState = 'streaming' | 'done' | 'error' | 'interrupted';

/** A streamed text message's progress: `length` is the body's length in UTF-8 bytes. */
export interface StreamInfo {
  state: StreamState;
  length: number;
}
export type NoticeAction = 'joined' | 'left' | 'removed' | 'renamed' | 'role' | 'created';

export interface Reaction {
  emoji: string;
  count: number;
  /** You are among those who reacted. */
  me: boolean;
}

export interface ReplyRef {
  seq: number;
  author: User;
  /** The first 100 characters of the replied message's current body; "" once deleted. */
  preview: string;
}

/**
 * An entry of a chat's sequence. `seq` is per chat, starting at 1, gap-free. Text messages carry
 * their folded state (editedAt, deleted, reactions, replyTo); the other kinds change the message
 * `ref` names (see timeline.ts) or, for notices, tell what happened to the chat.
 */
export interface Msg {
  seq: number;
  chat: string;
  author: User;
  body: string;
  clientMsgId: string | null;
  createdAt: number;
  /** Absent from older servers: "text". */
  kind?: MsgKind;
  /** edit, delete, reaction: the seq of the message changed; else null. */
  ref?: number | null;
  /** User ids this message mentions. */
  mentions?: number[];
  /** text: when last edited (ms), or null. */
  editedAt?: number | null;
  /** text: true once deleted (body ""). */
  deleted?: boolean;
  /** text: in first-reaction order. */
  reactions?: Reaction[];
  /** text: the message it replies to, or null. */
  replyTo?: ReplyRef | null;
  /** reaction */
  emoji?: string;
  on?: boolean;
  /** text: true while a stream is open (issue 19): `body` is the text so far, deltas follow. */
  streaming?: boolean;
  /** text: null for an ordinary message; a streamed one's state and length. */
  stream?: StreamInfo | null;
  /** stream.end: how the stream ended (`ref` is the stream's seq, `body` its final text). */
  state?: Exclude<StreamState, 'streaming'>;
  /** notice */
  action?: NoticeAction;
  user?: User | null;
  by?: User | null;
  title?: string;
  role?: Role;
}

/** A user's aggregate presence, as others see it. */
export type PresenceState = 'online' | 'away' | 'offline';

/** What one socket reports about its page with the `presence` op. */
export type ClientPresenceState = 'active' | 'idle' | 'hidden';

export interface Presence {
  user: UserRef;
  state: PresenceState;
  /** When the user was last connected; null if never. */
  lastSeen: number | null;
}

export type InvitationStatus = 'pending' | 'accepted' | 'declined' | 'revoked' | 'expired';

export interface Invitation {
  id: number;
  /** The chat's slug. */
  chat: string;
  chatTitle: string;
  from: User;
  to: User;
  status: InvitationStatus;
  createdAt: number;
  expiresAt: number;
}

/** A `msg.search` result: the message, its chat, and the part of its body around the matches,
 * each match between U+0002 and U+0003 (split it with `snippetParts`, render the parts as text). */
export interface MsgSearchHit {
  chat: { slug: string; title: string; kind: string };
  msg: Msg;
  snippet: string;
}

/** A `users.search` hit. `participant` and `invited` are about the `chat` searched for. */
export interface SearchUser extends User {
  participant?: boolean;
  invited?: boolean;
}

// ------------------------------------------------------------------------------------------------
// Errors

export type ServerErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'chat_full'
  | 'expired'
  | 'rate_limited'
  | 'too_large'
  | 'unavailable'
  | 'internal';

/** The `error` object of a failed reply. */
export interface ErrorBody {
  code: ServerErrorCode | string;
  message: string;
  /** With `rate_limited`: milliseconds until a retry may succeed. */
  retryAfter?: number;
  /** With `conflict` from msg.stream.append: the stream's current length in bytes. */
  length?: number;
}

// ------------------------------------------------------------------------------------------------
// Requests: the arguments of every op (without the `id`/`op` envelope)

export interface ChatCreateArgs {
  /** 1-100 characters. */
  title: string;
  isPublic?: boolean;
  /** 2-10000; no cap by default. */
  maxParticipants?: number;
  slug?: string;
}

export interface ChatUpdateArgs {
  chat: string;
  title?: string;
  isPublic?: boolean;
  /** null removes the cap. */
  maxParticipants?: number | null;
  invitePolicy?: InvitePolicy;
}

export interface MsgSendArgs {
  chat: string;
  /** 1-16384 bytes, not only white space. */
  body: string;
  /** 1-64 of [A-Za-z0-9_.:-]. */
  clientMsgId?: string;
  /** The seq of the text message this one replies to. */
  replyTo?: number;
}

export interface MsgStreamStartArgs {
  chat: string;
  clientMsgId?: string;
  replyTo?: number;
}

export interface MsgStreamAppendArgs {
  chat: string;
  seq: number;
  /** 1-16384 bytes of UTF-8. */
  delta: string;
  /** Bytes (UTF-8) already appended: makes a retry idempotent. */
  offset: number;
}

export interface MsgStreamEndArgs {
  chat: string;
  seq: number;
  /** "done" by default. */
  state?: 'done' | 'error';
}

export interface MsgSearchArgs {
  /** Words (all must occur), "a phrase", a OR b, -word, word*: 1-256 bytes. */
  q: string;
  /** Only this chat. */
  chat?: string;
  /** Results already seen (the next page starts after them); 0 or absent: the first page. */
  before?: number;
  /** 1-50, default 20. */
  limit?: number;
}

export interface MsgHistoryArgs {
  chat: string;
  /** A seq: messages before it. Newest when absent. */
  before?: number;
  /** 1-200, default 50. */
  limit?: number;
}

export interface SubArgs {
  chat: string;
  /** Replay every message with seq > since. */
  since?: number;
}

export interface ChatBrowseArgs {
  /** 1-64 bytes: the start of a word of the title (any case). */
  q?: string;
  /** A `lastActivity`: chats less recently active than it (the next page). */
  before?: number;
  /** With `before`: the slug of the previous page's last chat, so that chats of the same
   * `lastActivity` after it are listed too (never skipped, never repeated). */
  chat?: string;
  /** 1-100, default 30. */
  limit?: number;
}

export interface ChatMembersArgs {
  chat: string;
  /** A user id: the page starts after it (the last member's `id` of the previous page). */
  after?: number;
  /** 1-200, default 100. */
  limit?: number;
}

export interface InviteCreateArgs {
  chat: string;
  /** username */
  user: string;
  /** seconds, 1 s to 30 days, default 7 days */
  ttl?: number;
}

/** Arguments of each op. */
export interface OpArgs {
  auth: { token: string };
  ping: Record<string, never>;
  'chat.create': ChatCreateArgs;
  'chat.get': { chat: string; limit?: number };
  'chat.members': ChatMembersArgs;
  'chat.list': Record<string, never>;
  'chat.join': { chat: string };
  'chat.update': ChatUpdateArgs;
  'chat.leave': { chat: string };
  'chat.remove': { chat: string; user: string };
  'chat.setRole': { chat: string; user: string; role: Role };
  'msg.send': MsgSendArgs;
  'msg.history': MsgHistoryArgs;
  'msg.stream.start': MsgStreamStartArgs;
  'msg.stream.append': MsgStreamAppendArgs;
  'msg.stream.end': MsgStreamEndArgs;
  'msg.edit': { chat: string; seq: number; body: string };
  'msg.delete': { chat: string; seq: number };
  react: { chat: string; seq: number; emoji: string; on: boolean };
  'dm.open': { user: string };
  sub: SubArgs;
  unsub: { chat: string };
  read: { chat: string; seq: number };
  typing: { chat: string; on: boolean };
  presence: { state: ClientPresenceState };
  'users.search': { q: string; chat?: string };
  'msg.search': MsgSearchArgs;
  'invite.create': InviteCreateArgs;
  'invite.accept': { invitation: number };
  'invite.decline': { invitation: number };
  'invite.revoke': { invitation: number };
  'invite.list': Record<string, never>;
  'chat.notify': { chat: string; level: NotifyLevel };
  'chat.browse': ChatBrowseArgs;
  'me.update': { displayName: string };
}

// ------------------------------------------------------------------------------------------------
// Replies: the result of every op (without `id` and `ok`)

export interface AuthResult {
  user: User;
}
export interface PingResult {
  now: number;
}
export interface ChatResult {
  chat: Chat;
}
export interface ChatGetResult {
  chat: Chat;
  /** Every participant, oldest first; with `limit`, the first page by user id. */
  participants: Participant[];
  /** With `limit`: more participants follow (page on with `chat.members`). */
  participantsMore?: boolean;
}
export interface ChatMembersResult {
  chat: string;
  /** Participants by user id, with role and presence. */
  members: Participant[];
  hasMore: boolean;
  participantCount: number;
}
export interface ChatListResult {
  chats: ChatListItem[];
  /** Your pending incoming invitations. */
  invitations: Invitation[];
}
export interface ChatLeaveResult {
  chat: string;
  /** True when the last participant left. */
  archived: boolean;
}
export interface ChatRemoveResult {
  chat: string;
  user: User;
}
export interface ChatSetRoleResult {
  chat: string;
  user: User;
  role: Role;
}
export interface MsgSendResult {
  msg: Msg;
  /** True when the clientMsgId had been stored before: nothing new was stored. */
  duplicate: boolean;
}
export interface MsgStreamAppendResult {
  seq: number;
  /** The body's length in bytes after the append. */
  length: number;
}
export interface MsgStreamEndResult {
  /** The `stream.end` entry. */
  msg: Msg;
}
/** The entry an edit, delete or react appended; null when a react changed nothing. */
export interface MsgEntryResult {
  msg: Msg | null;
}
export interface MsgHistoryResult {
  /** Oldest first. */
  msgs: Msg[];
  hasMore: boolean;
}
export interface SubResult {
  chat: Chat;
  /** With `since`: every message after it, oldest first (only the newest 200 with `reset`). */
  msgs: Msg[];
  lastSeq: number;
  /** True when more than 200 messages were missed: drop the cache and page back with history. */
  reset: boolean;
  /** A presence for each participant who is not offline (the first ones: at most 100 by
   * default). A participant not listed is offline, or beyond the first page when
   * `presenceMore`: page with `chat.members` (Client.members) for everyone's state. */
  presence: Presence[];
  /** How many participants are not offline. */
  online?: number;
  /** True when `online` is more than `presence` holds. */
  presenceMore?: boolean;
  /** Users typing now. */
  typing: User[];
  /** How many more are typing beyond `typing`. */
  typingOthers?: number;
  /** Users with the chat open now (the first ones: at most 100 by default). */
  activeUsers: User[];
  /** Issue 19: every message of the chat still streaming (folded, body so far), whatever
   * `since` is. Deltas beyond each one's length follow as `msg.delta` events. */
  streams?: Msg[];
  /** How many users have the chat open. */
  activeCount?: number;
}
export interface UnsubResult {
  chat: string;
}
export interface ReadResult {
  chat: string;
  /** The read marker after the call. */
  seq: number;
}
export type TypingResult = Record<string, never>;
export interface PresenceResult {
  /** The user's aggregate presence after the change. */
  state: PresenceState;
}
export interface MsgSearchResult {
  /** Best match first. */
  results: MsgSearchHit[];
  hasMore: boolean;
}
export interface UsersSearchResult {
  users: SearchUser[];
}
export interface InviteCreateResult {
  invitation: Invitation;
  /** False when a pending invitation existed and is returned. */
  created: boolean;
}
export interface InviteAcceptResult {
  invitation: Invitation;
  chat: Chat;
}
export interface InvitationResult {
  invitation: Invitation;
}
export interface InviteListResult {
  incoming: Invitation[];
  outgoing: Invitation[];
}
export interface ChatNotifyResult {
  chat: string;
  level: NotifyLevel;
}
/** A public chat in the directory. */
export interface BrowseChat {
  slug: string;
  title: string;
  participantCount: number;
  lastActivity: number;
  /** The caller is a participant. */
  joined: boolean;
}
export interface ChatBrowseResult {
  /** Most recently active first. */
  chats: BrowseChat[];
  hasMore: boolean;
}
export interface UserResult {
  user: User;
}

/** Result of each op. */
export interface OpResults {
  auth: AuthResult;
  ping: PingResult;
  'chat.create': ChatResult;
  'chat.get': ChatGetResult;
  'chat.members': ChatMembersResult;
  'chat.list': ChatListResult;
  'chat.join': ChatResult;
  'chat.update': ChatResult;
  'chat.leave': ChatLeaveResult;
  'chat.remove': ChatRemoveResult;
  'chat.setRole': ChatSetRoleResult;
  'msg.send': MsgSendResult;
  'msg.history': MsgHistoryResult;
  'msg.stream.start': MsgSendResult;
  'msg.stream.append': MsgStreamAppendResult;
  'msg.stream.end': MsgStreamEndResult;
  'msg.edit': MsgEntryResult;
  'msg.delete': MsgEntryResult;
  react: MsgEntryResult;
  'dm.open': ChatResult;
  sub: SubResult;
  unsub: UnsubResult;
  read: ReadResult;
  typing: TypingResult;
  presence: PresenceResult;
  'users.search': UsersSearchResult;
  'msg.search': MsgSearchResult;
  'invite.create': InviteCreateResult;
  'invite.accept': InviteAcceptResult;
  'invite.decline': InvitationResult;
  'invite.revoke': InvitationResult;
  'invite.list': InviteListResult;
  'chat.notify': ChatNotifyResult;
  'chat.browse': ChatBrowseResult;
  'me.update': UserResult;
}

export type Op = keyof OpArgs;

// ------------------------------------------------------------------------------------------------
// Server events (frames with `ev`)

export interface HelloEvent {
  user: User;
}
export interface MsgEvent {
  chat: string;
  msg: Msg;
}
/** A message mentions you, in a chat this socket is not subscribed to. */
export interface MentionEvent {
  chat: string;
  msg: Msg;
}
export interface ChatUpdatedEvent {
  /** The chat object, without `role`. */
  chat: Chat;
}
export interface ParticipantJoinedEvent {
  chat: string;
  user: User;
  role: Role;
  participantCount: number;
  /** The joiner's presence: the others share a chat with them from now on. */
  presence?: Presence;
  /** Several joins of a big chat batched into one event: every joiner, in order (the last is
   * also in user/role/presence). The client emits one event per joiner and removes this field. */
  users?: Array<{ user: User; role: Role; presence?: Presence }>;
}
export interface ParticipantLeftEvent {
  chat: string;
  user: User;
  participantCount: number;
  /** When ownership moved. */
  newOwner?: User;
}
export interface ParticipantRemovedEvent {
  chat: string;
  user: User;
  by: User;
  participantCount: number;
}
export interface ParticipantUpdatedEvent {
  chat: string;
  user: User;
  role: Role;
}
export interface RemovedEvent {
  chat: string;
  by: User;
}
export type InviteAction = 'received' | 'accepted' | 'declined' | 'revoked' | 'expired';
export interface InviteEvent {
  action: InviteAction;
  invitation: Invitation;
}
export interface TypingEvent {
  chat: string;
  /** The whole current set of typers (at most 5 listed). */
  users: User[];
  /** How many more are typing. */
  others: number;
}
export type PresenceEvent = Presence;
export interface ChatActiveEvent {
  chat: string;
  /** The first users with the chat open (at most 100 by default, PARLEY_SUB_PRESENCE_MAX). */
  activeUsers: User[];
  /** How many have it open. */
  activeCount: number;
}
/** To the creator's sockets (the creating one included): other tabs add the chat to their list. */
export interface ChatCreatedEvent {
  chat: Chat;
}
/** To the reader's own sockets only: the read marker moved (unread counts change). */
export interface ReadEvent {
  chat: string;
  /** The reader's marker after the change. */
  seq: number;
}

/** To every socket of every participant on each new message (subscribed or not), and to the
 * reader's sockets when their read marker moved: what the chat's row in the list shows now. */
export interface ChatActivityEvent {
  chat: string;
  /** The newest message (the new one; after a read, the chat's newest). */
  lastMsg: Msg | null;
  /** The recipient's unread count after their read marker. */
  unread: number;
  /** Unread messages that mention the recipient. */
  mentions: number;
  lastActivity: number;
  /** The seq of lastMsg. */
  seq: number;
  /** This message mentions the recipient, or the chat is a DM. */
  mentioned: boolean;
}
/** Issue 19: bytes appended to a streaming message, to the chat's subscribers, in offset order.
 * `offset` is the body's length in UTF-8 bytes before this delta. */
export interface MsgDeltaEvent {
  chat: string;
  seq: number;
  offset: number;
  delta: string;
}
/** To the user's other sockets after a `chat.notify`. */
export interface ChatNotifyEvent {
  chat: string;
  level: NotifyLevel;
}
/** A user's name or avatar changed: to their sockets and everyone who shares a chat with them. */
export interface UserUpdatedEvent {
  user: User;
}

/** Payload of each server event, by its `ev` name. */
export interface ServerEvents {
  hello: HelloEvent;
  msg: MsgEvent;
  'chat.updated': ChatUpdatedEvent;
  'participant.joined': ParticipantJoinedEvent;
  'participant.left': ParticipantLeftEvent;
  'participant.removed': ParticipantRemovedEvent;
  'participant.updated': ParticipantUpdatedEvent;
  removed: RemovedEvent;
  invite: InviteEvent;
  typing: TypingEvent;
  presence: PresenceEvent;
  'chat.active': ChatActiveEvent;
  'chat.created': ChatCreatedEvent;
  read: ReadEvent;
  mention: MentionEvent;
  'chat.activity': ChatActivityEvent;
  'chat.notify': ChatNotifyEvent;
  'user.updated': UserUpdatedEvent;
  'msg.delta': MsgDeltaEvent;
}

export type ServerEventName = keyof ServerEvents;

/** A raw frame with `ev`, as received. */
export type RawEvent = { ev: string } & Record<string, unknown>;

// ------------------------------------------------------------------------------------------------
// WebSocket close codes (docs/protocol.md)

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  UNAUTHORIZED: 4001,
  TOO_SLOW: 4008,
  TOO_MANY_CONNECTIONS: 4029,
} as const;
