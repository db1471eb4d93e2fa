// 01 - HTTP basics: health, metrics, static files, JSON errors, size limits, keep-alive.

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, test } from 'node:test';

import { http as request } from './lib/client.mjs';
import { INDEX_MARKER, useServer } from './lib/server.mjs';

const srv = useServer();

// One raw HTTP exchange over TCP (for what fetch would normalise or refuse to send). Resolves
// with everything the server sent until it closed the connection or `timeout` passed.
function rawExchange(port, text, { timeout = 3000, untilClose = false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(data);
    }, timeout);
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(text));
    sock.on('data', (d) => {
      data += d;
      // One complete response is enough: stop at the end of its body.
      const m = /\r\n\r\n/.exec(data);
      const len = /content-length:\s*(\d+)/i.exec(data);
      if (!untilClose && m && len && data.length >= m.index + 4 + Number(len[1])) {
        clearTimeout(timer);
        sock.destroy();
        resolve(data);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      if (data) resolve(data);
      else reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

const statusOf = (raw) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1]);

describe('health and metrics', () => {
  test('GET /healthz answers 200 {"ok": true} as JSON', async () => {
    const res = await request(srv, 'GET', '/healthz');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(res.json, { ok: true });
  });

  test('GET /metrics answers Prometheus text', async () => {
    const res = await request(srv, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain/);
    assert.match(res.text, /^[a-z_:][a-z0-9_:]*(\{[^}]*\})? [0-9.eE+-]+$/m, 'at least one sample line');
  });
});

describe('static web app', () => {
  test('GET / serves index.html from the web directory', async () => {
    const res = await request(srv, 'GET', '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.ok(res.text.includes(INDEX_MARKER), res.text.slice(0, 200));
  });

  test('a file under the web directory is served with its content type', async () => {
    const res = await request(srv, 'GET', '/assets/app.js');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /javascript/);
    assert.equal(res.text, 'console.log("parley");\n');
  });

  test('an unknown path without a dot serves index.html (client-side routes)', async () => {
    const res = await request(srv, 'GET', '/chats/design-review');
    assert.equal(res.status, 200);
    assert.ok(res.text.includes(INDEX_MARKER));
  });

  test('an unknown file with an extension is 404', async () => {
    const res = await request(srv, 'GET', '/assets/missing.js');
    assert.equal(res.status, 404);
    assert.ok(!res.text.includes(INDEX_MARKER));
  });

  test('path traversal never leaves the web directory', async () => {
    for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
      const raw = await rawExchange(srv.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const status = statusOf(raw);
      assert.ok(status >= 200, `${path}: no HTTP response: ${JSON.stringify(raw.slice(0, 100))}`);
      assert.ok(!raw.includes('TOP-SECRET'), `${path} leaked a file outside the web root`);
    }
  });
});

describe('API errors', () => {
  test('an unknown /api path is 404 with a JSON error body', async () => {
    const res = await request(srv, 'GET', '/api/does-not-exist');
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    assert.equal(res.json?.error?.code, 'not_found', res.text);
    assert.equal(typeof res.json.error.message, 'string');
  });

  test('a request body over 64 KiB is 413 too_large', async () => {
    const big = JSON.stringify({ username: 'big_body', password: 'x'.repeat(70 * 1024) });
    const res = await request(srv, 'POST', '/api/signup', { body: big, headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 413);
    assert.equal(res.json?.error?.code, 'too_large', res.text);
  });

  test('a declared Content-Length over 64 KiB is refused with 413', async () => {
    const raw = await rawExchange(
      srv.port,
      'POST /api/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 10000000\r\n\r\n{"username":',
    );
    assert.equal(statusOf(raw), 413, raw.slice(0, 300));
  });

  test('request headers over 8 KiB are refused with 431', async () => {
    const raw = await rawExchange(
      srv.port,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(9000)}\r\n\r\n`,
    );
    assert.equal(statusOf(raw), 431, raw.slice(0, 300));
  });

  test('a malformed request line is answered 400', async () => {
    const raw = await rawExchange(srv.port, 'THIS IS NOT HTTP\r\n\r\n');
    assert.equal(statusOf(raw), 400, JSON.stringify(raw.slice(0, 300)));
  });

  test('a non-JSON body on /api/signup is 400 bad_request', async () => {
    const res = await request(srv, 'POST', '/api/signup', { body: 'username=ana', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400);
    assert.equal(res.json?.error?.code, 'bad_request', res.text);
  });

  test('the server stays healthy after the bad requests above', async () => {
    const res = await request(srv, 'GET', '/healthz');
    assert.equal(res.status, 200);
  });
});

describe('connection handling', () => {
  test('keep-alive: several requests are served on one connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set();
    try {
      for (let i = 0; i < 3; i++) {
        const { status, body, socket } = await new Promise((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: srv.port, path: '/healthz', agent }, (res) => {
            let b = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (b += d));
            res.on('end', () => resolve({ status: res.statusCode, body: b, socket: req.socket }));
          });
          req.on('error', reject);
        });
        assert.equal(status, 200);
        assert.deepEqual(JSON.parse(body), { ok: true });
        sockets.add(socket);
      }
      assert.equal(sockets.size, 1, 'all three requests should reuse one TCP connection');
    } finally {
      agent.destroy();
    }
  });

  test('pipelined requests are answered in order', async () => {
    const raw = await rawExchange(
      srv.port,
      'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      { untilClose: true },
    );
    const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 404], raw.slice(0, 500));
  });

  test('Connection: close is honoured', async () => {
    const closed = await new Promise((resolve, reject) => {
      const sock = net.connect(srv.port, '127.0.0.1');
      let data = '';
      const timer = setTimeout(() => {
        sock.destroy();
        resolve({ closed: false, data });
      }, 3000);
      sock.on('connect', () => sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      sock.on('data', (d) => (data += d));
      sock.on('end', () => {
        clearTimeout(timer);
        resolve({ closed: true, data });
      });
      sock.on('error', reject);
    });
    assert.equal(statusOf(closed.data), 200);
    assert.ok(closed.closed, 'the server should close the connection after the response');
  });
});
