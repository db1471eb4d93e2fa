// 68 - msg.search (issue 18): full-text search over the chats the caller is in now, ranked, with
// matches marked by U+0002/U+0003 in the snippet; access (others' private chats, a removed user,
// public chats one has not joined), the index kept in step with inserts, in-place edits and
// deletes (done in the database directly: no op edits or deletes yet), DMs named as chat.list names them, paging by `before`, the
// limits, and query strings that are syntax to FTS5 or tsquery. `make integration-pg` runs it on
// PostgreSQL too.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, makeChat, signup, uname } from './lib/client.mjs';
import { scrape } from './lib/metrics.mjs';
import { useServer } from './lib/server.mjs';

const MARK_OPEN = '\u0002';
const MARK_CLOSE = '\u0003';

describe('msg.search', () => {
  const srv = useServer();
  let ana, ben, cat; // sockets
  let team, club, secret; // chats: team (ana, ben, cat), club (ana, ben; public), secret (cat alone)
  const open = [];

  const search = (s, q, args = {}) => s.ok('msg.search', { q, ...args });
  const seqsOf = (r) => r.results.map((x) => `${x.chat.slug}#${x.msg.seq}`);
  const send = async (s, chat, body) => (await s.ok('msg.send', { chat, body })).msg;

  before(async () => {
    const accounts = await Promise.all(['ana', 'ben', 'cat'].map((p) => signup(srv, uname(p))));
    [ana, ben, cat] = await Promise.all(accounts.map((a) => connect(srv, { token: a.token })));
    open.push(ana, ben, cat);
    team = await makeChat(ana, { title: 'Team room', isPublic: false, join: [] });
    await ana.ok('invite.create', { chat: team, user: ben.user.username }).then(({ invitation }) =>
      ben.ok('invite.accept', { invitation: invitation.id }),
    );
    await ana.ok('invite.create', { chat: team, user: cat.user.username }).then(({ invitation }) =>
      cat.ok('invite.accept', { invitation: invitation.id }),
    );
    club = await makeChat(ana, { title: 'Book club', join: [ben] });
    secret = await makeChat(cat, { title: 'Cat private', isPublic: false });
  });

  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });

  test('ranked by relevance, with the chat, the message and a marked snippet', async () => {
    const once = await send(ana, team, 'the zebra crossing near the station, and many other words to pad it out');
    const thrice = await send(ben, club, 'zebra zebra zebra');
    await send(ana, team, 'nothing to see here');
    const r = await search(ben, 'zebra');
    assert.equal(r.hasMore, false);
    assert.deepEqual(seqsOf(r), [`${club}#${thrice.seq}`, `${team}#${once.seq}`]);
    const top = r.results[0];
    assert.deepEqual(top.chat, { slug: club, title: 'Book club', kind: 'group' });
    assert.equal(top.msg.body, 'zebra zebra zebra');
    assert.equal(top.msg.author.username, ben.user.username);
    assert.equal(top.msg.chat, club);
    assert.equal(top.snippet, `${MARK_OPEN}zebra${MARK_CLOSE} `.repeat(3).trimEnd());
    assert.match(r.results[1].snippet, new RegExp(`${MARK_OPEN}zebra${MARK_CLOSE} crossing`));
    // Case and word boundaries: "ZEBRA" finds them, "zeb" does not, "zeb*" does.
    assert.equal((await search(ben, 'ZEBRA')).results.length, 2);
    assert.equal((await search(ben, 'zeb')).results.length, 0);
    assert.equal((await search(ben, 'zeb*')).results.length, 2);
  });

  test('a DM is named as the chat list names it: kind dm, titled by the other person', async () => {
    const { chat: dm } = await ana.ok('dm.open', { user: ben.user.username });
    const msg = await send(ana, dm.slug, 'a quokka sighting at the harbour');
    const fromBen = await search(ben, 'quokka');
    const fromAna = await search(ana, 'quokka');
    for (const [r, peer] of [
      [fromBen, ana],
      [fromAna, ben],
    ]) {
      assert.deepEqual(seqsOf(r), [`${dm.slug}#${msg.seq}`]);
      const listed = (await (peer === ana ? ben : ana).ok('chat.list')).chats.find((c) => c.slug === dm.slug);
      assert.equal(listed.peer.username, peer.user.username);
      assert.deepEqual(r.results[0].chat, { slug: dm.slug, title: listed.title, kind: 'dm' });
      assert.equal(listed.title, listed.peer.displayName);
    }
    assert.notEqual(fromBen.results[0].chat.title, fromAna.results[0].chat.title);
  });

  test('words, phrases, OR and exclusion', async () => {
    await send(ana, team, 'quick brown fox jumps');
    await send(ana, team, 'brown quick fox sleeps');
    await send(ana, team, 'lazy dog');
    const bodies = async (q) => (await search(ana, q)).results.map((x) => x.msg.body).sort();
    assert.deepEqual(await bodies('fox quick'), ['brown quick fox sleeps', 'quick brown fox jumps']);
    assert.deepEqual(await bodies('"quick brown"'), ['quick brown fox jumps']);
    assert.deepEqual(await bodies('jumps OR dog'), ['lazy dog', 'quick brown fox jumps']);
    assert.deepEqual(await bodies('fox -sleeps'), ['quick brown fox jumps']);
  });

  test('only chats the caller is a participant of now', async () => {
    await send(cat, secret, 'platypus in the private chat');
    const inTeam = await send(cat, team, 'platypus in the team');
    const inClub = await send(ana, club, 'platypus in the club');
    // ben: team and club; never cat's private chat.
    assert.deepEqual(seqsOf(await search(ben, 'platypus')).sort(), [`${club}#${inClub.seq}`, `${team}#${inTeam.seq}`].sort());
    // cat has not joined the public club: its messages are not searched either.
    assert.equal((await search(cat, 'platypus')).results.length, 2);
    assert.ok(!seqsOf(await search(cat, 'platypus')).includes(`${club}#${inClub.seq}`));
    // Restricted to one chat.
    assert.deepEqual(seqsOf(await search(ben, 'platypus', { chat: team })), [`${team}#${inTeam.seq}`]);
    // Naming another's private chat tells nothing about it.
    await ben.fail('msg.search', { q: 'platypus', chat: secret }, 'not_found');
    await ben.fail('msg.search', { q: 'platypus', chat: 'no-such-chat' }, 'not_found');
    // A public chat one is not in: as for its history, join it first.
    await cat.fail('msg.search', { q: 'platypus', chat: club }, 'forbidden');
  });

  test('a removed user finds nothing of that chat any more', async () => {
    const m = await send(ana, team, 'walrus meeting notes');
    assert.deepEqual(seqsOf(await search(cat, 'walrus')), [`${team}#${m.seq}`]);
    await ana.ok('chat.remove', { chat: team, user: cat.user.username });
    assert.deepEqual((await search(cat, 'walrus')).results, []);
    await cat.fail('msg.search', { q: 'walrus', chat: team }, 'not_found');
    assert.equal((await search(ben, 'walrus')).results.length, 1);
  });

  test('the index follows new messages, edits in place and deletes', async () => {
    const m = await send(ana, club, 'an ocelot appears');
    assert.deepEqual(seqsOf(await search(ben, 'ocelot')), [`${club}#${m.seq}`]);
    // An edit updates the row's body in place (as issue 17's msg.edit does): the old words go,
    // the new ones are found.
    const where = `chat_id = (SELECT id FROM chats WHERE slug = '${club}') AND seq = ${m.seq}`;
    await srv.sql(`UPDATE messages SET body = 'a lynx appears' WHERE ${where}`);
    assert.deepEqual((await search(ben, 'ocelot')).results, []);
    const r = await search(ben, 'lynx');
    assert.deepEqual(seqsOf(r), [`${club}#${m.seq}`]);
    assert.equal(r.results[0].snippet, `a ${MARK_OPEN}lynx${MARK_CLOSE} appears`);
    // A delete erases the body (issue 17) or the row: either way nothing is found.
    await srv.sql(`UPDATE messages SET body = '' WHERE ${where}`);
    assert.deepEqual((await search(ben, 'lynx')).results, []);
    const gone = await send(ana, club, 'a marmot appears');
    assert.equal((await search(ben, 'marmot')).results.length, 1);
    await srv.sql(`DELETE FROM messages WHERE chat_id = (SELECT id FROM chats WHERE slug = '${club}') AND seq = ${gone.seq}`);
    assert.deepEqual((await search(ben, 'marmot')).results, []);
  });

  test('edits and deletes right after sending, before the messages reach the index', async () => {
    // On SQLite new messages are indexed in batches (migration 14): a commit indexes what is
    // pending at most every 200 ms, and a search indexes everything pending first. Sent back to
    // back, the later of these messages are still pending when they are edited or deleted; the
    // index must end up exactly as if each change had been indexed at once.
    const a = await send(ana, club, 'first pendalpha');
    const b = await send(ana, club, 'second pendbravo');
    const c = await send(ana, club, 'third penddelta');
    const d = await send(ana, club, 'fourth pendecho');
    await ana.ok('msg.edit', { chat: club, seq: b.seq, body: 'second pendcharlie' });
    await ana.ok('msg.delete', { chat: club, seq: c.seq });
    await ana.ok('msg.edit', { chat: club, seq: d.seq, body: 'fourth pendfoxtrot' });
    await ana.ok('msg.edit', { chat: club, seq: d.seq, body: 'fourth pendgolf' });
    assert.deepEqual(seqsOf(await search(ben, 'pendalpha')), [`${club}#${a.seq}`]);
    assert.deepEqual((await search(ben, 'pendbravo')).results, []);
    assert.deepEqual(seqsOf(await search(ben, 'pendcharlie')), [`${club}#${b.seq}`]);
    assert.deepEqual((await search(ben, 'penddelta')).results, []);
    assert.deepEqual((await search(ben, 'pendecho OR pendfoxtrot')).results, []);
    assert.deepEqual(seqsOf(await search(ben, 'pendgolf')), [`${club}#${d.seq}`]);
    // A row deleted outright (a chat's messages go with the chat) while still pending.
    const e = await send(ana, club, 'fifth pendhotel');
    await srv.sql(`DELETE FROM messages WHERE chat_id = (SELECT id FROM chats WHERE slug = '${club}') AND seq = ${e.seq}`);
    assert.deepEqual((await search(ben, 'pendhotel')).results, []);
    if (!srv.pgSchema) {
      // FTS5's own check against its content (every text message): a 'delete' of something
      // never indexed, or an entry indexed twice, fails it.
      await srv.sql("INSERT INTO messages_search(messages_search, rank) VALUES ('integrity-check', 1)");
      assert.equal((await srv.sql('SELECT count(*) FROM search_pending')).trim(), '0');
    }
  });

  test('new messages reach the index while the store is idle, before any search', async () => {
    // SQLite only: the flush runs in a transaction of its own when nothing waits in the store
    // (so that no acknowledgement waits for FTS5), and, if it was not due yet, once its 200 ms
    // have passed with no request at all. Read from outside: a msg.search would flush itself.
    // Within 900 ms: a commit flushes what is pending only after a second (the late path, for a
    // store that is never idle), so waiting longer would not tell the idle flush is there.
    if (srv.pgSchema) return;
    await send(ana, club, 'idle idlezulu one');
    await send(ana, club, 'idle idlezulu two');
    const deadline = Date.now() + 900;
    let pending = '';
    while ((pending = (await srv.sql('SELECT count(*) FROM search_pending')).trim()) !== '0') {
      assert.ok(Date.now() < deadline, `${pending} entries still pending with the store idle`);
    }
    const indexed = await srv.sql("SELECT count(*) FROM messages_search WHERE messages_search MATCH 'idlezulu'");
    assert.equal(indexed.trim(), '2');
  });

  test('a backlog of several flushes is indexed part after part, then merged, before any search', async () => {
    // SQLite only: one flush outside msg.search takes at most 128 pending entries (a request that
    // comes meanwhile waits for one part, not for the whole backlog), and the next part follows
    // as soon as the store is idle again. 300 entries written from outside, all before the
    // server's next commit, take at least three flushes, and all of them reach the index.
    if (srv.pgSchema) return;
    const room = await makeChat(ana, { title: 'Backlog', join: [] });
    const n = 300;
    const m0 = await scrape(srv);
    await srv.sql(
      `WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ${n})` +
        ` INSERT INTO messages(chat_id, seq, author_id, body, created_at)` +
        ` SELECT c.id, c.last_seq + i, u.id, 'backlog partwren ' || i, 0 FROM k, chats c, users u` +
        ` WHERE c.slug = '${room}' AND u.username = '${ana.user.username}';` +
        ` UPDATE chats SET last_seq = last_seq + ${n}, last_text_seq = last_seq + ${n} WHERE slug = '${room}';`,
    );
    assert.equal((await srv.sql('SELECT count(*) FROM search_pending')).trim(), String(n));
    await send(ana, room, 'the commit that wakes the flush: partwren'); // the store's next commit
    const deadline = Date.now() + 5000;
    let pending = '';
    while ((pending = (await srv.sql('SELECT count(*) FROM search_pending')).trim()) !== '0') {
      assert.ok(Date.now() < deadline, `${pending} entries still pending`);
    }
    const indexed = await srv.sql("SELECT count(*) FROM messages_search WHERE messages_search MATCH 'partwren'");
    assert.equal(indexed.trim(), String(n + 1));
    const m = await scrape(srv);
    const flushes =
      m.get('parley_store_search_flush_seconds_count') - m0.get('parley_store_search_flush_seconds_count');
    assert.ok(flushes >= Math.ceil(n / 128), `${flushes} flushes for ${n} entries`);
    assert.ok(m.get('parley_store_search_flush_seconds_sum') > m0.get('parley_store_search_flush_seconds_sum'));
    assert.ok(m.get('parley_store_search_flush_max_seconds') > 0);
    // Each flush writes an FTS5 segment; the store merges them itself, in small steps while it
    // is idle (migration 19 turned FTS5's own merging inside the flushes off).
    assert.equal((await srv.sql("SELECT v FROM messages_search_config WHERE k = 'automerge'")).trim(), '0');
    const steps = async () =>
      (await scrape(srv)).get('parley_store_search_merge_seconds_count') -
      m0.get('parley_store_search_merge_seconds_count');
    while ((await steps()) < 1) assert.ok(Date.now() < deadline, 'no merge step after the flushes');
    await srv.sql("INSERT INTO messages_search(messages_search, rank) VALUES ('integrity-check', 1)");
    assert.deepEqual((await search(ben, 'partwren')).results, []); // ben is not in it
    assert.equal((await search(ana, 'partwren', { limit: 50 })).results.length, 50);
  });

  test('marks in a body cannot fake a highlight', async () => {
    await send(ana, club, `wombat ${MARK_OPEN}fake${MARK_CLOSE} highlight`);
    const [hit] = (await search(ben, 'wombat')).results;
    assert.equal(hit.snippet, `${MARK_OPEN}wombat${MARK_CLOSE} fake highlight`);
    assert.equal(hit.msg.body, `wombat ${MARK_OPEN}fake${MARK_CLOSE} highlight`); // stored as sent
  });

  test('pages by before (results already seen) up to the rank limit', async () => {
    for (let i = 0; i < 25; i++) await send(ana, club, `kestrel number ${i}`);
    const seen = [];
    let before = 0;
    for (const [n, more] of [[10, true], [10, true], [5, false]]) {
      const r = await search(ben, 'kestrel', { limit: 10, ...(before ? { before } : {}) });
      assert.equal(r.results.length, n);
      assert.equal(r.hasMore, more);
      seen.push(...seqsOf(r));
      before += r.results.length;
    }
    assert.equal(new Set(seen).size, 25);
    assert.equal((await search(ben, 'kestrel')).results.length, 20); // the default page
    await ben.ok('msg.search', { q: 'kestrel', limit: 50, before: 200 });
    await ben.fail('msg.search', { q: 'kestrel', limit: 50, before: 201 }, 'bad_request');
    await ben.fail('msg.search', { q: 'kestrel', limit: 51 }, 'bad_request');
    await ben.fail('msg.search', { q: 'kestrel', limit: 0 }, 'bad_request');
  });

  // SQLite searches a user's chats one by one up to 64 of them, and past that ranks the whole
  // index and filters it: the same answers either way.
  test('a user in many chats: the same access and paging', async () => {
    const { token } = await signup(srv, uname('dee'));
    const dee = await connect(srv, { token });
    open.push(dee);
    const slugs = [];
    for (let i = 0; i < 70; i++) slugs.push((await dee.ok('chat.create', { title: `Dee ${i}` })).chat.slug);
    const want = [];
    for (const i of [0, 33, 69]) {
      for (let k = 0; k < 4; k++) want.push(`${slugs[i]}#${(await send(dee, slugs[i], `heron sighting ${i}.${k}`)).seq}`);
    }
    await send(cat, secret, 'heron in a chat dee is not in');
    const seen = [];
    for (const before of [0, 5, 10]) {
      const r = await search(dee, 'heron', { limit: 5, ...(before ? { before } : {}) });
      seen.push(...seqsOf(r));
      assert.equal(r.hasMore, before < 10);
    }
    assert.deepEqual(seen.sort(), want.sort());
    assert.deepEqual(seqsOf(await search(dee, 'heron', { chat: slugs[33] })).length, 4);
  });

  test('limits: query size and terms', async () => {
    await ana.ok('msg.search', { q: 'a'.repeat(256) });
    await ana.fail('msg.search', { q: 'a'.repeat(257) }, 'too_large');
    await ana.fail('msg.search', { q: '' }, 'bad_request');
    await ana.fail('msg.search', { q: '   ' }, 'bad_request');
    await ana.fail('msg.search', {}, 'bad_request');
    await ana.fail('msg.search', { q: 7 }, 'bad_request');
    await ana.ok('msg.search', { q: Array.from({ length: 16 }, (_, i) => `w${i}`).join(' ') });
    await ana.fail('msg.search', { q: Array.from({ length: 17 }, (_, i) => `w${i}`).join(' ') }, 'bad_request');
  });

  test('query syntax of the engines is only text: never an internal error', async () => {
    const odd = await send(ana, club, 'NEAR the body: column ^caret it\'s a "quoted" back\\slash');
    const nasty = [
      '"', '""', '"unterminated', '*', '**', 'a*b', '-', '- -', '-x', 'NEAR', 'NEAR(a b)', 'NEAR/2',
      'a AND', 'AND', 'OR', 'NOT', 'a OR', 'OR b', 'body:x', 'body : x', '{body}: x', '^x', '+x',
      "'", "''", "it's", '\\', 'back\\slash', "a' OR 1=1 --", '):*', '!', '!x', '&', '|', '&|!',
      '<->', '<2>', 'a <-> b', 'x:*', 'x:A', '(', ')', '((a)', '[a]', '%', '_', ';', '$1', '?1',
      '\u0002', '\u0003x', '—', '— —', '🦊', 'ℌ', 'café', '日本語', 'a\tb\nc',
    ];
    for (const q of nasty) {
      const reply = await ana.request('msg.search', { q });
      assert.ok(
        reply.ok || reply.error.code === 'bad_request',
        `${JSON.stringify(q)} -> ${JSON.stringify(reply)}`,
      );
    }
    // Those words are still found as words.
    for (const q of ['NEAR', 'body:', "it's", '"quoted" back\\slash', '^caret', 'column -zebra']) {
      assert.ok(seqsOf(await search(ana, q)).includes(`${club}#${odd.seq}`), q);
    }
  });
});
