// 32 - WebSockets keep wslay's context only while they need it (src/net/ws.c): after a read
// that ends at a frame boundary the ~8.5 KB of parser state is freed, and the next byte, ping or
// close creates a fresh one. A read that ends in the middle of a frame header, a frame's payload
// or a fragmented message must keep it: the rest, sent in a later read, still completes it. The
// counter parley_ws_idle_releases_total on /metrics shows that releases happened, so the tests
// cannot pass with the feature switched off.
//
// The short pauses between the parts of a frame are there so that the server reads them
// separately (there is no event that tells a client the server has read its bytes).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { http } from './lib/client.mjs';
import { OP, closePayload, encodeFrame, rawWs } from './lib/raw.mjs';
import { useServer } from './lib/server.mjs';

const QUIET_MS = 150; // long enough for the server to read what came before on its own

const ping = (id) => Buffer.from(`{"id":${id},"op":"ping"}`);
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

async function releases(srv) {
  const res = await http(srv, 'GET', '/metrics');
  const m = /^parley_ws_idle_releases_total (\d+)$/m.exec(res.text);
  assert.ok(m, 'parley_ws_idle_releases_total is on /metrics');
  return Number(m[1]);
}

async function expectReply(ws, id) {
  const f = await ws.waitFrame(
    (fr) => fr.opcode === OP.TEXT && JSON.parse(fr.payload.toString()).id === id,
    { what: `the reply to ping ${id}` },
  );
  assert.equal(JSON.parse(f.payload.toString()).ok, true, ws.describe());
}

describe('idle WebSockets release wslay state', () => {
  // No server pings: only what the tests send reaches the sockets.
  const srv = useServer({ env: { PARLEY_PING_INTERVAL_MS: '600000' } });

  test('at a frame boundary: released, then requests, pings and close still work', async () => {
    const before = await releases(srv);
    const ws = await rawWs(srv);
    await ws.text(ping(1));
    await expectReply(ws, 1);
    await pause(QUIET_MS);
    assert.ok((await releases(srv)) > before, 'the socket released its context after the read');
    await ws.text(ping(2));
    await expectReply(ws, 2);
    // A ping after another quiet period is answered by a fresh context.
    await pause(QUIET_MS);
    const from = ws.frames.length;
    await ws.write(encodeFrame(OP.PING, Buffer.from('hi')));
    const pong = await ws.waitFrame((f) => f.opcode === OP.PONG, { from, what: 'the pong' });
    assert.equal(pong.payload.toString(), 'hi');
    // And the close handshake after a third.
    await pause(QUIET_MS);
    await ws.write(encodeFrame(OP.CLOSE, closePayload(1000)));
    const { code } = await ws.waitClose({ what: 'the close echo' });
    assert.equal(code, 1000);
    await ws.waitTcpClosed();
  });

  test('a read ending inside a frame header, a payload or a fragmented message keeps the state', async () => {
    const [a, b, c] = await Promise.all([rawWs(srv), rawWs(srv), rawWs(srv)]);
    const fa = encodeFrame(OP.TEXT, ping(10));
    const fb = encodeFrame(OP.TEXT, ping(20));
    const msg = ping(30);
    const half = Math.floor(msg.length / 2);
    const c1 = encodeFrame(OP.TEXT, msg.subarray(0, half), { fin: false });
    const c2 = encodeFrame(OP.CONT, msg.subarray(half));
    await Promise.all([
      a.write(fa.subarray(0, 3)), // the 2-byte header and one byte of the mask key
      b.write(fb.subarray(0, 10)), // the header and a few payload bytes
      c.write(c1), // a whole first fragment
    ]);
    await pause(QUIET_MS);
    await Promise.all([a.write(fa.subarray(3)), b.write(fb.subarray(10)), c.write(c2)]);
    await Promise.all([expectReply(a, 10), expectReply(b, 20), expectReply(c, 30)]);
    // Released mid-frame, the rest would have been a protocol error (close 1002).
    for (const ws of [a, b, c]) {
      assert.equal(ws.frames.filter((f) => f.opcode === OP.CLOSE).length, 0, ws.describe());
    }
    await Promise.all([a.destroy(), b.destroy(), c.destroy()]);
  });
});
