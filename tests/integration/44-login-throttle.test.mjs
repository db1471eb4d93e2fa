// 44 - Login and signup throttling (docs/protocol.md, docs/operations.md "Rate limits"): every
// login attempt is charged to its client address first, and an attempt that budget refuses costs
// the username nothing; failures in a row of one username from one address lock that pair out
// after the 3rd; a username's (large) failure budget stops guessing spread over many addresses
// but never refuses an address that logged in as the user before; signups are limited per
// address; argon2 runs with bounded concurrency, logins before signups, and a full queue is 503.
//
// Each test owns its client addresses: every address in 127.0.0.0/8 reaches the server, so a
// request's source address is chosen per request (httpFrom). Buckets refill far slower than the
// tests run, so outcomes are decided by counts, not timing.

import assert from 'node:assert/strict';
import nodeHttp from 'node:http';
import { describe, test } from 'node:test';

import { PASSWORD, http, signup, uname } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

// One HTTP request from a chosen loopback source address.
function httpFrom(srv, localAddress, method, path, json) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(json);
    const req = nodeHttp.request(
      {
        host: srv.host,
        port: srv.port,
        method,
        path,
        localAddress,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 20000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed = null;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = null;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json: parsed, done: Date.now() });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

const loginFrom = (srv, ip, username, password = PASSWORD) =>
  httpFrom(srv, ip, 'POST', '/api/login', { username, password });
const signupFrom = (srv, ip, username, password = PASSWORD) =>
  httpFrom(srv, ip, 'POST', '/api/signup', { username, password });

function assert429(res, maxS, what) {
  assert.equal(res.status, 429, `${what}: HTTP ${res.status} ${res.text}`);
  assert.equal(res.json?.error?.code, 'rate_limited', `${what}: ${res.text}`);
  const ra = res.headers['retry-after'];
  assert.match(String(ra), /^\d+$/, `${what}: Retry-After ${ra}`);
  assert.ok(Number(ra) >= 1 && Number(ra) <= maxS, `${what}: Retry-After ${ra} not in [1, ${maxS}]`);
}

async function metric(srv, name) {
  const res = await http(srv, 'GET', '/metrics');
  const m = res.text.match(new RegExp(`^${name} (\\d+)`, 'm'));
  assert.ok(m, `${name} missing from /metrics`);
  return Number(m[1]);
}

describe('attempts the address budget refuses cost the username nothing', () => {
  // Two attempts per address; a username takes three failures (from addresses it never logged
  // in from) before its own budget refuses.
  const srv = useServer({
    env: {
      PARLEY_RATE_LIMITS: '1',
      PARLEY_LOGIN_RATE: '0.001',
      PARLEY_LOGIN_BURST: '2',
      PARLEY_LOGIN_USER_RATE: '0.001',
      PARLEY_LOGIN_USER_BURST: '3',
    },
  });

  test('an attacker hammering from one address is refused there; the victim logs in from another', async () => {
    const { user } = await signup(srv, uname('victim'));
    const name = user.username;
    const attacker = '127.0.0.41';
    assert.equal((await loginFrom(srv, attacker, name, 'guess 1')).status, 401);
    assert.equal((await loginFrom(srv, attacker, name, 'guess 2')).status, 401);
    for (let i = 3; i <= 10; i++) assert429(await loginFrom(srv, attacker, name, `guess ${i}`), 1000, `guess ${i}`);
    // Two failures reached the username; the eight refused attempts did not.
    const ok = await loginFrom(srv, '127.0.0.42', name);
    assert.equal(ok.status, 200, `the victim from an unthrottled address: ${ok.text}`);
    // The attacker's address stays refused, whatever the password.
    assert429(await loginFrom(srv, attacker, name), 1000, 'the attacker with the right password');
  });
});

describe('(username, address) lockout', () => {
  // Address budgets far larger than the test: only the pair lockout can refuse.
  const srv = useServer({ env: { PARLEY_RATE_LIMITS: '1', PARLEY_LOGIN_RATE: '100', PARLEY_LOGIN_BURST: '100' } });

  test('after the 3rd failure in a row the pair is locked 1 s, then 2 s; other addresses are not; a success resets it', async () => {
    const { user } = await signup(srv, uname('guess'));
    const name = user.username;
    const ip = '127.0.0.51';
    for (let i = 1; i <= 3; i++) {
      const r = await loginFrom(srv, ip, name, `wrong ${i}`);
      assert.equal(r.status, 401, `failure ${i}: ${r.text}`);
    }
    // Three failures: the pair is locked, even with the right password.
    const locked = await loginFrom(srv, ip, name);
    assert429(locked, 1, 'locked after the 3rd failure');
    // The same user from another address is not.
    const elsewhere = await loginFrom(srv, '127.0.0.52', name);
    assert.equal(elsewhere.status, 200, elsewhere.text);
    // Waiting out the lockout is what this test is about: a single wait of Retry-After.
    await new Promise((resolve) => setTimeout(resolve, 1000 * Number(locked.headers['retry-after']) + 50));
    assert.equal((await loginFrom(srv, ip, name, 'wrong 4')).status, 401);
    const locked2 = await loginFrom(srv, ip, name);
    assert429(locked2, 2, 'locked after the 4th failure');
    assert.equal(locked2.headers['retry-after'], '2', 'the lockout doubled');
    await new Promise((resolve) => setTimeout(resolve, 2050));
    const ok = await loginFrom(srv, ip, name);
    assert.equal(ok.status, 200, ok.text);
    // The success forgot the failures: one wrong password is just a 401 again.
    assert.equal((await loginFrom(srv, ip, name, 'wrong again')).status, 401);
    assert.equal((await loginFrom(srv, ip, name)).status, 200);
  });
});

describe('guessing one username from many addresses', () => {
  const srv = useServer({
    env: {
      PARLEY_RATE_LIMITS: '1',
      PARLEY_LOGIN_RATE: '100',
      PARLEY_LOGIN_BURST: '100',
      PARLEY_LOGIN_USER_RATE: '0.001',
      PARLEY_LOGIN_USER_BURST: '4',
    },
  });

  test("the username's failure budget refuses new addresses, never one the user logged in from", async () => {
    const { user } = await signup(srv, uname('target'));
    const name = user.username;
    const home = '127.0.0.61';
    assert.equal((await loginFrom(srv, home, name)).status, 200, 'the user signs in from home');
    for (let i = 0; i < 4; i++) {
      const r = await loginFrom(srv, `127.0.0.${62 + i}`, name, `botnet guess ${i}`);
      assert.equal(r.status, 401, `guess ${i}: ${r.text}`);
    }
    assert429(await loginFrom(srv, '127.0.0.70', name, 'botnet guess 5'), 5000, 'a 5th address');
    assert429(await loginFrom(srv, '127.0.0.71', name), 5000, 'a new device, even with the password');
    const home2 = await loginFrom(srv, home, name);
    assert.equal(home2.status, 200, `the user's known address still logs in: ${home2.text}`);
    // Other usernames are untouched by this one's budget.
    const other = await signup(srv, uname('other'));
    assert.equal((await loginFrom(srv, '127.0.0.70', other.user.username)).status, 200);
  });
});

describe('signup rate limit', () => {
  const srv = useServer({ env: { PARLEY_RATE_LIMITS: '1', PARLEY_SIGNUP_RATE: '0.001', PARLEY_SIGNUP_BURST: '2' } });

  test('the 3rd signup from one address is 429 with Retry-After; another address signs up', async () => {
    const ip = '127.0.0.81';
    assert.equal((await signupFrom(srv, ip, uname('s1'))).status, 201);
    assert.equal((await signupFrom(srv, ip, uname('s2'))).status, 201);
    const name = uname('s3');
    assert429(await signupFrom(srv, ip, name), 1000, 'the 3rd signup');
    const r = await signupFrom(srv, '127.0.0.82', name);
    assert.equal(r.status, 201, `the refused signup created nothing: ${r.text}`);
  });
});

describe('argon2 concurrency', () => {
  // One hash at a time, three waiting at most. Rate limits are off: only the hash slots decide.
  const srv = useServer({ env: { PARLEY_HASH_CONCURRENCY: '1', PARLEY_HASH_QUEUE: '3' } });

  test('past the queue a signup is 503 with Retry-After; a queued login runs before queued signups', async () => {
    const { user } = await signup(srv, uname('waiter'));
    // Six signups at once: one runs, three wait, two are turned away.
    const first = Array.from({ length: 6 }, () => signupFrom(srv, '127.0.0.91', uname('flood')));
    const res = await Promise.all(first);
    const codes = res.map((r) => r.status).sort();
    assert.deepEqual(codes, [201, 201, 201, 201, 503, 503], JSON.stringify(codes));
    const busy = res.find((r) => r.status === 503);
    assert.equal(busy.json?.error?.code, 'unavailable', busy.text);
    assert.equal(busy.headers['retry-after'], '1');

    // Priority: with one signup hashing and two waiting, a login sent after them finishes
    // before both waiting signups.
    const signups = Array.from({ length: 3 }, () => signupFrom(srv, '127.0.0.92', uname('later')));
    for (;;) {
      if ((await metric(srv, 'parley_hash_queued')) === 2) break;
    }
    const loginP = loginFrom(srv, '127.0.0.93', user.username);
    const [l, ...s] = await Promise.all([loginP, ...signups]);
    assert.equal(l.status, 200, l.text);
    for (const r of s) assert.equal(r.status, 201, r.text);
    const after = s.filter((r) => r.done >= l.done).length;
    assert.ok(after >= 2, `the login finished after ${3 - after} of the 3 signups; expected before the 2 queued`);
    assert.equal(await metric(srv, 'parley_hash_queued'), 0);
    assert.equal(await metric(srv, 'parley_hash_running'), 0);
  });
});
