// The web app's issue 18 decisions (web/src/lib/live-rules.ts): how a chat.activity changes and
// moves a chat in the list, which activities notify, where the first unread message is, and
// which post-login `next` paths are followed. Compiled with the web app's Vite and run in Node.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { before, describe, test } from 'node:test';
import { ROOT } from './lib/server.mjs';

let r;

before(async () => {
  const require = createRequire(path.join(ROOT, 'web/package.json'));
  const vite = await import(pathToFileURL(require.resolve('vite')).href);
  const file = path.join(ROOT, 'web/src/lib/live-rules.ts');
  const { code } = await vite.transformWithOxc(await fs.readFile(file, 'utf8'), file, { lang: 'ts' });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-live-rules-'));
  const out = path.join(dir, 'live-rules.mjs');
  await fs.writeFile(out, code);
  r = await import(pathToFileURL(out).href);
  await fs.rm(dir, { recursive: true, force: true });
});

const ana = { id: 1, username: 'ana', displayName: 'Ana' };
const ben = { id: 2, username: 'ben', displayName: 'Ben' };
const msg = (seq, author = ana, extra = {}) => ({ chat: 'c', seq, author, body: `m${seq}`, createdAt: seq, clientMsgId: null, ...extra });
const chat = (slug, lastActivity, extra = {}) => ({ slug, title: slug, lastActivity, lastSeq: 0, unread: 0, lastMessage: null, ...extra });
const activity = (chatSlug, m, extra = {}) => ({ chat: chatSlug, lastMsg: m, unread: 1, mentions: 0, lastActivity: m ? m.seq * 1000 : 0, seq: m ? m.seq : 0, mentioned: false, ...extra });

describe('placeByActivity and applyActivity', () => {
  test('an active chat moves to the top; the others keep their order', () => {
    const list = [chat('a', 300), chat('b', 200), chat('c', 100)];
    const moved = r.placeByActivity(list, { ...list[2], lastActivity: 400 });
    assert.deepEqual(moved.map((c) => c.slug), ['c', 'a', 'b']);
    assert.deepEqual(r.placeByActivity(list, { ...list[0], lastActivity: 150 }).map((c) => c.slug), ['b', 'a', 'c']);
  });
  test('counts are the server\'s; the preview never goes back; a read-marker event keeps the preview', () => {
    const c = chat('a', 5000, { lastMessage: msg(5), lastSeq: 5 });
    const next = r.applyActivity(c, activity('a', msg(6), { unread: 3, mentions: 1 }));
    assert.equal(next.unread, 3);
    assert.equal(next.mentions, 1);
    assert.equal(next.lastMessage.seq, 6);
    assert.equal(next.lastSeq, 6);
    const read = r.applyActivity(next, activity('a', null, { unread: 0, lastActivity: 6000, seq: 6 }));
    assert.equal(read.unread, 0);
    assert.equal(read.lastMessage.seq, 6);
    const stale = r.applyActivity(next, activity('a', msg(4), { unread: 0 }));
    assert.equal(stale.lastMessage.seq, 6);
    assert.equal(stale.lastActivity, 6000);
  });
});

describe('shouldNotify', () => {
  const ctx = { selfId: ben.id, activeSlug: 'other', visible: true };
  test('by level: all, mentions (mentioned only), none; DMs default to all', () => {
    const m = msg(2);
    assert.equal(r.shouldNotify(activity('g', m), chat('g', 1, { notify: 'all' }), ctx), true);
    assert.equal(r.shouldNotify(activity('g', m), chat('g', 1), ctx), false, 'group default is mentions');
    assert.equal(r.shouldNotify(activity('g', m, { mentioned: true }), chat('g', 1), ctx), true);
    assert.equal(r.shouldNotify(activity('g', m, { mentioned: true }), chat('g', 1, { notify: 'none' }), ctx), false);
    assert.equal(r.shouldNotify(activity('d', m), chat('d', 1, { kind: 'dm' }), ctx), true, 'DM default is all');
  });
  test('never for your own message, a read-marker event, an old or already notified message, or a notice', () => {
    const all = chat('g', 1, { notify: 'all', lastMessage: msg(3) });
    assert.equal(r.shouldNotify(activity('g', msg(4, ben)), all, ctx), false, 'own');
    assert.equal(r.shouldNotify(activity('g', null), all, ctx), false, 'read marker');
    assert.equal(r.shouldNotify(activity('g', msg(3)), all, ctx), false, 'not newer than the list');
    assert.equal(r.shouldNotify(activity('g', msg(4)), all, { ...ctx, lastNotified: 4 }), false, 'already notified');
    assert.equal(r.shouldNotify(activity('g', msg(4, ana, { kind: 'notice' })), all, ctx), false, 'notice');
    assert.equal(r.shouldNotify(activity('g', msg(4)), all, ctx), true);
  });
  test('not for the chat on screen in a visible tab; yes when the tab is hidden', () => {
    const all = chat('g', 1, { notify: 'all' });
    assert.equal(r.shouldNotify(activity('g', msg(2)), all, { ...ctx, activeSlug: 'g' }), false);
    assert.equal(r.shouldNotify(activity('g', msg(2)), all, { ...ctx, activeSlug: 'g', visible: false }), true);
  });
});

describe('firstUnreadSeq', () => {
  const list = [msg(1), msg(2, ben), msg(3), msg(4, ben), msg(5)];
  test('counts back over messages by others only', () => {
    assert.equal(r.firstUnreadSeq(list, 1, ben.id, false), 5);
    assert.equal(r.firstUnreadSeq(list, 2, ben.id, false), 3);
    assert.equal(r.firstUnreadSeq(list, 3, ben.id, false), 1);
    assert.equal(r.firstUnreadSeq(list, 0, ben.id, false), null);
  });
  test('older than what is loaded: unknown while more pages exist, else the oldest', () => {
    assert.equal(r.firstUnreadSeq(list, 9, ben.id, true), null);
    assert.equal(r.firstUnreadSeq(list, 9, ben.id, false), 1);
    assert.equal(r.firstUnreadSeq([...list, { ...msg(6), seq: null }], 1, ben.id, false), 5, 'pending sends have no seq');
  });
});

describe('safeNext', () => {
  test('paths of this site are followed', () => {
    assert.equal(r.safeNext('/chat/design-review'), '/chat/design-review');
    assert.equal(r.safeNext('/browse?x=1'), '/browse?x=1');
  });
  test('other sites, auth pages and junk lead to /chat', () => {
    for (const bad of [null, '', 'chat', 'https://evil.example/', '//evil.example', '/\\evil.example', '/chat\n', '/login', '/signup?next=/x', 'javascript:alert(1)']) {
      assert.equal(r.safeNext(bad), '/chat', JSON.stringify(bad));
    }
  });
});
