// 06 - Resume: a client that drops reconnects and subscribes with `since` = the last seq it saw;
// it gets exactly the messages it missed, then live ones, with no gap and no duplicate at the
// seam, even while others keep sending. More than 200 missed gives `reset: true`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertConsecutive, connect, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('resume', () => {
  const srv = useServer();

  let ana, bob, cat, dan;
  let a, c, d; // senders (bob's socket comes and goes)
  const sockets = [];

  before(async () => {
    [ana, bob, cat, dan] = await signupMany(srv, ['ana', 'bob', 'cat', 'dan']);
    [a, c, d] = await Promise.all([ana, cat, dan].map((u) => connect(srv, { token: u.token })));
    sockets.push(a, c, d);
  });

  after(async () => {
    await Promise.all(sockets.map((s) => s.close().catch(() => {})));
  });

  async function sharedChat(title) {
    const { chat } = await a.ok('chat.create', { title, isPublic: true });
    await Promise.all([c, d].map((s) => s.ok('chat.join', { chat: chat.slug })));
    const b = await connect(srv, { token: bob.token });
    sockets.push(b);
    await b.ok('chat.join', { chat: chat.slug });
    // The three joins are entries of the sequence too ("joined" notices, issue 17): the
    // messages of a test start after them, at base + 1.
    return { slug: chat.slug, b, base: 3 };
  }

  // Sends `count` messages from `sender`, keeping up to `window` requests in flight. Resolves with
  // the replies' msgs.
  async function pump(sender, chat, count, prefix, window = 4) {
    const out = [];
    const inflight = new Set();
    for (let i = 0; i < count; i++) {
      const p = sender.ok('msg.send', { chat, body: `${prefix} ${i}`, clientMsgId: `${prefix}-${i}` }).then((r) => out.push(r.msg));
      inflight.add(p);
      p.finally(() => inflight.delete(p)).catch(() => {});
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    return out;
  }

  describe('resume after a dropped connection', () => {
    test('sub with since returns exactly the missed messages, then live ones', async () => {
      const { slug, b, base } = await sharedChat('resume basic');
      await b.ok('sub', { chat: slug });
      await pump(a, slug, 5, 'before');
      await b.waitSeq(slug, base + 5);
      const lastSeen = Math.max(...b.msgs(slug).map((m) => m.seq));
      assert.equal(lastSeen, base + 5);

      await b.terminate(); // no close handshake, as when a network drops
      const missed = [...(await pump(c, slug, 7, 'missed-c')), ...(await pump(d, slug, 6, 'missed-d'))];
      assert.equal(missed.length, 13);

      const b2 = await connect(srv, { token: bob.token });
      sockets.push(b2);
      const from = b2.events.length;
      const sub = await b2.ok('sub', { chat: slug, since: lastSeen });
      assert.equal(sub.lastSeq, base + 18);
      assert.ok(!sub.reset, 'no reset for 13 missed messages');
      assertConsecutive(sub.msgs.map((m) => m.seq), lastSeen + 1, 'replayed');
      assert.equal(sub.msgs.length, 13);
      const bySeq = new Map(missed.map((m) => [m.seq, m]));
      for (const m of sub.msgs) assert.deepEqual(m, bySeq.get(m.seq), 'replayed message equals the acknowledged one');

      const live = await a.ok('msg.send', { chat: slug, body: 'live again', clientMsgId: 'live-1' });
      const ev = await b2.waitSeq(slug, live.msg.seq, { from });
      assert.equal(ev.msg.seq, base + 19);
      assert.deepEqual(b2.msgs(slug, from).map((m) => m.seq), [base + 19], 'live events start right after lastSeq');
    });

    test('since = the latest seq replays nothing and goes live', async () => {
      const { slug, b, base } = await sharedChat('nothing missed');
      await pump(a, slug, 3, 'x');
      const sub = await b.ok('sub', { chat: slug, since: base + 3 });
      assert.deepEqual(sub.msgs, []);
      assert.equal(sub.lastSeq, base + 3);
      const from = b.events.length;
      await a.ok('msg.send', { chat: slug, body: 'next' });
      await b.waitSeq(slug, base + 4, { from });
      assert.deepEqual(b.msgs(slug, from).map((m) => m.seq), [base + 4]);
    });

    test('since = 0 replays the whole chat', async () => {
      const { slug, b, base } = await sharedChat('from zero');
      await pump(a, slug, 4, 'z');
      const sub = await b.ok('sub', { chat: slug, since: 0 });
      assertConsecutive(sub.msgs.map((m) => m.seq), 1);
      assert.equal(sub.msgs.length, base + 4);
      assert.deepEqual(sub.msgs.map((m) => m.kind), [...Array(base).fill('notice'), ...Array(4).fill('text')]);
    });

    test('no gap and no duplicate at the seam while others keep sending (several reconnects)', async (t) => {
      const { slug, b, base } = await sharedChat('resume under load');
      await b.ok('sub', { chat: slug });
      const TOTAL_PER_SENDER = 120;
      // Two senders stream messages for the whole test.
      const streams = Promise.all([pump(c, slug, TOTAL_PER_SENDER, 'sc', 3), pump(d, slug, TOTAL_PER_SENDER, 'sd', 3)]);
      const total = 2 * TOTAL_PER_SENDER;
      const end = base + total; // the seq of the last message

      let sock = b;
      const seen = []; // every seq bob's sockets showed him, in order, across reconnects
      let from = 0; // index in sock.events where this socket's live events start
      for (let round = 0; round < 4 && (seen.at(-1) ?? base) < end; round++) {
        // Let some messages arrive live, then drop the connection and resume.
        const target = Math.min((seen.at(-1) ?? base) + 10, end);
        await sock.waitSeq(slug, target, { from, timeout: 15_000 });
        const live = sock.msgs(slug, from).map((m) => m.seq);
        if (seen.length) assertConsecutive(live, seen.at(-1) + 1, `round ${round}: live after the seam`);
        seen.push(...live);
        const lastSeen = seen.at(-1);
        await sock.terminate(); // anything that arrives from here on was never seen
        sock = await connect(srv, { token: bob.token });
        sockets.push(sock);
        from = sock.events.length; // live events may arrive right after the reply: count from here
        const sub = await sock.ok('sub', { chat: slug, since: lastSeen }, { timeout: 15_000 });
        t.diagnostic(`round ${round}: since ${lastSeen}, replayed ${sub.msgs.length}, lastSeq ${sub.lastSeq}`);
        assert.ok(!sub.reset, `round ${round}: unexpected reset`);
        const replayed = sub.msgs.map((m) => m.seq);
        if (replayed.length) assertConsecutive(replayed, lastSeen + 1, `round ${round} replay`);
        assert.equal(sub.lastSeq, lastSeen + replayed.length, `round ${round}: lastSeq ends the replay`);
        seen.push(...replayed);
      }
      const sent = (await streams).flat();
      assert.equal(sent.length, total);
      if (seen.at(-1) < end) await sock.waitSeq(slug, end, { from, timeout: 15_000 });
      const tail = sock.msgs(slug, from).map((m) => m.seq);
      if (tail.length) assertConsecutive(tail, seen.at(-1) + 1, 'live events after the last seam');
      seen.push(...tail);
      assertConsecutive(seen, base + 1, 'everything bob saw across reconnects');
      assert.equal(seen.length, total);
    });
  });

  describe('reset when too much was missed', () => {
    test('more than 200 missed: reset with the newest 200; exactly 200: a full replay', async () => {
      const { slug, b, base } = await sharedChat('reset');
      await b.ok('sub', { chat: slug });
      await pump(a, slug, 2, 'seen');
      await b.waitSeq(slug, base + 2);
      await b.terminate();
      await Promise.all([pump(c, slug, 120, 'r-c', 8), pump(d, slug, 130, 'r-d', 8)]);
      const last = base + 252;

      const b2 = await connect(srv, { token: bob.token });
      sockets.push(b2);
      const sub = await b2.ok('sub', { chat: slug, since: base + 2 });
      assert.equal(sub.reset, true, '250 missed > 200');
      assert.equal(sub.lastSeq, last);
      assert.equal(sub.msgs.length, 200);
      assertConsecutive(sub.msgs.map((m) => m.seq), last - 199, 'the newest 200');
      // Live after a reset.
      const from = b2.events.length;
      await a.ok('msg.send', { chat: slug, body: 'after reset' });
      await b2.waitSeq(slug, last + 1, { from });
      assert.deepEqual(b2.msgs(slug, from).map((m) => m.seq), [last + 1]);

      // Exactly 200 missed (since = last + 1 - 200) is still a full replay, not a reset.
      const b3 = await connect(srv, { token: bob.token });
      sockets.push(b3);
      const sub3 = await b3.ok('sub', { chat: slug, since: last + 1 - 200 });
      assert.ok(!sub3.reset, 'exactly 200 missed is not "more than 200"');
      assert.equal(sub3.msgs.length, 200);
      assertConsecutive(sub3.msgs.map((m) => m.seq), last + 1 - 199);
    });

    test('sub with an invalid since is bad_request naming the field', async () => {
      const { slug, b } = await sharedChat('bad since');
      for (const since of ['5', -1, 1.5, true]) {
        const err = await b.fail('sub', { chat: slug, since }, 'bad_request');
        assert.match(err.message, /since/);
      }
    });
  });
});
