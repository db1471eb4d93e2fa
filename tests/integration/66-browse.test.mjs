// 66 - The public directory (issue 18): chat.browse lists public, unarchived chats, newest
// activity first, with member counts and whether the caller is in each; `q` matches the start of
// a word of the title (case-insensitive, LIKE wildcards are plain characters); `before` (with
// `chat`, the previous page's last, so equal lastActivity never skips or repeats a chat) and
// `limit` page through it.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, describe, test } from 'node:test';

import { connect, makeChat, signupMany } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('chat.browse', () => {
  const srv = useServer();
  const open = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close().catch(() => {})));
  });
  async function conn(u) {
    const c = await connect(srv, { token: u.token });
    open.push(c);
    return c;
  }

  test('public chats only, with counts and joined, word starts of the title', async () => {
    const [ana, ben, cy] = await signupMany(srv, ['ana', 'ben', 'cy']);
    const a = await conn(ana);
    const b = await conn(ben);
    const c = await conn(cy);
    const tag = crypto.randomBytes(3).toString('hex'); // this test's chats only
    const design = await makeChat(a, { title: `Design Review ${tag}`, join: [b] });
    const secret = await makeChat(a, { title: `Design secrets ${tag}`, isPublic: false });
    const pct = await makeChat(a, { title: `100% ${tag}` });
    const gone = await makeChat(c, { title: `Design gone ${tag}` });
    await c.ok('chat.leave', { chat: gone }); // the last one out: archived

    const r = await b.ok('chat.browse', { q: tag });
    const slugs = r.chats.map((x) => x.slug);
    assert.ok(slugs.includes(design) && slugs.includes(pct));
    assert.ok(!slugs.includes(secret), 'a private chat is not listed');
    assert.ok(!slugs.includes(gone), 'an archived chat is not listed');
    const d = r.chats.find((x) => x.slug === design);
    assert.deepEqual(Object.keys(d).sort(), ['joined', 'lastActivity', 'participantCount', 'slug', 'title']);
    assert.equal(d.title, `Design Review ${tag}`);
    assert.equal(d.participantCount, 2);
    assert.equal(d.joined, true);
    assert.equal(r.chats.find((x) => x.slug === pct).joined, false);
    assert.equal(r.hasMore, false);

    // Word starts, any case: "rev" finds "Design Review", "esign" does not.
    const words = async (q) =>
      (await c.ok('chat.browse', { q })).chats.filter((x) => x.title.endsWith(tag)).map((x) => x.slug);
    assert.deepEqual(await words('REV'), await words('rev'));
    assert.ok((await words('rev')).includes(design));
    assert.ok(!(await words('esign')).includes(design));
    // % and _ are plain characters, not wildcards.
    assert.ok((await words('100%')).includes(pct));
    assert.ok(!(await words('1_0')).includes(pct));
  });

  test('newest activity first, paged with before and limit', async () => {
    const [ana] = await signupMany(srv, ['ana']);
    const a = await conn(ana);
    const tag = `pg${crypto.randomBytes(3).toString('hex')}`;
    const made = [];
    for (let i = 0; i < 5; i++) {
      const slug = await makeChat(a, { title: `${tag} room ${i}` });
      await a.ok('msg.send', { chat: slug, body: 'bump' }); // a distinct lastActivity each
      made.push(slug);
      await new Promise((r) => setTimeout(r, 3)); // lastActivity is in ms: keep them apart
    }
    const page1 = await a.ok('chat.browse', { q: tag, limit: 2 });
    assert.deepEqual(page1.chats.map((x) => x.slug), [made[4], made[3]]);
    assert.equal(page1.hasMore, true);
    const page2 = await a.ok('chat.browse', { q: tag, limit: 2, before: page1.chats[1].lastActivity });
    assert.deepEqual(page2.chats.map((x) => x.slug), [made[2], made[1]]);
    const page3 = await a.ok('chat.browse', { q: tag, limit: 2, before: page2.chats[1].lastActivity });
    assert.deepEqual(page3.chats.map((x) => x.slug), [made[0]]);
    assert.equal(page3.hasMore, false);
    // Without q: every public chat, the newest first.
    const all = await a.ok('chat.browse', {});
    assert.equal(all.chats[0].slug, made[4]);
  });

  test('chats of equal lastActivity page on by (lastActivity, chat): none skipped or repeated', async () => {
    const [ana] = await signupMany(srv, ['ana']);
    const a = await conn(ana);
    const tag = `tie${crypto.randomBytes(3).toString('hex')}`;
    const made = [];
    for (let i = 0; i < 7; i++) made.push(await makeChat(a, { title: `${tag} room ${i}` }));
    const at = 1700000000000; // one instant for all of them (and before any chat of this run)
    await srv.sql(`UPDATE chats SET last_activity = ${at} WHERE title LIKE '${tag} %'`);
    const seen = [];
    let args = { q: tag, limit: 2 };
    for (let page = 0; page < 10; page++) {
      const r = await a.ok('chat.browse', args);
      for (const c of r.chats) assert.equal(c.lastActivity, at);
      seen.push(...r.chats.map((x) => x.slug));
      if (!r.hasMore) break;
      const last = r.chats[r.chats.length - 1];
      args = { q: tag, limit: 2, before: last.lastActivity, chat: last.slug };
    }
    // Ties come newest chat first (the later created, the higher its id).
    assert.deepEqual(seen, [...made].reverse());
    // Without q, the same walk over every public chat still finds each of them once.
    const all = [];
    args = { limit: 3, before: at + 1 };
    for (;;) {
      const r = await a.ok('chat.browse', args);
      all.push(...r.chats.map((x) => x.slug));
      if (!r.hasMore) break;
      const last = r.chats[r.chats.length - 1];
      args = { limit: 3, before: last.lastActivity, chat: last.slug };
    }
    assert.deepEqual(all.filter((x) => made.includes(x)), [...made].reverse());
    assert.equal(new Set(all).size, all.length, 'no chat twice');
  });

  test('bad input', async () => {
    const [ana] = await signupMany(srv, ['ana']);
    const a = await conn(ana);
    await a.fail('chat.browse', { q: '' }, 'bad_request');
    await a.fail('chat.browse', { q: '   ' }, 'bad_request');
    await a.fail('chat.browse', { q: 'x'.repeat(65) }, 'too_large');
    await a.fail('chat.browse', { limit: 0 }, 'bad_request');
    await a.fail('chat.browse', { before: -1 }, 'bad_request');
    await a.fail('chat.browse', { q: 5 }, 'bad_request');
  });
});
