// 04 - Chats: create, get, list, join (public only), the participant cap, and the rule that only
// participants may subscribe, send or read history.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('chats', () => {
  const srv = useServer();

  let ana, bob, cy; // owner, joiner, outsider: {user, token, cookie}
  let a, b, c; // their sockets

  before(async () => {
    [ana, bob, cy] = await signupMany(srv, ['ana', 'bob', 'cy']);
    [a, b, c] = await Promise.all([ana, bob, cy].map((u) => connect(srv, { token: u.token })));
  });

  after(async () => {
    await Promise.all([a, b, c].map((s) => s?.close().catch(() => {})));
  });

  describe('chat.create', () => {
    test('returns the whole chat; the creator is its owner', async () => {
      const t0 = Date.now();
      const { chat } = await a.ok('chat.create', { title: 'Design review', isPublic: true });
      assert.equal(typeof chat.slug, 'string');
      assert.ok(chat.slug.length > 0);
      assert.equal(chat.title, 'Design review');
      assert.equal(chat.isPublic, true);
      assert.equal(chat.maxParticipants, null);
      assert.equal(chat.role, 'owner');
      assert.equal(chat.participantCount, 1);
      assert.equal(chat.lastSeq, 0);
      assert.equal(typeof chat.createdAt, 'number');
      assert.ok(Math.abs(chat.createdAt - t0) < 60_000, `createdAt ${chat.createdAt} is Unix ms`);
      assert.equal(typeof chat.lastActivity, 'number');
      assert.ok(Array.isArray(chat.activeUsers));
    });

    test('isPublic defaults to false', async () => {
      const { chat } = await a.ok('chat.create', { title: 'Private by default' });
      assert.equal(chat.isPublic, false);
    });

    test('two chats with the same title get different slugs', async () => {
      const { chat: x } = await a.ok('chat.create', { title: 'Same title' });
      const { chat: y } = await a.ok('chat.create', { title: 'Same title' });
      assert.notEqual(x.slug, y.slug);
    });

    test('an explicit slug is used; a taken slug is conflict', async () => {
      const slug = `team-${Date.now().toString(36)}`;
      const { chat } = await a.ok('chat.create', { title: 'Team', slug });
      assert.equal(chat.slug, slug);
      await b.fail('chat.create', { title: 'Team again', slug }, 'conflict');
    });

    test('maxParticipants is kept', async () => {
      const { chat } = await a.ok('chat.create', { title: 'Capped', maxParticipants: 5 });
      assert.equal(chat.maxParticipants, 5);
    });

    test('a title over 100 characters is too_large (a field over its limit)', async () => {
      const err = await a.fail('chat.create', { title: 'x'.repeat(101) }, 'too_large');
      assert.match(err.message, /title/);
      const { chat } = await a.ok('chat.create', { title: 'é'.repeat(100) });
      assert.equal(chat.title, 'é'.repeat(100), '100 characters (200 bytes) is within the limit');
    });

    test('invalid arguments are bad_request naming the field', async () => {
      const cases = [
        [{}, /title/],
        [{ title: '' }, /title/],
        [{ title: 7 }, /title/],
        [{ title: 'ok', isPublic: 'yes' }, /isPublic/],
        [{ title: 'ok', maxParticipants: 1 }, /maxParticipants/],
        [{ title: 'ok', maxParticipants: 10001 }, /maxParticipants/],
        [{ title: 'ok', maxParticipants: 'ten' }, /maxParticipants/],
      ];
      for (const [args, field] of cases) {
        const err = await a.fail('chat.create', args, 'bad_request');
        assert.match(err.message, field, `${JSON.stringify(args).slice(0, 60)}: ${err.message}`);
      }
    });
  });

  describe('chat.get, chat.join, chat.list', () => {
    let pub, priv;
    before(async () => {
      ({ chat: pub } = await a.ok('chat.create', { title: 'Open lounge', isPublic: true }));
      ({ chat: priv } = await a.ok('chat.create', { title: 'Secret plans', isPublic: false }));
    });

    test('chat.get by the owner returns the chat', async () => {
      const { chat } = await a.ok('chat.get', { chat: priv.slug });
      assert.equal(chat.slug, priv.slug);
      assert.equal(chat.title, 'Secret plans');
      assert.equal(chat.role, 'owner');
    });

    test('chat.get of a private chat by an outsider is not_found, as of an unknown slug', async () => {
      // The same answer for both, so an outsider cannot tell a private slug exists.
      await c.fail('chat.get', { chat: priv.slug }, 'not_found');
      await a.fail('chat.get', { chat: 'no-such-chat-anywhere' }, 'not_found');
    });

    test('chat.join of a public chat makes a member; joining twice is harmless', async () => {
      const { chat } = await b.ok('chat.join', { chat: pub.slug });
      assert.equal(chat.slug, pub.slug);
      assert.equal(chat.role, 'member');
      assert.equal(chat.participantCount, 2);
      const again = await b.ok('chat.join', { chat: pub.slug });
      assert.equal(again.chat.participantCount, 2);
      assert.equal(again.chat.role, 'member');
      const { chat: seenByOwner } = await a.ok('chat.get', { chat: pub.slug });
      assert.equal(seenByOwner.participantCount, 2);
    });

    test('the owner joining their own chat stays owner', async () => {
      const { chat } = await a.ok('chat.join', { chat: pub.slug });
      assert.equal(chat.role, 'owner');
      assert.equal(chat.participantCount, 2);
    });

    test('chat.join of a private chat without an invitation is not_found, as of an unknown chat', async () => {
      await c.fail('chat.join', { chat: priv.slug }, 'not_found');
      await c.fail('chat.join', { chat: 'no-such-chat-anywhere' }, 'not_found');
      await c.fail('chat.join', {}, 'bad_request');
    });

    test('chat.join at maxParticipants is chat_full (the owner counts)', async () => {
      const { chat } = await a.ok('chat.create', { title: 'Pair', isPublic: true, maxParticipants: 2 });
      await b.ok('chat.join', { chat: chat.slug });
      await c.fail('chat.join', { chat: chat.slug }, 'chat_full');
      // Joining again as an existing participant is not refused by the cap.
      await b.ok('chat.join', { chat: chat.slug });
    });

    test("chat.list holds the caller's chats only, most recent activity first", async () => {
      const { chat: first } = await b.ok('chat.create', { title: 'First' });
      const { chat: second } = await b.ok('chat.create', { title: 'Second' });
      // Activity in `first` moves it ahead of `second`. lastActivity is in milliseconds (ties go
      // by chat id, newest first): the send must come in a later millisecond than the create.
      assert.equal(typeof second.lastActivity, 'number');
      while (Date.now() <= second.lastActivity) await new Promise((r) => setImmediate(r));
      await b.ok('msg.send', { chat: first.slug, body: 'bump', clientMsgId: 'bump-1' });
      const { chats } = await b.ok('chat.list');
      const slugs = chats.map((x) => x.slug);
      assert.ok(slugs.includes(pub.slug), 'joined public chat is listed');
      assert.ok(!slugs.includes(priv.slug), 'a chat bob is not in is not listed');
      assert.ok(slugs.indexOf(first.slug) < slugs.indexOf(second.slug), `order: ${slugs.join(',')}`);
      assert.equal(slugs[0], first.slug, 'the chat with the latest activity comes first');
      for (let i = 1; i < chats.length; i++) {
        assert.ok(chats[i - 1].lastActivity >= chats[i].lastActivity, 'sorted by lastActivity desc');
      }
      const f = chats.find((x) => x.slug === first.slug);
      assert.equal(f.lastMessage?.body, 'bump');
      assert.equal(f.lastMessage?.seq, 1);
      assert.equal(typeof f.unread, 'number');
      const s = chats.find((x) => x.slug === second.slug);
      assert.equal(s.lastMessage, null);
      const { chats: cyChats } = await c.ok('chat.list');
      assert.ok(!cyChats.some((x) => x.slug === first.slug || x.slug === priv.slug));
    });
  });

  describe('only participants may subscribe, send and read', () => {
    let pub, priv;
    before(async () => {
      ({ chat: pub } = await a.ok('chat.create', { title: 'Public but unjoined', isPublic: true }));
      ({ chat: priv } = await a.ok('chat.create', { title: 'Private room' }));
      await a.ok('msg.send', { chat: priv.slug, body: 'for insiders', clientMsgId: 'p1' });
      await a.ok('msg.send', { chat: pub.slug, body: 'for members', clientMsgId: 'q1' });
    });

    for (const which of ['private', 'public (not joined)']) {
      // A private chat does not exist for an outsider (not_found); a public one is visible to all,
      // so its refusal is forbidden.
      const code = which === 'private' ? 'not_found' : 'forbidden';
      test(`an outsider gets ${code} for sub, msg.send and msg.history on a ${which} chat`, async () => {
        const slug = which === 'private' ? priv.slug : pub.slug;
        await c.fail('sub', { chat: slug }, code);
        await c.fail('sub', { chat: slug, since: 0 }, code);
        await c.fail('msg.send', { chat: slug, body: 'let me in', clientMsgId: 'x1' }, code);
        await c.fail('msg.history', { chat: slug }, code);
        // Nothing was stored by the refused send.
        const { msgs } = await a.ok('msg.history', { chat: slug });
        assert.deepEqual(msgs.map((m) => m.body), [which === 'private' ? 'for insiders' : 'for members']);
      });
    }

    test('an outsider receives no msg events of a chat it could not subscribe to', async () => {
      await c.fail('sub', { chat: priv.slug }, 'not_found');
      const { chat: mine } = await c.ok('chat.create', { title: 'cy own' });
      await c.ok('sub', { chat: mine.slug });
      const from = c.events.length;
      await a.ok('msg.send', { chat: priv.slug, body: 'secret 2', clientMsgId: 'p2' });
      // The server handles requests in order: cy's own send, acknowledged after ana's, is a marker.
      await c.ok('msg.send', { chat: mine.slug, body: 'marker', clientMsgId: 'm1' });
      await c.waitFor((e) => e.ev === 'msg' && e.chat === mine.slug, { from });
      assert.deepEqual(c.msgs(priv.slug), [], 'no event of the private chat leaked');
    });

    test('sub, msg.send and msg.history on an unknown chat are not_found', async () => {
      await a.fail('sub', { chat: 'no-such-chat-here' }, 'not_found');
      await a.fail('msg.send', { chat: 'no-such-chat-here', body: 'x' }, 'not_found');
      await a.fail('msg.history', { chat: 'no-such-chat-here' }, 'not_found');
    });

    test('after joining, the same outsider may subscribe, send and read', async () => {
      await c.ok('chat.join', { chat: pub.slug });
      const sub = await c.ok('sub', { chat: pub.slug });
      assert.equal(sub.lastSeq, 2); // the message, then the "joined" notice (issue 17)
      const sent = await c.ok('msg.send', { chat: pub.slug, body: 'hello all', clientMsgId: 'c1' });
      assert.equal(sent.msg.seq, 3);
      const { msgs } = await c.ok('msg.history', { chat: pub.slug });
      assert.deepEqual(msgs.map((m) => [m.kind, m.body]), [['text', 'for members'], ['notice', ''], ['text', 'hello all']]);
    });
  });
});
