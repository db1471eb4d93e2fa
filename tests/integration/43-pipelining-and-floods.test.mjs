// 43 - Transport limits from the outside review (issue 14): pipelined HTTP requests answered in
// order one at a time, even when the first is answered asynchronously (signup hashes its password
// on the thread pool); a bounded shutdown with such connections open; pipelined responses a
// client never reads stop the server from reading that connection instead of growing its memory;
// pongs count against the output caps (close 4008) and a ping flood is refused (close 1008); an
// empty text frame right behind `auth` is handled (the test build runs under UBSan).
//
// Memory bounds are read from what the server exposes: parley_bytes_out_total and
// parley_slow_consumer_closes_total on /metrics, and the peak RSS (VmHWM) of the server process.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';

import { PASSWORD, TIMEOUT_MS, http, signup, uname } from './lib/client.mjs';
import { OP, encodeFrame, rawHttp, rawWs } from './lib/raw.mjs';
import { startServer, useServer } from './lib/server.mjs';

const MiB = 1024 * 1024;

async function metric(srv, name) {
  const res = await http(srv, 'GET', '/metrics');
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(res.text);
  assert.ok(m, `${name} on /metrics`);
  return Number(m[1]);
}

// Peak resident memory of the server process, in bytes (Linux /proc).
async function peakRss(srv) {
  const status = await fs.readFile(`/proc/${srv.proc.pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(m, 'VmHWM in /proc/<pid>/status');
  return Number(m[1]) * 1024;
}

function signupRequest(srv, username) {
  const body = JSON.stringify({ username, password: PASSWORD });
  return (
    `POST /api/signup HTTP/1.1\r\nHost: ${srv.host}:${srv.port}\r\nOrigin: ${srv.origin}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

function getRequest(srv, p, headers = '') {
  return `GET ${p} HTTP/1.1\r\nHost: ${srv.host}:${srv.port}\r\n${headers}\r\n`;
}

// A TCP connection that never reads what the server sends (after node's first 16 KiB).
function unreadSocket(srv) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, srv.host);
    sock.setNoDelay(true);
    sock.pause();
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

// Writes `data` and resolves once the kernel took it (false if the socket is gone).
function write(sock, data) {
  return new Promise((resolve) => {
    if (sock.destroyed) return resolve(false);
    sock.write(data, (err) => resolve(!err));
  });
}

// Polls /metrics until parley_connections is down to `n` (a paused socket does not notice that
// the server closed it: it reads nothing, not even the FIN). The metrics request itself is one.
async function waitConnections(srv, n, timeout = TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const now = await metric(srv, 'parley_connections');
    if (now <= n + 1) return;
    assert.ok(Date.now() < deadline, `still ${now - 1} connections, waiting for ${n}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('pipelined HTTP requests', () => {
  const srv = useServer();

  test('two signups in one write get two responses, in order, and the connection stays usable', async () => {
    const c = await rawHttp(srv);
    const [u1, u2] = [uname('pipe'), uname('pipe')];
    await c.write(signupRequest(srv, u1) + signupRequest(srv, u2));
    const r1 = await c.response(0);
    const r2 = await c.response(1);
    assert.equal(r1.status, 201, r1.body);
    assert.equal(r2.status, 201, r2.body);
    assert.equal(r1.json.user.username, u1, 'the first response answers the first request');
    assert.equal(r2.json.user.username, u2);
    await c.write(getRequest(srv, '/healthz'));
    assert.equal((await c.response(2)).status, 200);
    c.destroy();
  });

  test('/api/me then a signup then /api/me in one write: three responses in order', async () => {
    const { token } = await signup(srv, uname('me'));
    const c = await rawHttp(srv);
    const u = uname('pipe');
    const me = getRequest(srv, '/api/me', `Authorization: Bearer ${token}\r\n`);
    await c.write(me + signupRequest(srv, u) + me);
    const rs = [await c.response(0), await c.response(1), await c.response(2)];
    assert.deepEqual(rs.map((r) => r.status), [200, 201, 200], rs.map((r) => r.body).join('\n'));
    assert.equal(rs[1].json.user.username, u);
    assert.equal(rs[0].body, rs[2].body);
    c.destroy();
  });

  test('the pipelined accounts exist: each can log in', async () => {
    const c = await rawHttp(srv);
    const [u1, u2] = [uname('pl'), uname('pl')];
    await c.write(signupRequest(srv, u1) + signupRequest(srv, u2));
    await c.response(1);
    for (const u of [u1, u2]) {
      const res = await http(srv, 'POST', '/api/login', { json: { username: u, password: PASSWORD } });
      assert.equal(res.status, 200, `${u}: ${res.text}`);
    }
    c.destroy();
  });
});

describe('shutdown is bounded', () => {
  test('SIGTERM with a connection of pipelined signups open exits within 10 s', async () => {
    const srv = await startServer();
    try {
      const c = await rawHttp(srv);
      await c.write(signupRequest(srv, uname('st')) + signupRequest(srv, uname('st')));
      await c.response(0);
      const t0 = Date.now();
      await srv.stop(10000); // throws if the process has not exited in 10 s
      assert.ok(Date.now() - t0 < 10000);
    } finally {
      await srv.dispose();
    }
  });

  test('SIGTERM with a client that pipelined requests and reads nothing exits within 10 s', async () => {
    const srv = await startServer();
    try {
      await fs.writeFile(path.join(srv.webDir, 'assets', 'big.js'), Buffer.alloc(256 * 1024, 'a'));
      const sock = await unreadSocket(srv);
      await write(sock, getRequest(srv, '/assets/big.js').repeat(200));
      // The server has read and answered some of them once its counter moved.
      const before = await metric(srv, 'parley_bytes_out_total');
      for (let i = 0; i < 200 && (await metric(srv, 'parley_bytes_out_total')) - before < 2 * MiB; i++);
      const t0 = Date.now();
      await srv.stop(10000);
      assert.ok(Date.now() - t0 < 10000);
      sock.destroy();
    } finally {
      await srv.dispose();
    }
  });
});

describe('unread pipelined responses', () => {
  // A short idle time: a connection that stopped reading because its answers are not read is
  // closed once nothing was written to it for that long, which ends the test.
  const srv = useServer({ env: { PARLEY_HTTP_IDLE_MS: '1000' } });

  test('1000 pipelined GETs of a 128 KiB file never read: the server stops at about outq_max plus the kernel buffers', async (t) => {
    await fs.writeFile(path.join(srv.webDir, 'assets', 'bundle.js'), Buffer.alloc(128 * 1024, 'b'));
    const outBefore = await metric(srv, 'parley_bytes_out_total');
    const rssBefore = await peakRss(srv);
    const conns = (await metric(srv, 'parley_connections')) - 1;
    const sock = await unreadSocket(srv);
    sock.on('error', () => {});
    await write(sock, getRequest(srv, '/assets/bundle.js').repeat(1000)); // 128 MiB of answers
    await waitConnections(srv, conns); // closed by the server after the idle time without progress
    const out = (await metric(srv, 'parley_bytes_out_total')) - outBefore;
    const rss = (await peakRss(srv)) - rssBefore;
    sock.destroy();
    t.diagnostic(`queued ${(out / MiB).toFixed(1)} MiB, peak RSS +${(rss / MiB).toFixed(1)} MiB`);
    // The bound is outq_max (1 MiB) plus what the kernel's socket buffers absorbed (a few MiB on
    // loopback). Without it the server queued all 128 MiB at once.
    assert.ok(out < 32 * MiB, `bytes queued for the connection: ${(out / MiB).toFixed(1)} MiB`);
    assert.ok(rss < 96 * MiB, `peak RSS grew by ${(rss / MiB).toFixed(1)} MiB`);
  });

  test('a client that reads gets every pipelined response, in order', async () => {
    await fs.writeFile(path.join(srv.webDir, 'assets', 'bundle2.js'), Buffer.alloc(128 * 1024, 'c'));
    const c = await rawHttp(srv);
    const n = 40; // 5 MiB: several rounds of the outq_max bound
    let reqs = '';
    for (let i = 0; i < n; i++) reqs += getRequest(srv, i % 2 ? '/assets/bundle2.js' : '/healthz');
    await c.write(reqs);
    const last = await c.response(n - 1, { timeout: TIMEOUT_MS * 2 });
    assert.equal(last.status, 200);
    for (let i = 0; i < n; i++) {
      const r = c.responses[i];
      assert.equal(r.status, 200);
      if (i % 2) assert.equal(r.body.length, 128 * 1024, `response ${i}`);
      else assert.deepEqual(r.json, { ok: true }, `response ${i}`);
    }
    c.destroy();
  });
});

describe('ping floods', () => {
  describe('rate', () => {
    const srv = useServer({ env: { PARLEY_RATE_LIMITS: '1', PARLEY_OP_RATE: '50', PARLEY_OP_BURST: '200' } });

    test('1000 pings in one write: at most the op burst is answered, then close 1008', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat(Array.from({ length: 1000 }, () => encodeFrame(OP.PING))));
      const { code } = await ws.waitClose({ what: 'close 1008 for too many pings' });
      assert.equal(code, 1008, ws.describe());
      const pongs = ws.frames.filter((f) => f.opcode === OP.PONG).length;
      assert.ok(pongs >= 150 && pongs <= 210, `pongs before the close: ${pongs}`);
      ws.destroy();
    });

    test('pings at a normal pace are all answered', async () => {
      const ws = await rawWs(srv);
      for (let i = 0; i < 20; i++) {
        await ws.write(encodeFrame(OP.PING, `p${i}`));
        await ws.waitFrame((f) => f.opcode === OP.PONG && f.payload.toString() === `p${i}`, { what: `pong ${i}` });
      }
      ws.destroy();
    });
  });

  describe('caps', () => {
    // Rate limits off (the default of useServer): only the caps stand between a ping flood and
    // the server's memory.
    const srv = useServer({ env: { PARLEY_OUTQ_MAX: '65536', PARLEY_OUTQ_HARD_MAX: '262144' } });

    test('a client that pings and never reads is closed with 4008 once its pongs pass the cap', async (t) => {
      const closesBefore = await metric(srv, 'parley_slow_consumer_closes_total');
      const rssBefore = await peakRss(srv);
      const ws = await rawWs(srv);
      ws.sock.pause();
      const batch = Buffer.concat(Array.from({ length: 8000 }, () => encodeFrame(OP.PING, Buffer.alloc(125, 'p')))); // ~1 MiB
      let sent = 0;
      let closes = closesBefore;
      // Up to 96 MiB of pings; the cap (256 KiB) plus the kernel buffers stop it long before.
      while (sent < 96 * MiB && closes === closesBefore) {
        if (!(await ws.write(batch))) break;
        sent += batch.length;
        closes = await metric(srv, 'parley_slow_consumer_closes_total');
      }
      assert.equal(closes, closesBefore + 1, `no slow-consumer close after ${(sent / MiB).toFixed(0)} MiB of pings`);
      const rss = (await peakRss(srv)) - rssBefore;
      t.diagnostic(`closed after ${(sent / MiB).toFixed(0)} MiB of pings, peak RSS +${(rss / MiB).toFixed(1)} MiB`);
      assert.ok(rss < 96 * MiB, `peak RSS grew by ${(rss / MiB).toFixed(1)} MiB`);
      ws.sock.resume();
      const { code } = await ws.waitClose({ what: 'close 4008', timeout: TIMEOUT_MS * 2 });
      assert.equal(code, 4008);
      ws.destroy();
    });
  });
});

describe('empty text frame right after auth', () => {
  const srv = useServer();

  test('is answered as a bad request; the server stays up', async () => {
    const { token } = await signup(srv, uname('empty'));
    const auth = encodeFrame(OP.TEXT, JSON.stringify({ id: 1, op: 'auth', token }));
    const ws = await rawWs(srv, { extra: Buffer.concat([auth, encodeFrame(OP.TEXT, '')]) });
    const authReply = await ws.waitJson((j) => j.id === 1);
    assert.equal(authReply.ok, true, JSON.stringify(authReply));
    const err = await ws.waitJson((j) => j.ok === false, { what: 'the error for the empty message' });
    assert.equal(err.error.code, 'bad_request', JSON.stringify(err));
    await ws.text(JSON.stringify({ id: 2, op: 'ping' }));
    assert.equal((await ws.waitReply(2)).ok, true);
    ws.destroy();
  });
});
