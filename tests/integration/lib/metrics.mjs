// /metrics for the integration tests: the Prometheus text parsed into a Map.
import assert from 'node:assert/strict';

import { http } from './client.mjs';

// Prometheus text -> Map of "name{labels}" -> number. Every sample line must parse.
export async function scrape(srv) {
  const res = await http(srv, 'GET', '/metrics');
  assert.equal(res.status, 200);
  const out = new Map();
  for (const line of res.text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a malformed sample line: ${line}`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

// A summary's quantiles, _sum and _count.
export function summary(metrics, name) {
  const q = (x) => metrics.get(`${name}{quantile="${x}"}`);
  return {
    p50: q('0.5'),
    p90: q('0.9'),
    p99: q('0.99'),
    p999: q('0.999'),
    sum: metrics.get(`${name}_sum`),
    count: metrics.get(`${name}_count`),
  };
}

// Resolves with the scraped metrics once pred(metrics) holds, scraping again after each answer
// (a counter the test cannot observe any other way, e.g. a close decided while the socket it
// concerns is not being read). Rejects after `timeout` ms.
export async function waitMetrics(srv, pred, { timeout = 30_000, what = 'metrics condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const m = await scrape(srv);
    if (pred(m)) return m;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10)); // the next scrape, not a guess at a time
  }
}
