/* store_fixture.h - the fixture shared by the store's test files: a store on a temp SQLite file,
 * driven through its real asynchronous API with a uv loop of the test's own. */
#ifndef PARLEY_TESTS_STORE_FIXTURE_H
#define PARLEY_TESTS_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "store/store.h"

struct fx {
  char dir[64];
  char path[128];
  uv_loop_t loop;
  struct store *s;
  int faulty; /* test_store.c: opened through its fault-injecting backend */
};

/* Runs the loop until *flag is set, failing the test after 10 s instead of hanging. */
static inline void pump(struct fx *f, const int *flag) {
  uint64_t deadline = uv_hrtime() + UINT64_C(10000000000);
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

/* A new fixture with its temp folder and loop, the store not opened. NULL on failure. */
static inline struct fx *fx_new(const char *prefix) {
  struct fx *f = calloc(1, sizeof *f);
  if (f == NULL)
    return NULL;
  snprintf(f->dir, sizeof f->dir, "/tmp/%s-XXXXXX", prefix);
  if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0) {
    free(f);
    return NULL;
  }
  snprintf(f->path, sizeof f->path, "%s/parley.db", f->dir);
  return f;
}

/* Closes the store and the loop and removes the database files and folder. */
static inline int fx_free(struct fx *f) {
  static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
  char p[160];
  store_close_wait(f);
  if (uv_loop_close(&f->loop) != 0)
    return -1;
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
    unlink(p);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

#endif
