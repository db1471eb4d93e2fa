// 31 - HTTP/1.1 conformance over raw sockets: pipelining, partial requests, header and body caps
// (431, 413), malformed requests (400), path traversal on static files, HEAD, keep-alive, and the
// WebSocket opening handshake's failure cases (RFC 6455 4.2.1/4.2.2).
//
// Requests are written by hand with node:net (lib/raw.mjs) so that exactly the bytes under test
// reach the server; responses are parsed from the byte stream, which also checks their framing
// (a stray body byte would corrupt the next response on a keep-alive connection).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';

import { rawHttp } from './lib/raw.mjs';
import { INDEX_MARKER, useServer } from './lib/server.mjs';

const GET = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

// Sends `bytes` on a fresh connection and resolves with the first response.
async function once(srv, bytes) {
  const h = await rawHttp(srv);
  try {
    await h.write(bytes);
    return await h.response(0);
  } finally {
    h.destroy();
  }
}

// Asserts the response is a JSON error with that status (and code when given).
function assertError(res, status, code, what) {
  assert.equal(res.status, status, `${what}: ${res.head}\n${res.body.slice(0, 300)}`);
  if (code) assert.equal(res.json?.error?.code, code, `${what}: ${res.body.slice(0, 300)}`);
}

describe('HTTP conformance', () => {
  const srv = useServer();

  describe('pipelining and partial requests', () => {
    test('three pipelined GETs in one write are answered in order on one connection', async () => {
      const h = await rawHttp(srv);
      await h.write(GET('/healthz') + GET('/api/nope') + GET('/assets/app.js'));
      const [a, b, c] = [await h.response(0), await h.response(1), await h.response(2)];
      assert.equal(a.status, 200);
      assert.deepEqual(a.json, { ok: true });
      assert.equal(b.status, 404);
      assert.equal(b.json?.error?.code, 'not_found');
      assert.equal(c.status, 200);
      assert.match(c.body, /console\.log\("parley"\)/);
      // The connection is still usable afterwards.
      await h.write(GET('/healthz'));
      assert.equal((await h.response(3)).status, 200);
      assert.equal(h.ended, false);
      h.destroy();
    });

    test('a pipelined POST with a body, then a GET: the body boundary is respected', async () => {
      const h = await rawHttp(srv);
      const body = JSON.stringify({ username: 'nobody_here', password: 'wrong password' });
      await h.write(
        `POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` +
          GET('/healthz'),
      );
      const login = await h.response(0);
      assertError(login, 401, 'unauthorized', 'login of an unknown user');
      const health = await h.response(1);
      assert.equal(health.status, 200, health.head);
      h.destroy();
    });

    test('ten pipelined requests in one write: ten responses, in order', async () => {
      const h = await rawHttp(srv);
      const paths = Array.from({ length: 10 }, (_, i) => (i % 2 ? '/healthz' : `/api/missing-${i}`));
      await h.write(paths.map((p) => GET(p)).join(''));
      const statuses = [];
      for (let i = 0; i < 10; i++) statuses.push((await h.response(i)).status);
      assert.deepEqual(statuses, paths.map((p) => (p === '/healthz' ? 200 : 404)));
      h.destroy();
    });

    test('a GET sent in 1-byte writes is answered', async () => {
      const h = await rawHttp(srv);
      await h.writeChopped(GET('/healthz', 'User-Agent: chopped\r\n'), 1);
      const res = await h.response(0);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { ok: true });
      h.destroy();
    });

    test('a POST with its body sent in 1-byte writes is answered', async () => {
      const h = await rawHttp(srv);
      const body = JSON.stringify({ username: 'nobody_chopped', password: 'wrong password' });
      await h.writeChopped(
        `POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        1,
      );
      assertError(await h.response(0), 401, 'unauthorized', 'chopped login');
      h.destroy();
    });

    test('a chunked request body is reassembled', async () => {
      const h = await rawHttp(srv);
      const body = JSON.stringify({ username: 'nobody_chunked', password: 'wrong password' });
      const chunks = [body.slice(0, 10), body.slice(10)].map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('');
      await h.write(`POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
      assertError(await h.response(0), 401, 'unauthorized', 'chunked login');
      h.destroy();
    });
  });

  describe('limits', () => {
    test('one header over 8 KiB: 431, and the connection is closed', async () => {
      const h = await rawHttp(srv);
      await h.write(GET('/healthz', `X-Filler: ${'a'.repeat(9000)}\r\n`));
      assertError(await h.response(0), 431, 'too_large', 'big header');
      await h.waitEnd();
    });

    test('many small headers adding up to over 8 KiB: 431', async () => {
      const extra = Array.from({ length: 200 }, (_, i) => `X-H${i}: ${'b'.repeat(40)}\r\n`).join('');
      assertError(await once(srv, GET('/healthz', extra)), 431, 'too_large', 'many headers');
    });

    test('a request line (URL) over 8 KiB: 431 (or 414)', async () => {
      const res = await once(srv, GET(`/${'u'.repeat(9000)}`));
      assert.ok([431, 414].includes(res.status), res.head);
    });

    test('headers just under 8 KiB are accepted', async () => {
      const res = await once(srv, GET('/healthz', `X-Filler: ${'a'.repeat(7900)}\r\n`));
      assert.equal(res.status, 200, res.head);
    });

    test('a body of 64 KiB + 1 byte actually sent: 413', async () => {
      const body = 'x'.repeat(64 * 1024 + 1);
      const res = await once(srv, `POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      assertError(res, 413, 'too_large', 'body over the cap');
    });

    test('a client that goes on sending a 1.5 MiB body after the 413 reads the answer, not a reset', async () => {
      // The server answers after 64 KiB. Closing with the rest unread would send RST: the
      // client's next writes fail and it may lose the answer (fetch reports "fetch failed"). It
      // lingers instead: FIN, then it discards what still comes (bounded) until the client's EOF.
      const h = await rawHttp(srv);
      try {
        const size = 1536 * 1024;
        await h.write(`POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
        const piece = Buffer.alloc(64 * 1024, 'z');
        for (let sent = 0; sent < size; sent += piece.length) {
          await h.write(piece);
          assert.equal(h.error, undefined, `write failed after ${sent} bytes: ${h.error?.code}`);
        }
        assertError(await h.response(0), 413, 'too_large', 'oversized body sent whole');
        h.sock.end(); // our EOF: the server closes its side at once
        await h.waitEnd();
        assert.equal(h.error, undefined, `the connection was reset: ${h.error?.code}`);
      } finally {
        h.destroy();
      }
    });

    test('a declared Content-Length over the cap is refused before the body arrives', async () => {
      const h = await rawHttp(srv);
      await h.write('POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n');
      assertError(await h.response(0), 413, 'too_large', 'declared 1 GB');
      await h.waitEnd();
    });

    test('a chunked body over the cap: 413', async () => {
      const chunk = 'y'.repeat(16 * 1024);
      const chunks = Array.from({ length: 5 }, () => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('');
      const res = await once(srv, `POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`);
      assertError(res, 413, 'too_large', 'chunked body over the cap');
    });

    test('a body of exactly 64 KiB is not refused as too large', async () => {
      const body = 'x'.repeat(64 * 1024);
      const res = await once(srv, `POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      assertError(res, 400, 'bad_request', 'a 64 KiB non-JSON body');
    });
  });

  describe('malformed requests: 400', () => {
    const cases = [
      ['an invalid method token', 'G@T / HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['an unknown method', 'BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['binary garbage', '\x00\x01\x02\x03garbage\xff\xfe\r\n\r\n'],
      ['plain text', 'THIS IS NOT HTTP\r\n\r\n'],
      ['a bad protocol name', 'GET / FTP/1.1\r\nHost: x\r\n\r\n'],
      ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n'],
      ['a NUL byte in a header value', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
      ['both Content-Length and Transfer-Encoding (smuggling)', 'POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['two different Content-Length values', 'POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x'],
      ['a non-numeric Content-Length', 'POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'],
      ['an invalid chunk size', 'POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ];
    for (const [name, bytes] of cases) {
      test(`${name}: 400 and the connection is closed`, async () => {
        const h = await rawHttp(srv);
        await h.write(Buffer.from(bytes, 'latin1'));
        const res = await h.response(0);
        assertError(res, 400, 'bad_request', name);
        await h.waitEnd();
      });
    }

    test('a request line without a version (HTTP/0.9 form): 400, or answered and closed', async () => {
      // llhttp parses "GET /" as an HTTP/0.9 request; RFC 9112 does not require 0.9 support.
      const h = await rawHttp(srv);
      await h.write('GET /\r\nHost: x\r\n\r\n');
      const res = await h.response(0);
      assert.ok(res.status === 400 || /close/i.test(res.headers.connection ?? ''), res.head);
      await h.waitEnd();
    });

    test('the server stays healthy after the malformed requests', async () => {
      const res = await once(srv, GET('/healthz'));
      assert.equal(res.status, 200);
    });
  });

  describe('static files: path traversal', () => {
    const paths = [
      '/../secret.txt',
      '/../../../../../../etc/passwd',
      '/assets/../../secret.txt',
      '/assets/../index.html',
      '/./../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E/%2E%2E/etc/passwd',
      '/.%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/%252e%252e/secret.txt',
      '//etc/passwd',
      '//secret.txt',
      '/assets//..//..//secret.txt',
      '/..\\secret.txt',
      '/assets\\..\\..\\secret.txt',
      '/..%5csecret.txt',
      '/%c0%ae%c0%ae/secret.txt',
      '/index.html%00.js',
    ];
    for (const p of paths) {
      test(`GET ${p}: 404, nothing outside the web directory`, async () => {
        const res = await once(srv, GET(p));
        assert.ok(!res.body.includes('TOP-SECRET'), `${p} leaked a file outside the web root`);
        assert.ok(!/root:.*:0:0:/.test(res.body), `${p} leaked /etc/passwd`);
        assert.equal(res.status, 404, `${p}: ${res.head}\n${res.body.slice(0, 200)}`);
      });
    }

    test('an absolute-form request target with a traversal: never a file outside', async () => {
      const res = await once(srv, 'GET http://x/../secret.txt HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.ok(!res.body.includes('TOP-SECRET'));
      assert.ok([400, 404].includes(res.status), res.head);
    });

    test('a directory is not listed or served as a file', async () => {
      const res = await once(srv, GET('/assets/'));
      assert.ok(!res.body.includes('app.js'), res.body.slice(0, 200));
    });
  });

  describe('HEAD and keep-alive', () => {
    test('HEAD / has the headers of GET / and no body', async () => {
      const h = await rawHttp(srv);
      await h.write(GET('/'));
      const get = await h.response(0);
      assert.equal(get.status, 200);
      assert.ok(get.body.includes(INDEX_MARKER));
      h.expectHead(1);
      await h.write('HEAD / HTTP/1.1\r\nHost: x\r\n\r\n');
      const head = await h.response(1);
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-type'], get.headers['content-type']);
      // RFC 9110 8.6: a Content-Length in a HEAD response must be the GET response's.
      if (head.headers['content-length'] !== undefined) {
        assert.equal(head.headers['content-length'], get.headers['content-length'], `HEAD / Content-Length:\n${head.head}`);
      }
      // No body bytes: the next response on the connection must start right after the head.
      await h.write(GET('/healthz'));
      const next = await h.response(2);
      assert.equal(next.status, 200, `the response after HEAD: ${JSON.stringify(h.raw.slice(-400))}`);
      h.destroy();
    });

    test('HEAD /healthz has no body (the next response on the connection parses)', async () => {
      const h = await rawHttp(srv);
      h.expectHead(0);
      await h.write('HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n' + GET('/healthz'));
      const head = await h.response(0);
      assert.equal(head.status, 200);
      const next = await h.response(1);
      assert.equal(next.status, 200, `bytes after the HEAD response's head: ${JSON.stringify(h.raw)}`);
      assert.deepEqual(next.json, { ok: true });
      h.destroy();
    });

    test('HEAD on an unknown file is 404 with no body', async () => {
      const h = await rawHttp(srv);
      h.expectHead(0);
      await h.write('HEAD /assets/missing.js HTTP/1.1\r\nHost: x\r\n\r\n' + GET('/healthz'));
      assert.equal((await h.response(0)).status, 404);
      const next = await h.response(1);
      assert.equal(next.status, 200, `bytes after the HEAD response's head: ${JSON.stringify(h.raw)}`);
      h.destroy();
    });

    test('keep-alive: five sequential requests on one connection', async () => {
      const h = await rawHttp(srv);
      for (let i = 0; i < 5; i++) {
        await h.write(GET(i % 2 ? '/' : '/healthz'));
        const res = await h.response(i);
        assert.equal(res.status, 200);
        assert.match(res.headers.connection ?? 'keep-alive', /keep-alive/i);
      }
      assert.equal(h.ended, false);
      h.destroy();
    });

    test('Connection: close: answered, then the server closes', async () => {
      const h = await rawHttp(srv);
      await h.write(GET('/healthz', 'Connection: close\r\n'));
      const res = await h.response(0);
      assert.equal(res.status, 200);
      assert.match(res.headers.connection ?? '', /close/i);
      await h.waitEnd();
    });

    test('HTTP/1.0 without keep-alive: answered, then the server closes', async () => {
      const h = await rawHttp(srv);
      await h.write('GET /healthz HTTP/1.0\r\n\r\n');
      assert.equal((await h.response(0)).status, 200);
      await h.waitEnd();
    });

    test('requests pipelined behind a Connection: close request are not answered', async () => {
      const h = await rawHttp(srv);
      await h.write(GET('/healthz', 'Connection: close\r\n') + GET('/api/nope'));
      assert.equal((await h.response(0)).status, 200);
      await h.waitEnd();
      assert.equal(h.responses.length, 1, h.raw);
    });
  });

  describe('WebSocket opening handshake failures', () => {
    const key = () => crypto.randomBytes(16).toString('base64');
    const upgrade = (lines) => `GET /ws HTTP/1.1\r\nHost: x\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`;

    test('a valid upgrade gets 101 (control)', async () => {
      const res = await once(srv, upgrade(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 13']));
      assert.equal(res.status, 101, res.head);
    });

    test('no Sec-WebSocket-Key: 400', async () => {
      const res = await once(srv, upgrade(['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13']));
      assertError(res, 400, 'bad_request', 'no key');
    });

    test('Sec-WebSocket-Version 8: refused (400/426) with Sec-WebSocket-Version: 13 (RFC 6455 4.2.2)', async () => {
      const res = await once(srv, upgrade(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 8']));
      assert.ok([400, 426].includes(res.status), res.head);
      assert.match(res.headers['sec-websocket-version'] ?? '', /\b13\b/, `RFC 6455 4.4: the refusal must name the supported version:\n${res.head}`);
    });

    test('regression (fuzz_http): a refused upgrade closes the connection; bytes after it cannot crash the server', async () => {
      const h = await rawHttp(srv);
      // Version 8 is refused with 400; one more byte used to reach the app as an empty request.
      await h.write(upgrade(['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 8']) + 'G');
      const res = await h.response(0);
      assert.equal(res.status, 400, res.head);
      assert.match(res.headers.connection ?? '', /close/i);
      await h.waitEnd();
      // The server is alive and well.
      const ok = await once(srv, GET('/healthz'));
      assert.equal(ok.status, 200);
    });

    test('no Sec-WebSocket-Version: 400', async () => {
      const res = await once(srv, upgrade(['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key()}`]));
      assertError(res, 400, 'bad_request', 'no version');
    });

    test('a Sec-WebSocket-Key that is not 16 bytes in base64: 400 (RFC 6455 4.2.1)', async () => {
      const res = await once(srv, upgrade(['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: short', 'Sec-WebSocket-Version: 13']));
      assert.equal(res.status, 400, res.head);
    });

    test('Upgrade: websocket without Connection: Upgrade: 400', async () => {
      const res = await once(srv, upgrade(['Upgrade: websocket', `Sec-WebSocket-Key: ${key()}`, 'Sec-WebSocket-Version: 13']));
      assertError(res, 400, 'bad_request', 'no Connection: Upgrade');
    });

    test('a plain GET /ws (no upgrade): 400', async () => {
      assertError(await once(srv, GET('/ws')), 400, 'bad_request', 'plain GET /ws');
    });

    test('an upgrade with POST: not a 101', async () => {
      const res = await once(srv, `POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key()}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n`);
      assert.equal(res.status, 400, res.head);
    });

    test('an upgrade over HTTP/1.0: not a 101 (RFC 6455 4.1 requires HTTP/1.1)', async () => {
      const res = await once(srv, `GET /ws HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key()}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      assert.notEqual(res.status, 101, res.head);
    });
  });
});
