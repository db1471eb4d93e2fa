// 51 - Membership, invitations and logout across nodes: whatever a node tells the users
// concerned (participant.*, chat.updated, removed, invite, the closing of a session's sockets)
// reaches their sockets on every node, once; a removal ends the removed user's subscriptions
// on every node, and no message committed after it reaches them anywhere, even when the news of
// the removal is overtaken on the bus by the message (one node's publications delayed).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { barrier, connect, eventsNamed, http } from './lib/client.mjs';
import { useCluster, userOn } from './lib/cluster.mjs';

const about = (name) => (e) => e.user?.username === name;

describe('membership events across three nodes', () => {
  const nodes = useCluster(3);

  test('participant and chat events reach every participant on every node, once', async () => {
    const a = await userOn(nodes[0], 'own');
    const b = await userOn(nodes[1], 'adm');
    const c = await userOn(nodes[2], 'mem');
    const slug = (await a.c.ok('chat.create', { title: 'Members', isPublic: true })).chat.slug;

    await b.c.ok('chat.join', { chat: slug });
    await a.c.waitFor((e) => e.ev === 'participant.joined' && about(b.user.username)(e));
    await c.c.ok('chat.join', { chat: slug });
    for (const u of [a, b]) {
      await u.c.waitFor((e) => e.ev === 'participant.joined' && about(c.user.username)(e));
    }

    await a.c.ok('chat.setRole', { chat: slug, user: b.user.username, role: 'admin' });
    for (const u of [b, c]) {
      await u.c.waitFor(
        (e) => e.ev === 'participant.updated' && about(b.user.username)(e) && e.role === 'admin',
      );
    }
    await a.c.ok('chat.update', { chat: slug, title: 'Renamed' });
    for (const u of [b, c]) {
      await u.c.waitFor((e) => e.ev === 'chat.updated' && e.chat.title === 'Renamed');
    }

    // An admin on node 1 removes a member on node 2; the owner on node 0 is told.
    await b.c.ok('chat.remove', { chat: slug, user: c.user.username });
    await c.c.waitFor((e) => e.ev === 'removed' && e.chat === slug && e.by?.username === b.user.username);
    await a.c.waitFor((e) => e.ev === 'participant.removed' && about(c.user.username)(e));

    await b.c.ok('chat.leave', { chat: slug });
    await a.c.waitFor((e) => e.ev === 'participant.left' && about(b.user.username)(e));

    // Node 1's events came before this one of node 1 on the bus: any duplicate would be in too.
    await b.c.ok('chat.join', { chat: slug });
    await a.c.waitFor(
      (e) => e.ev === 'participant.joined' && about(b.user.username)(e),
      { from: a.c.events.findIndex((e) => e.ev === 'participant.left') },
    );
    await a.c.ok('chat.update', { chat: slug, title: 'End' });
    await b.c.waitFor((e) => e.ev === 'chat.updated' && e.chat.title === 'End');

    const count = (u, ev, pred = () => true) => eventsNamed(u.c, ev, 0, pred).length;
    assert.equal(count(a, 'participant.joined', about(c.user.username)), 1);
    assert.equal(count(b, 'participant.joined', about(c.user.username)), 1);
    assert.equal(count(b, 'participant.updated', about(b.user.username)), 1);
    assert.equal(count(c, 'participant.updated', about(b.user.username)), 1);
    assert.equal(count(b, 'chat.updated', (e) => e.chat.title === 'Renamed'), 1);
    assert.equal(count(c, 'chat.updated', (e) => e.chat.title === 'Renamed'), 1);
    assert.equal(count(c, 'removed'), 1);
    assert.equal(count(a, 'participant.removed'), 1);
    assert.equal(count(a, 'participant.left'), 1);
    // After the removal, the removed user hears nothing more of the chat.
    assert.equal(count(c, 'chat.updated', (e) => e.chat.title === 'End'), 0);
    for (const u of [a, b, c]) await u.c.close();
  });

  test('a removal ends the subscriptions of every socket of the user, on every node', async () => {
    const a = await userOn(nodes[0], 'boss');
    const v = await userOn(nodes[1], 'gone');
    const v2 = await connect(nodes[2], { token: v.token }); // the same user on another node
    const w = await userOn(nodes[2], 'stay');
    const slug = (await a.c.ok('chat.create', { title: 'Cut', isPublic: true })).chat.slug;
    await v.c.ok('chat.join', { chat: slug });
    await w.c.ok('chat.join', { chat: slug });
    for (const s of [a.c, v.c, v2, w.c]) await s.ok('sub', { chat: slug, since: 0 });
    // Its seq follows the joins' notices (issue 17), which the sub replies replayed.
    const first = (await a.c.ok('msg.send', { chat: slug, body: 'before', clientMsgId: 'b1' })).msg.seq;
    for (const s of [v.c, v2, w.c]) await s.waitSeq(slug, first);

    await a.c.ok('chat.remove', { chat: slug, user: v.user.username });
    for (const s of [v.c, v2]) await s.waitFor((e) => e.ev === 'removed' && e.chat === slug);
    // The subscriptions are gone on both nodes: typing needs one.
    await v.c.fail('typing', { chat: slug, on: true }, 'bad_request');
    await v2.fail('typing', { chat: slug, on: true }, 'bad_request');
    await v2.fail('sub', { chat: slug, since: 0 }, 'forbidden');

    const after = await a.c.ok('msg.send', { chat: slug, body: 'after', clientMsgId: 'a1' });
    await w.c.waitSeq(slug, after.msg.seq);
    await barrier(v.c, v2);
    for (const s of [v.c, v2]) assert.deepEqual(s.msgs(slug).map((m) => m.seq), [first]);
    for (const s of [a.c, v.c, v2, w.c]) await s.close();
  });

  test('invitations: received, accepted, declined and revoked across nodes', async () => {
    const a = await userOn(nodes[0], 'host');
    const b = await userOn(nodes[1], 'guest');
    const c = await userOn(nodes[2], 'maybe');
    const slug = (await a.c.ok('chat.create', { title: 'Invites' })).chat.slug;

    const inv1 = (await a.c.ok('invite.create', { chat: slug, user: b.user.username })).invitation;
    await b.c.waitFor((e) => e.ev === 'invite' && e.action === 'received' && e.invitation.id === inv1.id);
    await b.c.ok('invite.accept', { invitation: inv1.id });
    await a.c.waitFor((e) => e.ev === 'invite' && e.action === 'accepted' && e.invitation.id === inv1.id);
    await a.c.waitFor((e) => e.ev === 'participant.joined' && about(b.user.username)(e));

    const inv2 = (await a.c.ok('invite.create', { chat: slug, user: c.user.username })).invitation;
    await c.c.waitFor((e) => e.ev === 'invite' && e.action === 'received' && e.invitation.id === inv2.id);
    await a.c.ok('invite.revoke', { invitation: inv2.id });
    await c.c.waitFor((e) => e.ev === 'invite' && e.action === 'revoked' && e.invitation.id === inv2.id);

    const inv3 = (await a.c.ok('invite.create', { chat: slug, user: c.user.username })).invitation;
    await c.c.waitFor((e) => e.ev === 'invite' && e.action === 'received' && e.invitation.id === inv3.id);
    await c.c.ok('invite.decline', { invitation: inv3.id });
    await a.c.waitFor((e) => e.ev === 'invite' && e.action === 'declined' && e.invitation.id === inv3.id);
    assert.equal(eventsNamed(c.c, 'invite', 0, (e) => e.invitation.id === inv2.id).length, 2);
    for (const u of [a, b, c]) await u.c.close();
  });

  test('logout closes the session\'s sockets on every node', async () => {
    const u = await userOn(nodes[0], 'leaver');
    const other = await connect(nodes[1], { token: u.token });
    const res = await http(nodes[2], 'POST', '/api/logout', { token: u.token });
    assert.equal(res.status, 204);
    for (const s of [u.c, other]) {
      const info = await s.closed;
      assert.equal(info.code, 4001);
    }
  });
});

// The remover on node 0, a writer on node 1, the victim and a witness on node 2, in one public
// chat whose seq 1 everyone has; then the removal of the victim, and a message from the writer
// right after it. Resolves once the witness has that message. `beforeRemoval` (optional) runs
// once everything is set up, just before the removal.
async function removalThenMessage(nodes, title, removeOpts, beforeRemoval = async () => {}) {
  const a = await userOn(nodes[0], 'remover');
  const w = await userOn(nodes[1], 'writer');
  const v = await userOn(nodes[2], 'victim');
  const x = await userOn(nodes[2], 'witness');
  const slug = (await a.c.ok('chat.create', { title, isPublic: true })).chat.slug;
  for (const u of [w, v, x]) await u.c.ok('chat.join', { chat: slug });
  for (const u of [w, v, x]) await u.c.ok('sub', { chat: slug, since: 0 });
  // Its seq follows the joins' notices (issue 17), which the sub replies replayed.
  const first = (await w.c.ok('msg.send', { chat: slug, body: 'first', clientMsgId: 'f' })).msg.seq;
  await v.c.waitSeq(slug, first);
  await x.c.waitSeq(slug, first);
  await beforeRemoval();

  await a.c.ok('chat.remove', { chat: slug, user: v.user.username }, removeOpts);
  const later = await w.c.ok('msg.send', { chat: slug, body: 'after the removal', clientMsgId: 'l' });
  await x.c.waitSeq(slug, later.msg.seq); // node 2 has the message
  return { users: [a, w, v, x], v, slug, first };
}

describe('a removal overtaken on the bus by a later message', () => {
  // Node 0's publications reach Redis 600 ms late, so the news of a removal made there comes
  // to the other nodes well after messages committed after it on node 1.
  const nodes = useCluster(3, { nodeEnv: [{ PARLEY_TEST_BUS_DELAY_MS: '600' }] });

  test('no message committed after the removal reaches the removed user', async () => {
    const { users, v, slug, first } = await removalThenMessage(nodes, 'Race');
    await v.c.waitFor((e) => e.ev === 'removed' && e.chat === slug); // ...and then the removal
    await barrier(v.c);
    assert.deepEqual(v.c.msgs(slug).map((m) => m.seq), [first], 'the removed user got only the first message');
    for (const u of users) await u.c.close();
  });
});

describe('a removal whose news does not reach a node at all in time', () => {
  // Node 0's publications reach Redis 7 s late: longer than a removal waits for the other
  // nodes' acknowledgements (FENCE_WAIT_MS, 5 s), so node 0 removes the user while nodes 1 and 2
  // have not even heard that a removal is coming, and they learn of it 2 s after the commit.
  // What keeps the removed user out meanwhile is the chat's member_gen, which every message
  // carries: node 2 sees a newer one than it last checked the victim's subscription against,
  // asks the store, and ends the subscription instead of delivering.
  const nodes = useCluster(3, { nodeEnv: [{ PARLEY_TEST_BUS_DELAY_MS: '7000' }] });

  test('a later message committed on another node never reaches the removed user', async () => {
    const catchUps = async () => {
      const res = await http(nodes[2], 'GET', '/metrics');
      return Number(/^parley_catch_ups_total (\d+)$/m.exec(res.text)[1]);
    };
    let before;
    const { users, v, slug, first } = await removalThenMessage(nodes, 'Deaf', { timeout: 15000 }, async () => {
      before = await catchUps(); // the subscriptions' first reads are done by now
    });
    // Node 2 itself tells the victim (the news from node 0 is still on its way).
    await v.c.waitFor((e) => e.ev === 'removed' && e.chat === slug);
    await barrier(v.c);
    assert.deepEqual(v.c.msgs(slug).map((m) => m.seq), [first], 'the removed user got only the first message');
    await v.c.fail('msg.history', { chat: slug }, 'forbidden');
    // Node 2 asked the store (and counted it) rather than trusting its subscriptions.
    assert.ok((await catchUps()) > before, 'parley_catch_ups_total did not move on node 2');
    for (const u of users) await u.c.close();
  });
});
