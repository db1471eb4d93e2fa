// The realtime surface the web app relies on. lib/realtime-sdk.ts implements it on top of the SDK
// (clients/js); hooks and pages use only this. Every op, reply and event is the SDK's type, so a
// request's arguments and result, and each event's payload, are checked by the compiler.
import type {
  ChatBrowseArgs,
  ChatBrowseResult,
  ChatNotifyResult,
  NotifyLevel,
  MsgDeltaEvent,
  Op,
  OpArgs,
  OpResults,
  ServerEventName,
  ServerEvents,
  SubResult,
  UserResult,
} from '../../../clients/js/src/types.js';
import type { Chat, FullMsg, Msg, User } from './types';

export type ConnState = 'connecting' | 'online' | 'reconnecting' | 'offline';

// What a failed request rejects with: the SDK's ParleyError has these fields.
export interface ProtoError {
  code: string;
  message: string;
  /** With `rate_limited`: milliseconds until a retry may succeed. */
  retryAfter?: number;
}

// One of our own messages not yet confirmed by the server.
export interface PendingSend {
  clientMsgId: string;
  chat: string;
  body: string;
  createdAt: number;
  status: 'pending' | 'failed';
  error?: ProtoError;
}

// What a chat subscription reports: the `sub` reply (first time and after every resume), each
// live message, and a reset (too much was missed: drop the cache and page back).
export type SubReply = SubResult;

export interface SubHandlers {
  onSubscribed(reply: SubReply, resumed: boolean): void;
  onMsg(msg: Msg): void;
  onError(err: ProtoError): void;
  /** Issue 19: bytes appended to a streaming message of the chat. */
  onDelta?(d: MsgDeltaEvent): void;
}

export interface Realtime {
  readonly state: ConnState;
  readonly user: User | null;
  onState(cb: (s: ConnState) => void): () => void;
  request<K extends Op>(op: K, args: OpArgs[K]): Promise<OpResults[K]>;
  on<K extends ServerEventName>(ev: K, cb: (payload: ServerEvents[K]) => void): () => void;
  // Issue 18: the SDK's own methods (chat.notify, chat.browse, me.update).
  setNotify(chat: string, level: NotifyLevel): Promise<ChatNotifyResult>;
  browse(args: ChatBrowseArgs): Promise<ChatBrowseResult>;
  updateMe(displayName: string): Promise<UserResult>;
  // Called after every (re)connection once the socket is online again.
  onReconnect(cb: () => void): () => void;
  subscribe(chat: string, h: SubHandlers): () => void;
  // A fresh `sub` (since the last seq): its `streams` fill a gap in a stream's deltas.
  resync(chat: string): void;
  // Returns the clientMsgId. `replyTo` is the seq of the message answered.
  send(chat: string, body: string, opts?: { replyTo?: number }): string;
  // Issue 17: each answers with the new entry (react: null when the toggle changed nothing).
  editMessage(chat: string, seq: number, body: string): Promise<FullMsg>;
  deleteMessage(chat: string, seq: number): Promise<FullMsg>;
  react(chat: string, seq: number, emoji: string, on: boolean): Promise<FullMsg | null>;
  // The direct-message chat with this user (created on first use).
  openDm(username: string): Promise<Chat>;
  retry(chat: string, clientMsgId: string): void;
  discard(chat: string, clientMsgId: string): void;
  pending(chat: string): PendingSend[];
  onPending(chat: string, cb: (p: PendingSend[]) => void): () => void;
  // The user typed (true) or cleared / left the composer (false). Refresh every 3 s is handled here.
  typing(chat: string, on: boolean): void;
  close(): void;
}
