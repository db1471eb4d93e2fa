// 46 - Overload is refused, not queued (issue 15): past the store's capacity a client's request
// is answered at once with `unavailable` and `retryAfter` instead of waiting in a queue that grows
// without bound. Nothing acknowledged is lost, nothing refused is stored, and once the burst is
// over sends are accepted again. /metrics counts the refusals and shows the loop's lag.
//
// The server runs with PARLEY_STORE_QUEUE_MAX=1: the store holds one client request at a time
// (until its callback ran on the loop thread). A burst of sends written back to back is read in
// one go, so every send read while the first is still held must be refused.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, fullHistory, makeChat, signupMany } from './lib/client.mjs';
import { scrape } from './lib/metrics.mjs';
import { useServer } from './lib/server.mjs';


describe('overload', () => {
  const srv = useServer({
    env: { PARLEY_STORE_QUEUE_MAX: '1', PARLEY_STORE_QUEUE_WAIT_MS: '250', PARLEY_RATE_LIMITS: '0' },
  });
  let a, b, chat;

  before(async () => {
    const [ana, bob] = await signupMany(srv, ['ana', 'bob']);
    // One at a time: with room for one request, a second auth in flight would be refused too.
    a = await connect(srv, { token: ana.token });
    b = await connect(srv, { token: bob.token });
    chat = await makeChat(a, { join: [b] });
    await b.ok('sub', { chat });
  });

  after(async () => {
    await Promise.all([a, b].map((s) => s.close().catch(() => {})));
  });

  test('a burst past capacity: refused at once with retryAfter, nothing acknowledged lost', async () => {
    const before = await scrape(srv);
    const N = 200;
    const t0 = Date.now();
    // Written back to back without waiting: the server reads many in one go.
    const replies = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        a.request('msg.send', { chat, body: `burst ${i}`, clientMsgId: `burst-${i}` }),
      ),
    );
    const elapsed = Date.now() - t0;
    const acked = replies.filter((r) => r.ok);
    const refused = replies.filter((r) => !r.ok);
    assert.ok(acked.length >= 1, 'the first send of the burst is stored');
    assert.ok(refused.length >= 1, `some of ${N} sends are refused (acked ${acked.length})`);
    for (const r of refused) {
      assert.equal(r.error.code, 'unavailable', JSON.stringify(r));
      assert.ok(Number.isInteger(r.error.retryAfter) && r.error.retryAfter > 0, JSON.stringify(r));
    }
    // Refusals do not wait for the store: the whole burst is answered quickly.
    assert.ok(elapsed < 5000, `the burst took ${elapsed} ms to be answered`);

    // Exactly the acknowledged sends are in the chat, once each, in seq order, and the live
    // subscriber got exactly those.
    const history = await fullHistory(a, chat);
    const stored = history.filter((m) => m.body.startsWith('burst '));
    assert.deepEqual(
      stored.map((m) => m.clientMsgId).sort(),
      acked.map((r) => r.msg.clientMsgId).sort(),
    );
    const lastSeq = Math.max(...acked.map((r) => r.msg.seq));
    await b.waitFor((e) => e.ev === 'msg' && e.chat === chat && e.msg.seq === lastSeq);
    const live = b.events.filter((e) => e.ev === 'msg' && e.msg.body.startsWith('burst '));
    assert.equal(live.length, acked.length);

    const m = await scrape(srv);
    assert.equal(
      m.get('parley_store_shed_total') - before.get('parley_store_shed_total'),
      refused.length,
    );
    assert.equal(m.get('parley_store_inflight'), 0);
  });

  test('after the burst, sends are accepted again', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await a.ok('msg.send', { chat, body: `calm ${i}`, clientMsgId: `calm-${i}` });
      assert.equal(r.msg.body, `calm ${i}`);
    }
  });

  test('a retried send after a refusal is stored once', async () => {
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        a.request('msg.send', { chat, body: `retry ${i}`, clientMsgId: `retry-${i}` }),
      ),
    );
    const refused = replies
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => !r.ok)
      .map(({ i }) => i);
    assert.ok(refused.length > 0);
    // The client retries every send with the same clientMsgId, one at a time: each is stored
    // once, whether it had been refused or acknowledged before.
    for (let i = 0; i < 50; i++) {
      await a.ok('msg.send', { chat, body: `retry ${i}`, clientMsgId: `retry-${i}` });
    }
    const history = await fullHistory(a, chat);
    const stored = history.filter((m) => m.body.startsWith('retry '));
    assert.equal(stored.length, 50);
    assert.equal(new Set(stored.map((m) => m.clientMsgId)).size, 50);
  });

  test('/metrics shows the loop lag and the store backlog', async () => {
    const m = await scrape(srv);
    for (const k of [
      'parley_loop_lag_seconds{quantile="0.99"}',
      'parley_loop_lag_seconds_count',
      'parley_store_oldest_wait_seconds',
      'parley_store_inflight',
    ])
      assert.ok(Number.isFinite(m.get(k)), `${k} = ${m.get(k)}`);
    assert.ok(m.get('parley_loop_lag_seconds_count') > 0, 'the lag probe ran');
  });
});
