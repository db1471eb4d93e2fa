// The assistant against two local fakes: a Parley server (a `ws` server playing auth,
// msg.history, typing and the msg.stream.* ops with the contract's offset rules, and pushing
// chat.activity for new messages) and an OpenAI-compatible endpoint streaming SSE chunks. Covers
// an answer (context, thinking, reply, text byte for byte), a DM, a message it must ignore, a
// stall, an error mid-stream, an HTTP error, and a Parley disconnect mid-answer (the StreamWriter
// resumes and the stored text is exactly the model's).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { ParleyClient, type WebSocketLike } from '../../../clients/js/src/client.js';
import type { Msg, User } from '../../../clients/js/src/types.js';
import { Assistant, type AnswerReport } from '../src/bot.js';

const BOT: User = { id: 50, username: 'helper', displayName: 'Helper', bot: true };
const ANA: User = { id: 1, username: 'ana', displayName: 'Ana', bot: false };
const enc = new TextEncoder();

// ---- fake Parley ----

interface Stream {
  seq: number;
  chat: string;
  body: string;
  state: string | null;
  replyTo: number | null;
  clientMsgId: string;
}

class FakeParley {
  wss!: WebSocketServer;
  port = 0;
  chats = new Map<string, Msg[]>();
  streams = new Map<string, Stream>(); // by clientMsgId
  typing: { chat: string; on: boolean }[] = [];
  sockets = new Set<WebSocket>();
  connections = 0;
  /** Called for each append applied; returning true drops the socket before the reply. */
  dropAfterAppend: ((s: Stream) => boolean) | null = null;

  async start(): Promise<void> {
    this.wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => this.wss.once('listening', () => r()));
    this.port = (this.wss.address() as AddressInfo).port;
    this.wss.on('connection', (ws) => {
      this.connections++;
      this.sockets.add(ws);
      ws.on('close', () => this.sockets.delete(ws));
      (ws as WebSocket & { subs?: Set<string> }).subs = new Set();
      ws.on('message', (data) => this.#onFrame(ws, JSON.parse(String(data))));
    });
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    return new Promise((r) => this.wss.close(() => r()));
  }

  #msgs(chat: string): Msg[] {
    let l = this.chats.get(chat);
    if (!l) this.chats.set(chat, (l = []));
    return l;
  }

  /** A person posts: stored, and chat.activity goes to the bot's sockets. */
  post(chat: string, author: User, body: string, mentioned: boolean): Msg {
    const list = this.#msgs(chat);
    const m: Msg = { seq: list.length + 1, chat, author, body, clientMsgId: null, createdAt: Date.now(), kind: 'text', stream: null, streaming: false };
    list.push(m);
    const ev = { ev: 'chat.activity', chat, lastMsg: m, unread: 1, mentions: mentioned ? 1 : 0, lastActivity: m.createdAt, seq: m.seq, mentioned };
    for (const s of this.sockets) s.send(JSON.stringify(ev));
    return m;
  }

  #reply(ws: WebSocket, id: number, result: Record<string, unknown>): void {
    ws.send(JSON.stringify({ id, ok: true, ...result }));
  }
  #fail(ws: WebSocket, id: number, code: string, extra: Record<string, unknown> = {}): void {
    ws.send(JSON.stringify({ id, ok: false, error: { code, message: code, ...extra } }));
  }

  #onFrame(ws: WebSocket, f: Record<string, any>): void {
    const id = f.id as number;
    switch (f.op) {
      case 'auth':
        return this.#reply(ws, id, { user: BOT });
      case 'ping':
        return this.#reply(ws, id, { now: Date.now() });
      case 'sub': {
        (ws as WebSocket & { subs: Set<string> }).subs.add(f.chat);
        const list = this.#msgs(f.chat);
        const chat = { slug: f.chat, title: f.chat, isPublic: false, maxParticipants: null, invitePolicy: 'members', archived: false, createdAt: 1, lastActivity: 1, lastSeq: list.length, participantCount: 2, activeUsers: [] };
        return this.#reply(ws, id, { chat, msgs: list.filter((m) => m.seq > (f.since ?? list.length)), lastSeq: list.length, reset: false, presence: [], typing: [], activeUsers: [], streams: [] });
      }
      case 'typing':
        // as the server: typing is for subscribers
        if (!(ws as WebSocket & { subs: Set<string> }).subs.has(f.chat)) return this.#fail(ws, id, 'bad_request');
        this.typing.push({ chat: f.chat, on: f.on });
        return this.#reply(ws, id, {});
      case 'msg.history': {
        const list = this.#msgs(f.chat).filter((m) => f.before === undefined || m.seq < f.before);
        return this.#reply(ws, id, { msgs: list.slice(-(f.limit ?? 50)), hasMore: false });
      }
      case 'msg.stream.start': {
        const existing = this.streams.get(f.clientMsgId);
        if (existing) return this.#reply(ws, id, { msg: this.#folded(existing), duplicate: true });
        const list = this.#msgs(f.chat);
        const s: Stream = { seq: list.length + 1, chat: f.chat, body: '', state: null, replyTo: f.replyTo ?? null, clientMsgId: f.clientMsgId };
        list.push(this.#folded(s));
        this.streams.set(f.clientMsgId, s);
        return this.#reply(ws, id, { msg: this.#folded(s), duplicate: false });
      }
      case 'msg.stream.append': {
        const s = [...this.streams.values()].find((x) => x.chat === f.chat && x.seq === f.seq);
        if (!s) return this.#fail(ws, id, 'not_found');
        const have = enc.encode(s.body);
        const d = enc.encode(f.delta);
        if (s.state !== null) return this.#fail(ws, id, 'conflict', { length: have.length });
        if (f.offset === have.length) {
          s.body += f.delta;
          if (this.dropAfterAppend?.(s)) {
            ws.terminate(); // applied, but the reply never leaves
            return;
          }
          return this.#reply(ws, id, { seq: s.seq, length: have.length + d.length });
        }
        if (f.offset + d.length <= have.length && Buffer.from(have.subarray(f.offset, f.offset + d.length)).equals(Buffer.from(d))) {
          return this.#reply(ws, id, { seq: s.seq, length: have.length });
        }
        return this.#fail(ws, id, 'conflict', { length: have.length });
      }
      case 'msg.stream.end': {
        const s = [...this.streams.values()].find((x) => x.chat === f.chat && x.seq === f.seq);
        if (!s) return this.#fail(ws, id, 'not_found');
        if (s.state !== null) return this.#fail(ws, id, 'conflict');
        s.state = f.state ?? 'done';
        const list = this.#msgs(f.chat);
        const entry: Msg = { seq: list.length + 1, chat: f.chat, author: BOT, body: s.body, clientMsgId: null, createdAt: Date.now(), kind: 'stream.end', ref: s.seq, state: s.state as 'done' };
        list.push(entry);
        return this.#reply(ws, id, { msg: entry });
      }
      default:
        return this.#fail(ws, id, 'bad_request');
    }
  }

  #folded(s: Stream): Msg {
    return {
      seq: s.seq,
      chat: s.chat,
      author: BOT,
      body: s.body,
      clientMsgId: s.clientMsgId,
      createdAt: 1,
      kind: 'text',
      streaming: s.state === null,
      stream: { state: (s.state ?? 'streaming') as 'streaming', length: enc.encode(s.body).length },
    };
  }
}

// ---- fake model ----

type Mode =
  | { kind: 'ok'; tokens: string[] }
  | { kind: 'stall'; tokens: string[] }
  | { kind: 'error-mid'; tokens: string[] }
  | { kind: 'http-error' };

class FakeLlm {
  server!: http.Server;
  url = '';
  mode: Mode = { kind: 'ok', tokens: [] };
  requests: any[] = [];
  open = new Set<http.ServerResponse>();

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => void this.#serve(JSON.parse(body), res));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/chat/completions`;
  }

  stop(): Promise<void> {
    for (const r of this.open) r.destroy();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  async #serve(body: any, res: http.ServerResponse): Promise<void> {
    this.requests.push(body);
    const mode = this.mode;
    if (mode.kind === 'http-error') {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"model not loaded"}}');
      return;
    }
    this.open.add(res);
    res.on('close', () => this.open.delete(res));
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(': keep-alive comment\n\n');
    for (const t of mode.tokens) {
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: t }, index: 0 }] })}\n\n`);
      // A token at a time, as a model produces them (lets appends interleave with tokens).
      await new Promise((r) => setTimeout(r, 3));
    }
    if (mode.kind === 'stall') return; // never a byte more
    if (mode.kind === 'error-mid') {
      res.end(`data: ${JSON.stringify({ error: { message: 'out of memory' } })}\n\n`);
      return;
    }
    res.write(`data: ${JSON.stringify({ choices: [{ delta: {}, finish_reason: 'stop', index: 0 }] })}\n\n`);
    res.end('data: [DONE]\n\n');
  }
}

// ---- rig ----

const parley = new FakeParley();
const llm = new FakeLlm();
let client: ParleyClient;
let bot: Assistant;
const answers: AnswerReport[] = [];
let waiters: ((a: AnswerReport) => void)[] = [];

function nextAnswer(): Promise<AnswerReport> {
  return new Promise((r) => waiters.push(r));
}

before(async () => {
  await parley.start();
  await llm.start();
  client = new ParleyClient({
    url: `ws://127.0.0.1:${parley.port}/ws`,
    token: 'bot-token',
    WebSocket: WebSocket as unknown as new (url: string) => WebSocketLike,
    backoff: { baseMs: 20, maxMs: 50 },
    heartbeatMs: 0,
  });
  bot = new Assistant(client, {
    llm: { url: llm.url, model: 'tiny', key: 'k-1', stallMs: 400 },
    contextMessages: 5,
    systemPrompt: 'be brief',
    onAnswer: (a) => {
      answers.push(a);
      for (const w of waiters.splice(0)) w(a);
    },
  });
  bot.start();
  await client.connect();
});

after(async () => {
  bot.stop();
  client.close();
  await parley.stop();
  await llm.stop();
});

function streamOf(a: AnswerReport): Stream {
  const s = [...parley.streams.values()].find((x) => x.chat === a.chat && x.seq === a.seq);
  assert.ok(s, 'the answer was streamed');
  return s;
}

describe('assistant', () => {
  it('answers a mention by streaming the model text as a reply, with the chat as context', async () => {
    parley.post('room', ANA, 'what is parley?', false);
    parley.post('room', ANA, 'it is a chat server', false);
    llm.mode = { kind: 'ok', tokens: ['Par', 'ley ', 'is a ', 'chat ', 'server ', '🙂'] };
    const done = nextAnswer();
    const q = parley.post('room', ANA, '@helper summarise please', true);
    const a = await done;
    assert.equal(a.state, 'done');
    const s = streamOf(a);
    assert.equal(s.body, 'Parley is a chat server 🙂', 'the stored text is the model text byte for byte');
    assert.equal(s.state, 'done');
    assert.equal(s.replyTo, q.seq);
    const req = llm.requests.at(-1);
    assert.equal(req.model, 'tiny');
    assert.equal(req.stream, true);
    assert.deepEqual(req.messages, [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'Ana: what is parley?' },
      { role: 'user', content: 'Ana: it is a chat server' },
      { role: 'user', content: 'Ana: @helper summarise please' },
    ]);
    assert.deepEqual(parley.typing.filter((t) => t.chat === 'room')[0], { chat: 'room', on: true }, 'thinking first');
  });

  it('answers any message in a DM (mentioned) and ignores a group message that does not mention it', async () => {
    const before = llm.requests.length;
    parley.post('lobby', ANA, 'hello all', false);
    llm.mode = { kind: 'ok', tokens: ['Hi ', 'Ana'] };
    const done = nextAnswer();
    parley.post('dm-ana-helper', ANA, 'hi there', true);
    const a = await done;
    assert.equal(a.chat, 'dm-ana-helper');
    assert.equal(streamOf(a).body, 'Hi Ana');
    assert.equal(llm.requests.length, before + 1, 'only the DM reached the model');
  });

  it('a stalled model ends the answer with "error", the text so far intact', async () => {
    llm.mode = { kind: 'stall', tokens: ['Thinking ', 'about ', 'it'] };
    const done = nextAnswer();
    parley.post('room', ANA, '@helper hard question', true);
    const a = await done;
    assert.equal(a.state, 'error');
    assert.match(a.error!, /stalled|no answer/);
    const s = streamOf(a);
    assert.equal(s.state, 'error');
    assert.equal(s.body, 'Thinking about it');
  });

  it('an error event mid-stream ends with "error"; an HTTP error before any token says so', async () => {
    llm.mode = { kind: 'error-mid', tokens: ['Half ', 'an answer'] };
    let done = nextAnswer();
    parley.post('room', ANA, '@helper go', true);
    let a = await done;
    assert.equal(a.state, 'error');
    assert.match(a.error!, /out of memory/);
    assert.equal(streamOf(a).body, 'Half an answer');
    assert.equal(streamOf(a).state, 'error');

    llm.mode = { kind: 'http-error' };
    done = nextAnswer();
    parley.post('room', ANA, '@helper again', true);
    a = await done;
    assert.equal(a.state, 'error');
    const s = streamOf(a);
    assert.equal(s.state, 'error');
    assert.match(s.body, /^Sorry, I could not answer: the model answered HTTP 500/);
  });

  it('a Parley disconnect mid-answer: the writer resumes on the new connection, the text is intact', async () => {
    const tokens = Array.from({ length: 40 }, (_, i) => `tok${i} `);
    llm.mode = { kind: 'ok', tokens };
    let appends = 0;
    const conns = parley.connections;
    parley.dropAfterAppend = () => ++appends === 3; // the third append is stored, its reply lost
    const done = nextAnswer();
    parley.post('room', ANA, '@helper long answer', true);
    const a = await done;
    parley.dropAfterAppend = null;
    assert.ok(parley.connections > conns, 'the bot reconnected');
    assert.equal(a.state, 'done');
    const s = streamOf(a);
    assert.equal(s.body, tokens.join(''), 'nothing lost, nothing doubled');
    assert.equal(s.state, 'done');
  });
});
