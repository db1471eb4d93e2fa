// 18 - Several store connections (PARLEY_STORE_CONNS=4; on PostgreSQL these are real lanes: one
// for requests that name no chat, three sharing the chats, see src/store/store.c). A socket's
// requests still take effect in the order it sent them when it does not wait for the replies:
// an invitation accepted (no chat named) then a message to that chat, a chat created with a
// chosen slug then written to, a message then leaving. Messages of one chat from several sockets
// still arrive in seq order, gap-free, everywhere. (`make integration` runs it on SQLite, where
// the setting is accepted and one connection is kept; `make integration-pg` on PostgreSQL.)

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { assertConsecutive, connect, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('PARLEY_STORE_CONNS=4', () => {
  const srv = useServer({ env: { PARLEY_STORE_CONNS: '4', PARLEY_RATE_LIMITS: '0' } });
  let a, b, c;

  before(async () => {
    const [ana, bob, cat] = await signupMany(srv, ['ana', 'bob', 'cat']);
    [a, b, c] = await Promise.all([ana, bob, cat].map((u) => connect(srv, { token: u.token })));
  });

  after(async () => {
    await Promise.all([a, b, c].map((s) => s?.close().catch(() => {})));
  });

  test('accept, then send at once: the send sees the membership', async () => {
    for (let round = 0; round < 10; round++) {
      const { chat } = await a.ok('chat.create', { title: `Private ${round}` });
      const { invitation } = await a.ok('invite.create', { chat: chat.slug, user: b.user.username });
      // Both requests leave before either reply comes back.
      const [accepted, sent] = await Promise.all([
        b.request('invite.accept', { invitation: invitation.id }),
        b.request('msg.send', { chat: chat.slug, body: 'hello', clientMsgId: `r${round}` }),
      ]);
      assert.equal(accepted.ok, true, JSON.stringify(accepted));
      assert.equal(sent.ok, true, JSON.stringify(sent));
      assert.equal(sent.msg.seq, 2); // after the "joined" notice of the accept (issue 17)
    }
  });

  test('create with a slug, then send and read at once', async () => {
    for (let round = 0; round < 10; round++) {
      const slug = `chosen-${round}-${Date.now()}`;
      const [created, sent, hist] = await Promise.all([
        c.request('chat.create', { title: 'Chosen', slug }),
        c.request('msg.send', { chat: slug, body: 'first' }),
        c.request('msg.history', { chat: slug }),
      ]);
      assert.equal(created.ok, true, JSON.stringify(created));
      assert.equal(created.chat.slug, slug);
      assert.equal(sent.ok, true, JSON.stringify(sent));
      assert.deepEqual(hist.msgs.map((m) => m.body), ['first']);
    }
  });

  test('send, then leave at once: the message is stored, the leave after it', async () => {
    const { chat } = await a.ok('chat.create', { title: 'Goodbye', isPublic: true });
    await b.ok('chat.join', { chat: chat.slug });
    const [sent, left, later] = await Promise.all([
      b.request('msg.send', { chat: chat.slug, body: 'bye' }),
      b.request('chat.leave', { chat: chat.slug }),
      b.request('msg.send', { chat: chat.slug, body: 'too late' }),
    ]);
    assert.equal(sent.ok, true, JSON.stringify(sent));
    assert.equal(left.ok, true, JSON.stringify(left));
    assert.equal(later.ok, false);
    assert.equal(later.error.code, 'forbidden');
    const hist = await a.ok('msg.history', { chat: chat.slug });
    // Between bob's "joined" and "left" notices (issue 17).
    assert.deepEqual(hist.msgs.map((m) => [m.kind, m.action ?? m.body]), [['notice', 'joined'], ['text', 'bye'], ['notice', 'left']]);
  });

  test('many chats from several sockets: every subscriber gets every message once, in order', async () => {
    const chats = [];
    for (let i = 0; i < 6; i++) {
      const { chat } = await a.ok('chat.create', { title: `Busy ${i}`, isPublic: true });
      await Promise.all([b, c].map((s) => s.ok('chat.join', { chat: chat.slug })));
      await Promise.all([a, b, c].map((s) => s.ok('sub', { chat: chat.slug, since: 0 })));
      chats.push(chat.slug);
    }
    const perSender = 20;
    await Promise.all(
      [a, b, c].map((s, k) =>
        Promise.all(
          chats.flatMap((slug) =>
            Array.from({ length: perSender }, (_, i) =>
              s.ok('msg.send', { chat: slug, body: `${k}-${i}`, clientMsgId: `${k}-${slug}-${i}` }),
            ),
          ),
        ),
      ),
    );
    const total = 3 * perSender;
    for (const s of [a, b, c]) {
      for (const slug of chats) {
        // Seqs 1 and 2 are the joins' notices (issue 17), replayed in the sub reply.
        await s.waitSeq(slug, total + 2);
        assertConsecutive(s.msgs(slug).map((m) => m.seq), 3, `${slug} on ${s.user.username}`);
        assert.equal(s.msgs(slug).length, total);
      }
    }
  });
});
