// 03 - The WebSocket endpoint: Origin allowlist, cookie and token authentication, `hello`, the
// `ping` op, ops before auth, the 10 s auth deadline, fragmentation and the close handshake.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, http, login, open, signup, uname } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('default origin allowlist', () => {
  const srv = useServer();
  let ana;
  let idle; // opened at the start, never authenticated: must be closed with 4001 after 10 s
  let idleOpenedAt;

  before(async () => {
    idle = await open(srv);
    idleOpenedAt = Date.now();
    ana = await signup(srv, uname('ana'), undefined, 'Ana');
  });

  test('cookie on the upgrade with the own Origin: the first frame is hello', async () => {
    const c = await open(srv, { cookie: ana.cookie, origin: srv.origin });
    const hello = await c.waitFor((e) => e.ev === 'hello');
    assert.equal(c.frames[0], hello, 'hello is the very first frame');
    assert.deepEqual(hello.user, ana.user);
    const pong = await c.ok('ping');
    assert.equal(typeof pong.now, 'number');
    await c.close();
  });

  test('http://localhost:PORT is allowed by default too', async () => {
    const c = await connect(srv, { cookie: ana.cookie, origin: `http://localhost:${srv.port}` });
    assert.equal(c.user.username, ana.user.username);
    await c.close();
  });

  test('a foreign Origin is refused with HTTP 403 before the upgrade', async () => {
    for (const origin of ['http://evil.example', `http://127.0.0.1:${srv.port + 1}`, 'null']) {
      const err = await open(srv, { cookie: ana.cookie, origin }).then(
        () => assert.fail(`upgrade with Origin ${origin} was accepted`),
        (e) => e,
      );
      assert.equal(err.statusCode, 403, `${origin}: ${err.message}`);
    }
  });

  test('token auth: the auth op replies ok with the user, then hello follows', async () => {
    const c = await open(srv); // no Origin: not a browser
    const reply = await c.request('auth', { token: ana.token }, { id: 1 });
    assert.equal(reply.id, 1);
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.deepEqual(reply.user, ana.user);
    const hello = await c.waitFor((e) => e.ev === 'hello');
    assert.deepEqual(hello.user, ana.user);
    const replyIdx = c.frames.indexOf(reply);
    assert.ok(c.frames.indexOf(hello) > replyIdx, 'hello comes after the auth reply');
    await c.close();
  });

  test('the login token works like the signup token', async () => {
    const s = await login(srv, ana.user.username);
    const c = await connect(srv, { token: s.token });
    assert.deepEqual(c.user, ana.user);
    await c.close();
  });

  test('a bad token is unauthorized, and the socket can still authenticate', async () => {
    const c = await open(srv);
    await c.fail('auth', { token: 'definitely-not-a-token' }, 'unauthorized');
    await c.fail('chat.list', {}, 'unauthorized');
    await c.ok('auth', { token: ana.token });
    await c.close();
  });

  test('auth without a token string is bad_request naming the field', async () => {
    const c = await open(srv);
    const err = await c.fail('auth', { token: 42 }, 'bad_request');
    assert.match(err.message, /token/);
    await c.close();
  });

  test('any op before authentication is answered unauthorized and the socket stays usable', async () => {
    const c = await open(srv);
    await c.fail('chat.list', {}, 'unauthorized');
    await c.fail('chat.create', { title: 'sneaky' }, 'unauthorized');
    await c.fail('msg.send', { chat: 'x', body: 'hi' }, 'unauthorized');
    await c.ok('auth', { token: ana.token });
    await c.ok('ping');
    await c.close();
  });

  test('the ping op works before authentication (protocol.md: "other than auth and ping") and grants nothing', async () => {
    const c = await open(srv);
    const r = await c.ok('ping');
    assert.equal(typeof r.now, 'number');
    await c.fail('chat.list', {}, 'unauthorized');
    await c.close();
  });

  test('requests pipelined right behind auth wait for it and run in order', async () => {
    const c = await open(srv);
    // Sent in one go, before the auth reply can have arrived.
    const replies = [c.expectReply(1), c.expectReply(2), c.expectReply(3)];
    c.sendJson({ id: 1, op: 'auth', token: ana.token });
    c.sendJson({ id: 2, op: 'chat.list' });
    c.sendJson({ id: 3, op: 'ping' });
    const [auth, list, ping] = await Promise.all(replies);
    assert.equal(auth.ok, true);
    assert.equal(list.ok, true, `chat.list behind auth: ${JSON.stringify(list)}`);
    assert.ok(Array.isArray(list.chats));
    assert.equal(ping.ok, true);
    // Nothing behind auth ran before it: the auth reply is the first reply on the socket.
    // (Other replies may overtake each other: protocol.md, clients match them by id.)
    const order = c.frames.filter((f) => f.id != null).map((f) => f.id);
    assert.equal(order[0], 1);
    await c.close();
  });

  test('the ping op replies with the server time', async () => {
    const c = await connect(srv, { token: ana.token });
    const before = Date.now();
    const r = await c.ok('ping');
    assert.ok(Math.abs(r.now - before) < 60_000, `now=${r.now} vs ${before}`);
    await c.close();
  });

  test('replies echo the client-chosen id, up to 2^53-1', async () => {
    const c = await connect(srv, { token: ana.token });
    for (const id of [0, 7, 123456789, Number.MAX_SAFE_INTEGER]) {
      const r = await c.request('ping', {}, { id });
      assert.equal(r.id, id);
      assert.equal(r.ok, true);
    }
    await c.close();
  });

  test('a fragmented message is reassembled', async () => {
    const c = await connect(srv, { token: ana.token });
    const text = JSON.stringify({ id: 99, op: 'ping', pad: 'x'.repeat(3000) });
    const reply = c.expectReply(99);
    await c.sendRaw(text.slice(0, 10), { fin: false });
    await c.sendRaw(text.slice(10, 2000), { fin: false });
    await c.sendRaw(text.slice(2000), { fin: true });
    const r = await reply;
    assert.equal(r.id, 99);
    assert.equal(r.ok, true, JSON.stringify(r));
    await c.ok('ping');
    await c.close();
  });

  test('a client close (1000) completes the close handshake', async () => {
    const c = await connect(srv, { token: ana.token });
    const info = await c.close(1000);
    assert.equal(info.code, 1000, 'the server echoes the close code');
  });

  test('a socket not authenticated within 10 s is closed with 4001', async () => {
    const info = await idle.waitClose({ timeout: 15_000 });
    const elapsed = info.at - idleOpenedAt;
    assert.equal(info.code, 4001);
    assert.ok(elapsed >= 9_000, `closed after only ${elapsed} ms`);
  });
});

describe('PARLEY_ORIGINS replaces the default allowlist', () => {
  const srv = useServer({ env: { PARLEY_ORIGINS: 'http://app.example,https://chat.example' } });
  let bea;
  before(async () => {
    bea = await signup(srv, uname('bea'));
  });

  test('a listed origin gets hello through the cookie', async () => {
    for (const origin of ['http://app.example', 'https://chat.example']) {
      const c = await connect(srv, { cookie: bea.cookie, origin });
      assert.deepEqual(c.user, bea.user);
      await c.close();
    }
  });

  test('an unlisted origin, the server’s own included, is refused with 403', async () => {
    for (const origin of ['http://evil.example', srv.origin, 'http://app.example.evil.example']) {
      const err = await open(srv, { cookie: bea.cookie, origin }).then(
        () => assert.fail(`Origin ${origin} was accepted`),
        (e) => e,
      );
      assert.equal(err.statusCode, 403, `${origin}: ${err.message}`);
    }
  });

  test('the same allowlist guards POSTs', async () => {
    const ok = await http(srv, 'POST', '/api/logout', { token: bea.token, origin: 'http://app.example' });
    assert.equal(ok.status, 204, ok.text);
    const bad = await http(srv, 'POST', '/api/login', {
      json: { username: bea.user.username, password: 'whatever12' },
      origin: 'http://evil.example',
    });
    assert.equal(bad.status, 403, bad.text);
  });
});
