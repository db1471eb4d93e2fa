// 07 - Durability: idempotent sends through clientMsgId (also across restarts), kill -9 during a
// stream of sends (every acknowledged message survives exactly once, in order, gap-free), and
// graceful shutdown (SIGTERM closes sockets with 1001, exits 0, loses nothing acknowledged).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertConsecutive, connect, fullHistory, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('durability', () => {
  const srv = useServer();

  let users; // [{user, token, cookie}], reused across restarts (sessions are durable)
  const sockets = [];

  before(async () => {
    users = await signupMany(srv, ['ana', 'bob', 'cat', 'dan']);
  });

  after(async () => {
    await Promise.all(sockets.map((s) => s.close().catch(() => {})));
  });

  async function connectAll() {
    const cs = await Promise.all(users.map((u) => connect(srv, { token: u.token })));
    sockets.push(...cs);
    return cs;
  }

  // The text messages of a chat, oldest first: the joins of sharedChat are entries of the
  // sequence too, "joined" notices at seq 1..cs.length - 1 (issue 17).
  async function textHistory(client, chat) {
    return (await fullHistory(client, chat)).filter((m) => m.kind === 'text');
  }

  async function sharedChat(cs, title) {
    const { chat } = await cs[0].ok('chat.create', { title, isPublic: true });
    await Promise.all(cs.slice(1).map((c) => c.ok('chat.join', { chat: chat.slug })));
    return chat.slug;
  }

  describe('idempotent sends (clientMsgId)', () => {
    test('a retry with the same clientMsgId returns the original message with duplicate: true', async () => {
      const [a, b] = await connectAll();
      const chat = await sharedChat([a, b], 'idempotent');
      const first = await a.ok('msg.send', { chat, body: 'only once', clientMsgId: 'retry-1' });
      assert.equal(first.duplicate, false);
      await a.ok('msg.send', { chat, body: 'another', clientMsgId: 'retry-2' });
      const again = await a.ok('msg.send', { chat, body: 'only once', clientMsgId: 'retry-1' });
      assert.equal(again.duplicate, true);
      assert.deepEqual(again.msg, first.msg, 'the original message, same seq and createdAt');
      // Even with a different body the original is returned and nothing is stored.
      const changed = await a.ok('msg.send', { chat, body: 'edited?', clientMsgId: 'retry-1' });
      assert.equal(changed.duplicate, true);
      assert.equal(changed.msg.body, 'only once');
      assert.equal(changed.msg.seq, 2);
      // From another socket of the same user (a reconnect) too.
      const a2 = await connect(srv, { token: users[0].token });
      sockets.push(a2);
      const fromOther = await a2.ok('msg.send', { chat, body: 'only once', clientMsgId: 'retry-1' });
      assert.equal(fromOther.duplicate, true);
      assert.equal(fromOther.msg.seq, 2);
      const hist = await textHistory(b, chat);
      assert.deepEqual(hist.map((m) => m.clientMsgId), ['retry-1', 'retry-2']);
    });

    test('a duplicate is not fanned out again', async () => {
      const [a, b] = await connectAll();
      const chat = await sharedChat([a, b], 'no refanout');
      await b.ok('sub', { chat });
      const from = b.events.length;
      await a.ok('msg.send', { chat, body: 'one', clientMsgId: 'nf-1' });
      await a.ok('msg.send', { chat, body: 'one', clientMsgId: 'nf-1' });
      await a.ok('msg.send', { chat, body: 'two', clientMsgId: 'nf-2' });
      await b.waitSeq(chat, 3, { from });
      assert.deepEqual(b.msgs(chat, from).map((m) => m.clientMsgId), ['nf-1', 'nf-2']);
    });

    test('concurrent retries of one clientMsgId store it once', async () => {
      const [a] = await connectAll();
      const { chat } = await a.ok('chat.create', { title: 'racing retries' });
      const replies = await Promise.all(
        Array.from({ length: 8 }, () => a.ok('msg.send', { chat: chat.slug, body: 'race', clientMsgId: 'race-1' })),
      );
      assert.equal(new Set(replies.map((r) => r.msg.seq)).size, 1, 'all replies name one message');
      assert.equal(replies.filter((r) => r.duplicate === false).length, 1, 'exactly one original');
      assert.equal((await textHistory(a, chat.slug)).length, 1);
    });

    test('clientMsgId is scoped to (user, chat)', async () => {
      const [a, b] = await connectAll();
      const chat1 = await sharedChat([a, b], 'scope 1');
      const chat2 = await sharedChat([a, b], 'scope 2');
      const r1 = await a.ok('msg.send', { chat: chat1, body: 'a in 1', clientMsgId: 'same' });
      const r2 = await a.ok('msg.send', { chat: chat2, body: 'a in 2', clientMsgId: 'same' });
      const r3 = await b.ok('msg.send', { chat: chat1, body: 'b in 1', clientMsgId: 'same' });
      assert.deepEqual([r1.duplicate, r2.duplicate, r3.duplicate], [false, false, false]);
      assert.deepEqual([r1.msg.seq, r2.msg.seq, r3.msg.seq], [2, 2, 3]);
    });
  });

  describe('restarts', () => {
    test('messages, chats and sessions survive a graceful restart; retries stay duplicates', async () => {
      let [a, b] = await connectAll();
      const chat = await sharedChat([a, b], 'survives restart');
      const sent = [];
      for (let i = 0; i < 5; i++) sent.push((await a.ok('msg.send', { chat, body: `r${i}`, clientMsgId: `rs-${i}` })).msg);
      const stopped = await srv.stop();
      assert.equal(stopped.code, 0, `exit code after SIGTERM (signal ${stopped.signal})`);
      await srv.start();
      [a, b] = await connectAll(); // the old tokens still work
      const hist = await textHistory(b, chat);
      assert.deepEqual(hist, sent);
      const retry = await a.ok('msg.send', { chat, body: 'r2', clientMsgId: 'rs-2' });
      assert.equal(retry.duplicate, true);
      assert.deepEqual(retry.msg, sent[2]);
      const next = await a.ok('msg.send', { chat, body: 'after restart', clientMsgId: 'rs-5' });
      assert.equal(next.msg.seq, 7, 'seq continues where it was');
      assert.equal((await textHistory(b, chat)).length, 6);
      const { chat: meta } = await b.ok('chat.get', { chat });
      assert.equal(meta.lastSeq, 7);
      assert.equal(meta.participantCount, 2);
    });

    test('kill -9 during a stream of sends: every acknowledged message is there exactly once, in order', async (t) => {
      const cs = await connectAll();
      const chat = await sharedChat(cs, 'crash test');
      const acked = new Map(); // clientMsgId -> msg from the ok reply
      const attempted = new Map(); // clientMsgId -> body
      let stopping = false;
      const KILL_AFTER = 150;
      let reachedKillPoint;
      const killPoint = new Promise((r) => (reachedKillPoint = r));

      // Each client keeps a window of sends in flight until the server dies under it.
      const pumps = cs.map(async (c, ci) => {
        const inflight = new Set();
        for (let n = 0; !stopping && c.isOpen; n++) {
          const cid = `k${ci}-${n}`;
          const body = `crash ${ci}/${n}`;
          attempted.set(cid, { body, ci });
          const p = c.request('msg.send', { chat, body, clientMsgId: cid }, { timeout: 20_000 }).then(
            (r) => {
              if (r.ok) acked.set(cid, r.msg);
              if (acked.size >= KILL_AFTER) reachedKillPoint();
            },
            () => {}, // the connection died with the server: not acknowledged
          );
          inflight.add(p);
          p.finally(() => inflight.delete(p));
          if (inflight.size >= 6) await Promise.race(inflight);
        }
        await Promise.all(inflight);
      });

      // Kill once a good number of sends were acknowledged, while the rest are still in flight.
      let timer;
      await Promise.race([
        killPoint,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`only ${acked.size} sends acknowledged in 30 s`)), 30_000);
        }),
      ]).finally(() => clearTimeout(timer));
      const killed = await srv.kill9();
      assert.equal(killed.signal, 'SIGKILL');
      stopping = true;
      await Promise.all(pumps);
      const ackedAtKill = new Map(acked);
      assert.ok(ackedAtKill.size >= KILL_AFTER);

      await srv.start();
      const [reader, ...rest] = await connectAll();
      const hist = await textHistory(reader, chat);
      const seqs = hist.map((m) => m.seq);
      assertConsecutive(seqs, cs.length, 'history after the crash');
      const byCid = new Map();
      for (const m of hist) {
        assert.ok(attempted.has(m.clientMsgId), `unknown message in history: ${JSON.stringify(m)}`);
        assert.ok(!byCid.has(m.clientMsgId), `duplicate of ${m.clientMsgId} in history`);
        byCid.set(m.clientMsgId, m);
        assert.equal(m.body, attempted.get(m.clientMsgId).body);
      }
      for (const [cid, msg] of ackedAtKill) {
        const m = byCid.get(cid);
        assert.ok(m, `acknowledged message ${cid} (seq ${msg.seq}) lost in the crash`);
        assert.deepEqual(m, msg, `acknowledged message ${cid} changed`);
      }
      // Each sender's messages are in the order it sent them.
      for (let ci = 0; ci < cs.length; ci++) {
        const ns = hist.filter((m) => m.clientMsgId.startsWith(`k${ci}-`)).map((m) => Number(m.clientMsgId.split('-')[1]));
        assert.deepEqual(ns, [...ns].sort((x, y) => x - y), `sender ${ci} out of order`);
      }
      const { chat: meta } = await reader.ok('chat.get', { chat });
      assert.equal(meta.lastSeq, cs.length - 1 + hist.length);
      t.diagnostic(
        `attempted ${attempted.size}, acknowledged ${ackedAtKill.size}, in history after restart ${hist.length}`,
      );

      // Retrying every send that got no reply, as a reconnecting client would: the ones that did
      // commit are duplicates, the others are stored now; afterwards each is there exactly once.
      const writers = [reader, ...rest];
      const unacked = [...attempted].filter(([cid]) => !ackedAtKill.has(cid));
      for (const [cid, { body, ci }] of unacked) {
        const r = await writers[ci].ok('msg.send', { chat, body, clientMsgId: cid });
        if (byCid.has(cid)) {
          assert.equal(r.duplicate, true, `${cid} was committed before the crash: must be a duplicate`);
          assert.deepEqual(r.msg, byCid.get(cid));
        } else {
          assert.equal(r.duplicate, false);
        }
      }
      const after = await textHistory(reader, chat);
      assertConsecutive(after.map((m) => m.seq), cs.length, 'history after the retries');
      assert.equal(after.length, attempted.size, 'every attempted message exactly once');
      assert.equal(new Set(after.map((m) => m.clientMsgId)).size, attempted.size);
    });
  });

  describe('graceful shutdown', () => {
    test('SIGTERM closes sockets with 1001, exits 0, and keeps every acknowledged message', async () => {
      const cs = await connectAll();
      const chat = await sharedChat(cs, 'shutdown');
      await Promise.all(cs.map((c) => c.ok('sub', { chat })));
      const acked = new Map();
      const first = await Promise.all(
        Array.from({ length: 20 }, (_, i) => cs[i % cs.length].ok('msg.send', { chat, body: `g${i}`, clientMsgId: `g-${i}` })),
      );
      for (const r of first) acked.set(r.msg.clientMsgId, r.msg);
      // More sends in flight while the signal arrives: those acknowledged must be kept as well.
      const late = Array.from({ length: 20 }, (_, i) =>
        cs[i % cs.length].request('msg.send', { chat, body: `late${i}`, clientMsgId: `late-${i}` }, { timeout: 20_000 }).then(
          (r) => r.ok && acked.set(r.msg.clientMsgId, r.msg),
          () => {},
        ),
      );
      const closes = Promise.all(cs.map((c) => c.waitClose({ timeout: 20_000 })));
      const exit = await srv.stop();
      await Promise.all(late);
      const infos = await closes;
      assert.deepEqual(infos.map((i) => i.code), cs.map(() => 1001), 'close code of every socket');
      assert.equal(exit.code, 0, `exit code after SIGTERM (signal ${exit.signal})`);

      await srv.start();
      const [reader] = await connectAll();
      const hist = await textHistory(reader, chat);
      assertConsecutive(hist.map((m) => m.seq), cs.length);
      const byCid = new Map(hist.map((m) => [m.clientMsgId, m]));
      assert.equal(byCid.size, hist.length, 'no duplicates');
      for (const [cid, msg] of acked) assert.deepEqual(byCid.get(cid), msg, `acknowledged ${cid} lost or changed`);
    });
  });
});
