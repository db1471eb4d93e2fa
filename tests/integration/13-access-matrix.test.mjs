// 13 - The access-control matrix against the real server: every op on a chat x the caller's role
// (owner, admin, member, outsider) x public/private. A refused cell must answer exactly
// `forbidden` (`not_found` to an outsider of a private chat, or the documented code), change nothing (chat fields, participants and roles,
// pending invitations, lastSeq, lastActivity) and send no event about the chat to anyone. An
// allowed cell must succeed (on a fresh chat when it changes membership). Then malformed and
// unknown names and ids: refused cleanly, and the socket stays usable.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { barrier, connect, eventChat, makeChat, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const ROLES = ['outsider', 'member', 'admin', 'owner']; // refused cells tend to come first
const VIS = ['public', 'private'];
// The events that announce a change; a refused request must cause none of them. (Presence events
// such as chat.active follow subscriptions of earlier cells on their own schedule.)
const CHANGE_EVENTS = new Set([
  'msg',
  'chat.updated',
  'participant.joined',
  'participant.left',
  'participant.removed',
  'participant.updated',
  'removed',
  'invite',
]);

describe('access matrix', () => {
  const srv = useServer();

  let acct; // role or name -> {user, token, cookie}
  let S; // role -> socket: owner, admin, member, outsider, plus tmem and tadm (targets)
  let all; // every socket

  before(async () => {
    const names = ['owner', 'admin', 'member', 'outsider', 'tmem', 'tadm', 'pend', 'fresh'];
    const accounts = await signupMany(srv, names);
    acct = Object.fromEntries(names.map((n, i) => [n, accounts[i]]));
    const socks = await Promise.all(
      ['owner', 'admin', 'member', 'outsider', 'tmem', 'tadm'].map((n) => connect(srv, { token: acct[n].token })),
    );
    S = Object.fromEntries(['owner', 'admin', 'member', 'outsider', 'tmem', 'tadm'].map((n, i) => [n, socks[i]]));
    all = socks;
  });

  after(async () => {
    await Promise.all((all || []).map((s) => s.close().catch(() => {})));
  });

  const uname = (n) => acct[n].user.username;

  // A chat with: owner; admin and tadm as admins; member and tmem as members; a pending
  // invitation (owner -> pend); one message; invitePolicy "admins".
  async function fixture(vis) {
    const slug = await makeChat(S.owner, {
      title: `matrix ${vis}`,
      isPublic: vis === 'public',
      join: [S.member, S.tmem],
      admins: [S.admin, S.tadm],
      invitePolicy: 'admins',
    });
    const { invitation } = await S.owner.ok('invite.create', { chat: slug, user: uname('pend') });
    await S.owner.ok('msg.send', { chat: slug, body: 'seed' });
    return { slug, vis, invitation: invitation.id };
  }

  // What must not change when a request is refused, as the owner sees it.
  async function snapshot(f) {
    const { chat, participants } = await S.owner.ok('chat.get', { chat: f.slug });
    const { outgoing } = await S.owner.ok('invite.list');
    const keep = ['title', 'isPublic', 'maxParticipants', 'invitePolicy', 'archived', 'lastSeq', 'participantCount', 'lastActivity'];
    return {
      chat: Object.fromEntries(keep.map((k) => [k, chat[k]])),
      participants: participants.map((p) => `${p.username}:${p.role}`).sort(),
      invitations: outgoing
        .filter((x) => x.chat === f.slug)
        .map((x) => `${x.id}:${x.to.username}:${x.status}`)
        .sort(),
    };
  }

  const not = (...roles) => (role) => !roles.includes(role);
  const only = (...roles) => (role) => roles.includes(role);

  // allow(role, vis): true when the cell is allowed. refuse: the code of a refused cell when it is
  // not the default (`forbidden`; `not_found` for an outsider of a private chat). fresh(role, vis): the allowed cell changes membership or settings that later
  // cells rely on, so it runs on a chat of its own.
  const ROWS = [
    { name: 'chat.get', op: 'chat.get', args: (f) => ({ chat: f.slug }), allow: (r, v) => r !== 'outsider' || v === 'public' },
    { name: 'msg.history', op: 'msg.history', args: (f) => ({ chat: f.slug }), allow: not('outsider') },
    { name: 'sub', op: 'sub', args: (f) => ({ chat: f.slug }), allow: not('outsider') },
    { name: 'sub since 0', op: 'sub', args: (f) => ({ chat: f.slug, since: 0 }), allow: not('outsider') },
    { name: 'read', op: 'read', args: (f) => ({ chat: f.slug, seq: 1 }), allow: not('outsider') },
    { name: 'msg.send', op: 'msg.send', args: (f) => ({ chat: f.slug, body: 'matrix' }), allow: not('outsider') },
    {
      name: 'chat.join',
      op: 'chat.join',
      args: (f) => ({ chat: f.slug }),
      allow: (r, v) => r !== 'outsider' || v === 'public',
      fresh: (r) => r === 'outsider',
    },
    { name: 'chat.update title', op: 'chat.update', args: (f) => ({ chat: f.slug, title: 'changed' }), allow: only('owner', 'admin') },
    {
      name: 'chat.update isPublic',
      op: 'chat.update',
      args: (f) => ({ chat: f.slug, isPublic: f.vis !== 'public' }),
      allow: only('owner', 'admin'),
      fresh: () => true,
    },
    {
      name: 'chat.update maxParticipants',
      op: 'chat.update',
      args: (f) => ({ chat: f.slug, maxParticipants: 50 }),
      allow: only('owner', 'admin'),
    },
    {
      name: 'chat.update invitePolicy',
      op: 'chat.update',
      args: (f) => ({ chat: f.slug, invitePolicy: 'members' }),
      allow: only('owner', 'admin'),
      fresh: () => true,
    },
    { name: 'chat.leave', op: 'chat.leave', args: (f) => ({ chat: f.slug }), allow: not('outsider'), fresh: () => true },
    {
      name: 'chat.remove a member',
      op: 'chat.remove',
      args: (f) => ({ chat: f.slug, user: uname('tmem') }),
      allow: only('owner', 'admin'),
      fresh: () => true,
    },
    {
      name: 'chat.remove an admin',
      op: 'chat.remove',
      args: (f) => ({ chat: f.slug, user: uname('tadm') }),
      allow: only('owner'),
      fresh: () => true,
    },
    {
      name: 'chat.remove the owner',
      op: 'chat.remove',
      args: (f) => ({ chat: f.slug, user: uname('owner') }),
      allow: () => false,
      refuse: { owner: 'bad_request' }, // removing oneself
    },
    {
      name: 'chat.setRole member -> admin',
      op: 'chat.setRole',
      args: (f) => ({ chat: f.slug, user: uname('tmem'), role: 'admin' }),
      allow: only('owner'),
      fresh: () => true,
    },
    {
      name: 'chat.setRole admin -> member',
      op: 'chat.setRole',
      args: (f) => ({ chat: f.slug, user: uname('tadm'), role: 'member' }),
      allow: only('owner'),
      fresh: () => true,
    },
    {
      name: 'chat.setRole -> owner',
      op: 'chat.setRole',
      args: (f) => ({ chat: f.slug, user: uname('tmem'), role: 'owner' }),
      allow: only('owner'),
      fresh: () => true,
    },
    {
      name: 'chat.setRole of the owner',
      op: 'chat.setRole',
      args: (f) => ({ chat: f.slug, user: uname('owner'), role: 'member' }),
      allow: () => false, // the owner hands ownership over instead of demoting themselves
    },
    ...['owner', 'admins', 'members'].map((policy) => ({
      name: `invite.create (policy ${policy})`,
      op: 'invite.create',
      setup: (f) => S.owner.ok('chat.update', { chat: f.slug, invitePolicy: policy }),
      args: (f) => ({ chat: f.slug, user: uname('fresh') }),
      allow: { owner: only('owner'), admins: only('owner', 'admin'), members: not('outsider') }[policy],
    })),
    {
      name: 'invite.revoke',
      op: 'invite.revoke',
      args: (f) => ({ invitation: f.invitation }),
      allow: only('owner', 'admin'),
      // Someone with no tie to the chat or the invitation learns nothing about it (as with
      // accepting someone else's invitation): not_found, so invitation ids cannot be probed.
      refuse: { outsider: 'not_found' },
      fresh: () => true,
    },
  ];

  for (const vis of VIS) {
    describe(`${vis} chat`, () => {
      let shared;
      before(async () => {
        shared = await fixture(vis);
      });

      for (const row of ROWS) {
        for (const role of ROLES) {
          const allowed = row.allow(role, vis);
          // A private chat does not exist for an outsider: not_found, so slugs cannot be probed.
          const refused = role === 'outsider' && vis === 'private' ? 'not_found' : 'forbidden';
          const expect = allowed ? 'ok' : row.refuse?.[role] ?? refused;
          test(`${row.name} by ${role}: ${expect}`, async () => {
            const s = S[role];
            const f = allowed && row.fresh?.(role, vis) ? await fixture(vis) : shared;
            if (row.setup) await row.setup(f);
            await barrier(...all); // every event of earlier cells has arrived
            if (allowed) {
              const r = await s.request(row.op, row.args(f));
              assert.equal(r.ok, true, `${row.op} by ${role} on a ${vis} chat: ${JSON.stringify(r)}`);
              if (row.op === 'chat.join') assert.equal(r.chat.role, role === 'outsider' ? 'member' : role, 'role unchanged');
              return;
            }
            const before = await snapshot(f);
            const from = all.map((x) => x.events.length);
            await s.fail(row.op, row.args(f), expect);
            await barrier(...all);
            assert.deepEqual(await snapshot(f), before, 'nothing changed');
            const leaked = all.flatMap((x, i) =>
              x.events
                .slice(from[i])
                .filter((ev) => CHANGE_EVENTS.has(ev.ev))
                .filter((ev) => eventChat(ev) === f.slug || ev.invitation?.chat === f.slug)
                .map((ev) => `${x.user.username}: ${JSON.stringify(ev).slice(0, 160)}`),
            );
            assert.deepEqual(leaked, [], 'no event about the chat');
            assert.ok(s.isOpen);
          });
        }
      }
    });
  }

  describe('malformed and unknown names and ids', () => {
    let slug, inv;
    before(async () => {
      slug = await makeChat(S.owner, { title: 'ids', join: [S.member], isPublic: false, invitePolicy: 'admins' });
      ({ invitation: inv } = await S.owner.ok('invite.create', { chat: slug, user: uname('outsider') }));
    });

    const BAD_INVITATION = [
      ['a numeric string', '5'],
      ['negative', -1],
      ['zero', 0],
      ['fractional', 1.5],
      ['null', null],
      ['boolean', true],
      ['an object', { id: 5 }],
      ['an array', [5]],
      ['over 2^53', 2 ** 60],
      ['a huge float', 1e300],
    ];

    for (const op of ['invite.accept', 'invite.decline', 'invite.revoke']) {
      test(`${op}: a malformed invitation is bad_request, an unknown one not_found; the socket stays usable`, async () => {
        const s = op === 'invite.revoke' ? S.owner : S.outsider;
        for (const [what, value] of BAD_INVITATION) {
          const err = await s.fail(op, { invitation: value }, 'bad_request');
          assert.match(err.message, /invitation/, `${what}: ${err.message}`);
        }
        const err = await s.fail(op, {}, 'bad_request');
        assert.match(err.message, /invitation/);
        await s.fail(op, { invitation: inv.id + 1_000_000 }, 'not_found');
        await s.fail(op, { invitation: 2 ** 53 - 1 }, 'not_found');
        await s.ok('ping');
        // The real invitation is untouched by all of that.
        const { incoming } = await S.outsider.ok('invite.list');
        assert.ok(incoming.some((x) => x.id === inv.id && x.status === 'pending'));
      });
    }

    test('an invitation id beyond 64 bits is refused as bad_request (with its id or id null)', async () => {
      const s = S.outsider;
      const nulls = s.nullReplies.length;
      await s.sendRaw('{"id":4242,"op":"invite.accept","invitation":123456789012345678901234567890}');
      await s.ok('ping'); // answered in order behind the refusal, which needs no database
      const replies = [...(s.unmatched || []).filter((x) => x.id === 4242), ...s.nullReplies.slice(nulls)];
      assert.equal(replies.length, 1, JSON.stringify(replies));
      assert.equal(replies[0].ok, false);
      assert.equal(replies[0].error.code, 'bad_request');
      assert.ok(s.isOpen);
    });

    test('a user with invalid characters, empty, too short or not a string is bad_request', async () => {
      const bad = ['bad name!', 'semi;colon', 'ab', '', 'sp ace', 'ünïcode', 42, null, { u: 1 }];
      const calls = [
        ['invite.create', (user) => ({ chat: slug, user })],
        ['chat.remove', (user) => ({ chat: slug, user })],
        ['chat.setRole', (user) => ({ chat: slug, user, role: 'admin' })],
      ];
      for (const [op, args] of calls) {
        for (const user of bad) {
          const err = await S.owner.fail(op, args(user), 'bad_request');
          assert.match(err.message, /user/, `${op} ${JSON.stringify(user)}: ${err.message}`);
        }
        const long = await S.owner.request(op, args('x'.repeat(33)));
        assert.ok(['bad_request', 'too_large'].includes(long.error?.code), `${op} 33 chars: ${JSON.stringify(long)}`);
        await S.owner.fail(op, args('nobody_by_that_name'), 'not_found');
      }
      const { participants } = await S.owner.ok('chat.get', { chat: slug });
      assert.deepEqual(participants.map((p) => p.role).sort(), ['member', 'owner']);
    });

    test('role "root" and invitePolicy "everyone" are bad_request', async () => {
      for (const role of ['root', 'ADMIN', 'none', '']) {
        const err = await S.owner.fail('chat.setRole', { chat: slug, user: uname('member'), role }, 'bad_request');
        assert.match(err.message, /role/);
      }
      for (const invitePolicy of ['everyone', 'Admins', 'admin', '']) {
        const err = await S.owner.fail('chat.update', { chat: slug, invitePolicy }, 'bad_request');
        assert.match(err.message, /invitePolicy/);
      }
      const { chat, participants } = await S.owner.ok('chat.get', { chat: slug });
      assert.equal(chat.invitePolicy, 'admins');
      assert.equal(participants.find((p) => p.username === uname('member')).role, 'member');
    });

    test('an unknown chat is not_found for every op; a malformed slug bad_request', async () => {
      const s = S.owner;
      const ops = [
        ['chat.get', {}],
        ['chat.join', {}],
        ['chat.update', { title: 'x' }],
        ['chat.leave', {}],
        ['chat.remove', { user: uname('member') }],
        ['chat.setRole', { user: uname('member'), role: 'admin' }],
        ['invite.create', { user: uname('member') }],
        ['sub', {}],
        ['msg.history', {}],
        ['msg.send', { body: 'x' }],
      ];
      for (const [op, args] of ops) {
        await s.fail(op, { chat: 'no-such-chat-zz', ...args }, 'not_found');
        const err = await s.fail(op, { chat: 'Bad Slug!', ...args }, 'bad_request');
        assert.match(err.message, /chat/, `${op}: ${err.message}`);
        await s.fail(op, { chat: 7, ...args }, 'bad_request');
      }
      await s.ok('ping');
    });
  });
});
