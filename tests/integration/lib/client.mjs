// A small promise-based client for Parley's HTTP API and WebSocket protocol, for the
// integration tests. Everything waits on events or replies with a timeout: no fixed sleeps.
//
//   const { user, token, cookie } = await signup(srv, uname('ana'));
//   const c = await connect(srv, { token });          // or { cookie, origin: srv.origin }
//   const { chat } = await c.ok('chat.create', { title: 'Design', isPublic: true });
//   const reply = await c.request('msg.send', { chat: chat.slug, body: 'hi' });
//   const ev = await c.waitFor((e) => e.ev === 'msg' && e.msg.seq === 1);

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after } from 'node:test';
import WebSocket from 'ws';

export const TIMEOUT_MS = Number(process.env.PARLEY_TEST_TIMEOUT_MS || 8000);
export const PASSWORD = 'correct horse battery';

const baseUrl = (server) => (typeof server === 'string' ? server : server.url);

// A fresh valid username (3-32 of [a-z0-9_.-]) starting with prefix.
export function uname(prefix = 'u') {
  return `${prefix}_${crypto.randomBytes(4).toString('hex')}`.slice(0, 32);
}

// ---------------------------------------------------------------------------------------------
// HTTP

// Sends one HTTP request. opts: json (body encoded as JSON), body (raw string/Buffer), headers,
// cookie ("parley_session=..."), token (bearer), origin. Returns {status, headers, text, json,
// setCookies}; json is null when the body is not JSON.
export async function http(server, method, path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  }
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.origin) headers.origin = opts.origin;
  const res = await fetch(baseUrl(server) + path, {
    method,
    headers,
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(opts.timeout ?? TIMEOUT_MS),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json, setCookies: res.headers.getSetCookie() };
}

// The parley_session Set-Cookie header line of a response, or undefined.
export function sessionSetCookie(res) {
  return res.setCookies.find((c) => /^parley_session=/.test(c));
}

// "parley_session=<value>" (ready for a Cookie header) from a response.
export function sessionCookie(res) {
  const line = sessionSetCookie(res);
  return line ? line.split(';')[0].trim() : undefined;
}

function session(res, expectStatus, what) {
  assert.equal(res.status, expectStatus, `${what}: HTTP ${res.status} ${res.text}`);
  assert.ok(res.json && res.json.user && typeof res.json.token === 'string', `${what}: ${res.text}`);
  const cookie = sessionCookie(res);
  assert.ok(cookie, `${what}: no parley_session cookie in ${JSON.stringify(res.setCookies)}`);
  return { user: res.json.user, token: res.json.token, cookie, res };
}

// POST /api/signup; asserts 201. Returns {user, token, cookie, res}.
export async function signup(server, username, password = PASSWORD, displayName) {
  const json = { username, password };
  if (displayName !== undefined) json.displayName = displayName;
  return session(await http(server, 'POST', '/api/signup', { json }), 201, `signup ${username}`);
}

// POST /api/login; asserts 200. Returns {user, token, cookie, res}.
export async function login(server, username, password = PASSWORD) {
  const res = await http(server, 'POST', '/api/login', { json: { username, password } });
  return session(res, 200, `login ${username}`);
}

// Signs up several users in parallel (hashing runs on the server's thread pool).
export function signupMany(server, prefixes) {
  return Promise.all(prefixes.map((p) => signup(server, uname(p))));
}

// ---------------------------------------------------------------------------------------------
// WebSocket

function timeoutError(what, ms) {
  return new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export class Client {
  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.frames = []; // every parsed frame, in arrival order
    this.events = []; // frames with "ev"
    this.nullReplies = []; // replies with "id": null
    this.pending = new Map(); // id -> {resolve, reject, timer, op}
    this.waiters = new Set(); // {pred, resolve, reject, timer, list, what}
    this.pingLog = []; // arrival times of WebSocket pings from the server
    this.user = null;
    this.closeInfo = null; // {code, reason} once closed
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: Date.now() };
        const err = new Error(`socket closed (code ${code} ${reason})`);
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(new Error(`${err.message} while waiting for the reply to ${p.op}`));
        }
        this.pending.clear();
        for (const w of this.waiters) {
          clearTimeout(w.timer);
          w.reject(new Error(`${err.message} while waiting for ${w.what}`));
        }
        this.waiters.clear();
        resolve(this.closeInfo);
      });
    });
    ws.on('error', (err) => {
      this.lastError = err;
    });
    ws.on('ping', () => {
      this.pingLog.push(Date.now());
      this.#check();
    });
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  #onMessage(data, isBinary) {
    let frame;
    try {
      frame = JSON.parse(data.toString('utf8'));
    } catch {
      frame = { unparsable: data.toString('utf8'), isBinary };
    }
    this.frames.push(frame);
    if (frame && typeof frame === 'object' && 'ev' in frame) {
      this.events.push(frame);
    } else if (frame && typeof frame === 'object' && 'id' in frame) {
      if (frame.id === null) {
        this.nullReplies.push(frame);
      } else {
        const p = this.pending.get(frame.id);
        if (p) {
          this.pending.delete(frame.id);
          clearTimeout(p.timer);
          p.resolve(frame);
        } else {
          (this.unmatched ??= []).push(frame);
        }
      }
    }
    for (const w of [...this.waiters]) this.#checkWaiter(w);
  }

  #checkWaiter(w) {
    const list = w.list();
    for (; w.index < list.length; w.index++) {
      if (w.pred(list[w.index])) {
        this.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(list[w.index]);
        return;
      }
    }
  }

  #check() {
    for (const w of [...this.waiters]) this.#checkWaiter(w);
  }

  #wait(list, pred, what, { timeout = TIMEOUT_MS, from = 0 } = {}) {
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject, list, what, index: from };
      this.waiters.add(w);
      this.#checkWaiter(w);
      if (!this.waiters.has(w)) return;
      if (this.closeInfo) {
        this.waiters.delete(w);
        reject(new Error(`socket already closed (code ${this.closeInfo.code}) while waiting for ${what}`));
        return;
      }
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(timeoutError(what, timeout));
      }, timeout);
    });
  }

  // Resolves with the first event (frame with "ev"), at index >= opts.from of this.events, that
  // satisfies pred. Rejects on timeout or close.
  waitFor(pred, opts = {}) {
    return this.#wait(() => this.events, pred, opts.what || `an event matching ${pred}`, opts);
  }

  // Resolves with the first {"id": null} reply at index >= opts.from.
  waitNullReply(opts = {}) {
    return this.#wait(() => this.nullReplies, () => true, 'a reply with id null', opts);
  }

  // Resolves when at least n WebSocket pings have been received from the server.
  waitPings(n, opts = {}) {
    return this.#wait(() => this.pingLog, () => true, `${n} server pings`, { ...opts, from: n - 1 });
  }

  // Resolves once a `msg` event for chat with seq >= seq has arrived.
  waitSeq(chat, seq, opts = {}) {
    return this.waitFor((e) => e.ev === 'msg' && e.chat === chat && e.msg.seq >= seq, {
      what: `msg event ${chat}#${seq}`,
      ...opts,
    });
  }

  // msg events for chat received so far (from index `from` of this.events).
  msgs(chat, from = 0) {
    return this.events.slice(from).filter((e) => e.ev === 'msg' && e.chat === chat).map((e) => e.msg);
  }

  // Sends {id, op, ...args} and resolves with the reply (ok or not). Rejects on timeout or close.
  request(op, args = {}, { timeout = TIMEOUT_MS, id } = {}) {
    const reqId = id ?? this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new Error(`socket not open (state ${this.ws.readyState}) for ${op}`));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(reqId);
        reject(timeoutError(`the reply to ${op} (id ${reqId})`, timeout));
      }, timeout);
      this.pending.set(reqId, { resolve, reject, timer, op });
      this.ws.send(JSON.stringify({ id: reqId, op, ...args }));
    });
  }

  // Resolves with the reply carrying `id`, for a request sent by hand (sendRaw, sendJson).
  expectReply(id, { timeout = TIMEOUT_MS, what = `the reply with id ${id}` } = {}) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(timeoutError(what, timeout));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer, op: what });
    });
  }

  // request(), asserting the reply is ok. Resolves with the reply.
  async ok(op, args = {}, opts) {
    const reply = await this.request(op, args, opts);
    assert.equal(reply.ok, true, `${op} ${JSON.stringify(args).slice(0, 200)} -> ${JSON.stringify(reply)}`);
    return reply;
  }

  // request(), asserting the reply is an error with that code. Resolves with reply.error.
  async fail(op, args, code, opts) {
    const reply = await this.request(op, args, opts);
    assert.equal(reply.ok, false, `${op} should fail with ${code}: ${JSON.stringify(reply)}`);
    assert.equal(reply.error?.code, code, `${op}: ${JSON.stringify(reply)}`);
    assert.equal(typeof reply.error.message, 'string');
    return reply.error;
  }

  // Sends a JSON value as is (no id bookkeeping).
  sendJson(value) {
    this.ws.send(JSON.stringify(value));
  }

  // Sends raw data. opts as ws.send: {binary, fin, compress}.
  sendRaw(data, opts = {}) {
    return new Promise((resolve, reject) => this.ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
  }

  // Resolves with {code, reason} when the socket closes; rejects after timeout.
  waitClose({ timeout = TIMEOUT_MS } = {}) {
    let timer;
    return Promise.race([
      this.closed.finally(() => clearTimeout(timer)),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(timeoutError('the socket to close', timeout)), timeout);
      }),
    ]);
  }

  // Clean close handshake; resolves with the close info.
  close(code = 1000) {
    if (this.ws.readyState === WebSocket.CLOSED) return this.closed;
    this.ws.close(code);
    return this.waitClose();
  }

  // Drops the TCP connection without a close handshake.
  terminate() {
    this.ws.terminate();
    return this.closed;
  }
}

// Opens a WebSocket to server's /ws without authenticating. opts: cookie, origin, headers,
// autoPong (default true). Resolves with a Client once open; rejects with an Error carrying
// statusCode when the server refuses the upgrade.
export function open(server, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  if (opts.cookie) headers.cookie = opts.cookie;
  const wsOpts = { headers, autoPong: opts.autoPong ?? true, handshakeTimeout: TIMEOUT_MS, perMessageDeflate: false };
  if (opts.origin) wsOpts.origin = opts.origin;
  const url = typeof server === 'string' ? server : server.wsUrl;
  const ws = new WebSocket(url, wsOpts);
  // Listeners go on at once so that no frame sent right after the handshake is missed.
  const client = new Client(ws);
  return new Promise((resolve, reject) => {
    const onUnexpected = (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const err = new Error(`upgrade refused: HTTP ${res.statusCode} ${body}`);
        err.statusCode = res.statusCode;
        err.body = body;
        err.headers = res.headers;
        reject(err);
        ws.terminate();
      });
      res.on('error', () => {});
    };
    ws.once('unexpected-response', onUnexpected);
    ws.once('open', () => resolve(client));
    ws.once('error', (err) => reject(err));
  });
}

// Opens and authenticates a socket. With opts.token: the `auth` op (asserting ok), then the
// `hello` event. With opts.cookie: waits for the `hello` event (send opts.origin too, as a
// browser would; it defaults to the server's own origin). Resolves with the Client, whose
// .user is set and .authReply holds the auth reply (token auth).
export async function connect(server, opts = {}) {
  if (opts.token) {
    const c = await open(server, { ...opts, cookie: undefined });
    const reply = await c.ok('auth', { token: opts.token });
    const hello = await c.waitFor((e) => e.ev === 'hello', { what: 'hello' });
    c.authReply = reply;
    c.user = hello.user;
    return c;
  }
  if (opts.cookie) {
    const origin = opts.origin ?? server.origin;
    const c = await open(server, { ...opts, origin });
    const hello = await c.waitFor((e) => e.ev === 'hello', { what: 'hello' });
    c.user = hello.user;
    return c;
  }
  throw new Error('connect needs a token or a cookie');
}

// ---------------------------------------------------------------------------------------------
// Helpers on top of the protocol

// Every message of a chat, oldest first, paging back with msg.history.
export async function fullHistory(client, chat, pageSize = 200) {
  const out = [];
  let before;
  for (let guard = 0; guard < 10000; guard++) {
    const args = { chat, limit: pageSize };
    if (before !== undefined) args.before = before;
    const { msgs, hasMore } = await client.ok('msg.history', args);
    out.unshift(...msgs);
    if (!hasMore || msgs.length === 0) return out;
    before = msgs[0].seq;
  }
  throw new Error('history paging did not end');
}

// Asserts seqs is exactly [from, from+1, ..., from+n-1].
export function assertConsecutive(seqs, from, what = 'seqs') {
  const expected = Array.from({ length: seqs.length }, (_, i) => from + i);
  assert.deepEqual(seqs, expected, `${what}: expected a gap-free run from ${from}`);
}

// ---------------------------------------------------------------------------------------------
// Helpers for membership and invitations (issue 3)

// Resolves once every frame the server had queued for each client before this call has arrived.
// `ping` touches no database, so its reply is queued at once behind whatever that socket's
// outbound queue already holds, and one socket's frames arrive in order. After the reply to an
// op has come back (on any socket), `await barrier(x)` guarantees that every event the op sent to
// x is in x.events: use it to assert that an event did NOT come.
export async function barrier(...clients) {
  await Promise.all(clients.map((c) => c.ok('ping')));
}

// Events named `ev` received by client from index `from` of client.events on, that satisfy pred.
export function eventsNamed(client, ev, from = 0, pred = () => true) {
  return client.events.slice(from).filter((e) => e.ev === ev && pred(e));
}

// The slug a chat-related event is about: `chat` is a slug, or a chat object in chat.updated.
export function eventChat(e) {
  return e && typeof e.chat === 'object' && e.chat !== null ? e.chat.slug : e?.chat;
}

// Creates a chat owned by `owner` (a Client) and fills it. `join`: sockets that join one after
// another, in that order (so their joinedAt follows the list); `admins`: sockets promoted to
// admin with chat.setRole (they join first, after `join`, if not already in it). The chat is
// created public so that chat.join can fill it; when isPublic is false it is made private at the
// end with chat.update. invitePolicy and maxParticipants are set when given. Returns the slug.
export async function makeChat(
  owner,
  { title = 'room', isPublic = true, join = [], admins = [], maxParticipants, invitePolicy } = {},
) {
  const args = { title, isPublic: true };
  if (maxParticipants !== undefined) args.maxParticipants = maxParticipants;
  const { chat } = await owner.ok('chat.create', args);
  const slug = chat.slug;
  for (const s of [...join, ...admins.filter((x) => !join.includes(x))]) {
    await s.ok('chat.join', { chat: slug });
  }
  for (const s of admins) {
    await owner.ok('chat.setRole', { chat: slug, user: s.user.username, role: 'admin' });
  }
  const update = {};
  if (!isPublic) update.isPublic = false;
  if (invitePolicy !== undefined) update.invitePolicy = invitePolicy;
  if (Object.keys(update).length) await owner.ok('chat.update', { chat: slug, ...update });
  return slug;
}

// `inviter` invites `invitee` (a Client) to chat and the invitee accepts. Returns the accept reply.
export async function inviteAndAccept(inviter, invitee, chat, args = {}) {
  const { invitation } = await inviter.ok('invite.create', { chat, user: invitee.user.username, ...args });
  return invitee.ok('invite.accept', { invitation: invitation.id });
}

// ---------------------------------------------------------------------------------------------
// Helpers for presence, typing and activeUsers (issue 4)

// `presence` events about `username` received by client, from index `from` of client.events.
// The presences a `presence` event carries: several changes close together in a storm come as
// one event listing each in `users` (docs/protocol.md), else the event itself is the one.
export function presenceEntries(e) {
  return Array.isArray(e.users) ? e.users : [e];
}

export function presenceEvents(client, username, from = 0) {
  return eventsNamed(client, 'presence', from)
    .flatMap(presenceEntries)
    .filter((p) => p.user?.username === username);
}

// Resolves with the first presence about `username` in `state` (a `presence` event, or its entry
// in a batched one; index >= opts.from).
export async function waitPresence(client, username, state, opts = {}) {
  const match = (p) => p.user?.username === username && p.state === state;
  const e = await client.waitFor((x) => x.ev === 'presence' && presenceEntries(x).some(match), {
    what: `presence ${username} ${state}`,
    ...opts,
  });
  return presenceEntries(e).find(match);
}

// Sorted usernames of a list of user objects (typing users, activeUsers).
export function usernames(users) {
  return (users || []).map((u) => u.username).sort();
}

// Resolves with the first `typing` event for chat whose listed users are exactly `names` (any
// order) and, when opts.others is given, whose `others` equals it (index >= opts.from).
export function waitTyping(client, chat, names, opts = {}) {
  const want = [...names].sort();
  return client.waitFor(
    (e) =>
      e.ev === 'typing' &&
      e.chat === chat &&
      JSON.stringify(usernames(e.users)) === JSON.stringify(want) &&
      (opts.others === undefined || e.others === opts.others),
    { what: `typing ${chat} [${want.join(', ')}]`, ...opts },
  );
}

// Resolves with the first `chat.active` event for chat whose activeUsers are exactly `names`.
export function waitActive(client, chat, names, opts = {}) {
  const want = [...names].sort();
  return client.waitFor(
    (e) => e.ev === 'chat.active' && e.chat === chat && JSON.stringify(usernames(e.activeUsers)) === JSON.stringify(want),
    { what: `chat.active ${chat} [${want.join(', ')}]`, ...opts },
  );
}

// Sends several requests in one TCP write (the socket is corked while they are queued), so the
// server reads them together, before it can answer the first; resolves with the replies in order.
export function pipelined(client, requests) {
  const sock = client.ws._socket;
  sock.cork();
  try {
    return Promise.all(requests.map(([op, args]) => client.request(op, args)));
  } finally {
    sock.uncork();
  }
}

// Inside a describe: conn(account) connects a socket as that account (its `token`), and every
// socket so opened is closed after the describe's tests.
export function socketsOf(server) {
  const open = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });
  return async function conn(account) {
    const c = await connect(server, { token: account.token });
    open.push(c);
    return c;
  };
}
