import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomClientMsgId, type OutgoingMessage } from '../../src/index.js';
import { advanceToReconnect, ANA, BEN, FakeWebSocket, makeClient, msgObj, serveConnection, subResult } from '../helpers/fake.js';

const statuses = (out: OutgoingMessage[], id: string) => out.filter((o) => o.clientMsgId === id).map((o) => o.status);

describe('pending sends', () => {
  it('send(): optimistic pending message, msg.send with a clientMsgId, confirmed by the reply seq', async () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    const out = rig.client.send('room', 'hello');
    assert.equal(out.status, 'pending');
    assert.equal(out.clientMsgId, 'cm-1');
    assert.deepEqual(rig.of('outgoing')[0], { ...out });
    const req = ws.lastRequest('msg.send');
    assert.deepEqual(req, { id: req.id, op: 'msg.send', chat: 'room', body: 'hello', clientMsgId: 'cm-1' });
    assert.equal(rig.client.outgoing('room').length, 1);
    ws.reply(req, { msg: msgObj('room', 12, ANA, 'cm-1', 'hello'), duplicate: false });
    const last = rig.of('outgoing').at(-1)!;
    assert.equal(last.status, 'sent');
    assert.equal(last.seq, 12);
    assert.equal(last.msg!.seq, 12);
    assert.deepEqual(rig.client.outgoing(), []);
  });

  it('a send survives reconnects: retried with the same clientMsgId exactly once per reconnect', () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    const out = rig.client.send('room', 'hi');
    assert.equal(ws.requests('msg.send').length, 1);
    for (let i = 0; i < 3; i++) {
      ws.serverClose(1006); // no reply: lost on the way, or stored and the reply lost
      advanceToReconnect(rig);
      ws = serveConnection();
      const sends = ws.requests('msg.send');
      assert.equal(sends.length, 1, `exactly one msg.send on reconnect ${i + 1}`);
      assert.equal(sends[0]!.clientMsgId, out.clientMsgId);
      assert.equal(sends[0]!.body, 'hi');
    }
    ws.reply(ws.lastRequest('msg.send'), { msg: msgObj('room', 3, ANA, out.clientMsgId, 'hi'), duplicate: true });
    assert.deepEqual(statuses(rig.of('outgoing'), out.clientMsgId), ['pending', 'sent']);
    // Confirmed: nothing is sent again on the next reconnect.
    ws.serverClose(1006);
    advanceToReconnect(rig);
    ws = serveConnection();
    assert.equal(ws.requests('msg.send').length, 0);
  });

  it('a send made while offline goes out once online, after the subs are answered', () => {
    const rig = makeClient();
    rig.client.subscribe('room');
    const out = rig.client.send('room', 'early');
    rig.client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.reply(ws.lastRequest('auth'), { user: ANA });
    assert.equal(ws.requests('msg.send').length, 0, 'not before the resume');
    ws.reply(ws.lastRequest('sub'), subResult('room', 0, []));
    assert.equal(ws.requests('msg.send').length, 1);
    assert.equal(ws.lastRequest('msg.send').clientMsgId, out.clientMsgId);
  });

  it('the matching msg event (clientMsgId + author) confirms it; the later reply changes nothing', () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    rig.client.subscribe('room');
    ws.reply(ws.lastRequest('sub'), subResult('room', 4, []));
    const out = rig.client.send('room', 'x');
    // Someone else's message with the same clientMsgId does not confirm ours.
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 5, BEN, out.clientMsgId, 'other') });
    assert.deepEqual(statuses(rig.of('outgoing'), out.clientMsgId), ['pending']);
    ws.push({ ev: 'msg', chat: 'room', msg: msgObj('room', 6, ANA, out.clientMsgId, 'x') });
    assert.deepEqual(statuses(rig.of('outgoing'), out.clientMsgId), ['pending', 'sent']);
    assert.equal(rig.of('outgoing').at(-1)!.seq, 6);
    ws.reply(ws.lastRequest('msg.send'), { msg: msgObj('room', 6, ANA, out.clientMsgId, 'x'), duplicate: false });
    assert.deepEqual(statuses(rig.of('outgoing'), out.clientMsgId), ['pending', 'sent']);
  });

  it('a message stored before the drop and replayed by the resume is not sent again', () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    rig.client.subscribe('room');
    ws.reply(ws.lastRequest('sub'), subResult('room', 0, []));
    const out = rig.client.send('room', 'x');
    ws.serverClose(1006);
    rig.clock.advance(100);
    ws = serveConnection(() => subResult('room', 1, [msgObj('room', 1, ANA, out.clientMsgId, 'x')]));
    assert.equal(ws.requests('msg.send').length, 0);
    assert.equal(rig.of('outgoing').at(-1)!.status, 'sent');
    assert.deepEqual(rig.of('msg').map((m) => m.msg.seq), [1]);
  });

  for (const code of ['forbidden', 'bad_request', 'too_large', 'not_found']) {
    it(`fails on ${code}; retry() resends the same clientMsgId; discard() drops it`, async () => {
      const rig = makeClient();
      rig.client.connect();
      let ws = serveConnection();
      const waited = rig.client.sendAndWait('room', 'nope');
      ws.fail(ws.lastRequest('msg.send'), code, 'refused');
      await assert.rejects(waited, (err: { code: string }) => err.code === code);
      const failed = rig.of('outgoing').at(-1)!;
      assert.equal(failed.status, 'failed');
      assert.equal(failed.error!.code, code);
      assert.equal(rig.client.outgoing('room')[0]!.status, 'failed');
      // A failed message is not retried by itself, not even after a reconnect.
      ws.serverClose(1006);
      advanceToReconnect(rig);
      ws = serveConnection();
      assert.equal(ws.requests('msg.send').length, 0);

      assert.equal(rig.client.retry(failed.clientMsgId), true);
      assert.equal(ws.requests('msg.send').length, 1);
      assert.equal(ws.lastRequest('msg.send').clientMsgId, failed.clientMsgId);
      ws.fail(ws.lastRequest('msg.send'), code, 'refused again');
      assert.equal(rig.client.discard(failed.clientMsgId), true);
      assert.deepEqual(statuses(rig.of('outgoing'), failed.clientMsgId), ['pending', 'failed', 'pending', 'failed', 'discarded']);
      assert.deepEqual(rig.client.outgoing(), []);
      assert.equal(rig.client.retry(failed.clientMsgId), false);
    });
  }

  it('rate_limited: retried after retryAfter ms with the same clientMsgId', () => {
    const rig = makeClient();
    rig.client.connect();
    const ws = serveConnection();
    const out = rig.client.send('room', 'fast');
    ws.fail(ws.lastRequest('msg.send'), 'rate_limited', 'sending too fast', { retryAfter: 700 });
    rig.clock.advance(699);
    assert.equal(ws.requests('msg.send').length, 1);
    rig.clock.advance(1);
    assert.equal(ws.requests('msg.send').length, 2);
    assert.equal(ws.lastRequest('msg.send').clientMsgId, out.clientMsgId);
    ws.reply(ws.lastRequest('msg.send'), { msg: msgObj('room', 1, ANA, out.clientMsgId, 'fast'), duplicate: false });
    assert.deepEqual(statuses(rig.of('outgoing'), out.clientMsgId), ['pending', 'sent']);
  });

  it('several pending sends go out in order after a reconnect', () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    ws.serverClose(1006);
    const ids = ['a', 'b', 'c'].map((b) => rig.client.send('room', b).clientMsgId);
    rig.clock.advance(100);
    ws = serveConnection();
    assert.deepEqual(ws.requests('msg.send').map((f) => f.clientMsgId), ids);
  });

  it('clientMsgIds match [A-Za-z0-9_.:-]{1,64}', () => {
    for (let i = 0; i < 50; i++) assert.match(randomClientMsgId(), /^[A-Za-z0-9_.:-]{1,64}$/);
    const saved = globalThis.crypto;
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true });
    try {
      const id = randomClientMsgId(() => 0.42);
      assert.match(id, /^[a-z0-9]{24}$/);
    } finally {
      Object.defineProperty(globalThis, 'crypto', { value: saved, configurable: true });
    }
    const rig = makeClient();
    assert.throws(() => rig.client.send('room', 'x', { clientMsgId: 'has space' }), TypeError);
  });
});
