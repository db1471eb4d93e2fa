// 14 - The participant cap under a race: a chat with maxParticipants 4 (the owner and room for
// three) and ten users, each on their own connection, who accept their invitations, or join the
// public chat, at the same moment. Exactly three get in, the other seven are told chat_full, the
// losers' invitations stay pending, and the participants hear exactly three joins. Each race runs
// a few rounds, on fresh chats, to give an ordering bug several chances to show.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { barrier, connect, eventsNamed, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const RACERS = 10;
const CAP = 4;
const ROOM = CAP - 1; // the owner counts
const ROUNDS = 3;

describe('participant cap under a race', () => {
  const srv = useServer();

  let o; // the owner's socket
  let racers; // ten sockets
  const open = [];

  before(async () => {
    const [owner, ...rest] = await signupMany(srv, ['own', ...Array.from({ length: RACERS }, (_, i) => `r${i}`)]);
    [o, ...racers] = await Promise.all([owner, ...rest].map((u) => connect(srv, { token: u.token })));
    open.push(o, ...racers);
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  const name = (s) => s.user.username;

  // Invites every socket in `who` to slug and waits until each has been told.
  async function inviteAll(slug, who) {
    const froms = who.map((s) => s.events.length);
    const invs = await Promise.all(who.map((s) => o.ok('invite.create', { chat: slug, user: name(s) })));
    await Promise.all(
      who.map((s, i) =>
        s.waitFor((e) => e.ev === 'invite' && e.action === 'received' && e.invitation.id === invs[i].invitation.id, {
          from: froms[i],
        }),
      ),
    );
    return invs.map((r) => r.invitation);
  }

  // The replies split into winners and losers; asserts exactly ROOM winners and chat_full for
  // every loser. Returns {winners, losers} as arrays of sockets.
  function split(replies, who, what) {
    const winners = who.filter((_, i) => replies[i].ok);
    const losers = who.filter((_, i) => !replies[i].ok);
    const codes = replies.filter((r) => !r.ok).map((r) => r.error?.code);
    assert.equal(winners.length, ROOM, `${what}: ${winners.length} got in (${JSON.stringify(replies.map((r) => r.ok || r.error?.code))})`);
    assert.deepEqual(codes, Array(who.length - ROOM).fill('chat_full'), `${what}: the others are chat_full`);
    return { winners, losers };
  }

  // The chat holds exactly the owner and the winners; the owner heard exactly their joins.
  async function assertRoster(slug, winners, ownerFrom, what) {
    const { chat, participants } = await o.ok('chat.get', { chat: slug });
    assert.equal(chat.participantCount, CAP, `${what}: participantCount`);
    assert.deepEqual(
      participants.map((p) => p.username).sort(),
      [name(o), ...winners.map(name)].sort(),
      `${what}: participants`,
    );
    // Joins close together come as one throttled participant.joined listing them all in `users`
    // (docs/protocol.md, churn throttle), so wait until every winner has been heard of.
    const joins = () => eventsNamed(o, 'participant.joined', ownerFrom, (e) => e.chat === slug);
    const heard = () => joins().flatMap((e) => (e.users ? e.users.map((u) => u.user.username) : [e.user.username]));
    await o.waitFor(() => heard().length >= winners.length, { from: ownerFrom, what: `${what}: every join` });
    await barrier(o);
    assert.deepEqual(heard().sort(), winners.map(name).sort(), `${what}: joined events`);
    assert.equal(joins().at(-1).participantCount, CAP, `${what}: the count in the last joined event`);
  }

  for (let round = 1; round <= ROUNDS; round++) {
    test(`round ${round}: ten users accept invitations at once to a private chat with room for three`, async () => {
      const { chat } = await o.ok('chat.create', { title: `invite race ${round}`, maxParticipants: CAP });
      const slug = chat.slug;
      const invs = await inviteAll(slug, racers);
      const ownerFrom = o.events.length;

      // All ten requests leave in the same tick, on ten connections.
      const replies = await Promise.all(racers.map((s, i) => s.request('invite.accept', { invitation: invs[i].id })));
      const { winners, losers } = split(replies, racers, 'accept race');
      for (const [i, r] of replies.entries()) {
        if (!r.ok) continue;
        assert.equal(r.invitation.status, 'accepted');
        assert.ok(r.chat.participantCount <= CAP, `winner ${i} saw participantCount ${r.chat.participantCount}`);
      }
      await assertRoster(slug, winners, ownerFrom, 'accept race');

      // The losers' invitations stay pending, and they are still outsiders.
      const { outgoing } = await o.ok('invite.list');
      assert.deepEqual(
        outgoing.filter((x) => x.chat === slug).map((x) => x.to.username).sort(),
        losers.map(name).sort(),
        'pending: exactly the losers',
      );
      for (const s of losers) {
        const { incoming } = await s.ok('invite.list');
        const mine = incoming.filter((x) => x.chat === slug);
        assert.equal(mine.length, 1, `${name(s)} keeps the invitation`);
        assert.equal(mine[0].status, 'pending');
        await s.fail('sub', { chat: slug }, 'not_found');
      }
      for (const s of winners) await s.ok('sub', { chat: slug });

      // Raising the cap by one lets exactly one more in, with the same invitation.
      await o.ok('chat.update', { chat: slug, maxParticipants: CAP + 1 });
      const late = await losers[0].ok('invite.accept', { invitation: invs[racers.indexOf(losers[0])].id });
      assert.equal(late.chat.participantCount, CAP + 1);
      await losers[1].fail('invite.accept', { invitation: invs[racers.indexOf(losers[1])].id }, 'chat_full');
    });
  }

  for (let round = 1; round <= ROUNDS; round++) {
    test(`round ${round}: ten users join a public chat with room for three at once`, async () => {
      const { chat } = await o.ok('chat.create', { title: `join race ${round}`, isPublic: true, maxParticipants: CAP });
      const slug = chat.slug;
      const ownerFrom = o.events.length;
      const replies = await Promise.all(racers.map((s) => s.request('chat.join', { chat: slug })));
      const { winners, losers } = split(replies, racers, 'join race');
      for (const r of replies.filter((x) => x.ok)) {
        assert.equal(r.chat.role, 'member');
        assert.ok(r.chat.participantCount <= CAP);
      }
      await assertRoster(slug, winners, ownerFrom, 'join race');
      for (const s of losers) {
        const { chats } = await s.ok('chat.list');
        assert.ok(!chats.some((x) => x.slug === slug), `${name(s)} is not in`);
      }
      // A winner joining again is harmless at the cap; a loser trying again is still chat_full.
      await winners[0].ok('chat.join', { chat: slug });
      await losers[0].fail('chat.join', { chat: slug }, 'chat_full');
    });
  }

  test('five accept invitations while five others join, all at once: exactly three get in', async () => {
    const { chat } = await o.ok('chat.create', { title: 'mixed race', isPublic: true, maxParticipants: CAP });
    const slug = chat.slug;
    const invited = racers.slice(0, 5);
    const joiners = racers.slice(5);
    const invs = await inviteAll(slug, invited);
    const ownerFrom = o.events.length;
    const replies = await Promise.all([
      ...invited.map((s, i) => s.request('invite.accept', { invitation: invs[i].id })),
      ...joiners.map((s) => s.request('chat.join', { chat: slug })),
    ]);
    const { winners } = split(replies, [...invited, ...joiners], 'mixed race');
    await assertRoster(slug, winners, ownerFrom, 'mixed race');
  });
});
