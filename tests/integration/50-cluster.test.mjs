// Three Parley nodes over one store and one Redis (PARLEY_BUS): clients on different nodes see
// each other's messages in order, with no gap and no duplicate; a node killed with SIGKILL under
// load loses no acknowledged message and its clients resume on another node; a Redis restart in
// the middle of a stream loses nothing.
//
// Redis and the store: lib/cluster.mjs (a throwaway Redis from scripts/redis.sh; PostgreSQL when
// PARLEY_TEST_STORE names one, as `make integration-pg` and `make test` do, else one SQLite file
// shared by the three processes).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { describe, test } from 'node:test';
import { assertConsecutive, connect, fullHistory } from './lib/client.mjs';
import { REDIS_PORT, useCluster, userOn } from './lib/cluster.mjs';
import { ROOT } from './lib/server.mjs';

describe('three nodes on one bus', () => {
  const nodes = useCluster(3);

  test('users on different nodes chat: every message once, in order, everywhere', async () => {
    const [a, b, c] = await Promise.all([
      userOn(nodes[0], 'ana'),
      userOn(nodes[1], 'bob'),
      userOn(nodes[2], 'cy'),
    ]);
    const slug = (await a.c.ok('chat.create', { title: 'Across', isPublic: true })).chat.slug;
    await b.c.ok('chat.join', { chat: slug });
    await c.c.ok('chat.join', { chat: slug });
    for (const u of [a, b, c]) await u.c.ok('sub', { chat: slug, since: 0 });

    // All three send at once, each its own sequence of messages.
    const PER = 25;
    await Promise.all(
      [a, b, c].map(async (u, k) => {
        for (let i = 0; i < PER; i++) {
          await u.c.ok('msg.send', { chat: slug, body: `${k}:${i}`, clientMsgId: `m${k}-${i}` });
        }
      }),
    );
    const total = 3 * PER;
    const base = 2; // the two joins' notices (issue 17), replayed in the sub reply
    for (const u of [a, b, c]) {
      await u.c.waitSeq(slug, base + total);
      const seqs = u.c.msgs(slug).map((m) => m.seq);
      assertConsecutive(seqs, base + 1, `msg events on ${u.user.username}'s node`);
      // Each sender's own messages keep their order.
      for (let k = 0; k < 3; k++) {
        const mine = u.c.msgs(slug).filter((m) => m.body.startsWith(`${k}:`)).map((m) => m.body);
        assert.deepEqual(mine, Array.from({ length: PER }, (_, i) => `${k}:${i}`));
      }
    }
    for (const u of [a, b, c]) await u.c.close();
  });

  test('a Redis restart in the middle of a stream loses nothing', async () => {
    const w = await userOn(nodes[2], 'writer');
    const r = await userOn(nodes[0], 'reader');
    const slug = (await w.c.ok('chat.create', { title: 'Restart', isPublic: true })).chat.slug;
    await r.c.ok('chat.join', { chat: slug });
    await r.c.ok('sub', { chat: slug, since: 0 });
    let sent = 0;
    const send = async (n) => {
      for (let i = 0; i < n; i++) {
        sent++;
        await w.c.ok('msg.send', { chat: slug, body: `b${sent}`, clientMsgId: `r${sent}` });
      }
    };
    const base = 1; // the reader's "joined" notice (issue 17), replayed in the sub reply
    await send(20);
    await r.c.waitSeq(slug, base + 20);
    // The restart runs in a child process while the writer keeps sending through it.
    const restarting = promisify(execFile)(path.join(ROOT, 'scripts/redis.sh'), ['restart'], {
      env: { ...process.env, PARLEY_REDIS_PORT: REDIS_PORT },
    });
    await Promise.all([send(60), restarting]);
    await send(20);
    await r.c.waitSeq(slug, base + sent, { timeout: 20000 }).catch((err) => {
      throw new Error(`${err.message}; the reader has ${JSON.stringify(r.c.msgs(slug).map((m) => m.seq))}`);
    });
    assertConsecutive(r.c.msgs(slug).map((m) => m.seq), base + 1, 'the reader across the restart');
    await w.c.close();
    await r.c.close();
  });

  test('kill -9 a node under load: its clients resume on another node, nothing lost', async () => {
    const victim = nodes[1];
    const w = await userOn(victim, 'doomed');
    const r = await userOn(nodes[2], 'watcher');
    const slug = (await w.c.ok('chat.create', { title: 'Crash', isPublic: true })).chat.slug;
    await r.c.ok('chat.join', { chat: slug });
    await r.c.ok('sub', { chat: slug, since: 0 });

    // The writer sends until its node dies; every acknowledged seq is recorded.
    const acked = new Map(); // clientMsgId -> seq
    let next = 1;
    let unacked = null;
    const writing = (async () => {
      for (;;) {
        const id = `k${next}`;
        unacked = id;
        let reply;
        try {
          reply = await w.c.request('msg.send', { chat: slug, body: `body ${next}`, clientMsgId: id });
        } catch {
          return; // the node is gone
        }
        assert.equal(reply.ok, true, JSON.stringify(reply));
        acked.set(id, reply.msg.seq);
        unacked = null;
        next++;
      }
    })();
    await r.c.waitSeq(slug, 31, { timeout: 20000 }); // after the watcher's "joined" notice
    await victim.kill9();
    await writing;
    assert.ok(acked.size >= 30, `${acked.size} acknowledged before the kill`);

    // The writer resumes on another node: re-subscribes from its last acked seq and retries the
    // message whose reply it never got, with the same clientMsgId.
    const lastAcked = Math.max(...acked.values());
    const w2 = await connect(nodes[0], { token: w.token });
    const resub = await w2.ok('sub', { chat: slug, since: lastAcked });
    assert.equal(resub.reset, false);
    if (unacked) {
      const retry = await w2.ok('msg.send', { chat: slug, body: `body ${next}`, clientMsgId: unacked });
      acked.set(unacked, retry.msg.seq);
    }
    const last = Math.max(...acked.values());
    const history = await fullHistory(w2, slug);
    assertConsecutive(history.map((m) => m.seq), 1, 'history after the crash');
    const ids = history.map((m) => m.clientMsgId);
    assert.equal(new Set(ids).size, ids.length, 'no message stored twice');
    for (const [id, seq] of acked) {
      assert.equal(history.find((m) => m.clientMsgId === id)?.seq, seq, `acknowledged ${id} present`);
    }
    // The watcher on a surviving node saw every message, once, in order.
    await r.c.waitSeq(slug, last, { timeout: 20000 });
    assertConsecutive(r.c.msgs(slug).map((m) => m.seq), 2, 'the watcher on a surviving node');
    await w2.close();
    await r.c.close();
    await victim.start(); // back for the suite's teardown
  });
});
