// The realtime surface the web app relies on. lib/realtime.ts implements it on top of the SDK
// (clients/js); hooks and pages use only this, so the SDK's details stay in one file.
import type { Msg, User } from './types';

export type ConnState = 'connecting' | 'online' | 'reconnecting' | 'offline';

export interface ProtoError {
  code: string;
  message: string;
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
export interface SubReply {
  chat: any;
  msgs: Msg[];
  lastSeq: number;
  reset?: boolean;
  presence?: any[];
  typing?: User[];
  typingOthers?: number;
  activeUsers?: User[];
}

export interface SubHandlers {
  onSubscribed(reply: SubReply, resumed: boolean): void;
  onMsg(msg: Msg): void;
  onError(err: ProtoError): void;
}

export interface Realtime {
  readonly state: ConnState;
  readonly user: User | null;
  onState(cb: (s: ConnState) => void): () => void;
  request<T = any>(op: string, args?: Record<string, unknown>): Promise<T>;
  on(ev: string, cb: (payload: any) => void): () => void;
  // Called after every (re)connection once the socket is online again.
  onReconnect(cb: () => void): () => void;
  subscribe(chat: string, h: SubHandlers): () => void;
  send(chat: string, body: string): string; // returns the clientMsgId
  retry(chat: string, clientMsgId: string): void;
  discard(chat: string, clientMsgId: string): void;
  pending(chat: string): PendingSend[];
  onPending(chat: string, cb: (p: PendingSend[]) => void): () => void;
  // The user typed (true) or cleared / left the composer (false). Refresh every 3 s is handled here.
  typing(chat: string, on: boolean): void;
  close(): void;
}
