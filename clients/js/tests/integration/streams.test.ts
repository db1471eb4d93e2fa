// Streamed messages (issue 19) through the SDK against the real server: a StreamWriter writes an
// answer while two viewers fold it from msg.delta events (timeline.applyDelta, resync on a gap),
// the writer's socket dies mid-stream and the writer resumes on the next one, and a third viewer
// subscribes halfway (history + the sub reply's `streams`, then deltas). Every viewer ends with
// the writer's text byte for byte, the stream ended "done".
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WS from 'ws';
import {
  applyBatch,
  applyDelta,
  applyEntry,
  applyStreams,
  emptyTimeline,
  ParleyClient,
  StreamWriter,
  type Timeline,
  type User,
  type WebSocketLike,
} from '../../src/index.js';

const TIMEOUT_MS = Number(process.env.PARLEY_TEST_TIMEOUT_MS || 20000);

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'tests/integration/lib/server.mjs')) && fs.existsSync(path.join(dir, 'Makefile'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('project root not found');
    dir = up;
  }
}
const ROOT = findRoot();
process.env.PARLEY_BIN ??= 'build/parley';

interface Srv {
  url: string;
  wsUrl: string;
  dispose(): Promise<void>;
}
let srv: Srv;
before(async () => {
  const lib = (await import(pathToFileURL(path.join(ROOT, 'tests/integration/lib/server.mjs')).href)) as { startServer(): Promise<Srv> };
  srv = await lib.startServer();
});
after(async () => {
  await srv?.dispose();
});

let n = 0;
async function signup(prefix: string): Promise<{ user: User; token: string }> {
  const username = `${prefix}_${process.pid.toString(36)}${(n++).toString(36)}`;
  const res = await fetch(`${srv.url}/api/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'correct horse battery' }),
  });
  assert.equal(res.status, 201);
  return (await res.json()) as { user: User; token: string };
}

/** A client that keeps a timeline of one chat the way the web app does. */
class Viewer {
  client: ParleyClient;
  sockets: WS[] = [];
  t: Timeline = emptyTimeline();
  gaps = 0;
  waiters: (() => void)[] = [];
  constructor(token: string, readonly chat: string) {
    this.client = new ParleyClient({
      url: srv.wsUrl,
      token,
      requestTimeoutMs: TIMEOUT_MS,
      backoff: { baseMs: 20, maxMs: 100 },
      createWebSocket: (url) => {
        const ws = new WS(url, { perMessageDeflate: false });
        this.sockets.push(ws);
        return ws as unknown as WebSocketLike;
      },
    });
    this.client.on('msg', ({ chat, msg }) => chat === this.chat && this.#set(applyEntry(this.t, msg)));
    this.client.on('subscribed', ({ chat, result }) => {
      if (chat !== this.chat) return;
      this.#set(applyStreams(applyBatch(this.t, result.msgs, result.lastSeq), result.streams, result.lastSeq));
    });
    this.client.on('msg.delta', (d) => {
      if (d.chat !== this.chat) return;
      const r = applyDelta(this.t, d);
      if (r.gap) {
        this.gaps++;
        this.client.resync(this.chat);
      }
      this.#set(r.timeline);
    });
  }
  #set(t: Timeline): void {
    this.t = t;
    for (const w of this.waiters.splice(0)) w();
  }
  body(seq: number): string | undefined {
    return this.t.items.find((m) => m.seq === seq)?.body;
  }
  item(seq: number) {
    return this.t.items.find((m) => m.seq === seq);
  }
  async until(pred: () => boolean, what: string): Promise<void> {
    const end = Date.now() + TIMEOUT_MS;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }
}

describe('streamed messages through the SDK', () => {
  it('two viewers and one joining halfway see the writer text byte for byte, across a writer reconnect', async () => {
    const ana = await signup('sw');
    const ben = await signup('sv');
    const cai = await signup('sv');
    const dan = await signup('sl');
    const writer = new Viewer(ana.token, '');
    await writer.client.connect();
    const { chat } = await writer.client.createChat({ title: 'stream room', isPublic: true });
    const slug = chat.slug;
    const viewers = [new Viewer(ben.token, slug), new Viewer(cai.token, slug)];
    for (const v of viewers) {
      await v.client.connect();
      await v.client.joinChat(slug);
      await v.client.subscribe(slug);
    }

    const w = new StreamWriter(writer.client, slug, { clientMsgId: 'answer-1' });
    const msg = await w.start();
    assert.equal(msg.streaming, true);
    const pieces = Array.from({ length: 60 }, (_, i) => (i % 7 === 3 ? `é🙂${i} ` : `word${i} `));
    for (let i = 0; i < 30; i++) w.write(pieces[i]!);
    await w.flush();
    // The writer's socket dies mid-stream: writes go on and are sent after the reconnect.
    writer.sockets.at(-1)!.terminate();
    for (let i = 30; i < 45; i++) w.write(pieces[i]!);
    await w.flush();
    assert.ok(writer.sockets.length >= 2, 'the writer reconnected');

    // A viewer opening the chat now: history, then the sub reply's snapshot, then deltas.
    const late = new Viewer(dan.token, slug);
    await late.client.connect();
    await late.client.joinChat(slug);
    await late.client.subscribe(slug);
    const hist = await late.client.history(slug, { limit: 50 });
    late.t = applyBatch(late.t, hist.msgs);
    const soFar = pieces.slice(0, 45).join('');
    assert.equal(late.body(msg.seq), soFar, 'the text so far at once');
    assert.equal(late.item(msg.seq)!.streaming, true);

    for (let i = 45; i < 60; i++) w.write(pieces[i]!);
    const end = await w.end();
    const full = pieces.join('');
    assert.equal(end!.body, full);
    for (const v of [...viewers, late]) {
      await v.until(() => v.item(msg.seq)?.streaming === false, 'the stream end');
      assert.equal(v.body(msg.seq), full, 'byte for byte');
      assert.deepEqual(v.item(msg.seq)!.stream, { state: 'done', length: Buffer.byteLength(full) });
    }
    // Nobody saw a byte twice or missed one on the way (no gap needed a resync).
    assert.deepEqual(viewers.map((v) => v.gaps), [0, 0]);
    for (const c of [writer, ...viewers, late]) c.client.close();
  });
});
