/* store_sqlite.c - the SQLite backend of the store (store_sqlite_ops), on libsqlite3.
 *
 * One connection, used only by the store thread. The database runs in WAL mode so that readers
 * (a backup, an operator's sqlite3 shell) never block the writer, with synchronous=NORMAL (a
 * killed process loses nothing committed) or FULL (power loss neither). Every statement is
 * prepared once at open and kept for the life of the connection.
 *
 * All checks that must be atomic with a change (membership through acl_check(), the participant
 * cap, clientMsgId idempotency, seq allocation) are made here, inside the transaction that makes
 * the change, by the only thread that writes. The per-chat seq comes from chats.last_seq, bumped
 * in the same transaction as the message insert, so a rolled-back send never leaves a hole.
 * The membership and invitation ops are store_rules.c's, over the primitives of sq_prims.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "core/acl.h"
#include "core/invite.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store/store_sqlite_ckpt.h"
#include "store/store_sqlite_vfs.h"

#include "store/store_sqlite_int.h"

const char *const sq_sql[SQ__COUNT] = {
#define SQ__SQL(name, sql) sql,
    SQ_STATEMENTS(SQ__SQL)
#undef SQ__SQL
};

/* ---- errors ---- */

/* Maps an SQLite result code to the error table. Operational failures (disk, locks, memory) are
 * `unavailable` so that clients retry; constraint violations are the caller's doing; the rest
 * is a bug of ours. */
int sq__err(struct sq *be, int rc, const char *what) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return 0;
  case SQLITE_FULL:
  case SQLITE_IOERR:
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_READONLY:
  case SQLITE_CANTOPEN:
  case SQLITE_NOMEM:
    log_warn("store: sqlite: %s: %s (%d)", what, sqlite3_errmsg(be->db), rc);
    return PARLEY_EUNAVAILABLE;
  case SQLITE_CONSTRAINT:
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return PARLEY_ECONFLICT;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return PARLEY_ENOT_FOUND;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
      return PARLEY_EBAD_REQUEST;
    default:
      break;
    }
    /* fall through */
  default:
    log_error("store: sqlite: %s: %s (%d)", what, sqlite3_errmsg(be->db), rc);
    return PARLEY_EINTERNAL;
  }
}

/* Steps `st` once and resets it: for statements that return no row. */
int sq__run(struct sq *be, enum sq_stmt id) {
  sqlite3_stmt *st = be->st[id];
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq__err(be, rc, sq_sql[id]);
}

/* ---- the method table ---- */

static void sq_close(void *arg) {
  struct sq *be = arg;
  if (be == NULL)
    return;
  store__sqlite_ckpt_stop(be->ckpt);
  for (int i = 0; i < SQ__COUNT; i++)
    sqlite3_finalize(be->st[i]);
  for (int i = 0; i < be->n_cache; i++)
    sqlite3_finalize(be->cache[i].st);
  if (be->db && sqlite3_close(be->db) != SQLITE_OK)
    log_error("store: sqlite close: %s", sqlite3_errmsg(be->db));
  free(be);
}

static int sq__pragma(struct sq *be, const char *sql) {
  int rc = sqlite3_exec(be->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : sq__err(be, rc, sql);
}

/* Before SQLite's first use in the process: no memory statistics. With them on (Debian's build),
 * every sqlite3_malloc() and sqlite3_free() takes one process-wide mutex, shared by the writer,
 * the checkpointer and the readers; Parley never asks for the statistics. */
static pthread_once_t sq_config_once = PTHREAD_ONCE_INIT;

static void sq__config(void) {
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(void **out, const char *uri, enum store_durability durability) {
  struct sq *be = NULL;
  sqlite3_stmt *st = NULL;
  int err = 0;
  int rc;

  *out = NULL;
  be = calloc(1, sizeof *be);
  if (be == NULL)
    return PARLEY_EUNAVAILABLE;
  pthread_once(&sq_config_once, sq__config);
  /* NOMUTEX: the connection is used by the store thread alone. URI: "file:...?mode=ro" and
   * friends work as SQLite documents them. The VFS writes a commit's WAL frames in one system
   * call (store_sqlite_vfs.h). */
  rc = sqlite3_open_v2(
      uri, &be->db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
      store__sqlite_vfs());
  if (rc != SQLITE_OK) {
    log_error("store: cannot open %s: %s", uri, be->db ? sqlite3_errmsg(be->db) : "no memory");
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  sqlite3_extended_result_codes(be->db, 1);
  sqlite3_busy_timeout(be->db, SQ_BUSY_TIMEOUT_MS);

  rc = sqlite3_prepare_v2(be->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    err = sq__err(be, rc, "journal_mode");
    goto cleanup;
  }
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    err = sq__err(be, rc, "journal_mode");
    goto cleanup;
  }
  if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
    log_warn("store: %s is not in WAL mode (%s): concurrent readers will block writes", uri,
             (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  st = NULL;
  err = sq__pragma(be, durability == STORE_DURABILITY_FSYNC ? "PRAGMA synchronous=FULL"
                                                            : "PRAGMA synchronous=NORMAL");
  if (err)
    goto cleanup;
  err = sq__pragma(be, "PRAGMA foreign_keys=ON");
  if (err)
    goto cleanup;
  /* Checkpoints run on the checkpointer thread (store_sqlite_ckpt.c); the last connection to
   * close still checkpoints everything, so a clean shutdown leaves a small WAL. */
  err = sq__pragma(be, "PRAGMA wal_autocheckpoint=0");
  if (err)
    goto cleanup;
  /* SQLite's default page cache is 2 MB: once the message indexes outgrow it, every send
   * re-reads B-tree pages with pread (measured: ~4 per send at 4,000 sends/s). 8 MB (grown only
   * as pages are used) and reads through a memory map keep the hot pages a pointer away: 0.05
   * reads per send at 3,000 sends/s. Writes still go through the WAL, so durability is
   * unchanged.
   * Not more: a B-tree balance that reorders pages parks one at the lock-byte page number
   * (262,145 at 4 KB), which leaves the cache's highest key there; the commit then drops pages
   * past the end of the database by walking the cache's whole hash table (pcache1Truncate in
   * SQLite 3.40). That happens about once in 15 commits, and the walk grows with the cache: at
   * 64 MB, half full, it took 0.19 ms on average and up to 2.5 ms, and the store thread spent
   * 2-10% more CPU at 2,000 sends/s than at 8 MB (issue 15, bench/RESULTS.md). */
  err = sq__pragma(be, "PRAGMA cache_size=-8192");
  if (!err)
    err = sq__pragma(be, "PRAGMA mmap_size=268435456");
  /* Temporary tables and indexes (a subquery SQLite materializes, a sort) in memory, not in
   * an "etilqs_" file created, written and unlinked each time: perf of the chat scenario at
   * 2,000 sends/s showed the store thread spending ~3% of its samples in open/close/unlink of
   * those files (issue 15). They are small: every such query here is bounded by a LIMIT. */
  if (!err)
    err = sq__pragma(be, "PRAGMA temp_store=MEMORY");
  if (err)
    goto cleanup;

  err = store__sqlite_migrate(be->db, clock_wall_ms(), NULL);
  if (err)
    goto cleanup;

  for (int i = 0; i < SQ__COUNT; i++) {
    rc = sqlite3_prepare_v3(be->db, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &be->st[i], NULL);
    if (rc != SQLITE_OK) {
      err = sq__err(be, rc, sq_sql[i]);
      goto cleanup;
    }
  }
  /* An in-memory database has no WAL to checkpoint. */
  if (strcmp(uri, ":memory:") != 0 && strstr(uri, "mode=memory") == NULL) {
    err = store__sqlite_ckpt_start(&be->ckpt, be->db, SQ_BUSY_TIMEOUT_MS, uri);
    if (err)
      goto cleanup;
  }
  *out = be;
  be = NULL;
cleanup:
  sqlite3_finalize(st);
  sq_close(be);
  return err;
}

static int sq_begin(void *arg) {
  struct sq *be = arg;
  int err;
  store__sqlite_ckpt_writer_enter(be->ckpt); /* a RESTART of the checkpointer goes first */
  err = sq__run(be, SQ_BEGIN);
  if (err)
    store__sqlite_ckpt_writer_leave(be->ckpt);
  return err;
}

/* New messages reach msg.search's index in batches (migration 14), in a transaction of their own
 * when the store has nothing else to do (sq_idle), so that no acknowledgement waits for FTS5: as
 * part of a batch's commit it cost that batch 3-17 ms five times a second at 2,000 sends/s
 * (issue 15). A flush takes at most SQ_SEARCH_FLUSH_ROWS entries, so that the requests arriving
 * meanwhile wait for a short one; while more are left, the next part follows as soon as the
 * store is idle again. Under a load that never leaves the store idle, a commit flushes a part
 * once SQ_SEARCH_FLUSH_LATE_MS have passed, and then one with every commit until none is left,
 * so search_pending stays small. A failed flush (a full disk) leaves them pending. */
static uint64_t sq__search_wait(const struct sq *be, unsigned ms) {
  uint64_t since = clock_mono_ns() - be->search_flushed_ns, every = (uint64_t)ms * 1000000u;
  return since < every ? every - since : 0;
}

static int sq_commit(void *arg) {
  struct sq *be = arg;
  int err;
  if (!sqlite3_get_autocommit(be->db) &&
      (be->search_more || sq__search_wait(be, SQ_SEARCH_FLUSH_LATE_MS) == 0))
    sq__search_flush(be, SQ_SEARCH_FLUSH_ROWS);
  err = sq__run(be, SQ_COMMIT);
  if (err == 0)
    be->search_dirty = 1; /* the batch may have left entries pending: sq_idle looks */
  if (sqlite3_get_autocommit(be->db)) /* else store.c rolls back */
    store__sqlite_ckpt_writer_leave(be->ckpt);
  return err;
}

static int sq_rollback(void *arg) {
  struct sq *be = arg;
  int err = 0;
  /* After some I/O errors SQLite has rolled back by itself; a second ROLLBACK would fail. */
  if (!sqlite3_get_autocommit(be->db))
    err = sq__run(be, SQ_ROLLBACK);
  store__sqlite_ckpt_writer_leave(be->ckpt);
  return err;
}

/* Runs `step` (a flush part, a merge step) in a transaction of its own while the store is idle,
 * and keeps search_dirty and search_more as the step left them: sq_commit would mark the
 * transaction as maybe leaving entries pending, and must not add a flush part to it. Returns the
 * step's result, or -1 if the transaction failed (entries still pending, tried again later). */
static int sq__idle_txn(struct sq *be, int (*step)(struct sq *)) {
  int r, dirty, more;
  if (sq_begin(be) != 0)
    goto failed;
  r = step(be);
  dirty = be->search_dirty;
  more = be->search_more;
  be->search_more = 0;
  if (sq_commit(be) != 0) {
    sq_rollback(be);
    goto failed;
  }
  be->search_dirty = dirty;
  be->search_more = more;
  return r;
failed:
  be->search_dirty = 1;
  be->search_more = 0;
  return -1;
}

static int sq__flush_part(struct sq *be) {
  return sq__search_flush(be, SQ_SEARCH_FLUSH_ROWS);
}

static uint64_t sq_idle(void *arg) {
  struct sq *be = arg;
  uint64_t wait = 0;
  if (be->search_more ||
      (be->search_dirty && (wait = sq__search_wait(be, SQ_SEARCH_FLUSH_MS)) == 0)) {
    if (sq__idle_txn(be, sq__flush_part) < 0)
      return (uint64_t)SQ_SEARCH_FLUSH_MS * 1000000u; /* tried again later */
    if (be->search_more || be->search_merge)
      return 1; /* the next part, or merging, at once: after the requests waiting by then */
    return be->search_dirty ? (uint64_t)SQ_SEARCH_FLUSH_MS * 1000000u : 0;
  }
  if (be->search_merge && sq__idle_txn(be, sq__search_merge) == 1)
    return 1; /* the next step at once, after the requests waiting by then */
  return be->search_dirty ? wait : 0; /* the store thread comes back then, unless a request does */
}

static int sq_savepoint(void *arg) {
  struct sq *be = arg;
  /* Outside a transaction SAVEPOINT would open a new one and the request would commit on its
   * own, outside the batch: refuse instead. */
  if (sqlite3_get_autocommit(be->db))
    return PARLEY_EUNAVAILABLE;
  return sq__run(be, SQ_SAVEPOINT);
}

static int sq_release(void *arg, int undo) {
  struct sq *be = arg;
  int err;
  if (sqlite3_get_autocommit(be->db)) {
    log_warn("store: the transaction was rolled back under a request (%s)", sqlite3_errmsg(be->db));
    return PARLEY_EUNAVAILABLE;
  }
  if (undo) {
    err = sq__run(be, SQ_ROLLBACK_TO);
    if (err)
      return err;
  }
  return sq__run(be, SQ_RELEASE);
}

static int64_t sq_changes(void *arg) {
  struct sq *be = arg;
  if (sqlite3_get_autocommit(be->db)) {
    log_warn("store: the transaction was rolled back under a request (%s)", sqlite3_errmsg(be->db));
    return -1;
  }
  return sqlite3_total_changes64(be->db);
}

static int sq_exec(void *arg, struct store_req *req) {
  int err;
  if (store_rules_bots_exec(&sq_prims, arg, req, &err) == 0)
    return err;
  if (store_rules_live_exec(&sq_prims, arg, req, &err) == 0)
    return err; /* an op of issue 18 */
  return store_rules_exec(&sq_prims, arg, req);
}
static void sq_set_wal_max(void *arg, uint64_t bytes) {
  store__sqlite_ckpt_set_wal_max(((struct sq *)arg)->ckpt, bytes);
}

static void sq_wal_stats(void *arg, struct store_stats *out) {
  struct sq *be = arg;
  store__sqlite_ckpt_stats(be->ckpt, out);
  out->search_flushes = atomic_load(&be->search_flushes);
  out->search_flush_ns = atomic_load(&be->search_flush_ns);
  out->search_flush_max_ns = atomic_load(&be->search_flush_max_ns);
  out->search_merges = atomic_load(&be->search_merges);
  out->search_merge_ns = atomic_load(&be->search_merge_ns);
}

const struct store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .conns = 1, /* one writer */
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .changes = sq_changes,
    .exec = sq_exec,
    .idle = sq_idle,
    .set_wal_max = sq_set_wal_max,
    .wal_stats = sq_wal_stats,
};
