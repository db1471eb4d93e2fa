// 49 - Presence in a sub reply is bounded, and chat.members pages through the rest (issue 15).
// A sub reply used to carry every participant's presence: 10,000 in a big chat (23-77 ms of loop
// time), 1,000 per reply in a join storm (replies so big that sockets were closed as slow). Now it
// carries the first PARLEY_SUB_PRESENCE_MAX participants who are not offline, `online` (how many
// are) and `presenceMore`; `chat.members {chat, after?, limit?}` pages through all participants by
// user id, each with role and presence. `activeUsers` is bounded alike, with `activeCount`. The cap is 3 here so that a handful of users shows it.
// Runs on SQLite and on PostgreSQL (make integration-pg): the page is cut in the store layer.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, signupMany, waitPresence } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const CAP = 3;

describe('sub presence and chat.members', () => {
  const srv = useServer({ env: { PARLEY_SUB_PRESENCE_MAX: String(CAP), PARLEY_PRESENCE_GRACE_MS: '0' } });
  const open = [];
  let owner, online, gone, outsider, slug;

  before(async () => {
    const accounts = await signupMany(srv, ['own', 'on', 'on', 'on', 'on', 'gone', 'out']);
    const socks = await Promise.all(accounts.map((u) => connect(srv, { token: u.token })));
    open.push(...socks);
    [owner, ...online] = socks.slice(0, 5);
    gone = socks[5];
    outsider = socks[6];
    ({ chat: { slug } } = await owner.ok('chat.create', { title: 'members', isPublic: true }));
    for (const c of [...online, gone]) await c.ok('chat.join', { chat: slug });
    await owner.ok('chat.update', { chat: slug, isPublic: false });
    const from = owner.events.length;
    await gone.close();
    await waitPresence(owner, gone.user.username, 'offline', { from });
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  test('a sub reply carries at most the cap of presences, only of participants not offline, and the count', async () => {
    for (const c of online) await c.ok('sub', { chat: slug });
    const sub = await owner.ok('sub', { chat: slug });
    assert.equal(sub.online, 5, 'owner and four others are online');
    // activeUsers (who has the chat open) is bounded the same way, with the count.
    assert.equal(sub.activeCount, 5);
    assert.equal(sub.activeUsers.length, CAP);
    assert.equal(sub.chat.activeUsers.length, CAP);
    assert.equal(sub.presenceMore, true);
    assert.equal(sub.presence.length, CAP);
    const here = new Set([owner, ...online].map((c) => c.user.username));
    for (const p of sub.presence) {
      assert.ok(here.has(p.user.username), `${p.user.username} is online`);
      assert.equal(p.state, 'online');
    }
    assert.equal(sub.chat.participantCount, 6);

    // With the cap not reached, the reply holds everyone online and says there is no more.
    await online[0].close();
    await online[1].close();
    await waitPresence(owner, online[1].user.username, 'offline', { from: 0 });
    await waitPresence(owner, online[0].user.username, 'offline', { from: 0 });
    const again = await owner.ok('sub', { chat: slug });
    assert.equal(again.online, 3);
    assert.equal(again.presenceMore, false);
    assert.deepEqual(
      again.presence.map((p) => p.user.username).sort(),
      [owner, online[2], online[3]].map((c) => c.user.username).sort(),
    );
  });

  // chat.active carried every user with the chat open: in a join storm of N users that was O(N^2)
  // bytes (issue 15). Now the event and every chat object are bounded like the sub reply.
  test('chat.active and chat objects carry at most the cap of activeUsers, with activeCount', async () => {
    const accounts = await signupMany(srv, ['act', 'act', 'act', 'act', 'act']);
    const socks = await Promise.all(accounts.map((u) => connect(srv, { token: u.token })));
    open.push(...socks);
    const [first, ...rest] = socks;
    const { chat } = await first.ok('chat.create', { title: 'active', isPublic: true });
    for (const c of rest) await c.ok('chat.join', { chat: chat.slug });
    await first.ok('sub', { chat: chat.slug });
    for (const c of rest) await c.ok('sub', { chat: chat.slug });
    const full = await first.waitFor((e) => e.ev === 'chat.active' && e.chat === chat.slug && e.activeCount === 5);
    assert.equal(full.activeUsers.length, CAP);
    const names = new Set(socks.map((c) => c.user.username));
    for (const u of full.activeUsers) assert.ok(names.has(u.username), `${u.username} has the chat open`);
    const got = await first.ok('chat.get', { chat: chat.slug });
    assert.equal(got.chat.activeCount, 5);
    assert.equal(got.chat.activeUsers.length, CAP);

    const from = first.events.length;
    for (const c of rest.slice(0, 3)) await c.ok('unsub', { chat: chat.slug });
    const fewer = await first.waitFor((e) => e.ev === 'chat.active' && e.chat === chat.slug && e.activeCount === 2, { from });
    assert.deepEqual(
      fewer.activeUsers.map((u) => u.username).sort(),
      [first, rest[3]].map((c) => c.user.username).sort(),
      'below the cap the list is everyone',
    );
  });

  test('chat.members pages through every participant by user id, with role and presence', async () => {
    const seen = [];
    let afterId;
    let pages = 0;
    for (;;) {
      const r = await owner.ok('chat.members', afterId === undefined ? { chat: slug, limit: 2 } : { chat: slug, after: afterId, limit: 2 });
      pages++;
      assert.ok(r.members.length <= 2);
      assert.equal(r.participantCount, 6);
      seen.push(...r.members);
      if (!r.hasMore) break;
      afterId = r.members.at(-1).id;
    }
    assert.equal(pages, 3);
    const ids = seen.map((m) => m.id);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'by user id');
    assert.equal(new Set(ids).size, 6, 'every participant once');
    const byName = Object.fromEntries(seen.map((m) => [m.username, m]));
    assert.equal(byName[owner.user.username].role, 'owner');
    assert.equal(byName[owner.user.username].state, 'online');
    assert.equal(byName[gone.user.username].role, 'member');
    assert.equal(byName[gone.user.username].state, 'offline');
    assert.equal(typeof byName[gone.user.username].lastSeen, 'number', 'lastSeen of who left');
    assert.equal(typeof byName[gone.user.username].joinedAt, 'number');

    // chat.get with a limit gives the first page, the same one chat.members gives.
    const got = await owner.ok('chat.get', { chat: slug, limit: 2 });
    assert.deepEqual(got.participants.map((m) => m.id), ids.slice(0, 2));
    assert.equal(got.participantsMore, true);
    assert.equal(got.chat.participantCount, 6);
    const full = await owner.ok('chat.get', { chat: slug });
    assert.equal(full.participants.length, 6);
    assert.equal(full.participantsMore, undefined, 'without a limit: everyone, as before');

    // Past the last id: an empty page. Without a limit: everything of this small chat at once.
    const end = await owner.ok('chat.members', { chat: slug, after: Math.max(...ids) });
    assert.deepEqual([end.members, end.hasMore], [[], false]);
    const all = await owner.ok('chat.members', { chat: slug });
    assert.deepEqual(all.members.map((m) => m.id), ids);
    assert.equal(all.hasMore, false);
  });

  test('chat.members: a private chat does not exist for others; limits are checked', async () => {
    await outsider.fail('chat.members', { chat: slug }, 'not_found');
    await outsider.fail('chat.members', { chat: 'no-such-chat' }, 'not_found');
    await owner.fail('chat.members', { chat: slug, limit: 0 }, 'bad_request');
    await owner.fail('chat.members', { chat: slug, limit: 201 }, 'bad_request');
    await owner.fail('chat.members', { chat: slug, after: -1 }, 'bad_request');
  });
});
