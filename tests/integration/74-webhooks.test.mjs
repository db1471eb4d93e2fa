// 74 - Bot webhooks (issue 19): a message that mentions a bot with a webhookUrl, or any message in
// a DM with it (never the bot's own), is POSTed there as JSON, signed with
// HMAC-SHA256(secret, timestamp + "." + body); a try without a 2xx in time is retried (the base
// interval is PARLEY_WEBHOOK_RETRY_MS here, 1 s in production) and /metrics counts the outcomes.
// A local node HTTP server plays the bot.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import httpServer from 'node:http';
import { after, before, describe, test } from 'node:test';

import { connect, http, makeChat, signup, uname } from './lib/client.mjs';
import { scrape } from './lib/metrics.mjs';
import { useServer } from './lib/server.mjs';

// A webhook receiver: every request is recorded; `answer(req)` decides the reply (a status, or
// 'hang' to never answer). waitFor(pred) resolves with the first recorded request matching.
function receiver() {
  const got = [];
  const waiters = new Set();
  const hanging = [];
  let answer = () => 200;
  const server = httpServer.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const rec = { headers: req.headers, body, json: JSON.parse(body), at: Date.now(), method: req.method, url: req.url };
      const a = answer(rec);
      rec.answered = a;
      got.push(rec);
      for (const w of waiters) if (w.pred(rec)) (waiters.delete(w), w.resolve(rec));
      if (a === 'hang') hanging.push(res);
      else res.writeHead(a).end();
    });
  });
  return {
    got,
    set answer(f) {
      answer = f;
    },
    waitFor(pred, what = 'a delivery') {
      const hit = got.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.add(w);
        setTimeout(() => waiters.delete(w) && reject(new Error(`timed out waiting for ${what}`)), 15000);
      });
    },
    async listen() {
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${server.address().port}/hook`;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

function verify(rec, secret) {
  const ts = rec.headers['x-parley-timestamp'];
  assert.match(ts, /^\d{13}$/);
  assert.ok(Math.abs(Number(ts) - Date.now()) < 60000);
  const want = 'sha256=' + crypto.createHmac('sha256', secret).update(`${ts}.${rec.body}`).digest('hex');
  assert.equal(rec.headers['x-parley-signature'], want);
  assert.equal(rec.headers['content-type'], 'application/json');
  assert.match(rec.headers['x-parley-delivery'], /^[0-9a-f]{32}$/);
}

describe('bot webhooks', () => {
  const srv = useServer({ env: { PARLEY_WEBHOOK_RETRY_MS: '100', PARLEY_WEBHOOK_TIMEOUT_MS: '500' } });
  const hook = receiver();
  let ana, anaWs, bot, botToken, secret, url, slug;
  const open = [];

  before(async () => {
    url = await hook.listen();
    ana = await signup(srv, uname('ana'));
    anaWs = await connect(srv, { token: ana.token });
    open.push(anaWs);
    const res = await http(srv, 'POST', '/api/bots', {
      token: ana.token,
      json: { username: uname('hook'), webhookUrl: url },
    });
    assert.equal(res.status, 201, res.text);
    ({ bot, token: botToken, webhookSecret: secret } = res.json);
    const botWs = await connect(srv, { token: botToken });
    open.push(botWs);
    slug = await makeChat(anaWs, { title: 'hooks', join: [botWs] });
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
    await hook.close();
  });

  test('a mention is delivered, signed; a message without one is not', async () => {
    await anaWs.ok('msg.send', { chat: slug, body: 'no mention here' });
    const { msg } = await anaWs.ok('msg.send', { chat: slug, body: `hey @${bot.username} ping` });
    const rec = await hook.waitFor((r) => r.json.msg.seq === msg.seq && r.json.chat.slug === slug, 'the mention');
    verify(rec, secret);
    assert.equal(rec.method, 'POST');
    assert.equal(rec.json.type, 'message');
    assert.equal(rec.json.bot.username, bot.username);
    assert.equal(rec.json.bot.bot, true);
    assert.deepEqual(rec.json.chat, { slug, title: 'hooks', kind: 'group' });
    assert.equal(rec.json.msg.body, `hey @${bot.username} ping`);
    assert.equal(rec.json.msg.author.username, ana.user.username);
    // The unmentioned message came first and was never delivered.
    assert.equal(hook.got.some((r) => r.json.msg.body === 'no mention here'), false);
    // A wrong secret does not verify (the check above can fail).
    assert.throws(() => verify(rec, 'not-the-secret'));
  });

  test('every message in a DM with the bot is delivered; the bot\'s own messages are not', async () => {
    const dm = (await anaWs.ok('dm.open', { user: bot.username })).chat.slug;
    const botWs = open[1];
    const own = await botWs.ok('msg.send', { chat: dm, body: 'from the bot itself' });
    const { msg } = await anaWs.ok('msg.send', { chat: dm, body: 'plain words in a DM' });
    const rec = await hook.waitFor((r) => r.json.chat.slug === dm && r.json.msg.seq === msg.seq, 'the DM');
    verify(rec, secret);
    assert.equal(rec.json.chat.kind, 'dm');
    // Deliveries of one chat are sent in order: the bot's own (earlier) message would be here.
    assert.equal(hook.got.some((r) => r.json.msg.seq === own.msg.seq && r.json.chat.slug === dm), false);
    // A bot mentioning itself triggers nothing either.
    const self = await botWs.ok('msg.send', { chat: slug, body: `me @${bot.username}` });
    const next = await anaWs.ok('msg.send', { chat: dm, body: 'after the self-mention' });
    await hook.waitFor((r) => r.json.msg.seq === next.msg.seq && r.json.chat.slug === dm, 'the next DM');
    assert.equal(hook.got.some((r) => r.json.chat.slug === slug && r.json.msg.seq === self.msg.seq), false);
  });

  test('500 then 200: retried with the same delivery id, delivered once acknowledged; metrics count it', async () => {
    const before = await scrape(srv);
    let fails = 2;
    hook.answer = () => (fails-- > 0 ? 500 : 200);
    const { msg } = await anaWs.ok('msg.send', { chat: slug, body: `retry me @${bot.username}` });
    const ok = await hook.waitFor((r) => r.json.msg.seq === msg.seq && r.answered === 200, 'the acknowledged try');
    const tries = hook.got.filter((r) => r.json.msg.seq === msg.seq && r.json.chat.slug === slug);
    assert.equal(tries.length, 3);
    assert.deepEqual(tries.map((r) => r.answered), [500, 500, 200]);
    assert.equal(new Set(tries.map((r) => r.headers['x-parley-delivery'])).size, 1);
    for (const r of tries) verify(r, secret);
    // The retries wait 100 ms, then 200 ms (PARLEY_WEBHOOK_RETRY_MS doubling).
    assert.ok(tries[1].at - tries[0].at >= 90, `first retry after ${tries[1].at - tries[0].at} ms`);
    assert.ok(tries[2].at - tries[1].at >= 190, `second retry after ${tries[2].at - tries[1].at} ms`);
    hook.answer = () => 200;
    let after;
    for (;;) {
      after = await scrape(srv);
      if (after.get('parley_webhook_deliveries_total{result="ok"}') > before.get('parley_webhook_deliveries_total{result="ok"}')) break;
      await new Promise((r) => setTimeout(r, 20)); // the worker counts after the response; poll
    }
    assert.equal(
      after.get('parley_webhook_deliveries_total{result="retry"}') - before.get('parley_webhook_deliveries_total{result="retry"}'),
      2,
    );
    assert.equal(ok.json.msg.seq, msg.seq);
  });

  test('a hanging endpoint times out and the delivery is retried', async () => {
    let first = true;
    hook.answer = () => (first ? ((first = false), 'hang') : 200);
    const { msg } = await anaWs.ok('msg.send', { chat: slug, body: `slow @${bot.username}` });
    const done = await hook.waitFor((r) => r.json.msg.seq === msg.seq && r.answered === 200, 'the retry after a timeout');
    const tries = hook.got.filter((r) => r.json.msg.seq === msg.seq && r.json.chat.slug === slug);
    assert.deepEqual(tries.map((r) => r.answered), ['hang', 200]);
    // The timeout (500 ms) passed before the retry (100 ms later).
    assert.ok(done.at - tries[0].at >= 550, `retried after ${done.at - tries[0].at} ms`);
    hook.answer = () => 200;
  });

  test('an endpoint that never acknowledges is given up after 5 retries (failed counted)', async () => {
    const before = await scrape(srv);
    hook.answer = (r) => (r.json.msg.body.startsWith('doomed') ? 503 : 200);
    const { msg } = await anaWs.ok('msg.send', { chat: slug, body: `doomed @${bot.username}` });
    let after;
    for (;;) {
      after = await scrape(srv);
      if (after.get('parley_webhook_deliveries_total{result="failed"}') > before.get('parley_webhook_deliveries_total{result="failed"}')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const tries = hook.got.filter((r) => r.json.msg.seq === msg.seq && r.json.chat.slug === slug);
    assert.equal(tries.length, 6); // the first try and 5 retries
    hook.answer = () => 200;
  });
});

describe('webhook queue bound', () => {
  const srv = useServer({ env: { PARLEY_WEBHOOK_QUEUE_MAX: '1', PARLEY_WEBHOOK_TIMEOUT_MS: '5000' } });
  const hook = receiver();

  after(async () => {
    await hook.close();
  });

  test('past PARLEY_WEBHOOK_QUEUE_MAX deliveries are dropped and counted', async () => {
    const url = await hook.listen();
    hook.answer = () => 'hang';
    const ana = await signup(srv, uname('ana'));
    const ws = await connect(srv, { token: ana.token });
    const res = await http(srv, 'POST', '/api/bots', { token: ana.token, json: { username: uname('q'), webhookUrl: url } });
    const botName = res.json.bot.username;
    const slug = await makeChat(ws, { title: 'queue' });
    const { invitation } = await ws.ok('invite.create', { chat: slug, user: botName });
    const botWs = await connect(srv, { token: res.json.token });
    await botWs.ok('invite.accept', { invitation: invitation.id });
    await ws.ok('msg.send', { chat: slug, body: `one @${botName}` });
    await hook.waitFor((r) => r.json.msg.body.startsWith('one'), 'the first (hanging) delivery');
    await ws.ok('msg.send', { chat: slug, body: `two @${botName}` });
    let m;
    for (;;) {
      m = await scrape(srv);
      if (m.get('parley_webhook_deliveries_total{result="dropped"}') >= 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(m.get('parley_webhook_queue'), 1);
    assert.equal(hook.got.some((r) => r.json.msg.body.startsWith('two')), false);
    await Promise.all([ws.close(), botWs.close()]);
  });
});
