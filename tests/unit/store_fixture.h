/* store_fixture.h - the fixture shared by the store's test files: a store driven through its real
 * asynchronous API with a uv loop of the test's own, on the backend the environment names.
 *
 * Without PARLEY_TEST_PG every test gets a temp SQLite file. With PARLEY_TEST_PG=postgres://...
 * (`make unit` sets it from scripts/pg.sh for a second run of the store binaries) every test gets
 * a fresh PostgreSQL schema, named in the URI's search_path, and dropped at the end. The same
 * tests then run against both backends; fx_sql_int() and fx_sql_exec() look at the database
 * behind the store on a connection of their own, whichever it is. */
#ifndef PARLEY_TESTS_STORE_FIXTURE_H
#define PARLEY_TESTS_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <uv.h>

#include "store/store.h"

struct fx {
  char dir[64];
  char path[768];  /* what store_open() gets: the SQLite file, or the PostgreSQL URI */
  uv_loop_t loop;
  struct store *s;
  int faulty;      /* test_store.c: opened through its fault-injecting backend */
  int pg;          /* PARLEY_TEST_PG is set: the store is PostgreSQL */
  char schema[64]; /* the test's PostgreSQL schema */
};

/* Runs the loop until *flag is set, failing the test after 30 s instead of hanging. */
static inline void pump(struct fx *f, const int *flag) {
  uint64_t deadline = uv_hrtime() + UINT64_C(30000000000);
  while (!*flag) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (*flag)
      break;
    if (uv_hrtime() > deadline)
      fail_msg("timed out waiting for a store callback");
    uv_sleep(1);
  }
}

static inline void on_flag(struct store_req *req) { *(int *)req->data = 1; }

/* Submits req, checks the callback is not called synchronously, waits for it. */
static inline int run(struct fx *f, struct store_req *req) {
  int done = 0;
  assert_int_equal(store_submit(f->s, req, on_flag, &done), 0);
  assert_int_equal(done, 0);
  pump(f, &done);
  return req->status;
}

static inline void on_closed(void *arg) { *(int *)arg = 1; }

static inline void store_close_wait(struct fx *f) {
  int done = 0;
  if (f->s == NULL)
    return;
  store_close(f->s, on_closed, &done);
  pump(f, &done);
  f->s = NULL;
}

/* The method table the fixture's store uses (test_store.c wraps it with fault injection). */
static inline const struct store_backend_ops *fx_ops(const struct fx *f) {
  return f->pg ? &store_pg_ops : &store_sqlite_ops;
}

static inline void fx__quiet(void *arg, const char *message) {
  (void)arg;
  (void)message; /* NOTICEs of DROP ... CASCADE and IF [NOT] EXISTS are expected */
}

/* Runs `sql` on a PostgreSQL connection of its own to `uri`. Returns 0, 1 for a constraint
 * violation (SQLSTATE class 23), -1 for any other failure (printed). */
static inline int fx__pg_exec(const char *uri, const char *sql, long long *first) {
  PGconn *c = PQconnectdb(uri);
  PGresult *r = NULL;
  int rc = -1;
  if (PQstatus(c) != CONNECTION_OK) {
    print_error("fixture: connect: %s", PQerrorMessage(c));
    goto done;
  }
  PQsetNoticeProcessor(c, fx__quiet, NULL);
  r = PQexec(c, sql);
  if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) {
    if (first && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
      *first = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    rc = 0;
  } else {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    rc = state && strncmp(state, "23", 2) == 0 ? 1 : -1;
    if (rc < 0)
      print_error("fixture: %s: %s", sql, PQresultErrorMessage(r));
  }
done:
  PQclear(r);
  PQfinish(c);
  return rc;
}

/* Runs `sql` (one or more statements) on the fixture's database, on a second connection.
 * Returns 0, 1 for a constraint violation, -1 for any other failure. */
static inline int fx_sql_exec(struct fx *f, const char *sql) {
  sqlite3 *db = NULL;
  int rc;
  if (f->pg)
    return fx__pg_exec(f->path, sql, NULL);
  if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
    fail_msg("fixture: cannot open %s", f->path);
  sqlite3_busy_timeout(db, 5000);
  rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_CONSTRAINT)
    print_error("fixture: %s: %s", sql, sqlite3_errmsg(db));
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : (rc & 0xff) == SQLITE_CONSTRAINT ? 1 : -1;
}

/* The first column of the first row of `sql`, committed state, read on a second connection. */
static inline int64_t fx_sql_int(struct fx *f, const char *sql) {
  long long v = 0;
  if (f->pg) {
    if (fx__pg_exec(f->path, sql, &v) != 0)
      fail_msg("fixture: %s failed", sql);
    return v;
  }
  {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
      fail_msg("fixture: cannot open %s", f->path);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
      fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  return v;
}

/* How many of the indexes named in `names` (a quoted, comma-separated SQL list) exist. */
static inline int64_t fx_index_count(struct fx *f, const char *names) {
  char sql[512];
  if (f->pg)
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema()"
             " AND indexname IN (%s)",
             names);
  else
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN (%s)", names);
  return fx_sql_int(f, sql);
}

/* A new fixture with its temp folder (and PostgreSQL schema) and loop, the store not opened.
 * NULL on failure. */
static inline struct fx *fx_new(const char *prefix) {
  static unsigned serial;
  const char *pg = getenv("PARLEY_TEST_PG");
  struct fx *f = calloc(1, sizeof *f);
  if (f == NULL)
    return NULL;
  snprintf(f->dir, sizeof f->dir, "/tmp/%s-XXXXXX", prefix);
  if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0) {
    free(f);
    return NULL;
  }
  snprintf(f->path, sizeof f->path, "%s/parley.db", f->dir);
  if (pg && *pg) {
    char sql[192];
    f->pg = 1;
    snprintf(f->schema, sizeof f->schema, "ut_%d_%u", (int)getpid(), ++serial);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", f->schema,
             f->schema);
    if (fx__pg_exec(pg, sql, NULL) != 0) {
      uv_loop_close(&f->loop);
      rmdir(f->dir);
      free(f);
      return NULL;
    }
    snprintf(f->path, sizeof f->path, "%s%soptions=-csearch_path%%3D%s", pg,
             strchr(pg, '?') ? "&" : "?", f->schema);
  }
  return f;
}

/* Closes the store and the loop and removes the database files and folder (or schema). */
static inline int fx_free(struct fx *f) {
  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
  char p[sizeof f->path + 16];
  store_close_wait(f);
  if (uv_loop_close(&f->loop) != 0)
    return -1;
  if (f->pg) {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
    fx__pg_exec(getenv("PARLEY_TEST_PG"), sql, NULL);
  } else {
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
      snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
      unlink(p);
    }
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

#endif
