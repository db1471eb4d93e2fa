// 21 - Typing: `typing {chat, on}` from a subscribed socket puts the user in the chat's typing
// set and every subscriber gets a `typing` event with the whole current set (at most 5 named,
// `others` counting the rest). A typer is cleared by on:false, by sending a message (no later
// than right after the msg event), by the TTL, by disconnect, by unsub and by removal from the
// chat; typing without a subscription is bad_request; the sub reply carries the current typers;
// typing is never persisted.
//
// The server runs with a 1500 ms typing TTL (swept about once a second). Every event that follows
// a change at once is awaited with a 500 ms timeout.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
  barrier,
  connect,
  eventsNamed,
  makeChat,
  pipelined,
  signupMany,
  usernames,
  waitTyping,
} from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const TTL = 1500;
// A typing event is pushed in the loop turn of the change: allow far less than the once-a-second
// sweep, so an event left waiting for the next timer fails here instead of passing late.
const PROMPT = 500;
const typed = (client, chat, names, opts = {}) => waitTyping(client, chat, names, { timeout: PROMPT, ...opts });

describe('typing', () => {
  const srv = useServer({ env: { PARLEY_TYPING_TTL_MS: String(TTL) } });

  const open = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  async function conn(u, opts = {}) {
    const c = await connect(srv, { token: u.token, ...opts });
    open.push(c);
    return c;
  }

  // A chat owned by the first user, joined by the others, every socket subscribed. Returns
  // {chat, users, socks, names}.
  async function room(prefixes, { sub = true } = {}) {
    const users = await signupMany(srv, prefixes);
    const socks = await Promise.all(users.map((u) => conn(u)));
    const chat = await makeChat(socks[0], { title: 'typing room', join: socks.slice(1) });
    if (sub) for (const s of socks) await s.ok('sub', { chat });
    return { chat, users, socks, names: users.map((u) => u.user.username) };
  }

  const typingEvents = (client, chat, from) => eventsNamed(client, 'typing', from, (e) => e.chat === chat);

  test('on shows the typer (a user object) to every subscriber; a refresh sends nothing; off clears it', async () => {
    const { chat, users, socks, names } = await room(['own', 'bob', 'cid']);
    const [o, b, c] = socks;
    const from = o.events.length;
    const fromC = c.events.length;
    const r = await b.ok('typing', { chat, on: true });
    assert.equal(r.ok, true);
    const ev = await typed(o, chat, [names[1]], { from });
    assert.deepEqual(ev.users, [users[1].user], 'the typer as {id, username, displayName}');
    assert.equal(ev.others, 0);
    await typed(c, chat, [names[1]], { from: fromC });

    // A refresh (on:true again) changes nothing: no new event.
    await b.ok('typing', { chat, on: true });
    await barrier(o);
    assert.equal(typingEvents(o, chat, from).length, 1, 'a refresh resent the typing event');

    const mark = o.events.length;
    const markC = c.events.length;
    await b.ok('typing', { chat, on: false });
    const cleared = await typed(o, chat, [], { from: mark });
    assert.equal(cleared.others, 0);
    await typed(c, chat, [], { from: markC });
    // Off twice is harmless and silent.
    const mark2 = o.events.length;
    await b.ok('typing', { chat, on: false });
    await barrier(o);
    assert.deepEqual(typingEvents(o, chat, mark2), []);
  });

  test('typing events are pushed at once, not at the next sweep', async () => {
    const { chat, socks, names } = await room(['own', 'bob']);
    const [o, b] = socks;
    const lat = [];
    for (let i = 0; i < 6; i++) {
      const on = i % 2 === 0;
      const from = o.events.length;
      const t0 = Date.now();
      await b.ok('typing', { chat, on });
      await typed(o, chat, on ? [names[1]] : [], { from, timeout: 3000 });
      lat.push(Date.now() - t0);
    }
    assert.ok(Math.max(...lat) < 200, `typing op to event latencies (ms): ${lat.join(', ')}`);
  });

  test('a participant who is not subscribed gets no typing events', async () => {
    const { chat, socks, names } = await room(['own', 'bob', 'cid'], { sub: false });
    const [o, b, c] = socks;
    await o.ok('sub', { chat });
    await b.ok('sub', { chat });
    const fromC = c.events.length;
    const from = o.events.length;
    await b.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1]], { from });
    await barrier(c);
    assert.deepEqual(typingEvents(c, chat, fromC), []);
  });

  test('typing without a subscription is bad_request; arguments are checked', async () => {
    const { chat, socks } = await room(['own', 'bob'], { sub: false });
    const [o, b] = socks;
    await o.ok('sub', { chat });
    const from = o.events.length;
    await b.fail('typing', { chat, on: true }, 'bad_request'); // participant, not subscribed
    const other = await signupMany(srv, ['out']);
    const out = await conn(other[0]);
    const err = await out.request('typing', { chat, on: true }); // not even a participant
    assert.equal(err.ok, false);
    assert.ok(['bad_request', 'forbidden'].includes(err.error.code), JSON.stringify(err));
    await b.ok('sub', { chat });
    for (const [args, field] of [
      [{ chat }, /on/],
      [{ chat, on: 'yes' }, /on/],
      [{ chat, on: 1 }, /on/],
      [{ on: true }, /chat/],
    ]) {
      const e = await b.fail('typing', args, 'bad_request');
      assert.match(e.message, field, `${JSON.stringify(args)}: ${e.message}`);
    }
    await barrier(o);
    assert.deepEqual(typingEvents(o, chat, from), [], 'a refused typing produced an event');
  });

  test('sending a message clears the typer, no later than right after the msg event', async () => {
    const { chat, socks, names } = await room(['own', 'bob']);
    const [o, b] = socks;
    let from = o.events.length;
    await b.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1]], { from });
    from = o.events.length;
    const sent = await b.ok('msg.send', { chat, body: 'done typing', clientMsgId: 'ty-1' });
    const [cleared] = await Promise.all([typed(o, chat, [], { from }), o.waitSeq(chat, sent.msg.seq, { from })]);
    const tail = o.events.slice(from).filter((e) => e.chat === chat && (e.ev === 'msg' || e.ev === 'typing'));
    const msgAt = tail.findIndex((e) => e.ev === 'msg');
    const clearAt = tail.indexOf(cleared);
    assert.ok(clearAt === msgAt + 1 || clearAt < msgAt, `events after the send: ${JSON.stringify(tail.map((e) => e.ev))}`);
    assert.equal(tail.filter((e) => e.ev === 'typing').length, 1, 'one typing event for the send');
    // A message from someone who is not typing sends no typing event.
    from = o.events.length;
    const s2 = await o.ok('msg.send', { chat, body: 'not typing' });
    await o.waitSeq(chat, s2.msg.seq, { from });
    await barrier(o);
    assert.deepEqual(typingEvents(o, chat, from), []);
  });

  test('the TTL clears a typer who stops refreshing', async () => {
    const { chat, socks, names } = await room(['own', 'bob']);
    const [o, b] = socks;
    const from = o.events.length;
    const t0 = Date.now();
    await b.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1]], { from });
    const cleared = await typed(o, chat, [], { from, timeout: TTL + 5000 });
    const dt = Date.now() - t0;
    assert.ok(dt >= TTL - 100, `cleared after ${dt} ms, before the ${TTL} ms TTL`);
    assert.ok(dt < TTL + 3000, `cleared only after ${dt} ms`);
    assert.equal(cleared.others, 0);
    assert.deepEqual(typingEvents(o, chat, from).map((e) => usernames(e.users)), [[names[1]], []]);
    // Typing again after the expiry is announced again.
    const mark = o.events.length;
    await b.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1]], { from: mark });
    await b.ok('typing', { chat, on: false });
  });

  test('disconnect clears the typer', async () => {
    const { chat, socks, names } = await room(['own', 'bob']);
    const [o, b] = socks;
    let from = o.events.length;
    await b.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1]], { from });
    from = o.events.length;
    await b.close();
    await typed(o, chat, [], { from });
  });

  test('a dropped connection (no close frame) clears the typer', async () => {
    const { chat, socks, names } = await room(['own', 'bob']);
    const [o, b] = socks;
    let from = o.events.length;
    await b.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1]], { from });
    from = o.events.length;
    await b.terminate();
    // Well before the TTL: the server saw the TCP connection end.
    await typed(o, chat, [], { from });
  });

  test('unsub clears the typer', async () => {
    const { chat, socks, names } = await room(['own', 'bob']);
    const [o, b] = socks;
    let from = o.events.length;
    await b.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1]], { from });
    from = o.events.length;
    await b.ok('unsub', { chat });
    await typed(o, chat, [], { from });
    await b.fail('typing', { chat, on: true }, 'bad_request');
  });

  test('removal from the chat clears the typer, and the removed user cannot type', async () => {
    const { chat, socks, names } = await room(['own', 'bob', 'cid']);
    const [o, b, c] = socks;
    let from = c.events.length;
    await b.ok('typing', { chat, on: true });
    await typed(c, chat, [names[1]], { from });
    from = c.events.length;
    await o.ok('chat.remove', { chat, user: names[1] });
    await typed(c, chat, [], { from });
    await b.waitFor((e) => e.ev === 'removed' && e.chat === chat, { what: 'removed' });
    const r = await b.request('typing', { chat, on: true });
    assert.equal(r.ok, false, `a removed user typed: ${JSON.stringify(r)}`);
    assert.ok(['bad_request', 'forbidden'].includes(r.error.code), JSON.stringify(r));
    await b.fail('sub', { chat }, 'forbidden');
    await barrier(c);
    for (const e of typingEvents(c, chat, from)) {
      assert.ok(!usernames(e.users).includes(names[1]), `removed user typing: ${JSON.stringify(e)}`);
    }
  });

  test('the event always carries the whole set: two typers, one stops, the other remains', async () => {
    const { chat, socks, names } = await room(['own', 'bob', 'cid']);
    const [o, b, c] = socks;
    const from = o.events.length;
    await b.ok('typing', { chat, on: true });
    await c.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1], names[2]], { from });
    let mark = o.events.length;
    await b.ok('typing', { chat, on: false });
    const ev = await typed(o, chat, [names[2]], { from: mark });
    assert.equal(ev.users.length, 1);
    assert.equal(ev.others, 0);
    mark = o.events.length;
    await c.ok('typing', { chat, on: false });
    await typed(o, chat, [], { from: mark });
  });

  test('more than 5 typers: 5 are named and others counts the rest; sub reply carries them', async () => {
    const N = 7;
    const { chat, socks, names } = await room(['own', ...Array.from({ length: N }, (_, i) => `t${i}`)]);
    const [o, ...typers] = socks;
    const from = o.events.length;
    await Promise.all(typers.map((t) => t.ok('typing', { chat, on: true })));
    const ev = await o.waitFor((e) => e.ev === 'typing' && e.chat === chat && e.users.length + e.others === N, {
      from,
      what: `typing with ${N} typers`,
    });
    assert.equal(ev.users.length, 5, JSON.stringify(ev));
    assert.equal(ev.others, N - 5);
    const typerNames = names.slice(1);
    for (const u of ev.users) assert.ok(typerNames.includes(u.username), `${u.username} is not typing`);
    assert.equal(new Set(ev.users.map((u) => u.username)).size, 5, 'no one listed twice');

    // A new subscriber's reply carries the current typers.
    const [late] = await signupMany(srv, ['late']);
    const l = await conn(late);
    await l.ok('chat.join', { chat });
    const sub = await l.ok('sub', { chat });
    assert.ok(Array.isArray(sub.typing), `sub.typing: ${JSON.stringify(sub.typing)}`);
    assert.equal(sub.typing.length, 5);
    assert.equal(sub.typingOthers, N - 5, `sub reply: ${JSON.stringify({ typing: sub.typing, typingOthers: sub.typingOthers })}`);

    // Everyone stops: down to none, with the count following.
    const mark = o.events.length;
    await Promise.all(typers.slice(0, 3).map((t) => t.ok('typing', { chat, on: false })));
    const four = await o.waitFor((e) => e.ev === 'typing' && e.chat === chat && e.users.length + e.others === 4, {
      from: mark,
      what: 'typing with 4 typers',
    });
    assert.equal(four.others, 0);
    assert.deepEqual(usernames(four.users), typerNames.slice(3).sort());
    await Promise.all(typers.slice(3).map((t) => t.ok('typing', { chat, on: false })));
    await typed(o, chat, [], { from: mark, others: 0 });
  });

  test('the sub reply carries the current typers (one typer)', async () => {
    const { chat, users, socks } = await room(['own', 'bob', 'cid'], { sub: false });
    const [o, b, c] = socks;
    await o.ok('sub', { chat });
    let sub = await b.ok('sub', { chat });
    assert.deepEqual(sub.typing, []);
    await b.ok('typing', { chat, on: true });
    sub = await c.ok('sub', { chat });
    assert.deepEqual(sub.typing, [users[1].user]);
    assert.equal(sub.typingOthers ?? 0, 0);
    await b.ok('typing', { chat, on: false });
    await typed(c, chat, []);
    sub = await c.ok('sub', { chat }); // re-subscribing gives the fresh snapshot
    assert.deepEqual(sub.typing, []);
  });

  test('a non-participant never shows up as typing, even by pipelining typing behind a refused sub', async () => {
    const { chat, socks } = await room(['own', 'bob']);
    const [o] = socks;
    await o.ok('chat.update', { chat, isPublic: false });
    const [mal] = await signupMany(srv, ['mal']);
    const m = await conn(mal);
    const from = o.events.length;
    // Both in one TCP write: the typing op is read while the sub is still being checked.
    const [subReply, typingReply] = await pipelined(m, [
      ['sub', { chat }],
      ['typing', { chat, on: true }],
    ]);
    assert.equal(subReply.ok, false, JSON.stringify(subReply));
    assert.equal(subReply.error.code, 'not_found');
    assert.equal(typingReply.ok, false, `typing by a non-participant was accepted: ${JSON.stringify(typingReply)}`);
    await barrier(o);
    for (const e of o.events.slice(from)) {
      if (e.ev === 'typing') assert.ok(!usernames(e.users).includes(mal.user.username), `stranger typing: ${JSON.stringify(e)}`);
      if (e.ev === 'chat.active') {
        assert.ok(!usernames(e.activeUsers).includes(mal.user.username), `stranger active: ${JSON.stringify(e)}`);
      }
    }
  });

  test('typing is never persisted: a restart clears it', async () => {
    const { chat, users, socks, names } = await room(['own', 'bob']);
    const [o, b] = socks;
    const from = o.events.length;
    await b.ok('typing', { chat, on: true });
    await typed(o, chat, [names[1]], { from });
    await srv.restart(); // closes every socket of this file
    const o2 = await conn(users[0]);
    const sub = await o2.ok('sub', { chat });
    assert.deepEqual(sub.typing, []);
  });
});
