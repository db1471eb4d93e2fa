// 10 - Slow consumers: a subscriber that stops reading is disconnected with 4008 once its
// outbound queue passes 1 MiB, while the sender and a normal subscriber are not slowed and miss
// nothing; the slow one can reconnect and resume with `since`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertConsecutive, connect, signupMany } from './lib/client.mjs';
import { scrape, waitMetrics } from './lib/metrics.mjs';
import { useServer } from './lib/server.mjs';

describe('slow consumers', () => {
  const srv = useServer();

  let ana, bob, cat;
  const sockets = [];
  before(async () => {
    [ana, bob, cat] = await signupMany(srv, ['ana', 'bob', 'cat']);
  });
  after(async () => {
    await Promise.all(sockets.map((s) => s.close().catch(() => {})));
  });

  test('a subscriber that stops reading is closed with 4008; others get everything', async (t) => {
    const [a, slow, fine] = await Promise.all([ana, bob, cat].map((u) => connect(srv, { token: u.token })));
    sockets.push(a, slow, fine);
    const { chat } = await a.ok('chat.create', { title: 'firehose', isPublic: true });
    await slow.ok('chat.join', { chat: chat.slug });
    await fine.ok('chat.join', { chat: chat.slug });
    await slow.ok('sub', { chat: chat.slug });
    await fine.ok('sub', { chat: chat.slug });

    // Stop reading: the kernel buffers fill up, then the server's queue for this socket grows.
    slow.ws._socket.pause();
    // Read again as soon as the server has given up on it (its slow-close counter moves; nothing
    // else tells: the socket is not read). The close frame waits behind what the kernel holds,
    // and a close handshake gets 5 s before the server hangs up without one (1006), which a
    // loaded machine can outlast while the rest of the 800 sends go on.
    const closesBefore = (await scrape(srv)).get('parley_slow_consumer_closes_total');
    const gaveUp = waitMetrics(srv, (m) => m.get('parley_slow_consumer_closes_total') > closesBefore, {
      timeout: 60_000,
      what: 'the slow-consumer close',
    }).then(() => slow.ws._socket.resume());

    // ~12 MiB of fan-out: far more than 1 MiB of queue plus what the kernel buffers on loopback.
    const COUNT = 800;
    const body = 'z'.repeat(16000);
    const inflight = new Set();
    const acked = [];
    for (let i = 0; i < COUNT; i++) {
      const p = a.ok('msg.send', { chat: chat.slug, body, clientMsgId: `fh-${i}` }, { timeout: 30_000 }).then((r) => acked.push(r.msg.seq));
      inflight.add(p);
      p.finally(() => inflight.delete(p)).catch(() => {});
      if (inflight.size >= 16) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    assert.equal(acked.length, COUNT, 'every send acknowledged');

    // The normal subscriber got every message, in order: seqs 3.., after the two joins' notices
    // (issue 17).
    const base = 2;
    await fine.waitSeq(chat.slug, base + COUNT, { timeout: 30_000 });
    assertConsecutive(fine.msgs(chat.slug).map((m) => m.seq), base + 1, 'normal subscriber');

    // Reading again: whatever was buffered, then the close frame.
    await gaveUp;
    const info = await slow.waitClose({ timeout: 30_000 });
    assert.equal(info.code, 4008, `close code of the slow consumer (${info.reason})`);
    const got = slow.msgs(chat.slug).map((m) => m.seq);
    t.diagnostic(`the slow consumer received ${got.length} of ${COUNT} messages before 4008`);
    assert.ok(got.length < COUNT, 'the slow consumer was cut off before the end');
    if (got.length) assertConsecutive(got, base + 1, 'what the slow consumer did receive');

    // It reconnects and resumes from what it saw.
    const again = await connect(srv, { token: bob.token });
    sockets.push(again);
    const since = got.at(-1) ?? base;
    const sub = await again.ok('sub', { chat: chat.slug, since });
    assert.equal(sub.lastSeq, base + COUNT);
    if (base + COUNT - since > 200) {
      assert.equal(sub.reset, true);
      assert.equal(sub.msgs.length, 200);
    } else {
      assertConsecutive(sub.msgs.map((m) => m.seq), since + 1);
    }
  });

  test('a normally reading client gets a full page of 200 maximum-size messages without being cut off', async () => {
    // 200 bodies of 16384 bytes make one ~3.3 MB reply, more than the 1 MiB queue cap: a client
    // that reads as fast as it can must still get it (else resuming after a reset can never work).
    const [a, b] = await Promise.all([ana, bob].map((u) => connect(srv, { token: u.token })));
    sockets.push(a, b);
    const { chat } = await a.ok('chat.create', { title: 'big pages', isPublic: true });
    await b.ok('chat.join', { chat: chat.slug });
    const body = 'q'.repeat(16384);
    for (let i = 0; i < 200; i += 5) {
      // A few at a time: this test is about the page, not about bursts of replies.
      await Promise.all([0, 1, 2, 3, 4].map((k) => a.ok('msg.send', { chat: chat.slug, body, clientMsgId: `bp-${i + k}` })));
    }
    const hist = await b.request('msg.history', { chat: chat.slug, limit: 200 }, { timeout: 30_000 });
    assert.equal(hist.ok, true);
    assert.equal(hist.msgs.length, 200);
    const sub = await b.request('sub', { chat: chat.slug, since: 0 }, { timeout: 30_000 });
    assert.equal(sub.ok, true);
    assert.equal(sub.msgs.length, 200);
    assert.ok(b.isOpen);
  });

  test('a client pipelining 200 maximum-size sends is not cut off by the burst of its own replies', async () => {
    // As an SDK does when it flushes its pending sends after a reconnect. The replies echo the
    // bodies (~3.3 MB in all) and the client reads them as fast as it can.
    const a = await connect(srv, { token: cat.token });
    sockets.push(a);
    const { chat } = await a.ok('chat.create', { title: 'burst' });
    const body = 'b'.repeat(16384);
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => a.request('msg.send', { chat: chat.slug, body, clientMsgId: `burst-${i}` }, { timeout: 30_000 })),
    );
    assert.ok(replies.every((r) => r.ok), JSON.stringify(replies.find((r) => !r.ok)));
    assert.ok(a.isOpen);
  });
});
