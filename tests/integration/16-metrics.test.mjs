// 16 - Server-side latency on /metrics: delivery (msg.send read -> event written to every local
// subscriber) and the store (batch commit, request round trip), as Prometheus summaries whose
// quantiles cover the last minute or two and whose _count/_sum cover the server's life.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, makeChat, signupMany } from './lib/client.mjs';
import { scrape, summary } from './lib/metrics.mjs';
import { useServer } from './lib/server.mjs';



describe('latency metrics', () => {
  const srv = useServer();
  let a, b;

  before(async () => {
    const [ana, bob] = await signupMany(srv, ['ana', 'bob']);
    [a, b] = await Promise.all([ana, bob].map((u) => connect(srv, { token: u.token })));
  });

  after(async () => {
    await Promise.all([a, b].map((s) => s.close().catch(() => {})));
  });

  test('every summary is exported with quantiles, _sum and _count', async () => {
    const m = await scrape(srv);
    for (const name of [
      'parley_delivery_seconds',
      'parley_store_commit_latency_seconds',
      'parley_store_request_seconds',
    ]) {
      const s = summary(m, name);
      for (const [k, v] of Object.entries(s)) assert.ok(Number.isFinite(v), `${name} ${k} = ${v}`);
    }
  });

  test('each delivered message is counted once, duplicates not at all', async () => {
    const chat = await makeChat(a, { join: [b] });
    await b.ok('sub', { chat });
    const before = summary(await scrape(srv), 'parley_delivery_seconds');
    const n = 20;
    for (let i = 0; i < n; i++) await a.ok('msg.send', { chat, body: `m${i}`, clientMsgId: `d-${i}` });
    // A retried send (same clientMsgId) is acknowledged as a duplicate and fans nothing out.
    const dup = await a.ok('msg.send', { chat, body: 'm0', clientMsgId: 'd-0' });
    assert.equal(dup.duplicate, true);
    await b.waitSeq(chat, n);
    const after = summary(await scrape(srv), 'parley_delivery_seconds');
    assert.equal(after.count - before.count, n);
    assert.ok(after.sum > before.sum, 'the delivery time sum grew');
    // Quantiles are positive, ordered, and no larger than the whole test took.
    assert.ok(after.p50 > 0, `p50 ${after.p50}`);
    assert.ok(after.p50 <= after.p90 && after.p90 <= after.p99 && after.p99 <= after.p999);
    assert.ok(after.p999 < 8, `p999 ${after.p999} s`);
    // The mean of the new samples lies between the recent minimum and maximum quantiles.
    const mean = (after.sum - before.sum) / n;
    assert.ok(mean > 0 && mean < 8, `mean ${mean}`);
  });

  test('store commits and requests are timed', async () => {
    const before = await scrape(srv);
    const chat = await makeChat(a);
    await a.ok('msg.send', { chat, body: 'x', clientMsgId: 'c-1' });
    const after = await scrape(srv);
    const c0 = summary(before, 'parley_store_commit_latency_seconds');
    const c1 = summary(after, 'parley_store_commit_latency_seconds');
    assert.ok(c1.count > c0.count, 'at least one more batch committed');
    assert.ok(c1.p50 > 0 && c1.p50 <= c1.p99);
    assert.equal(c1.count, after.get('parley_store_batches_total'));
    const r0 = summary(before, 'parley_store_request_seconds');
    const r1 = summary(after, 'parley_store_request_seconds');
    // chat.create and msg.send at least (the scrape itself does not touch the store).
    assert.ok(r1.count - r0.count >= 2, `${r1.count - r0.count} requests`);
    assert.ok(r1.p50 > 0 && r1.p50 <= r1.p99);
  });
});
