// Issue 15 in the SDK: the server sends no chat.activity for a new message to a socket subscribed
// to the chat, so the client makes it from the msg and the counts of the sub reply, and takes the
// server's own events (reads, streams, other nodes) as its word on the counts as of their seq.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityCounter, COUNT_CAP, type ChatActivityEvent } from '../../src/index.js';
import { ANA, BEN, makeClient, msgObj, serveConnection, subResult, type SentFrame } from '../helpers/fake.js';

function counted(unread: number, mentions: number, lastSeq: number, kind = 'group') {
  return (req: SentFrame): Record<string, unknown> => {
    const r = subResult(String(req.chat), lastSeq, []);
    return { ...r, chat: { ...r.chat, unread, mentions, kind } };
  };
}

describe('chat.activity of a subscribed chat', () => {
  it('counts on from the sub reply: others\' messages are unread, mentions of me count, mine do not', async () => {
    const rig = makeClient();
    const got: ChatActivityEvent[] = [];
    rig.client.on('chat.activity', (e) => got.push(e));
    rig.client.connect();
    rig.client.subscribe('room');
    const ws = serveConnection(counted(2, 1, 5));
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 6) });
    ws.push({ ev: 'msg', chat: 'room', msg: { ...msgObj('room', 7), mentions: [ANA.id] } });
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 8, ANA) });
    ws.push({ ev: 'msg', chat: 'room', msg: { ...msgObj('room', 9), kind: 'reaction', ref: 6 } });
    assert.deepEqual(
      got.map((e) => [e.seq, e.unread, e.mentions, e.mentioned, e.lastMsg?.seq, e.lastActivity]),
      [
        [6, 3, 1, false, 6, 1006],
        [7, 4, 2, true, 7, 1007],
        [8, 4, 2, false, 8, 1008],
      ],
      'one event per text message, none for a reaction',
    );
  });

  it('a DM: every message is mentioned; a replayed message is not counted twice', async () => {
    const rig = makeClient();
    const got: ChatActivityEvent[] = [];
    rig.client.on('chat.activity', (e) => got.push(e));
    rig.client.connect();
    rig.client.subscribe('dm');
    const ws = serveConnection(counted(0, 0, 3, 'dm'));
    ws.push({ ev: 'msg', chat: 'dm', msg: msgObj('dm', 3) }); // already in the reply's counts
    ws.push({ ev: 'msg', chat: 'dm', msg: msgObj('dm', 4, BEN) });
    assert.deepEqual(got.map((e) => [e.seq, e.unread, e.mentioned]), [[4, 1, true]]);
  });

  it("takes the server's event as the counts at its seq, keeping later messages counted here", async () => {
    const rig = makeClient();
    const got: ChatActivityEvent[] = [];
    rig.client.on('chat.activity', (e) => got.push(e));
    rig.client.connect();
    rig.client.subscribe('room');
    const ws = serveConnection(counted(4, 0, 5));
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 6) });
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 7) });
    // A read at seq 6 (unread 0 then), arriving after message 7 was shown.
    ws.push({ ev: 'chat.activity', chat: 'room', lastMsg: msgObj('room', 6), unread: 0, mentions: 0, lastActivity: 1006, seq: 6, mentioned: false });
    const late = got[got.length - 1]!;
    assert.deepEqual([late.seq, late.unread, late.lastMsg?.seq], [7, 1, 7], 'message 7 stays unread and stays the preview');
    // A read of everything: the server's event is newer than anything counted here.
    ws.push({ ev: 'chat.activity', chat: 'room', lastMsg: msgObj('room', 7), unread: 0, mentions: 0, lastActivity: 1007, seq: 7, mentioned: false });
    assert.equal(got[got.length - 1]!.unread, 0);
    // From another node, before the msg event itself: the msg adds nothing.
    ws.push({ ev: 'chat.activity', chat: 'room', lastMsg: msgObj('room', 8), unread: 1, mentions: 0, lastActivity: 1008, seq: 8, mentioned: false });
    const n = got.length;
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 8) });
    assert.equal(got.length, n, 'no second event for message 8');
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 9) });
    assert.equal(got[got.length - 1]!.unread, 2);
  });

  it('passes events of chats it does not have open through unchanged, and stops counting after unsub', async () => {
    const rig = makeClient();
    const got: ChatActivityEvent[] = [];
    rig.client.on('chat.activity', (e) => got.push(e));
    rig.client.connect();
    rig.client.subscribe('room');
    const ws = serveConnection(counted(0, 0, 1));
    const other = { chat: 'other', lastMsg: msgObj('other', 3), unread: 7, mentions: 2, lastActivity: 5, seq: 3, mentioned: true };
    ws.push({ ev: 'chat.activity', ...other });
    assert.deepEqual(got, [other]);
    void rig.client.unsubscribe('room');
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 2) });
    assert.equal(got.length, 1);
  });

  it('stops at the server\'s cap', () => {
    const c = new ActivityCounter();
    c.reset('room', { unread: COUNT_CAP, mentions: COUNT_CAP - 1 }, 10);
    const e = c.fromMsg('room', { ...msgObj('room', 11), mentions: [ANA.id] }, ANA.id)!;
    assert.deepEqual([e.unread, e.mentions], [COUNT_CAP, COUNT_CAP]);
    c.reset('old', {}, 10);
    assert.equal(c.fromMsg('old', msgObj('old', 11), ANA.id), null, 'a reply without counts: nothing made up');
  });
});
