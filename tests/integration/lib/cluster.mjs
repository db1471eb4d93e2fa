// Several Parley nodes on one store and one Redis, for the cluster tests (5x-cluster-*).
//
// Redis: a throwaway server from scripts/redis.sh on its own port (PARLEY_TEST_CLUSTER_REDIS_PORT,
// default 16380), started if it is not running. Store: with PARLEY_TEST_STORE (a postgres:// URI;
// `make integration-pg` and `make test` set it) the nodes share one PostgreSQL schema made for
// the cluster (dropped at the end); else one SQLite file shared by the processes (SQLite's file
// locking serializes their transactions).
//
// useCluster(n, { nodeEnv: [{...}, ...] }) registers the node:test hooks of a describe block
// (start in before, log dump of every node on failure, dispose in after) and returns the array
// of ParleyServer nodes, filled once `before` ran.

import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import { connect, signup, uname } from './client.mjs';
import { ParleyServer, ROOT } from './server.mjs';

export const REDIS_PORT = process.env.PARLEY_TEST_CLUSTER_REDIS_PORT || '16380';

// Runs scripts/redis.sh `cmd` on the cluster tests' port; returns its output.
export function redis(cmd) {
  return execFileSync(path.join(ROOT, 'scripts/redis.sh'), [cmd], {
    env: { ...process.env, PARLEY_REDIS_PORT: REDIS_PORT },
    encoding: 'utf8',
  }).trim();
}

function psql(url, sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', ['-qAtX', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], (err, stdout, stderr) =>
      err ? reject(new Error(`psql: ${sql}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

let clusters = 0;

export function useCluster(n, { nodeEnv = [] } = {}) {
  const nodes = [];
  const pgBase = process.env.PARLEY_TEST_STORE;
  let schema = null;
  let marks = [];

  before(async () => {
    redis('start');
    // A namespace of its own: presence keys outlive a cluster, and user ids repeat across them.
    clusters += 1;
    const busUrl = `${redis('url')}/cl${process.pid}n${clusters}`;
    let storeUrl = null;
    if (pgBase) {
      schema = `cl_${process.pid}_${clusters}_${Date.now().toString(36)}`;
      await psql(pgBase, `CREATE SCHEMA ${schema}`);
      const sep = pgBase.includes('?') ? '&' : '?';
      storeUrl = `${pgBase}${sep}options=${encodeURIComponent(`-csearch_path=${schema}`)}`;
    }
    for (let i = 0; i < n; i++) {
      const env = { PARLEY_BUS: busUrl, ...(nodeEnv[i] || {}) };
      if (storeUrl) env.PARLEY_STORE = storeUrl;
      else if (i > 0) env.PARLEY_DATA = nodes[0].dataDir;
      const node = new ParleyServer({ env });
      await node.start(); // the first creates the schema before the others open it
      nodes.push(node);
    }
  });

  beforeEach(() => {
    marks = nodes.map((node) => node.mark());
  });
  afterEach((t) => {
    if (t.passed) return;
    nodes.forEach((node, i) => {
      console.error(`\n===== node ${i} log during "${t.name}" =====\n${node.tail(60, node.since(marks[i]))}`);
    });
  });

  after(async () => {
    // The first node owns the shared data directory: dispose of it last.
    for (const node of [...nodes].reverse()) await node.dispose();
    if (schema) await psql(pgBase, `DROP SCHEMA ${schema} CASCADE`);
  });

  return nodes;
}

// Signs up a user on `node` and connects a socket there: {user, token, c}.
export async function userOn(node, prefix) {
  const s = await signup(node, uname(prefix));
  const c = await connect(node, { token: s.token });
  return { ...s, c };
}
