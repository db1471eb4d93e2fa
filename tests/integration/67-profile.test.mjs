// 67 - The profile (issue 18): me.update changes the display name with signup's rules and tells
// everyone who shows it (user.updated to the user's sockets and to every online user who shares a
// chat with them, nobody else); users.search finds the new name's words, not the old one's.
// User objects carry `avatar` (null until one is uploaded, see 68).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { barrier, connect, eventsNamed, http, makeChat, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('me.update', () => {
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

  test('the new name reaches the user and everyone who shares a chat, nobody else', async () => {
    const [ana, ben, cy, dee] = await signupMany(srv, ['ana', 'ben', 'cy', 'dee']);
    const a1 = await conn(ana);
    const a2 = await conn(ana);
    const b = await conn(ben);
    const c = await conn(cy); // shares no chat with Ana
    const d = await conn(dee);
    await makeChat(a1, { title: 'one', join: [b] });
    await makeChat(d, { title: 'two', join: [a1] });

    const r = await a1.ok('me.update', { displayName: '🦊 Ana Fox' });
    assert.equal(r.user.displayName, '🦊 Ana Fox');
    assert.equal(r.user.username, ana.user.username);
    assert.equal(r.user.avatar, null);
    for (const s of [a1, a2, b, d]) {
      const e = await s.waitFor((x) => x.ev === 'user.updated' && x.user.id === ana.user.id);
      assert.equal(e.user.displayName, '🦊 Ana Fox');
      assert.ok('avatar' in e.user);
    }
    await barrier(c);
    assert.equal(eventsNamed(c, 'user.updated').length, 0);

    // Durable, and what everyone reads from now on.
    const me = await http(srv, 'GET', '/api/me', { token: ana.token });
    assert.equal(me.json.user.displayName, '🦊 Ana Fox');
    assert.equal(me.json.user.avatar, null);
    const fresh = await conn(ana);
    assert.equal(fresh.user.displayName, '🦊 Ana Fox');
    const hits = (await c.ok('users.search', { q: 'fox' })).users.map((u) => u.username);
    assert.ok(hits.includes(ana.user.username), 'found by a word of the new name');
    await a1.ok('me.update', { displayName: 'Ana Lynx' });
    const old = (await c.ok('users.search', { q: 'fox' })).users.map((u) => u.username);
    assert.ok(!old.includes(ana.user.username), 'not by a word of the old one');
  });

  test('signup rules: bad names are refused', async () => {
    const [ana] = await signupMany(srv, ['ana']);
    const a = await conn(ana);
    await a.fail('me.update', {}, 'bad_request');
    await a.fail('me.update', { displayName: '' }, 'bad_request');
    await a.fail('me.update', { displayName: '   ' }, 'bad_request');
    await a.fail('me.update', { displayName: 'a\u202eb' }, 'bad_request');
    await a.fail('me.update', { displayName: 'x'.repeat(65) }, 'too_large');
    await a.fail('me.update', { displayName: 7 }, 'bad_request');
    const me = await http(srv, 'GET', '/api/me', { token: ana.token });
    assert.equal(me.json.user.displayName, ana.user.displayName, 'unchanged');
  });
});
