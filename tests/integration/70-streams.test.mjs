// 70 - Streamed messages (issue 19): msg.stream.start / append / end, msg.delta events after
// durability, offsets that make retries idempotent, the stream.end entry, folding into
// msg.history / sub / chat.list, the sub `streams` snapshot with no gap or overlap at its seam
// (also under drop-and-resume rounds), acknowledged appends surviving kill -9, and the sweep
// that ends an abandoned stream as interrupted. Runs on SQLite and on PostgreSQL
// (make integration-pg).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { barrier, connect, makeChat, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const IDLE_MS = 700;

const bytes = (s) => Buffer.byteLength(s, 'utf8');

// A viewer's copy of one stream's text, built only from what the server sent: the snapshot (a
// folded message) then msg.delta events, applying only the bytes beyond what it has. A delta
// that starts beyond its length is a gap, which must never happen.
class Viewer {
  constructor(seq) {
    this.seq = seq;
    this.buf = Buffer.alloc(0);
    this.ended = null;
  }
  setFrom(msg) {
    const b = Buffer.from(msg.body, 'utf8');
    if (b.length > this.buf.length) this.buf = b;
  }
  apply(ev) {
    const d = Buffer.from(ev.delta, 'utf8');
    assert.ok(ev.offset <= this.buf.length, `gap: delta at ${ev.offset}, viewer has ${this.buf.length}`);
    if (ev.offset + d.length > this.buf.length) {
      // The overlap must be the same bytes the viewer already has.
      assert.deepEqual(d.subarray(0, this.buf.length - ev.offset), this.buf.subarray(ev.offset));
      this.buf = Buffer.concat([this.buf, d.subarray(this.buf.length - ev.offset)]);
    } else {
      assert.deepEqual(d, this.buf.subarray(ev.offset, ev.offset + d.length), 'a repeated delta differs');
    }
  }
  // Consumes c.events from index `from` for this stream; returns the next index.
  consume(c, chat, from) {
    for (; from < c.events.length; from++) {
      const e = c.events[from];
      if (e.ev === 'msg.delta' && e.chat === chat && e.seq === this.seq) this.apply(e);
      if (e.ev === 'msg' && e.chat === chat && e.msg.kind === 'stream.end' && e.msg.ref === this.seq) {
        this.ended = e.msg;
      }
    }
    return from;
  }
  get text() {
    return this.buf.toString('utf8');
  }
}

// The author's side: appends with offsets, keeps the exact bytes it had acknowledged.
async function appendAll(author, chat, seq, parts, start = 0) {
  let offset = start;
  for (const p of parts) {
    const r = await author.ok('msg.stream.append', { chat, seq, delta: p, offset });
    offset += bytes(p);
    assert.equal(r.length, offset);
    assert.equal(r.seq, seq);
  }
  return offset;
}

const deltasOf = (c, chat, seq, from = 0) =>
  c.events.slice(from).filter((e) => e.ev === 'msg.delta' && e.chat === chat && e.seq === seq);

describe('streamed messages', () => {
  const srv = useServer({ env: { PARLEY_STREAM_IDLE_MS: String(IDLE_MS) } });
  let ana, bob, cai;
  let users;
  const open = [];

  before(async () => {
    users = await signupMany(srv, ['ana', 'bob', 'cai']);
    [ana, bob, cai] = await Promise.all(users.map((u) => connect(srv, { token: u.token })));
    open.push(ana, bob, cai);
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  test('start, append, end: replies, msg and msg.delta events, the stream.end entry', async () => {
    const chat = await makeChat(ana, { title: 'stream basics', join: [bob] });
    await bob.ok('sub', { chat });
    const from = bob.events.length;
    const { msg, duplicate } = await ana.ok('msg.stream.start', { chat, clientMsgId: 's-1' });
    assert.equal(duplicate, false);
    assert.equal(msg.kind, 'text');
    assert.equal(msg.body, '');
    assert.equal(msg.streaming, true);
    assert.deepEqual(msg.stream, { state: 'streaming', length: 0 });
    const seq = msg.seq;
    const started = await bob.waitFor((e) => e.ev === 'msg' && e.chat === chat && e.msg.seq === seq, { from });
    assert.equal(started.msg.streaming, true);
    // A retried start (same clientMsgId) is the same stream.
    const again = await ana.ok('msg.stream.start', { chat, clientMsgId: 's-1' });
    assert.equal(again.duplicate, true);
    assert.equal(again.msg.seq, seq);

    const parts = ['Hello', ', wörld', ' ✓ done'];
    const total = await appendAll(ana, chat, seq, parts);
    assert.equal(total, bytes(parts.join('')));
    const v = new Viewer(seq);
    await bob.waitFor((e) => e.ev === 'msg.delta' && e.seq === seq && e.offset === total - bytes(parts[2]), { from });
    const ds = deltasOf(bob, chat, seq, from);
    assert.deepEqual(
      ds.map((d) => [d.offset, d.delta]),
      [
        [0, parts[0]],
        [bytes(parts[0]), parts[1]],
        [bytes(parts[0] + parts[1]), parts[2]],
      ],
    );
    v.consume(bob, chat, from);
    assert.equal(v.text, parts.join(''));

    // While it streams: history, chat.list and a plain sub show the text so far.
    await cai.fail('msg.history', { chat }, 'forbidden'); // a public chat cai is not in
    const h = (await bob.ok('msg.history', { chat })).msgs.find((m) => m.seq === seq);
    assert.equal(h.body, parts.join(''));
    assert.equal(h.streaming, true);
    assert.deepEqual(h.stream, { state: 'streaming', length: total });
    const listed = (await bob.ok('chat.list')).chats.find((c) => c.slug === chat);
    assert.equal(listed.lastMessage.seq, seq);
    assert.equal(listed.lastMessage.streaming, true);
    assert.equal(listed.lastMessage.body, parts.join(''));

    const ended = await ana.ok('msg.stream.end', { chat, seq });
    assert.equal(ended.msg.kind, 'stream.end');
    assert.equal(ended.msg.ref, seq);
    assert.equal(ended.msg.body, parts.join(''));
    assert.equal(ended.msg.state, 'done');
    assert.equal(ended.msg.seq, seq + 1);
    const endEv = await bob.waitFor((e) => e.ev === 'msg' && e.msg.kind === 'stream.end' && e.msg.ref === seq, { from });
    assert.deepEqual(endEv.msg, ended.msg);
    // Every delta came before the end entry, and each once.
    const endIdx = bob.events.indexOf(endEv);
    assert.equal(deltasOf(bob, chat, seq, from).length, 3);
    assert.ok(bob.events.slice(endIdx).every((e) => e.ev !== 'msg.delta'));

    // Folded after the end.
    const after = await bob.ok('msg.history', { chat });
    const folded = after.msgs.find((m) => m.seq === seq);
    assert.equal(folded.streaming, false);
    assert.deepEqual(folded.stream, { state: 'done', length: total });
    assert.equal(folded.body, parts.join(''));
    assert.equal(after.msgs.find((m) => m.seq === seq + 1).kind, 'stream.end');
    // A plain message has stream null.
    const plain = await ana.ok('msg.send', { chat, body: 'plain' });
    assert.equal(plain.msg.stream, null);
    assert.equal(plain.msg.streaming, false);
    // The end entry does not count as unread (bob read nothing: 2 text messages unread).
    const l2 = (await bob.ok('chat.list')).chats.find((c) => c.slug === chat);
    assert.equal(l2.unread, 2);
  });

  test('offsets: retries are idempotent, anything else is conflict with error.length', async () => {
    const chat = await makeChat(ana, { title: 'offsets', join: [bob] });
    await bob.ok('sub', { chat });
    const { msg } = await ana.ok('msg.stream.start', { chat });
    const seq = msg.seq;
    const from = bob.events.length;
    await appendAll(ana, chat, seq, ['Hello', ' world']); // 11 bytes
    // The same append again, or a part of what is stored at its place: the current length.
    let r = await ana.ok('msg.stream.append', { chat, seq, delta: ' world', offset: 5 });
    assert.equal(r.length, 11);
    r = await ana.ok('msg.stream.append', { chat, seq, delta: 'Hel', offset: 0 });
    assert.equal(r.length, 11);
    // Different bytes, a gap, an overlap past the end: conflict, with the length.
    let e = await ana.fail('msg.stream.append', { chat, seq, delta: 'Jello', offset: 0 }, 'conflict');
    assert.equal(e.length, 11);
    e = await ana.fail('msg.stream.append', { chat, seq, delta: 'x', offset: 12 }, 'conflict');
    assert.equal(e.length, 11);
    e = await ana.fail('msg.stream.append', { chat, seq, delta: 'world!', offset: 6 }, 'conflict');
    assert.equal(e.length, 11);
    // Only the author; nobody outside; no such stream; a plain message is no stream.
    await bob.fail('msg.stream.append', { chat, seq, delta: 'x', offset: 11 }, 'forbidden');
    await bob.fail('msg.stream.end', { chat, seq }, 'forbidden');
    await cai.fail('msg.stream.append', { chat, seq, delta: 'x', offset: 11 }, 'forbidden');
    await ana.fail('msg.stream.append', { chat, seq: 999, delta: 'x', offset: 0 }, 'not_found');
    const plain = await ana.ok('msg.send', { chat, body: 'plain' });
    await ana.fail('msg.stream.append', { chat, seq: plain.msg.seq, delta: 'x', offset: 0 }, 'not_found');
    await ana.fail('msg.stream.end', { chat, seq: plain.msg.seq }, 'not_found');
    // Malformed: empty delta, negative offset, unknown state.
    await ana.fail('msg.stream.append', { chat, seq, delta: '', offset: 11 }, 'bad_request');
    await ana.fail('msg.stream.append', { chat, seq, delta: 'x', offset: -1 }, 'bad_request');
    await ana.fail('msg.stream.end', { chat, seq, state: 'interrupted' }, 'bad_request');
    // A stream cannot be edited while it streams.
    await ana.fail('msg.edit', { chat, seq, body: 'rewritten' }, 'conflict');
    r = await ana.ok('msg.stream.append', { chat, seq, delta: '!', offset: 11 });
    assert.equal(r.length, 12);
    const ended = await ana.ok('msg.stream.end', { chat, seq, state: 'error' });
    assert.equal(ended.msg.state, 'error');
    assert.equal(ended.msg.body, 'Hello world!');
    // After the end: conflict, for appends (error.length still says the length) and ends.
    e = await ana.fail('msg.stream.append', { chat, seq, delta: '?', offset: 12 }, 'conflict');
    assert.equal(e.length, 12);
    await ana.fail('msg.stream.end', { chat, seq }, 'conflict');
    // Retries sent no event: exactly the three appends that stored something.
    await barrier(ana, bob);
    assert.deepEqual(
      deltasOf(bob, chat, seq, from).map((d) => d.offset),
      [0, 5, 11],
    );
  });

  test('sizes: a delta up to 16384 bytes, a streamed body up to 262144, msg.send keeps its limit', async () => {
    const chat = await makeChat(ana, { title: 'sizes' });
    const { msg } = await ana.ok('msg.stream.start', { chat });
    const seq = msg.seq;
    await ana.fail('msg.stream.append', { chat, seq, delta: 'x'.repeat(16385), offset: 0 }, 'too_large');
    const chunk = 'abcdefgh'.repeat(2048); // 16384 bytes
    let offset = 0;
    for (let i = 0; i < 16; i++) {
      const r = await ana.ok('msg.stream.append', { chat, seq, delta: chunk, offset });
      offset = r.length;
    }
    assert.equal(offset, 262144);
    await ana.fail('msg.stream.append', { chat, seq, delta: 'x', offset }, 'too_large');
    const ended = await ana.ok('msg.stream.end', { chat, seq });
    assert.equal(bytes(ended.msg.body), 262144);
    const h = (await ana.ok('msg.history', { chat })).msgs.find((m) => m.seq === seq);
    assert.equal(h.body, chunk.repeat(16));
    await ana.fail('msg.send', { chat, body: 'y'.repeat(16385) }, 'too_large');
  });

  test('starting a stream clears the author\'s typing', async () => {
    const chat = await makeChat(ana, { title: 'typing', join: [bob] });
    await bob.ok('sub', { chat });
    await ana.ok('sub', { chat });
    let from = bob.events.length;
    await ana.ok('typing', { chat, on: true });
    await bob.waitFor(
      (e) => e.ev === 'typing' && e.chat === chat && e.users.some((u) => u.username === ana.user.username),
      { from },
    );
    from = bob.events.length;
    await ana.ok('msg.stream.start', { chat });
    await bob.waitFor((e) => e.ev === 'typing' && e.chat === chat && e.users.length === 0, { from });
  });

  test('a viewer who subscribes mid-stream gets the text so far, then every delta: no gap, no overlap', async () => {
    const chat = await makeChat(ana, { title: 'mid-stream', join: [bob, cai] });
    const { msg } = await ana.ok('msg.stream.start', { chat });
    const seq = msg.seq;
    const sent = [];
    let stop = false;
    // The author appends without pause while viewers subscribe at different moments.
    const pump = (async () => {
      let offset = 0;
      for (let i = 0; !stop && i < 400; i++) {
        const d = `[${i} ✓ çà]`;
        const r = await ana.ok('msg.stream.append', { chat, seq, delta: d, offset });
        offset = r.length;
        sent.push(d);
      }
      return offset;
    })();
    const viewers = [];
    for (let k = 0; k < 4; k++) {
      const c = await connect(srv, { token: users[1 + (k % 2)].token });
      open.push(c);
      const from = c.events.length;
      const reply = await c.ok('sub', { chat, since: k }); // since does not hide open streams
      const snap = reply.streams.find((m) => m.seq === seq);
      assert.ok(snap, `sub ${k}: the open stream is in streams`);
      assert.equal(snap.streaming, true);
      assert.equal(snap.stream.state, 'streaming');
      assert.equal(snap.stream.length, bytes(snap.body));
      const v = new Viewer(seq);
      v.setFrom(snap);
      viewers.push({ c, v, from });
      await new Promise((r) => setImmediate(r));
      await ana.ok('ping');
    }
    stop = true;
    const total = await pump;
    await ana.ok('msg.stream.end', { chat, seq });
    const text = sent.join('');
    assert.equal(bytes(text), total);
    for (const { c, v, from } of viewers) {
      await c.waitFor((e) => e.ev === 'msg' && e.msg.kind === 'stream.end' && e.msg.ref === seq, { from });
      v.consume(c, chat, from);
      assert.equal(v.text, text, 'a viewer\'s text differs from the author\'s');
      assert.equal(v.ended.body, text);
      await c.close();
    }
  });

  test('drop-and-resume rounds under a live stream: every viewer ends with the author\'s bytes', async () => {
    const chat = await makeChat(ana, { title: 'resume rounds', join: [bob, cai] });
    const { msg } = await ana.ok('msg.stream.start', { chat });
    const seq = msg.seq;
    const sent = [];
    let stop = false;
    const pump = (async () => {
      let offset = 0;
      for (let i = 0; !stop && i < 2000; i++) {
        const d = `<${i}:${'é'.repeat(i % 5)}>`;
        const r = await ana.ok('msg.stream.append', { chat, seq, delta: d, offset });
        offset = r.length;
        sent.push(d);
      }
      return offset;
    })();
    const v = new Viewer(seq);
    let lastSeq = 0;
    for (let round = 0; round < 6; round++) {
      const c = await connect(srv, { token: users[1].token });
      const from = c.events.length;
      const reply = await c.ok('sub', { chat, since: lastSeq });
      lastSeq = reply.lastSeq;
      const snap = reply.streams.find((m) => m.seq === seq);
      assert.ok(snap, `round ${round}: stream in the snapshot`);
      v.setFrom(snap);
      // Read a few live deltas, then drop without a close handshake.
      const want = v.buf.length + 40;
      await c.waitFor((e) => e.ev === 'msg.delta' && e.seq === seq && e.offset >= want, { from });
      v.consume(c, chat, from);
      await c.terminate();
    }
    stop = true;
    const total = await pump;
    // The last viewer stays to the end.
    const c = await connect(srv, { token: users[2].token });
    open.push(c);
    const from = c.events.length;
    const reply = await c.ok('sub', { chat, since: lastSeq });
    v.setFrom(reply.streams.find((m) => m.seq === seq) ?? { body: '' });
    await ana.ok('msg.stream.end', { chat, seq });
    await c.waitFor((e) => e.ev === 'msg' && e.msg.kind === 'stream.end' && e.msg.ref === seq, { from });
    v.consume(c, chat, from);
    const text = sent.join('');
    assert.equal(bytes(text), total);
    assert.equal(v.text, text);
    assert.equal(v.ended.body, text);
  });

  test('the author resumes after a drop by offset; an abandoned stream ends as interrupted', async () => {
    const chat = await makeChat(ana, { title: 'sweep', join: [bob] });
    await bob.ok('sub', { chat });
    const from = bob.events.length;
    // A stream whose author stays connected but idle is never swept.
    const kept = (await bob.ok('msg.stream.start', { chat })).msg.seq;
    await appendAll(bob, chat, kept, ['still here']);
    // The author of the other drops, comes back, continues from the stored length, and leaves.
    const a2 = await connect(srv, { token: users[0].token });
    const seq = (await a2.ok('msg.stream.start', { chat })).msg.seq;
    await appendAll(a2, chat, seq, ['first half, ']);
    await a2.terminate();
    const a3 = await connect(srv, { token: users[0].token });
    const h = (await a3.ok('msg.history', { chat })).msgs.find((m) => m.seq === seq);
    assert.equal(h.streaming, true);
    await appendAll(a3, chat, seq, ['second half'], h.stream.length);
    // ana's first socket is still connected: close every one of ana's sockets.
    await a3.close();
    await ana.close();
    const ended = await bob.waitFor(
      (e) => e.ev === 'msg' && e.msg.kind === 'stream.end' && e.msg.ref === seq,
      { from, timeout: 10_000 },
    );
    assert.equal(ended.msg.state, 'interrupted');
    assert.equal(ended.msg.body, 'first half, second half');
    assert.equal(ended.msg.author.username, a3.user.username);
    // The connected author's stream, idle for longer, is still open.
    const hist = (await bob.ok('msg.history', { chat })).msgs;
    assert.equal(hist.find((m) => m.seq === kept).streaming, true);
    assert.deepEqual(hist.find((m) => m.seq === seq).stream, { state: 'interrupted', length: 23 });
    assert.ok(!hist.some((m) => m.kind === 'stream.end' && m.ref === kept));
    ana = await connect(srv, { token: users[0].token });
    open.push(ana);
    await bob.ok('msg.stream.end', { chat, seq: kept });
  });
});

describe('streamed messages survive kill -9', () => {
  const srv = useServer();

  test('every acknowledged append is there after a crash, and the stream goes on', async () => {
    const [u, w] = await signupMany(srv, ['kana', 'kbob']);
    let a = await connect(srv, { token: u.token });
    let b = await connect(srv, { token: w.token });
    const chat = await makeChat(a, { title: 'crash stream', join: [b] });
    const seq = (await a.ok('msg.stream.start', { chat, clientMsgId: 'crash-1' })).msg.seq;
    const parts = [];
    let offset = 0;
    for (let i = 0; i < 200; i++) {
      const d = `line ${i} ✓\n`;
      offset = (await a.ok('msg.stream.append', { chat, seq, delta: d, offset })).length;
      parts.push(d);
    }
    // One more in flight when the process dies: stored or not, never half.
    const last = a.request('msg.stream.append', { chat, seq, delta: 'tail', offset }).catch(() => null);
    const killed = await srv.kill9();
    assert.equal(killed.signal, 'SIGKILL');
    await last;
    await srv.start();
    a = await connect(srv, { token: u.token });
    b = await connect(srv, { token: w.token });
    const h = (await b.ok('msg.history', { chat })).msgs.find((m) => m.seq === seq);
    const text = parts.join('');
    assert.ok(h.body === text || h.body === text + 'tail', `after the crash: ${h.body.slice(-40)}`);
    assert.equal(h.stream.length, bytes(h.body));
    assert.equal(h.streaming, true);
    // The author goes on from the stored length (a retry of 'tail' is idempotent).
    const r = await a.ok('msg.stream.append', { chat, seq, delta: 'tail', offset });
    assert.equal(r.length, offset + 4);
    const again = await a.ok('msg.stream.start', { chat, clientMsgId: 'crash-1' });
    assert.equal(again.duplicate, true);
    assert.equal(again.msg.body, text + 'tail');
    const ended = await a.ok('msg.stream.end', { chat, seq });
    assert.equal(ended.msg.body, text + 'tail');
    await a.close();
    await b.close();
  });
});

describe('streamed messages count in the send rate limit', () => {
  const srv = useServer({ env: { PARLEY_RATE_LIMITS: '1', PARLEY_SEND_RATE: '0.1', PARLEY_SEND_BURST: '3' } });

  test('a start takes a send token', async () => {
    const [u] = await signupMany(srv, ['rana']);
    const a = await connect(srv, { token: u.token });
    const chat = await makeChat(a, { title: 'rate' });
    await a.ok('msg.send', { chat, body: 'one' });
    await a.ok('msg.stream.start', { chat });
    await a.ok('msg.stream.start', { chat });
    const e = await a.fail('msg.stream.start', { chat }, 'rate_limited');
    assert.ok(e.retryAfter > 0);
    await a.fail('msg.send', { chat, body: 'four' }, 'rate_limited');
    await a.close();
  });
});
