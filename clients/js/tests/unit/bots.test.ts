// bots.ts: each helper's method, path, body and result, and errors as ParleyErrors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createBot,
  deleteBot,
  listBots,
  ParleyError,
  rotateBotToken,
  rotateBotWebhookSecret,
  updateBot,
} from '../../src/index.js';

type Call = { url: string; method: string; body: unknown; auth: string | undefined };

function server(replies: Array<[number, unknown]>) {
  const calls: Call[] = [];
  const f = (async (url: string, init: RequestInit) => {
    const h = init.headers as Record<string, string>;
    calls.push({ url, method: String(init.method), body: init.body ? JSON.parse(String(init.body)) : undefined, auth: h.authorization });
    const [status, body] = replies.shift()!;
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  }) as unknown as typeof fetch;
  return { f, calls };
}

const owner = { id: 1, username: 'ana', displayName: 'Ana', bot: false };
const bot = { id: 5, username: 'helper', displayName: 'Helper', bot: true, owner, webhookUrl: null, createdAt: 1 };

describe('bot helpers', () => {
  it('create, list, rotate, update, delete: methods, paths, bodies, results', async () => {
    const { f, calls } = server([
      [201, { bot, token: 'tok1', webhookSecret: 'sec1' }],
      [200, { bots: [bot] }],
      [200, { token: 'tok2' }],
      [200, { bot: { ...bot, webhookUrl: 'https://h/x' } }],
      [200, { webhookSecret: 'sec2' }],
      [204, undefined],
    ]);
    const o = { baseUrl: 'http://p:1', fetch: f, token: 'person' };
    const created = await createBot({ username: 'helper', displayName: 'Helper' }, o);
    assert.equal(created.token, 'tok1');
    assert.equal(created.webhookSecret, 'sec1');
    assert.equal(created.bot.bot, true);
    assert.deepEqual((await listBots(o)).map((b) => b.username), ['helper']);
    assert.equal(await rotateBotToken('helper', o), 'tok2');
    assert.equal((await updateBot('helper', { webhookUrl: 'https://h/x' }, o)).webhookUrl, 'https://h/x');
    assert.equal(await rotateBotWebhookSecret('helper', o), 'sec2');
    await deleteBot('helper', o);
    assert.deepEqual(
      calls.map((c) => [c.method, c.url, c.body]),
      [
        ['POST', 'http://p:1/api/bots', { username: 'helper', displayName: 'Helper' }],
        ['GET', 'http://p:1/api/bots', undefined],
        ['POST', 'http://p:1/api/bots/helper/token', undefined],
        ['PATCH', 'http://p:1/api/bots/helper', { webhookUrl: 'https://h/x' }],
        ['POST', 'http://p:1/api/bots/helper/webhook-secret', undefined],
        ['DELETE', 'http://p:1/api/bots/helper', undefined],
      ],
    );
    assert.ok(calls.every((c) => c.auth === 'Bearer person'));
  });

  it('a taken username is a conflict; another person\'s bot is not_found', async () => {
    const { f } = server([
      [409, { error: { code: 'conflict', message: 'username taken' } }],
      [404, { error: { code: 'not_found', message: 'no such bot' } }],
    ]);
    await assert.rejects(createBot({ username: 'x' }, { fetch: f }), (e: ParleyError) => e instanceof ParleyError && e.code === 'conflict');
    await assert.rejects(deleteBot('x', { fetch: f }), (e: ParleyError) => e.code === 'not_found');
  });
});
