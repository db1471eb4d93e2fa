// 52 - Typing, activeUsers and presence across nodes: each node merges the other nodes' typers
// and openers of a chat with its own, with the same event shapes (`typing` with the whole set,
// `chat.active`), and the same TTL; a node that dies (kill -9) stops counting once it has not
// been heard for the node TTL (3.5 s), however long its typers' TTL. Presence: online on any
// node is online everywhere (a move between nodes shows nothing), away only when every socket
// is idle, offline after the grace once no node has a socket, and a killed node's users go
// offline after the presence TTL with lastSeen when they were last known there; participants
// and search watchers on other nodes get the events.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, usernames, waitActive, waitPresence, waitTyping } from './lib/client.mjs';
import { useCluster, userOn } from './lib/cluster.mjs';

describe('typing and activeUsers across three nodes', () => {
  // A typing TTL far longer than the test: only the node TTL can end a dead node's typers.
  const nodes = useCluster(3, { nodeEnv: [0, 1, 2].map(() => ({ PARLEY_TYPING_TTL_MS: '60000' })) });

  test('openers and typers of every node are merged; a killed node stops counting', async () => {
    const a = await userOn(nodes[0], 'ann');
    const b = await userOn(nodes[1], 'ben');
    const c = await userOn(nodes[2], 'cat');
    const slug = (await a.c.ok('chat.create', { title: 'Live', isPublic: true })).chat.slug;
    for (const u of [b, c]) await u.c.ok('chat.join', { chat: slug });
    const all = [a, b, c].map((u) => u.user.username);

    await a.c.ok('sub', { chat: slug });
    await b.c.ok('sub', { chat: slug });
    await waitActive(a.c, slug, all.slice(0, 2));
    await c.c.ok('sub', { chat: slug });
    for (const u of [a, b, c]) await waitActive(u.c, slug, all);

    await b.c.ok('typing', { chat: slug, on: true });
    await waitTyping(a.c, slug, [b.user.username]);
    await waitTyping(c.c, slug, [b.user.username]);
    await a.c.ok('typing', { chat: slug, on: true });
    for (const u of [b, c]) await waitTyping(u.c, slug, [a.user.username, b.user.username]);
    // Sending ends typing, on every node.
    const beforeSend = [b, c].map((u) => u.c.events.length);
    await a.c.ok('msg.send', { chat: slug, body: 'hi', clientMsgId: 'h' });
    for (const [i, u] of [b, c].entries()) {
      await waitTyping(u.c, slug, [b.user.username], { from: beforeSend[i] });
    }
    // A chat object carries the merged activeUsers too.
    const got = await c.c.ok('chat.get', { chat: slug });
    assert.deepEqual(usernames(got.chat.activeUsers), [...all].sort());

    // Closing the chat on one node removes its opener everywhere.
    const beforeUnsub = a.c.events.length;
    await c.c.ok('unsub', { chat: slug });
    await waitActive(a.c, slug, all.slice(0, 2), { from: beforeUnsub });

    // Node 1 dies with ben typing and the chat open: after the node TTL he is gone everywhere.
    const from = a.c.events.length;
    await nodes[1].kill9();
    await waitActive(a.c, slug, [a.user.username], { timeout: 8000, from });
    await waitTyping(a.c, slug, [], { timeout: 8000, from });
    await nodes[1].start(); // back for the suite's teardown
    for (const u of [a, c]) await u.c.close();
  });
});

describe('presence across three nodes', () => {
  // A short grace, node TTL and typing TTL, so that everything ends within the test's patience.
  const env = {
    PARLEY_PRESENCE_GRACE_MS: '500',
    PARLEY_PRESENCE_NODE_TTL_MS: '3000',
    PARLEY_TYPING_TTL_MS: '1500',
  };
  const nodes = useCluster(3, { nodeEnv: [env, env, env] });

  const presence = (client, name, from = 0) =>
    client.events.slice(from).filter((e) => e.ev === 'presence' && e.user?.username === name);

  test('online on any node is online everywhere; offline once the last socket anywhere is gone', async () => {
    const a = await userOn(nodes[0], 'pa');
    const b = await userOn(nodes[1], 'pb');
    const slug = (await a.c.ok('chat.create', { title: 'Presence', isPublic: true })).chat.slug;
    await b.c.ok('chat.join', { chat: slug });
    const sub = await a.c.ok('sub', { chat: slug });
    assert.equal(sub.presence.find((p) => p.user.username === b.user.username)?.state, 'online');

    // b moves from node 1 to node 2: never offline on the way.
    const b2 = await connect(nodes[2], { token: b.token });
    const from = a.c.events.length;
    await b.c.close();
    const got = await a.c.ok('chat.get', { chat: slug });
    assert.equal(got.participants.find((p) => p.username === b.user.username)?.state, 'online');
    // Away everywhere when b's only socket says so; online again when it is active.
    await b2.ok('presence', { state: 'idle' });
    await waitPresence(a.c, b.user.username, 'away', { from });
    await b2.ok('presence', { state: 'active' });
    await waitPresence(a.c, b.user.username, 'online', { from });
    const beforeClose = Date.now();
    await b2.close();
    const off = await waitPresence(a.c, b.user.username, 'offline', { from });
    assert.ok(off.lastSeen >= beforeClose - 1000 && off.lastSeen <= Date.now(), `lastSeen ${off.lastSeen}`);
    assert.deepEqual(
      presence(a.c, b.user.username, from).map((e) => e.state),
      ['away', 'online', 'offline'],
      'no offline (or anything else) while b moved from node 1 to node 2',
    );
    await a.c.close();
  });

  test('search watchers on another node see changes; a killed node\'s users go offline after the TTL', async () => {
    const w = await userOn(nodes[0], 'pw');
    const v = await userOn(nodes[1], 'pv');
    const found = await w.c.ok('users.search', { q: v.user.username });
    // The news of v's login may still be on its way from node 1: then it follows the reply.
    if (found.users.find((u) => u.username === v.user.username)?.state !== 'online') {
      await waitPresence(w.c, v.user.username, 'online');
    }
    await v.c.ok('presence', { state: 'hidden' });
    await waitPresence(w.c, v.user.username, 'away');
    const killedAt = Date.now();
    await nodes[1].kill9();
    const off = await waitPresence(w.c, v.user.username, 'offline', { timeout: 10000 });
    // Last seen when its node last refreshed it: within a TTL before the kill.
    assert.ok(off.lastSeen >= killedAt - 3000 && off.lastSeen <= killedAt + 500, `lastSeen ${off.lastSeen}`);
    await nodes[1].start(); // back for the suite's teardown
    await w.c.close();
  });

  test('a typer refreshing on one node stays typing on the others; the same TTL ends it', async () => {
    const a = await userOn(nodes[0], 'ta');
    const b = await userOn(nodes[1], 'tb');
    const slug = (await a.c.ok('chat.create', { title: 'Refresh', isPublic: true })).chat.slug;
    await b.c.ok('chat.join', { chat: slug });
    for (const u of [a, b]) await u.c.ok('sub', { chat: slug });
    const from = a.c.events.length;
    await b.c.ok('typing', { chat: slug, on: true });
    await waitTyping(a.c, slug, [b.user.username], { from });
    // Refreshed every 500 ms for twice the TTL (as clients do, every TTL/2): never cleared.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 500));
      await b.c.ok('typing', { chat: slug, on: true });
    }
    const cleared = (e) => e.ev === 'typing' && e.chat === slug && e.users.length === 0;
    assert.equal(a.c.events.slice(from).filter(cleared).length, 0, 'b was never cleared on node 0');
    // Not refreshed any more: node 0 clears b after the TTL (swept about once a second).
    const stopped = Date.now();
    await a.c.waitFor(cleared, { from, timeout: 5000 });
    assert.ok(Date.now() - stopped >= 1000, 'not before the TTL');
    for (const u of [a, b]) await u.c.close();
  });
});
