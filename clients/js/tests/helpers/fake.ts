// Test doubles for the unit tests: a fake clock (timers driven by hand), a fake WebSocket that
// records what the client sends and lets the test play the server, and a scripted random.

import assert from 'node:assert/strict';
import { ParleyClient, type ParleyClientEvents, type ParleyClientOptions, type Timers } from '../../src/index.js';

// ------------------------------------------------------------------------------------------------
// Clock

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
  ms: number;
}

export class FakeClock implements Timers {
  nowMs = 1_700_000_000_000;
  #nextId = 1;
  timers = new Map<number, FakeTimer>();

  now = (): number => this.nowMs;

  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.#nextId++;
    this.timers.set(id, { id, at: this.nowMs + Math.max(0, ms), fn, ms });
    return id;
  };

  clearTimeout = (handle: unknown): void => {
    this.timers.delete(handle as number);
  };

  /** Moves time forward by ms, running every timer due on the way, in time order. */
  advance(ms: number): void {
    const end = this.nowMs + ms;
    for (;;) {
      let next: FakeTimer | null = null;
      for (const t of this.timers.values()) if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      if (!next) break;
      this.timers.delete(next.id);
      this.nowMs = Math.max(this.nowMs, next.at);
      next.fn();
    }
    this.nowMs = end;
  }

  /** Runs timers until none is left within `limit` ms (to reach the next scheduled thing). */
  runNext(): number {
    let next: FakeTimer | null = null;
    for (const t of this.timers.values()) if (!next || t.at < next.at) next = t;
    if (!next) throw new Error('no timer pending');
    const wait = next.at - this.nowMs;
    this.advance(wait);
    return wait;
  }
}

// ------------------------------------------------------------------------------------------------
// WebSocket

export interface SentFrame {
  id: number;
  op: string;
  [k: string]: unknown;
}

export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];
  static reset(): void {
    FakeWebSocket.instances = [];
  }
  static get last(): FakeWebSocket {
    const ws = FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    assert.ok(ws, 'no socket was created');
    return ws;
  }

  readonly url: string;
  readyState = 0;
  sent: SentFrame[] = [];
  closeCalls: { code?: number; reason?: string }[] = [];
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: any) => void) | null = null;
  onclose: ((ev: any) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;

  constructor(url: string) {
    this.url = url;
    FakeWebSocket.instances.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data) as SentFrame);
  }

  close(code?: number, reason?: string): void {
    this.closeCalls.push({ code, reason });
    this.readyState = 3;
  }

  // --- the test plays the server -------------------------------------------------------------

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  push(frame: unknown): void {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  reply(req: SentFrame, result: Record<string, unknown> = {}): void {
    this.push({ id: req.id, ok: true, ...result });
  }

  fail(req: SentFrame, code: string, message = code, extra: Record<string, unknown> = {}): void {
    this.push({ id: req.id, ok: false, error: { code, message, ...extra } });
  }

  /** The server closes the connection. */
  serverClose(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** Requests sent with this op (in order). */
  requests(op: string): SentFrame[] {
    return this.sent.filter((f) => f.op === op);
  }

  /** The only request with this op not answered yet by the test (the last one sent). */
  lastRequest(op: string): SentFrame {
    const all = this.requests(op);
    const r = all[all.length - 1];
    assert.ok(r, `no ${op} request was sent; sent: ${JSON.stringify(this.sent)}`);
    return r;
  }
}

// ------------------------------------------------------------------------------------------------
// Random

/** A random() that returns the given values in turn (then repeats the last). */
export function scriptedRandom(values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
}

// ------------------------------------------------------------------------------------------------
// Client under test

export const ANA = { id: 1, username: 'ana', displayName: 'Ana' };
export const BEN = { id: 2, username: 'ben', displayName: 'Ben' };

export interface Rig {
  client: ParleyClient;
  clock: FakeClock;
  events: { name: string; payload: any }[];
  /** Payloads of one event, in order. */
  of<K extends keyof ParleyClientEvents>(name: K): ParleyClientEvents[K][];
}

const ALL_EVENTS: (keyof ParleyClientEvents)[] = [
  'state',
  'close',
  'unauthorized',
  'fatal',
  'subscribed',
  'reset',
  'subscriptionError',
  'outgoing',
  'protocolError',
  'hello',
  'msg',
  'chat.updated',
  'participant.joined',
  'participant.left',
  'participant.removed',
  'participant.updated',
  'removed',
  'invite',
  'typing',
  'presence',
  'chat.active',
  'msg.delta',
];

export function makeClient(opts: Partial<ParleyClientOptions> = {}): Rig {
  FakeWebSocket.reset();
  const clock = new FakeClock();
  let n = 0;
  const client = new ParleyClient({
    url: 'ws://parley.test/ws',
    token: 'tok',
    WebSocket: FakeWebSocket,
    timers: clock,
    now: clock.now,
    random: () => 0.5,
    newClientMsgId: () => `cm-${++n}`,
    heartbeatMs: 0,
    ...opts,
  });
  const events: { name: string; payload: any }[] = [];
  for (const name of ALL_EVENTS) client.on(name, (payload) => events.push({ name, payload }));
  return {
    client,
    clock,
    events,
    of: <K extends keyof ParleyClientEvents>(name: K) =>
      events.filter((e) => e.name === name).map((e) => e.payload as ParleyClientEvents[K]),
  };
}

/**
 * Plays the server through one successful connection on the latest socket: open, answer auth,
 * answer each `sub` with `subReply(frame)`. Returns the socket.
 */
export function serveConnection(
  subReply: (req: SentFrame) => Record<string, unknown> = (req) => subResult(String(req.chat), Number(req.since ?? 0), []),
  user = ANA,
): FakeWebSocket {
  const ws = FakeWebSocket.last;
  ws.open();
  const auth = ws.lastRequest('auth');
  ws.reply(auth, { user });
  ws.push({ ev: 'hello', user });
  for (const sub of ws.requests('sub')) ws.reply(sub, subReply(sub));
  return ws;
}

export function chatObj(slug: string, lastSeq = 0) {
  return {
    slug,
    title: slug,
    isPublic: true,
    maxParticipants: null,
    invitePolicy: 'members',
    archived: false,
    createdAt: 1,
    lastActivity: 1,
    lastSeq,
    participantCount: 2,
    role: 'member',
    activeUsers: [],
  };
}

export function msgObj(chat: string, seq: number, author = BEN, clientMsgId: string | null = null, body = `m${seq}`) {
  return { seq, chat, author, body, clientMsgId, createdAt: 1000 + seq };
}

export function subResult(chat: string, lastSeq: number, msgs: ReturnType<typeof msgObj>[], reset = false) {
  return {
    chat: chatObj(chat, lastSeq),
    msgs,
    lastSeq,
    reset,
    presence: [],
    typing: [],
    typingOthers: 0,
    activeUsers: [],
  };
}

/** Lets pending promise callbacks run. */
export function flush(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Runs the pending reconnect timer (exactly the delay the last close announced). */
export function advanceToReconnect(rig: Rig): void {
  const n = FakeWebSocket.instances.length;
  const delay = rig.of('close').at(-1)?.reconnectInMs;
  assert.ok(typeof delay === 'number', 'no reconnect scheduled');
  rig.clock.advance(delay);
  assert.equal(FakeWebSocket.instances.length, n + 1, 'a new socket after the delay');
}
