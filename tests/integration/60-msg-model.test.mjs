// 60 - The message model (issue 17): msg.edit, msg.delete, react and msg.send's replyTo, with the
// rules of each op for every role, removed users and outsiders; every change an entry of the
// chat's sequence (kind, ref) and the folded state of text messages in msg.history and chat.list;
// a deleted body erased from the database itself; mentions resolved again on each edit. Runs on SQLite and on PostgreSQL
// (make integration-pg).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { barrier, connect, eventsNamed, fullHistory, makeChat, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('message model', () => {
  const srv = useServer();
  let owner, admin, member, other, outsider, gone;
  const open = [];

  before(async () => {
    const users = await signupMany(srv, ['own', 'adm', 'mem', 'oth', 'out', 'gone']);
    [owner, admin, member, other, outsider, gone] = await Promise.all(
      users.map(async (u) => Object.assign(await connect(srv, { token: u.token }), { token: u.token })),
    );
    open.push(owner, admin, member, other, outsider, gone);
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  // A chat with every role, and `gone` removed from it; returns the slug.
  async function roomWithRoles() {
    const chat = await makeChat(owner, { join: [member, other, gone], admins: [admin] });
    await owner.ok('chat.remove', { chat, user: gone.user.username });
    return chat;
  }

  async function textOf(client, chat, seq) {
    const msgs = await fullHistory(client, chat);
    return msgs.find((m) => m.seq === seq);
  }

  describe('msg.edit', () => {
    test('the author edits: an edit entry, and history folds the new body with editedAt', async () => {
      const chat = await roomWithRoles();
      const { msg } = await member.ok('msg.send', { chat, body: 'helo' });
      assert.equal(msg.kind, 'text');
      assert.equal(msg.ref, null);
      assert.deepEqual(msg.mentions, []);
      assert.equal(msg.editedAt, null);
      assert.equal(msg.deleted, false);
      assert.deepEqual(msg.reactions, []);
      const r = await member.ok('msg.edit', { chat, seq: msg.seq, body: 'hello' });
      assert.equal(r.msg.kind, 'edit');
      assert.equal(r.msg.ref, msg.seq);
      assert.equal(r.msg.body, 'hello');
      assert.equal(r.msg.seq, msg.seq + 1);
      assert.deepEqual(r.msg.author, member.user);
      const folded = await textOf(owner, chat, msg.seq);
      assert.equal(folded.body, 'hello');
      assert.equal(typeof folded.editedAt, 'number');
      const entries = await fullHistory(owner, chat);
      assert.deepEqual(
        entries.filter((m) => m.seq > msg.seq).map((m) => [m.kind, m.ref]),
        [['edit', msg.seq]],
      );
    });

    test('the reply carries the edit entry exactly as subscribers receive it', async () => {
      const chat = await roomWithRoles();
      const { msg } = await member.ok('msg.send', { chat, body: 'draft' });
      await owner.ok('sub', { chat });
      const from = owner.events.length;
      const r = await member.ok('msg.edit', { chat, seq: msg.seq, body: 'final' });
      const ev = await owner.waitFor((e) => e.ev === 'msg' && e.chat === chat && e.msg.seq === r.msg.seq, {
        from,
      });
      assert.deepEqual(ev.msg, r.msg);
      assert.equal(ev.msg.body, 'final');
    });

    test('nobody else edits: not the owner, an admin, another member; forbidden', async () => {
      const chat = await roomWithRoles();
      const { msg } = await member.ok('msg.send', { chat, body: 'mine' });
      for (const c of [owner, admin, other]) {
        await c.fail('msg.edit', { chat, seq: msg.seq, body: 'theirs' }, 'forbidden');
      }
      assert.equal((await textOf(owner, chat, msg.seq)).body, 'mine');
    });

    test('outsiders and removed users learn nothing; missing, deleted or non-text seqs are not_found', async () => {
      const chat = await roomWithRoles();
      const { msg } = await member.ok('msg.send', { chat, body: 'x' });
      await outsider.fail('msg.edit', { chat, seq: msg.seq, body: 'y' }, 'forbidden');
      await gone.fail('msg.edit', { chat, seq: msg.seq, body: 'y' }, 'forbidden');
      await member.fail('msg.edit', { chat, seq: 9999, body: 'y' }, 'not_found');
      const ed = await member.ok('msg.edit', { chat, seq: msg.seq, body: 'z' });
      await member.fail('msg.edit', { chat, seq: ed.msg.seq, body: 'an edit of an edit' }, 'not_found');
      await member.ok('msg.delete', { chat, seq: msg.seq });
      await member.fail('msg.edit', { chat, seq: msg.seq, body: 'too late' }, 'not_found');
      await member.fail('msg.edit', { chat, seq: msg.seq }, 'bad_request');
      await member.fail('msg.edit', { chat: 'no-such-chat', seq: 1, body: 'x' }, 'not_found');
    });
  });

  describe('msg.delete', () => {
    test('the author, the owner and admins delete; other members are forbidden', async () => {
      const chat = await roomWithRoles();
      const seqs = [];
      for (let i = 0; i < 4; i++) seqs.push((await member.ok('msg.send', { chat, body: `m${i}` })).msg.seq);
      await other.fail('msg.delete', { chat, seq: seqs[0] }, 'forbidden');
      await outsider.fail('msg.delete', { chat, seq: seqs[0] }, 'forbidden');
      await gone.fail('msg.delete', { chat, seq: seqs[0] }, 'forbidden');
      const r = await member.ok('msg.delete', { chat, seq: seqs[0] });
      assert.equal(r.msg.kind, 'delete');
      assert.equal(r.msg.ref, seqs[0]);
      assert.equal(r.msg.body, '');
      await owner.ok('msg.delete', { chat, seq: seqs[1] });
      await admin.ok('msg.delete', { chat, seq: seqs[2] });
      await member.fail('msg.delete', { chat, seq: seqs[0] }, 'not_found');
      const hist = await fullHistory(other, chat);
      for (const s of seqs.slice(0, 3)) {
        const m = hist.find((x) => x.seq === s);
        assert.equal(m.deleted, true);
        assert.equal(m.body, '');
      }
      assert.equal(hist.find((x) => x.seq === seqs[3]).deleted, false);
    });

    test('the body is erased from the database, with the bodies of its edits', async () => {
      const chat = await roomWithRoles();
      const secret = `secret-${Date.now()}`;
      const { msg } = await member.ok('msg.send', { chat, body: `${secret}-original` });
      await member.ok('msg.edit', { chat, seq: msg.seq, body: `${secret}-edited` });
      await member.ok('msg.send', { chat, body: 'kept' });
      const before = await srv.sql(`SELECT count(*) FROM messages WHERE body LIKE '${secret}%'`);
      assert.equal(before.trim(), '2');
      await member.ok('msg.delete', { chat, seq: msg.seq });
      const afterDel = await srv.sql(`SELECT count(*) FROM messages WHERE body LIKE '%${secret}%'`);
      assert.equal(afterDel.trim(), '0');
      const kept = await srv.sql(`SELECT count(*) FROM messages WHERE body = 'kept'`);
      assert.ok(Number(kept.trim()) >= 1);
    });
  });

  describe('react', () => {
    test('a toggle: on adds once, on again changes nothing (msg null), off removes', async () => {
      const chat = await roomWithRoles();
      const { msg } = await member.ok('msg.send', { chat, body: 'react to me' });
      const on = await other.ok('react', { chat, seq: msg.seq, emoji: '👍', on: true });
      assert.equal(on.msg.kind, 'reaction');
      assert.equal(on.msg.ref, msg.seq);
      assert.equal(on.msg.emoji, '👍');
      assert.equal(on.msg.on, true);
      assert.deepEqual(on.msg.author, other.user);
      const again = await other.ok('react', { chat, seq: msg.seq, emoji: '👍', on: true });
      assert.equal(again.msg, null);
      await owner.ok('react', { chat, seq: msg.seq, emoji: '👍', on: true });
      await owner.ok('react', { chat, seq: msg.seq, emoji: '🎉', on: true });
      let m = await textOf(other, chat, msg.seq);
      assert.deepEqual(m.reactions, [
        { emoji: '👍', count: 2, me: true },
        { emoji: '🎉', count: 1, me: false },
      ]);
      const off = await other.ok('react', { chat, seq: msg.seq, emoji: '👍', on: false });
      assert.equal(off.msg.on, false);
      const offAgain = await other.ok('react', { chat, seq: msg.seq, emoji: '👍', on: false });
      assert.equal(offAgain.msg, null);
      m = await textOf(other, chat, msg.seq);
      assert.deepEqual(m.reactions, [
        { emoji: '👍', count: 1, me: false },
        { emoji: '🎉', count: 1, me: false },
      ]);
    });

    test('at most 20 distinct emoji per message; one emoji of at most 32 bytes', async () => {
      const chat = await roomWithRoles();
      const { msg } = await member.ok('msg.send', { chat, body: 'many' });
      const emoji = Array.from({ length: 21 }, (_, i) => String.fromCodePoint(0x1f600 + i));
      for (const e of emoji.slice(0, 20)) await member.ok('react', { chat, seq: msg.seq, emoji: e, on: true });
      await member.fail('react', { chat, seq: msg.seq, emoji: emoji[20], on: true }, 'conflict');
      await other.ok('react', { chat, seq: msg.seq, emoji: emoji[0], on: true }); // an existing one
      await member.fail('react', { chat, seq: msg.seq, emoji: 'abc', on: true }, 'bad_request');
      await member.fail('react', { chat, seq: msg.seq, emoji: '👍 👍', on: true }, 'bad_request');
      await member.fail('react', { chat, seq: msg.seq, emoji: '👍'.repeat(9), on: true }, 'too_large');
      await member.fail('react', { chat, seq: msg.seq, emoji: '👍' }, 'bad_request');
      await outsider.fail('react', { chat, seq: msg.seq, emoji: '👍', on: true }, 'forbidden');
      await gone.fail('react', { chat, seq: msg.seq, emoji: '👍', on: true }, 'forbidden');
      await member.fail('react', { chat, seq: 9999, emoji: '👍', on: true }, 'not_found');
    });

    test('a deleted message takes no reactions and loses its own', async () => {
      const chat = await roomWithRoles();
      const { msg } = await member.ok('msg.send', { chat, body: 'soon gone' });
      await other.ok('react', { chat, seq: msg.seq, emoji: '👍', on: true });
      await member.ok('msg.delete', { chat, seq: msg.seq });
      await other.fail('react', { chat, seq: msg.seq, emoji: '🎉', on: true }, 'not_found');
      assert.deepEqual((await textOf(other, chat, msg.seq)).reactions, []);
    });
  });

  describe('replies and mentions', () => {
    test('replyTo carries the original author and a 100-character preview; "" once deleted', async () => {
      const chat = await roomWithRoles();
      const long = 'é'.repeat(150);
      const { msg: orig } = await member.ok('msg.send', { chat, body: long });
      const { msg } = await other.ok('msg.send', { chat, body: 'answer', replyTo: orig.seq });
      assert.deepEqual(msg.replyTo, { seq: orig.seq, author: member.user, preview: 'é'.repeat(100) });
      await member.ok('msg.delete', { chat, seq: orig.seq });
      const m = await textOf(owner, chat, msg.seq);
      assert.deepEqual(m.replyTo, { seq: orig.seq, author: member.user, preview: '' });
      await other.fail('msg.send', { chat, body: 'x', replyTo: 9999 }, 'not_found');
      await other.fail('msg.send', { chat, body: 'x', replyTo: 0 }, 'bad_request');
    });

    test('@username resolves to participants; the mention event reaches only sockets not in the chat', async () => {
      const chat = await roomWithRoles();
      // other watches the chat on one socket and not on another.
      const otherElsewhere = await connect(srv, { token: other.token });
      open.push(otherElsewhere);
      await other.ok('sub', { chat });
      const from = otherElsewhere.events.length;
      const fromSub = other.events.length;
      const body = `hi @${other.user.username} and @${outsider.user.username} and mail a@${admin.user.username}`;
      const { msg } = await member.ok('msg.send', { chat, body });
      assert.deepEqual(msg.mentions, [other.user.id]);
      const ev = await otherElsewhere.waitFor((e) => e.ev === 'mention' && e.msg.seq === msg.seq, { from });
      assert.equal(ev.chat, chat);
      await other.waitSeq(chat, msg.seq, { from: fromSub });
      await barrier(other, outsider, admin);
      assert.equal(eventsNamed(other, 'mention', fromSub).length, 0);
      assert.equal(eventsNamed(outsider, 'mention').filter((e) => e.chat === chat).length, 0);
      const list = await otherElsewhere.ok('chat.list');
      const c = list.chats.find((x) => x.slug === chat);
      assert.equal(c.mentions, 1);
      await other.ok('read', { chat, seq: msg.seq });
      const list2 = await otherElsewhere.ok('chat.list');
      assert.equal(list2.chats.find((x) => x.slug === chat).mentions, 0);
      await other.ok('unsub', { chat });
    });
  });

  describe('mentions follow edits', () => {
    test('an edit that adds a mention notifies; one that removes it does not, and the counts follow', async () => {
      const chat = await roomWithRoles();
      const o = await connect(srv, { token: other.token }); // on the chat list: not subscribed
      const ad = await connect(srv, { token: admin.token });
      open.push(o, ad);
      const mentionsOf = async (c) => (await c.ok('chat.list')).chats.find((x) => x.slug === chat).mentions;
      const { msg } = await member.ok('msg.send', { chat, body: 'hello everyone' });
      assert.deepEqual(msg.mentions, []);
      assert.equal(await mentionsOf(o), 0);

      // Adding @other: a mention event with the message as it reads now, and his counts move.
      let from = o.events.length;
      await member.ok('msg.edit', { chat, seq: msg.seq, body: `hello @${other.user.username}` });
      const ev = await o.waitFor((e) => e.ev === 'mention' && e.chat === chat, { from });
      assert.equal(ev.msg.seq, msg.seq);
      assert.equal(ev.msg.kind, 'text');
      assert.equal(ev.msg.body, `hello @${other.user.username}`);
      assert.deepEqual(ev.msg.mentions, [other.user.id]);
      const act = await o.waitFor((e) => e.ev === 'chat.activity' && e.chat === chat && e.mentions === 1, { from });
      assert.equal(act.unread, 1);
      assert.equal(await mentionsOf(o), 1);
      assert.deepEqual((await textOf(member, chat, msg.seq)).mentions, [other.user.id]);

      // Adding @admin too: only the admin is told; other, already mentioned, hears nothing new.
      from = o.events.length;
      const fromAd = ad.events.length;
      const body2 = `hello @${other.user.username} and @${admin.user.username}`;
      await member.ok('msg.edit', { chat, seq: msg.seq, body: body2 });
      const ev2 = await ad.waitFor((e) => e.ev === 'mention' && e.chat === chat, { from: fromAd });
      assert.equal(ev2.msg.body, body2);
      await barrier(o);
      assert.equal(eventsNamed(o, 'mention', from).length, 0);
      assert.equal(await mentionsOf(ad), 1);

      // Removing both: nobody is notified, and the counts drop.
      from = o.events.length;
      const fromAd2 = ad.events.length;
      await member.ok('msg.edit', { chat, seq: msg.seq, body: 'hello again, nobody in particular' });
      await barrier(o, ad);
      assert.equal(eventsNamed(o, 'mention', from).length, 0);
      assert.equal(eventsNamed(ad, 'mention', fromAd2).length, 0);
      assert.equal(await mentionsOf(o), 0);
      assert.equal(await mentionsOf(ad), 0);
      assert.deepEqual((await textOf(member, chat, msg.seq)).mentions, []);
      // The author mentioning herself in an edit is told nothing.
      const fromMe = member.events.length;
      await member.ok('msg.edit', { chat, seq: msg.seq, body: `note to @${member.user.username}` });
      await barrier(member);
      assert.equal(eventsNamed(member, 'mention', fromMe).length, 0);
    });
  });

  describe('notices and chat.list', () => {
    test('joins, renames, role changes, removals and leaves are notice entries in order', async () => {
      const { chat: c } = await owner.ok('chat.create', { title: 'notices', isPublic: true });
      const chat = c.slug;
      await member.ok('chat.join', { chat });
      await other.ok('chat.join', { chat });
      await owner.ok('chat.update', { chat, title: 'renamed room' });
      await owner.ok('chat.setRole', { chat, user: member.user.username, role: 'admin' });
      await owner.ok('chat.remove', { chat, user: other.user.username });
      await member.ok('chat.leave', { chat });
      const hist = await fullHistory(owner, chat);
      assert.deepEqual(
        hist.map((m) => [m.kind, m.action, m.user?.username ?? null, m.by?.username ?? null, m.title ?? m.role ?? null]),
        [
          ['notice', 'joined', member.user.username, null, null],
          ['notice', 'joined', other.user.username, null, null],
          ['notice', 'renamed', null, owner.user.username, 'renamed room'],
          ['notice', 'role', member.user.username, owner.user.username, 'admin'],
          ['notice', 'removed', other.user.username, owner.user.username, null],
          ['notice', 'left', member.user.username, null, null],
        ],
      );
      assert.deepEqual(hist.map((m) => m.seq), [1, 2, 3, 4, 5, 6]);
      for (const m of hist) assert.equal(m.body, '');
    });

    test('unread counts only text by others; lastMessage is the newest text message, folded', async () => {
      const chat = await makeChat(owner, { join: [member] });
      const { msg } = await member.ok('msg.send', { chat, body: 'one' });
      await member.ok('msg.send', { chat, body: 'two' });
      await member.ok('msg.edit', { chat, seq: msg.seq, body: 'one!' });
      const { msg: last } = await member.ok('msg.send', { chat, body: 'three' });
      await owner.ok('react', { chat, seq: last.seq, emoji: '👍', on: true });
      await member.ok('chat.leave', { chat }).catch(() => {});
      const { chats } = await owner.ok('chat.list');
      const c = chats.find((x) => x.slug === chat);
      assert.equal(c.unread, 3);
      assert.equal(c.lastMessage.seq, last.seq);
      assert.equal(c.lastMessage.kind, 'text');
      assert.deepEqual(c.lastMessage.reactions, [{ emoji: '👍', count: 1, me: true }]);
      assert.equal(c.kind, 'group');
    });
  });

  describe('resume', () => {
    test('a client away during an edit, a delete and a reaction converges to the live client', async () => {
      const chat = await makeChat(owner, { join: [member, other] });
      const sent = [];
      for (let i = 0; i < 3; i++) sent.push((await member.ok('msg.send', { chat, body: `b${i}` })).msg);
      // The away client saw everything up to the last message, as it was then.
      const away = await connect(srv, { token: other.token });
      open.push(away);
      const first = await away.ok('sub', { chat, since: 0 });
      const state = new Map(first.msgs.filter((m) => m.kind === 'text').map((m) => [m.seq, m]));
      const awayAt = first.lastSeq;
      await away.close();
      const live = await connect(srv, { token: other.token });
      open.push(live);
      await live.ok('sub', { chat, since: awayAt });
      await member.ok('msg.edit', { chat, seq: sent[0].seq, body: 'b0 edited' });
      await owner.ok('msg.delete', { chat, seq: sent[1].seq });
      await owner.ok('react', { chat, seq: sent[2].seq, emoji: '🔥', on: true });
      const { msg: last } = await other.ok('react', { chat, seq: sent[2].seq, emoji: '🔥', on: true });
      await live.waitSeq(chat, last.seq);
      // Back: it resumes from its seq and folds what it missed, as the SDK's timeline does.
      const back = await connect(srv, { token: other.token });
      open.push(back);
      const resumed = await back.ok('sub', { chat, since: awayAt });
      assert.deepEqual(resumed.msgs.map((m) => m.kind), ['edit', 'delete', 'reaction', 'reaction']);
      for (const e of resumed.msgs) {
        const t = state.get(e.ref);
        if (e.kind === 'edit') Object.assign(t, { body: e.body, editedAt: e.createdAt });
        if (e.kind === 'delete') Object.assign(t, { body: '', deleted: true, reactions: [] });
        if (e.kind === 'reaction') {
          const r = t.reactions.find((x) => x.emoji === e.emoji);
          const me = e.author.id === other.user.id;
          if (r) Object.assign(r, { count: r.count + 1, me: r.me || me });
          else t.reactions.push({ emoji: e.emoji, count: 1, me });
        }
      }
      const shape = (m) => ({ seq: m.seq, body: m.body, deleted: m.deleted, reactions: m.reactions, edited: m.editedAt !== null });
      const now = (await fullHistory(live, chat)).filter((m) => m.kind === 'text');
      assert.deepEqual([...state.values()].map(shape), now.map(shape));
      // And the live client's events, folded the same way, say the same.
      const liveEntries = live.msgs(chat).map((m) => m.kind);
      assert.deepEqual(liveEntries, ['edit', 'delete', 'reaction', 'reaction']);
    });
  });
});
