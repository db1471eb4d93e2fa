// 73 - The bot HTTP API (issue 19): with `Authorization: Bearer <token>` (any user's, bots
// included) POST /api/chats/<chat>/messages, POST .../typing, GET .../messages and the streaming
// routes (POST .../streams, .../streams/<seq>, .../streams/<seq>/end) run the same ops
// as the WebSocket, with the same rules, and answer their replies as JSON with the error table's
// HTTP status. Runs on SQLite and on PostgreSQL (make integration-pg).

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { connect, http, makeChat, signupMany, uname, waitTyping } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('bot HTTP API', () => {
  const srv = useServer();
  let ana, eve, anaWs, bot, botToken, slug;
  const open = [];

  before(async () => {
    [ana, eve] = await signupMany(srv, ['ana', 'eve']);
    anaWs = await connect(srv, { token: ana.token });
    open.push(anaWs);
    const res = await http(srv, 'POST', '/api/bots', { token: ana.token, json: { username: uname('hb') } });
    assert.equal(res.status, 201, res.text);
    bot = res.json.bot;
    botToken = res.json.token;
    slug = await makeChat(anaWs, { title: 'http bots' });
    const { invitation } = await anaWs.ok('invite.create', { chat: slug, user: bot.username });
    const botWs = await connect(srv, { token: botToken });
    await botWs.ok('invite.accept', { invitation: invitation.id });
    await botWs.close();
    await anaWs.ok('sub', { chat: slug });
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  const path = (chat = slug, tail = 'messages') => `/api/chats/${chat}/${tail}`;

  test('send: 201 with the message, fanned out live; the same clientMsgId again is 200 duplicate', async () => {
    const from = anaWs.events.length;
    const res = await http(srv, 'POST', path(), { token: botToken, json: { body: 'hi @' + ana.user.username, clientMsgId: 'c-1' } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.duplicate, false);
    assert.equal(res.json.msg.body, 'hi @' + ana.user.username);
    assert.equal(res.json.msg.author.username, bot.username);
    assert.equal(res.json.msg.author.bot, true);
    const ev = await anaWs.waitFor((e) => e.ev === 'msg' && e.chat === slug && e.msg.seq === res.json.msg.seq, { from });
    assert.equal(ev.msg.author.bot, true);
    const dup = await http(srv, 'POST', path(), { token: botToken, json: { body: 'hi again', clientMsgId: 'c-1' } });
    assert.equal(dup.status, 200, dup.text);
    assert.equal(dup.json.duplicate, true);
    assert.equal(dup.json.msg.seq, res.json.msg.seq);
    // A reply, as msg.send's replyTo.
    const r = await http(srv, 'POST', path(), { token: botToken, json: { body: 're', replyTo: res.json.msg.seq } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.msg.replyTo.seq, res.json.msg.seq);
    // A person's token works too, and so does the cookie (same CSRF rule: own origin).
    const p = await http(srv, 'POST', path(), { token: ana.token, json: { body: 'me too' } });
    assert.equal(p.status, 201);
    assert.equal(p.json.msg.author.bot, false);
  });

  test('history: GET ?before=&limit= as msg.history', async () => {
    const all = await http(srv, 'GET', path(), { token: botToken });
    assert.equal(all.status, 200, all.text);
    assert.ok(all.json.msgs.length >= 4);
    const ws = await anaWs.ok('msg.history', { chat: slug });
    assert.deepEqual(all.json.msgs.map((m) => m.seq), ws.msgs.map((m) => m.seq));
    const last = all.json.msgs.at(-1).seq;
    const page = await http(srv, 'GET', `${path()}?before=${last}&limit=2`, { token: botToken });
    assert.equal(page.status, 200);
    assert.deepEqual(page.json.msgs.map((m) => m.seq), all.json.msgs.slice(-3, -1).map((m) => m.seq));
    assert.equal(page.json.hasMore, true);
    const bad = await http(srv, 'GET', `${path()}?limit=abc`, { token: botToken });
    assert.equal(bad.status, 400);
  });

  test('typing: 204, shown to subscribers with the bot flag, cleared by on:false', async () => {
    const from = anaWs.events.length;
    const res = await http(srv, 'POST', path(slug, 'typing'), { token: botToken, json: { on: true } });
    assert.equal(res.status, 204, res.text);
    const ev = await waitTyping(anaWs, slug, [bot.username], { from });
    assert.equal(ev.users[0].bot, true);
    const m = anaWs.events.length;
    const off = await http(srv, 'POST', path(slug, 'typing'), { token: botToken, json: { on: false } });
    assert.equal(off.status, 204);
    await waitTyping(anaWs, slug, [], { from: m });
    const bad = await http(srv, 'POST', path(slug, 'typing'), { token: botToken, json: { on: 'yes' } });
    assert.equal(bad.status, 400);
  });

  test('errors: no token 401, bad token 401, not a participant as the WS says, malformed 400, oversized 413, unknown 404', async () => {
    const none = await http(srv, 'POST', path(), { json: { body: 'x' } });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'unauthorized');
    const badTok = await http(srv, 'POST', path(), { token: 'A'.repeat(43), json: { body: 'x' } });
    assert.equal(badTok.status, 401);
    // eve is no participant of a private chat: the WebSocket says not_found, and so does HTTP.
    const eveWs = await connect(srv, { token: eve.token });
    const wsErr = await eveWs.request('msg.send', { chat: slug, body: 'x' });
    await eveWs.close();
    const out = await http(srv, 'POST', path(), { token: eve.token, json: { body: 'x' } });
    assert.equal(out.json.error.code, wsErr.error.code);
    assert.equal(out.status, wsErr.error.code === 'not_found' ? 404 : 403);
    const outTyping = await http(srv, 'POST', path(slug, 'typing'), { token: eve.token, json: { on: true } });
    assert.ok([403, 404].includes(outTyping.status), outTyping.text);
    const outHist = await http(srv, 'GET', path(), { token: eve.token });
    assert.equal(outHist.json.error.code, wsErr.error.code);
    const nochat = await http(srv, 'POST', path('no-such-chat'), { token: botToken, json: { body: 'x' } });
    assert.equal(nochat.status, 404);
    const malformed = await http(srv, 'POST', path(), { token: botToken, body: '{"body": ', headers: { 'content-type': 'application/json' } });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.error.code, 'bad_request');
    const notObject = await http(srv, 'POST', path(), { token: botToken, json: ['x'] });
    assert.equal(notObject.status, 400);
    const noBody = await http(srv, 'POST', path(), { token: botToken, json: {} });
    assert.equal(noBody.status, 400);
    const empty = await http(srv, 'POST', path(), { token: botToken, json: { body: '' } });
    assert.equal(empty.status, 400);
    const unknown = await http(srv, 'POST', path(slug, 'nothing'), { token: botToken, json: {} });
    assert.equal(unknown.status, 404);
    const method = await http(srv, 'DELETE', path(), { token: botToken });
    assert.equal(method.status, 405);
    // The route's body cap (256 KiB + slack) is announced by Content-Length and refused at once.
    const status = await new Promise((resolve, reject) => {
      const sock = net.connect(srv.port, srv.host, () => {
        sock.write(
          `POST ${path()} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${botToken}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${1024 * 1024}\r\n\r\n`,
        );
      });
      let buf = '';
      sock.on('data', (d) => {
        buf += d;
        const m = /^HTTP\/1\.1 (\d+)/.exec(buf);
        if (m) {
          resolve(Number(m[1]));
          sock.destroy();
        }
      });
      sock.on('error', reject);
    });
    assert.equal(status, 413);
    // A body over the message limit but under the route cap reaches the op: too_large as on the WS.
    const big = await http(srv, 'POST', path(), { token: botToken, json: { body: 'x'.repeat(100000) } });
    assert.equal(big.status, 413, big.text);
  });

  test('streams over HTTP: start 201, append by offset (idempotent retry, 409 with the length), end; viewers get msg.delta', async () => {
    const from = anaWs.events.length;
    const start = await http(srv, 'POST', path(slug, 'streams'), { token: botToken, json: { clientMsgId: 'hs-1' } });
    assert.equal(start.status, 201, start.text);
    const seq = start.json.msg.seq;
    assert.equal(start.json.msg.streaming, true);
    assert.deepEqual(start.json.msg.stream, { state: 'streaming', length: 0 });
    const again = await http(srv, 'POST', path(slug, 'streams'), { token: botToken, json: { clientMsgId: 'hs-1' } });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.duplicate, true);
    assert.equal(again.json.msg.seq, seq);

    const append = (json, token = botToken) => http(srv, 'POST', path(slug, `streams/${seq}`), { token, json });
    const a1 = await append({ delta: 'Hello ', offset: 0 });
    assert.equal(a1.status, 200, a1.text);
    assert.deepEqual(a1.json, { seq, length: 6 });
    const retry = await append({ delta: 'Hello ', offset: 0 });
    assert.equal(retry.status, 200, retry.text);
    assert.equal(retry.json.length, 6);
    const gap = await append({ delta: 'x', offset: 9 });
    assert.equal(gap.status, 409, gap.text);
    assert.equal(gap.json.error.code, 'conflict');
    assert.equal(gap.json.error.length, 6);
    const notAuthor = await append({ delta: 'x', offset: 6 }, ana.token);
    assert.equal(notAuthor.status, 403, notAuthor.text);
    const a2 = await append({ delta: 'world', offset: 6 });
    assert.equal(a2.json.length, 11);
    const d1 = await anaWs.waitFor((e) => e.ev === 'msg.delta' && e.chat === slug && e.seq === seq && e.offset === 6, { from });
    assert.equal(d1.delta, 'world');

    const end = await http(srv, 'POST', path(slug, `streams/${seq}/end`), { token: botToken, json: {} });
    assert.equal(end.status, 200, end.text);
    assert.equal(end.json.msg.kind, 'stream.end');
    assert.equal(end.json.msg.ref, seq);
    assert.equal(end.json.msg.body, 'Hello world');
    assert.equal(end.json.msg.state, 'done');
    const late = await append({ delta: '!', offset: 11 });
    assert.equal(late.status, 409, late.text);
    const twice = await http(srv, 'POST', path(slug, `streams/${seq}/end`), { token: botToken, json: {} });
    assert.equal(twice.status, 409, twice.text);
    const badSeq = await http(srv, 'POST', path(slug, 'streams/x1/end'), { token: botToken, json: {} });
    assert.equal(badSeq.status, 400);
    const hist = await http(srv, 'GET', `${path()}?limit=5`, { token: botToken });
    const folded = hist.json.msgs.find((m) => m.seq === seq);
    assert.equal(folded.body, 'Hello world');
    assert.equal(folded.streaming, false);
    assert.equal(folded.stream.state, 'done');
  });
});
