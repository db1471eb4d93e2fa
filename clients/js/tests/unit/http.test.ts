import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { login, me, ParleyError, signup, wsUrlFor } from '../../src/index.js';

type Call = { url: string; init: RequestInit };

function fakeFetch(status: number, body: unknown, headers: Record<string, string> = {}) {
  const calls: Call[] = [];
  const f = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(body === undefined ? null : JSON.stringify(body), { status, headers });
  }) as unknown as typeof fetch;
  return { f, calls };
}

describe('http helpers', () => {
  it('signup posts JSON and returns user and token', async () => {
    const { f, calls } = fakeFetch(201, { user: { id: 1, username: 'ana', displayName: 'Ana' }, token: 't' });
    const res = await signup({ username: 'ana', password: 'pw123456' }, { baseUrl: 'http://h:1', fetch: f });
    assert.equal(res.token, 't');
    assert.equal(calls[0]!.url, 'http://h:1/api/signup');
    assert.equal(calls[0]!.init.method, 'POST');
    assert.deepEqual(JSON.parse(String(calls[0]!.init.body)), { username: 'ana', password: 'pw123456' });
    assert.equal((calls[0]!.init.headers as Record<string, string>)['content-type'], 'application/json');
  });

  it('errors become ParleyErrors; 429 carries retryAfter from Retry-After', async () => {
    const { f } = fakeFetch(429, { error: { code: 'rate_limited', message: 'too many attempts' } }, { 'retry-after': '3' });
    await assert.rejects(login({ username: 'ana', password: 'x' }, { fetch: f }), (err: unknown) => {
      assert.ok(err instanceof ParleyError);
      assert.equal(err.code, 'rate_limited');
      assert.equal(err.retryAfter, 3000);
      return true;
    });
    const bare = fakeFetch(503, undefined);
    await assert.rejects(login({ username: 'a', password: 'b' }, { fetch: bare.f }), (err: ParleyError) => err.code === 'unavailable');
  });

  it('Retry-After is turned into milliseconds; a retryAfter in the body (ms) wins; a date is ignored', async () => {
    const secs = fakeFetch(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': '120' });
    await assert.rejects(signup({ username: 'ana', password: 'pw123456' }, { fetch: secs.f }), (err: ParleyError) => err.retryAfter === 120_000);
    const body = fakeFetch(429, { error: { code: 'rate_limited', message: 'slow down', retryAfter: 1500 } }, { 'retry-after': '2' });
    await assert.rejects(login({ username: 'ana', password: 'x' }, { fetch: body.f }), (err: ParleyError) => err.retryAfter === 1500);
    const date = fakeFetch(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': 'Wed, 21 Oct 2026 07:28:00 GMT' });
    await assert.rejects(login({ username: 'ana', password: 'x' }, { fetch: date.f }), (err: ParleyError) => err.retryAfter === undefined);
  });

  it('signup over the per-IP budget (429) and a full password-hash queue (503) carry retryAfter', async () => {
    const budget = fakeFetch(429, { error: { code: 'rate_limited', message: 'too many signups' } }, { 'retry-after': '2400' });
    await assert.rejects(signup({ username: 'ana', password: 'pw123456' }, { fetch: budget.f }), (err: ParleyError) => {
      assert.equal(err.code, 'rate_limited');
      assert.equal(err.retryAfter, 2_400_000);
      return true;
    });
    for (const call of [signup, login]) {
      const busy = fakeFetch(503, { error: { code: 'unavailable', message: 'busy' } }, { 'retry-after': '1' });
      await assert.rejects(call({ username: 'ana', password: 'pw123456' }, { fetch: busy.f }), (err: ParleyError) => {
        assert.equal(err.code, 'unavailable');
        assert.equal(err.retryAfter, 1000);
        return true;
      });
    }
  });

  it('a network failure is unavailable', async () => {
    const f = (async () => {
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch;
    await assert.rejects(login({ username: 'ana', password: 'x' }, { fetch: f }), (err: ParleyError) => err.code === 'unavailable');
  });

  it('me() is null when not signed in and sends the bearer token', async () => {
    const no = fakeFetch(401, { error: { code: 'unauthorized', message: 'not signed in' } });
    assert.equal(await me({ fetch: no.f }), null);
    const yes = fakeFetch(200, { user: { id: 3, username: 'cy', displayName: 'Cy' } });
    assert.equal((await me({ fetch: yes.f, token: 'tok' }))?.id, 3);
    assert.equal((yes.calls[0]!.init.headers as Record<string, string>).authorization, 'Bearer tok');
  });

  it('wsUrlFor follows the page protocol', () => {
    assert.equal(wsUrlFor({ protocol: 'https:', host: 'chat.example.com' }), 'wss://chat.example.com/ws');
    assert.equal(wsUrlFor({ protocol: 'http:', host: 'localhost:8080' }), 'ws://localhost:8080/ws');
  });
});
