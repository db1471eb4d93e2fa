// Helpers for the streamed-message tests (issue 19): a viewer's copy of a stream built only
// from what the server sent, and the author's side of appends by offset.

import assert from 'node:assert/strict';

export const bytes = (s) => Buffer.byteLength(s, 'utf8');

// A viewer's copy of one stream's text, built only from what the server sent: the snapshot (a
// folded message) then msg.delta events, applying only the bytes beyond what it has. A delta
// that starts beyond its length is a gap, which must never happen.
export class Viewer {
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
export async function appendAll(author, chat, seq, parts, start = 0) {
  let offset = start;
  for (const p of parts) {
    const r = await author.ok('msg.stream.append', { chat, seq, delta: p, offset });
    offset += bytes(p);
    assert.equal(r.length, offset);
    assert.equal(r.seq, seq);
  }
  return offset;
}

export const deltasOf = (c, chat, seq, from = 0) =>
  c.events.slice(from).filter((e) => e.ev === 'msg.delta' && e.chat === chat && e.seq === seq);
