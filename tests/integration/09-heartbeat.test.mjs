// 09 - Heartbeat: with PARLEY_PING_INTERVAL_MS=200 the server pings every 200 ms; a peer that
// sends nothing (no pong, no data) for two intervals is closed as dead, while a peer that answers
// pings, or keeps sending data, stays connected.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, signup, uname } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const INTERVAL = 200;
describe('heartbeat', () => {
  const srv = useServer({ env: { PARLEY_PING_INTERVAL_MS: String(INTERVAL) } });

  let ana;
  const sockets = [];
  before(async () => {
    ana = await signup(srv, uname('ana'));
  });
  after(async () => {
    await Promise.all(sockets.map((s) => s.close().catch(() => {})));
  });

  test('a peer that never answers pings is disconnected; a normal one stays', async () => {
    const normal = await connect(srv, { token: ana.token });
    const dead = await connect(srv, { token: ana.token, autoPong: false });
    sockets.push(normal, dead);
    const t0 = Date.now();

    const info = await dead.waitClose({ timeout: 10 * INTERVAL + 5000 });
    const after = info.at - t0;
    assert.ok(dead.pingLog.length >= 1, 'the server pinged the dead peer before closing it');
    assert.ok(after >= INTERVAL, `closed after ${after} ms: sooner than one interval`);
    assert.ok(after < 10 * INTERVAL + 3000, `closed only after ${after} ms`);
    assert.notEqual(info.code, 1000, 'not a normal close');

    // The normal client, which answers pings automatically and sends nothing else, outlives many
    // intervals: wait for six more pings than it had when the dead one was dropped.
    const seen = normal.pingLog.length;
    await normal.waitPings(seen + 6, { timeout: 20 * INTERVAL + 5000 });
    assert.ok(normal.isOpen, 'the normal client is still connected');
    const gaps = normal.pingLog.slice(1).map((t, i) => t - normal.pingLog[i]);
    const median = gaps.sort((x, y) => x - y)[Math.floor(gaps.length / 2)];
    assert.ok(median >= INTERVAL / 2 && median <= INTERVAL * 3, `pings every ${median} ms, configured ${INTERVAL}`);
    await normal.ok('ping');
  });

  test('a peer that sends data but no pongs is alive', async () => {
    // Instead of a pong, it answers every server ping with a `ping` op: data counts as liveness.
    const chatty = await connect(srv, { token: ana.token, autoPong: false });
    sockets.push(chatty);
    chatty.ws.on('ping', () => {
      if (chatty.isOpen) chatty.request('ping').catch(() => {});
    });
    await chatty.waitPings(10, { timeout: 20 * INTERVAL + 5000 });
    assert.ok(chatty.isOpen, 'still connected after 10 intervals');
    await chatty.ok('ping');
  });
});
