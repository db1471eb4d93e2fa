import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffCap, backoffDelay, ParleyError } from '../../src/index.js';
import { advanceToReconnect, ANA, FakeWebSocket, makeClient, scriptedRandom, serveConnection } from '../helpers/fake.js';

describe('backoff', () => {
  it('full jitter within [0, min(15000, 100 * 2^n)]', () => {
    const caps = [100, 200, 400, 800, 1600, 3200, 6400, 12800, 15000, 15000, 15000];
    caps.forEach((cap, n) => assert.equal(backoffCap(n), cap, `cap of attempt ${n}`));
    assert.equal(backoffCap(5000), 15000);
    for (let n = 0; n < 40; n++) {
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const d = backoffDelay(n, () => r);
        assert.ok(d >= 0 && d <= Math.min(15000, 100 * 2 ** n), `attempt ${n} r ${r}: ${d}`);
      }
    }
    assert.equal(backoffDelay(3, () => 0), 0);
    assert.equal(backoffDelay(3, () => 0.5), 400);
    assert.equal(backoffDelay(20, () => 0.5), 7500);
  });
});

describe('reconnect', () => {
  it('waits a jittered, growing delay before each attempt, and resets after a successful auth', () => {
    const random = scriptedRandom([0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.999, 0.5, 0.5]);
    const { client, clock, of } = makeClient({ random });
    client.connect();
    assert.equal(client.state, 'connecting');
    const delays: number[] = [];
    // Ten failed attempts in a row: the server is down (the socket closes before opening).
    for (let i = 0; i < 10; i++) {
      const count = FakeWebSocket.instances.length;
      FakeWebSocket.last.serverClose(1006);
      assert.equal(client.state, 'reconnecting');
      const delay = of('close').at(-1)!.reconnectInMs!;
      delays.push(delay);
      assert.ok(delay >= 0 && delay <= Math.min(15000, 100 * 2 ** i), `attempt ${i}: ${delay}`);
      if (delay > 0) {
        clock.advance(delay - 1);
        assert.equal(FakeWebSocket.instances.length, count, 'no attempt before the delay');
      }
      clock.advance(1);
      assert.equal(FakeWebSocket.instances.length, count + 1, 'an attempt right after the delay');
    }
    assert.deepEqual(delays, [99, 199, 399, 799, 1598, 3196, 6393, 12787, 14985, 14985]);

    // Online again: the next drop starts over from the 100 ms cap.
    serveConnection();
    assert.equal(client.state, 'online');
    FakeWebSocket.last.serverClose(1001, 'shutting down');
    assert.equal(of('close').at(-1)!.reconnectInMs, 50);
    assert.deepEqual(of('close').at(-1), { code: 1001, reason: 'shutting down', reconnectInMs: 50 });
  });

  it('does not reset the backoff on open alone (only after auth)', () => {
    const rig = makeClient({ random: () => 0.5 });
    const { client, of } = rig;
    client.connect();
    for (let i = 0; i < 4; i++) {
      FakeWebSocket.last.open(); // opens, then drops before auth is answered
      FakeWebSocket.last.serverClose(1006);
      assert.equal(of('close').at(-1)!.reconnectInMs, Math.floor(0.5 * 100 * 2 ** i));
      advanceToReconnect(rig);
    }
  });

  for (const code of [1001, 1006, 1011, 4008, 4029, 1000]) {
    it(`reconnects after close ${code}`, () => {
      const rig = makeClient();
      const { client } = rig;
      client.connect();
      serveConnection();
      FakeWebSocket.last.serverClose(code);
      assert.equal(client.state, 'reconnecting');
      advanceToReconnect(rig);
      assert.equal(FakeWebSocket.instances.length, 2);
      serveConnection();
      assert.equal(client.state, 'online');
    });
  }

  it('does not reconnect after 4001: emits unauthorized and goes offline', async () => {
    const { client, clock, of } = makeClient();
    const online = client.connect();
    serveConnection();
    await online;
    FakeWebSocket.last.serverClose(4001, 'session ended');
    assert.equal(client.state, 'offline');
    assert.deepEqual(of('unauthorized'), [{ code: 4001, reason: 'session ended' }]);
    clock.advance(60000);
    assert.equal(FakeWebSocket.instances.length, 1);
    assert.deepEqual(
      of('state').map((s) => s.state),
      ['connecting', 'online', 'offline'],
    );
  });

  for (const code of [1002, 1003, 1007, 1009]) {
    it(`does not reconnect after close ${code} (a client bug)`, () => {
      const { client, clock, of } = makeClient();
      client.connect();
      serveConnection();
      FakeWebSocket.last.serverClose(code, 'bad');
      assert.equal(client.state, 'offline');
      assert.deepEqual(of('fatal'), [{ code, reason: 'bad' }]);
      clock.advance(60000);
      assert.equal(FakeWebSocket.instances.length, 1);
    });
  }

  it('a refused token is unauthorized: offline, no reconnect, connect() rejects', async () => {
    const { client, clock, of } = makeClient();
    const online = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.fail(ws.lastRequest('auth'), 'unauthorized', 'invalid or expired token');
    await assert.rejects(online, (err: ParleyError) => err.code === 'unauthorized');
    assert.equal(client.state, 'offline');
    assert.equal(of('unauthorized').length, 1);
    assert.equal(ws.closeCalls.length, 1);
    clock.advance(60000);
    assert.equal(FakeWebSocket.instances.length, 1);
  });

  it('a token function is called before every connection', async () => {
    let calls = 0;
    const rig = makeClient({ token: async () => `t${++calls}` });
    const { client } = rig;
    client.connect();
    FakeWebSocket.last.open();
    await new Promise((r) => setImmediate(r));
    assert.equal(FakeWebSocket.last.lastRequest('auth').token, 't1');
    FakeWebSocket.last.serverClose(1006);
    advanceToReconnect(rig);
    FakeWebSocket.last.open();
    await new Promise((r) => setImmediate(r));
    assert.equal(FakeWebSocket.last.lastRequest('auth').token, 't2');
  });

  it('cookie mode: online on hello, without any auth op', async () => {
    const { client } = makeClient({ token: undefined });
    const online = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    assert.equal(ws.requests('auth').length, 0);
    ws.push({ ev: 'hello', user: ANA });
    assert.deepEqual(await online, ANA);
    assert.equal(client.state, 'online');
    // The probe ping answered after hello changes nothing.
    ws.reply(ws.lastRequest('ping'), { now: 1 });
    assert.equal(client.state, 'online');
  });

  it('cookie mode: a ping reply before any hello means no session: unauthorized', async () => {
    const { client, of } = makeClient({ token: undefined });
    const online = client.connect();
    const ws = FakeWebSocket.last;
    ws.open();
    ws.reply(ws.lastRequest('ping'), { now: 1 });
    await assert.rejects(online, (err: ParleyError) => err.code === 'unauthorized');
    assert.equal(client.state, 'offline');
    assert.equal(of('unauthorized').length, 1);
  });

  it('a socket that never opens is dropped after connectTimeoutMs and retried', () => {
    const { client, clock } = makeClient({ connectTimeoutMs: 2000 });
    client.connect();
    clock.advance(1999);
    assert.equal(FakeWebSocket.instances.length, 1);
    clock.advance(1);
    assert.equal(FakeWebSocket.instances[0]!.closeCalls.length, 1);
    assert.equal(client.state, 'reconnecting');
    clock.advance(100);
    assert.equal(FakeWebSocket.instances.length, 2);
  });

  it('heartbeat: pings after heartbeatMs of silence; no reply drops and reconnects', () => {
    const { client, clock } = makeClient({ heartbeatMs: 30000, requestTimeoutMs: 5000 });
    client.connect();
    const ws = serveConnection();
    clock.advance(29999);
    assert.equal(ws.requests('ping').length, 0);
    clock.advance(1);
    assert.equal(ws.requests('ping').length, 1);
    ws.reply(ws.lastRequest('ping'), { now: 1 });
    clock.advance(30000);
    assert.equal(ws.requests('ping').length, 2);
    clock.advance(5000); // no reply
    assert.equal(client.state, 'reconnecting');
    assert.equal(ws.closeCalls.length, 1);
    clock.advance(100);
    assert.equal(FakeWebSocket.instances.length, 2);
  });

  it('state changes: connecting -> online -> reconnecting -> online -> offline', () => {
    const { client, clock, of } = makeClient();
    client.connect();
    serveConnection();
    FakeWebSocket.last.serverClose(1006);
    clock.advance(100);
    serveConnection();
    client.close();
    assert.deepEqual(
      of('state').map((s) => [s.prev, s.state]),
      [
        ['offline', 'connecting'],
        ['connecting', 'online'],
        ['online', 'reconnecting'],
        ['reconnecting', 'online'],
        ['online', 'offline'],
      ],
    );
  });

  it('reconnectNow() skips the wait', () => {
    const rig = makeClient({ random: () => 0.99 });
    const { client, of } = rig;
    client.connect();
    serveConnection();
    for (let i = 0; i < 6; i++) {
      FakeWebSocket.last.serverClose(1006);
      advanceToReconnect(rig);
    }
    FakeWebSocket.last.serverClose(1006);
    assert.ok(of('close').at(-1)!.reconnectInMs! > 6000);
    const n = FakeWebSocket.instances.length;
    client.reconnectNow();
    assert.equal(FakeWebSocket.instances.length, n + 1);
    serveConnection();
    assert.equal(client.state, 'online');
  });
});
