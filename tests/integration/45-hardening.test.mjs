// 45 - Smaller hardening rules from the outside review (issue 14, item 7): every HTTP response
// carries X-Content-Type-Options: nosniff; display names count characters (code points), not
// bytes; names, titles and message bodies need a visible character (white space and invisible
// code points alone are refused) and names refuse bidi override/isolate controls; expired
// sessions are deleted by a periodic sweep. (Private chats answering not_found to outsiders are
// in 04, 11, 12 and 13.)

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { connect, http, signup, uname } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

function socketPool() {
  const socks = [];
  after(async () => {
    await Promise.all(socks.map((s) => s.close().catch(() => {})));
  });
  return socks;
}

describe('X-Content-Type-Options: nosniff', () => {
  const srv = useServer();

  test('on JSON answers, errors, metrics, health and static files', async () => {
    const s = await signup(srv, uname('sniff'));
    const responses = {
      'GET /api/me (200)': await http(srv, 'GET', '/api/me', { token: s.token }),
      'GET /api/me (401)': await http(srv, 'GET', '/api/me'),
      'POST /api/login (400 body)': await http(srv, 'POST', '/api/login', { body: 'not json' }),
      'POST /api/signup (409)': await http(srv, 'POST', '/api/signup', {
        json: { username: s.user.username, password: 'whatever password' },
      }),
      'GET /api/nothing (404)': await http(srv, 'GET', '/api/nothing'),
      'DELETE / (405)': await http(srv, 'DELETE', '/'),
      'GET /healthz': await http(srv, 'GET', '/healthz'),
      'GET /metrics': await http(srv, 'GET', '/metrics'),
      'GET / (index.html)': await http(srv, 'GET', '/'),
      'GET /assets/app.js': await http(srv, 'GET', '/assets/app.js'),
      'GET /assets/missing.js (404)': await http(srv, 'GET', '/assets/missing.js'),
      'GET /ws without upgrade (400)': await http(srv, 'GET', '/ws'),
      'POST /api/logout (204)': await http(srv, 'POST', '/api/logout', { token: s.token }),
    };
    for (const [what, res] of Object.entries(responses))
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${what}: HTTP ${res.status}`);
    // Exactly one such header on a static file (it used to carry its own).
    const raw = responses['GET /assets/app.js'].headers.get('x-content-type-options');
    assert.equal(raw, 'nosniff');
  });
});

describe('names and bodies', () => {
  const srv = useServer();
  const socks = socketPool();

  const signupRes = (displayName) =>
    http(srv, 'POST', '/api/signup', { json: { username: uname('n'), password: 'correct horse battery', displayName } });

  test('a displayName is limited to 64 characters, not 64 bytes', async () => {
    const emoji64 = '😀'.repeat(64); // 256 bytes
    const ok = await signupRes(emoji64);
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.user.displayName, emoji64);
    const accents = 'é'.repeat(64); // 128 bytes
    assert.equal((await signupRes(accents)).status, 201);
    // Stored and returned whole: /api/me and auth give it back unchanged.
    const me = await http(srv, 'GET', '/api/me', { token: ok.json.token });
    assert.equal(me.json.user.displayName, emoji64);
    const over = await signupRes('😀'.repeat(65));
    assert.equal(over.status, 400, over.text);
    assert.equal(over.json.error.code, 'bad_request');
    assert.match(over.json.error.message, /displayName: 1-64 characters/);
  });

  const INVISIBLE = {
    'U+200B zero width space': '\u200b',
    'U+3000 ideographic space': '\u3000\u3000',
    'U+202E right-to-left override': '\u202e',
    'U+FEFF byte order mark': '\ufeff',
    'U+2060 word joiner': '\u2060',
    'U+00A0 no-break space': '\u00a0 ',
    'U+3164 hangul filler': '\u3164',
    'U+2800 braille blank': '\u2800',
  };

  test('a displayName of invisible characters or white space only is bad_request', async () => {
    for (const [what, name] of Object.entries(INVISIBLE)) {
      const r = await signupRes(name);
      assert.equal(r.status, 400, `${what}: HTTP ${r.status} ${r.text}`);
      assert.equal(r.json.error.code, 'bad_request', what);
    }
  });

  test('a displayName with a bidi override or isolate control is bad_request', async () => {
    for (const name of ['evil\u202egnp.exe', 'a\u202ab', 'a\u202db', '\u2066admin\u2069', 'x\u2067y', 'x\u2068y']) {
      const r = await signupRes(name);
      assert.equal(r.status, 400, `${JSON.stringify(name)}: HTTP ${r.status} ${r.text}`);
    }
    // Right-to-left text itself is welcome.
    const ok = await signupRes('שלום עולם');
    assert.equal(ok.status, 201, ok.text);
  });

  test('chat titles and message bodies of invisible characters only are bad_request', async () => {
    const s = await signup(srv, uname('titles'));
    const c = await connect(srv, { token: s.token });
    socks.push(c);
    const { chat } = await c.ok('chat.create', { title: 'Real title' });
    for (const [what, blank] of Object.entries(INVISIBLE)) {
      const e1 = await c.fail('chat.create', { title: blank }, 'bad_request');
      assert.match(e1.message, /^title:/, what);
      await c.fail('chat.update', { chat: chat.slug, title: blank }, 'bad_request');
      const e2 = await c.fail('msg.send', { chat: chat.slug, body: blank }, 'bad_request');
      assert.match(e2.message, /^body:/, what);
      await c.fail('msg.send', { chat: chat.slug, body: `${blank}\n${blank}` }, 'bad_request');
    }
    await c.fail('chat.create', { title: 'spoof\u202etxt.exe' }, 'bad_request');
    // Nothing was stored by the refusals; visible text around them is fine.
    const { msgs } = await c.ok('msg.history', { chat: chat.slug });
    assert.deepEqual(msgs, []);
    const sent = await c.ok('msg.send', { chat: chat.slug, body: '\u3000hello\u200b' });
    assert.equal(sent.msg.body, '\u3000hello\u200b');
    // Bodies keep bidi controls: mixed-direction text needs them.
    await c.ok('msg.send', { chat: chat.slug, body: 'quote: \u2067שלום\u2069 ok' });
    const renamed = await c.ok('chat.update', { chat: chat.slug, title: '設計レビュー' });
    assert.equal(renamed.chat.title, '設計レビュー');
  });
});

describe('expired sessions are deleted', () => {
  // Sessions of one second, swept every 200 ms.
  const srv = useServer({ env: { PARLEY_SESSION_TTL_S: '1', PARLEY_SESSION_SWEEP_MS: '200' } });

  function sessionCount() {
    if (process.env.PARLEY_TEST_STORE) return null; // PostgreSQL: the log line below suffices
    return new Promise((resolve, reject) => {
      execFile('sqlite3', [path.join(srv.dataDir, 'parley.db'), 'SELECT count(*) FROM sessions'], (err, out) =>
        err ? reject(err) : resolve(Number(out.trim())),
      );
    });
  }

  test('the sweep deletes a session once it expired, and logs it', async () => {
    const mark = srv.mark();
    const s = await signup(srv, uname('sweep'));
    const before = await sessionCount();
    if (before !== null) assert.ok(before >= 1, `sessions before: ${before}`);
    // The event to wait for: the sweep's log line (within 1 s of expiry plus one sweep period).
    await new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`no sweep logged:\n${srv.since(mark)}`)), 8000);
      const check = () => {
        if (/deleted \d+ expired sessions/.test(srv.since(mark))) {
          clearTimeout(deadline);
          srv.proc.stdout.off('data', check);
          srv.proc.stderr.off('data', check);
          resolve();
        }
      };
      srv.proc.stdout.on('data', check);
      srv.proc.stderr.on('data', check);
      check();
    });
    const afterCount = await sessionCount();
    if (afterCount !== null) assert.equal(afterCount, 0, 'the expired session row is gone');
    const me = await http(srv, 'GET', '/api/me', { token: s.token });
    assert.equal(me.status, 401, me.text);
  });
});
