// 65 - The live chat list (issue 18): chat.activity reaches every socket of every participant on
// each new message (a socket subscribed to the chat gets the msg instead, and counts on from its
// sub reply's counts: issue 15), with the message, the recipient's own unread count and
// the chat's lastActivity and seq; the reader's sockets get new counts when their read marker
// moves on another device; a user in many chats gets one small event per message of any of them
// without subscribing to any. chat.notify is stored per participant, shown in chat.list and
// chat.get (default "mentions" for group chats) and told to the user's other sockets.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { barrier, connect, eventsNamed, makeChat, signupMany, socketsOf, waitPresence } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const activity = (chat, seq) => (e) => e.ev === 'chat.activity' && e.chat === chat && e.seq === seq;
// Joins are notice entries of the chat's sequence (issue 17): wait for a message by its body.
const activityOf = (chat, body) => (e) =>
  e.ev === 'chat.activity' && e.chat === chat && e.lastMsg?.kind === 'text' && e.lastMsg.body === body;

describe('chat.activity', () => {
  const srv = useServer();
  const conn = socketsOf(srv);

  test('every socket of every participant not watching the chat, with its own unread count', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const ana1 = await conn(ana);
    const ana2 = await conn(ana); // another device of the author
    const ben1 = await conn(ben); // on the chat list: never subscribes
    const ben2 = await conn(ben);
    const chat = await makeChat(ana1, { title: 'Design review', join: [ben1] });
    const base = (await ana1.ok('chat.get', { chat })).chat.lastSeq; // the join notice

    for (let i = 1; i <= 3; i++) {
      await ana1.ok('msg.send', { chat, body: `point ${i}` });
    }
    for (const [c, unread] of [
      [ben1, 3],
      [ben2, 3],
      [ana1, 0],
      [ana2, 0],
    ]) {
      const e = await c.waitFor(activity(chat, base + 3));
      assert.equal(e.unread, unread, `unread of ${c.user.username}`);
      assert.equal(e.mentions, 0);
      assert.equal(e.mentioned, false);
      assert.equal(e.lastMsg.seq, base + 3);
      assert.equal(e.lastMsg.body, 'point 3');
      assert.equal(e.lastMsg.author.username, ana.user.username);
      assert.equal(typeof e.lastActivity, 'number');
      assert.ok(e.lastActivity >= e.lastMsg.createdAt);
    }
    // The counts went up one message at a time, in order.
    const seen = eventsNamed(ben1, 'chat.activity', 0, (e) => e.chat === chat && e.seq > base).map((e) => [
      e.seq - base,
      e.unread,
    ]);
    assert.deepEqual(seen, [
      [1, 1],
      [2, 2],
      [3, 3],
    ]);

    // Ben reads on one device: his other socket gets the new count, with the last message.
    const from = ben2.events.length;
    await ben1.ok('read', { chat, seq: base + 2 });
    const e = await ben2.waitFor((x) => x.ev === 'chat.activity' && x.chat === chat, { from });
    assert.equal(e.unread, 1);
    assert.equal(e.seq, base + 3);
    assert.equal(e.lastMsg.seq, base + 3);
    assert.equal(e.lastMsg.body, 'point 3');
    // Ana, who has read everything, is not told of Ben's marker.
    await barrier(ana1);
    assert.equal(eventsNamed(ana1, 'chat.activity', 0, (x) => x.unread === 1).length, 0);
  });

  test('mentions: a mention raises the count, reading clears it, on every device', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a = await conn(ana);
    const ben1 = await conn(ben);
    const ben2 = await conn(ben); // another device, on the chat list
    const chat = await makeChat(a, { title: 'Mentions', join: [ben1] });
    const listed = async (c) => (await c.ok('chat.list')).chats.find((x) => x.slug === chat);

    const plain = await a.ok('msg.send', { chat, body: 'no one in particular' });
    assert.equal((await ben2.waitFor(activity(chat, plain.msg.seq))).mentions, 0);
    const m1 = await a.ok('msg.send', { chat, body: `@${ben.user.username} have a look` });
    const m2 = await a.ok('msg.send', { chat, body: `and again @${ben.user.username}` });
    for (const c of [ben1, ben2]) {
      const e1 = await c.waitFor(activity(chat, m1.msg.seq));
      assert.deepEqual([e1.unread, e1.mentions, e1.mentioned], [2, 1, true]);
      const e2 = await c.waitFor(activity(chat, m2.msg.seq));
      assert.deepEqual([e2.unread, e2.mentions, e2.mentioned], [3, 2, true]);
    }
    // The author is not mentioned: her own count stays 0.
    assert.equal((await a.waitFor(activity(chat, m2.msg.seq))).mentions, 0);
    assert.equal((await listed(ben2)).mentions, 2, 'chat.list counts the same');

    // Reading up to the first mention on one device: the other hears one mention left.
    let from = ben2.events.length;
    await ben1.ok('read', { chat, seq: m1.msg.seq });
    let e = await ben2.waitFor((x) => x.ev === 'chat.activity' && x.chat === chat, { from });
    assert.deepEqual([e.unread, e.mentions], [1, 1]);
    // Reading everything clears it.
    from = ben2.events.length;
    await ben1.ok('read', { chat, seq: m2.msg.seq });
    e = await ben2.waitFor((x) => x.ev === 'chat.activity' && x.chat === chat, { from });
    assert.deepEqual([e.unread, e.mentions], [0, 0]);
    assert.equal((await listed(ben2)).mentions, 0);
  });

  // In a DM every message is for the peer: `mentioned` is true for them without an @, so a
  // "mentions" notification level still hears it (docs/protocol.md, chat.activity).
  test('a DM: every message is mentioned for the peer, not for the author', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a = await conn(ana);
    const b = await conn(ben);
    const chat = (await a.ok('dm.open', { user: ben.user.username })).chat.slug;
    const sent = await a.ok('msg.send', { chat, body: 'lunch?' });
    const e = await b.waitFor(activity(chat, sent.msg.seq));
    assert.deepEqual([e.unread, e.mentions, e.mentioned], [1, 0, true]);
    assert.equal((await a.waitFor(activity(chat, sent.msg.seq))).mentioned, true);
    // A group chat's plain message is mentioned for nobody.
    const group = await makeChat(a, { title: 'Not a DM', join: [b] });
    const plain = await a.ok('msg.send', { chat: group, body: 'lunch?' });
    assert.equal((await b.waitFor(activity(group, plain.msg.seq))).mentioned, false);
  });

  // The counts come from running tallies of text entries (migration 13), not from counting the
  // backlog: they must agree with counting, whatever entries lie between and wherever the marker
  // points (a text message, a reaction, an edit), in chat.activity and chat.list alike.
  test('unread counts text by others after the marker, across reactions, edits and own messages', async () => {
    const [ana, ben, cy] = await signupMany(srv, ['ana', 'ben', 'cy']);
    const a = await conn(ana);
    const b = await conn(ben);
    const c = await conn(cy);
    const chat = await makeChat(a, { title: 'Tallies', join: [b, c] });
    const listed = async (s) => (await s.ok('chat.list')).chats.find((x) => x.slug === chat);
    const send = async (s, body) => (await s.ok('msg.send', { chat, body })).msg;
    const unreadOf = async (s, body) => (await s.waitFor(activityOf(chat, body))).unread;

    const m1 = await send(a, 'm1');
    await send(c, 'm2');
    const m3 = await send(a, 'm3');
    assert.equal(await unreadOf(b, 'm3'), 3);
    // A reaction and an edit are entries of the sequence, not unread messages.
    const react = await b.ok('react', { chat, seq: m1.seq, emoji: '👍', on: true });
    await a.ok('msg.edit', { chat, seq: m1.seq, body: 'm1!' });
    await send(c, 'm4');
    assert.equal(await unreadOf(b, 'm4'), 4, 'reacting did not read anything');
    assert.equal(await unreadOf(a, 'm4'), 1, 'Ana read up to m3 by sending it: m4');
    // The marker on a reaction entry: the text before it is read, the text after it is not.
    await b.ok('read', { chat, seq: react.msg.seq });
    await send(a, 'm5');
    assert.equal(await unreadOf(b, 'm5'), 2);
    assert.equal((await listed(b)).unread, 2, 'chat.list counts the same');
    // Ben writes: his own message is read by him, and his marker moves past m4 and m5.
    await send(b, 'm6');
    assert.equal(await unreadOf(b, 'm6'), 0);
    assert.equal(await unreadOf(c, 'm6'), 2, 'Cy read up to m4 by sending it: m5 and m6');
    await send(c, 'm7');
    assert.equal(await unreadOf(b, 'm7'), 1);
    assert.equal(await unreadOf(a, 'm7'), 2, 'Ana read up to m5: m6 and m7');
    assert.equal((await listed(a)).unread, 2);
    assert.equal((await listed(c)).unread, 0);
  });

  test('a user in many chats gets one event per message without any subscription', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a = await conn(ana);
    const b = await conn(ben);
    const chats = [];
    for (let i = 0; i < 40; i++) chats.push(await makeChat(a, { title: `room ${i}`, join: [b] }));
    await Promise.all(chats.map((chat) => a.ok('msg.send', { chat, body: `hello ${chat}` })));
    await Promise.all(chats.map((chat) => b.waitFor(activityOf(chat, `hello ${chat}`))));
    for (const chat of chats) {
      const got = eventsNamed(b, 'chat.activity', 0, (e) => e.chat === chat && e.lastMsg?.kind === 'text');
      assert.equal(got.length, 1, `one event for ${chat}`);
      assert.equal(got[0].unread, 1);
      assert.equal(got[0].lastMsg.body, `hello ${chat}`);
    }
    // Nobody subscribed: no msg events at all.
    assert.equal(eventsNamed(b, 'msg').length, 0);
  });

  test('lastMsg is a preview: a long body is cut at 280 bytes, never inside a character', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a = await conn(ana);
    const b = await conn(ben);
    const chat = await makeChat(a, { title: 'long', join: [b] });
    const body = 'a' + '🦊'.repeat(100); // 401 bytes; 1 + 69 x 4 = 277 fit, the 70th fox would end at byte 281
    const { msg } = await a.ok('msg.send', { chat, body });
    const e = await b.waitFor(activity(chat, msg.seq));
    assert.equal(e.lastMsg.body, 'a' + '🦊'.repeat(69));
    assert.equal(e.lastMsg.truncated, true);
    const short = await a.ok('msg.send', { chat, body: 'short' });
    const s2 = await b.waitFor(activity(chat, short.msg.seq));
    assert.equal(s2.lastMsg.body, 'short');
    assert.equal(s2.lastMsg.truncated, undefined);
  });

  test('a user who left gets nothing more; one who joined later counts from the join', async () => {
    const [ana, ben, cy] = await signupMany(srv, ['ana', 'ben', 'cy']);
    const a = await conn(ana);
    const b = await conn(ben);
    const c = await conn(cy);
    const chat = await makeChat(a, { title: 'comings', join: [b] });
    await a.ok('msg.send', { chat, body: 'one' });
    await b.waitFor(activityOf(chat, 'one'));
    await b.ok('chat.leave', { chat });
    await c.ok('chat.join', { chat });
    await a.ok('msg.send', { chat, body: 'two' });
    const e = await c.waitFor(activityOf(chat, 'two'));
    assert.equal(e.unread, 2); // a joiner has read nothing yet
    await barrier(b);
    assert.equal(eventsNamed(b, 'chat.activity', 0, (x) => x.chat === chat && x.seq >= e.seq).length, 0);
  });
});

describe('chat.notify', () => {
  const srv = useServer();
  const conn = socketsOf(srv);

  test('stored per participant, in chat.list and chat.get, told to the other sockets', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a1 = await conn(ana);
    const a2 = await conn(ana);
    const b = await conn(ben);
    const chat = await makeChat(a1, { title: 'quiet', join: [b] });

    const listed = async (c) => (await c.ok('chat.list')).chats.find((x) => x.slug === chat);
    assert.equal((await listed(a1)).notify, 'mentions'); // the default of a group chat
    assert.equal((await a1.ok('chat.get', { chat })).chat.notify, 'mentions');

    const from = a1.events.length;
    const r = await a1.ok('chat.notify', { chat, level: 'none' });
    assert.deepEqual({ chat: r.chat, level: r.level }, { chat, level: 'none' });
    const e = await a2.waitFor((x) => x.ev === 'chat.notify' && x.chat === chat);
    assert.equal(e.level, 'none');
    await barrier(a1);
    assert.equal(eventsNamed(a1, 'chat.notify', from).length, 0, 'not echoed to the socket that asked');

    assert.equal((await listed(a2)).notify, 'none');
    assert.equal((await a2.ok('chat.get', { chat })).chat.notify, 'none');
    assert.equal((await listed(b)).notify, 'mentions', "Ben's own setting is untouched");
    await a1.ok('chat.notify', { chat, level: 'all' });
    assert.equal((await listed(a1)).notify, 'all');
  });

  // Issue 15: a socket with the chat open has every message itself; the event would double the
  // frames of each delivery. Its sub reply has the caller's counts as of lastSeq, and the SDK
  // counts on from them (clients/js/src/activity.ts).
  test('a socket subscribed to the chat gets the msg, not chat.activity; its sub reply has the counts', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a = await conn(ana);
    const watching = await conn(ben); // has the chat open
    const listing = await conn(ben); // on the chat list
    const chat = await makeChat(a, { title: 'Watched', join: [watching] });
    await a.ok('msg.send', { chat, body: `before @${ben.user.username}` });
    const sub = await watching.ok('sub', { chat });
    assert.deepEqual([sub.chat.unread, sub.chat.mentions], [1, 1], 'counts as of lastSeq');
    await a.ok('sub', { chat }); // the author watches too

    const from = { a: a.events.length, w: watching.events.length };
    const m2 = await a.ok('msg.send', { chat, body: 'after' });
    const e = await listing.waitFor(activity(chat, m2.msg.seq));
    assert.deepEqual([e.unread, e.mentions], [2, 1]);
    await watching.waitSeq(chat, m2.msg.seq);
    await barrier(watching, a);
    assert.equal(eventsNamed(watching, 'chat.activity', from.w).length, 0, 'the watching socket has the msg');
    assert.equal(eventsNamed(a, 'chat.activity', from.a).length, 0, "the author's watching socket too");

    // A read still tells every socket, the watching one included: the counts moved.
    const r = await watching.ok('read', { chat, seq: m2.msg.seq });
    assert.equal(r.seq, m2.msg.seq);
    const read = await watching.waitFor((x) => x.ev === 'chat.activity' && x.chat === chat, { from: from.w });
    assert.deepEqual([read.unread, read.mentions, read.seq], [0, 0, m2.msg.seq]);

    // A resume has the counts as of its own lastSeq, the same numbers chat.list gives.
    await a.ok('msg.send', { chat, body: 'while away' });
    await watching.ok('unsub', { chat });
    const again = await watching.ok('sub', { chat, since: m2.msg.seq });
    const listed = (await listing.ok('chat.list')).chats.find((c) => c.slug === chat);
    assert.deepEqual([again.chat.unread, again.chat.mentions], [listed.unread, listed.mentions]);
    assert.deepEqual([again.chat.unread, again.msgs.length], [1, 1]);
  });

  test('everyone watching on every socket: no chat.activity at all, and the counts stay right', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a = await conn(ana);
    const b = await conn(ben);
    const chat = await makeChat(a, { title: 'All eyes', join: [b] });
    await a.ok('sub', { chat });
    await b.ok('sub', { chat });
    const from = { a: a.events.length, b: b.events.length };
    const m1 = await a.ok('msg.send', { chat, body: 'one' });
    await b.waitSeq(chat, m1.msg.seq);
    await barrier(a, b);
    assert.equal(eventsNamed(a, 'chat.activity', from.a).length, 0);
    assert.equal(eventsNamed(b, 'chat.activity', from.b).length, 0);
    // Ben opens the chat list on another device: the next message reaches it with both counted.
    const b2 = await conn(ben);
    const m2 = await a.ok('msg.send', { chat, body: 'two' });
    const e = await b2.waitFor(activity(chat, m2.msg.seq));
    assert.equal(e.unread, 2);
    await b.waitSeq(chat, m2.msg.seq);
    await barrier(b);
    assert.equal(eventsNamed(b, 'chat.activity', from.b).length, 0, 'still none to the watching socket');
  });

  test('bad input: unknown level, not a participant, unknown chat', async () => {
    const [ana, ben] = await signupMany(srv, ['ana', 'ben']);
    const a = await conn(ana);
    const b = await conn(ben);
    const chat = await makeChat(a, { title: 'loud' });
    await a.fail('chat.notify', { chat, level: 'sometimes' }, 'bad_request');
    await a.fail('chat.notify', { chat }, 'bad_request');
    await b.fail('chat.notify', { chat, level: 'all' }, 'forbidden');
    await a.fail('chat.notify', { chat: 'no-such-chat', level: 'all' }, 'not_found');
    // A non-participant's chat.get shows no notify setting.
    assert.equal((await b.ok('chat.get', { chat })).chat.notify, undefined);
  });
});

// Fewer users online than the chat has participants: the server reads the counts of the online
// ones only (issue 15: a big chat with few people online costs per message what they cost, not
// what every participant would). Its own server, so that who is online is known.
describe('chat.activity with most participants offline', () => {
  // A short grace: a user who closed their last socket is offline (gone from the server's users)
  // within a moment, not after the default 10 s.
  const srv = useServer({ env: { PARLEY_PRESENCE_GRACE_MS: '300' } });
  const conn = socketsOf(srv);

  test('online participants without the chat open get their counts; offline ones count on in the store', async () => {
    const [ana, ben, cat, dan] = await signupMany(srv, ['ana', 'ben', 'cat', 'dan']);
    const a = await conn(ana);
    const b = await conn(ben);
    const c = await connect(srv, { token: cat.token });
    const d = await connect(srv, { token: dan.token });
    const chat = await makeChat(a, { title: 'Mostly away', join: [b, c, d] });
    const [benName, catName, danName] = [b, c, d].map((s) => s.user.username);
    await a.ok('sub', { chat });
    await Promise.all([c.close(), d.close()]);
    await waitPresence(a, catName, 'offline');
    await waitPresence(a, danName, 'offline');
    // Online: ana (watching) and ben (on the chat list): 2 of 4 participants.
    const m1 = await a.ok('msg.send', { chat, body: 'one' });
    let e = await b.waitFor(activity(chat, m1.msg.seq));
    assert.deepEqual([e.unread, e.mentions, e.mentioned], [1, 0, false]);
    const m2 = await a.ok('msg.send', { chat, body: `two @${benName} @${danName}` });
    e = await b.waitFor(activity(chat, m2.msg.seq));
    assert.deepEqual([e.unread, e.mentions, e.mentioned], [2, 1, true]);
    // Ben opens the chat on this socket and keeps the list on another: only the other hears.
    await b.ok('sub', { chat });
    const b2 = await conn(ben);
    const from = b.events.length;
    const m3 = await a.ok('msg.send', { chat, body: 'three' });
    e = await b2.waitFor(activity(chat, m3.msg.seq));
    assert.equal(e.unread, 3, 'counted from the marker, as chat.list does');
    await b.waitSeq(chat, m3.msg.seq);
    await barrier(b);
    assert.equal(eventsNamed(b, 'chat.activity', from).length, 0);
    // Nobody offline was sent anything, and their counts were never lost: Dan, back, is told by
    // chat.list that three messages wait, one of them mentioning him.
    const d2 = await conn(dan);
    const listed = (await d2.ok('chat.list')).chats.find((x) => x.slug === chat);
    assert.deepEqual([listed.unread, listed.mentions], [3, 1]);
  });
});
