/* test_sqlite_vfs.c - the SQLite backend's VFS (store_sqlite_vfs.c), on real files.
 *
 * The VFS gathers a WAL's writes and hands them to the kernel at the latest when a commit
 * frame's page is written. What it must keep: every commit is in the file before COMMIT returns
 * (another connection, and a copy of the files taken without closing, as after a crash, see it),
 * a transaction larger than its buffer and one rolled back after spilling into the WAL leave an
 * intact database, and it issues fewer writes than SQLite asks for, which is its point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store_sqlite_vfs.h"

struct fx {
  char dir[64];
  char path[128];
  sqlite3 *db; /* through the VFS */
};

static void exec_ok(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    fail_msg("%s: %s", sql, msg ? msg : "?");
  sqlite3_free(msg);
}

static sqlite3_int64 one_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  sqlite3_int64 v;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void assert_intact(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  const char *vfs = store__sqlite_vfs();
  if (f == NULL || vfs == NULL)
    return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/parley-vfs-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
  if (sqlite3_open_v2(f->path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) !=
      SQLITE_OK)
    return -1;
  /* As the store runs it: WAL, synchronous=NORMAL, checkpoints left to the test. */
  exec_ok(f->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "PRAGMA wal_autocheckpoint=0; CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  char cmd[160];
  sqlite3_close(f->db);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
  if (system(cmd) != 0)
    return -1;
  free(f);
  return 0;
}

/* Copies the database and its WAL, as they are on disk now, to `to` (+ "-wal"). */
static void copy_files(const char *from, const char *to) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s-wal' '%s-wal'", from, to, from, to);
  assert_int_equal(system(cmd), 0);
}

/* A commit is in the WAL file before COMMIT returns: a second connection on the default VFS sees
 * it, and so does a copy of the files taken with the writer still open (a crash). */
static void test_commit_reaches_the_file(void **state) {
  struct fx *f = *state;
  sqlite3 *other = NULL, *copy = NULL;
  char copy_path[160];

  assert_int_equal(sqlite3_open_v2(f->path, &other, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  for (int i = 1; i <= 50; i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, randomblob(900))", i);
    exec_ok(f->db, sql);
    assert_int_equal(one_int(other, "SELECT count(*) FROM t"), i);
  }
  sqlite3_close(other);

  snprintf(copy_path, sizeof copy_path, "%s/copy.db", f->dir);
  copy_files(f->path, copy_path);
  assert_int_equal(sqlite3_open_v2(copy_path, &copy, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  assert_int_equal(one_int(copy, "SELECT count(*) FROM t"), 50);
  assert_intact(copy);
  sqlite3_close(copy);
}

/* A transaction of several MB (far past the buffer, and past SQLite's page cache, so it spills
 * frames into the WAL before its commit) commits whole; one rolled back after spilling leaves
 * nothing behind; a checkpoint from another connection copies it all back. */
static void test_large_and_rolled_back_transactions(void **state) {
  struct fx *f = *state;
  sqlite3 *other = NULL;

  exec_ok(f->db, "PRAGMA cache_size=50");
  exec_ok(f->db, "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                 " WHERE x < 5000) INSERT INTO t SELECT x, randomblob(1000) FROM c; COMMIT");
  exec_ok(f->db, "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                 " WHERE x < 5000) INSERT INTO t SELECT 100000 + x, randomblob(1000) FROM c;"
                 "UPDATE t SET v = randomblob(1200) WHERE k <= 2000; ROLLBACK");
  exec_ok(f->db, "UPDATE t SET v = randomblob(10) WHERE k % 7 = 0");
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM t"), 5000);
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM t WHERE length(v) = 10"), 5000 / 7);

  assert_int_equal(sqlite3_open_v2(f->path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 5000);
  assert_int_equal(sqlite3_wal_checkpoint_v2(other, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(other);
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM t WHERE length(v) = 10"), 5000 / 7);
  assert_intact(f->db);
  /* After the WAL was started over (TRUNCATE), new commits land in it from the start. */
  exec_ok(f->db, "INSERT INTO t VALUES (-1, x'00')");
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM t"), 5001);
  assert_intact(f->db);
}

/* The point of the VFS: a commit of many pages reaches the kernel in a few writes, not two per
 * frame. */
static void test_a_commit_is_few_writes(void **state) {
  struct fx *f = *state;
  uint64_t k0, s0, k1, s1;

  exec_ok(f->db, "INSERT INTO t VALUES (0, x'00')"); /* the WAL's header is written */
  store__sqlite_vfs_counts(&k0, &s0);
  /* 20 rows of 3 KB: about 20 pages, one frame each. */
  exec_ok(f->db, "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                 " WHERE x < 20) INSERT INTO t SELECT x, randomblob(3000) FROM c; COMMIT");
  store__sqlite_vfs_counts(&k1, &s1);
  assert_true(s1 - s0 >= 40); /* SQLite asked for a header and a page per frame */
  assert_in_range(k1 - k0, 1, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_commit_reaches_the_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_large_and_rolled_back_transactions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_a_commit_is_few_writes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
