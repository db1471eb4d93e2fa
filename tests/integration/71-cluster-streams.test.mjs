// 71 - Streamed messages across nodes (issue 19): the msg.delta of an append committed on one
// node reaches subscribers on the others, after the stream's `msg`, in offset order; a viewer
// who subscribes mid-stream on another node, or moves between nodes with drop-and-resume rounds,
// ends with the author's bytes; a node's idle sweep does not interrupt a stream whose author is
// connected to another node, and does interrupt one whose author is gone everywhere. Runs on
// SQLite (one shared file) and on PostgreSQL (make integration-pg).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { connect } from './lib/client.mjs';
import { useCluster, userOn } from './lib/cluster.mjs';
import { appendAll, bytes, deltasOf, Viewer } from './lib/streams.mjs';

describe('streamed messages across three nodes', () => {
  const env = { PARLEY_STREAM_IDLE_MS: '800', PARLEY_PRESENCE_GRACE_MS: '300' };
  const nodes = useCluster(3, { nodeEnv: [env, env, env] });

  test('deltas cross nodes in order; mid-stream and moving viewers end with the author\'s bytes', async () => {
    const a = await userOn(nodes[0], 'sann');
    const b = await userOn(nodes[1], 'sben');
    const c = await userOn(nodes[2], 'scat');
    const chat = (await a.c.ok('chat.create', { title: 'Streams', isPublic: true })).chat.slug;
    await b.c.ok('chat.join', { chat });
    await c.c.ok('chat.join', { chat });
    const sub = await b.c.ok('sub', { chat });
    const from = b.c.events.length;
    const seq = (await a.c.ok('msg.stream.start', { chat })).msg.seq;
    assert.ok(seq > sub.lastSeq);
    // The first appends, one at a time: ben on node 1 gets each delta, after the stream's msg.
    await appendAll(a.c, chat, seq, ['Hé', 'llo ', 'nodes']);
    await b.c.waitFor((e) => e.ev === 'msg.delta' && e.seq === seq && e.offset === bytes('Hello '.replace('e', 'é')), {
      from,
    });
    const startIdx = b.c.events.findIndex((e, i) => i >= from && e.ev === 'msg' && e.msg.seq === seq);
    const firstDelta = b.c.events.findIndex((e, i) => i >= from && e.ev === 'msg.delta' && e.seq === seq);
    assert.ok(startIdx >= 0 && startIdx < firstDelta, 'the stream\'s msg comes before its deltas');
    assert.deepEqual(
      deltasOf(b.c, chat, seq, from).map((d) => d.offset),
      [0, 3, 7],
    );

    // Then without pause, while cat subscribes on node 2 and a third socket of ben moves between
    // nodes 1 and 2 with drop-and-resume rounds.
    const sent = ['Hé', 'llo ', 'nodes'];
    let stop = false;
    const pump = (async () => {
      let offset = bytes(sent.join(''));
      for (let i = 0; !stop && i < 3000; i++) {
        const d = ` ${i}✓`;
        offset = (await a.c.ok('msg.stream.append', { chat, seq, delta: d, offset })).length;
        sent.push(d);
      }
      return offset;
    })();
    const cFrom = c.c.events.length;
    const snap = (await c.c.ok('sub', { chat })).streams.find((m) => m.seq === seq);
    assert.ok(snap && snap.streaming, 'the open stream is in the snapshot on node 2');
    const cv = new Viewer(seq);
    cv.setFrom(snap);

    const mv = new Viewer(seq);
    let lastSeq = 0;
    for (let round = 0; round < 6; round++) {
      const m = await connect(nodes[1 + (round % 2)], { token: b.token });
      const mFrom = m.events.length;
      const reply = await m.ok('sub', { chat, since: lastSeq });
      lastSeq = reply.lastSeq;
      mv.setFrom(reply.streams.find((x) => x.seq === seq));
      const want = mv.buf.length + 30;
      await m.waitFor((e) => e.ev === 'msg.delta' && e.seq === seq && e.offset >= want, { from: mFrom });
      mv.consume(m, chat, mFrom);
      await m.terminate();
    }
    stop = true;
    const total = await pump;
    const last = await connect(nodes[2], { token: b.token });
    const lFrom = last.events.length;
    mv.setFrom((await last.ok('sub', { chat, since: lastSeq })).streams.find((x) => x.seq === seq));
    await a.c.ok('msg.stream.end', { chat, seq });
    const text = sent.join('');
    assert.equal(bytes(text), total);
    for (const [client, v, f] of [
      [b.c, new Viewer(seq), from],
      [c.c, cv, cFrom],
      [last, mv, lFrom],
    ]) {
      await client.waitFor((e) => e.ev === 'msg' && e.msg.kind === 'stream.end' && e.msg.ref === seq, {
        from: f,
        timeout: 15_000,
      });
      v.consume(client, chat, f);
      assert.equal(v.text, text, 'a viewer\'s text differs from the author\'s');
      assert.equal(v.ended.body, text);
    }
    for (const client of [a.c, b.c, c.c, last]) await client.close();
  });

  test('the sweep spares an author connected to another node and ends one gone everywhere', async () => {
    const a = await userOn(nodes[0], 'wann');
    const b = await userOn(nodes[1], 'wben');
    const c = await userOn(nodes[2], 'wcat');
    const chat = (await a.c.ok('chat.create', { title: 'Sweep', isPublic: true })).chat.slug;
    await b.c.ok('chat.join', { chat });
    await c.c.ok('chat.join', { chat });
    await b.c.ok('sub', { chat });
    const from = b.c.events.length;
    // ann (node 0) stays connected and silent; cat (node 2) leaves after her last append.
    const kept = (await a.c.ok('msg.stream.start', { chat })).msg.seq;
    await appendAll(a.c, chat, kept, ['waiting']);
    const gone = (await c.c.ok('msg.stream.start', { chat })).msg.seq;
    await appendAll(c.c, chat, gone, ['bye']);
    await c.c.close();
    const ended = await b.c.waitFor((e) => e.ev === 'msg' && e.msg.kind === 'stream.end' && e.msg.ref === gone, {
      from,
      timeout: 15_000,
    });
    assert.equal(ended.msg.state, 'interrupted');
    assert.equal(ended.msg.body, 'bye');
    // Every node swept meanwhile (kept's last append is older): ann's stream is still open.
    const hist = (await b.c.ok('msg.history', { chat })).msgs;
    assert.equal(hist.find((m) => m.seq === kept).streaming, true);
    assert.equal(hist.filter((m) => m.kind === 'stream.end').length, 1);
    await a.c.ok('msg.stream.end', { chat, seq: kept });
    for (const client of [a.c, b.c]) await client.close();
  });
});
