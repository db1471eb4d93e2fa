// The assistant against the real Parley server (build/parley, or $PARLEY_BIN; the test is the
// whole pipeline: chat.activity for a mention, msg.history for context, typing, a streamed reply)
// and the fake model endpoint. A person's socket watches: deltas arrive and fold to the model
// text; the bot's socket is cut mid-answer and the answer still ends "done", byte for byte.
// The bot is an ordinary account here (streaming needs no bot flag), so this runs on any server
// with the streaming ops.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { ParleyClient, type WebSocketLike } from '../../../clients/js/src/client.js';
import { Assistant, type AnswerReport } from '../src/bot.js';

function findRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'tests/integration/lib/server.mjs'))) return dir;
    if (dir === path.dirname(dir)) throw new Error('project root not found');
  }
}
const ROOT = findRoot();
process.env.PARLEY_BIN ??= 'build/parley';

interface Srv {
  url: string;
  wsUrl: string;
  dispose(): Promise<void>;
}
interface RawClient {
  ok(op: string, args?: Record<string, unknown>): Promise<any>;
  events: any[];
  close(): Promise<void>;
  user: { id: number; username: string };
}
let lib: any;
let srv: Srv;
let llm: http.Server;
let llmUrl = '';
let tokens: string[] = [];
let tokenDelay = 2;

before(async () => {
  lib = await import(pathToFileURL(path.join(ROOT, 'tests/integration/lib/server.mjs')).href);
  srv = await lib.startServer();
  llm = http.createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const t of tokens) {
        res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: t } }] })}\n\n`);
        await new Promise((r) => setTimeout(r, tokenDelay));
      }
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => llm.listen(0, '127.0.0.1', () => r()));
  llmUrl = `http://127.0.0.1:${(llm.address() as AddressInfo).port}/v1/chat/completions`;
});

after(async () => {
  llm?.closeAllConnections();
  await new Promise((r) => llm?.close(r));
  await srv?.dispose();
});

describe('assistant on the real server', () => {
  it('answers a mention with a streamed reply every viewer folds to the model text, across a bot reconnect', async () => {
    const client = (await import(pathToFileURL(path.join(ROOT, 'tests/integration/lib/client.mjs')).href)) as any;
    const ana = await client.signup(srv, 'ana_rs');
    const helper = await client.signup(srv, 'helper_rs', undefined, 'Helper');
    const anaWs: RawClient = await client.connect(srv, { token: ana.token });
    const helperWs: RawClient = await client.connect(srv, { token: helper.token });
    const { chat } = await anaWs.ok('chat.create', { title: 'ask' });
    await client.inviteAndAccept(anaWs, helperWs, chat.slug);
    await helperWs.close();
    await anaWs.ok('sub', { chat: chat.slug });

    const sockets: WebSocket[] = [];
    const bot = new ParleyClient({
      url: srv.wsUrl,
      token: helper.token,
      backoff: { baseMs: 20, maxMs: 100 },
      createWebSocket: (url) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        sockets.push(ws);
        return ws as unknown as WebSocketLike;
      },
    });
    let report!: (a: AnswerReport) => void;
    const answered = new Promise<AnswerReport>((r) => (report = r));
    const assistant = new Assistant(bot, { llm: { url: llmUrl, model: 'm', stallMs: 5000 }, onAnswer: (a) => report(a) });
    assistant.start();
    await bot.connect();

    tokens = Array.from({ length: 80 }, (_, i) => (i % 9 === 4 ? `ünï${i} ` : `t${i} `));
    tokenDelay = 3;
    // Cut the bot's socket once a few deltas went out.
    let cut = false;
    const watcher = setInterval(() => {
      const deltas = anaWs.events.filter((e) => e.ev === 'msg.delta').length;
      if (!cut && deltas >= 5) {
        cut = true;
        sockets.at(-1)!.terminate();
      }
    }, 5);
    await anaWs.ok('msg.send', { chat: chat.slug, body: '@helper_rs tell me a story' });
    const a = await answered;
    clearInterval(watcher);
    assert.equal(a.state, 'done', a.error);
    assert.ok(cut && sockets.length >= 2, 'the bot was cut off and reconnected');
    const full = tokens.join('');
    assert.equal(a.text, full);

    // What the person saw: the start, deltas folded by offset, the end entry.
    const enc = new TextEncoder();
    let text = new Uint8Array(0);
    for (const e of anaWs.events) {
      if (e.ev !== 'msg.delta' || e.seq !== a.seq) continue;
      const d = enc.encode(e.delta);
      assert.ok(e.offset <= text.length, 'no gap');
      if (e.offset + d.length <= text.length) continue;
      const next = new Uint8Array(e.offset + d.length);
      next.set(text.subarray(0, e.offset));
      next.set(d, e.offset);
      text = next;
    }
    assert.equal(new TextDecoder().decode(text), full, 'the deltas fold to the model text');
    const end = anaWs.events.find((e) => e.ev === 'msg' && e.msg.kind === 'stream.end' && e.msg.ref === a.seq);
    assert.ok(end, 'the stream.end entry arrived');
    assert.equal(end.msg.body, full);
    assert.equal(end.msg.state, 'done');
    const start = anaWs.events.find((e) => e.ev === 'msg' && e.msg.seq === a.seq);
    assert.equal(start.msg.replyTo?.seq, a.to, 'a reply to the question');
    const typing = anaWs.events.find((e) => e.ev === 'typing' && e.users.some((u: { id: number }) => u.id === helper.user.id));
    assert.ok(typing, 'the bot was "thinking" first');

    assistant.stop();
    bot.close();
    await anaWs.close();
  });
});
