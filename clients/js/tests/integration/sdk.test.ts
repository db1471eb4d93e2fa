// The SDK against the real server binary: connect and authenticate (token and cookie), chats,
// send/receive, and the whole reconnect story: a server restart or crash, and a client whose
// connection dies while others keep talking. Resume must lose nothing and duplicate nothing.
//
// The binary is build/parley (build it with `make build/parley` in the project root), or
// $PARLEY_BIN. The server is started with tests/integration/lib/server.mjs: its own free port,
// a temporary PARLEY_DATA, PARLEY_RATE_LIMITS=0.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WS from 'ws';
import {
  applyBatch,
  applyEntry,
  emptyTimeline,
  textMessages,
  type Timeline,
  changePassword,
  deleteAvatar,
  login,
  logout,
  uploadAvatar,
  me,
  ParleyClient,
  ParleyError,
  signup as sdkSignup,
  snippetParts,
  type Msg,
  type OutgoingMessage,
  type ParleyClientEvents,
  type User,
  type WebSocketLike,
} from '../../src/index.js';

const TIMEOUT_MS = Number(process.env.PARLEY_TEST_TIMEOUT_MS || 20000);

// ------------------------------------------------------------------------------------------------
// The server

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'tests/integration/lib/server.mjs')) && fs.existsSync(path.join(dir, 'Makefile'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('project root (with tests/integration/lib/server.mjs) not found');
    dir = up;
  }
}
const ROOT = findRoot();
process.env.PARLEY_BIN ??= 'build/parley';

interface ParleyServer {
  url: string;
  wsUrl: string;
  origin: string;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  kill9(): Promise<unknown>;
  restart(): Promise<unknown>;
  dispose(): Promise<void>;
  tail(lines?: number): string;
}

async function startServer(): Promise<ParleyServer> {
  const bin = path.resolve(ROOT, process.env.PARLEY_BIN!);
  if (!fs.existsSync(bin)) throw new Error(`no server binary at ${bin}: run \`make build/parley\` in ${ROOT}`);
  const lib = (await import(pathToFileURL(path.join(ROOT, 'tests/integration/lib/server.mjs')).href)) as {
    startServer(opts?: object): Promise<ParleyServer>;
  };
  return lib.startServer();
}

// ------------------------------------------------------------------------------------------------
// Helpers

let counter = 0;
function uname(prefix: string): string {
  return `${prefix}_${process.pid.toString(36)}${(counter++).toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 32);
}

interface Session {
  user: User;
  token: string;
  cookie: string;
}

async function signup(srv: ParleyServer, username: string): Promise<Session> {
  const res = await fetch(`${srv.url}/api/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'correct horse battery' }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const json = (await res.json()) as { user: User; token: string };
  assert.equal(res.status, 201, JSON.stringify(json));
  const cookie = res.headers
    .getSetCookie()
    .find((c) => c.startsWith('parley_session='))!
    .split(';')[0]!;
  return { user: json.user, token: json.token, cookie };
}

/** A client plus everything it emitted, and the raw ws sockets it opened. */
class Probe {
  readonly client: ParleyClient;
  readonly sockets: WS[] = [];
  readonly msgs = new Map<string, Msg[]>();
  readonly log: { name: string; payload: unknown }[] = [];

  constructor(srv: ParleyServer, auth: { token?: string; cookie?: string; origin?: string }) {
    this.client = new ParleyClient({
      url: srv.wsUrl,
      token: auth.token,
      requestTimeoutMs: TIMEOUT_MS,
      createWebSocket: (url) => {
        const headers: Record<string, string> = {};
        if (auth.cookie) headers.cookie = auth.cookie;
        const opts: WS.ClientOptions = { headers, perMessageDeflate: false };
        if (auth.origin) opts.origin = auth.origin;
        const ws = new WS(url, opts);
        this.sockets.push(ws);
        return ws as unknown as WebSocketLike;
      },
    });
    this.client.on('msg', ({ chat, msg }) => {
      if (!this.msgs.has(chat)) this.msgs.set(chat, []);
      this.msgs.get(chat)!.push(msg);
    });
    for (const name of ['state', 'close', 'unauthorized', 'outgoing', 'subscribed', 'reset', 'protocolError'] as const) {
      this.client.on(name, (payload) => this.log.push({ name, payload }));
    }
  }

  seqs(chat: string): number[] {
    return (this.msgs.get(chat) ?? []).map((m) => m.seq);
  }
  bodies(chat: string): string[] {
    return (this.msgs.get(chat) ?? []).map((m) => m.body);
  }
  get socket(): WS {
    return this.sockets[this.sockets.length - 1]!;
  }

  /** Resolves with the first payload of `name` satisfying pred, among those emitted after the call. */
  next<K extends keyof ParleyClientEvents>(
    name: K,
    pred: (p: ParleyClientEvents[K]) => boolean = () => true,
    what = String(name),
  ): Promise<ParleyClientEvents[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out after ${TIMEOUT_MS} ms waiting for ${what}; log: ${JSON.stringify(this.log.slice(-20))}`));
      }, TIMEOUT_MS);
      const off = this.client.on(name, (p) => {
        if (!pred(p)) return;
        clearTimeout(timer);
        off();
        resolve(p);
      });
    });
  }

  /** Resolves once a msg event for chat satisfying pred has been applied (also if already). */
  msg(chat: string, pred: (m: Msg) => boolean, what = 'a msg'): Promise<Msg> {
    const have = (this.msgs.get(chat) ?? []).find(pred);
    if (have) return Promise.resolve(have);
    return this.next('msg', (e) => e.chat === chat && pred(e.msg), what).then((e) => e.msg);
  }

  /** Resolves with the `sent` outgoing of clientMsgId (also if already sent). */
  sent(clientMsgId: string): Promise<OutgoingMessage> {
    const done = this.log.find(
      (e) => e.name === 'outgoing' && (e.payload as OutgoingMessage).clientMsgId === clientMsgId && (e.payload as OutgoingMessage).status !== 'pending',
    );
    if (done) return Promise.resolve(done.payload as OutgoingMessage);
    return this.next('outgoing', (o) => o.clientMsgId === clientMsgId && o.status !== 'pending', `outgoing ${clientMsgId}`);
  }

  state(state: string): Promise<unknown> {
    if (this.client.state === state) return Promise.resolve();
    return this.next('state', (s) => s.state === state, `state ${state}`);
  }
}

class FakeTarget {
  listeners = new Map<string, Set<(ev: unknown) => void>>();
  addEventListener(type: string, fn: (ev: unknown) => void): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(fn);
  }
  removeEventListener(type: string, fn: (ev: unknown) => void): void {
    this.listeners.get(type)?.delete(fn);
  }
}

class FakeDocument extends FakeTarget {
  visibilityState = 'visible';
  setVisible(v: boolean): void {
    this.visibilityState = v ? 'visible' : 'hidden';
    for (const fn of this.listeners.get('visibilitychange') ?? []) fn({});
  }
}

/** Asserts seqs is exactly from, from+1, ... (no gap, no duplicate). */
function assertRun(seqs: number[], from: number, count: number, what: string): void {
  assert.deepEqual(seqs, Array.from({ length: count }, (_, i) => from + i), `${what}: ${JSON.stringify(seqs)}`);
}

// ------------------------------------------------------------------------------------------------

describe('SDK against the real server', { timeout: 180000 }, () => {
  let srv: ParleyServer;
  let ana: Session;
  let ben: Session;
  const probes: Probe[] = [];
  const probe = (auth: ConstructorParameters<typeof Probe>[1]) => {
    const p = new Probe(srv, auth);
    probes.push(p);
    return p;
  };

  before(async () => {
    srv = await startServer();
    [ana, ben] = await Promise.all([signup(srv, uname('ana')), signup(srv, uname('ben'))]);
  });

  after(async () => {
    for (const p of probes) p.client.close();
    if (srv) await srv.dispose();
  });

  it('connects with a token, creates a chat, subscribes, sends and receives', async () => {
    const a = probe({ token: ana.token });
    const b = probe({ token: ben.token });
    const [ua, ub] = await Promise.all([a.client.connect(), b.client.connect()]);
    assert.equal(ua.username, ana.user.username);
    assert.equal(ub.id, ben.user.id);
    assert.equal(a.client.state, 'online');

    const { chat } = await a.client.createChat({ title: 'SDK basics', isPublic: true });
    assert.equal(chat.role, 'owner');
    await b.client.joinChat(chat.slug);
    const [sa, sb] = await Promise.all([a.client.subscribe(chat.slug), b.client.subscribe(chat.slug)]);
    assert.equal(sa.lastSeq, 1); // ben's "joined" notice (issue 17)
    assert.equal(sb.chat.slug, chat.slug);

    const out = a.client.send(chat.slug, 'hello ben');
    assert.equal(out.status, 'pending');
    const [sent, got] = await Promise.all([a.sent(out.clientMsgId), b.msg(chat.slug, (m) => m.body === 'hello ben')]);
    assert.equal(sent.status, 'sent');
    assert.equal(sent.seq, 2);
    assert.equal(got.seq, 2);
    assert.equal(got.clientMsgId, out.clientMsgId);
    assert.equal(got.author.username, ana.user.username);

    const reply = await b.client.sendAndWait(chat.slug, 'hi ana');
    assert.equal(reply.seq, 3);
    await a.msg(chat.slug, (m) => m.seq === 3);
    assertRun(a.seqs(chat.slug), 2, 2, 'ana');
    assertRun(b.seqs(chat.slug), 2, 2, 'ben');

    const hist = await b.client.history(chat.slug, { limit: 10 });
    assert.deepEqual(
      hist.msgs.filter((m) => m.kind === 'text').map((m) => m.body),
      ['hello ben', 'hi ana'],
    );
    const list = await a.client.listChats();
    assert.ok(list.chats.some((c) => c.slug === chat.slug));
    const ping = await a.client.ping();
    assert.equal(typeof ping.now, 'number');
  });

  it('search finds messages of the chats one is in, with marked snippets', async () => {
    const a = probe({ token: ana.token });
    const b = probe({ token: ben.token });
    await Promise.all([a.client.connect(), b.client.connect()]);
    const { chat } = await a.client.createChat({ title: 'SDK search', isPublic: true });
    const { chat: mine } = await a.client.createChat({ title: 'SDK search, ana alone', isPublic: false });
    await b.client.joinChat(chat.slug);
    const hit = await a.client.sendAndWait(chat.slug, 'the aardvark sleeps');
    await a.client.sendAndWait(mine.slug, 'another aardvark, private');
    const r = await b.client.search('aardvark');
    assert.equal(r.hasMore, false);
    assert.deepEqual(
      r.results.map((x) => [x.chat.slug, x.msg.seq, snippetParts(x.snippet)]),
      [[chat.slug, hit.seq, [{ text: 'the ', match: false }, { text: 'aardvark', match: true }, { text: ' sleeps', match: false }]]],
    );
    assert.equal((await a.client.search('aardvark')).results.length, 2);
    assert.equal((await a.client.search('aardvark', { chat: mine.slug, limit: 1 })).results[0]!.msg.body, 'another aardvark, private');
    await assert.rejects(b.client.search('aardvark', { limit: 51 }), (err: ParleyError) => err.code === 'bad_request');
  });

  it('members() pages through the participants with their presence; the sub reply counts who is online', async () => {
    const a = probe({ token: ana.token });
    const b = probe({ token: ben.token });
    await Promise.all([a.client.connect(), b.client.connect()]);
    const { chat } = await a.client.createChat({ title: 'Members', isPublic: true });
    await b.client.joinChat(chat.slug);
    const first = await a.client.members(chat.slug, { limit: 1 });
    assert.equal(first.members.length, 1);
    assert.equal(first.hasMore, true);
    assert.equal(first.participantCount, 2);
    const rest = await a.client.members(chat.slug, { after: first.members[0]!.id, limit: 1 });
    assert.equal(rest.hasMore, false);
    const all = await a.client.allMembers(chat.slug, 1);
    assert.deepEqual(all.map((m) => m.id), [first.members[0]!.id, rest.members[0]!.id]);
    assert.deepEqual(all.map((m) => m.username).sort(), [ana.user.username, ben.user.username].sort());
    for (const m of all) assert.equal(m.state, 'online');
    const sub = await a.client.subscribe(chat.slug);
    assert.equal(sub.online, 2);
    assert.equal(sub.presenceMore, false);
    assert.equal(sub.presence.length, 2);
  });

  it('server errors reject with a ParleyError; a refused send is failed and retry/discard work', async () => {
    const a = probe({ token: ana.token });
    const b = probe({ token: ben.token });
    await Promise.all([a.client.connect(), b.client.connect()]);
    const { chat } = await a.client.createChat({ title: 'Private', isPublic: false });
    await assert.rejects(b.client.joinChat(chat.slug), (err: { code: string; message: string }) => {
      assert.equal(err.code, 'not_found');
      assert.equal(typeof err.message, 'string');
      return true;
    });
    await assert.rejects(b.client.getChat('no-such-chat-' + Date.now().toString(36)), (err: { code: string }) => err.code === 'not_found');
    await assert.rejects(b.client.subscribe(chat.slug), (err: { code: string }) => err.code === 'not_found');

    const out = b.client.send(chat.slug, 'let me in');
    const failed = await b.sent(out.clientMsgId);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'not_found');
    // Invited and accepted, the same message goes through on retry, with the same clientMsgId.
    const { invitation } = await a.client.createInvite(chat.slug, ben.user.username);
    await b.client.acceptInvite(invitation.id);
    const confirmed = b.next('outgoing', (o) => o.clientMsgId === out.clientMsgId && o.status === 'sent');
    assert.equal(b.client.retry(out.clientMsgId), true);
    const ok = await confirmed;
    assert.equal(ok.msg?.clientMsgId, out.clientMsgId);
    assert.equal(ok.seq, 2); // after ben's "joined" notice
    assert.equal(b.client.discard(out.clientMsgId), false, 'nothing left to discard');
  });

  it('the message model: a DM, replies, edits, deletions and reactions; a client away folds them on resume into what the live one shows', async () => {
    const a = probe({ token: ana.token });
    const b = probe({ token: ben.token });
    await Promise.all([a.client.connect(), b.client.connect()]);
    const { chat } = await a.client.openDm(ben.user.username);
    assert.equal(chat.kind, 'dm');
    assert.equal(chat.title, ben.user.displayName);
    assert.equal((await b.client.openDm(ana.user.username)).chat.slug, chat.slug);
    const slug = chat.slug;
    const m1 = await a.client.sendAndWait(slug, 'first');
    const m2 = await b.client.sendAndWait(slug, 'second', { replyTo: m1.seq });
    assert.equal(m2.replyTo?.seq, m1.seq);
    assert.equal(m2.replyTo?.preview, 'first');

    // Ben watches live from here; Ana's view stops here and resumes later.
    let live = applyBatch(emptyTimeline(ben.user.id), (await b.client.history(slug)).msgs);
    const sub = await b.client.subscribe(slug);
    live = { ...live, lastSeq: Math.max(live.lastSeq, sub.lastSeq) };
    const off = b.client.on('msg', (e) => {
      if (e.chat === slug) live = applyEntry(live, e.msg);
    });
    let away = applyBatch(emptyTimeline(ana.user.id), (await a.client.history(slug)).msgs);

    const edit = await a.client.editMessage(slug, m1.seq, 'first, edited');
    assert.equal(edit.msg?.kind, 'edit');
    const r1 = await a.client.react(slug, m2.seq, '👍', true);
    assert.equal(r1.msg?.kind, 'reaction');
    assert.equal((await a.client.react(slug, m2.seq, '👍', true)).msg, null);
    await b.client.react(slug, m2.seq, '👍', true);
    const m3 = await b.client.sendAndWait(slug, 'third');
    const del = await b.client.deleteMessage(slug, m3.seq);
    assert.equal(del.msg?.kind, 'delete');
    await b.msg(slug, (m) => m.seq === del.msg!.seq);
    off();

    // Ana resumes from the seq she had and folds what she missed.
    const back = await a.client.subscribe(slug, { since: away.lastSeq });
    away = applyBatch(away, back.msgs, back.lastSeq);
    const view = (t: Timeline) =>
      textMessages(t).map((m) => ({ seq: m.seq, body: m.body, deleted: m.deleted, edited: m.editedAt !== null, n: m.reactions?.map((r) => [r.emoji, r.count]) }));
    assert.deepEqual(view(away), view(live));
    assert.deepEqual(view(live), [
      { seq: m1.seq, body: 'first, edited', deleted: false, edited: true, n: [] },
      { seq: m2.seq, body: 'second', deleted: false, edited: false, n: [['👍', 2]] },
      { seq: m3.seq, body: '', deleted: true, edited: false, n: [] },
    ]);
    const fresh = applyBatch(emptyTimeline(ana.user.id), (await a.client.history(slug)).msgs);
    assert.deepEqual(view(fresh), view(live));
    assert.equal(textMessages(fresh)[1]!.reactions![0]!.me, true);
  });

  it('cookie auth: online on hello; a stale cookie is unauthorized without reconnecting', async () => {
    const c = probe({ cookie: ben.cookie, origin: srv.origin });
    const user = await c.client.connect();
    assert.equal(user.username, ben.user.username);
    const { chats } = await c.client.listChats();
    assert.ok(Array.isArray(chats));

    const bad = probe({ cookie: 'parley_session=' + 'x'.repeat(43), origin: srv.origin });
    const unauthorized = bad.next('unauthorized');
    await assert.rejects(bad.client.connect(), (err: { code: string }) => err.code === 'unauthorized');
    await unauthorized;
    assert.equal(bad.client.state, 'offline');
    assert.equal(bad.sockets.length, 1, 'no reconnect');
  });

  it('a dropped connection resumes from the last seq: missed messages arrive once, in order, and a send made while down is delivered once', async () => {
    const a = probe({ token: ana.token });
    const b = probe({ token: ben.token });
    await Promise.all([a.client.connect(), b.client.connect()]);
    const { chat } = await a.client.createChat({ title: 'Resume', isPublic: true });
    await b.client.joinChat(chat.slug);
    await Promise.all([a.client.subscribe(chat.slug), b.client.subscribe(chat.slug)]);
    for (let i = 1; i <= 3; i++) await b.client.sendAndWait(chat.slug, `before ${i}`);
    await a.msg(chat.slug, (m) => m.seq === 4); // seq 1: ben's "joined" notice (issue 17)

    // Ana's network dies (no close handshake): the SDK notices, reconnects by itself.
    const reconnecting = a.state('reconnecting');
    a.socket.terminate();
    await reconnecting;
    const offline = a.client.send(chat.slug, 'sent while down');
    assert.equal(offline.status, 'pending');
    // Ben keeps talking meanwhile (the SDK may already be back: it does not matter).
    for (let i = 1; i <= 5; i++) await b.client.sendAndWait(chat.slug, `during ${i}`);

    await a.state('online');
    const sent = await a.sent(offline.clientMsgId);
    assert.equal(sent.status, 'sent');
    await a.msg(chat.slug, (m) => m.clientMsgId === offline.clientMsgId);
    await b.msg(chat.slug, (m) => m.clientMsgId === offline.clientMsgId);
    await b.client.sendAndWait(chat.slug, 'after');
    const total = 1 + 3 + 5 + 1 + 1;
    await a.msg(chat.slug, (m) => m.seq === total);
    await b.msg(chat.slug, (m) => m.seq === total);
    assertRun(a.seqs(chat.slug), 2, total - 1, 'ana (resumed)');
    assertRun(b.seqs(chat.slug), 2, total - 1, 'ben');
    assert.equal(a.bodies(chat.slug).filter((x) => x === 'sent while down').length, 1);
    const hist = await a.client.history(chat.slug, { limit: 50 });
    assertRun(
      hist.msgs.map((m) => m.seq),
      1,
      total,
      'history',
    );
    assert.equal(hist.msgs.filter((m) => m.clientMsgId === offline.clientMsgId).length, 1);
    assert.ok(a.sockets.length >= 2, 'a new socket was opened');
  });

  for (const how of ['restart', 'kill9'] as const) {
    it(`server ${how === 'restart' ? 'restart (SIGTERM)' : 'crash (SIGKILL)'}: both clients reconnect by themselves, resume, and pending sends are delivered exactly once`, async () => {
      const a = probe({ token: ana.token });
      const b = probe({ token: ben.token });
      await Promise.all([a.client.connect(), b.client.connect()]);
      const { chat } = await a.client.createChat({ title: `Restart ${how}`, isPublic: true });
      await b.client.joinChat(chat.slug);
      await Promise.all([a.client.subscribe(chat.slug), b.client.subscribe(chat.slug)]);
      await a.client.sendAndWait(chat.slug, 'one');
      await b.msg(chat.slug, (m) => m.seq === 2); // seq 1: ben's "joined" notice (issue 17)

      const downA = a.state('reconnecting');
      const downB = b.state('reconnecting');
      // A send on its way while the server goes down: it may or may not be stored.
      const inflight = a.client.send(chat.slug, 'in flight');
      if (how === 'restart') await srv.stop();
      else await srv.kill9();
      await Promise.all([downA, downB]);
      const whileDown = a.client.send(chat.slug, 'while down');
      const fromBen = b.client.send(chat.slug, 'ben while down');
      assert.equal(a.client.state, 'reconnecting');

      await srv.start(); // same port, same data directory
      await Promise.all([a.state('online'), b.state('online')]);
      const confirmed = await Promise.all([a.sent(inflight.clientMsgId), a.sent(whileDown.clientMsgId), b.sent(fromBen.clientMsgId)]);
      for (const o of confirmed) assert.equal(o.status, 'sent', JSON.stringify(o));
      const total = 1 + 4;
      await a.msg(chat.slug, (m) => m.seq === total);
      await b.msg(chat.slug, (m) => m.seq === total);
      // One more round trip on the fresh connections, then nothing must have been doubled.
      await b.client.sendAndWait(chat.slug, 'after');
      await a.msg(chat.slug, (m) => m.seq === total + 1);
      assertRun(a.seqs(chat.slug), 2, total, 'ana');
      assertRun(b.seqs(chat.slug), 2, total, 'ben');
      const hist = await a.client.history(chat.slug, { limit: 50 });
      const bodies = hist.msgs.filter((m) => m.kind === 'text').map((m) => m.body).sort();
      assert.deepEqual(bodies, ['after', 'ben while down', 'in flight', 'one', 'while down'].sort());
      assert.deepEqual(a.client.outgoing(), []);
      assert.deepEqual(b.client.outgoing(), []);
    });
  }

  it('typing and presence reported by the SDK reach the other side', async () => {
    // Fresh users: presence is the aggregate of all of a user's sockets.
    const [u1, u2] = await Promise.all([signup(srv, uname('ty')), signup(srv, uname('pr'))]);
    const a = probe({ token: u1.token });
    const b = probe({ token: u2.token });
    await Promise.all([a.client.connect(), b.client.connect()]);
    const { chat } = await a.client.createChat({ title: 'Typing', isPublic: true });
    await b.client.joinChat(chat.slug);
    await Promise.all([a.client.subscribe(chat.slug), b.client.subscribe(chat.slug)]);

    const typer = b.client.typingController(chat.slug);
    const shown = a.next('typing', (e) => e.chat === chat.slug && e.users.some((u) => u.id === u2.user.id), 'ben typing');
    typer.keystroke();
    await shown;
    const gone = a.next('typing', (e) => e.chat === chat.slug && e.users.length === 0, 'typing cleared');
    typer.cleared();
    await gone;

    const doc = new FakeDocument();
    const win = new FakeTarget();
    const away = a.next('presence', (p) => p.user.id === u2.user.id && p.state === 'away', 'ben away');
    const detach = b.client.attachVisibility(doc, win);
    try {
      doc.setVisible(false);
      await away;
      const back = a.next('presence', (p) => p.user.id === u2.user.id && p.state === 'online', 'ben online');
      doc.setVisible(true);
      await back;
    } finally {
      detach(); // its 5-minute idle timer would keep the test process alive
    }
  });

  it('HTTP helpers: signup, login, me, logout, with errors as ParleyError', async () => {
    const opts = { baseUrl: srv.url };
    const username = uname('dee');
    const created = await sdkSignup({ username, password: 'correct horse battery', displayName: 'Dee' }, opts);
    assert.equal(created.user.displayName, 'Dee');
    await assert.rejects(sdkSignup({ username, password: 'correct horse battery' }, opts), (err: ParleyError) => err.code === 'conflict');
    await assert.rejects(login({ username, password: 'wrong password!' }, opts), (err: ParleyError) => err.code === 'unauthorized');
    const session = await login({ username, password: 'correct horse battery' }, opts);
    assert.equal((await me({ ...opts, token: session.token }))?.username, username);
    const c = probe({ token: session.token });
    assert.equal((await c.client.connect()).username, username);
    const unauthorized = c.next('unauthorized');
    await logout({ ...opts, token: session.token });
    assert.equal(await me({ ...opts, token: session.token }), null);
    await unauthorized;
  });

  it('logout ends the session: close 4001, unauthorized, no reconnect', async () => {
    const fresh = await signup(srv, uname('cy'));
    const c = probe({ token: fresh.token });
    await c.client.connect();
    const unauthorized = c.next('unauthorized');
    const res = await fetch(`${srv.url}/api/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fresh.token}` },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    assert.equal(res.status, 204);
    const ev = await unauthorized;
    assert.equal(ev.code, 4001);
    assert.equal(c.client.state, 'offline');
    const closes = c.log.filter((e) => e.name === 'close').map((e) => e.payload as ParleyClientEvents['close']);
    assert.equal(closes.length, 1);
    assert.equal(closes[0]!.code, 4001);
    assert.equal(closes[0]!.reconnectInMs, null, 'no reconnect scheduled');
    assert.equal(c.sockets.length, 1, 'no reconnect after 4001');
  });
  it('issue 15: a client with the chat open makes the chat.activity the server sends a client without it', async () => {
    const [eve, fay] = await Promise.all([signup(srv, uname('eve')), signup(srv, uname('fay'))]);
    const e = probe({ token: eve.token });
    const watching = probe({ token: fay.token }); // has the chat open: the server sends it no chat.activity
    const listing = probe({ token: fay.token }); // on the chat list: the server's own events
    await Promise.all([e.client.connect(), watching.client.connect(), listing.client.connect()]);
    const { chat } = await e.client.createChat({ title: `Counted ${uname('t')}`, isPublic: true });
    await watching.client.joinChat(chat.slug);
    await e.client.sendAndWait(chat.slug, 'before the sub');
    await watching.client.subscribe(chat.slug);

    // Listening before each send: the other side may hear of it before the sender's ack.
    const shown = (p: Probe, body: string) => p.next('chat.activity', (x) => x.chat === chat.slug && x.lastMsg?.body === body);
    const bodies = ['one', `two for @${fay.user.username}`, 'three'];
    for (const body of bodies) {
      const both = Promise.all([shown(watching, body), shown(listing, body)]);
      const sent = await e.client.sendAndWait(chat.slug, body);
      const [mine, server] = await both;
      assert.equal(mine.seq, sent.seq);
      assert.deepEqual(
        [mine.unread, mine.mentions, mine.mentioned, mine.lastMsg?.seq],
        [server.unread, server.mentions, server.mentioned, server.lastMsg?.seq],
        `the same row for "${body}"`,
      );
    }
    const four = shown(listing, 'four');
    await e.client.sendAndWait(chat.slug, 'four');
    const last = await four;
    assert.deepEqual([last.unread, last.mentions], [5, 1]);
    // Reading on the watching device: the server's event reaches it and its count goes to 0.
    const cleared = watching.next('chat.activity', (x) => x.chat === chat.slug && x.unread === 0);
    await watching.client.markRead(chat.slug, last.seq);
    assert.equal((await cleared).mentions, 0);
  });

  it('issue 18: chat.activity without a subscription, setNotify, browse, updateMe, avatar, password', async () => {
    const opts = { baseUrl: srv.url };
    const [cy, dee] = await Promise.all([signup(srv, uname('cy')), signup(srv, uname('dee'))]);
    const c = probe({ token: cy.token });
    const d = probe({ token: dee.token });
    await Promise.all([c.client.connect(), d.client.connect()]);
    const { chat } = await c.client.createChat({ title: `Live list ${uname('t')}`, isPublic: true });
    await d.client.joinChat(chat.slug);

    // Dee never subscribes: her list still hears of the message, with her unread count. Seq 1 is
    // her own "joined" notice (issue 17), which is not unread for her.
    const activity = d.next('chat.activity', (e) => e.chat === chat.slug && e.seq === 2);
    await c.client.sendAndWait(chat.slug, 'news');
    const e = await activity;
    assert.equal(e.unread, 1);
    assert.equal(e.lastMsg?.body, 'news');

    assert.deepEqual(await d.client.setNotify(chat.slug, 'all'), { chat: chat.slug, level: 'all' });
    const listed = (await d.client.listChats()).chats.find((x) => x.slug === chat.slug);
    assert.equal(listed?.notify, 'all');
    const found = await d.client.browse({ q: 'live list' });
    assert.ok(found.chats.some((x) => x.slug === chat.slug && x.joined && x.participantCount === 2));

    const renamed = d.next('user.updated', (x) => x.user.id === cy.user.id);
    assert.equal((await c.client.updateMe({ displayName: 'Cy Renamed' })).user.displayName, 'Cy Renamed');
    assert.equal((await renamed).user.displayName, 'Cy Renamed');
    assert.equal(c.client.user?.displayName, 'Cy Renamed');

    const png = fs.readFileSync(path.join(ROOT, 'tests/integration/fixtures/avatar-300x200.png'));
    const withAvatar = await uploadAvatar(new Blob([png], { type: 'image/png' }), { ...opts, token: cy.token });
    assert.match(withAvatar.avatar ?? '', /^\/avatars\/[0-9a-f]{64}\.png$/);
    await assert.rejects(
      uploadAvatar(new Blob([Buffer.from('not a picture')], { type: 'image/png' }), { ...opts, token: cy.token }),
      (err: ParleyError) => err.code === 'bad_request',
    );
    assert.equal((await deleteAvatar({ ...opts, token: cy.token })).avatar, null);

    await assert.rejects(
      changePassword({ password: 'not the password', newPassword: 'a new good one' }, { ...opts, token: dee.token }),
      (err: ParleyError) => err.code === 'unauthorized',
    );
    await changePassword({ password: 'correct horse battery', newPassword: 'a new good one' }, { ...opts, token: dee.token });
    await login({ username: dee.user.username, password: 'a new good one' }, opts);
  });
});
