// 05 - Messages: msg.send and its validation, per-chat gap-free seq, msg.history paging, sub and
// unsub, and fan-out: 12 concurrent clients in one chat all receive every message in the same
// seq order.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertConsecutive, connect, fullHistory, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('messages', () => {
  const srv = useServer();

  let ana, bob;
  let a, b;
  const open = [];

  before(async () => {
    [ana, bob] = await signupMany(srv, ['ana', 'bob']);
    [a, b] = await Promise.all([ana, bob].map((u) => connect(srv, { token: u.token })));
    open.push(a, b);
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  async function newChat(title = 'room', { join = [] } = {}) {
    const { chat } = await a.ok('chat.create', { title, isPublic: true });
    for (const s of join) await s.ok('chat.join', { chat: chat.slug });
    return chat.slug;
  }

  describe('msg.send', () => {
    test('returns the whole message, seq 1 first', async () => {
      const chat = await newChat('first message');
      const t0 = Date.now();
      const r = await a.ok('msg.send', { chat, body: 'Hello, world', clientMsgId: 'c-1' });
      assert.equal(r.duplicate, false);
      const m = r.msg;
      assert.equal(m.seq, 1);
      assert.equal(m.chat, chat);
      assert.deepEqual(m.author, ana.user);
      assert.equal(m.body, 'Hello, world');
      assert.equal(m.clientMsgId, 'c-1');
      assert.equal(typeof m.createdAt, 'number');
      assert.ok(Math.abs(m.createdAt - t0) < 60_000);
    });

    test('clientMsgId is optional (null in the message)', async () => {
      const chat = await newChat();
      const r = await a.ok('msg.send', { chat, body: 'no id' });
      assert.equal(r.msg.clientMsgId, null);
      assert.equal(r.msg.seq, 1);
    });

    test('seq is per chat and gap-free', async () => {
      const x = await newChat('x', { join: [b] });
      const y = await newChat('y');
      const seqs = [];
      for (let i = 0; i < 4; i++) {
        seqs.push((await a.ok('msg.send', { chat: x, body: `x${i}` })).msg.seq);
        seqs.push((await b.ok('msg.send', { chat: x, body: `bx${i}` })).msg.seq);
      }
      // Seq 1 of x is bob's "joined" notice: every change is an entry of the sequence (issue 17).
      assertConsecutive(seqs, 2, 'chat x');
      assert.equal((await a.ok('msg.send', { chat: y, body: 'y0' })).msg.seq, 1, 'chat y starts at 1');
      const { chat } = await a.ok('chat.get', { chat: x });
      assert.equal(chat.lastSeq, 9);
    });

    test('pipelined sends on one socket get distinct gap-free seqs, in request order', async () => {
      const chat = await newChat('pipelined');
      const replies = await Promise.all(
        Array.from({ length: 30 }, (_, i) => a.ok('msg.send', { chat, body: `p${i}`, clientMsgId: `p-${i}` })),
      );
      const bySeq = [...replies].sort((x, y) => x.msg.seq - y.msg.seq);
      assertConsecutive(bySeq.map((r) => r.msg.seq), 1, 'pipelined');
      assert.deepEqual(bySeq.map((r) => r.msg.body), replies.map((r) => r.msg.body), 'seq follows send order');
    });

    test('unicode bodies round-trip unchanged', async () => {
      const chat = await newChat('unicode');
      const body = 'Olá 👋 — „quotes“ 中文 \u00e9\u0301 \\ "escaped" \n newline\ttab';
      const r = await a.ok('msg.send', { chat, body });
      assert.equal(r.msg.body, body);
      const { msgs } = await a.ok('msg.history', { chat });
      assert.equal(msgs[0].body, body);
    });

    test('a body of exactly 16384 bytes is accepted; one byte more is too_large', async () => {
      const chat = await newChat('sizes');
      const r = await a.ok('msg.send', { chat, body: 'é'.repeat(8192) }); // 16384 bytes, 8192 chars
      assert.equal(r.msg.body.length, 8192);
      const err = await a.fail('msg.send', { chat, body: 'x'.repeat(16385) }, 'too_large');
      assert.match(err.message, /body/);
    });

    test('invalid arguments are bad_request naming the field', async () => {
      const chat = await newChat('validation');
      const cases = [
        [{ chat }, /body/],
        [{ chat, body: '' }, /body/],
        [{ chat, body: '   \n\t ' }, /body/],
        [{ chat, body: 42 }, /body/],
        [{ chat, body: null }, /body/],
        [{ body: 'hi' }, /chat/],
        [{ chat: 12, body: 'hi' }, /chat/],
        [{ chat, body: 'hi', clientMsgId: '' }, /clientMsgId/],
        [{ chat, body: 'hi', clientMsgId: 'has space' }, /clientMsgId/],
        [{ chat, body: 'hi', clientMsgId: 5 }, /clientMsgId/],
      ];
      for (const [args, field] of cases) {
        const err = await a.fail('msg.send', args, 'bad_request');
        assert.match(err.message, field, `${JSON.stringify(args).slice(0, 60)}: ${err.message}`);
      }
      const err = await a.fail('msg.send', { chat, body: 'hi', clientMsgId: 'x'.repeat(65) }, 'too_large');
      assert.match(err.message, /clientMsgId/);
      // Nothing was stored, and the next valid send gets seq 1.
      const r = await a.ok('msg.send', { chat, body: 'valid', clientMsgId: 'A-z_0.9:-'.padEnd(64, 'x') });
      assert.equal(r.msg.seq, 1);
    });
  });

  describe('msg.history', () => {
    let chat;
    before(async () => {
      chat = await newChat('history', { join: [b] });
      for (let i = 1; i <= 7; i++) await (i % 2 ? a : b).ok('msg.send', { chat, body: `m${i}`, clientMsgId: `h${i}` });
    });

    test('without arguments: every message, oldest first', async () => {
      // Every entry: bob's "joined" notice (seq 1, issue 17), then the messages.
      const { msgs, hasMore } = await b.ok('msg.history', { chat });
      assert.deepEqual(msgs.map((m) => m.body), ['', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
      assert.deepEqual(msgs.map((m) => m.kind), ['notice', ...Array(7).fill('text')]);
      assertConsecutive(msgs.map((m) => m.seq), 1);
      assert.equal(hasMore, false);
      assert.deepEqual(msgs[2].author, bob.user);
      assert.equal(msgs[2].chat, chat);
      assert.equal(msgs[2].clientMsgId, 'h2');
    });

    test('limit takes the newest; before pages back; hasMore tells when to stop', async () => {
      let r = await a.ok('msg.history', { chat, limit: 3 });
      assert.deepEqual(r.msgs.map((m) => m.seq), [6, 7, 8]);
      assert.equal(r.hasMore, true);
      r = await a.ok('msg.history', { chat, limit: 3, before: 6 });
      assert.deepEqual(r.msgs.map((m) => m.seq), [3, 4, 5]);
      assert.equal(r.hasMore, true);
      r = await a.ok('msg.history', { chat, limit: 3, before: 3 });
      assert.deepEqual(r.msgs.map((m) => m.seq), [1, 2]);
      assert.equal(r.hasMore, false);
      r = await a.ok('msg.history', { chat, limit: 3, before: 1 });
      assert.deepEqual(r.msgs, []);
      assert.equal(r.hasMore, false);
      r = await a.ok('msg.history', { chat, limit: 5, before: 6 });
      assert.deepEqual(r.msgs.map((m) => m.seq), [1, 2, 3, 4, 5]);
      assert.equal(r.hasMore, false, 'exactly the remaining messages: no more');
    });

    test('an empty chat has an empty history', async () => {
      const empty = await newChat('empty');
      const r = await a.ok('msg.history', { chat: empty });
      assert.deepEqual(r.msgs, []);
      assert.equal(r.hasMore, false);
    });

    test('invalid limit or before is bad_request naming the field', async () => {
      for (const [args, field] of [
        [{ chat, limit: 0 }, /limit/],
        [{ chat, limit: 201 }, /limit/],
        [{ chat, limit: 'ten' }, /limit/],
        [{ chat, before: 'x' }, /before/],
        [{ chat, before: -1 }, /before/],
        [{}, /chat/],
      ]) {
        const err = await a.fail('msg.history', args, 'bad_request');
        assert.match(err.message, field, `${JSON.stringify(args)}: ${err.message}`);
      }
      const r = await a.ok('msg.history', { chat, limit: 200 });
      assert.equal(r.msgs.length, 8);
    });
  });

  describe('sub and unsub', () => {
    test('sub without since goes live from now: empty msgs, lastSeq, then events', async () => {
      const chat = await newChat('live', { join: [b] });
      await a.ok('msg.send', { chat, body: 'before sub' });
      const sub = await b.ok('sub', { chat });
      assert.deepEqual(sub.msgs, []);
      assert.equal(sub.lastSeq, 2); // bob's "joined" notice, then the message
      assert.equal(sub.chat?.slug ?? sub.chat, chat);
      const from = b.events.length;
      const sent = await a.ok('msg.send', { chat, body: 'after sub', clientMsgId: 'live-2' });
      const ev = await b.waitFor((e) => e.ev === 'msg' && e.chat === chat, { from });
      assert.deepEqual(ev.msg, sent.msg, 'the event carries the same message as the reply');
    });

    test("the sender's own subscribed socket gets its message as an event too", async () => {
      const chat = await newChat('echo');
      await a.ok('sub', { chat });
      const sent = await a.ok('msg.send', { chat, body: 'echo me', clientMsgId: 'echo-1' });
      const ev = await a.waitSeq(chat, sent.msg.seq);
      assert.equal(ev.msg.clientMsgId, 'echo-1');
      assert.equal(ev.msg.seq, sent.msg.seq);
    });

    test('every socket of a subscribed user receives the events', async () => {
      const chat = await newChat('two tabs', { join: [b] });
      const b2 = await connect(srv, { cookie: bob.cookie });
      open.push(b2);
      await b.ok('sub', { chat });
      await b2.ok('sub', { chat });
      const sent = await a.ok('msg.send', { chat, body: 'to both tabs' });
      const [e1, e2] = await Promise.all([b.waitSeq(chat, sent.msg.seq), b2.waitSeq(chat, sent.msg.seq)]);
      assert.equal(e1.msg.body, 'to both tabs');
      assert.equal(e2.msg.body, 'to both tabs');
    });

    test('a socket that is not subscribed receives no msg events', async () => {
      const chat = await newChat('unsubscribed', { join: [b] });
      const marker = await newChat('marker', { join: [b] });
      await b.ok('sub', { chat: marker });
      const from = b.events.length;
      await a.ok('msg.send', { chat, body: 'nobody listening' });
      const m = await a.ok('msg.send', { chat: marker, body: 'marker' });
      await b.waitSeq(marker, m.msg.seq, { from });
      assert.deepEqual(b.msgs(chat, from), []);
    });

    test('unsub stops the events of that chat only', async () => {
      const chat = await newChat('unsub me', { join: [b] });
      const marker = await newChat('marker 2', { join: [b] });
      await b.ok('sub', { chat });
      await b.ok('sub', { chat: marker });
      const s1 = await a.ok('msg.send', { chat, body: 'while subscribed' });
      await b.waitSeq(chat, s1.msg.seq);
      await b.ok('unsub', { chat });
      const from = b.events.length;
      await a.ok('msg.send', { chat, body: 'after unsub' });
      // Fan-out is in order on one loop: the marker's event comes after any event of `chat`.
      const m = await a.ok('msg.send', { chat: marker, body: 'marker' });
      await b.waitSeq(marker, m.msg.seq, { from });
      assert.deepEqual(b.msgs(chat, from), [], 'no event after unsub');
      await b.ok('unsub', { chat }); // twice is harmless
    });

    test('sub twice does not duplicate events', async () => {
      const chat = await newChat('double sub', { join: [b] });
      await b.ok('sub', { chat });
      await b.ok('sub', { chat });
      const from = b.events.length;
      const s = await a.ok('msg.send', { chat, body: 'once' });
      const marker = await a.ok('msg.send', { chat, body: 'twice?' });
      await b.waitSeq(chat, marker.msg.seq, { from });
      assert.deepEqual(b.msgs(chat, from).map((m) => m.seq), [s.msg.seq, marker.msg.seq]);
    });
  });

  describe('fan-out', () => {
    test('12 concurrent clients in one chat all receive every message in the same gap-free order', async () => {
      const N = 12;
      const PER = 6;
      const users = await signupMany(srv, Array.from({ length: N }, (_, i) => `fan${i}`));
      const clients = await Promise.all(users.map((u) => connect(srv, { token: u.token })));
      open.push(...clients);
      const { chat } = await clients[0].ok('chat.create', { title: 'everyone', isPublic: true });
      const slug = chat.slug;
      await Promise.all(clients.slice(1).map((c) => c.ok('chat.join', { chat: slug })));
      await Promise.all(clients.map((c) => c.ok('sub', { chat: slug })));

      // Everyone sends PER messages at once, without waiting for each other.
      const sends = clients.flatMap((c, i) =>
        Array.from({ length: PER }, (_, k) => c.ok('msg.send', { chat: slug, body: `from ${i} #${k}`, clientMsgId: `f${i}-${k}` })),
      );
      const replies = await Promise.all(sends);
      const total = N * PER;
      // Seqs 1..N-1 are the joins' notices (issue 17); the messages follow, from N.
      assertConsecutive(replies.map((r) => r.msg.seq).sort((x, y) => x - y), N, 'acknowledged seqs');

      await Promise.all(clients.map((c) => c.waitSeq(slug, total + N - 1, { timeout: 15_000 })));
      const reference = clients[0].msgs(slug).map((m) => `${m.seq}|${m.clientMsgId}|${m.author.username}|${m.body}`);
      assert.equal(reference.length, total);
      for (const [i, c] of clients.entries()) {
        const got = c.msgs(slug);
        assertConsecutive(got.map((m) => m.seq), N, `client ${i} event seqs`);
        assert.deepEqual(
          got.map((m) => `${m.seq}|${m.clientMsgId}|${m.author.username}|${m.body}`),
          reference,
          `client ${i} saw a different sequence`,
        );
      }
      // Each client's own sends appear in the order it sent them, with the seqs it was told.
      const bySeq = new Map(replies.map((r) => [r.msg.seq, r.msg]));
      for (const m of clients[3].msgs(slug)) assert.deepEqual(m, bySeq.get(m.seq));
      for (let i = 0; i < N; i++) {
        const mine = clients[0].msgs(slug).filter((m) => m.author.username === users[i].user.username);
        assert.deepEqual(mine.map((m) => m.clientMsgId), Array.from({ length: PER }, (_, k) => `f${i}-${k}`));
      }
      // History agrees with what was delivered.
      const hist = (await fullHistory(clients[5], slug)).filter((m) => m.kind === 'text');
      assert.deepEqual(hist.map((m) => `${m.seq}|${m.clientMsgId}|${m.author.username}|${m.body}`), reference);
    });
  });
});
