// 19 - SQLite's WAL stays bounded under sustained writes (issue 15): the checkpointer really
// checkpoints, the -wal file never passes PARLEY_WAL_MAX, and /metrics shows the WAL's size and the
// checkpoint counts. A checkpointer that silently does nothing (a connection that never read the
// database checkpoints nothing) let the WAL grow to 1.6 GB; here the bound is 1 MiB and the sends
// write several MiB, so either the file or the counters give such a checkpointer away.
//
// SQLite only: this server is told to use its SQLite file even when PARLEY_TEST_STORE names a
// PostgreSQL database (PostgreSQL's WAL is the database server's business).
//
// The second test holds a snapshot from outside (the sqlite3 shell in a transaction, as a backup
// would), so the WAL grows past the bound, and checks that once the reader lets go the file is cut
// back to three quarters of the bound (journal_size_limit follows PARLEY_WAL_MAX): not left at its peak, and
// not cut on every RESTART of the usual cycle, which cost the writer an ftruncate each time.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { connect, makeChat, signupMany } from './lib/client.mjs';
import { scrape } from './lib/metrics.mjs';
import { useServer } from './lib/server.mjs';

const WAL_MAX = 1 << 20;
const KEEP = (WAL_MAX / 4) * 3; // what a RESTART leaves of a larger file (journal_size_limit)


async function walSize(srv) {
  try {
    return (await fs.stat(path.join(srv.dataDir, 'parley.db-wal'))).size;
  } catch (err) {
    if (err.code === 'ENOENT') return 0;
    throw err;
  }
}

describe('bounded WAL', () => {
  const srv = useServer({ env: { PARLEY_WAL_MAX: String(WAL_MAX), PARLEY_STORE: '' } });
  let a, b;

  before(async () => {
    const [ana, bob] = await signupMany(srv, ['ana', 'bob']);
    [a, b] = await Promise.all([ana, bob].map((u) => connect(srv, { token: u.token })));
  });

  after(async () => {
    await Promise.all([a, b].map((s) => s.close().catch(() => {})));
  });

  test('sends that write several times PARLEY_WAL_MAX keep the -wal file under it', async () => {
    const chats = [await makeChat(a, { join: [b] }), await makeChat(b, { join: [a] })];
    const before = await scrape(srv);
    const body = 'x'.repeat(2000); // a few KiB of WAL per commit: pages of the table and indexes
    const rounds = 120;
    let largest = 0;
    let n = 0;
    for (let r = 0; r < rounds; r++) {
      // Several sends in flight: some commits carry more than one, as under real load.
      await Promise.all(
        [a, b].flatMap((c, i) =>
          chats.map((chat, j) => c.ok('msg.send', { chat, body, clientMsgId: `w${r}-${i}-${j}` })),
        ),
      );
      n += 4;
      largest = Math.max(largest, await walSize(srv));
    }
    const m = await scrape(srv);
    const dbSize = (await fs.stat(path.join(srv.dataDir, 'parley.db'))).size;
    // The messages alone are n * 2 KB; what the WAL carried for them is several times that.
    assert.ok(dbSize > n * body.length, `parley.db is ${dbSize} bytes: the frames reached it`);
    assert.ok(largest <= WAL_MAX, `the -wal file reached ${largest} bytes (bound ${WAL_MAX})`);
    assert.ok(m.get('parley_store_wal_bytes') <= WAL_MAX, 'the gauge is under the bound');
    assert.equal(m.get('parley_store_wal_bytes'), await walSize(srv), 'the gauge is the file size');
    const moved = (label) =>
      m.get(`parley_store_checkpoints_total{result="${label}"}`) -
      before.get(`parley_store_checkpoints_total{result="${label}"}`);
    assert.ok(moved('ok') > 0, 'the checkpointer checkpointed');
    assert.ok(moved('restart') > 0, 'the checkpointer restarted the WAL past half of the bound');
    assert.ok(Number.isFinite(m.get('parley_store_checkpoints_total{result="busy"}')));
    assert.ok(Number.isFinite(m.get('parley_store_checkpoints_total{result="forced"}')));
    // Every frame the commits appended is counted, across the WAL's restarts: at least the
    // bodies' bytes in 4 KiB pages, and more than the bounded file ever held at once.
    const frames = m.get('parley_store_wal_frames_total') - before.get('parley_store_wal_frames_total');
    assert.ok(frames * 4096 >= n * body.length, `${frames} frames for ${n} sends of ${body.length} bytes`);
    assert.ok(frames * 4096 > WAL_MAX, `${frames} frames: counted past the WAL's restarts`);
    // The writer waits at most once for each RESTART the checkpointer tries (between two of its
    // batches; one refused by a lock counts as busy), and the summary's sum and count agree.
    const holds =
      m.get('parley_store_checkpoint_hold_seconds_count') -
      before.get('parley_store_checkpoint_hold_seconds_count');
    const held =
      m.get('parley_store_checkpoint_hold_seconds_sum') -
      before.get('parley_store_checkpoint_hold_seconds_sum');
    assert.ok(holds >= 0 && holds <= moved('restart') + moved('busy'), `${holds} holds`);
    assert.equal(held > 0, holds > 0, `${holds} holds took ${held} s`);
  });

  test('a WAL that grew past the bound under an outside reader is cut back to three quarters of it after', async () => {
    const chat = await makeChat(a, { join: [b] });
    const body = 'y'.repeat(8000);
    let round = 0;
    const sendRound = () => {
      round++;
      return Promise.all(
        [a, b].map((c, i) => c.ok('msg.send', { chat, body, clientMsgId: `r${round}-${i}` })),
      );
    };
    // The shell answers the count inside its transaction: from then on it holds a snapshot.
    const reader = spawn('sqlite3', [path.join(srv.dataDir, 'parley.db')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    reader.stdout.setEncoding('utf8');
    const counted = new Promise((resolve) => reader.stdout.once('data', resolve));
    reader.stdin.write('BEGIN;\nSELECT count(*) FROM messages;\n');
    assert.match(await counted, /^\d+/);
    try {
      while ((await walSize(srv)) <= WAL_MAX * 0.9) await sendRound();
    } finally {
      reader.stdin.end('COMMIT;\n.quit\n');
      await once(reader, 'exit');
    }
    const peak = await walSize(srv);
    assert.ok(peak > KEEP, `the WAL grew to ${peak} bytes while the reader held it`);
    // Now RESTARTs can run again: within a few commits the file is back under KEEP.
    let size = peak;
    for (let i = 0; i < 50 && size > KEEP; i++) {
      await sendRound();
      size = await walSize(srv);
    }
    assert.ok(size <= KEEP, `the -wal file is ${size} bytes after the reader let go (peak ${peak})`);
  });
});
