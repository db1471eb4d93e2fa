// ParleyClient: one WebSocket to a Parley server (docs/protocol.md), with request/reply matching,
// reconnect with exponential backoff and full jitter, resume of every subscribed chat from the
// last seq seen, and pending sends kept and retried with the same clientMsgId.

import { backoffDelay, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { NON_RETRYABLE_SEND_ERRORS, ParleyError } from './errors.js';
import { PendingStore, type PendingStoreOptions, type StoredSend } from './pending-store.js';
import { TypingController, type TypingOptions } from './typing.js';
import { ActivityCounter } from './activity.js';
import { attachVisibility, type DocumentLike, type VisibilityOptions, type WindowLike } from './visibility.js';
import type {
  ChatBrowseArgs,
  ChatBrowseResult,
  ChatNotifyResult,
  NotifyLevel,
  UserResult,
  ChatCreateArgs,
  ChatGetResult,
  ChatMembersArgs,
  ChatMembersResult,
  ChatLeaveResult,
  ChatListResult,
  ChatRemoveResult,
  ChatResult,
  ChatSetRoleResult,
  ChatUpdateArgs,
  ClientPresenceState,
  ErrorBody,
  InvitationResult,
  InviteAcceptResult,
  InviteCreateResult,
  InviteListResult,
  Msg,
  MsgHistoryResult,
  MsgSendArgs,
  MsgEntryResult,
  MsgSendResult,
  Op,
  OpArgs,
  OpResults,
  PingResult,
  PresenceResult,
  RawEvent,
  ReadResult,
  Role,
  ServerEvents,
  SubResult,
  UnsubResult,
  User,
  UsersSearchResult,
  MsgSearchArgs,
  MsgSearchResult,
  MsgStreamAppendResult,
  MsgStreamEndResult,
} from './types.js';
import { CloseCode } from './types.js';

// ------------------------------------------------------------------------------------------------
// Injectable environment

/**
 * The part of the WebSocket API the client uses. The browser's `WebSocket` and the `ws` package
 * (Node) both fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** setTimeout/clearTimeout, injectable so that tests can drive time by hand. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type ConnectionState = 'connecting' | 'online' | 'reconnecting' | 'offline';

export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>);

export interface ParleyClientOptions {
  /** The WebSocket URL, e.g. `wss://chat.example.com/ws`. */
  url: string;
  /**
   * Token authentication (non-browser clients): the token from `POST /api/signup` or `/login`,
   * or a function returning it (called before every connection). Without a token the client
   * relies on the session cookie the browser sends with the upgrade, and waits for `hello`.
   */
  token?: TokenSource;
  /** The WebSocket implementation (default `globalThis.WebSocket`; in Node pass the `ws` package). */
  WebSocket?: WebSocketConstructor;
  /** Or a factory, e.g. to pass headers with `ws`. Takes precedence over `WebSocket`. */
  createWebSocket?: (url: string) => WebSocketLike;
  /** Per-request timeout, ms (default 10000). */
  requestTimeoutMs?: number;
  /** Time allowed to open the socket and authenticate, ms (default 10000). */
  connectTimeoutMs?: number;
  /**
   * When nothing was received for this long, the client sends a `ping` op; no reply within
   * requestTimeoutMs drops the socket and reconnects (default 30000; 0 turns it off).
   */
  heartbeatMs?: number;
  /** Reconnect backoff: full jitter in [0, min(maxMs, baseMs * 2^attempt)] (100 ms, 15 s). */
  backoff?: BackoffOptions;
  timers?: Timers;
  /** Clock, Unix ms (default Date.now). */
  now?: () => number;
  /** Uniform random in [0, 1) (default Math.random). */
  random?: () => number;
  /** Makes clientMsgIds (default crypto.randomUUID, else a random base36 string). */
  newClientMsgId?: () => string;
  /** Typing refresh/idle timings for typingController(). */
  typing?: TypingOptions;
  /**
   * Keeps unsent messages in this storage (e.g. `{ storage: localStorage, key: 'parley.pending.'
   * + userId }`): they are loaded when the client is made and resent, with the same
   * clientMsgId, once online.
   */
  pendingStore?: PendingStoreOptions;
}

export interface RequestOptions {
  /** Overrides the client's requestTimeoutMs. */
  timeoutMs?: number;
}

// ------------------------------------------------------------------------------------------------
// Pending sends

export type OutgoingStatus = 'pending' | 'sent' | 'failed' | 'discarded';

/** A message sent with `send()`: shown at once (optimistic), confirmed by its seq. */
export interface OutgoingMessage {
  clientMsgId: string;
  chat: string;
  body: string;
  /** The seq this message replies to, if any. */
  replyTo?: number;
  status: OutgoingStatus;
  /** Local clock when send() was called. */
  createdAt: number;
  /** How many times msg.send was sent for it. */
  attempts: number;
  /** Once sent: its seq and the stored message. */
  seq?: number;
  msg?: Msg;
  /** Once failed: why. */
  error?: ParleyError;
}

// ------------------------------------------------------------------------------------------------
// Events

export interface ParleyClientEvents extends ServerEvents {
  /** Connection state changes. */
  state: { state: ConnectionState; prev: ConnectionState };
  /** The socket closed (or was dropped). `reconnectInMs` is null when no reconnect follows. */
  close: { code: number; reason: string; reconnectInMs: number | null };
  /** The session ended or was refused (close 4001, or auth failed): sign in again. */
  unauthorized: { code: number; reason: string };
  /** The server closed for a client bug (1002, 1003, 1007, 1009): no reconnect. */
  fatal: { code: number; reason: string };
  /** A `sub` reply answered (first subscribe and every resume), after its msgs were applied. */
  subscribed: { chat: string; result: SubResult; resumed: boolean };
  /** Too much was missed: drop the chat's cache, show `msgs`, page back with history(). */
  reset: { chat: string; msgs: Msg[]; lastSeq: number; result: SubResult };
  /** A subscription was refused (forbidden, not_found...) and dropped. */
  subscriptionError: { chat: string; error: ParleyError };
  /** Every change of a message sent with send(). */
  outgoing: OutgoingMessage;
  /** Every server event, as received (before any filtering). */
  event: RawEvent;
  /** A frame the client could not use (not JSON, a reply with id null...). */
  protocolError: { error: ParleyError; frame: unknown };
}

// ------------------------------------------------------------------------------------------------
// Internals

const WS_OPEN = 1;
const NO_RECONNECT_CODES: ReadonlySet<number> = new Set([
  CloseCode.PROTOCOL_ERROR,
  CloseCode.UNSUPPORTED_DATA,
  CloseCode.INVALID_PAYLOAD,
  CloseCode.TOO_BIG,
]);
// Every event of ServerEvents, as a record so that the compiler refuses a ServerEvents entry
// missing here (an event the types promise but the client would never emit).
const SERVER_EVENT_NAMES: Record<keyof ServerEvents, true> = {
  hello: true,
  msg: true,
  'chat.updated': true,
  'chat.created': true,
  'participant.joined': true,
  'participant.left': true,
  'participant.removed': true,
  'participant.updated': true,
  removed: true,
  invite: true,
  typing: true,
  presence: true,
  'chat.active': true,
  read: true,
  mention: true,
  'chat.activity': true,
  'chat.notify': true,
  'user.updated': true,
  'msg.delta': true,
};
const SERVER_EVENTS: ReadonlySet<string> = new Set(Object.keys(SERVER_EVENT_NAMES));
/** Local close code for sockets the client drops itself (timeouts). */
const LOCAL_DROP_CODE = 4000;
const MAX_BUFFERED_MSGS = 2000;
const CLIENT_MSG_ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

type Callback = (err: ParleyError | null, result?: Record<string, unknown>) => void;

interface Inflight {
  op: string;
  cb: Callback;
  timer: unknown;
}

interface Queued {
  op: string;
  args: Record<string, unknown>;
  deadline: number;
  timer: unknown;
  resolve: (result: any) => void;
  reject: (err: ParleyError) => void;
}

interface Subscription {
  chat: string;
  /** Last seq applied; null until the first sub reply (when subscribed without since). */
  lastSeq: number | null;
  /** The id of the sub request in flight, or null. */
  reqId: number | null;
  /** Out-of-order msg events waiting for the gap before them to be filled. */
  buffer: Map<number, Msg>;
  retryTimer: unknown;
  lastResult: SubResult | null;
  waiters: { resolve: (r: SubResult) => void; reject: (e: ParleyError) => void }[];
  replies: number;
}

interface OutboxEntry {
  pub: OutgoingMessage;
  reqId: number | null;
  retryTimer: unknown;
  waiters: { resolve: (m: Msg) => void; reject: (e: ParleyError) => void }[];
}

function defaultTimers(): Timers {
  return {
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
  };
}

function handled<T>(p: Promise<T>): Promise<T> {
  // The caller may await it; a caller who does not gets no unhandled-rejection report.
  p.catch(() => {});
  return p;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A clientMsgId: crypto.randomUUID when available, else 24 random base36 characters. */
export function randomClientMsgId(random: () => number = Math.random): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c && typeof c.randomUUID === 'function') {
    try {
      return c.randomUUID();
    } catch {
      // insecure context: fall through
    }
  }
  let s = '';
  while (s.length < 24) s += Math.floor(random() * 36).toString(36);
  return s;
}

// ------------------------------------------------------------------------------------------------

export class ParleyClient extends Emitter<ParleyClientEvents> {
  readonly url: string;
  readonly #token: TokenSource | undefined;
  readonly #createSocket: (url: string) => WebSocketLike;
  readonly #timers: Timers;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #newClientMsgId: () => string;
  readonly #requestTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #backoff: BackoffOptions;
  readonly #typingOpts: TypingOptions;
  readonly #store: PendingStore | null;
  /** clientMsgIds this client has queued (sent or restored): the stored entries it owns. */
  readonly #storedIds = new Set<string>();

  #state: ConnectionState = 'offline';
  #want = false; // connect() called and not closed since
  #ws: WebSocketLike | null = null;
  #gen = 0; // generation of the current socket
  #authed = false; // the current socket is authenticated
  #ready = false; // authenticated and resubscribed: requests go out at once
  #awaitingHello = false;
  #attempt = 0;
  #reconnectTimer: unknown = null;
  #connectTimer: unknown = null;
  #heartbeatTimer: unknown = null;
  #heartbeatPing = false;
  #lastFrameAt = 0;
  #user: User | null = null;
  #nextId = 1;
  #inflight = new Map<number, Inflight>();
  #queue: Queued[] = [];
  #subs = new Map<string, Subscription>();
  /** chat.activity of the subscribed chats, which the server leaves to the client (activity.ts). */
  readonly #activity = new ActivityCounter();
  #outbox = new Map<string, OutboxEntry>();
  #presence: ClientPresenceState | null = null;
  #typing = new Map<string, TypingController>();
  #readyWaiters: { resolve: (u: User) => void; reject: (e: ParleyError) => void }[] = [];

  constructor(opts: ParleyClientOptions) {
    super();
    if (!opts || typeof opts.url !== 'string') throw new TypeError('ParleyClient: options.url is required');
    this.url = opts.url;
    this.#token = opts.token;
    if (opts.createWebSocket) {
      this.#createSocket = opts.createWebSocket;
    } else {
      const Ctor =
        opts.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
      if (!Ctor) {
        throw new TypeError('ParleyClient: no WebSocket implementation (pass options.WebSocket, e.g. the ws package)');
      }
      this.#createSocket = (url) => new Ctor(url);
    }
    this.#timers = opts.timers ?? defaultTimers();
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#newClientMsgId = opts.newClientMsgId ?? (() => randomClientMsgId(this.#random));
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 10000;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10000;
    this.#heartbeatMs = opts.heartbeatMs ?? 30000;
    this.#backoff = opts.backoff ?? {};
    this.#typingOpts = opts.typing ?? {};
    this.#store = opts.pendingStore ? new PendingStore(opts.pendingStore) : null;
    if (this.#store) this.#restore(this.#store.load());
  }

  /** Puts messages kept by an earlier page back in the queue (sent once online). */
  #restore(saved: StoredSend[]): void {
    for (const s of saved) {
      if (!CLIENT_MSG_ID_RE.test(s.clientMsgId) || this.#outbox.has(s.clientMsgId)) continue;
      this.#storedIds.add(s.clientMsgId);
      this.#outbox.set(s.clientMsgId, {
        pub: {
          clientMsgId: s.clientMsgId,
          chat: s.chat,
          body: s.body,
          status: s.failed ? 'failed' : 'pending',
          createdAt: s.createdAt,
          attempts: 0,
          ...(s.replyTo !== undefined ? { replyTo: s.replyTo } : {}),
          ...(s.failed ? { error: new ParleyError('internal', 'not sent before the page was reloaded') } : {}),
        },
        reqId: null,
        retryTimer: null,
        waiters: [],
      });
    }
  }

  #persist(): void {
    if (!this.#store) return;
    // Other tabs of the same user share the storage: their entries (ids this client never
    // queued) are kept as they are; this client's own are replaced by its current queue.
    const list: StoredSend[] = this.#store.load().filter((s) => !this.#storedIds.has(s.clientMsgId));
    for (const e of this.#outbox.values()) {
      this.#storedIds.add(e.pub.clientMsgId);
      const p = e.pub;
      list.push({
        clientMsgId: p.clientMsgId,
        chat: p.chat,
        body: p.body,
        createdAt: p.createdAt,
        ...(p.replyTo !== undefined ? { replyTo: p.replyTo } : {}),
        ...(p.status === 'failed' ? { failed: true } : {}),
      });
    }
    this.#store.save(list);
  }

  // ----------------------------------------------------------------------------------------------
  // Connection

  /** The connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The signed-in user, once authenticated (kept while reconnecting). */
  get user(): User | null {
    return this.#user;
  }

  /** The last seq applied for a subscribed chat (null when unknown or not subscribed). */
  lastSeq(chat: string): number | null {
    return this.#subs.get(chat)?.lastSeq ?? null;
  }

  /** Chats subscribed to (kept across reconnects). */
  subscriptions(): string[] {
    return [...this.#subs.keys()];
  }

  /**
   * Starts connecting (and keeps reconnecting until close()). Resolves with the user once
   * online; rejects if the client goes offline for good first (unauthorized, close()).
   */
  connect(): Promise<User> {
    const p = this.whenOnline();
    if (!this.#want) {
      this.#want = true;
      this.#attempt = 0;
      this.#setState('connecting');
      this.#open();
    }
    return p;
  }

  /** Resolves when the client is online (at once if it is). */
  whenOnline(): Promise<User> {
    if (this.#state === 'online' && this.#user) return Promise.resolve(this.#user);
    return handled(
      new Promise<User>((resolve, reject) => {
        this.#readyWaiters.push({ resolve, reject });
      }),
    );
  }

  /** While waiting to reconnect: try now (e.g. on the browser's `online` event). */
  reconnectNow(): void {
    if (this.#want && this.#ws === null && this.#reconnectTimer !== null) {
      this.#timers.clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
      this.#open();
    }
  }

  /**
   * Closes the socket and stops reconnecting. Requests waiting for a reply reject with
   * `closed`. Subscriptions and pending sends are kept: connect() again resumes them.
   */
  close(): void {
    this.#goOffline(new ParleyError('closed', 'client closed'));
  }

  #setState(state: ConnectionState): void {
    const prev = this.#state;
    if (prev === state) return;
    this.#state = state;
    this.emit('state', { state, prev });
  }

  #open(): void {
    this.#reconnectTimer = null;
    const gen = ++this.#gen;
    this.#authed = false;
    this.#ready = false;
    this.#awaitingHello = false;
    let ws: WebSocketLike;
    try {
      ws = this.#createSocket(this.url);
    } catch (err) {
      this.#ws = null;
      this.#onSocketGone(CloseCode.ABNORMAL, `cannot open socket: ${(err as Error)?.message ?? err}`);
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (gen === this.#gen) this.#onOpen(gen);
    };
    ws.onmessage = (ev: { data?: unknown }) => {
      if (gen === this.#gen) this.#onFrame(ev?.data);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (gen === this.#gen) this.#onSocketGone(ev?.code ?? CloseCode.ABNORMAL, ev?.reason ?? '');
    };
    ws.onerror = () => {
      // a close event follows
    };
    this.#connectTimer = this.#timers.setTimeout(() => {
      this.#connectTimer = null;
      if (gen === this.#gen) this.#drop('connect timeout');
    }, this.#connectTimeoutMs);
  }

  async #onOpen(gen: number): Promise<void> {
    this.#lastFrameAt = this.#now();
    let token: string | null | undefined;
    if (typeof this.#token === 'function') {
      try {
        token = await this.#token();
      } catch (err) {
        if (gen === this.#gen) this.#drop(`token: ${(err as Error)?.message ?? err}`);
        return;
      }
      if (gen !== this.#gen) return;
    } else {
      token = this.#token;
    }
    if (token) {
      this.#call('auth', { token }, this.#connectTimeoutMs, (err, res) => {
        if (gen !== this.#gen) return;
        if (err) {
          if (err.code === 'unauthorized') this.#unauthorized(CloseCode.UNAUTHORIZED, err.message);
          else if (err.code !== 'disconnected') this.#drop(`auth: ${err.code}`);
          return;
        }
        this.#onAuthenticated(gen, res!.user as User);
      });
    } else {
      // Cookie: a valid session makes `hello` the socket's first frame. A `ping` reply arriving
      // before any hello means the upgrade carried no valid session.
      this.#awaitingHello = true;
      this.#call('ping', {}, this.#connectTimeoutMs, (err) => {
        if (gen !== this.#gen || !this.#awaitingHello) return;
        if (!err) this.#unauthorized(CloseCode.UNAUTHORIZED, 'no valid session cookie');
      });
    }
  }

  #onAuthenticated(gen: number, user: User): void {
    this.#awaitingHello = false;
    this.#authed = true;
    this.#clearConnectTimer();
    this.#user = user;
    this.#attempt = 0; // backoff starts over after a successful auth
    if (this.#presence !== null) this.#fire('presence', { state: this.#presence });
    const subs = [...this.#subs.values()];
    let left = subs.length;
    const done = () => {
      if (gen !== this.#gen) return;
      this.#ready = true;
      this.#startHeartbeat(gen);
      for (const e of this.#outbox.values()) this.#trySend(e);
      this.#flushQueue();
      this.#setState('online');
      for (const t of this.#typing.values()) t._reconnected();
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const w of waiters) w.resolve(user);
    };
    if (left === 0) {
      done();
      return;
    }
    for (const sub of subs) {
      this.#sendSub(sub, () => {
        if (--left === 0) done();
      });
    }
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== null) {
      this.#timers.clearTimeout(this.#connectTimer);
      this.#connectTimer = null;
    }
  }

  /** Drops the current socket without waiting for a close handshake, then reconnects. */
  #drop(reason: string): void {
    const ws = this.#ws;
    if (ws) {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = () => {};
      try {
        ws.close(LOCAL_DROP_CODE, reason.slice(0, 100));
      } catch {
        // already closed
      }
    }
    this.#onSocketGone(LOCAL_DROP_CODE, reason);
  }

  #onSocketGone(code: number, reason: string): void {
    this.#ws = null;
    this.#gen++; // anything still running for the old socket is now stale
    this.#authed = false;
    this.#ready = false;
    this.#awaitingHello = false;
    this.#clearConnectTimer();
    this.#stopHeartbeat();
    for (const sub of this.#subs.values()) sub.reqId = null;
    for (const e of this.#outbox.values()) e.reqId = null;
    const what = `${code}${reason ? ` ${reason}` : ''}`;
    this.#failInflight(
      this.#want
        ? new ParleyError('disconnected', `connection lost (${what})`)
        : new ParleyError('closed', `connection closed (${what})`),
    );

    if (!this.#want) {
      this.emit('close', { code, reason, reconnectInMs: null });
      return;
    }
    if (code === CloseCode.UNAUTHORIZED) {
      this.emit('close', { code, reason, reconnectInMs: null });
      this.#unauthorized(code, reason);
      return;
    }
    if (NO_RECONNECT_CODES.has(code)) {
      this.emit('close', { code, reason, reconnectInMs: null });
      this.emit('fatal', { code, reason });
      this.#goOffline(new ParleyError('closed', `server closed the connection (${code} ${reason})`));
      return;
    }
    const delay = backoffDelay(this.#attempt, this.#random, this.#backoff);
    this.#attempt++;
    this.#setState('reconnecting');
    this.#reconnectTimer = this.#timers.setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#want && this.#ws === null) this.#open();
    }, delay);
    this.emit('close', { code, reason, reconnectInMs: delay });
  }

  #unauthorized(code: number, reason: string): void {
    this.emit('unauthorized', { code, reason });
    this.#goOffline(new ParleyError('unauthorized', reason || 'not authenticated'));
  }

  #goOffline(err: ParleyError): void {
    const wasWanted = this.#want;
    this.#want = false;
    if (this.#reconnectTimer !== null) {
      this.#timers.clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
    }
    if (this.#ws) this.#drop('closed by client'); // #want is false: no reconnect
    const closed = new ParleyError('closed', err.message);
    this.#failInflight(closed);
    for (const q of this.#queue.splice(0)) {
      this.#timers.clearTimeout(q.timer);
      q.reject(new ParleyError('closed', err.message, { op: q.op }));
    }
    for (const sub of this.#subs.values()) {
      if (sub.retryTimer !== null) {
        this.#timers.clearTimeout(sub.retryTimer);
        sub.retryTimer = null;
      }
      for (const w of sub.waiters.splice(0)) w.reject(closed);
    }
    for (const e of this.#outbox.values()) {
      if (e.retryTimer !== null) {
        this.#timers.clearTimeout(e.retryTimer);
        e.retryTimer = null;
      }
    }
    for (const t of this.#typing.values()) t._disconnected();
    const waiters = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const w of waiters) w.reject(err);
    if (wasWanted || this.#state !== 'offline') this.#setState('offline');
  }

  #failInflight(err: ParleyError): void {
    const all = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const r of all) {
      this.#timers.clearTimeout(r.timer);
      r.cb(new ParleyError(err.code, err.message, { op: r.op }));
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Heartbeat

  #startHeartbeat(gen: number): void {
    if (this.#heartbeatMs <= 0) return;
    const tick = () => {
      this.#heartbeatTimer = null;
      if (gen !== this.#gen) return;
      const idle = this.#now() - this.#lastFrameAt;
      if (idle >= this.#heartbeatMs && !this.#heartbeatPing) {
        this.#heartbeatPing = true;
        this.#call('ping', {}, this.#requestTimeoutMs, (err) => {
          this.#heartbeatPing = false;
          if (gen !== this.#gen) return;
          if (err && err.code === 'timeout') this.#drop('heartbeat timeout');
        });
      }
      const next = idle >= this.#heartbeatMs ? this.#heartbeatMs : this.#heartbeatMs - idle;
      this.#heartbeatTimer = this.#timers.setTimeout(tick, next);
    };
    this.#heartbeatTimer = this.#timers.setTimeout(tick, this.#heartbeatMs);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer !== null) {
      this.#timers.clearTimeout(this.#heartbeatTimer);
      this.#heartbeatTimer = null;
    }
    this.#heartbeatPing = false;
  }

  // ----------------------------------------------------------------------------------------------
  // Frames

  #onFrame(data: unknown): void {
    this.#lastFrameAt = this.#now();
    if (typeof data !== 'string') {
      this.emit('protocolError', { error: new ParleyError('bad_request', 'non-text frame from the server'), frame: data });
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      this.emit('protocolError', { error: new ParleyError('bad_request', 'unparsable frame from the server'), frame: data });
      return;
    }
    if (!isObject(frame)) {
      this.emit('protocolError', { error: new ParleyError('bad_request', 'frame is not an object'), frame });
      return;
    }
    if (typeof frame.ev === 'string') {
      this.#onEvent(frame as RawEvent);
      return;
    }
    if ('id' in frame) {
      this.#onReply(frame);
      return;
    }
    this.emit('protocolError', { error: new ParleyError('bad_request', 'frame with neither ev nor id'), frame });
  }

  #onReply(frame: Record<string, unknown>): void {
    const id = frame.id;
    if (typeof id !== 'number') {
      const err = ParleyError.fromBody(frame.error as ErrorBody | undefined);
      this.emit('protocolError', { error: err, frame });
      return;
    }
    const r = this.#inflight.get(id);
    if (!r) return; // timed out already
    this.#inflight.delete(id);
    this.#timers.clearTimeout(r.timer);
    if (frame.ok === true) {
      const { id: _id, ok: _ok, ...result } = frame;
      r.cb(null, result);
    } else {
      r.cb(ParleyError.fromBody(frame.error as ErrorBody | undefined, r.op));
    }
  }

  #onEvent(frame: RawEvent): void {
    this.emit('event', frame);
    const { ev, ...payload } = frame;
    switch (ev) {
      case 'hello': {
        const user = payload.user as User;
        if (this.#awaitingHello) this.#onAuthenticated(this.#gen, user);
        else if (user) this.#user = user;
        this.emit('hello', payload as unknown as ServerEvents['hello']);
        return;
      }
      case 'msg':
        this.#onMsgEvent(payload as unknown as ServerEvents['msg']);
        return;
      case 'removed': {
        const chat = payload.chat as string;
        this.#dropSubscription(chat, new ParleyError('forbidden', 'removed from the chat', { op: 'sub' }));
        for (const e of this.#outbox.values()) {
          if (e.pub.chat === chat && e.pub.status === 'pending' && e.reqId === null) {
            this.#fail(e, new ParleyError('forbidden', 'removed from the chat', { op: 'msg.send' }));
          }
        }
        this.emit('removed', payload as unknown as ServerEvents['removed']);
        return;
      }
      case 'participant.left': {
        // Left from another tab or device: the server ended this socket's subscription too.
        const user = payload.user as User | undefined;
        if (user && this.#user && user.id === this.#user.id) {
          this.#dropSubscription(payload.chat as string, new ParleyError('forbidden', 'left the chat', { op: 'sub' }));
        }
        this.emit('participant.left', payload as unknown as ServerEvents['participant.left']);
        return;
      }
      case 'participant.joined': {
        // Joins close together in a big chat arrive as one event listing every joiner in `users`
        // (docs/protocol.md): listeners get one event per joiner, as from a small chat.
        const joiners = payload.users as Array<Record<string, unknown>> | undefined;
        if (Array.isArray(joiners) && joiners.length > 0) {
          for (const j of joiners) {
            const one = { ...payload, ...j };
            delete one.users;
            this.emit('participant.joined', one as unknown as ServerEvents['participant.joined']);
          }
          return;
        }
        this.emit('participant.joined', payload as unknown as ServerEvents['participant.joined']);
        return;
      }
      case 'presence': {
        // Changes close together (a connect storm) arrive as one event listing each in `users`
        // (docs/protocol.md): listeners get one event per change, as one by one.
        const changes = payload.users as Array<Record<string, unknown>> | undefined;
        if (Array.isArray(changes) && changes.length > 0) {
          for (const p of changes) this.emit('presence', p as unknown as ServerEvents['presence']);
          return;
        }
        this.emit('presence', payload as unknown as ServerEvents['presence']);
        return;
      }
      case 'chat.activity':
        this.emit('chat.activity', this.#activity.fromServer(payload as unknown as ServerEvents['chat.activity']));
        return;
      case 'user.updated': {
        // This user's own name or picture, changed here or on another device.
        const user = payload.user as User | undefined;
        if (user && this.#user && user.id === this.#user.id) this.#user = user;
        this.emit('user.updated', payload as unknown as ServerEvents['user.updated']);
        return;
      }
      default:
        // Every other event is passed on as it came: chat.updated, chat.created, read,
        // participant.*, invite, typing, presence, chat.active. Events the server adds later come through 'event'.
        if (SERVER_EVENTS.has(ev)) this.emit(ev as keyof ServerEvents, payload as never);
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Requests

  /**
   * Sends one request on the current socket; `cb` gets the reply's result or a ParleyError
   * (`timeout`, `disconnected` when the socket drops first, or the server's error). Returns
   * the request id, or null when there is no open socket (cb was called with `disconnected`).
   */
  #call(op: string, args: Record<string, unknown>, timeoutMs: number, cb: Callback): number | null {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WS_OPEN) {
      cb(new ParleyError('disconnected', 'not connected', { op }));
      return null;
    }
    const id = this.#nextId++;
    const frame: Record<string, unknown> = { id, op, ...args };
    frame.id = id;
    frame.op = op;
    let text: string;
    try {
      text = JSON.stringify(frame);
    } catch (err) {
      cb(new ParleyError('bad_request', `cannot encode request: ${(err as Error).message}`, { op }));
      return null;
    }
    const timer = this.#timers.setTimeout(() => {
      if (this.#inflight.delete(id)) cb(new ParleyError('timeout', `no reply to ${op} within ${timeoutMs} ms`, { op }));
    }, timeoutMs);
    this.#inflight.set(id, { op, cb, timer });
    try {
      ws.send(text);
    } catch (err) {
      this.#inflight.delete(id);
      this.#timers.clearTimeout(timer);
      cb(new ParleyError('disconnected', `send failed: ${(err as Error)?.message ?? err}`, { op }));
      return null;
    }
    return id;
  }

  /** Fire and forget (typing, presence): errors are ignored. */
  #fire(op: string, args: Record<string, unknown>): void {
    if (this.#authed) {
      this.#call(op, args, this.#requestTimeoutMs, () => {});
    }
  }

  /**
   * Sends a request and resolves with its result. While the client is connecting or
   * reconnecting, the request waits (within its timeout) and goes out once online. Rejects with
   * a ParleyError: the server's code, or `timeout`, `disconnected` (the socket dropped while the
   * request was in flight: it may or may not have been applied), `closed`.
   */
  request<K extends Op>(op: K, args: OpArgs[K], opts: RequestOptions = {}): Promise<OpResults[K]> {
    return new Promise<OpResults[K]>((resolve, reject) => {
      if (!this.#want) {
        reject(new ParleyError('closed', 'client is not connected: call connect()', { op }));
        return;
      }
      const timeoutMs = opts.timeoutMs ?? this.#requestTimeoutMs;
      const plainArgs = (args ?? {}) as Record<string, unknown>;
      if (this.#ready) {
        this.#call(op, plainArgs, timeoutMs, (err, res) => (err ? reject(err) : resolve(res as unknown as OpResults[K])));
        return;
      }
      const q: Queued = {
        op,
        args: plainArgs,
        deadline: this.#now() + timeoutMs,
        resolve,
        reject,
        timer: null,
      };
      q.timer = this.#timers.setTimeout(() => {
        const i = this.#queue.indexOf(q);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(new ParleyError('timeout', `not connected within ${timeoutMs} ms for ${op}`, { op }));
      }, timeoutMs);
      this.#queue.push(q);
    });
  }

  #flushQueue(): void {
    for (const q of this.#queue.splice(0)) {
      this.#timers.clearTimeout(q.timer);
      const left = Math.max(1, q.deadline - this.#now());
      this.#call(q.op, q.args, left, (err, res) => (err ? q.reject(err) : q.resolve(res)));
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Typed wrappers for every op

  ping(): Promise<PingResult> {
    return this.request('ping', {});
  }
  createChat(args: ChatCreateArgs): Promise<ChatResult> {
    return this.request('chat.create', args);
  }
  /** The chat and its participants (all, or with `limit` the first page by id). */
  getChat(chat: string, opts: { limit?: number } = {}): Promise<ChatGetResult> {
    return this.request('chat.get', { chat, ...opts });
  }
  /** One page of a chat's participants by user id, with role and presence. Next page:
   * `{after: members[members.length - 1].id}` while `hasMore`. */
  members(chat: string, opts: Omit<ChatMembersArgs, 'chat'> = {}): Promise<ChatMembersResult> {
    return this.request('chat.members', { chat, ...opts });
  }
  /** Every participant of a chat, page by page (`limit` per request, 200 by default). */
  async allMembers(chat: string, limit = 200): Promise<ChatMembersResult['members']> {
    const all: ChatMembersResult['members'] = [];
    let after: number | undefined;
    for (;;) {
      const page = await this.members(chat, after === undefined ? { limit } : { after, limit });
      all.push(...page.members);
      if (!page.hasMore || page.members.length === 0) return all;
      after = page.members[page.members.length - 1].id;
    }
  }
  listChats(): Promise<ChatListResult> {
    return this.request('chat.list', {});
  }
  joinChat(chat: string): Promise<ChatResult> {
    return this.request('chat.join', { chat });
  }
  updateChat(args: ChatUpdateArgs): Promise<ChatResult> {
    return this.request('chat.update', args);
  }
  async leaveChat(chat: string): Promise<ChatLeaveResult> {
    const res = await this.request('chat.leave', { chat });
    this.#dropSubscription(chat, new ParleyError('forbidden', 'left the chat', { op: 'sub' }));
    return res;
  }
  removeParticipant(chat: string, user: string): Promise<ChatRemoveResult> {
    return this.request('chat.remove', { chat, user });
  }
  setRole(chat: string, user: string, role: Role): Promise<ChatSetRoleResult> {
    return this.request('chat.setRole', { chat, user, role });
  }
  /** The one DM with `username` (created on first use, the same from either side). */
  openDm(username: string): Promise<ChatResult> {
    return this.request('dm.open', { user: username });
  }
  /** Edits your message `seq`: resolves with the `edit` entry. */
  editMessage(chat: string, seq: number, body: string): Promise<MsgEntryResult> {
    return this.request('msg.edit', { chat, seq, body });
  }
  /** Deletes message `seq` (yours, or any as owner/admin): resolves with the `delete` entry. */
  deleteMessage(chat: string, seq: number): Promise<MsgEntryResult> {
    return this.request('msg.delete', { chat, seq });
  }
  /** Adds (on) or removes your reaction `emoji`: the `reaction` entry, or msg null if nothing changed. */
  react(chat: string, seq: number, emoji: string, on: boolean): Promise<MsgEntryResult> {
    return this.request('react', { chat, seq, emoji, on });
  }
  /** A raw msg.send (no pending queue, no retry). Prefer send(). */
  sendMessage(args: MsgSendArgs): Promise<MsgSendResult> {
    return this.request('msg.send', args);
  }
  /**
   * Starts a streamed message (issue 19): resolves with the message (body "", streaming true).
   * Give a clientMsgId to make a retry safe (`duplicate: true` returns the same message). Prefer
   * StreamWriter, which retries every step across reconnects.
   */
  streamStart(chat: string, opts: { clientMsgId?: string; replyTo?: number } = {}): Promise<MsgSendResult> {
    return this.request('msg.stream.start', { chat, ...opts });
  }
  /** Appends `delta` at byte `offset` (bytes already appended): resolves with the new length.
   * A retry of the same bytes at the same offset is idempotent; another offset is `conflict`
   * (ParleyError.length = the current length). */
  streamAppend(chat: string, seq: number, delta: string, offset: number): Promise<MsgStreamAppendResult> {
    return this.request('msg.stream.append', { chat, seq, delta, offset });
  }
  /** Ends a stream ("done", or "error"): resolves with the `stream.end` entry. */
  streamEnd(chat: string, seq: number, state: 'done' | 'error' = 'done'): Promise<MsgStreamEndResult> {
    return this.request('msg.stream.end', { chat, seq, state });
  }
  history(chat: string, opts: { before?: number; limit?: number } = {}): Promise<MsgHistoryResult> {
    return this.request('msg.history', { chat, ...opts });
  }
  markRead(chat: string, seq: number): Promise<ReadResult> {
    return this.request('read', { chat, seq });
  }
  /** Full-text search over the messages of the chats the user is in (docs/protocol.md, Search).
   * Next page: `{before: before + results.length}` while `hasMore`. */
  search(q: string, opts: Omit<MsgSearchArgs, 'q'> = {}): Promise<MsgSearchResult> {
    return this.request('msg.search', { q, ...opts });
  }
  searchUsers(q: string, chat?: string): Promise<UsersSearchResult> {
    return this.request('users.search', chat === undefined ? { q } : { q, chat });
  }
  createInvite(chat: string, user: string, ttl?: number): Promise<InviteCreateResult> {
    return this.request('invite.create', ttl === undefined ? { chat, user } : { chat, user, ttl });
  }
  acceptInvite(invitation: number): Promise<InviteAcceptResult> {
    return this.request('invite.accept', { invitation });
  }
  declineInvite(invitation: number): Promise<InvitationResult> {
    return this.request('invite.decline', { invitation });
  }
  revokeInvite(invitation: number): Promise<InvitationResult> {
    return this.request('invite.revoke', { invitation });
  }
  listInvites(): Promise<InviteListResult> {
    return this.request('invite.list', {});
  }
  /** This user's notification level for a chat (stored by the server: it follows the user). */
  setNotify(chat: string, level: NotifyLevel): Promise<ChatNotifyResult> {
    return this.request('chat.notify', { chat, level });
  }
  /** The directory of public chats, most recently active first; page on with
   * `nextBrowseArgs(args, result)` (the keyset `before` + `chat`). */
  browse(args: ChatBrowseArgs = {}): Promise<ChatBrowseResult> {
    return this.request('chat.browse', args);
  }
  /** Changes the display name; everyone who shows it gets `user.updated`. */
  async updateMe(args: { displayName: string }): Promise<UserResult> {
    const res = await this.request('me.update', args);
    if (this.#user && res.user.id === this.#user.id) this.#user = res.user;
    return res;
  }
  /** Sends `presence` now and again after every reconnect. Errors are ignored. */
  setPresence(state: ClientPresenceState): void {
    this.#presence = state;
    this.#fire('presence', { state });
  }
  /** The presence state last set (re-sent after reconnects), or null. */
  get presenceState(): ClientPresenceState | null {
    return this.#presence;
  }
  /** Sends `presence` and resolves with the user's aggregate presence. */
  async reportPresence(state: ClientPresenceState): Promise<PresenceResult> {
    this.#presence = state;
    return this.request('presence', { state });
  }
  /** Sends one `typing` request now (dropped while offline; errors ignored). See typingController(). */
  setTyping(chat: string, on: boolean): void {
    this.#fire('typing', { chat, on });
  }

  /** The typing controller of a chat: call keystroke() on input, cleared() when emptied. */
  typingController(chat: string): TypingController {
    let t = this.#typing.get(chat);
    if (!t) {
      t = new TypingController(
        {
          sendTyping: (on) => this.setTyping(chat, on),
          timers: this.#timers,
          now: this.#now,
          isOnline: () => this.#ready,
          dispose: () => this.#typing.delete(chat),
        },
        this.#typingOpts,
      );
      this.#typing.set(chat, t);
    }
    return t;
  }

  /**
   * Reports page visibility and input for presence: `hidden` when the page is hidden, `active`
   * when visible with input (becoming visible counts as input), `idle` after 5 minutes without
   * keyboard or pointer input. Returns a function that detaches the listeners.
   */
  attachVisibility(doc: DocumentLike, win: WindowLike, opts: VisibilityOptions = {}): () => void {
    return attachVisibility((state) => this.setPresence(state), doc, win, {
      timers: this.#timers,
      now: this.#now,
      ...opts,
    });
  }

  // ----------------------------------------------------------------------------------------------
  // Subscriptions and resume

  /**
   * Subscribes to a chat's messages (kept across reconnects and resumed from the last seq
   * seen). With `since`, every message after it is replayed as `msg` events first. Resolves
   * with the sub reply; rejects when the server refuses (the subscription is then dropped).
   * Subscribing to a subscribed chat resolves with its last reply.
   */
  subscribe(chat: string, opts: { since?: number } = {}): Promise<SubResult> {
    let sub = this.#subs.get(chat);
    if (sub && sub.lastResult && sub.reqId === null) return Promise.resolve(sub.lastResult);
    const p = handled(
      new Promise<SubResult>((resolve, reject) => {
        if (!sub) {
          sub = {
            chat,
            lastSeq: opts.since ?? null,
            reqId: null,
            buffer: new Map(),
            retryTimer: null,
            lastResult: null,
            waiters: [],
            replies: 0,
          };
          this.#subs.set(chat, sub);
        }
        sub.waiters.push({ resolve, reject });
      }),
    );
    if (this.#authed && sub!.reqId === null && sub!.retryTimer === null) this.#sendSub(sub!);
    return p;
  }

  /**
   * Asks the server again where a subscribed chat stands (a `sub` with since = the last seq):
   * its reply's `streams` carries the text so far of every open stream. For a gap in a stream's
   * deltas (timeline.applyDelta's `gap`). Does nothing when a sub is already on its way.
   */
  resync(chat: string): void {
    const sub = this.#subs.get(chat);
    if (!sub || !this.#authed || sub.reqId !== null || sub.retryTimer !== null) return;
    this.#sendSub(sub);
  }

  /** Ends a subscription (locally at once; `unsub` is sent when connected). */
  async unsubscribe(chat: string): Promise<void> {
    const had = this.#subs.has(chat);
    this.#dropSubscription(chat, new ParleyError('closed', 'unsubscribed', { op: 'sub' }), false);
    if (had && this.#authed) {
      await new Promise<UnsubResult | null>((resolve) =>
        this.#call('unsub', { chat }, this.#requestTimeoutMs, (_err, res) => resolve((res as unknown as UnsubResult) ?? null)),
      );
    }
  }

  #dropSubscription(chat: string, err: ParleyError, report = true): void {
    const sub = this.#subs.get(chat);
    if (!sub) return;
    this.#subs.delete(chat);
    this.#activity.drop(chat);
    if (sub.retryTimer !== null) this.#timers.clearTimeout(sub.retryTimer);
    sub.retryTimer = null;
    // The server never answers a sub superseded by an unsub or a removal: settle it here (its
    // callback sees a stale subscription), so that a resume in progress does not wait for it.
    const reqId = sub.reqId;
    sub.reqId = null;
    const pending = reqId === null ? undefined : this.#inflight.get(reqId);
    if (reqId !== null && pending) {
      this.#inflight.delete(reqId);
      this.#timers.clearTimeout(pending.timer);
      pending.cb(new ParleyError('closed', 'subscription ended', { op: 'sub' }));
    }
    const waiters = sub.waiters.splice(0);
    for (const w of waiters) w.reject(err);
    if (report && waiters.length) this.emit('subscriptionError', { chat, error: err });
  }

  #sendSub(sub: Subscription, done?: () => void): void {
    const args: Record<string, unknown> = { chat: sub.chat };
    if (sub.lastSeq !== null) args.since = sub.lastSeq;
    const resumed = sub.replies > 0;
    let id: number | null = null;
    id = this.#call('sub', args, this.#requestTimeoutMs, (err, res) => {
      const current = this.#subs.get(sub.chat) === sub && sub.reqId === id && id !== null;
      if (current) sub.reqId = null;
      if (!current) {
        done?.();
        return;
      }
      if (!err) {
        this.#applySubReply(sub, res as unknown as SubResult, resumed);
      } else if (err.code === 'disconnected' || err.code === 'closed') {
        // resumed after the next authentication
      } else if (err.code === 'timeout') {
        done?.();
        this.#drop('sub timeout');
        return;
      } else if (err.code === 'rate_limited' || err.code === 'unavailable' || err.code === 'internal') {
        const delay = err.retryAfter ?? backoffDelay(3, this.#random, this.#backoff) + 100;
        sub.retryTimer = this.#timers.setTimeout(() => {
          sub.retryTimer = null;
          if (this.#authed && this.#subs.get(sub.chat) === sub && sub.reqId === null) this.#sendSub(sub);
        }, delay);
      } else {
        this.#dropSubscription(sub.chat, err);
      }
      done?.();
    });
    if (id !== null) sub.reqId = id;
  }

  #applySubReply(sub: Subscription, result: SubResult, resumed: boolean): void {
    sub.replies++;
    sub.lastResult = result;
    this.#activity.reset(sub.chat, result.chat, result.lastSeq);
    const msgs = Array.isArray(result.msgs) ? result.msgs : [];
    for (const m of msgs) this.#confirmFromMsg(sub.chat, m);
    if (result.reset) {
      sub.lastSeq = result.lastSeq;
      this.emit('reset', { chat: sub.chat, msgs, lastSeq: result.lastSeq, result });
    } else {
      if (sub.lastSeq === null) sub.lastSeq = msgs.length ? msgs[0]!.seq - 1 : result.lastSeq;
      for (const m of msgs) this.#applyMsg(sub, m, false);
      if (typeof result.lastSeq === 'number' && result.lastSeq > sub.lastSeq) sub.lastSeq = result.lastSeq;
    }
    this.#drainBuffer(sub);
    this.emit('subscribed', { chat: sub.chat, result, resumed });
    for (const w of sub.waiters.splice(0)) w.resolve(result);
  }

  #onMsgEvent(ev: ServerEvents['msg']): void {
    const chat = ev.chat;
    const msg = ev.msg;
    if (!isObject(msg) || typeof msg.seq !== 'number') {
      this.emit('protocolError', { error: new ParleyError('bad_request', 'msg event without msg.seq'), frame: ev });
      return;
    }
    this.#confirmFromMsg(chat, msg);
    const sub = this.#subs.get(chat);
    if (!sub) {
      this.emit('msg', ev); // not tracked: passed on as is
      return;
    }
    if (sub.lastSeq === null) {
      this.#buffer(sub, msg); // the first sub reply will say where we are
      return;
    }
    this.#applyMsg(sub, msg, true);
  }

  /** Applies msg if it is the next one, ignores it if old, buffers it and fills the gap if not. */
  #applyMsg(sub: Subscription, msg: Msg, fromEvent: boolean): void {
    const last = sub.lastSeq ?? 0;
    if (msg.seq <= last) return; // duplicate
    if (msg.seq === last + 1) {
      sub.lastSeq = msg.seq;
      this.#emitMsg(sub.chat, msg);
      if (fromEvent) this.#drainBuffer(sub);
      return;
    }
    this.#buffer(sub, msg);
    if (fromEvent && sub.reqId === null && sub.retryTimer === null && this.#authed) this.#sendSub(sub);
  }

  /** A message of a subscribed chat, in seq order; with the chat.activity the server left to us. */
  #emitMsg(chat: string, msg: Msg): void {
    this.emit('msg', { chat, msg });
    const ev = this.#activity.fromMsg(chat, msg, this.#user?.id);
    if (ev) this.emit('chat.activity', ev);
  }

  #buffer(sub: Subscription, msg: Msg): void {
    if (sub.buffer.size < MAX_BUFFERED_MSGS) sub.buffer.set(msg.seq, msg);
  }

  #drainBuffer(sub: Subscription): void {
    if (sub.buffer.size === 0 || sub.lastSeq === null) return;
    for (const seq of [...sub.buffer.keys()]) if (seq <= sub.lastSeq) sub.buffer.delete(seq);
    for (let next = sub.buffer.get(sub.lastSeq + 1); next; next = sub.buffer.get(sub.lastSeq + 1)) {
      sub.buffer.delete(next.seq);
      sub.lastSeq = next.seq;
      this.#emitMsg(sub.chat, next);
    }
    // Still a gap before what is buffered: ask the server to fill it.
    if (sub.buffer.size > 0 && sub.reqId === null && sub.retryTimer === null && this.#authed) this.#sendSub(sub);
  }

  // ----------------------------------------------------------------------------------------------
  // Pending sends

  /**
   * Sends a message through the pending queue: returns at once with the optimistic message
   * (status `pending`, emitted as `outgoing`), retried with the same clientMsgId after every
   * reconnect until confirmed by its seq (status `sent`) or refused (status `failed`).
   */
  send(chat: string, body: string, opts: { clientMsgId?: string; replyTo?: number } = {}): OutgoingMessage {
    const clientMsgId = opts.clientMsgId ?? this.#newClientMsgId();
    if (!CLIENT_MSG_ID_RE.test(clientMsgId)) throw new TypeError(`invalid clientMsgId: ${clientMsgId}`);
    const existing = this.#outbox.get(clientMsgId);
    if (existing) return { ...existing.pub };
    const entry: OutboxEntry = {
      pub: {
        clientMsgId,
        chat,
        body,
        status: 'pending',
        createdAt: this.#now(),
        attempts: 0,
        ...(opts.replyTo !== undefined ? { replyTo: opts.replyTo } : {}),
      },
      reqId: null,
      retryTimer: null,
      waiters: [],
    };
    this.#outbox.set(clientMsgId, entry);
    this.#typing.get(chat)?.sent();
    this.#trySend(entry);
    this.#emitOutgoing(entry);
    return { ...entry.pub };
  }

  /** send(), resolving with the stored message once confirmed; rejects when it fails. */
  sendAndWait(chat: string, body: string, opts: { clientMsgId?: string; replyTo?: number } = {}): Promise<Msg> {
    const out = this.send(chat, body, opts);
    return this.#waitOutgoing(out.clientMsgId);
  }

  #waitOutgoing(clientMsgId: string): Promise<Msg> {
    const e = this.#outbox.get(clientMsgId);
    if (!e) return Promise.reject(new ParleyError('not_found', `no pending message ${clientMsgId}`));
    if (e.pub.status === 'failed') return Promise.reject(e.pub.error);
    return new Promise((resolve, reject) => e.waiters.push({ resolve, reject }));
  }

  /** Messages sent with send() not confirmed yet (pending or failed), oldest first. */
  outgoing(chat?: string): OutgoingMessage[] {
    const out: OutgoingMessage[] = [];
    for (const e of this.#outbox.values()) if (chat === undefined || e.pub.chat === chat) out.push({ ...e.pub });
    return out;
  }

  /** Sends a failed message again (same clientMsgId). Returns false if there is no such failed message. */
  retry(clientMsgId: string): boolean {
    const e = this.#outbox.get(clientMsgId);
    if (!e || e.pub.status !== 'failed') return false;
    e.pub.status = 'pending';
    delete e.pub.error;
    this.#emitOutgoing(e);
    this.#trySend(e);
    return true;
  }

  /**
   * Forgets a pending or failed message (status `discarded`). A message already on its way may
   * still be stored by the server.
   */
  discard(clientMsgId: string): boolean {
    const e = this.#outbox.get(clientMsgId);
    if (!e) return false;
    this.#outbox.delete(clientMsgId);
    if (e.retryTimer !== null) this.#timers.clearTimeout(e.retryTimer);
    e.retryTimer = null;
    e.reqId = null;
    e.pub.status = 'discarded';
    this.#emitOutgoing(e);
    const err = new ParleyError('closed', 'discarded', { op: 'msg.send' });
    for (const w of e.waiters.splice(0)) w.reject(err);
    return true;
  }

  #emitOutgoing(e: OutboxEntry): void {
    // Every change of the queue passes here: keep the stored copy in step first.
    this.#persist();
    this.emit('outgoing', { ...e.pub });
  }

  #trySend(e: OutboxEntry): void {
    if (!this.#ready || e.reqId !== null || e.retryTimer !== null || e.pub.status !== 'pending') return;
    if (this.#outbox.get(e.pub.clientMsgId) !== e) return;
    e.pub.attempts++;
    let id: number | null = null;
    id = this.#call(
      'msg.send',
      e.pub.replyTo !== undefined
        ? { chat: e.pub.chat, body: e.pub.body, clientMsgId: e.pub.clientMsgId, replyTo: e.pub.replyTo }
        : { chat: e.pub.chat, body: e.pub.body, clientMsgId: e.pub.clientMsgId },
      this.#requestTimeoutMs,
      (err, res) => {
        if (e.reqId !== id || id === null) return; // stale: disconnected, confirmed or discarded
        e.reqId = null;
        if (this.#outbox.get(e.pub.clientMsgId) !== e || e.pub.status !== 'pending') return;
        if (!err) {
          this.#confirm(e, (res as unknown as MsgSendResult).msg);
          return;
        }
        if (err.code === 'disconnected' || err.code === 'closed') return; // after the next auth
        if (NON_RETRYABLE_SEND_ERRORS.has(err.code) || err.code === 'internal') {
          this.#fail(e, err);
          return;
        }
        // timeout, rate_limited, unavailable: again later on this connection (same clientMsgId)
        const delay =
          err.code === 'rate_limited' && typeof err.retryAfter === 'number'
            ? err.retryAfter
            : 100 + backoffDelay(Math.min(e.pub.attempts, 8), this.#random, this.#backoff);
        e.retryTimer = this.#timers.setTimeout(() => {
          e.retryTimer = null;
          this.#trySend(e);
        }, delay);
      },
    );
    if (id !== null) e.reqId = id;
  }

  #confirmFromMsg(chat: string, msg: Msg): void {
    if (!msg || typeof msg.clientMsgId !== 'string') return;
    const e = this.#outbox.get(msg.clientMsgId);
    if (!e || e.pub.chat !== chat) return;
    if (this.#user && msg.author && msg.author.id !== this.#user.id) return;
    this.#confirm(e, msg);
  }

  #confirm(e: OutboxEntry, msg: Msg): void {
    if (this.#outbox.get(e.pub.clientMsgId) !== e) return;
    this.#outbox.delete(e.pub.clientMsgId);
    if (e.retryTimer !== null) this.#timers.clearTimeout(e.retryTimer);
    e.retryTimer = null;
    e.reqId = null;
    e.pub.status = 'sent';
    e.pub.seq = msg.seq;
    e.pub.msg = msg;
    delete e.pub.error;
    this.#emitOutgoing(e);
    for (const w of e.waiters.splice(0)) w.resolve(msg);
  }

  #fail(e: OutboxEntry, err: ParleyError): void {
    if (e.retryTimer !== null) this.#timers.clearTimeout(e.retryTimer);
    e.retryTimer = null;
    e.pub.status = 'failed';
    e.pub.error = err;
    this.#emitOutgoing(e);
    for (const w of e.waiters.splice(0)) w.reject(err);
  }
}
