// Issue 19, client side: a streamed message folded from deltas by byte offset (duplicates and
// overlaps add nothing twice, a gap is reported and filled by a resync), the stream.end entry, the
// `sub` reply's `streams` snapshot, and the StreamWriter's retries across a reconnect, played
// against the fake server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyBatch,
  applyDelta,
  applyEntry,
  applyStreams,
  emptyTimeline,
  StreamWriter,
  utf8Length,
  type Msg,
  type MsgDeltaEvent,
  type Timeline,
  type User,
} from '../../src/index.js';
import { advanceToReconnect, BEN, FakeWebSocket, flush, makeClient, serveConnection, subResult, type SentFrame } from '../helpers/fake.js';

const bot: User = { id: 9, username: 'helper', displayName: 'Helper', bot: true };

function streamMsg(seq: number, body = '', streaming = true): Msg {
  return {
    seq,
    chat: 'room',
    author: bot,
    body,
    clientMsgId: null,
    createdAt: 1000 + seq,
    kind: 'text',
    streaming,
    stream: { state: 'streaming', length: utf8Length(body) },
  };
}

function endEntry(seq: number, ref: number, body: string, state: 'done' | 'error' | 'interrupted' = 'done'): Msg {
  return { seq, chat: 'room', author: bot, body, clientMsgId: null, createdAt: 1000 + seq, kind: 'stream.end', ref, state };
}

const delta = (seq: number, offset: number, text: string): MsgDeltaEvent => ({ chat: 'room', seq, offset, delta: text });

function body(t: Timeline, seq: number): string {
  return t.items.find((m) => m.seq === seq)!.body;
}

describe('streamed messages in the timeline', () => {
  it('deltas append by byte offset; repeats and overlaps add nothing twice (multi-byte text)', () => {
    let t = applyEntry(emptyTimeline(), streamMsg(1));
    const parts = ['Héllo', ' wörld ', '🙂', '!'];
    let offset = 0;
    const deltas: MsgDeltaEvent[] = [];
    for (const p of parts) {
      deltas.push(delta(1, offset, p));
      offset += utf8Length(p);
    }
    for (const d of deltas) {
      const r = applyDelta(t, d);
      assert.equal(r.gap, false);
      assert.equal(r.applied, true);
      t = r.timeline;
      // the same delta again: nothing changes
      const again = applyDelta(t, d);
      assert.equal(again.applied, false);
      assert.equal(again.timeline, t);
    }
    assert.equal(body(t, 1), 'Héllo wörld 🙂!');
    assert.equal(t.items[0]!.stream!.length, utf8Length('Héllo wörld 🙂!'));
    // A delta that overlaps what is there (a retry that also carries more) appends only the tail.
    const full = 'Héllo wörld 🙂!';
    const r = applyDelta(t, delta(1, utf8Length('Héllo wörld '), '🙂! Bye'));
    assert.equal(r.applied, true);
    assert.equal(body(r.timeline, 1), `${full} Bye`);
    assert.equal(r.timeline.items[0]!.asOf, 1, 'deltas are not seqs: asOf stays');
  });

  it('a delta beyond the current length is a gap: nothing applied, gap reported', () => {
    let t = applyEntry(emptyTimeline(), streamMsg(1, 'abc'));
    const r = applyDelta(t, delta(1, 5, 'xyz'));
    assert.equal(r.gap, true);
    assert.equal(r.applied, false);
    assert.equal(body(r.timeline, 1), 'abc');
    // The resync (a sub reply's streams) brings the text so far; the next delta continues it.
    t = applyStreams(t, [streamMsg(1, 'abcdexyz')]);
    assert.equal(body(t, 1), 'abcdexyz');
    t = applyDelta(t, delta(1, 8, '!')).timeline;
    assert.equal(body(t, 1), 'abcdexyz!');
  });

  it('stream.end sets the final text and state, after which deltas are ignored', () => {
    let t = applyEntry(emptyTimeline(), streamMsg(1));
    t = applyDelta(t, delta(1, 0, 'partial')).timeline;
    t = applyEntry(t, endEntry(2, 1, 'partial and the rest', 'done'));
    const m = t.items.find((x) => x.seq === 1)!;
    assert.equal(m.body, 'partial and the rest');
    assert.equal(m.streaming, false);
    assert.deepEqual(m.stream, { state: 'done', length: utf8Length('partial and the rest') });
    assert.equal(t.items.length, 1, 'the end entry is not an item');
    assert.equal(applyDelta(t, delta(1, 20, 'late')).applied, false);
    // an interrupted one
    let u = applyEntry(emptyTimeline(), streamMsg(3, 'so far'));
    u = applyEntry(u, endEntry(4, 3, 'so far', 'interrupted'));
    assert.equal(u.items[0]!.stream!.state, 'interrupted');
  });

  it('a read older than deltas already applied keeps the longer text; a newer read wins', () => {
    let t = applyEntry(emptyTimeline(), streamMsg(1));
    t = applyDelta(t, delta(1, 0, 'one two three')).timeline;
    // msg.history answered with the body as it was before the last delta
    t = applyBatch(t, [streamMsg(1, 'one two')], 1);
    assert.equal(body(t, 1), 'one two three');
    t = applyBatch(t, [streamMsg(1, 'one two three four')], 1);
    assert.equal(body(t, 1), 'one two three four');
  });

  it("the sub reply's streams: longer text replaces, a stream inside the loaded range is added", () => {
    let t = applyBatch(emptyTimeline(), [
      { ...streamMsg(1, 'plain', false), stream: null, author: BEN },
      streamMsg(2, 'ab'),
      { ...streamMsg(5, 'x', false), stream: null, author: BEN },
    ]);
    t = applyStreams(t, [streamMsg(2, 'abcd'), streamMsg(3, 'new one')], 5);
    assert.equal(body(t, 2), 'abcd');
    assert.equal(body(t, 3), 'new one');
    assert.deepEqual(t.items.map((m) => m.seq), [1, 2, 3, 5]);
    // A shorter snapshot never shortens; an ended message is left alone.
    t = applyStreams(t, [streamMsg(2, 'a')]);
    assert.equal(body(t, 2), 'abcd');
  });
});

describe('client: msg.delta events and resync', () => {
  it('emits msg.delta and re-subscribes with since on resync()', async () => {
    const rig = makeClient();
    const deltas: MsgDeltaEvent[] = [];
    rig.client.on('msg.delta', (d) => deltas.push(d));
    rig.client.connect();
    const ws = serveConnection();
    rig.client.subscribe('room');
    ws.reply(ws.lastRequest('sub'), { ...subResult('room', 4, []), streams: [streamMsg(3, 'abc')] });
    assert.deepEqual(rig.of('subscribed')[0]!.result.streams!.map((m) => m.body), ['abc']);
    ws.push({ ev: 'msg.delta', chat: 'room', seq: 3, offset: 3, delta: 'd' });
    assert.deepEqual(deltas, [{ chat: 'room', seq: 3, offset: 3, delta: 'd' }]);
    rig.client.resync('room');
    rig.client.resync('room'); // one sub at a time
    const subs = ws.requests('sub');
    assert.equal(subs.length, 2);
    assert.equal(subs[1]!.since, 4);
  });
});

// ---- StreamWriter against the fake server ----

/** Plays the stream ops on the current socket like the server: offset checks, idempotent repeats. */
class StreamServer {
  stored = '';
  storedBytes = 0;
  started = 0;
  ended: string | null = null;
  appendFrames: SentFrame[] = [];
  answered = new Set<number>();

  /** Answers every request of the socket not answered yet (all, or only those before `upTo`). */
  answer(ws: FakeWebSocket, opts: { drop?: (f: SentFrame) => boolean } = {}): void {
    for (const f of ws.sent) {
      if (this.answered.has(f.id * 1000 + FakeWebSocket.instances.indexOf(ws))) continue;
      if (!f.op.startsWith('msg.stream.')) continue;
      this.answered.add(f.id * 1000 + FakeWebSocket.instances.indexOf(ws));
      const res = this.apply(f);
      if (opts.drop?.(f)) continue; // applied, but the reply is lost
      if ('error' in res) ws.fail(f, 'conflict', 'conflict', { length: res.length });
      else ws.reply(f, res.ok);
    }
  }

  apply(f: SentFrame): { ok: Record<string, unknown> } | { error: true; length: number } {
    if (f.op === 'msg.stream.start') {
      const dup = this.started > 0;
      this.started++;
      return { ok: { msg: { ...streamMsg(7), clientMsgId: f.clientMsgId }, duplicate: dup } };
    }
    if (f.op === 'msg.stream.append') {
      this.appendFrames.push(f);
      const d = String(f.delta);
      const off = Number(f.offset);
      const n = utf8Length(d);
      if (this.ended !== null) return { error: true, length: this.storedBytes };
      if (off === this.storedBytes) {
        this.stored += d;
        this.storedBytes += n;
        return { ok: { seq: 7, length: this.storedBytes } };
      }
      const bytes = new TextEncoder().encode(this.stored);
      if (off + n <= this.storedBytes && new TextDecoder().decode(bytes.subarray(off, off + n)) === d) {
        return { ok: { seq: 7, length: this.storedBytes } };
      }
      return { error: true, length: this.storedBytes };
    }
    if (this.ended !== null) return { error: true, length: this.storedBytes };
    this.ended = String(f.state ?? 'done');
    return { ok: { msg: endEntry(8, 7, this.stored, this.ended as 'done' | 'error') } };
  }
}

describe('StreamWriter', () => {
  it('appends at the acknowledged offset, gathers writes made while an append is on its way', async () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    const srv = new StreamServer();
    const w = new StreamWriter(rig.client, 'room', { clientMsgId: 'ans-1', timers: rig.clock, now: rig.clock.now });
    w.write('Hel');
    const started = w.start();
    await flush();
    srv.answer(ws);
    await started;
    assert.equal(w.seq, 7);
    await flush();
    w.write('lo ');
    w.write('wörld');
    srv.answer(ws);
    await flush();
    srv.answer(ws);
    await flush();
    const ending = w.end();
    await flush();
    srv.answer(ws);
    await flush();
    srv.answer(ws);
    const entry = await ending;
    assert.equal(srv.stored, 'Hello wörld');
    assert.equal(entry!.body, 'Hello wörld');
    assert.equal(srv.ended, 'done');
    assert.deepEqual(
      srv.appendFrames.map((f) => [f.offset, f.delta]),
      [
        [0, 'Hel'],
        [3, 'lo wörld'],
      ],
    );
    assert.equal(w.length, utf8Length('Hello wörld'));
  });

  it('retries across a reconnect with the same clientMsgId and offset: the text is intact, nothing doubled', async () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    const srv = new StreamServer();
    const w = new StreamWriter(rig.client, 'room', { clientMsgId: 'ans-2', timers: rig.clock, now: rig.clock.now });
    const started = w.start();
    await flush();
    // The start is stored but its reply is lost with the connection.
    srv.answer(ws, { drop: () => true });
    ws.serverClose(1006);
    await flush();
    advanceToReconnect(rig);
    ws = serveConnection();
    await flush();
    assert.deepEqual(ws.requests('msg.stream.start').map((f) => f.clientMsgId), ['ans-2'], 'the same clientMsgId again');
    srv.answer(ws);
    await started;
    assert.equal(srv.started, 2);

    w.write('first part, ');
    await flush();
    // The append is stored, the reply is lost, the socket drops.
    srv.answer(ws, { drop: () => true });
    w.write('second part');
    ws.serverClose(1006);
    await flush();
    advanceToReconnect(rig);
    ws = serveConnection();
    await flush();
    // The same bytes at the same offset first (idempotent), then the rest.
    const resent = ws.requests('msg.stream.append');
    assert.deepEqual(resent.map((f) => [f.offset, f.delta]), [[0, 'first part, ']]);
    srv.answer(ws);
    await flush();
    srv.answer(ws);
    await flush();
    const ending = w.end();
    await flush();
    srv.answer(ws);
    await ending;
    assert.equal(srv.stored, 'first part, second part');
    assert.equal(srv.ended, 'done');
    assert.equal(w.text, srv.stored);
  });

  it('a socket closing before the client noticed: the writer waits for the reconnect instead of spinning', async () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    const srv = new StreamServer();
    const w = new StreamWriter(rig.client, 'room', { timers: rig.clock, now: rig.clock.now });
    const started = w.start();
    await flush();
    srv.answer(ws);
    await started;
    ws.readyState = 3; // closing: sends fail, the close event has not come yet
    w.write('abc');
    for (let i = 0; i < 5; i++) await flush();
    assert.equal(ws.requests('msg.stream.append').length, 0, 'nothing sent on the closing socket');
    ws.serverClose(1006);
    await flush();
    advanceToReconnect(rig);
    ws = serveConnection();
    for (let i = 0; i < 3; i++) await flush();
    srv.answer(ws);
    await flush();
    assert.equal(srv.stored, 'abc');
  });

  it('a refused append (too_large) ends the stream with "error" and end() rejects', async () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    const w = new StreamWriter(rig.client, 'room', { timers: rig.clock, now: rig.clock.now });
    const started = w.start();
    await flush();
    ws.reply(ws.lastRequest('msg.stream.start'), { msg: streamMsg(7), duplicate: false });
    await started;
    w.write('x');
    await flush();
    ws.fail(ws.lastRequest('msg.stream.append'), 'too_large');
    await flush();
    const ending = w.end('done');
    await flush();
    const endReq = ws.lastRequest('msg.stream.end');
    assert.equal(endReq.state, 'error');
    ws.reply(endReq, { msg: endEntry(8, 7, '', 'error') });
    await assert.rejects(ending, (e: { code: string }) => e.code === 'too_large');
  });

  it('splits text longer than the largest delta on character boundaries', async () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    const srv = new StreamServer();
    const w = new StreamWriter(rig.client, 'room', { maxDeltaBytes: 5, timers: rig.clock, now: rig.clock.now });
    w.write('ab🙂cdé');
    const started = w.start();
    await flush();
    srv.answer(ws);
    await started;
    for (let i = 0; i < 5; i++) {
      await flush();
      srv.answer(ws);
    }
    assert.equal(srv.stored, 'ab🙂cdé');
    assert.ok(srv.appendFrames.every((f) => utf8Length(String(f.delta)) <= 5));
    assert.deepEqual(srv.appendFrames.map((f) => f.delta), ['ab', '🙂c', 'dé']);
  });
});
