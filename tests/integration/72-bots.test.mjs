// 72 - Bot accounts (issue 19): /api/bots creates, lists, rotates, updates and deletes the bots a
// person owns; a bot is a user with bot: true in every user object, never logs in with a
// password, is invited and removed like anyone, opens DMs, has its own rate limits and its own
// typing time. Runs on SQLite and on PostgreSQL (make integration-pg).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, http, login, makeChat, signup, signupMany, uname, waitTyping } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

async function createBot(srv, owner, body = {}) {
  const username = body.username ?? uname('bot');
  const res = await http(srv, 'POST', '/api/bots', { token: owner.token, json: { username, ...body } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

describe('bot accounts', () => {
  const srv = useServer();
  let ana, bob, anaWs, bobWs;
  const open = [];

  before(async () => {
    [ana, bob] = await signupMany(srv, ['ana', 'bob']);
    [anaWs, bobWs] = await Promise.all([ana, bob].map((u) => connect(srv, { token: u.token })));
    open.push(anaWs, bobWs);
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  test('create shows the token and secret once; list; the bot is a user with bot: true', async () => {
    const name = uname('helper');
    const created = await createBot(srv, ana, {
      username: name.toUpperCase(),
      displayName: 'Helper',
      webhookUrl: 'https://example.com/hook',
    });
    assert.equal(created.bot.username, name);
    assert.equal(created.bot.displayName, 'Helper');
    assert.equal(created.bot.bot, true);
    assert.equal(created.bot.owner.username, ana.user.username);
    assert.equal(created.bot.owner.bot, false);
    assert.equal(created.bot.webhookUrl, 'https://example.com/hook');
    assert.match(created.token, /^[A-Za-z0-9_-]{43}$/);
    assert.match(created.webhookSecret, /^[0-9a-f]{64}$/);
    // People are bot: false wherever a user object appears.
    assert.equal(anaWs.user.bot, false);
    const me = await http(srv, 'GET', '/api/me', { token: created.token });
    assert.equal(me.status, 200);
    assert.equal(me.json.user.bot, true);
    const list = await http(srv, 'GET', '/api/bots', { token: ana.token });
    assert.equal(list.status, 200);
    const mine = list.json.bots.find((b) => b.username === name);
    assert.ok(mine);
    assert.equal(mine.owner.username, ana.user.username);
    assert.equal(typeof mine.createdAt, 'number');
    assert.equal(mine.token, undefined);
    assert.equal(mine.webhookSecret, undefined);
    // Another person lists only their own.
    const other = await http(srv, 'GET', '/api/bots', { token: bob.token });
    assert.equal(other.json.bots.some((b) => b.username === name), false);
  });

  test('input rules: username as signup (taken 409), webhookUrl http(s) <= 2048, body JSON', async () => {
    const bad = async (json, status) => {
      const res = await http(srv, 'POST', '/api/bots', { token: ana.token, json });
      assert.equal(res.status, status, res.text);
    };
    await bad({ username: 'x' }, 400);
    await bad({ username: ana.user.username }, 409);
    await bad({ username: uname('b'), webhookUrl: 'ftp://example.com' }, 400);
    await bad({ username: uname('b'), webhookUrl: 'https://e.com/' + 'a'.repeat(2048) }, 400);
    await bad({ username: uname('b'), webhookUrl: 42 }, 400);
    const res = await http(srv, 'POST', '/api/bots', { token: ana.token, body: '{nope' });
    assert.equal(res.status, 400);
    const none = await http(srv, 'POST', '/api/bots', { json: { username: uname('b') } });
    assert.equal(none.status, 401);
  });

  test('a bot never logs in with a password, and bots cannot manage bots', async () => {
    const { bot, token } = await createBot(srv, ana);
    const res = await http(srv, 'POST', '/api/login', { json: { username: bot.username, password: '!' } });
    assert.equal(res.status, 401);
    const res2 = await http(srv, 'POST', '/api/login', {
      json: { username: bot.username, password: 'correct horse battery' },
    });
    assert.equal(res2.status, 401);
    assert.equal(res2.json.error.message, 'wrong username or password');
    const byBot = await http(srv, 'POST', '/api/bots', { token, json: { username: uname('b') } });
    assert.equal(byBot.status, 403);
    const listByBot = await http(srv, 'GET', '/api/bots', { token });
    assert.equal(listByBot.status, 403);
  });

  test("another person's bot is 404 for every route", async () => {
    const { bot } = await createBot(srv, ana);
    const p = `/api/bots/${bot.username}`;
    for (const [method, path, json] of [
      ['POST', `${p}/token`],
      ['PATCH', p, { displayName: 'x' }],
      ['POST', `${p}/webhook-secret`],
      ['DELETE', p],
    ]) {
      const res = await http(srv, method, path, { token: bob.token, json });
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
    }
    const gone = await http(srv, 'DELETE', '/api/bots/nobody_here', { token: ana.token });
    assert.equal(gone.status, 404);
  });

  test('PATCH changes the name and the webhook (null removes it); a new webhook secret', async () => {
    const { bot, webhookSecret } = await createBot(srv, ana, { webhookUrl: 'http://127.0.0.1:9/x' });
    const p = `/api/bots/${bot.username}`;
    const res = await http(srv, 'PATCH', p, { token: ana.token, json: { displayName: 'Renamed' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.bot.displayName, 'Renamed');
    assert.equal(res.json.bot.webhookUrl, 'http://127.0.0.1:9/x');
    const res2 = await http(srv, 'PATCH', p, { token: ana.token, json: { webhookUrl: null } });
    assert.equal(res2.json.bot.webhookUrl, null);
    assert.equal(res2.json.bot.displayName, 'Renamed');
    const bad = await http(srv, 'PATCH', p, { token: ana.token, json: { webhookUrl: 'mailto:x' } });
    assert.equal(bad.status, 400);
    const s = await http(srv, 'POST', `${p}/webhook-secret`, { token: ana.token });
    assert.equal(s.status, 200);
    assert.match(s.json.webhookSecret, /^[0-9a-f]{64}$/);
    assert.notEqual(s.json.webhookSecret, webhookSecret);
  });

  test('rotating the token closes the old sessions with 4001; the new token works', async () => {
    const { bot, token } = await createBot(srv, ana);
    const ws = await connect(srv, { token });
    assert.equal(ws.user.bot, true);
    const res = await http(srv, 'POST', `/api/bots/${bot.username}/token`, { token: ana.token });
    assert.equal(res.status, 200, res.text);
    assert.notEqual(res.json.token, token);
    const closed = await ws.closed;
    assert.equal(closed.code, 4001);
    assert.equal((await http(srv, 'GET', '/api/me', { token })).status, 401);
    const fresh = await connect(srv, { token: res.json.token });
    assert.equal(fresh.user.username, bot.username);
    await fresh.close();
  });

  test('invited, removed, in a DM; user.bot in message and member events', async () => {
    const { bot, token } = await createBot(srv, ana);
    const botWs = await connect(srv, { token });
    open.push(botWs);
    const slug = await makeChat(anaWs, { title: 'with a bot', join: [bobWs] });
    await bobWs.ok('sub', { chat: slug });
    const { invitation } = await anaWs.ok('invite.create', { chat: slug, user: bot.username });
    await botWs.ok('invite.accept', { invitation: invitation.id });
    const from = bobWs.events.length;
    const { msg } = await botWs.ok('msg.send', { chat: slug, body: 'beep' });
    assert.equal(msg.author.bot, true);
    const ev = await bobWs.waitFor((e) => e.ev === 'msg' && e.chat === slug && e.msg.seq === msg.seq, { from });
    assert.equal(ev.msg.author.bot, true);
    const { msgs } = await bobWs.ok('msg.history', { chat: slug });
    assert.equal(msgs.find((m) => m.seq === msg.seq).author.bot, true);
    const got = await bobWs.ok('chat.get', { chat: slug });
    const listed = got.participants.find((m) => m.username === bot.username);
    assert.equal(listed.bot, true);
    assert.equal(got.participants.find((m) => m.username === ana.user.username).bot, false);
    await anaWs.ok('chat.remove', { chat: slug, user: bot.username });
    const after = await botWs.request('msg.send', { chat: slug, body: 'still here?' });
    assert.equal(after.ok, false);
    assert.ok(['forbidden', 'not_found'].includes(after.error.code), JSON.stringify(after));
    // A DM with a bot works from either side.
    const dm = await anaWs.ok('dm.open', { user: bot.username });
    assert.equal(dm.chat.kind, 'dm');
    assert.equal(dm.chat.peer.bot, true);
    const back = await botWs.ok('dm.open', { user: ana.user.username });
    assert.equal(back.chat.slug, dm.chat.slug);
    assert.equal(back.chat.peer.bot, false);
    await botWs.ok('msg.send', { chat: dm.chat.slug, body: 'hello human' });
  });

  test('deleting a bot ends its sessions and it leaves every chat with a left notice; the name stays taken', async () => {
    const { bot, token } = await createBot(srv, ana);
    const botWs = await connect(srv, { token });
    const slug = await makeChat(anaWs, { title: 'bot leaves', join: [botWs] });
    await anaWs.ok('sub', { chat: slug });
    const from = anaWs.events.length;
    const res = await http(srv, 'DELETE', `/api/bots/${bot.username}`, { token: ana.token });
    assert.equal(res.status, 204, res.text);
    assert.equal((await botWs.closed).code, 4001);
    const left = await anaWs.waitFor(
      (e) => e.ev === 'msg' && e.chat === slug && e.msg.kind === 'notice' && e.msg.action === 'left',
      { from },
    );
    assert.equal((left.msg.subject ?? left.msg.author).username, bot.username);
    const members = await anaWs.ok('chat.get', { chat: slug });
    assert.equal(members.chat.participantCount, 1);
    assert.equal((await http(srv, 'GET', '/api/me', { token })).status, 401);
    const list = await http(srv, 'GET', '/api/bots', { token: ana.token });
    assert.equal(list.json.bots.some((b) => b.username === bot.username), false);
    const again = await http(srv, 'POST', '/api/bots', { token: ana.token, json: { username: bot.username } });
    assert.equal(again.status, 409);
    // Nobody can invite it or open a DM with it any more.
    await anaWs.fail('dm.open', { user: bot.username }, 'not_found');
    await anaWs.fail('invite.create', { chat: slug, user: bot.username }, 'not_found');
    const signupTaken = await http(srv, 'POST', '/api/signup', {
      json: { username: bot.username, password: 'correct horse battery' },
    });
    assert.equal(signupTaken.status, 409);
  });

  test('a person may own at most 20 bots', async () => {
    const cai = await signup(srv, uname('cai'));
    const made = await Promise.all(Array.from({ length: 20 }, () => createBot(srv, cai)));
    assert.equal(made.length, 20);
    const res = await http(srv, 'POST', '/api/bots', { token: cai.token, json: { username: uname('b') } });
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'conflict');
    // Deleting one frees a place.
    const del = await http(srv, 'DELETE', `/api/bots/${made[0].bot.username}`, { token: cai.token });
    assert.equal(del.status, 204);
    await createBot(srv, cai);
    // The cookie works as well as the bearer token for a person.
    const li = await login(srv, cai.user.username);
    const list = await http(srv, 'GET', '/api/bots', { cookie: li.cookie });
    assert.equal(list.json.bots.length, 20);
  });
});

describe('bot rate limits and typing', () => {
  const srv = useServer({
    env: {
      PARLEY_RATE_LIMITS: '1',
      PARLEY_SEND_RATE: '0.01',
      PARLEY_SEND_BURST: '2',
      PARLEY_BOT_MSG_RATE: '0.01',
      PARLEY_BOT_MSG_BURST: '5',
      PARLEY_TYPING_TTL_MS: '400',
    },
  });
  let ana, anaWs, botWs, slug, bot;

  before(async () => {
    ana = await signup(srv, uname('ana'));
    anaWs = await connect(srv, { token: ana.token });
    const created = await createBot(srv, ana);
    bot = created.bot;
    botWs = await connect(srv, { token: created.token });
    slug = await makeChat(anaWs, { title: 'limits', join: [botWs] });
    await anaWs.ok('sub', { chat: slug });
    await botWs.ok('sub', { chat: slug });
  });

  after(async () => {
    await Promise.all([anaWs, botWs].map((s) => s.close().catch(() => {})));
  });

  test('a bot types for up to 60 s (people 6 s): listed after a person\'s typing expired, until it sends', async () => {
    const from = anaWs.events.length;
    await botWs.ok('typing', { chat: slug, on: true });
    await anaWs.ok('typing', { chat: slug, on: true });
    await waitTyping(anaWs, slug, [ana.user.username, bot.username], { from });
    // The person's 400 ms pass; the bot is still listed (its TTL is 60 s).
    const mark = anaWs.events.length;
    const only = await waitTyping(anaWs, slug, [bot.username], { from: mark });
    assert.equal(only.users[0].bot, true);
    // A later subscriber sees it too.
    const again = await connect(srv, { token: ana.token });
    const sub = await again.ok('sub', { chat: slug });
    assert.deepEqual(sub.typing.map((u) => u.username), [bot.username]);
    await again.close();
    const m2 = anaWs.events.length;
    await botWs.ok('msg.send', { chat: slug, body: 'answer' });
    await waitTyping(anaWs, slug, [], { from: m2 });
  });

  test('bots have their own message rate (PARLEY_BOT_MSG_*), people theirs', async () => {
    // The bot sent 1 above; its burst is 5.
    for (let i = 0; i < 4; i++) await botWs.ok('msg.send', { chat: slug, body: `b${i}` });
    await botWs.fail('msg.send', { chat: slug, body: 'one too many' }, 'rate_limited');
    await anaWs.ok('msg.send', { chat: slug, body: 'p1' });
    await anaWs.ok('msg.send', { chat: slug, body: 'p2' });
    await anaWs.fail('msg.send', { chat: slug, body: 'p3' }, 'rate_limited');
  });
});
