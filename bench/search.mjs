#!/usr/bin/env node
// bench/search.mjs - msg.search latency at a million messages, on SQLite and on PostgreSQL.
//
//   node bench/search.mjs --backend sqlite            # or --backend pg (scripts/pg.sh's server)
//   node bench/search.mjs --backend pg --messages 1000000 --runs 40
//
// Bulk-loads the database directly (SQL, one transaction: going through msg.send would take
// hours and measure sends): 1,000 users, 1,000 private chats of 10 participants, and
// --messages messages spread evenly over them, each of 8 words drawn from a 1,000-word
// vocabulary with a skewed (Zipf-like) frequency, so the first words are in a large share of the
// messages and later ones are rare; one message in 100,000 also holds "zanzibar". The indexes of
// migration 8 are filled by its triggers (SQLite) and by PostgreSQL as the rows go in. Two
// users search: "narrow" is in 20 chats (2% of the messages), "wide" in all 1,000. Then the real
// server (build/parley, PARLEY_RATE_LIMITS=0) runs on that database and each query shape is
// asked --runs times in a row over one WebSocket; the latency is request to reply, at the
// client. Prints a Markdown table (p50, p99, max in ms, results, matches in the whole table).
//
// The database is kept in build/bench-search/ (SQLite) or the schema bench_search (PostgreSQL),
// and reused by later runs with the same --messages (--fresh rebuilds it).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { connect, login, signup } from '../tests/integration/lib/client.mjs';
import { ParleyServer } from '../tests/integration/lib/server.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []),
);
const BACKEND = args.backend || 'sqlite';
const MESSAGES = Number(args.messages || 1_000_000);
const RUNS = Number(args.runs || 40);
const CHATS = 1000;
const USERS = 1000;
const FIRST_LOAD_USER = 101; // ids of the loaded users: 101..1100 (signed-up users come first)

process.env.PARLEY_BIN ??= path.join(ROOT, 'build/parley');

// The vocabulary: 1,000 pronounceable words, three syllables each, all distinct.
const SYL = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'be', 'da', 'fi', 'go', 'hu', 'ja', 'ke', 'lu'];
const VOCAB = Array.from({ length: 1000 }, (_, i) => SYL[i % 16] + SYL[(i >> 4) % 16] + SYL[(i >> 8) % 16]);

// Word k of message i: index (a % 1000) * (b % 1000) / 1000, a and b two cheap hashes of (i, k):
// low indexes are far more frequent than high ones.
const wordIdx = (k) =>
  `(((i * 7919 + ${k * 104729}) % 1000003) % 1000) * (((i * 104723 + ${k * 7907 + 17}) % 999983) % 1000) / 1000`;

function sqliteLoad(db) {
  const vocab = VOCAB.map((w, i) => `(${i}, '${w}')`).join(',');
  const body = Array.from({ length: 8 }, (_, k) => `(SELECT w FROM bench_vocab WHERE id = ${wordIdx(k)})`).join(" || ' ' || ");
  const sql = `
PRAGMA journal_mode = WAL;
BEGIN;
CREATE TEMP TABLE bench_vocab (id INTEGER PRIMARY KEY, w TEXT NOT NULL);
INSERT INTO bench_vocab VALUES ${vocab};
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${USERS - 1})
INSERT INTO users(id, username, display_name, pwhash, created_at)
  SELECT ${FIRST_LOAD_USER} + i, 'load' || i, 'Load ' || i, 'x', 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${CHATS})
INSERT INTO chats(id, slug, title, is_public, max_participants, owner_id, created_at, last_activity, last_seq)
  SELECT i, 'bench-' || i, 'Bench ' || i, 0, 0, ${FIRST_LOAD_USER} + ((i - 1) * 10) % ${USERS}, 0, 0,
    (${MESSAGES} - i) / ${CHATS} + 1 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${CHATS * 10 - 1})
INSERT INTO participants(chat_id, user_id, role, joined_at)
  SELECT i / 10 + 1, ${FIRST_LOAD_USER} + ((i / 10) * 10 + i % 10) % ${USERS},
    CASE WHEN i % 10 = 0 THEN 'owner' ELSE 'member' END, 0 FROM n;
INSERT INTO participants(chat_id, user_id, role, joined_at) SELECT id, 1, 'member', 0 FROM chats WHERE id <= 20;
INSERT INTO participants(chat_id, user_id, role, joined_at) SELECT id, 2, 'member', 0 FROM chats;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${MESSAGES - 1})
INSERT INTO messages(chat_id, seq, author_id, body, created_at)
  SELECT i % ${CHATS} + 1, i / ${CHATS} + 1,
    ${FIRST_LOAD_USER} + ((i % ${CHATS}) * 10 + (i / ${CHATS}) % 10) % ${USERS},
    ${body} || CASE WHEN i % 100000 = 7 THEN ' zanzibar' ELSE '' END,
    1700000000000 + i FROM n;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
`;
  execFileSync('sqlite3', [db], { input: sql, stdio: ['pipe', 'inherit', 'inherit'], maxBuffer: 1 << 26 });
}

function pgLoad(url) {
  const vocab = `ARRAY[${VOCAB.map((w) => `'${w}'`).join(',')}]`;
  const body = Array.from({ length: 8 }, (_, k) => `v[(${wordIdx(k)})::int + 1]`).join(" || ' ' || ");
  const sql = `
BEGIN;
INSERT INTO users(id, username, display_name, pwhash, created_at)
  SELECT ${FIRST_LOAD_USER} + i, 'load' || i, 'Load ' || i, 'x', 0 FROM generate_series(0, ${USERS - 1}) i;
INSERT INTO chats(id, slug, title, is_public, max_participants, owner_id, created_at, last_activity, last_seq)
  SELECT i, 'bench-' || i, 'Bench ' || i, 0, 0, ${FIRST_LOAD_USER} + ((i - 1) * 10) % ${USERS}, 0, 0,
    (${MESSAGES} - i) / ${CHATS} + 1 FROM generate_series(1, ${CHATS}) i;
INSERT INTO participants(chat_id, user_id, role, joined_at)
  SELECT i / 10 + 1, ${FIRST_LOAD_USER} + ((i / 10) * 10 + i % 10) % ${USERS},
    CASE WHEN i % 10 = 0 THEN 'owner' ELSE 'member' END, 0 FROM generate_series(0, ${CHATS * 10 - 1}) i;
INSERT INTO participants(chat_id, user_id, role, joined_at) SELECT id, 1, 'member', 0 FROM chats WHERE id <= 20;
INSERT INTO participants(chat_id, user_id, role, joined_at) SELECT id, 2, 'member', 0 FROM chats;
INSERT INTO messages(chat_id, seq, author_id, body, created_at)
  SELECT i % ${CHATS} + 1, i / ${CHATS} + 1,
    ${FIRST_LOAD_USER} + ((i % ${CHATS}) * 10 + (i / ${CHATS}) % 10) % ${USERS},
    ${body} || CASE WHEN i % 100000 = 7 THEN ' zanzibar' ELSE '' END,
    1700000000000 + i FROM generate_series(0::bigint, ${MESSAGES - 1}) i, (SELECT ${vocab} AS v) voc;
COMMIT;
VACUUM ANALYZE;
`;
  execFileSync('psql', ['-qX', '-v', 'ON_ERROR_STOP=1', url], { input: sql, stdio: ['pipe', 'inherit', 'inherit'] });
}

function pgUrl() {
  return execFileSync(path.join(ROOT, 'scripts/pg.sh'), ['url'], { encoding: 'utf8' }).trim();
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  const dir = path.join(ROOT, 'build/bench-search', `${BACKEND}-${MESSAGES}`);
  const env = { PARLEY_RATE_LIMITS: '0' };
  let storeUrl = null;
  if (args.fresh) fs.rmSync(dir, { recursive: true, force: true });
  const fresh = !fs.existsSync(path.join(dir, 'loaded'));
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  if (BACKEND === 'pg') {
    execFileSync(path.join(ROOT, 'scripts/pg.sh'), ['start'], { stdio: 'inherit' });
    const schema = `bench_search_${MESSAGES}`;
    storeUrl = `${pgUrl()}?options=${encodeURIComponent(`-csearch_path=${schema}`)}`;
    if (fresh) execFileSync('psql', ['-qX', pgUrl(), '-c', `DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`]);
    env.PARLEY_STORE = storeUrl;
  } else if (fresh) {
    fs.rmSync(path.join(dir, 'data'), { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, 'data'));
  }
  env.PARLEY_DATA = path.join(dir, 'data');
  const srv = new ParleyServer({ env });
  await srv.start();
  if (fresh) {
    // The two searching users sign up through the server (ids 1 and 2), the rest is loaded.
    await signup(srv, 'narrow');
    await signup(srv, 'wide');
    await srv.stop();
    const t0 = Date.now();
    if (BACKEND === 'pg') pgLoad(storeUrl);
    else sqliteLoad(path.join(env.PARLEY_DATA, 'parley.db'));
    const loadS = (Date.now() - t0) / 1000;
    fs.writeFileSync(path.join(dir, 'loaded'), `${loadS}\n`);
    console.error(`loaded ${MESSAGES} messages in ${loadS.toFixed(1)} s`);
    await srv.start();
  }
  const loadS = Number(fs.readFileSync(path.join(dir, 'loaded'), 'utf8'));
  const users = {};
  for (const name of ['narrow', 'wide']) users[name] = await connect(srv, { token: (await login(srv, name)).token });

  const common = VOCAB[0];
  const shapes = [
    ['rare word (10 in the table)', 'zanzibar'],
    ['mid word', VOCAB[300]],
    ['frequent word', VOCAB[5]],
    ['most frequent word', common],
    ['two words', `${VOCAB[1]} ${VOCAB[40]}`],
    ['phrase', `"${VOCAB[0]} ${VOCAB[1]}"`],
    ['prefix', `${VOCAB[10].slice(0, 4)}*`],
    ['exclusion', `${VOCAB[2]} -${VOCAB[0]}`],
    ['most frequent word, one chat', common, { chat: 'bench-7' }],
  ];
  const rows = [];
  for (const who of ['narrow', 'wide']) {
    const c = users[who];
    for (const [label, q, extra = {}] of shapes) {
      const times = [];
      let results = 0;
      let errors = 0;
      let lastErr = '';
      for (let r = 0; r < RUNS + 3; r++) {
        const t = process.hrtime.bigint();
        const reply = await c.request('msg.search', { q, limit: 20, ...extra });
        const ms = Number(process.hrtime.bigint() - t) / 1e6;
        if (r < 3) continue; // warm-up
        times.push(ms);
        if (reply.ok) results = reply.results.length;
        else {
          errors++;
          lastErr = reply.error.code;
        }
      }
      times.sort((a, b) => a - b);
      rows.push({ who, label, q, p50: percentile(times, 50), p99: percentile(times, 99), max: times.at(-1), results, errors, lastErr });
    }
  }
  await srv.stop();

  // How many messages the single words match in the whole table (every chat), for the record.
  const count = (w) =>
    BACKEND === 'pg'
      ? execFileSync('psql', ['-qAtX', storeUrl, '-c',
          `SELECT count(*) FROM messages WHERE to_tsvector('simple'::regconfig, translate(body, E'\\x02\\x03', '')) @@ to_tsquery('simple', '${w}')`], { encoding: 'utf8' }).trim()
      : execFileSync('sqlite3', [path.join(env.PARLEY_DATA, 'parley.db'),
          `SELECT count(*) FROM messages_search WHERE messages_search MATCH '"${w}"'`], { encoding: 'utf8' }).trim();
  const counts = ['zanzibar', VOCAB[300], VOCAB[5], VOCAB[0]].map((w) => `${w}: ${count(w)}`).join(', ');
  const sizes =
    BACKEND === 'pg'
      ? execFileSync('psql', ['-qAtX', storeUrl, '-c',
          "SELECT pg_size_pretty(pg_relation_size('messages')) || ' table, ' || pg_size_pretty(pg_relation_size('messages_search')) || ' GIN index'"], { encoding: 'utf8' }).trim()
      : `${(fs.statSync(path.join(env.PARLEY_DATA, 'parley.db')).size / 1048576).toFixed(0)} MiB database file`;
  console.log(`\n${BACKEND}: ${MESSAGES} messages in ${CHATS} chats (loaded in ${loadS.toFixed(0)} s; ${sizes}), ${RUNS} runs per shape, limit 20\n`);
  console.log(`Messages holding each word (all chats): ${counts}.\n`);
  console.log('| user | query | q | p50 ms | p99 ms | max ms | results | errors |');
  console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.who} | ${r.label} | \`${r.q}\` | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} | ${r.results} | ${r.errors ? `${r.errors} ${r.lastErr}` : 0} |`,
    );
  }
  await Promise.all(Object.values(users).map((c) => c.close()));
  await srv.dispose().catch(() => {});
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
