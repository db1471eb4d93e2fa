// 20 - Presence and activeUsers: presence is per user, aggregated over all of their sockets
// (online while any socket is active, away while every socket reports hidden or idle, offline
// only after the grace with no socket at all); a reconnect within the grace is invisible; a
// client that vanishes without a close frame goes offline after detection plus the grace;
// lastSeen is durable across a restart; presence reaches only users who share a chat with the
// user or found them with users.search; activeUsers follows sub, unsub and disconnect.
//
// The server runs with a 1500 ms grace and a 300 ms heartbeat. Proving that an event did NOT come
// uses a control user who disconnects after the user under test: presence is swept in one pass
// and published in order, so once the watcher has the control's offline event, any offline
// event about the user under test would already have arrived.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  barrier,
  connect,
  makeChat,
  pipelined,
  presenceEvents,
  signupMany,
  usernames,
  waitActive,
  waitPresence,
} from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

const GRACE = 1500;
const PING = 300;
// Offline comes from a periodic sweep (at most once a second): allow grace + sweep + slack.
const OFFLINE_WAIT = GRACE + 5000;
// chat.active is pushed in the loop turn of the change: far less than the once-a-second sweep.
const PROMPT = { timeout: 500 };

describe('presence', () => {
  const srv = useServer({
    env: { PARLEY_PRESENCE_GRACE_MS: String(GRACE), PARLEY_PING_INTERVAL_MS: String(PING) },
  });

  const open = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  async function conn(u, opts = {}) {
    const c = await connect(srv, { token: u.token, ...opts });
    open.push(c);
    return c;
  }

  // The participant entry of `username` in a chat.get reply.
  async function participant(client, chat, username) {
    const { participants } = await client.ok('chat.get', { chat });
    const p = participants.find((x) => x.username === username);
    assert.ok(p, `${username} is a participant of ${chat}: ${JSON.stringify(participants)}`);
    return p;
  }

  describe('multi-device aggregation and the grace', () => {
    test('two tabs: closing one keeps the user online (no event to a watcher who shares a chat)', async () => {
      const [ana, wes, cat] = await signupMany(srv, ['ana', 'wes', 'cat']);
      const w = await conn(wes);
      const a1 = await conn(ana);
      const a2 = await conn(ana, { token: undefined, cookie: ana.cookie });
      const c = await conn(cat);
      const chat = await makeChat(w, { title: 'tabs', join: [a1, c] });
      assert.equal((await participant(w, chat, ana.user.username)).state, 'online');

      const from = w.events.length;
      await a1.close();
      await c.close(); // the control: disconnects after ana's tab
      const off = await waitPresence(w, cat.user.username, 'offline', { from, timeout: OFFLINE_WAIT });
      assert.equal(off.user.username, cat.user.username);
      await barrier(w);
      assert.deepEqual(presenceEvents(w, ana.user.username, from), [], 'no presence change for ana');
      const p = await participant(w, chat, ana.user.username);
      assert.equal(p.state, 'online', 'one tab left: still online');
      await a2.ok('ping');
    });

    test('both tabs closed: offline only after the grace, with lastSeen at the close; strangers see nothing', async () => {
      const [ana, wes, sam] = await signupMany(srv, ['ana', 'wes', 'sam']);
      const w = await conn(wes);
      const s = await conn(sam); // shares no chat with ana, never searched
      const a1 = await conn(ana);
      const a2 = await conn(ana, { token: undefined, cookie: ana.cookie });
      const chat = await makeChat(w, { title: 'grace', join: [a1] });
      const fromS = s.events.length;

      const from = w.events.length;
      await Promise.all([a1.close(), a2.close()]);
      const tClose = Date.now();
      const ev = await waitPresence(w, ana.user.username, 'offline', { from, timeout: OFFLINE_WAIT });
      const tOff = Date.now();
      assert.ok(tOff - tClose >= GRACE - 500, `offline came ${tOff - tClose} ms after the close: before the ${GRACE} ms grace`);
      assert.ok(tOff - tClose < GRACE + 3000, `offline came only ${tOff - tClose} ms after the close`);
      assert.deepEqual(ev.user, { id: ana.user.id, username: ana.user.username });
      assert.equal(typeof ev.lastSeen, 'number', `lastSeen: ${JSON.stringify(ev)}`);
      assert.ok(Math.abs(ev.lastSeen - tClose) < 500, `lastSeen ${ev.lastSeen} vs close at ${tClose}`);
      assert.deepEqual(presenceEvents(w, ana.user.username, from), [ev], 'exactly one change: offline');

      // Every view agrees: chat.get, chat.members, the sub snapshot (who is there: not ana
      // any more), users.search.
      const p = await participant(w, chat, ana.user.username);
      assert.equal(p.state, 'offline');
      assert.equal(p.lastSeen, ev.lastSeen);
      const { members } = await w.ok('chat.members', { chat });
      const pm = members.find((x) => x.username === ana.user.username);
      assert.equal(pm.state, 'offline');
      assert.equal(pm.lastSeen, ev.lastSeen);
      const sub = await w.ok('sub', { chat });
      assert.ok(Array.isArray(sub.presence), `sub.presence: ${JSON.stringify(sub.presence)}`);
      assert.deepEqual(sub.presence.map((x) => x.user.username), [wes.user.username], 'only who is online or away');
      assert.equal(sub.online, 1);
      assert.equal(sub.presenceMore, false);
      const pw = sub.presence.find((x) => x.user.username === wes.user.username);
      assert.equal(pw.state, 'online');
      const { users } = await w.ok('users.search', { q: ana.user.username });
      const hit = users.find((u) => u.username === ana.user.username);
      assert.equal(hit.state, 'offline');
      assert.equal(hit.lastSeen, ev.lastSeen);

      // Coming back is announced at once.
      const from2 = w.events.length;
      const a3 = await conn(ana);
      const on = await waitPresence(w, ana.user.username, 'online', { from: from2 });
      assert.equal(typeof on.lastSeen, 'number');
      assert.ok(on.lastSeen >= ev.lastSeen);
      await a3.ok('ping');

      await barrier(s);
      assert.deepEqual(presenceEvents(s, ana.user.username, fromS), [], 'a stranger got presence about ana');
    });

    test('reconnect within the grace: the watcher sees no event at all', async () => {
      const [ana, wes, cat] = await signupMany(srv, ['ana', 'wes', 'cat']);
      const w = await conn(wes);
      const a1 = await conn(ana);
      const a2 = await conn(ana, { token: undefined, cookie: ana.cookie });
      const c = await conn(cat);
      const chat = await makeChat(w, { title: 'reload', join: [a1, c] });

      const from = w.events.length;
      await Promise.all([a1.close(), a2.close()]);
      await c.close(); // the control
      const a3 = await conn(ana); // a reload: back well within the grace
      await waitPresence(w, cat.user.username, 'offline', { from, timeout: OFFLINE_WAIT });
      await barrier(w);
      assert.deepEqual(presenceEvents(w, ana.user.username, from), [], 'no offline and no online event for ana');
      assert.equal((await participant(w, chat, ana.user.username)).state, 'online');
      await a3.ok('ping');
    });
  });

  describe('away', () => {
    test('away when every socket is hidden or idle; online again when one is active', async () => {
      const [ana, wes] = await signupMany(srv, ['ana', 'wes']);
      const w = await conn(wes);
      const a1 = await conn(ana);
      const a2 = await conn(ana, { token: undefined, cookie: ana.cookie });
      const chat = await makeChat(w, { title: 'away', join: [a1] });
      const name = ana.user.username;
      const from = w.events.length;

      assert.equal((await a1.ok('presence', { state: 'hidden' })).state, 'online', 'one tab still active');
      await barrier(w);
      assert.deepEqual(presenceEvents(w, name, from), [], 'one hidden tab of two changes nothing');

      assert.equal((await a2.ok('presence', { state: 'idle' })).state, 'away');
      const away = await waitPresence(w, name, 'away', { from });
      assert.deepEqual(away.user, { id: ana.user.id, username: name });
      assert.equal(typeof away.lastSeen, 'number');
      assert.equal((await participant(w, chat, name)).state, 'away');

      let mark = w.events.length;
      assert.equal((await a1.ok('presence', { state: 'active' })).state, 'online');
      await waitPresence(w, name, 'online', { from: mark });
      assert.equal((await participant(w, chat, name)).state, 'online');

      // Back to away; then a new tab (which starts active) makes the user online, and closing
      // that only active tab makes them away again.
      mark = w.events.length;
      assert.equal((await a1.ok('presence', { state: 'hidden' })).state, 'away');
      await waitPresence(w, name, 'away', { from: mark });
      mark = w.events.length;
      const a3 = await conn(ana);
      await waitPresence(w, name, 'online', { from: mark });
      mark = w.events.length;
      await a3.close();
      await waitPresence(w, name, 'away', { from: mark });
      await barrier(w);
      assert.deepEqual(
        presenceEvents(w, name, from).map((e) => e.state),
        ['away', 'online', 'away', 'online', 'away'],
        'one event per change, none repeated',
      );

      // Repeating a state is not a change.
      mark = w.events.length;
      await a1.ok('presence', { state: 'idle' });
      await a1.ok('presence', { state: 'hidden' });
      await barrier(w);
      assert.deepEqual(presenceEvents(w, name, mark), []);

      for (const bad of [{ state: 'online' }, { state: 'away' }, {}, { state: 1 }]) {
        const err = await a1.fail('presence', bad, 'bad_request');
        assert.match(err.message, /state/);
      }
    });
  });

  describe('vanished clients', () => {
    test('a client dropped without a close frame goes offline after the grace', async () => {
      const [ana, wes] = await signupMany(srv, ['ana', 'wes']);
      const w = await conn(wes);
      const a = await conn(ana);
      await makeChat(w, { title: 'killed', join: [a] });
      const from = w.events.length;
      const t0 = Date.now();
      await a.terminate(); // the TCP connection is destroyed: no close handshake
      const ev = await waitPresence(w, ana.user.username, 'offline', { from, timeout: OFFLINE_WAIT });
      const dt = Date.now() - t0;
      assert.ok(dt >= GRACE - 500, `offline ${dt} ms after the drop: before the grace`);
      assert.ok(Math.abs(ev.lastSeen - t0) < 500, `lastSeen ${ev.lastSeen} vs drop at ${t0}`);
      assert.deepEqual(presenceEvents(w, ana.user.username, from), [ev]);
    });

    test('a silent peer (no pongs, no data) is detected by the heartbeat and then goes offline', async () => {
      const [ana, wes] = await signupMany(srv, ['ana', 'wes']);
      const w = await conn(wes);
      const a = await conn(ana, { autoPong: false });
      await makeChat(w, { title: 'silent', join: [a] });
      const from = w.events.length;
      const t0 = Date.now();
      // The peer now says nothing at all: the server must notice on its own.
      const info = await a.waitClose({ timeout: 10 * PING + 5000 });
      assert.ok(info.at - t0 < 10 * PING + 3000, `dropped only after ${info.at - t0} ms`);
      const ev = await waitPresence(w, ana.user.username, 'offline', { from, timeout: OFFLINE_WAIT });
      const dt = Date.now() - info.at;
      assert.ok(dt >= GRACE - 500, `offline ${dt} ms after the server dropped the peer: before the grace`);
      assert.ok(dt < GRACE + 3000, `offline only ${dt} ms after the drop`);
      assert.ok(Math.abs(ev.lastSeen - info.at) < 500, `lastSeen ${ev.lastSeen} vs dropped at ${info.at}`);
    });
  });

  describe('privacy', () => {
    test('strangers get no presence; a search result does; the sub snapshot covers every participant', async () => {
      const [ana, wes, sam, xia] = await signupMany(srv, ['ana', 'wes', 'sam', 'xia']);
      const w = await conn(wes);
      const a = await conn(ana);
      const s = await conn(sam);
      const x = await conn(xia);
      const chat = await makeChat(w, { title: 'private circle', isPublic: false, join: [a, x] });
      const name = ana.user.username;
      const fromW = w.events.length;
      const fromS = s.events.length;

      await a.ok('presence', { state: 'hidden' });
      await waitPresence(w, name, 'away', { from: fromW });
      await waitPresence(x, name, 'away');
      await a.ok('presence', { state: 'active' });
      await waitPresence(w, name, 'online', { from: fromW });
      await barrier(s);
      assert.deepEqual(presenceEvents(s, name, fromS), [], 'a stranger received presence about ana');

      // The snapshot in sub lists every participant who is not offline, with their state.
      await a.ok('presence', { state: 'idle' });
      await waitPresence(w, name, 'away', { from: fromW });
      const sub = await w.ok('sub', { chat });
      const byName = Object.fromEntries(sub.presence.map((p) => [p.user.username, p]));
      assert.deepEqual(Object.keys(byName).sort(), [name, wes.user.username, xia.user.username].sort());
      assert.equal(byName[name].state, 'away');
      assert.equal(byName[wes.user.username].state, 'online');
      assert.equal(byName[xia.user.username].state, 'online');
      assert.equal(byName[name].user.id, ana.user.id);
      for (const p of sub.presence) assert.equal(typeof p.lastSeen, 'number', JSON.stringify(p));

      // Searching for ana shows her state and from then on her changes.
      const { users } = await s.ok('users.search', { q: name });
      const hit = users.find((u) => u.username === name);
      assert.ok(hit, `search found ana: ${JSON.stringify(users)}`);
      assert.equal(hit.state, 'away');
      assert.equal(typeof hit.lastSeen, 'number');
      let mark = s.events.length;
      await a.ok('presence', { state: 'active' });
      const ev = await waitPresence(s, name, 'online', { from: mark });
      assert.deepEqual(ev.user, { id: ana.user.id, username: name });

      // It is not mutual: ana did not search for sam and shares no chat with him.
      mark = a.events.length;
      await s.ok('presence', { state: 'hidden' });
      await barrier(a);
      assert.deepEqual(presenceEvents(a, sam.user.username, mark), [], 'ana received presence about sam');
      await s.ok('presence', { state: 'active' });
    });
  });

  describe('activeUsers', () => {
    test('sub adds the user, unsub and disconnect remove them; chat.get and sub show it', async () => {
      const [own, ana, xia] = await signupMany(srv, ['own', 'ana', 'xia']);
      const o = await conn(own);
      const a1 = await conn(ana);
      const a2 = await conn(ana, { token: undefined, cookie: ana.cookie });
      const x = await conn(xia);
      const chat = await makeChat(o, { title: 'who is here', isPublic: false, join: [a1, x] });
      const [O, A, X] = [own, ana, xia].map((u) => u.user.username);

      const subO = await o.ok('sub', { chat });
      assert.deepEqual(usernames(subO.activeUsers), [O], 'the subscriber is active in its own sub reply');
      const from = o.events.length;

      const subA = await a1.ok('sub', { chat });
      assert.deepEqual(usernames(subA.activeUsers), [A, O].sort());
      assert.deepEqual(usernames(subA.chat.activeUsers), [A, O].sort(), 'chat.activeUsers in the sub reply');
      const ev = await waitActive(o, chat, [A, O], { from, ...PROMPT });
      const ua = ev.activeUsers.find((u) => u.username === A);
      assert.equal(ua.id, ana.user.id);

      // chat.get by a participant who has not opened the chat.
      let got = await x.ok('chat.get', { chat });
      assert.deepEqual(usernames(got.chat.activeUsers), [A, O].sort());

      // A second tab of ana: subscribing and unsubscribing it changes nothing; ana stays active.
      await a2.ok('sub', { chat });
      await a2.ok('unsub', { chat });
      await x.ok('sub', { chat });
      await waitActive(o, chat, [A, O, X], { from, ...PROMPT });
      await barrier(o);
      for (const e of o.events.slice(from).filter((e) => e.ev === 'chat.active')) {
        assert.ok(usernames(e.activeUsers).includes(A), `ana dropped from activeUsers: ${JSON.stringify(e)}`);
      }

      // unsub removes; a closed socket removes.
      let mark = o.events.length;
      await a1.ok('unsub', { chat });
      await waitActive(o, chat, [O, X], { from: mark, ...PROMPT });
      mark = o.events.length;
      await x.close();
      await waitActive(o, chat, [O], { from: mark, ...PROMPT });
      got = await o.ok('chat.get', { chat });
      assert.deepEqual(usernames(got.chat.activeUsers), [O]);
      await a2.ok('ping');
    });

    test('a chat object that carries activeUsers carries the live set: chat.join, chat.list, chat.updated', async () => {
      const [own, bob] = await signupMany(srv, ['own', 'bob']);
      const o = await conn(own);
      const b = await conn(bob);
      const chat = await makeChat(o, { title: 'objects' });
      await o.ok('sub', { chat });
      const want = [own.user.username];
      const wrong = [];
      // activeUsers is promised by chat.get and sub; elsewhere a chat object may leave it out,
      // but one that carries it must not show a stale list.
      const check = (where, obj) => {
        assert.ok(obj, `${where}: no chat object`);
        if ('activeUsers' in obj && JSON.stringify(usernames(obj.activeUsers)) !== JSON.stringify(want)) {
          wrong.push(`${where}: activeUsers ${JSON.stringify(obj?.activeUsers)}`);
        }
      };
      check('chat.join reply', (await b.ok('chat.join', { chat })).chat);
      check('chat.get reply', (await b.ok('chat.get', { chat })).chat);
      check('chat.list reply', (await b.ok('chat.list')).chats.find((c) => c.slug === chat));
      const mark = b.events.length;
      await o.ok('chat.update', { chat, title: 'renamed' });
      const upd = await b.waitFor((e) => e.ev === 'chat.updated' && e.chat?.slug === chat, { from: mark, what: 'chat.updated' });
      check('chat.updated event', upd.chat);
      assert.deepEqual(wrong, [], `chat objects disagree with the live activeUsers [${want}]`);
    });
    test('a refused sub never makes a non-participant active, not even for a moment', async () => {
      const [own, sam] = await signupMany(srv, ['own', 'sam']);
      const o = await conn(own);
      const s = await conn(sam);
      const chat = await makeChat(o, { title: 'members only', isPublic: false });
      await o.ok('sub', { chat });
      const from = o.events.length;
      // A refused sub, and a pipelined one with typing and unsub read before the refusal.
      await s.fail('sub', { chat }, 'not_found');
      const replies = await pipelined(s, [
        ['sub', { chat }],
        ['typing', { chat, on: true }],
      ]);
      assert.equal(replies[0].error?.code, 'not_found', JSON.stringify(replies[0]));
      await barrier(o);
      for (const e of o.events.slice(from).filter((e) => e.ev === 'chat.active')) {
        assert.ok(!usernames(e.activeUsers).includes(sam.user.username), `a stranger in activeUsers: ${JSON.stringify(e)}`);
      }
      const got = await o.ok('chat.get', { chat });
      assert.deepEqual(usernames(got.chat.activeUsers), [own.user.username]);
    });
  });

  describe('durability', () => {
    test('lastSeen survives a restart: chat.get, sub and users.search show the same lastSeen', async () => {
      const [ana, wes] = await signupMany(srv, ['ana', 'wes']);
      const w = await conn(wes);
      const a = await conn(ana);
      const chat = await makeChat(w, { title: 'restart', join: [a] });
      const from = w.events.length;
      await a.close();
      const ev = await waitPresence(w, ana.user.username, 'offline', { from, timeout: OFFLINE_WAIT });
      assert.equal(typeof ev.lastSeen, 'number');

      await srv.restart(); // every socket of this file is closed by the restart
      const w2 = await conn(wes);
      const p = await participant(w2, chat, ana.user.username);
      assert.equal(p.state, 'offline');
      assert.equal(p.lastSeen, ev.lastSeen, 'chat.get lastSeen after restart');
      const { members } = await w2.ok('chat.members', { chat });
      const pa = members.find((x) => x.username === ana.user.username);
      assert.deepEqual([pa.state, pa.lastSeen], ['offline', ev.lastSeen], 'chat.members lastSeen after restart');
      const sub = await w2.ok('sub', { chat });
      assert.equal(sub.presence.find((x) => x.user.username === ana.user.username), undefined, 'offline: not in the sub reply');
      const { users } = await w2.ok('users.search', { q: ana.user.username });
      const hit = users.find((u) => u.username === ana.user.username);
      assert.equal(hit.state, 'offline');
      assert.equal(hit.lastSeen, ev.lastSeen, 'users.search lastSeen after restart');
    });
  });
});
