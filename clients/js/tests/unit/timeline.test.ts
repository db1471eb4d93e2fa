// timeline.ts: folding entries into messages. A small model of the server (what msg.history and
// a `sub` reply return at any seq: text messages folded as of then, and the entries after a
// seq) drives a live client, which applies every entry as it arrives, and a client that goes
// away at each point of the sequence and resumes; both must end exactly where the server is,
// across every kind of entry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyBatch,
  applyEntry,
  emptyTimeline,
  textMessages,
  type Msg,
  type Timeline,
  type User,
} from '../../src/index.js';

const ana: User = { id: 1, username: 'ana', displayName: 'Ana' };
const bob: User = { id: 2, username: 'bob', displayName: 'Bob' };
const cai: User = { id: 3, username: 'cai', displayName: 'Cai' };

// ---- the server, as a model ----

class Server {
  entries: Msg[] = [];
  seq = 0;
  private base(author: User, extra: Partial<Msg>): Msg {
    this.seq += 1;
    const m: Msg = {
      seq: this.seq,
      chat: 'room',
      author,
      body: '',
      clientMsgId: null,
      createdAt: 1000 + this.seq,
      kind: 'text',
      ref: null,
      mentions: [],
      ...extra,
    };
    this.entries.push(m);
    return m;
  }
  text(author: User, body: string, replyTo?: number): Msg {
    const r = replyTo ? this.foldedAt(this.seq, author.id).find((m) => m.seq === replyTo) : undefined;
    return this.base(author, {
      body,
      editedAt: null,
      deleted: false,
      reactions: [],
      replyTo: r ? { seq: r.seq, author: r.author, preview: r.deleted ? '' : [...r.body].slice(0, 100).join('') } : null,
    });
  }
  edit(author: User, ref: number, body: string): Msg {
    return this.base(author, { kind: 'edit', ref, body });
  }
  del(author: User, ref: number): Msg {
    return this.base(author, { kind: 'delete', ref });
  }
  react(author: User, ref: number, emoji: string, on: boolean): Msg {
    return this.base(author, { kind: 'reaction', ref, emoji, on });
  }
  notice(author: User, action: 'joined' | 'left'): Msg {
    return this.base(author, { kind: 'notice', action, user: author, by: null });
  }
  /** Every text message and notice folded with the entries up to `at`, as `viewer` sees them. */
  foldedAt(at: number, viewer: number): Msg[] {
    const out = new Map<number, Msg>();
    const who = new Map<number, Map<string, Set<number>>>(); // seq -> emoji -> user ids, in order
    for (const e of this.entries) {
      if (e.seq > at) break;
      if (e.kind === 'text' || e.kind === 'notice') {
        out.set(e.seq, { ...e, reactions: e.kind === 'text' ? [] : undefined });
        if (e.kind === 'text') who.set(e.seq, new Map());
        continue;
      }
      const t = out.get(e.ref!);
      if (!t || t.deleted) continue;
      if (e.kind === 'edit') Object.assign(t, { body: e.body, editedAt: e.createdAt });
      if (e.kind === 'delete') {
        Object.assign(t, { body: '', deleted: true, mentions: [] });
        who.set(t.seq, new Map());
      }
      if (e.kind === 'reaction') {
        const m = who.get(t.seq)!;
        if (e.on) {
          if (!m.has(e.emoji!)) m.set(e.emoji!, new Set());
          m.get(e.emoji!)!.add(e.author.id);
        } else {
          m.get(e.emoji!)?.delete(e.author.id);
          if (m.get(e.emoji!)?.size === 0) m.delete(e.emoji!);
        }
      }
    }
    for (const [seq, m] of who) {
      const t = out.get(seq)!;
      t.reactions = [...m].map(([emoji, ids]) => ({ emoji, count: ids.size, me: ids.has(viewer) }));
    }
    for (const t of out.values()) {
      if (t.replyTo) {
        const o = out.get(t.replyTo.seq)!;
        t.replyTo = { ...t.replyTo, preview: o.deleted ? '' : [...o.body].slice(0, 100).join('') };
      }
    }
    return [...out.values()];
  }
  /** A `sub {since}` reply read at the current seq: every entry after since, texts folded now. */
  since(since: number, viewer: number): { msgs: Msg[]; lastSeq: number } {
    const now = new Map(this.foldedAt(this.seq, viewer).map((m) => [m.seq, m]));
    return {
      msgs: this.entries.filter((e) => e.seq > since).map((e) => now.get(e.seq) ?? e),
      lastSeq: this.seq,
    };
  }
}

// What a client shows, in a form that compares across clients.
function shown(t: Timeline) {
  return t.items.map((m) => ({
    seq: m.seq,
    kind: m.kind,
    body: m.body,
    deleted: m.deleted,
    edited: m.kind === 'text' ? m.editedAt !== null : undefined,
    reactions: m.reactions,
    replyTo: m.replyTo,
  }));
}
function truth(s: Server, viewer: number) {
  return shown(applyBatch(emptyTimeline(viewer), s.foldedAt(s.seq, viewer), s.seq));
}

// A conversation with every kind of entry; `step` runs after each entry.
function conversation(s: Server, step: () => void): void {
  const ops: (() => Msg)[] = [
    () => s.text(ana, 'hello'),
    () => s.notice(cai, 'joined'),
    () => s.text(bob, 'helo', 1),
    () => s.react(ana, 3, '👍', true),
    () => s.edit(bob, 3, 'hello back'),
    () => s.react(bob, 3, '👍', true),
    () => s.react(cai, 3, '🎉', true),
    () => s.react(ana, 3, '👍', false),
    () => s.text(cai, 'a reply to the first', 1),
    () => s.edit(ana, 1, 'hello, all'),
    () => s.react(bob, 1, '🔥', true),
    () => s.del(ana, 1),
    () => s.text(ana, 'last words'),
    () => s.notice(cai, 'left'),
    () => s.react(bob, 13, '👍', true),
  ];
  for (const op of ops) {
    op();
    step();
  }
}

describe('timeline', () => {
  it('a live client that folds every entry as it arrives shows what the server shows', () => {
    const s = new Server();
    let live = emptyTimeline(bob.id);
    conversation(s, () => {
      live = applyEntry(live, s.entries[s.entries.length - 1]!);
      assert.deepEqual(shown(live), truth(s, bob.id), `after seq ${s.seq}`);
    });
    assert.equal(live.lastSeq, s.seq);
  });

  it('a client away from any seq to any later one converges on resume (every kind missed)', () => {
    // Record the whole conversation once, then replay it for every (leave, return) pair.
    const full = new Server();
    conversation(full, () => {});
    const n = full.seq;
    for (let leave = 0; leave <= n; leave++) {
      for (let back = leave; back <= n; back++) {
        const s = new Server();
        let t = emptyTimeline(bob.id);
        let i = 0;
        conversation(s, () => {
          i += 1;
          if (i <= leave) t = applyEntry(t, s.entries[i - 1]!);
          if (i === back) {
            const r = s.since(t.lastSeq, bob.id);
            t = applyBatch(t, r.msgs, r.lastSeq);
          } else if (i > back) {
            t = applyEntry(t, s.entries[i - 1]!);
          }
        });
        if (back === 0) {
          const r = s.since(0, bob.id);
          t = applyBatch(emptyTimeline(bob.id), r.msgs, r.lastSeq);
        }
        assert.deepEqual(shown(t), truth(s, bob.id), `away from ${leave} to ${back}`);
      }
    }
  });

  it('history pages read now, then live entries: nothing applied twice', () => {
    const s = new Server();
    conversation(s, () => {});
    // The newest page first, then the older one, as a client scrolls back.
    const all = s.foldedAt(s.seq, ana.id);
    let t = applyBatch(emptyTimeline(ana.id), all.filter((m) => m.seq > 8), s.seq);
    t = applyBatch(t, all.filter((m) => m.seq <= 8));
    assert.deepEqual(shown(t), truth(s, ana.id));
    const more = s.react(ana, 13, '👍', true);
    t = applyEntry(t, more);
    t = applyEntry(t, more); // delivered twice (a resume overlapping live events): still once
    assert.deepEqual(shown(t), truth(s, ana.id));
    assert.deepEqual(textMessages(t).find((m) => m.seq === 13)!.reactions, [{ emoji: '👍', count: 2, me: true }]);
  });

  it('a deletion empties the previews of the replies; an edit of an unknown message is ignored', () => {
    let t = emptyTimeline(bob.id);
    const s = new Server();
    t = applyEntry(t, s.text(ana, 'original'));
    t = applyEntry(t, s.text(bob, 'reply', 1));
    assert.equal(t.items[1]!.replyTo!.seq, 1);
    t = applyEntry(t, s.edit(ana, 1, 'changed'));
    assert.equal(t.items[1]!.replyTo!.preview, 'changed');
    t = applyEntry(t, s.del(ana, 1));
    assert.equal(t.items[1]!.replyTo!.preview, '');
    assert.equal(t.items[0]!.deleted, true);
    const before = shown(t);
    t = applyEntry(t, { ...s.edit(ana, 999, 'x') });
    assert.deepEqual(shown(t), before);
    // An old server's messages (no kind) are text.
    t = applyEntry(t, { seq: 50, chat: 'room', author: ana, body: 'plain', clientMsgId: null, createdAt: 1 });
    assert.equal(t.items.at(-1)!.kind, 'text');
    assert.deepEqual(t.items.at(-1)!.reactions, []);
  });
});
