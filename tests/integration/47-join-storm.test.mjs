// 47 - A join storm costs O(N) events, not O(N^2) (issue 15): N users who join one chat and
// subscribe to it at the same time used to get one participant.joined per later joiner and one
// chat.active per later subscriber, each carrying the whole list. The chat's churn events are now
// throttled in proportion to its size (src/app/churn.c): joins close together go out as one
// participant.joined naming every joiner in `users`, subs close together as one chat.active.
// What must still hold: every member ends up knowing every joiner and the final activeUsers, and
// a sub reply gives the full state (presence of every participant).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { connect, presenceEntries, signupMany, usernames, waitPresence } from './lib/client.mjs';
import { scrape } from './lib/metrics.mjs';
import { useServer } from './lib/server.mjs';

const N = 50;
// Grace after a socket closes before its user shows offline: short, so the connect storm below
// starts from everyone offline without a long wait.
const GRACE_MS = 300;
// Frames per joining user allowed on average during the storm: their own replies (join, sub)
// and a handful of batched events. The old behaviour needs about N/2 + a few (27 at N = 50).
const PER_USER = 10;

describe('join storm', () => {
  const srv = useServer({ env: { PARLEY_PRESENCE_GRACE_MS: String(GRACE_MS) } });
  let shared; // {owner, users, slug}: the first test's chat and accounts, reused by the second
  const open = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  test(`${N} users joining and subscribing to one chat get O(N) frames in all`, async (t) => {
    // Signups hash with argon2id on a small pool: a few at a time, so none times out.
    const accounts = [];
    for (let i = 0; i <= N; i += 6) {
      accounts.push(...(await signupMany(srv, Array.from({ length: Math.min(6, N + 1 - i) }, () => 'js'))));
    }
    const [owner, ...users] = accounts;
    const oc = await connect(srv, { token: owner.token });
    open.push(oc);
    const { chat } = await oc.ok('chat.create', { title: 'storm', isPublic: true });
    shared = { oc, users, slug: chat.slug, clients: null };
    const clients = await Promise.all(users.map((u) => connect(srv, { token: u.token })));
    open.push(...clients);
    shared.clients = clients;
    const from = clients.map((c) => c.frames.length);

    await Promise.all(clients.map((c) => c.ok('chat.join', { chat: chat.slug })));
    const subs = await Promise.all(clients.map((c) => c.ok('sub', { chat: chat.slug })));

    // Everyone converges: the last subscriber's view is all N, and each member hears of every
    // joiner who joined after them (batched joiners are listed in `users`).
    const all = usernames(users.map((u) => u.user));
    await Promise.all(
      clients.map((c) =>
        c.waitFor((e) => e.ev === 'chat.active' && e.chat === chat.slug && e.activeUsers.length === N, {
          what: `${c.user.username}: chat.active with all ${N}`,
          timeout: 15000,
        }),
      ),
    );
    // The owner too: under load its last (batched) event may still be on the way.
    await Promise.all(
      [...clients, oc].map((c) =>
        c.waitFor((e) => e.ev === 'participant.joined' && e.participantCount === N + 1, {
          what: `${c.user.username}: participant.joined with ${N + 1} participants`,
          timeout: 15000,
        }),
      ),
    );
    const heard = new Set();
    for (const e of oc.events.filter((x) => x.ev === 'participant.joined')) {
      for (const j of e.users ?? [e]) heard.add(j.user.username);
    }
    assert.deepEqual([...heard].sort(), all, 'the owner heard of every joiner');

    // A sub reply still gives the whole state.
    const last = subs.reduce((a, b) => (b.presence.length > a.presence.length ? b : a));
    assert.ok(last.presence.length >= 1);
    const late = await clients[0].ok('sub', { chat: chat.slug });
    assert.equal(late.presence.length, N + 1, 'a sub reply has the presence of every participant online');
    assert.equal(late.online, N + 1);
    assert.deepEqual(usernames(late.activeUsers), all, 'and every user with the chat open');

    const frames = clients.reduce((s, c, i) => s + (c.frames.length - from[i]), 0);
    const kinds = {};
    clients.forEach((c, i) => {
      for (const f of c.frames.slice(from[i])) kinds[f.ev ?? 'reply'] = (kinds[f.ev ?? 'reply'] ?? 0) + 1;
    });
    t.diagnostic(`${frames} frames for ${N} users: ${JSON.stringify(kinds)}`);
    assert.ok(
      frames <= PER_USER * N,
      `${frames} frames for ${N} joining users (${(frames / N).toFixed(1)} each; at most ${PER_USER}): ${JSON.stringify(kinds)}`,
    );
  });

  test('subs of a chat already open here read its participants once, and again after any change', async () => {
    // The room keeps the participants the first sub read; later subs (a storm of them) take that
    // list when their replay shows the chat's member_gen and participant_count unchanged, and
    // read it again otherwise: a join changes the count, a leave the generation (at the end one
    // participant leaves and another joins: the count is what it was, only the generation tells).
    const M = 20;
    const accounts = [];
    for (let i = 0; i < M + 4; i += 6) {
      accounts.push(...(await signupMany(srv, Array.from({ length: Math.min(6, M + 4 - i) }, () => 'jc'))));
    }
    const [owner, stay, late, other, ...rest] = accounts;
    const [oc, sc, lc, xc, ...cs] = await Promise.all(
      [owner, stay, late, other, ...rest].map((a) => connect(srv, { token: a.token })),
    );
    open.push(oc, sc, lc, xc, ...cs);
    const { chat } = await oc.ok('chat.create', { title: 'cache', isPublic: true });
    await Promise.all([sc, ...cs].map((c) => c.ok('chat.join', { chat: chat.slug })));
    const first = await sc.ok('sub', { chat: chat.slug }); // reads the list; the room keeps it
    assert.equal(first.online, M + 2);

    const before = (await scrape(srv)).get('parley_store_requests_total');
    const storm = await Promise.all(cs.map((c) => c.ok('sub', { chat: chat.slug })));
    const used = (await scrape(srv)).get('parley_store_requests_total') - before;
    for (const r of storm) assert.equal(r.online, M + 2, 'every sub of the storm has everyone online');
    // A replay each (M), and not a participant read each as well (2M).
    assert.ok(used < M + M / 2, `${used} store requests for ${M} subs`);

    await lc.ok('chat.join', { chat: chat.slug });
    const afterJoin = await sc.ok('sub', { chat: chat.slug });
    assert.equal(afterJoin.online, M + 3, 'a sub after a join sees the new participant');
    assert.ok(afterJoin.presence.some((p) => p.user.username === late.user.username));

    await lc.ok('chat.leave', { chat: chat.slug });
    await xc.ok('chat.join', { chat: chat.slug });
    const swapped = await sc.ok('sub', { chat: chat.slug });
    const names = swapped.presence.map((p) => p.user.username);
    assert.equal(swapped.online, M + 3);
    assert.ok(names.includes(other.user.username), 'a sub after a leave and a join sees the joiner');
    assert.ok(!names.includes(late.user.username), 'and not the one who left');
  });

  test('the presence and activeUsers a room keeps encoded follow every change', async () => {
    // A sub reply's presence page and activeUsers are encoded once per room and reused by the
    // next sub that finds the same participants in the same states, and the same openers under
    // the same names (issue 15: a storm of subs encoded the same lists again and again). Each
    // change below must show in the next sub's reply, while o's own sub keeps the room alive.
    const [o, a, b, c] = await signupMany(srv, ['ko', 'ka', 'kb', 'kc']);
    const [oc, ac, bc, cc] = await Promise.all([o, a, b, c].map((x) => connect(srv, { token: x.token })));
    open.push(oc, ac, bc, cc);
    const { chat } = await oc.ok('chat.create', { title: 'kept', isPublic: true });
    await Promise.all([ac, bc, cc].map((x) => x.ok('chat.join', { chat: chat.slug })));
    await oc.ok('sub', { chat: chat.slug });
    const stateOf = (r, x) => r.presence.find((p) => p.user.id === x.user.id)?.state;
    const r1 = await ac.ok('sub', { chat: chat.slug });
    assert.equal(stateOf(r1, b), 'online');
    assert.deepEqual(usernames(r1.activeUsers), usernames([o.user, a.user]));

    // A state changes: the next page has it, though nobody joined or left.
    await bc.ok('presence', { state: 'idle' }); // (idle shows as away)
    await waitPresence(oc, b.user.username, 'away');
    const r2 = await cc.ok('sub', { chat: chat.slug });
    assert.equal(stateOf(r2, b), 'away', 'the kept page is not reused after a state change');
    assert.equal(stateOf(r2, o), 'online');
    assert.deepEqual(usernames(r2.activeUsers), usernames([o.user, a.user, c.user]));

    // An opener is renamed: both copies of the list in the next reply carry the new name. The
    // reply goes to o's second socket, so the openers are the same ones: only the name changed.
    await oc.ok('me.update', { displayName: 'Owner Renamed' });
    const oc2 = await connect(srv, { token: o.token });
    open.push(oc2);
    const r3 = await oc2.ok('sub', { chat: chat.slug });
    assert.equal(r3.activeUsers.find((u) => u.id === o.user.id)?.displayName, 'Owner Renamed');
    assert.deepEqual(r3.chat.activeUsers, r3.activeUsers, 'chat.activeUsers is the same list');
    assert.deepEqual(usernames(r3.activeUsers), usernames([o.user, a.user, c.user]));
    assert.equal(r3.activeCount, 3);

    // An opener closes the chat: the next reply's list is without them.
    await ac.ok('unsub', { chat: chat.slug });
    const r4 = await bc.ok('sub', { chat: chat.slug });
    assert.deepEqual(usernames(r4.activeUsers), usernames([o.user, b.user, c.user]));
    assert.deepEqual(r4.chat.activeUsers, r4.activeUsers);
    assert.equal(r4.activeCount, 3);
  });

  test(`${N} members of one chat connecting at once get O(N) presence frames in all`, async (t) => {
    // Presence on connect goes to every online user who shares a chat: one event per member per
    // arrival was N^2/2 frames. Changes close together now reach each recipient as one event per
    // window, listing each change in `users` (src/app/presence_batch.c).
    const { oc, users, slug, clients } = shared;
    const from = oc.events.length;
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(users.map((u) => waitPresence(oc, u.user.username, 'offline', { from, timeout: 15000 })));

    const fromOwner = oc.frames.length;
    const fromOwnerEv = oc.events.length;
    const again = await Promise.all(users.map((u) => connect(srv, { token: u.token })));
    open.push(...again);
    // The owner, online throughout, hears of every one of them coming online.
    const names = usernames(users.map((u) => u.user));
    const online = new Set();
    await oc.waitFor(
      (e) => {
        if (e.ev !== 'presence') return false;
        for (const p of presenceEntries(e)) if (p.state === 'online') online.add(p.user.username);
        return names.every((n) => online.has(n));
      },
      { from: fromOwnerEv, what: `presence online of all ${N}`, timeout: 15000 },
    );
    // Those who connected first hear of the later ones: a late sub reply shows everyone online.
    const sub = await again[0].ok('sub', { chat: slug });
    assert.equal(sub.online, N + 1);

    const frames = again.reduce((s, c) => s + c.frames.length, 0) + (oc.frames.length - fromOwner);
    const kinds = {};
    for (const f of [...again.flatMap((c) => c.frames), ...oc.frames.slice(fromOwner)]) {
      kinds[f.ev ?? 'reply'] = (kinds[f.ev ?? 'reply'] ?? 0) + 1;
    }
    t.diagnostic(`${frames} frames for ${N} connecting users: ${JSON.stringify(kinds)}`);
    assert.ok(
      frames <= PER_USER * N,
      `${frames} frames for ${N} connecting users (${(frames / N).toFixed(1)} each; at most ${PER_USER}): ${JSON.stringify(kinds)}`,
    );
  });
});
