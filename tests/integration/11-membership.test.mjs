// 11 - Membership: chat.update, chat.leave (ownership succession, archiving), chat.remove (who
// may remove whom; removal cuts a live subscriber off mid-stream), chat.setRole (promote, demote,
// transfer ownership), and what chat.list tells about each chat. Every change is checked from the
// other participants' sockets too (chat.updated, participant.* and removed events).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  assertConsecutive,
  barrier,
  connect,
  eventChat,
  eventsNamed,
  inviteAndAccept,
  makeChat,
  signupMany,
} from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('membership', () => {
  const srv = useServer();

  let ana, bob, cy, dee, eve, fay; // {user, token, cookie}
  let a, b, c, d, e, f; // their sockets; ana owns every chat made with room()
  const open = [];

  before(async () => {
    [ana, bob, cy, dee, eve, fay] = await signupMany(srv, ['ana', 'bob', 'cy', 'dee', 'eve', 'fay']);
    [a, b, c, d, e, f] = await Promise.all(
      [ana, bob, cy, dee, eve, fay].map((u) => connect(srv, { token: u.token })),
    );
    open.push(a, b, c, d, e, f);
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  const room = (opts = {}) => makeChat(a, opts);
  const name = (s) => s.user.username;
  // Where each socket's events stand now, once every event of earlier requests has arrived (so
  // that an event of the set-up is never taken for one of the step under test).
  const marks = async (...socks) => {
    await barrier(...socks);
    return new Map(socks.map((s) => [s, s.events.length]));
  };
  // The participants of a chat as "username:role", sorted, as its owner (or `by`) sees them.
  async function roster(slug, by = a) {
    const { participants } = await by.ok('chat.get', { chat: slug });
    return participants.map((p) => `${p.username}:${p.role}`).sort();
  }

  describe('chat.update', () => {
    test('the owner renames: the reply, and chat.updated (without role) to every participant only', async () => {
      const slug = await room({ title: 'Before', admins: [b], join: [c] });
      const from = await marks(a, b, c, e);
      const { chat } = await a.ok('chat.update', { chat: slug, title: 'Renamed by owner' });
      assert.equal(chat.slug, slug);
      assert.equal(chat.title, 'Renamed by owner');
      assert.equal(chat.role, 'owner');
      assert.equal(chat.participantCount, 3);
      assert.equal(chat.isPublic, true, 'fields not named stay as they were');
      for (const s of [a, b, c]) {
        const ev = await s.waitFor((x) => x.ev === 'chat.updated' && eventChat(x) === slug, {
          from: from.get(s),
          what: `chat.updated on ${name(s)}`,
        });
        assert.equal(ev.chat.title, 'Renamed by owner');
        assert.equal(ev.chat.participantCount, 3);
        assert.ok(!('role' in ev.chat), `the event leaves the sender's role out: ${JSON.stringify(ev.chat)}`);
      }
      await barrier(e);
      assert.deepEqual(eventsNamed(e, 'chat.updated', from.get(e), (x) => eventChat(x) === slug), [], 'no event to an outsider');
      const { chat: seen } = await c.ok('chat.get', { chat: slug });
      assert.equal(seen.title, 'Renamed by owner');
    });

    test('an admin changes isPublic, maxParticipants and invitePolicy at once', async () => {
      const slug = await room({ admins: [b], join: [c], invitePolicy: 'admins' });
      const from = await marks(c);
      const { chat } = await b.ok('chat.update', {
        chat: slug,
        isPublic: false,
        maxParticipants: 5,
        invitePolicy: 'members',
      });
      assert.equal(chat.isPublic, false);
      assert.equal(chat.maxParticipants, 5);
      assert.equal(chat.invitePolicy, 'members');
      assert.equal(chat.role, 'admin');
      const ev = await c.waitFor((x) => x.ev === 'chat.updated' && eventChat(x) === slug, { from: from.get(c) });
      assert.equal(ev.chat.isPublic, false);
      assert.equal(ev.chat.maxParticipants, 5);
      assert.equal(ev.chat.invitePolicy, 'members');
      const { chat: seen } = await c.ok('chat.get', { chat: slug });
      assert.deepEqual([seen.isPublic, seen.maxParticipants, seen.invitePolicy], [false, 5, 'members']);
      // Now private: to an outsider it does not exist (not_found), so it can be neither looked at
      // nor joined.
      await e.fail('chat.get', { chat: slug }, 'not_found');
      await e.fail('chat.join', { chat: slug }, 'not_found');
    });

    test('a member and an outsider are refused with forbidden, and nothing changes', async () => {
      const slug = await room({ title: 'Stable', join: [c] });
      const before = (await a.ok('chat.get', { chat: slug })).chat;
      const from = await marks(a, c);
      await c.fail('chat.update', { chat: slug, title: 'Hijacked' }, 'forbidden');
      await c.fail('chat.update', { chat: slug, isPublic: false }, 'forbidden');
      await c.fail('chat.update', { chat: slug, invitePolicy: 'members' }, 'forbidden');
      await e.fail('chat.update', { chat: slug, title: 'Hijacked' }, 'forbidden');
      await e.fail('chat.update', { chat: slug, maxParticipants: null }, 'forbidden');
      const afterRefusal = (await a.ok('chat.get', { chat: slug })).chat;
      for (const k of ['title', 'isPublic', 'maxParticipants', 'invitePolicy', 'lastActivity']) {
        assert.deepEqual(afterRefusal[k], before[k], k);
      }
      await barrier(a, c);
      assert.deepEqual(eventsNamed(a, 'chat.updated', from.get(a), (x) => eventChat(x) === slug), []);
      assert.deepEqual(eventsNamed(c, 'chat.updated', from.get(c), (x) => eventChat(x) === slug), []);
    });

    test('a cap below the participant count is conflict with a clear message; equal is fine; null removes it', async () => {
      const slug = await room({ join: [b, c] }); // 3 participants
      const err = await a.fail('chat.update', { chat: slug, maxParticipants: 2 }, 'conflict');
      assert.match(err.message, /maxParticipants|participant/i, `a message that says why: ${err.message}`);
      assert.equal((await a.ok('chat.get', { chat: slug })).chat.maxParticipants, null, 'the refused cap was not stored');
      // Everything in a refused update is refused: the title that came with it is not applied.
      await a.fail('chat.update', { chat: slug, maxParticipants: 2, title: 'Not applied' }, 'conflict');
      assert.notEqual((await a.ok('chat.get', { chat: slug })).chat.title, 'Not applied');

      const { chat } = await a.ok('chat.update', { chat: slug, maxParticipants: 3 });
      assert.equal(chat.maxParticipants, 3);
      await e.fail('chat.join', { chat: slug }, 'chat_full');

      const { chat: uncapped } = await a.ok('chat.update', { chat: slug, maxParticipants: null });
      assert.equal(uncapped.maxParticipants, null);
      const joined = await e.ok('chat.join', { chat: slug });
      assert.equal(joined.chat.participantCount, 4);
    });

    test('every invitePolicy value round-trips', async () => {
      const slug = await room();
      for (const p of ['owner', 'members', 'admins']) {
        const { chat } = await a.ok('chat.update', { chat: slug, invitePolicy: p });
        assert.equal(chat.invitePolicy, p);
        assert.equal((await a.ok('chat.get', { chat: slug })).chat.invitePolicy, p);
      }
    });

    test('invalid updates are bad_request naming the field; an unknown chat is not_found', async () => {
      const slug = await room();
      const cases = [
        [{ chat: slug }, /title|isPublic|maxParticipants|invitePolicy|nothing/],
        [{ chat: slug, invitePolicy: 'everyone' }, /invitePolicy/],
        [{ chat: slug, invitePolicy: 3 }, /invitePolicy/],
        [{ chat: slug, maxParticipants: 1 }, /maxParticipants/],
        [{ chat: slug, maxParticipants: 10001 }, /maxParticipants/],
        [{ chat: slug, maxParticipants: 'ten' }, /maxParticipants/],
        [{ chat: slug, isPublic: 'no' }, /isPublic/],
        [{ chat: slug, title: '' }, /title/],
        [{ chat: slug, title: '   ' }, /title/],
        [{ title: 'no chat' }, /chat/],
      ];
      for (const [args, field] of cases) {
        const err = await a.fail('chat.update', args, 'bad_request');
        assert.match(err.message, field, `${JSON.stringify(args)}: ${err.message}`);
      }
      await a.fail('chat.update', { chat: slug, title: 'x'.repeat(101) }, 'too_large');
      await a.fail('chat.update', { chat: 'no-such-chat-zz', title: 'x' }, 'not_found');
      const { chat } = await a.ok('chat.get', { chat: slug });
      assert.equal(chat.title, 'room');
      assert.equal(chat.maxParticipants, null);
    });
  });

  describe('chat.leave', () => {
    test("a member leaves: participant.left to the others and the leaver's other sockets; the subscription ends", async () => {
      const slug = await room({ join: [c, d] });
      const c2 = await connect(srv, { token: cy.token });
      open.push(c2);
      await a.ok('sub', { chat: slug });
      await c.ok('sub', { chat: slug });
      const from = await marks(a, c, c2, d);
      const r = await c.ok('chat.leave', { chat: slug });
      assert.equal(r.chat?.slug ?? r.chat, slug);
      assert.equal(r.archived, false);
      for (const s of [a, d, c2]) {
        const ev = await s.waitFor((x) => x.ev === 'participant.left' && x.chat === slug, {
          from: from.get(s),
          what: `participant.left on ${name(s)}`,
        });
        assert.equal(ev.user.username, cy.user.username);
        assert.equal(ev.participantCount, 2);
        assert.ok(!ev.newOwner, 'ownership did not move');
      }
      // The leaver's subscription ended with the leave.
      const sent = await a.ok('msg.send', { chat: slug, body: 'after cy left' });
      await a.waitSeq(slug, sent.msg.seq);
      await barrier(c);
      assert.deepEqual(c.msgs(slug, from.get(c)), [], 'no msg after leaving');
      // The chat is gone from the leaver's list, and they are an outsider now.
      const { chats } = await c.ok('chat.list');
      assert.ok(!chats.some((x) => x.slug === slug));
      await c.fail('sub', { chat: slug }, 'forbidden');
      await c.fail('msg.send', { chat: slug, body: 'still here?' }, 'forbidden');
      await c.fail('msg.history', { chat: slug }, 'forbidden');
      const { chat } = await c.ok('chat.get', { chat: slug }); // public: still visible
      assert.equal(chat.role, null);
      assert.equal(chat.participantCount, 2);
      assert.deepEqual(await roster(slug), [`${ana.user.username}:owner`, `${dee.user.username}:member`].sort());
    });

    test('the owner leaving hands ownership to the longest-standing admin, before an earlier member', async () => {
      // cy joins first (a member), then dee and bob, who are both made admins.
      const slug = await room({ join: [c, d, b], admins: [d, b] });
      const { participants } = await a.ok('chat.get', { chat: slug });
      const admins = participants
        .filter((p) => p.role === 'admin')
        .sort((x, y) => x.joinedAt - y.joinedAt || x.id - y.id);
      assert.equal(admins.length, 2);
      for (const p of participants) assert.equal(typeof p.joinedAt, 'number', 'participants carry joinedAt');
      const heir = admins[0];
      const cyP = participants.find((p) => p.username === cy.user.username);
      assert.ok(cyP.joinedAt <= heir.joinedAt, 'the member joined no later than the admins');

      const from = await marks(b, c, d);
      const r = await a.ok('chat.leave', { chat: slug });
      assert.equal(r.archived, false);
      for (const s of [b, c, d]) {
        const ev = await s.waitFor((x) => x.ev === 'participant.left' && x.chat === slug, { from: from.get(s) });
        assert.equal(ev.user.username, ana.user.username);
        assert.equal(ev.participantCount, 3);
        assert.equal(ev.newOwner?.username, heir.username, `newOwner in ${JSON.stringify(ev)}`);
      }
      const other = admins[1];
      assert.deepEqual(
        await roster(slug, b),
        [`${heir.username}:owner`, `${other.username}:admin`, `${cy.user.username}:member`].sort(),
      );
      const heirSock = [b, d].find((s) => name(s) === heir.username);
      const { chat } = await heirSock.ok('chat.get', { chat: slug });
      assert.equal(chat.role, 'owner');
      // The heir has the owner's powers now.
      await heirSock.ok('chat.setRole', { chat: slug, user: cy.user.username, role: 'admin' });
    });

    test('with no admin, the longest-standing member becomes the owner', async () => {
      const slug = await room({ join: [c, d] });
      const { participants } = await a.ok('chat.get', { chat: slug });
      const heir = participants
        .filter((p) => p.role === 'member')
        .sort((x, y) => x.joinedAt - y.joinedAt || x.id - y.id)[0];
      const from = await marks(c, d);
      await a.ok('chat.leave', { chat: slug });
      for (const s of [c, d]) {
        const ev = await s.waitFor((x) => x.ev === 'participant.left' && x.chat === slug, { from: from.get(s) });
        assert.equal(ev.newOwner?.username, heir.username);
        assert.equal(ev.participantCount, 2);
      }
      const heirSock = [c, d].find((s) => name(s) === heir.username);
      const { chat, participants: now } = await heirSock.ok('chat.get', { chat: slug });
      assert.equal(chat.role, 'owner');
      assert.equal(now.filter((p) => p.role === 'owner').length, 1, 'exactly one owner');
      assert.ok(!now.some((p) => p.username === ana.user.username));
    });

    test('the last participant leaving archives the chat: it is not_found afterwards', async () => {
      const slug = await room({ join: [c] });
      const r1 = await c.ok('chat.leave', { chat: slug });
      assert.equal(r1.archived, false);
      const r2 = await a.ok('chat.leave', { chat: slug });
      assert.equal(r2.archived, true);
      await a.fail('chat.get', { chat: slug }, 'not_found');
      await a.fail('chat.join', { chat: slug }, 'not_found');
      await e.fail('chat.get', { chat: slug }, 'not_found');
      await e.fail('chat.join', { chat: slug }, 'not_found');
      await c.fail('chat.join', { chat: slug }, 'not_found');
      const { chats } = await a.ok('chat.list');
      assert.ok(!chats.some((x) => x.slug === slug));
    });

    test('archiving revokes the pending invitations, and the invitee is told', async () => {
      const slug = await room();
      const { invitation } = await a.ok('invite.create', { chat: slug, user: dee.user.username });
      const from = await marks(d);
      const r = await a.ok('chat.leave', { chat: slug });
      assert.equal(r.archived, true);
      const ev = await d.waitFor((x) => x.ev === 'invite' && x.invitation?.id === invitation.id, {
        from: from.get(d),
        what: 'invite revoked to the invitee',
      });
      assert.equal(ev.action, 'revoked');
      assert.equal(ev.invitation.status, 'revoked');
      await d.fail('invite.accept', { invitation: invitation.id }, 'not_found');
      const { incoming } = await d.ok('invite.list');
      assert.ok(!incoming.some((x) => x.id === invitation.id));
    });

    test('leaving a chat one is not in is forbidden; an unknown chat is not_found', async () => {
      const slug = await room({ join: [c] });
      await e.fail('chat.leave', { chat: slug }, 'forbidden');
      await e.fail('chat.leave', { chat: 'no-such-chat-zz' }, 'not_found');
      await e.fail('chat.leave', {}, 'bad_request');
      assert.equal((await a.ok('chat.get', { chat: slug })).chat.participantCount, 2);
    });
  });

  describe('chat.remove', () => {
    test('the owner removes a member: removed to all their sockets, participant.removed to the rest', async () => {
      const slug = await room({ admins: [b], join: [c, d] });
      const c2 = await connect(srv, { token: cy.token });
      open.push(c2);
      const from = await marks(a, b, c, c2, d);
      const r = await a.ok('chat.remove', { chat: slug, user: cy.user.username });
      assert.equal(r.chat?.slug ?? r.chat, slug);
      assert.equal(r.user.username, cy.user.username);
      for (const s of [c, c2]) {
        const ev = await s.waitFor((x) => x.ev === 'removed' && x.chat === slug, { from: from.get(s) });
        assert.equal(ev.by.username, ana.user.username);
      }
      for (const s of [a, b, d]) {
        const ev = await s.waitFor((x) => x.ev === 'participant.removed' && x.chat === slug, {
          from: from.get(s),
          what: `participant.removed on ${name(s)}`,
        });
        assert.equal(ev.user.username, cy.user.username);
        assert.equal(ev.by.username, ana.user.username);
        assert.equal(ev.participantCount, 3);
      }
      const { chats } = await c.ok('chat.list');
      assert.ok(!chats.some((x) => x.slug === slug), 'gone from the removed user’s list');
      assert.deepEqual(
        await roster(slug),
        [`${ana.user.username}:owner`, `${bob.user.username}:admin`, `${dee.user.username}:member`].sort(),
      );
    });

    test('a user removed from a public chat cannot rejoin it by themselves; an invitation lets them back', async () => {
      const slug = await room({ join: [c] }); // public
      await a.ok('chat.remove', { chat: slug, user: cy.user.username });
      const err = await c.fail('chat.join', { chat: slug }, 'forbidden');
      assert.match(err.message, /removed/);
      const { chat } = await c.ok('chat.get', { chat: slug }); // a public chat stays visible
      assert.equal(chat.role, null);
      await c.fail('sub', { chat: slug }, 'forbidden');
      // The owner invites them back: accepting lifts the removal.
      await inviteAndAccept(a, c, slug);
      await c.ok('sub', { chat: slug });
      await c.ok('chat.leave', { chat: slug });
      await c.ok('chat.join', { chat: slug }); // left by choice: free to come back
    });

    test('the owner removes an admin', async () => {
      const slug = await room({ admins: [b, d] });
      const r = await a.ok('chat.remove', { chat: slug, user: bob.user.username });
      assert.equal(r.user.username, bob.user.username);
      assert.deepEqual(await roster(slug), [`${ana.user.username}:owner`, `${dee.user.username}:admin`].sort());
      await b.fail('sub', { chat: slug }, 'forbidden');
    });

    test('an admin removes a member, but neither another admin nor the owner', async () => {
      const slug = await room({ admins: [b, f], join: [c, d] });
      await b.ok('chat.remove', { chat: slug, user: dee.user.username });
      await b.fail('chat.remove', { chat: slug, user: fay.user.username }, 'forbidden');
      await b.fail('chat.remove', { chat: slug, user: ana.user.username }, 'forbidden');
      assert.deepEqual(
        await roster(slug),
        [
          `${ana.user.username}:owner`,
          `${bob.user.username}:admin`,
          `${fay.user.username}:admin`,
          `${cy.user.username}:member`,
        ].sort(),
      );
    });

    test('a member removes nobody; an outsider neither', async () => {
      const slug = await room({ admins: [b], join: [c, d] });
      const before = await roster(slug);
      await c.fail('chat.remove', { chat: slug, user: dee.user.username }, 'forbidden');
      await c.fail('chat.remove', { chat: slug, user: bob.user.username }, 'forbidden');
      await c.fail('chat.remove', { chat: slug, user: ana.user.username }, 'forbidden');
      await e.fail('chat.remove', { chat: slug, user: dee.user.username }, 'forbidden');
      assert.deepEqual(await roster(slug), before);
    });

    test('removing oneself is bad_request (chat.leave is the way out)', async () => {
      const slug = await room({ admins: [b], join: [c] });
      const before = await roster(slug);
      await a.fail('chat.remove', { chat: slug, user: ana.user.username }, 'bad_request');
      await b.fail('chat.remove', { chat: slug, user: bob.user.username }, 'bad_request');
      await c.fail('chat.remove', { chat: slug, user: cy.user.username }, 'bad_request');
      assert.deepEqual(await roster(slug), before);
    });

    test('removing a non-participant or an unknown user is not_found', async () => {
      const slug = await room({ join: [c] });
      await a.fail('chat.remove', { chat: slug, user: eve.user.username }, 'not_found');
      await a.fail('chat.remove', { chat: slug, user: 'nobody_by_that_name' }, 'not_found');
      await a.fail('chat.remove', { chat: 'no-such-chat-zz', user: cy.user.username }, 'not_found');
      assert.equal((await a.ok('chat.get', { chat: slug })).chat.participantCount, 2);
    });

    test('removal cuts a live subscriber off mid-stream, on every socket, and every later op is not_found (a private chat)', async () => {
      const slug = await room({ title: 'Streaming', admins: [b], join: [c, d], isPublic: false });
      const c2 = await connect(srv, { token: cy.token });
      open.push(c2);
      let base = 0; // the seq before the stream: the joins' and role's notices (issue 17)
      for (const s of [b, c, c2, d]) base = (await s.ok('sub', { chat: slug })).lastSeq;
      const from = await marks(b, c, c2, d);

      // bob streams messages back to back. Sends issued after the removal's reply was received
      // were committed after the removal: their seqs must never reach cy.
      let removalAcked = false;
      let firstSeqAfterRemoval = Infinity;
      let afterRemoval = 0;
      let lastSeq = 0;
      const streamer = (async () => {
        for (let i = 0; afterRemoval < 15; i++) {
          if (i > 2000) throw new Error('the stream never saw the removal');
          const issuedAfter = removalAcked;
          const r = await b.ok('msg.send', { chat: slug, body: `tick ${i}`, clientMsgId: `tick-${i}` });
          lastSeq = Math.max(lastSeq, r.msg.seq);
          if (issuedAfter) {
            afterRemoval++;
            firstSeqAfterRemoval = Math.min(firstSeqAfterRemoval, r.msg.seq);
          }
        }
      })();

      // cy is live in the stream before being removed.
      await Promise.all([
        c.waitSeq(slug, base + 5, { from: from.get(c) }),
        c2.waitSeq(slug, base + 5, { from: from.get(c2) }),
      ]);
      await a.ok('chat.remove', { chat: slug, user: cy.user.username });
      removalAcked = true;
      await streamer;

      await d.waitSeq(slug, lastSeq, { from: from.get(d) });
      await barrier(c, c2);
      for (const [label, s] of [['socket 1', c], ['socket 2', c2]]) {
        const evs = s.events.slice(from.get(s));
        const at = evs.findIndex((x) => x.ev === 'removed' && x.chat === slug);
        assert.ok(at >= 0, `${label}: a removed event`);
        assert.equal(evs[at].by.username, ana.user.username);
        const lateMsgs = evs.slice(at + 1).filter((x) => x.ev === 'msg' && x.chat === slug);
        assert.deepEqual(lateMsgs.map((x) => x.msg.seq), [], `${label}: no msg after the removed event`);
        const got = s.msgs(slug, from.get(s)).map((m) => m.seq);
        assert.ok(got.length >= 5, `${label}: was receiving before the removal`);
        assertConsecutive(got, got[0], `${label} seqs before the removal`);
        assert.ok(
          got.every((q) => q < firstSeqAfterRemoval),
          `${label}: got seq ${got.at(-1)}, but ${firstSeqAfterRemoval} was sent after the removal`,
        );
      }
      // The stream itself went on for the others, gap-free.
      const dSeqs = d.msgs(slug, from.get(d)).map((m) => m.seq);
      assertConsecutive(dSeqs, dSeqs[0], 'dee');
      assert.equal(dSeqs.at(-1), lastSeq);
      const pr = await d.waitFor((x) => x.ev === 'participant.removed' && x.chat === slug, { from: from.get(d) });
      assert.equal(pr.user.username, cy.user.username);

      // Every later op on the chat is refused for cy, who keeps a working socket: the chat is
      // private, so to cy, an outsider now, it does not exist (not_found).
      await c.fail('sub', { chat: slug }, 'not_found');
      await c.fail('sub', { chat: slug, since: 0 }, 'not_found');
      await c.fail('msg.send', { chat: slug, body: 'let me back', clientMsgId: 'back-1' }, 'not_found');
      await c.fail('msg.history', { chat: slug }, 'not_found');
      await c.fail('chat.get', { chat: slug }, 'not_found');
      await c.fail('read', { chat: slug, seq: 1 }, 'not_found');
      await c.fail('chat.join', { chat: slug }, 'not_found');
      await c2.fail('sub', { chat: slug }, 'not_found');
      const { msgs } = await d.ok('msg.history', { chat: slug, limit: 1 });
      assert.equal(msgs[0].seq, lastSeq, 'the refused send stored nothing');
      await c.ok('ping');
      assert.ok(c.isOpen && c2.isOpen, 'removal does not close the sockets');
    });
  });

  describe('chat.setRole', () => {
    test('the owner promotes a member to admin: participant.updated to everyone; the admin may then update the chat', async () => {
      const slug = await room({ join: [c, d] });
      const from = await marks(a, c, d);
      const r = await a.ok('chat.setRole', { chat: slug, user: cy.user.username, role: 'admin' });
      assert.equal(r.chat?.slug ?? r.chat, slug);
      assert.equal(r.user.username, cy.user.username);
      assert.equal(r.role, 'admin');
      for (const s of [a, c, d]) {
        const ev = await s.waitFor((x) => x.ev === 'participant.updated' && x.chat === slug, { from: from.get(s) });
        assert.equal(ev.user.username, cy.user.username);
        assert.equal(ev.role, 'admin');
      }
      assert.equal((await c.ok('chat.get', { chat: slug })).chat.role, 'admin');
      await c.ok('chat.update', { chat: slug, title: 'Renamed by new admin' });
      await d.fail('chat.update', { chat: slug, title: 'not me' }, 'forbidden');
    });

    test('the owner demotes an admin, who may then no longer update the chat', async () => {
      const slug = await room({ admins: [b] });
      const from = await marks(b);
      const r = await a.ok('chat.setRole', { chat: slug, user: bob.user.username, role: 'member' });
      assert.equal(r.role, 'member');
      const ev = await b.waitFor((x) => x.ev === 'participant.updated' && x.chat === slug, { from: from.get(b) });
      assert.equal(ev.role, 'member');
      await b.fail('chat.update', { chat: slug, title: 'not any more' }, 'forbidden');
      assert.deepEqual(await roster(slug), [`${ana.user.username}:owner`, `${bob.user.username}:member`].sort());
    });

    test('transferring ownership: the new owner is owner, the old one an admin, two participant.updated events', async () => {
      const slug = await room({ admins: [b], join: [c] });
      const from = await marks(a, b, c);
      const r = await a.ok('chat.setRole', { chat: slug, user: cy.user.username, role: 'owner' });
      assert.equal(r.role, 'owner');
      for (const s of [a, b, c]) {
        const seen = new Map();
        await s.waitFor(
          (x) => {
            if (x.ev === 'participant.updated' && x.chat === slug) seen.set(x.user.username, x.role);
            return seen.size >= 2;
          },
          { from: from.get(s), what: `two participant.updated on ${name(s)}` },
        );
        assert.equal(seen.get(cy.user.username), 'owner');
        assert.equal(seen.get(ana.user.username), 'admin');
      }
      assert.deepEqual(
        await roster(slug, c),
        [`${cy.user.username}:owner`, `${ana.user.username}:admin`, `${bob.user.username}:admin`].sort(),
      );
      assert.equal((await a.ok('chat.get', { chat: slug })).chat.role, 'admin');
      // Only the new owner changes roles now.
      await a.fail('chat.setRole', { chat: slug, user: bob.user.username, role: 'member' }, 'forbidden');
      await c.ok('chat.setRole', { chat: slug, user: ana.user.username, role: 'member' });
      // And the new owner may remove the old one.
      await c.ok('chat.remove', { chat: slug, user: ana.user.username });
    });

    test('only the owner changes roles', async () => {
      const slug = await room({ admins: [b], join: [c, d] });
      const before = await roster(slug);
      await b.fail('chat.setRole', { chat: slug, user: cy.user.username, role: 'admin' }, 'forbidden');
      await b.fail('chat.setRole', { chat: slug, user: bob.user.username, role: 'owner' }, 'forbidden');
      await c.fail('chat.setRole', { chat: slug, user: cy.user.username, role: 'admin' }, 'forbidden');
      await c.fail('chat.setRole', { chat: slug, user: dee.user.username, role: 'admin' }, 'forbidden');
      await e.fail('chat.setRole', { chat: slug, user: cy.user.username, role: 'admin' }, 'forbidden');
      assert.deepEqual(await roster(slug), before);
    });

    test('role must be member, admin or owner; the target must be a participant', async () => {
      const slug = await room({ join: [c] });
      for (const role of ['root', 'Owner', '', 3, null]) {
        const err = await a.fail('chat.setRole', { chat: slug, user: cy.user.username, role }, 'bad_request');
        assert.match(err.message, /role/, `${JSON.stringify(role)}: ${err.message}`);
      }
      await a.fail('chat.setRole', { chat: slug, user: eve.user.username, role: 'admin' }, 'not_found');
      await a.fail('chat.setRole', { chat: slug, user: 'nobody_by_that_name', role: 'admin' }, 'not_found');
      // The owner cannot demote themselves (ownership moves by giving it to someone).
      const r = await a.request('chat.setRole', { chat: slug, user: ana.user.username, role: 'member' });
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.deepEqual(await roster(slug), [`${ana.user.username}:owner`, `${cy.user.username}:member`].sort());
    });
  });

  describe('chat.list', () => {
    test('participantCount, role, unread (own messages never count), lastMessage', async () => {
      const slug = await room({ admins: [b], join: [c] });
      // The joins' and the role change's notices come first (issue 17); they are never unread.
      const base = (await a.ok('chat.get', { chat: slug })).chat.lastSeq;
      await a.ok('msg.send', { chat: slug, body: 'm1' });
      await a.ok('msg.send', { chat: slug, body: 'm2' });
      await c.ok('read', { chat: slug, seq: base + 2 });
      for (const body of ['m3', 'm4', 'm5']) await c.ok('msg.send', { chat: slug, body });

      const entry = async (s) => {
        const { chats } = await s.ok('chat.list');
        const x = chats.find((y) => y.slug === slug);
        assert.ok(x, `${name(s)} lists the chat`);
        return x;
      };
      const forA = await entry(a);
      assert.equal(forA.participantCount, 3);
      assert.equal(forA.role, 'owner');
      assert.equal(forA.unread, 3, "ana's own m1, m2 are not unread; cy's m3-m5 are");
      assert.equal(forA.lastMessage?.seq, base + 5);
      assert.equal(forA.lastMessage?.body, 'm5');
      assert.equal(forA.lastMessage?.author?.username, cy.user.username);
      assert.equal(forA.lastSeq, base + 5);

      const forB = await entry(b);
      assert.equal(forB.role, 'admin');
      assert.equal(forB.unread, 5);
      const forC = await entry(c);
      assert.equal(forC.role, 'member');
      assert.equal(forC.unread, 0, 'read up to 2, then only own messages');
      assert.equal(forC.lastMessage?.body, 'm5');

      await a.ok('read', { chat: slug, seq: base + 4 });
      assert.equal((await entry(a)).unread, 1);
      await b.ok('read', { chat: slug, seq: base + 5 });
      assert.equal((await entry(b)).unread, 0);
    });

    test('invitations lists the pending incoming invitations, and only those', async () => {
      const slug = await room({ title: 'Invite only', isPublic: false });
      const { invitation } = await a.ok('invite.create', { chat: slug, user: eve.user.username });
      const listE = await e.ok('chat.list');
      assert.ok(Array.isArray(listE.invitations), JSON.stringify(listE));
      const inv = listE.invitations.find((x) => x.id === invitation.id);
      assert.ok(inv, `eve's chat.list has the invitation: ${JSON.stringify(listE.invitations)}`);
      assert.equal(inv.chat, slug);
      assert.equal(inv.chatTitle, 'Invite only');
      assert.equal(inv.status, 'pending');
      assert.equal(inv.from.username, ana.user.username);
      assert.ok(!listE.chats.some((x) => x.slug === slug), 'not a participant yet');
      const listA = await a.ok('chat.list');
      assert.ok(!listA.invitations.some((x) => x.id === invitation.id), "the inviter's outgoing invitations are not listed");

      await e.ok('invite.accept', { invitation: invitation.id });
      const after = await e.ok('chat.list');
      assert.ok(!after.invitations.some((x) => x.id === invitation.id));
      const x = after.chats.find((y) => y.slug === slug);
      assert.ok(x, 'listed once accepted');
      assert.equal(x.role, 'member');
      assert.equal(x.participantCount, 2);
    });
  });
});
