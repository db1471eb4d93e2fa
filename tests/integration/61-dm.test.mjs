// 61 - Direct messages (issue 17): dm.open makes one private two-person chat per pair on first
// use and returns the same one afterwards from either side; it is titled by the other person,
// listed in both users' chat.list with kind "dm", and takes no invitations, joins, role changes,
// removals, renames or leaves. Runs on SQLite and on PostgreSQL (make integration-pg).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { barrier, connect, signup, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('direct messages', () => {
  const srv = useServer();
  let ana, bob, cai;
  const open = [];

  before(async () => {
    const users = await signupMany(srv, ['ana', 'bob', 'cai']);
    [ana, bob, cai] = await Promise.all(users.map((u) => connect(srv, { token: u.token })));
    open.push(ana, bob, cai);
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  test('one chat per pair, created on first use, the same from either side, titled by the other', async () => {
    const from = bob.events.length;
    const first = await ana.ok('dm.open', { user: bob.user.username });
    const c = first.chat;
    assert.equal(c.kind, 'dm');
    assert.deepEqual(c.peer, bob.user);
    assert.equal(c.title, bob.user.displayName);
    assert.equal(c.isPublic, false);
    assert.equal(c.participantCount, 2);
    const created = await bob.waitFor((e) => e.ev === 'chat.created' && e.chat.slug === c.slug, { from });
    assert.equal(created.chat.title, ana.user.displayName);
    assert.deepEqual(created.chat.peer, ana.user);
    const again = await ana.ok('dm.open', { user: bob.user.username });
    assert.equal(again.chat.slug, c.slug);
    const other = await bob.ok('dm.open', { user: ana.user.username.toUpperCase() });
    assert.equal(other.chat.slug, c.slug);
    assert.equal(other.chat.title, ana.user.displayName);
    for (const [me, peer] of [[ana, bob], [bob, ana]]) {
      const { chats } = await me.ok('chat.list');
      const listed = chats.filter((x) => x.slug === c.slug);
      assert.equal(listed.length, 1);
      assert.equal(listed[0].kind, 'dm');
      assert.equal(listed[0].title, peer.user.displayName);
      assert.deepEqual(listed[0].peer, peer.user);
    }
    const got = await bob.ok('chat.get', { chat: c.slug });
    assert.equal(got.chat.kind, 'dm');
    assert.equal(got.chat.title, ana.user.displayName);
    // Messages work as in any chat, and a third person sees nothing of it.
    const { msg } = await ana.ok('msg.send', { chat: c.slug, body: 'psst' });
    assert.equal(msg.seq, 1);
    await cai.fail('msg.history', { chat: c.slug }, 'not_found');
    await cai.fail('chat.get', { chat: c.slug }, 'not_found');
  });

  test('no invitations, joins, role changes, removals, renames or leaves', async () => {
    const { chat } = await ana.ok('dm.open', { user: cai.user.username });
    const slug = chat.slug;
    let e = await ana.fail('invite.create', { chat: slug, user: bob.user.username }, 'forbidden');
    assert.match(e.message, /direct message/);
    await bob.fail('chat.join', { chat: slug }, 'not_found'); // private: outsiders learn nothing
    e = await ana.fail('chat.setRole', { chat: slug, user: cai.user.username, role: 'admin' }, 'forbidden');
    assert.match(e.message, /direct message/);
    e = await ana.fail('chat.remove', { chat: slug, user: cai.user.username }, 'forbidden');
    assert.match(e.message, /direct message/);
    e = await ana.fail('chat.update', { chat: slug, title: 'ours' }, 'forbidden');
    e = await cai.fail('chat.leave', { chat: slug }, 'forbidden');
    assert.match(e.message, /direct message/);
    const { chats } = await cai.ok('chat.list');
    assert.equal(chats.find((x) => x.slug === slug).participantCount, 2);
  });

  test('bad targets: oneself, nobody, a malformed name', async () => {
    await ana.fail('dm.open', { user: ana.user.username }, 'bad_request');
    await ana.fail('dm.open', { user: 'nobody_here_zz' }, 'not_found');
    await ana.fail('dm.open', { user: 'no' }, 'bad_request');
    await ana.fail('dm.open', {}, 'bad_request');
  });

  test('opened by both at once: still one chat', async () => {
    const [d1, d2] = await Promise.all(
      (await signupMany(srv, ['dua', 'duo'])).map((u) => connect(srv, { token: u.token })),
    );
    open.push(d1, d2);
    const [r1, r2] = await Promise.all([
      d1.ok('dm.open', { user: d2.user.username }),
      d2.ok('dm.open', { user: d1.user.username }),
    ]);
    assert.equal(r1.chat.slug, r2.chat.slug);
    await barrier(d1, d2);
    const { chats } = await d1.ok('chat.list');
    assert.equal(chats.filter((x) => x.kind === 'dm').length, 1);
  });

  test('a user created later can be messaged too', async () => {
    const u = await signup(srv, `late${Date.now() % 100000}`);
    const s = await connect(srv, { token: u.token });
    open.push(s);
    const { chat } = await s.ok('dm.open', { user: ana.user.username });
    assert.equal(chat.title, ana.user.displayName);
  });
});
