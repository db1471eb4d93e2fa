import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeWebSocket, makeClient, msgObj, serveConnection, subResult, type Rig } from '../helpers/fake.js';

const seqs = (rig: Rig, chat = 'room') => rig.of('msg').filter((e) => e.chat === chat).map((e) => e.msg.seq);

describe('subscriptions and resume', () => {
  it('subscribes without since, then applies live msg events in order', async () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    const p = rig.client.subscribe('room');
    const sub = ws.lastRequest('sub');
    assert.deepEqual(sub, { id: sub.id, op: 'sub', chat: 'room' });
    ws.reply(sub, subResult('room', 5, []));
    const res = await p;
    assert.equal(res.lastSeq, 5);
    assert.equal(rig.client.lastSeq('room'), 5);
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 6) });
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 7) });
    assert.deepEqual(seqs(rig), [6, 7]);
    assert.equal(rig.client.lastSeq('room'), 7);
  });

  it('re-subscribes every chat with since = last seq after a reconnect, before going online', async () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    rig.client.subscribe('room');
    rig.client.subscribe('other');
    ws.reply(ws.requests('sub')[0]!, subResult('room', 5, []));
    ws.reply(ws.requests('sub')[1]!, subResult('other', 0, []));
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 6) });
    ws.push({ ev: 'msg', chat: 'other', msg: msgObj('other', 1) });

    ws.serverClose(1006);
    rig.clock.advance(100);
    ws = FakeWebSocket.last;
    ws.open();
    ws.reply(ws.lastRequest('auth'), { user: { id: 1, username: 'ana', displayName: 'Ana' } });
    const subs = ws.requests('sub');
    assert.deepEqual(
      subs.map(({ id: _id, ...f }) => f),
      [
        { op: 'sub', chat: 'room', since: 6 },
        { op: 'sub', chat: 'other', since: 1 },
      ],
    );
    assert.equal(rig.client.state, 'reconnecting', 'not online until the subs are answered');
    ws.reply(subs[0]!, subResult('room', 8, [msgObj('room', 7), msgObj('room', 8)]));
    assert.equal(rig.client.state, 'reconnecting');
    ws.reply(subs[1]!, subResult('other', 1, []));
    assert.equal(rig.client.state, 'online');
    assert.deepEqual(seqs(rig), [6, 7, 8]);
    assert.deepEqual(seqs(rig, 'other'), [1]);
    const subscribed = rig.of('subscribed');
    assert.deepEqual(
      subscribed.map((s) => [s.chat, s.resumed]),
      [
        ['room', false],
        ['other', false],
        ['room', true],
        ['other', true],
      ],
    );
  });

  it('ignores duplicate and old msg events', () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    rig.client.subscribe('room');
    ws.reply(ws.lastRequest('sub'), subResult('room', 3, []));
    for (const seq of [4, 4, 3, 1, 5, 5, 4]) ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', seq) });
    assert.deepEqual(seqs(rig), [4, 5]);
    assert.equal(ws.requests('sub').length, 1, 'duplicates trigger no re-sub');
  });

  it('a gap triggers a re-sub with since = last seq; later events wait, nothing is lost or doubled', () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    rig.client.subscribe('room');
    ws.reply(ws.lastRequest('sub'), subResult('room', 3, []));
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 4) });
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 7) }); // 5 and 6 missing
    assert.deepEqual(seqs(rig), [4]);
    const resub = ws.lastRequest('sub');
    assert.equal(ws.requests('sub').length, 2);
    assert.equal(resub.since, 4);
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 8) }); // still waiting: no second re-sub
    assert.equal(ws.requests('sub').length, 2);
    ws.reply(resub, subResult('room', 7, [msgObj('room', 5), msgObj('room', 6), msgObj('room', 7)]));
    assert.deepEqual(seqs(rig), [4, 5, 6, 7, 8]);
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 9) });
    assert.deepEqual(seqs(rig), [4, 5, 6, 7, 8, 9]);
    assert.equal(ws.requests('sub').length, 2);
  });

  it('a contiguous event arriving while a re-sub is in flight is applied once', () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    rig.client.subscribe('room');
    ws.reply(ws.lastRequest('sub'), subResult('room', 1, []));
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 3) }); // gap: 2 missing
    const resub = ws.lastRequest('sub');
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 2) });
    assert.deepEqual(seqs(rig), [2, 3]);
    ws.reply(resub, subResult('room', 3, [msgObj('room', 2), msgObj('room', 3)]));
    assert.deepEqual(seqs(rig), [2, 3]);
  });

  it('reset: true emits reset with the newest page and goes on from its lastSeq', () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    rig.client.subscribe('room', { since: 10 });
    assert.equal(ws.lastRequest('sub').since, 10);
    ws.reply(ws.lastRequest('sub'), subResult('room', 10, []));
    ws.serverClose(1006);
    rig.clock.advance(100);
    ws = serveConnection((req) => {
      assert.equal(req.since, 10);
      const page = Array.from({ length: 200 }, (_, i) => msgObj('room', 301 + i));
      return subResult('room', 500, page, true);
    });
    const resets = rig.of('reset');
    assert.equal(resets.length, 1);
    assert.equal(resets[0]!.chat, 'room');
    assert.equal(resets[0]!.lastSeq, 500);
    assert.equal(resets[0]!.msgs.length, 200);
    assert.deepEqual(seqs(rig), [], 'reset msgs come with the reset event, not as msg events');
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 501) });
    assert.deepEqual(seqs(rig), [501]);
  });

  it('a refused sub is dropped and reported; it is not resumed', async () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    const p = rig.client.subscribe('secret');
    ws.fail(ws.lastRequest('sub'), 'forbidden', 'not a participant');
    await assert.rejects(p, (err: { code: string }) => err.code === 'forbidden');
    assert.deepEqual(rig.client.subscriptions(), []);
    assert.equal(rig.of('subscriptionError')[0]!.chat, 'secret');
    ws.serverClose(1006);
    rig.clock.advance(100);
    ws = serveConnection();
    assert.equal(ws.requests('sub').length, 0);
  });

  it('removed ends the subscription; unsubscribe() sends unsub and stops resuming', async () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    rig.client.subscribe('a');
    rig.client.subscribe('b');
    for (const s of ws.requests('sub')) ws.reply(s, subResult(String(s.chat), 0, []));
    ws.push({ ev: 'removed', chat: 'a', by: { id: 2, username: 'ben', displayName: 'Ben' } });
    const un = rig.client.unsubscribe('b');
    ws.reply(ws.lastRequest('unsub'), { chat: 'b' });
    await un;
    assert.deepEqual(rig.client.subscriptions(), []);
    ws.serverClose(1006);
    rig.clock.advance(100);
    ws = serveConnection();
    assert.equal(ws.requests('sub').length, 0);
  });

  it('unsubscribing while the resume is in progress does not hold the client back', () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    rig.client.subscribe('a');
    rig.client.subscribe('b');
    for (const s of ws.requests('sub')) ws.reply(s, subResult(String(s.chat), 0, []));
    ws.serverClose(1006);
    rig.clock.advance(100);
    ws = FakeWebSocket.last;
    ws.open();
    ws.reply(ws.lastRequest('auth'), { user: { id: 1, username: 'ana', displayName: 'Ana' } });
    assert.equal(ws.requests('sub').length, 2);
    void rig.client.unsubscribe('b'); // the server will never answer b's sub now
    ws.reply(ws.requests('sub')[0]!, subResult('a', 0, []));
    assert.equal(rig.client.state, 'online');
    assert.deepEqual(rig.client.subscriptions(), ['a']);
  });

  it('leaving from another tab (participant.left about me) ends the subscription', () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    rig.client.subscribe('a');
    ws.reply(ws.lastRequest('sub'), subResult('a', 0, []));
    ws.push({ ev: 'participant.left', chat: 'a', user: { id: 2, username: 'ben', displayName: 'Ben' }, participantCount: 2 });
    assert.deepEqual(rig.client.subscriptions(), ['a'], 'someone else leaving changes nothing');
    ws.push({ ev: 'participant.left', chat: 'a', user: { id: 1, username: 'ana', displayName: 'Ana' }, participantCount: 1 });
    assert.deepEqual(rig.client.subscriptions(), []);
    assert.equal(rig.of('participant.left').length, 2);
    ws.serverClose(1006);
    rig.clock.advance(100);
    ws = serveConnection();
    assert.equal(ws.requests('sub').length, 0);
  });

  it('subscribe() while offline is sent at the next connection', async () => {
    const rig = makeClient();
    const p = rig.client.subscribe('room', { since: 2 });
    rig.client.connect();
    serveConnection(() => subResult("room", 3, [msgObj("room", 3)]));
    const res = await p;
    assert.equal(res.lastSeq, 3);
    assert.deepEqual(seqs(rig), [3]);
  });
});
