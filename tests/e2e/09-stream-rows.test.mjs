// Issue 19: a stream's delta changes one row only. The room's view of the timeline
// (web/src/lib/ui-msgs.ts: a UiMsg per item, cached by the item object) over the SDK's timeline
// folding (clients/js/src/timeline.ts): after a delta every other message keeps its very UiMsg
// object, which is what lets the memoised rows of the message list skip rendering. Compiled with
// the web app's Vite and run in Node, like 07-live-rules.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { before, describe, test } from 'node:test';
import { ROOT } from './lib/server.mjs';

let ui;
let tl;

before(async () => {
  const require = createRequire(path.join(ROOT, 'web/package.json'));
  const vite = await import(pathToFileURL(require.resolve('vite')).href);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-stream-rows-'));
  const load = async (rel, name) => {
    const file = path.join(ROOT, rel);
    const { code } = await vite.transformWithOxc(await fs.readFile(file, 'utf8'), file, { lang: 'ts' });
    const out = path.join(dir, name);
    await fs.writeFile(out, code);
    return import(pathToFileURL(out).href);
  };
  ui = await load('web/src/lib/ui-msgs.ts', 'ui-msgs.mjs');
  tl = await load('clients/js/src/timeline.ts', 'timeline.mjs');
  await fs.rm(dir, { recursive: true, force: true });
});

const ana = { id: 1, username: 'ana', displayName: 'Ana' };
const bot = { id: 9, username: 'helper', displayName: 'Helper', bot: true };
const text = (seq, author = ana, extra = {}) => ({ seq, chat: 'c', author, body: `m${seq}`, clientMsgId: null, createdAt: seq, kind: 'text', ...extra });

describe('rows by item', () => {
  test('after a delta only the streaming message gets a new view object; after the end too', () => {
    let t = tl.emptyTimeline(1);
    for (let s = 1; s <= 50; s++) t = tl.applyEntry(t, text(s));
    t = tl.applyEntry(t, text(51, bot, { body: '', streaming: true, stream: { state: 'streaming', length: 0 } }));
    const view = (tm) => tm.items.map((m) => ui.cachedUiMsg(m, 1));
    const before = view(t);
    const r = tl.applyDelta(t, { chat: 'c', seq: 51, offset: 0, delta: 'Hello' });
    assert.equal(r.applied, true);
    const after = view(r.timeline);
    assert.equal(after.length, before.length);
    const changed = after.map((v, i) => (v === before[i] ? null : v.seq)).filter((x) => x !== null);
    assert.deepEqual(changed, [51], 'one row changed');
    assert.equal(after[50].body, 'Hello');
    assert.equal(after[50].streaming, true);
    assert.equal(after[50].streamState, 'streaming');
    const ended = view(tl.applyEntry(r.timeline, { ...text(52, bot), kind: 'stream.end', ref: 51, body: 'Hello there', state: 'interrupted' }));
    assert.deepEqual(ended.map((v, i) => (v === after[i] ? null : v.seq)).filter((x) => x !== null), [51]);
    assert.equal(ended[50].streaming, false);
    assert.equal(ended[50].streamState, 'interrupted');
    assert.equal(ended[50].body, 'Hello there');
  });

  test('a plain message has no stream state', () => {
    const v = ui.toUiMsg(text(3), 1);
    assert.equal(v.streaming, false);
    assert.equal(v.streamState, null);
  });
});
