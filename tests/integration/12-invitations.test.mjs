// 12 - Invitations between users on different connections: users.search, invite.create /
// accept / decline / revoke / list with the `invite` and participant.joined events on every side,
// the one-pending-invitation rule, the invite policy (owner, admins, members), and expiry by the
// server's sweep with a short ttl.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { barrier, connect, eventsNamed, inviteAndAccept, makeChat, signup } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const DAY_MS = 24 * 3600 * 1000;

describe('invitations', () => {
  const srv = useServer();

  // This file's server is its own: the names are fixed so that searches have exact answers.
  const PEOPLE = [
    ['ana', 'Ana Ortiz'],
    ['anabel', 'Belle'],
    ['bob', 'Bob Builder'],
    ['cyrus', 'Anakin Cyrus'],
    ['dee', 'Dee'],
    ['eve', 'Eve'],
  ];
  const U = {}; // username -> {user, token, cookie}
  let a, bel, b, c, d, e; // sockets: owner, a bystander, admin, invitee, member, outsider
  const open = [];

  before(async () => {
    // Plus 21 users named zz00..zz20, so that a search has more hits than its limit of 20.
    const crowd = Array.from({ length: 21 }, (_, i) => `zz${String(i).padStart(2, '0')}`);
    const [accounts] = await Promise.all([
      Promise.all(PEOPLE.map(([n, dn]) => signup(srv, n, undefined, dn))),
      Promise.all(crowd.map((n) => signup(srv, n))),
    ]);
    for (const acc of accounts) U[acc.user.username] = acc;
    [a, bel, b, c, d, e] = await Promise.all(PEOPLE.map(([n]) => connect(srv, { token: U[n].token })));
    open.push(a, bel, b, c, d, e);
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  // Where each socket's events stand now, once every event of earlier requests has arrived (so
  // that an event of the set-up is never taken for one of the step under test).
  const marks = async (...socks) => {
    await barrier(...socks);
    return new Map(socks.map((s) => [s, s.events.length]));
  };
  // A private chat of ana's with bob as admin and dee as member.
  const team = (opts = {}) => makeChat(a, { title: 'Team', isPublic: false, admins: [b], join: [d], ...opts });
  const inviteEvent = (s, action, id, from) =>
    s.waitFor((x) => x.ev === 'invite' && x.action === action && x.invitation?.id === id, {
      from,
      what: `invite ${action} #${id} on ${s.user.username}`,
    });

  describe('users.search', () => {
    const names = (r) => r.users.map((u) => u.username).sort();

    test('finds by username or display-name prefix, in any case, never the caller', async () => {
      assert.deepEqual(names(await a.ok('users.search', { q: 'ANA' })), ['anabel', 'cyrus']);
      assert.deepEqual(names(await b.ok('users.search', { q: 'ana' })), ['ana', 'anabel', 'cyrus']);
      assert.deepEqual(names(await b.ok('users.search', { q: 'aNaKiN' })), ['cyrus'], 'display name, any case');
      assert.deepEqual(names(await b.ok('users.search', { q: 'anab' })), ['anabel']);
      assert.deepEqual(names(await b.ok('users.search', { q: 'bel' })), ['anabel'], 'display name "Belle"');
      assert.deepEqual(names(await b.ok('users.search', { q: 'nabel' })), [], 'a prefix, not a substring');
      assert.deepEqual(names(await b.ok('users.search', { q: 'zzz' })), []);
      assert.deepEqual(names(await b.ok('users.search', { q: 'bob' })), [], 'the caller is excluded');
      const { users } = await b.ok('users.search', { q: 'cyr' });
      assert.deepEqual(users.map(({ id, username, displayName, avatar, bot }) => ({ id, username, displayName, avatar, bot })), [
        U.cyrus.user,
      ]);
    });

    test('finds the start of any word of the display name too, after the prefixes', async () => {
      const order = (r) => r.users.map((u) => u.username);
      assert.deepEqual(order(await a.ok('users.search', { q: 'BUILD' })), ['bob'], '"Bob Builder"');
      assert.deepEqual(order(await a.ok('users.search', { q: 'uilder' })), [], 'not inside a word');
      // Username prefixes first, then display name prefixes; bob's word start is no second hit.
      assert.deepEqual(order(await a.ok('users.search', { q: 'b' })), ['bob', 'anabel']);
    });

    test('returns at most 20 users', async () => {
      const { users } = await a.ok('users.search', { q: 'zz' });
      assert.equal(users.length, 20);
      assert.ok(users.every((u) => /^zz\d\d$/.test(u.username)));
      assert.equal(new Set(users.map((u) => u.username)).size, 20, 'no duplicates');
      assert.equal((await a.ok('users.search', { q: 'zz1' })).users.length, 10);
    });

    test('with a chat, marks participants and invited users', async () => {
      const slug = await team();
      await a.ok('invite.create', { chat: slug, user: 'cyrus' });
      const by = async (q) => {
        const { users } = await a.ok('users.search', { q, chat: slug });
        assert.equal(users.length, 1, `${q}: ${JSON.stringify(users)}`);
        return users[0];
      };
      assert.deepEqual([(await by('bob')).participant, (await by('bob')).invited], [true, false]);
      assert.deepEqual([(await by('dee')).participant, (await by('dee')).invited], [true, false]);
      const cy = await by('cyrus');
      assert.deepEqual([cy.participant, cy.invited], [false, true]);
      const ev = await by('eve');
      assert.deepEqual([ev.participant, ev.invited], [false, false]);
    });

    test('q must be 1-64 characters, not only white space', async () => {
      await a.fail('users.search', {}, 'bad_request');
      await a.fail('users.search', { q: '' }, 'bad_request');
      await a.fail('users.search', { q: '   ' }, 'bad_request');
      await a.fail('users.search', { q: 5 }, 'bad_request');
      await a.fail('users.search', { q: 'x'.repeat(65) }, 'too_large');
      await a.ok('users.search', { q: 'x'.repeat(64) });
    });
  });

  describe('the invitation flow', () => {
    test('invite, list, accept: both sides told, every participant sees the join, the invitee can then sub and send', async () => {
      const slug = await team({ title: 'Secret team' });
      await b.ok('sub', { chat: slug });
      const from = await marks(a, b, c, d, e);

      // cyrus is not in yet: to him the private chat does not exist.
      await c.fail('sub', { chat: slug }, 'not_found');
      await c.fail('chat.get', { chat: slug }, 'not_found');

      const t0 = Date.now();
      const created = await a.ok('invite.create', { chat: slug, user: 'cyrus' });
      assert.equal(created.created, true);
      const inv = created.invitation;
      assert.equal(typeof inv.id, 'number');
      assert.ok(Number.isInteger(inv.id) && inv.id > 0);
      assert.equal(inv.chat, slug);
      assert.equal(inv.chatTitle, 'Secret team');
      assert.deepEqual(inv.from, U.ana.user);
      assert.deepEqual(inv.to, U.cyrus.user);
      assert.equal(inv.status, 'pending');
      assert.ok(Math.abs(inv.createdAt - t0) < 60_000);
      assert.equal(inv.expiresAt - inv.createdAt, 7 * DAY_MS, 'default expiry: 7 days');

      // The invitee's socket is told, and so is the inviter's.
      const got = await inviteEvent(c, 'received', inv.id, from.get(c));
      assert.deepEqual(got.invitation, inv);
      await inviteEvent(a, 'received', inv.id, from.get(a));

      // invite.list: incoming for cyrus; outgoing for ana (sent it) and bob (admin), not for dee.
      const lc = await c.ok('invite.list');
      assert.deepEqual(lc.incoming.filter((x) => x.chat === slug).map((x) => x.id), [inv.id]);
      assert.deepEqual(lc.outgoing, []);
      const la = await a.ok('invite.list');
      assert.ok(la.outgoing.some((x) => x.id === inv.id && x.status === 'pending'), JSON.stringify(la));
      assert.ok(!la.incoming.some((x) => x.id === inv.id));
      const lb = await b.ok('invite.list');
      assert.ok(lb.outgoing.some((x) => x.id === inv.id), 'an admin may manage it: listed as outgoing');
      const ld = await d.ok('invite.list');
      assert.ok(![...ld.incoming, ...ld.outgoing].some((x) => x.id === inv.id), 'a plain member does not see it');
      const le = await e.ok('invite.list');
      assert.ok(![...le.incoming, ...le.outgoing].some((x) => x.id === inv.id));

      // Accept.
      const acc = await c.ok('invite.accept', { invitation: inv.id });
      assert.equal(acc.invitation.id, inv.id);
      assert.equal(acc.invitation.status, 'accepted');
      assert.equal(acc.chat.slug, slug);
      assert.equal(acc.chat.role, 'member');
      assert.equal(acc.chat.participantCount, 4);
      for (const s of [a, c]) {
        const ev = await inviteEvent(s, 'accepted', inv.id, from.get(s));
        assert.equal(ev.invitation.status, 'accepted');
      }
      for (const s of [a, b, d]) {
        const ev = await s.waitFor((x) => x.ev === 'participant.joined' && x.chat === slug, {
          from: from.get(s),
          what: `participant.joined on ${s.user.username}`,
        });
        assert.deepEqual(ev.user, U.cyrus.user);
        assert.equal(ev.role, 'member');
        assert.equal(ev.participantCount, 4);
      }
      await barrier(e);
      assert.deepEqual(eventsNamed(e, 'participant.joined', from.get(e)), [], 'nothing to an outsider');
      assert.deepEqual(eventsNamed(e, 'invite', from.get(e)), []);

      // Now a participant: sub, send, and the others see it.
      await c.ok('sub', { chat: slug });
      const sent = await c.ok('msg.send', { chat: slug, body: 'thanks for having me', clientMsgId: 'cy-1' });
      const seen = await b.waitSeq(slug, sent.msg.seq);
      assert.equal(seen.msg.body, 'thanks for having me');
      assert.equal((await c.ok('chat.get', { chat: slug })).chat.role, 'member');
      assert.deepEqual((await c.ok('invite.list')).incoming.filter((x) => x.chat === slug), []);
      assert.ok(!(await a.ok('invite.list')).outgoing.some((x) => x.id === inv.id), 'no longer pending');

      // Accepting twice is conflict; inviting a participant is conflict.
      await c.fail('invite.accept', { invitation: inv.id }, 'conflict');
      await c.fail('invite.decline', { invitation: inv.id }, 'conflict');
      await a.fail('invite.create', { chat: slug, user: 'cyrus' }, 'conflict');
      await a.fail('invite.create', { chat: slug, user: 'bob' }, 'conflict');
    });

    test('re-inviting while pending returns the same invitation (created: false), also from an admin, and tells nobody again', async () => {
      const slug = await team();
      const from = await marks(e);
      const first = await a.ok('invite.create', { chat: slug, user: 'eve' });
      assert.equal(first.created, true);
      await inviteEvent(e, 'received', first.invitation.id, from.get(e));
      const again = await a.ok('invite.create', { chat: slug, user: 'eve' });
      assert.equal(again.created, false);
      assert.equal(again.invitation.id, first.invitation.id);
      assert.equal(again.invitation.status, 'pending');
      const byAdmin = await b.ok('invite.create', { chat: slug, user: 'eve', ttl: 60 });
      assert.equal(byAdmin.created, false);
      assert.equal(byAdmin.invitation.id, first.invitation.id);
      await barrier(e);
      assert.equal(eventsNamed(e, 'invite', from.get(e), (x) => x.action === 'received').length, 1, 'one received event');
      const { incoming } = await e.ok('invite.list');
      assert.equal(incoming.filter((x) => x.chat === slug).length, 1, 'one pending invitation per chat and invitee');
    });

    test('unknown user, unknown chat and an archived chat are not_found', async () => {
      const slug = await team();
      await a.fail('invite.create', { chat: slug, user: 'nobody_by_that_name' }, 'not_found');
      await a.fail('invite.create', { chat: 'no-such-chat-zz', user: 'eve' }, 'not_found');
      const gone = await makeChat(a, { title: 'Soon archived', isPublic: false });
      assert.equal((await a.ok('chat.leave', { chat: gone })).archived, true);
      await a.fail('invite.create', { chat: gone, user: 'eve' }, 'not_found');
    });

    test("someone else's invitation is not_found for accept and decline; it stays pending", async () => {
      const slug = await team();
      const { invitation } = await a.ok('invite.create', { chat: slug, user: 'eve' });
      await c.fail('invite.accept', { invitation: invitation.id }, 'not_found');
      await c.fail('invite.decline', { invitation: invitation.id }, 'not_found');
      await a.fail('invite.accept', { invitation: invitation.id }, 'not_found'); // the inviter neither
      await d.fail('invite.accept', { invitation: invitation.id }, 'not_found');
      const { incoming } = await e.ok('invite.list');
      assert.ok(incoming.some((x) => x.id === invitation.id && x.status === 'pending'));
      await c.fail('chat.get', { chat: slug }, 'not_found');
    });

    test('decline: both sides told, the invitee stays out, and a declined invitation can be re-issued', async () => {
      const slug = await team();
      const from = await marks(a, e);
      const { invitation } = await a.ok('invite.create', { chat: slug, user: 'eve' });
      const r = await e.ok('invite.decline', { invitation: invitation.id });
      assert.equal(r.invitation.id, invitation.id);
      assert.equal(r.invitation.status, 'declined');
      for (const s of [a, e]) {
        const ev = await inviteEvent(s, 'declined', invitation.id, from.get(s));
        assert.equal(ev.invitation.status, 'declined');
      }
      await e.fail('chat.get', { chat: slug }, 'not_found');
      assert.equal((await a.ok('chat.get', { chat: slug })).chat.participantCount, 3);
      assert.deepEqual((await e.ok('invite.list')).incoming.filter((x) => x.chat === slug), []);
      await e.fail('invite.accept', { invitation: invitation.id }, 'conflict');
      await e.fail('invite.decline', { invitation: invitation.id }, 'conflict');

      const from2 = e.events.length;
      const again = await a.ok('invite.create', { chat: slug, user: 'eve' });
      assert.equal(again.created, true, 're-issued');
      assert.notEqual(again.invitation.id, invitation.id);
      assert.equal(again.invitation.status, 'pending');
      await inviteEvent(e, 'received', again.invitation.id, from2);
      await e.ok('invite.accept', { invitation: again.invitation.id });
      assert.equal((await e.ok('chat.get', { chat: slug })).chat.role, 'member');
    });

    test('revoke by the inviter and by an admin; a plain member who did not send it is forbidden', async () => {
      const slug = await team({ invitePolicy: 'members' });
      // The owner revokes their own invitation.
      let from = await marks(a, e);
      const own = (await a.ok('invite.create', { chat: slug, user: 'eve' })).invitation;
      const r1 = await a.ok('invite.revoke', { invitation: own.id });
      assert.equal(r1.invitation.status, 'revoked');
      for (const s of [a, e]) await inviteEvent(s, 'revoked', own.id, from.get(s));
      await e.fail('invite.accept', { invitation: own.id }, 'conflict');
      await a.fail('invite.revoke', { invitation: own.id }, 'conflict');

      // A member's invitation: another member may not revoke it; an admin may.
      await inviteAndAccept(a, c, slug);
      from = await marks(d, e);
      const bymember = await d.ok('invite.create', { chat: slug, user: 'eve' });
      assert.equal(bymember.created, true, 'a fresh invitation after the revoked one');
      const inv = bymember.invitation;
      assert.deepEqual(inv.from, U.dee.user);
      await c.fail('invite.revoke', { invitation: inv.id }, 'forbidden');
      await e.fail('invite.revoke', { invitation: inv.id }, 'forbidden'); // the invitee declines instead
      assert.ok((await e.ok('invite.list')).incoming.some((x) => x.id === inv.id), 'still pending');
      const r2 = await b.ok('invite.revoke', { invitation: inv.id });
      assert.equal(r2.invitation.status, 'revoked');
      for (const s of [d, e]) await inviteEvent(s, 'revoked', inv.id, from.get(s));

      // The member revokes their own.
      const mine = (await d.ok('invite.create', { chat: slug, user: 'anabel' })).invitation;
      assert.equal((await d.ok('invite.revoke', { invitation: mine.id })).invitation.status, 'revoked');
      assert.deepEqual((await bel.ok('invite.list')).incoming.filter((x) => x.chat === slug), []);
    });

    test('a stale invitation cannot undo a removal: a join settles it, only a newer one lets the removed user back (issue 14.5)', async () => {
      const slug = await makeChat(a, { title: 'Open house' }); // public: eve may join by herself
      const from = await marks(a, e);
      const { invitation: old } = await a.ok('invite.create', { chat: slug, user: 'eve' });
      await inviteEvent(e, 'received', old.id, from.get(e));

      // eve joins without it: the invitation is settled as accepted, and both sides are told.
      const joined = await e.ok('chat.join', { chat: slug });
      assert.equal(joined.chat.role, 'member');
      for (const s of [a, e]) {
        const ev = await inviteEvent(s, 'accepted', old.id, from.get(s));
        assert.equal(ev.invitation.status, 'accepted');
      }
      assert.ok(!(await e.ok('invite.list')).incoming.some((x) => x.id === old.id), 'not listed to the invitee');
      assert.ok(!(await a.ok('invite.list')).outgoing.some((x) => x.id === old.id), 'nor to the inviter');

      // Removed, she cannot come back through the old invitation, nor by joining.
      await a.ok('chat.remove', { chat: slug, user: 'eve' });
      await e.fail('invite.accept', { invitation: old.id }, 'conflict');
      await e.fail('chat.join', { chat: slug }, 'forbidden');
      const members = (await a.ok('chat.get', { chat: slug })).participants.map((p) => p.username);
      assert.ok(!members.includes('eve'), JSON.stringify(members));

      // An invitation made after the removal does let her in.
      const { invitation: fresh } = await a.ok('invite.create', { chat: slug, user: 'eve' });
      assert.notEqual(fresh.id, old.id);
      const acc = await e.ok('invite.accept', { invitation: fresh.id });
      assert.equal(acc.chat.role, 'member');
    });
  });

  describe('invite policy', () => {
    // Who may invite under each policy. Each inviter invites a different user, so an allowed
    // invitation is always a new one (created: true) and a refused one leaves none behind.
    const TABLE = {
      owner: { owner: true, admin: false, member: false, outsider: false },
      admins: { owner: true, admin: true, member: false, outsider: false },
      members: { owner: true, admin: true, member: true, outsider: false },
    };
    for (const [policy, allowed] of Object.entries(TABLE)) {
      test(`policy "${policy}": ${Object.entries(allowed).map(([r, ok]) => `${r} ${ok ? 'may' : 'may not'}`).join(', ')}`, async () => {
        const slug = await makeChat(a, { title: `Policy ${policy}`, admins: [b], join: [d], invitePolicy: 'owner' });
        // Set with chat.update (from a different value), and it is what the chat says.
        const { chat } = await a.ok('chat.update', { chat: slug, invitePolicy: policy });
        assert.equal(chat.invitePolicy, policy);
        const inviters = { owner: [a, 'eve'], admin: [b, 'cyrus'], member: [d, 'anabel'], outsider: [e, 'cyrus'] };
        for (const role of ['owner', 'admin', 'member', 'outsider']) {
          const [s, target] = inviters[role];
          if (allowed[role]) {
            const r = await s.ok('invite.create', { chat: slug, user: target });
            assert.equal(r.created, true, `${role} under ${policy}`);
            assert.equal(r.invitation.from.username, s.user.username);
          } else {
            await s.fail('invite.create', { chat: slug, user: target }, 'forbidden');
          }
        }
        // Exactly the allowed invitations exist.
        const { outgoing } = await a.ok('invite.list');
        const expected = ['owner', 'admin', 'member'].filter((r) => allowed[r]).map((r) => inviters[r][1]);
        assert.deepEqual(
          outgoing.filter((x) => x.chat === slug).map((x) => x.to.username).sort(),
          expected.sort(),
        );
      });
    }

    test('a policy change takes effect at once', async () => {
      const slug = await makeChat(a, { title: 'Policy switch', join: [d], invitePolicy: 'admins' });
      await d.fail('invite.create', { chat: slug, user: 'eve' }, 'forbidden');
      await a.ok('chat.update', { chat: slug, invitePolicy: 'members' });
      await d.ok('invite.create', { chat: slug, user: 'eve' });
      await a.ok('chat.update', { chat: slug, invitePolicy: 'owner' });
      await d.fail('invite.create', { chat: slug, user: 'cyrus' }, 'forbidden');
    });

    test('an outsider may not invite to a public chat either', async () => {
      const slug = await makeChat(a, { title: 'Public', isPublic: true, invitePolicy: 'members' });
      await e.fail('invite.create', { chat: slug, user: 'cyrus' }, 'forbidden');
      assert.deepEqual((await c.ok('invite.list')).incoming.filter((x) => x.chat === slug), []);
    });
  });

  describe('expiry', () => {
    test('ttl 1: the sweep expires it within about two seconds, both sides are told, accepting is expired, it can be re-issued', async () => {
      const slug = await team({ title: 'Short lived' });
      const from = await marks(a, e);
      const { invitation } = await a.ok('invite.create', { chat: slug, user: 'eve', ttl: 1 });
      const t0 = Date.now();
      assert.equal(invitation.expiresAt - invitation.createdAt, 1000);
      const [evE, evA] = await Promise.all([
        inviteEvent(e, 'expired', invitation.id, from.get(e)),
        inviteEvent(a, 'expired', invitation.id, from.get(a)),
      ]);
      const waited = Date.now() - t0;
      assert.ok(waited >= 800, `announced after ${waited} ms: not before its time`);
      assert.ok(waited < 3500, `announced after ${waited} ms: the sweep runs every second`);
      assert.equal(evE.invitation.status, 'expired');
      assert.equal(evA.invitation.status, 'expired');
      assert.deepEqual((await e.ok('invite.list')).incoming.filter((x) => x.chat === slug), []);
      assert.ok(!(await a.ok('invite.list')).outgoing.some((x) => x.id === invitation.id));
      await e.fail('chat.get', { chat: slug }, 'not_found');
      const { users } = await a.ok('users.search', { q: 'eve', chat: slug });
      assert.equal(users[0].invited, false, 'an expired invitation does not count as invited');

      const again = await a.ok('invite.create', { chat: slug, user: 'eve' });
      assert.equal(again.created, true);
      assert.notEqual(again.invitation.id, invitation.id);
      assert.equal(again.invitation.status, 'pending');
      // Accepting the expired one (after the sweep marked it) is `expired`, not a join.
      await e.fail('invite.accept', { invitation: invitation.id }, 'expired');
      await e.ok('invite.accept', { invitation: again.invitation.id });
    });

    test('ttl sets expiresAt; out of range is bad_request', async () => {
      const slug = await team();
      const { invitation } = await a.ok('invite.create', { chat: slug, user: 'eve', ttl: 3600 });
      assert.equal(invitation.expiresAt - invitation.createdAt, 3600 * 1000);
      const max = await a.ok('invite.create', { chat: slug, user: 'anabel', ttl: 30 * 24 * 3600 });
      assert.equal(max.invitation.expiresAt - max.invitation.createdAt, 30 * DAY_MS);
      // (ttl: null counts as absent, like every optional field: the default applies.)
      for (const ttl of [0, -1, 30 * 24 * 3600 + 1, 'soon', 1.5, true]) {
        const err = await a.fail('invite.create', { chat: slug, user: 'cyrus', ttl }, 'bad_request');
        assert.match(err.message, /ttl/, `${JSON.stringify(ttl)}: ${err.message}`);
      }
      assert.deepEqual((await c.ok('invite.list')).incoming.filter((x) => x.chat === slug), []);
    });
  });
});
