// 02 - Accounts and sessions over HTTP: signup, login, logout, /api/me, the session cookie, the
// CSRF Origin guard, and logout closing the session's WebSockets with 4001.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { PASSWORD, connect, http, login, sessionCookie, sessionSetCookie, signup, uname } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const srv = useServer();

// Attributes of a Set-Cookie line, lower-cased names: {name, value, attrs: {httponly: true, ...}}.
function parseSetCookie(line) {
  const [pair, ...rest] = line.split(';').map((s) => s.trim());
  const eq = pair.indexOf('=');
  const attrs = {};
  for (const a of rest) {
    const i = a.indexOf('=');
    if (i < 0) attrs[a.toLowerCase()] = true;
    else attrs[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs };
}

function assertUser(user, username, displayName = username) {
  assert.equal(typeof user.id, 'number', JSON.stringify(user));
  assert.equal(user.username, username);
  assert.equal(user.displayName, displayName);
}

describe('signup', () => {
  test('201 with user and token in the body and an HttpOnly SameSite=Lax session cookie', async () => {
    const name = uname('ana');
    const res = await http(srv, 'POST', '/api/signup', {
      json: { username: name, password: PASSWORD, displayName: 'Ana Lima' },
    });
    assert.equal(res.status, 201, res.text);
    assertUser(res.json.user, name, 'Ana Lima');
    assert.equal(typeof res.json.token, 'string');
    assert.ok(res.json.token.length >= 20, 'a token long enough to be unguessable');
    const line = sessionSetCookie(res);
    assert.ok(line, `Set-Cookie: ${JSON.stringify(res.setCookies)}`);
    const c = parseSetCookie(line);
    assert.equal(c.value, res.json.token, 'the cookie carries the same session token');
    assert.equal(c.attrs.httponly, true, line);
    assert.equal(String(c.attrs.samesite).toLowerCase(), 'lax', line);
    assert.equal(c.attrs.path, '/', line);
    assert.equal(c.attrs['max-age'], '2592000', line);
    assert.equal(c.attrs.secure, undefined, 'no Secure flag unless PARLEY_COOKIE_SECURE=1');
  });

  test('displayName defaults to the username; the username is case-folded', async () => {
    const name = uname('bo');
    const s = await signup(srv, name.toUpperCase());
    assertUser(s.user, name);
  });

  test('a taken username is 409 conflict, also in another case', async () => {
    const name = uname('taken');
    await signup(srv, name);
    for (const u of [name, name.toUpperCase()]) {
      const res = await http(srv, 'POST', '/api/signup', { json: { username: u, password: PASSWORD } });
      assert.equal(res.status, 409, `${u}: ${res.text}`);
      assert.equal(res.json?.error?.code, 'conflict');
    }
  });

  test('invalid usernames, passwords and bodies are 400 bad_request', async () => {
    const cases = [
      { username: 'ab', password: PASSWORD }, // too short
      { username: 'a'.repeat(33), password: PASSWORD }, // too long
      { username: 'has space', password: PASSWORD },
      { username: 'semi;colon', password: PASSWORD },
      { username: 'ünïcode', password: PASSWORD },
      { username: uname('pw'), password: 'short' }, // password under 8 bytes
      { username: uname('pw'), password: 'x'.repeat(257) }, // over 256 bytes
      { username: uname('dn'), password: PASSWORD, displayName: '' },
      { username: uname('dn'), password: PASSWORD, displayName: 'x'.repeat(65) },
      { password: PASSWORD }, // missing username
      { username: uname('np') }, // missing password
      { username: 42, password: PASSWORD }, // mistyped
      { username: uname('tp'), password: 12345678 },
    ];
    for (const json of cases) {
      const res = await http(srv, 'POST', '/api/signup', { json });
      assert.equal(res.status, 400, `${JSON.stringify(json).slice(0, 80)} -> ${res.status} ${res.text}`);
      assert.equal(res.json?.error?.code, 'bad_request', res.text);
    }
    for (const body of ['[]', '"str"', 'null', '{"username": "abc", ']) {
      const res = await http(srv, 'POST', '/api/signup', { body, headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400, `${body} -> ${res.status} ${res.text}`);
    }
  });

  test('boundary usernames of 3 and 32 characters are accepted', async () => {
    const three = `${Math.random().toString(36).slice(2, 4)}.`.padEnd(3, '_');
    const thirtyTwo = uname('l').padEnd(32, '-');
    for (const u of [three, thirtyTwo]) {
      const res = await http(srv, 'POST', '/api/signup', { json: { username: u, password: PASSWORD } });
      assert.equal(res.status, 201, `${u}: ${res.text}`);
    }
  });
});

describe('login and /api/me', () => {
  let name;
  before(async () => {
    name = uname('carl');
    await signup(srv, name, PASSWORD, 'Carl');
  });

  test('login returns 200 with user, token and the session cookie', async () => {
    const s = await login(srv, name);
    assertUser(s.user, name, 'Carl');
    const c = parseSetCookie(sessionSetCookie(s.res));
    assert.equal(c.value, s.token);
    assert.equal(c.attrs.httponly, true);
    assert.equal(String(c.attrs.samesite).toLowerCase(), 'lax');
  });

  test('login is case-insensitive on the username', async () => {
    const s = await login(srv, name.toUpperCase());
    assert.equal(s.user.username, name);
  });

  test('each login is a new session with its own token', async () => {
    const a = await login(srv, name);
    const b = await login(srv, name);
    assert.notEqual(a.token, b.token);
  });

  test('a wrong password and an unknown user get the same 401 unauthorized', async () => {
    const wrong = await http(srv, 'POST', '/api/login', { json: { username: name, password: 'not the password' } });
    const unknown = await http(srv, 'POST', '/api/login', { json: { username: uname('ghost'), password: PASSWORD } });
    for (const res of [wrong, unknown]) {
      assert.equal(res.status, 401, res.text);
      assert.equal(res.json?.error?.code, 'unauthorized');
      assert.equal(sessionCookie(res), undefined, 'no session cookie on a failed login');
    }
    assert.equal(wrong.json.error.message, unknown.json.error.message, 'usernames must not be probeable');
  });

  test('GET /api/me with the cookie or the bearer token returns the user', async () => {
    const s = await login(srv, name);
    const byCookie = await http(srv, 'GET', '/api/me', { cookie: s.cookie });
    assert.equal(byCookie.status, 200, byCookie.text);
    assertUser(byCookie.json.user, name, 'Carl');
    const byBearer = await http(srv, 'GET', '/api/me', { token: s.token });
    assert.equal(byBearer.status, 200, byBearer.text);
    assert.deepEqual(byBearer.json.user, byCookie.json.user);
  });

  test('GET /api/me without credentials, or with a bad token, is 401', async () => {
    for (const opts of [{}, { token: 'not-a-real-token' }, { cookie: 'parley_session=bogus' }, { token: '' }]) {
      const res = await http(srv, 'GET', '/api/me', opts);
      assert.equal(res.status, 401, `${JSON.stringify(opts)} -> ${res.status} ${res.text}`);
      assert.equal(res.json?.error?.code, 'unauthorized');
    }
  });

  test('a POST with a foreign Origin is 403 (CSRF guard); the own origin is fine', async () => {
    const evil = await http(srv, 'POST', '/api/login', {
      json: { username: name, password: PASSWORD },
      origin: 'http://evil.example',
    });
    assert.equal(evil.status, 403, evil.text);
    assert.equal(evil.json?.error?.code, 'forbidden');
    assert.equal(sessionCookie(evil), undefined);
    const own = await http(srv, 'POST', '/api/login', {
      json: { username: name, password: PASSWORD },
      origin: srv.origin,
    });
    assert.equal(own.status, 200, own.text);
    const local = await http(srv, 'POST', '/api/login', {
      json: { username: name, password: PASSWORD },
      origin: `http://localhost:${srv.port}`,
    });
    assert.equal(local.status, 200, local.text);
  });
});

describe('logout', () => {
  let name;
  before(async () => {
    name = uname('dora');
    await signup(srv, name);
  });

  test('logout with the bearer token: 204, cookie cleared, the token stops working', async () => {
    const s = await login(srv, name);
    const other = await login(srv, name);
    const res = await http(srv, 'POST', '/api/logout', { token: s.token });
    assert.equal(res.status, 204, res.text);
    const cleared = sessionSetCookie(res);
    assert.ok(cleared, 'logout sets a cookie that clears the session');
    const c = parseSetCookie(cleared);
    const expired = c.attrs['max-age'] === '0' || (c.attrs.expires && Date.parse(c.attrs.expires) < Date.now());
    assert.ok(expired, `cookie not cleared: ${cleared}`);
    assert.equal((await http(srv, 'GET', '/api/me', { token: s.token })).status, 401);
    assert.equal((await http(srv, 'GET', '/api/me', { cookie: s.cookie })).status, 401);
    // Only that session ended: another login of the same user still works.
    assert.equal((await http(srv, 'GET', '/api/me', { token: other.token })).status, 200);
  });

  test('logout with the cookie ends that session', async () => {
    const s = await login(srv, name);
    const res = await http(srv, 'POST', '/api/logout', { cookie: s.cookie, origin: srv.origin });
    assert.equal(res.status, 204, res.text);
    assert.equal((await http(srv, 'GET', '/api/me', { cookie: s.cookie })).status, 401);
  });

  test("logout closes that session's WebSockets with 4001 and leaves other sessions' open", async () => {
    const s = await login(srv, name);
    const other = await login(srv, name);
    const byToken = await connect(srv, { token: s.token });
    const byCookie = await connect(srv, { cookie: s.cookie });
    const otherSock = await connect(srv, { token: other.token });
    const res = await http(srv, 'POST', '/api/logout', { token: s.token });
    assert.equal(res.status, 204);
    const [a, b] = await Promise.all([byToken.waitClose(), byCookie.waitClose()]);
    assert.equal(a.code, 4001, 'token-authenticated socket');
    assert.equal(b.code, 4001, 'cookie-authenticated socket');
    const pong = await otherSock.ok('ping');
    assert.equal(typeof pong.now, 'number');
    assert.ok(otherSock.isOpen);
    await otherSock.close();
  });

  test('a logged-out token can no longer authenticate a WebSocket', async () => {
    const s = await login(srv, name);
    assert.equal((await http(srv, 'POST', '/api/logout', { token: s.token })).status, 204);
    await assert.rejects(connect(srv, { token: s.token }), /unauthorized/);
  });
});
