// 15 - Events that keep a user's other tabs and a chat's members current: chat.created to the
// creator's sockets, participant.joined carrying the joiner's presence, and read to the reader's
// own sockets only (read markers are private).

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { barrier, connect, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('events for other tabs and members', () => {
  const srv = useServer();
  let ana, bob;
  before(async () => {
    [ana, bob] = await signupMany(srv, ['ana', 'bob']);
  });

  test('chat.create announces chat.created to the creator’s other sockets only', async () => {
    const [a1, a2, b] = await Promise.all([
      connect(srv, { token: ana.token }),
      connect(srv, { token: ana.token }),
      connect(srv, { token: bob.token }),
    ]);
    const { chat } = await a1.ok('chat.create', { title: 'Roadmap', isPublic: true });
    const ev = await a2.waitFor((e) => e.ev === 'chat.created' && e.chat?.slug === chat.slug);
    assert.equal(ev.chat.title, 'Roadmap');
    assert.equal(ev.chat.participantCount, 1);
    await barrier(b);
    assert.ok(!b.events.some((e) => e.ev === 'chat.created'), 'nobody else hears of it');
    await Promise.all([a1.close(), a2.close(), b.close()]);
  });

  test('participant.joined carries the joiner’s presence', async () => {
    const [a, b] = await Promise.all([connect(srv, { token: ana.token }), connect(srv, { token: bob.token })]);
    const { chat } = await a.ok('chat.create', { title: 'Lobby', isPublic: true });
    await b.ok('chat.join', { chat: chat.slug });
    const ev = await a.waitFor((e) => e.ev === 'participant.joined' && e.chat === chat.slug);
    assert.equal(ev.user.username, bob.user.username);
    assert.equal(ev.presence.user.username, bob.user.username);
    assert.equal(ev.presence.state, 'online');
    await Promise.all([a.close(), b.close()]);
  });

  test('read tells the reader’s other sockets, and nobody else', async () => {
    const [a1, a2, b] = await Promise.all([
      connect(srv, { token: ana.token }),
      connect(srv, { token: ana.token }),
      connect(srv, { token: bob.token }),
    ]);
    const { chat } = await a1.ok('chat.create', { title: 'Notes', isPublic: true });
    await b.ok('chat.join', { chat: chat.slug });
    await b.ok('msg.send', { chat: chat.slug, body: 'one', clientMsgId: 'r1' });
    await b.ok('msg.send', { chat: chat.slug, body: 'two', clientMsgId: 'r2' });
    let list = await a2.ok('chat.list');
    assert.equal(list.chats.find((c) => c.slug === chat.slug).unread, 2);
    // seq 1 is bob's "joined" notice (issue 17): the messages are 2 and 3.
    const r = await a1.ok('read', { chat: chat.slug, seq: 3 });
    assert.equal(r.seq, 3);
    const ev = await a2.waitFor((e) => e.ev === 'read' && e.chat === chat.slug);
    assert.equal(ev.seq, 3);
    list = await a2.ok('chat.list');
    assert.equal(list.chats.find((c) => c.slug === chat.slug).unread, 0);
    await barrier(b);
    assert.ok(!b.events.some((e) => e.ev === 'read'), 'read markers are private');
    await Promise.all([a1.close(), a2.close(), b.close()]);
  });
});
