// 68 - Avatars and password changes (issue 18).
//
// POST /api/avatar takes the raw picture (PNG, JPEG or WebP, at most 1 MiB: the one route with a
// body limit over 64 KiB). It is decoded, so anything that is not a whole picture of its
// Content-Type is 400; scaled to fit 256x256 and encoded again, so no metadata survives; stored
// by content hash and served at /avatars/<hash>.<ext> with immutable cache headers; user objects
// and user.updated carry the path. POST /api/password checks the current password like a login
// (same throttle), ends every other session of the user (their sockets close with 4001) and
// keeps the current one.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, describe, test } from 'node:test';

import { PASSWORD, connect, http, login, makeChat, signupMany } from './lib/client.mjs';
import { rawHttp } from './lib/raw.mjs';
import { ROOT, useServer } from './lib/server.mjs';

const fixture = (name) => fs.readFileSync(path.join(ROOT, 'tests/integration/fixtures', name));
const PNG = fixture('avatar-300x200.png');
const JPEG = fixture('avatar-300x200.jpg');
const WEBP = fixture('avatar-300x200.webp');
const SECRET = 'GPS 48.8584 2.2945 secret-marker';

// A PNG chunk with its CRC (PNG spec 5.3).
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([len, body, crc]);
}
// The fixture with a tEXt chunk (metadata) before IEND.
const pngWithText = () =>
  Buffer.concat([PNG.subarray(0, PNG.length - 12), chunk('tEXt', Buffer.from(`Comment\0${SECRET}`)), PNG.subarray(PNG.length - 12)]);
// The fixture claiming other dimensions in its IHDR (CRC fixed, so only the size is wrong).
function pngSized(w, h) {
  const ihdr = Buffer.from(PNG.subarray(16, 29));
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  return Buffer.concat([PNG.subarray(0, 8), chunk('IHDR', ihdr), PNG.subarray(33)]);
}
// The JPEG with a comment segment (COM, FF FE) right after SOI.
function jpegWithComment() {
  const text = Buffer.from(SECRET);
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xfffe, 0);
  seg.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([JPEG.subarray(0, 2), seg, text, JPEG.subarray(2)]);
}
const pngSize = (buf) => [buf.readUInt32BE(16), buf.readUInt32BE(20)];

async function upload(srv, who, body, type = 'image/png') {
  return http(srv, 'POST', '/api/avatar', { token: who.token, body, headers: { 'content-type': type } });
}

describe('avatars', () => {
  const srv = useServer();
  const open = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });
  async function conn(u) {
    const c = await connect(srv, { token: u.token });
    open.push(c);
    return c;
  }

  test('a PNG is re-encoded at 256 px without its metadata, served immutable, told live', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a = await conn(ana);
    const b = await conn(ben);
    const chat = await makeChat(a, { title: 'faces', join: [b] });

    const res = await upload(srv, ana, pngWithText());
    assert.equal(res.status, 200, res.text);
    const avatar = res.json.user.avatar;
    assert.match(avatar, /^\/avatars\/[0-9a-f]{64}\.png$/);
    const ev = await b.waitFor((e) => e.ev === 'user.updated' && e.user.id === ana.user.id);
    assert.equal(ev.user.avatar, avatar);

    const img = await fetch(srv.url + avatar);
    assert.equal(img.status, 200);
    assert.equal(img.headers.get('content-type'), 'image/png');
    assert.equal(img.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const bytes = Buffer.from(await img.arrayBuffer());
    assert.deepEqual(pngSize(bytes), [256, 171]);
    assert.equal(bytes.includes(Buffer.from('secret-marker')), false, 'metadata stripped');

    // Everywhere a user object is read.
    assert.equal((await http(srv, 'GET', '/api/me', { token: ana.token })).json.user.avatar, avatar);
    const parts = (await b.ok('chat.get', { chat })).participants;
    assert.equal(parts.find((p) => p.id === ana.user.id).avatar, avatar);
    const hit = (await b.ok('users.search', { q: ana.user.username })).users[0];
    assert.equal(hit.avatar, avatar);
    const fresh = await conn(ana);
    assert.equal(fresh.user.avatar, avatar);

    // Removed: null everywhere, and the picture nobody has any more is gone.
    const del = await http(srv, 'DELETE', '/api/avatar', { token: ana.token });
    assert.equal(del.status, 200, del.text);
    assert.equal(del.json.user.avatar, null);
    await b.waitFor((e) => e.ev === 'user.updated' && e.user.id === ana.user.id && e.user.avatar === null);
    assert.equal((await fetch(srv.url + avatar)).status, 404);
  });

  test('a picture over the 64 KiB of other routes is accepted (the route has its own 1 MiB)', async () => {
    const [ana] = await signupMany(srv, ['ana']);
    const fat = Buffer.concat([
      PNG.subarray(0, PNG.length - 12),
      chunk('tEXt', Buffer.concat([Buffer.from('Comment\0'), Buffer.alloc(300 * 1024, 0x61)])),
      PNG.subarray(PNG.length - 12),
    ]);
    assert.ok(fat.length > 300 * 1024);
    const res = await upload(srv, ana, fat);
    assert.equal(res.status, 200, res.text);
    const img = Buffer.from(await (await fetch(srv.url + res.json.user.avatar)).arrayBuffer());
    assert.ok(img.length < 64 * 1024, `stored ${img.length} bytes: the comment is gone`);
  });

  test('JPEG and WebP, by content: the same picture is one file', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const j = await upload(srv, ana, jpegWithComment(), 'image/jpeg');
    assert.equal(j.status, 200, j.text);
    assert.match(j.json.user.avatar, /\.jpg$/);
    const jimg = await fetch(srv.url + j.json.user.avatar);
    assert.equal(jimg.headers.get('content-type'), 'image/jpeg');
    assert.equal(Buffer.from(await jimg.arrayBuffer()).includes(Buffer.from('secret-marker')), false);

    const w1 = await upload(srv, ana, WEBP, 'image/webp');
    const w2 = await upload(srv, ben, WEBP, 'image/webp');
    assert.equal(w1.status, 200, w1.text);
    assert.match(w1.json.user.avatar, /\.webp$/);
    assert.equal(w2.json.user.avatar, w1.json.user.avatar, 'stored once by content hash');
    assert.equal((await fetch(srv.url + j.json.user.avatar)).status, 404, "Ana's old JPEG went");
    await http(srv, 'DELETE', '/api/avatar', { token: ana.token });
    const still = await fetch(srv.url + w1.json.user.avatar);
    assert.equal(still.status, 200, 'Ben still has it');
    assert.equal(still.headers.get('content-type'), 'image/webp');
  });

  test('bad input: unauthorised, wrong type, not a picture, too large', async () => {
    const [ana] = await signupMany(srv, ['ana']);
    const expect = async (res, status, code) => {
      assert.equal(res.status, status, res.text);
      if (code) assert.equal(res.json.error.code, code);
    };
    await expect(await http(srv, 'POST', '/api/avatar', { body: PNG, headers: { 'content-type': 'image/png' } }), 401);
    await expect(await http(srv, 'DELETE', '/api/avatar', {}), 401);
    await expect(await upload(srv, { token: 'x'.repeat(43) }, PNG), 401);
    await expect(await upload(srv, ana, PNG, 'text/plain'), 400, 'bad_request');
    await expect(await upload(srv, ana, PNG, 'image/gif'), 400, 'bad_request');
    await expect(await upload(srv, ana, JPEG, 'image/png'), 400, 'bad_request');
    await expect(await upload(srv, ana, Buffer.alloc(0)), 400, 'bad_request');
    // A PNG signature and header, then garbage where the pixels should be.
    const garbage = Buffer.concat([PNG.subarray(0, 33), Buffer.alloc(2000, 0x5a)]);
    await expect(await upload(srv, ana, garbage), 400, 'bad_request');
    // Cut in the middle.
    await expect(await upload(srv, ana, PNG.subarray(0, PNG.length >> 1)), 400, 'bad_request');
    await expect(await upload(srv, ana, JPEG.subarray(0, 600), 'image/jpeg'), 400, 'bad_request');
    // A header that claims more than 4096 px a side is refused before decoding.
    const huge = await upload(srv, ana, pngSized(5000, 5000));
    await expect(huge, 400, 'bad_request');
    assert.match(huge.json.error.message, /4096/);
    // Over 1 MiB: 413 from the transport as soon as the headers announce it, before any of the
    // body is read or kept (a raw socket, so the answer is read before the client would have
    // finished sending: fetch, still writing 1 MiB when the server closes, can see a reset).
    const raw = await rawHttp(srv);
    await raw.write(
      `POST /api/avatar HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ana.token}\r\n` +
        `Content-Type: image/png\r\nContent-Length: ${1024 * 1024 + 1}\r\n\r\n`,
    );
    const refused = await raw.response(0);
    raw.destroy();
    assert.equal(refused.status, 413);
    assert.equal(refused.json?.error?.code, 'too_large');
    // Other routes keep their 64 KiB limit.
    const big = await http(srv, 'POST', '/api/login', { body: 'x'.repeat(100 * 1024), headers: { 'content-type': 'application/json' } });
    assert.equal(big.status, 413);
    await expect(await http(srv, 'GET', '/avatars/nope.png'), 404, 'not_found');
    await expect(await http(srv, 'GET', '/avatars/..%2fparley.db'), 404);
    // Nothing changed.
    assert.equal((await http(srv, 'GET', '/api/me', { token: ana.token })).json.user.avatar, null);
  });
});

describe('password change', () => {
  const srv = useServer({ env: { PARLEY_RATE_LIMITS: '1' } });

  test('ends the other sessions (4001), keeps this one, the new password works', async () => {
    const [ana] = await signupMany(srv, ['ana']);
    const other = await login(srv, ana.user.username);
    const ws = await connect(srv, { token: other.token });
    const mine = await connect(srv, { token: ana.token });
    const res = await http(srv, 'POST', '/api/password', {
      token: ana.token,
      json: { password: PASSWORD, newPassword: 'a brand new secret' },
    });
    assert.equal(res.status, 204, res.text);
    const closed = await ws.closed;
    assert.equal(closed.code, 4001);
    assert.equal((await http(srv, 'GET', '/api/me', { token: other.token })).status, 401);
    assert.equal((await http(srv, 'GET', '/api/me', { token: ana.token })).status, 200);
    await mine.ok('ping'); // the current session's socket stays
    const old = await http(srv, 'POST', '/api/login', { json: { username: ana.user.username, password: PASSWORD } });
    assert.equal(old.status, 401);
    await login(srv, ana.user.username, 'a brand new secret');
    await mine.close();
  });

  test('a wrong current password is 401, throttled like a login', async () => {
    const [ben] = await signupMany(srv, ['ben']);
    const attempt = () =>
      http(srv, 'POST', '/api/password', { token: ben.token, json: { password: 'not it at all', newPassword: 'whatever 123' } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await attempt()).status);
    assert.deepEqual(statuses.slice(0, 3), [401, 401, 401]);
    assert.equal(statuses[3], 429, 'the pair is locked out after the third failure');
    // A login of that user from this address is locked out too: one budget for both ways in.
    const l = await http(srv, 'POST', '/api/login', { json: { username: ben.user.username, password: PASSWORD } });
    assert.equal(l.status, 429);
    // Nothing changed: the session lives.
    assert.equal((await http(srv, 'GET', '/api/me', { token: ben.token })).status, 200);
  });

  test('bad input', async () => {
    const [cy] = await signupMany(srv, ['cy']);
    const post = (json, opts = {}) => http(srv, 'POST', '/api/password', { token: cy.token, json, ...opts });
    assert.equal((await post({ password: PASSWORD, newPassword: 'short' })).status, 400);
    assert.equal((await post({ password: PASSWORD })).status, 400);
    assert.equal((await post({ newPassword: 'long enough now' })).status, 400);
    assert.equal((await http(srv, 'POST', '/api/password', { token: cy.token, body: 'nope' })).status, 400);
    assert.equal(
      (await http(srv, 'POST', '/api/password', { json: { password: PASSWORD, newPassword: 'long enough now' } })).status,
      401,
    );
    assert.equal((await http(srv, 'GET', '/api/password', { token: cy.token })).status, 405);
    await login(srv, cy.user.username); // unchanged
  });
});
