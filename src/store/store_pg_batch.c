/* store_pg_batch.c - a batch of the PostgreSQL backend (exec_batch): sends and read markers in
 * one pipeline, deferral of busy chats, and the slug order that keeps nodes' chat locks in one
 * order (see store_pg.c).
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libpq-fe.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "core/acl.h"
#include "core/invite.h"
#include "store/migrations.h"
#include "store/store_pg_int.h"

/* ---- batches ---- */

#define PG_PIPE_MAX 64 /* requests sent in one pipeline, three statements each */
/* How long a send (or read marker) may wait for a busy chat in the lane's queue, not on the
 * chat's lock; older ones wait on the lock, first thing in their transaction (pg__claim_chats). */
#define PG_DEFER_NS (20ull * 1000000ull)

/* Requests that are one statement whose refusals (acl_check on the returned row) have written
 * nothing: they need no savepoint of their own around C code, so a run of them goes in one
 * pipeline. The rest take the request-by-request path. */
static int pg__pipeable(const struct store_req *r) {
  /* A send that replies or may mention someone takes more statements (store_rules_msg.c). */
  if (r->op == STORE_MSG_APPEND)
    return r->in.reply_to <= 0 && (r->in.body == NULL || strchr(r->in.body, '@') == NULL);
  return r->op == STORE_READ_SET;
}

static int pg__pipe_params(const struct store_req *r, struct pgp *p, enum pg_stmt *id) {
  *id = r->op == STORE_MSG_APPEND ? PG_MSG_APPEND : PG_READ_SET;
  return r->op == STORE_MSG_APPEND ? pg__msg_append_params(r, p) : pg__read_set_params(r, p);
}

static int pg__pipe_take(struct store_req *r, const PGresult *res) {
  return r->op == STORE_MSG_APPEND ? pg__msg_append_take(r, res) : pg__read_set_take(r, res);
}

/* Runs the pipeable requests that follow one another from `first` (at most PG_PIPE_MAX) in one
 * round trip: SAVEPOINT, the statement and RELEASE for each, behind any pending control. When
 * request j fails, the server skips everything after it: j's savepoint is rolled back at the
 * head of the next pipeline, which resends the requests after j (or, after a deadlock, fails
 * them as pg_exec() would). Sets each status; *txerr is set when the transaction is in doubt.
 * Returns the first request not handled. */
static struct store_req *pg__run_pipelined(struct pg *be, struct store_req *first, int *txerr) {
  struct store_req *reqs[PG_PIPE_MAX];
  struct pgp params[PG_PIPE_MAX];
  enum pg_stmt ids[PG_PIPE_MAX];
  struct pg_call calls[3 * PG_PIPE_MAX];
  PGresult *res[3 * PG_PIPE_MAX];
  struct store_req *r = first;
  int n = 0, start = 0;

  for (; r != NULL && n < PG_PIPE_MAX && pg__pipeable(r); r = r->next) {
    int st;
    if (r->status == STORE_DEFER)
      continue; /* its chat is busy elsewhere (pg__claim_chats) */
    st = pg__pipe_params(r, &params[n], &ids[n]);
    if (st) {
      r->status = st; /* refused before the database: nothing to send */
      continue;
    }
    reqs[n++] = r;
  }
  memset(calls, 0, sizeof calls);
  while (start < n) {
    int m = 0, failed = 0, done, err;
    for (int i = start; i < n; i++) {
      calls[m].sql = "SAVEPOINT req";
      calls[m + 1].sql = NULL;
      calls[m + 1].id = ids[i];
      calls[m + 1].p = &params[i];
      calls[m + 2].sql = "RELEASE SAVEPOINT req";
      m += 3;
    }
    err = pg__exchange_at(be, calls, m, res, &failed);
    if (err && failed < 0) {
      *txerr = err;
      return r;
    }
    done = err ? failed / 3 : n - start;
    for (int i = 0; i < done; i++) {
      struct store_req *q = reqs[start + i];
      q->status = pg__pipe_take(q, res[3 * i + 1]);
      /* Its savepoint is released: only "nothing was written" answers may fail it now. */
      if (q->status == PARLEY_EUNAVAILABLE)
        *txerr = PARLEY_EUNAVAILABLE;
    }
    for (int i = 0; i < m; i++)
      PQclear(res[i]);
    if (err == 0 || *txerr)
      break;
    if (failed % 3 != 1 || be->broken) {
      *txerr = PARLEY_EUNAVAILABLE; /* SAVEPOINT or RELEASE failed, or the connection went */
      break;
    }
    reqs[start + done]->status = err;
    be->pend = PG_PEND_UNDO;
    start += done + 1;
    if (be->doomed) { /* see pg__err(): the rest fail at once, for the clients to retry */
      for (int i = start; i < n; i++)
        reqs[i]->status = PARLEY_EUNAVAILABLE;
      break;
    }
  }
  return r;
}

/* Sort order of a batch: requests without a slug first, then by slug; stable (qsort is not, so
 * the submission index breaks ties). */
struct pg__ordered {
  struct store_req *r;
  size_t idx;
};

static int pg__order_cmp(const void *a, const void *b) {
  const struct pg__ordered *x = a, *y = b;
  int c = strcmp(x->r->in.slug, y->r->in.slug);
  if (c)
    return c;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Relinks `batch` in lock order and returns the new head; `saved` (caller's array of n) keeps the
 * submission order so pg__restore_order() can put the links back. Returns NULL if the batch has
 * one request or memory ran out (the batch then runs as submitted). */
static struct store_req *pg__lock_order(struct store_req *batch, struct pg__ordered **saved,
                                        size_t *n_out) {
  size_t n = 0, i = 0;
  struct pg__ordered *v;
  for (struct store_req *r = batch; r; r = r->next)
    n++;
  if (n < 2 || (v = malloc(2 * n * sizeof *v)) == NULL)
    return NULL;
  for (struct store_req *r = batch; r; r = r->next, i++)
    v[i] = v[n + i] = (struct pg__ordered){r, i};
  qsort(v, n, sizeof *v, pg__order_cmp);
  for (i = 0; i < n; i++)
    v[i].r->next = i + 1 < n ? v[i + 1].r : NULL;
  *saved = v;
  *n_out = n;
  return v[0].r;
}

static void pg__restore_order(struct pg__ordered *saved, size_t n) {
  const struct pg__ordered *orig = saved + n;
  for (size_t i = 0; i < n; i++)
    orig[i].r->next = i + 1 < n ? orig[i + 1].r : NULL;
  free(saved);
}

/* 1 if `slug` is among the first n of `v`. */
static int pg__slug_in(const char *const *v, size_t n, const char *slug) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], slug) == 0)
      return 1;
  return 0;
}

/* Runs CHAT_CLAIM or CHAT_CLAIM_WAIT (`id`) on the n slugs of `v`; the slugs locked go to *got
 * (n_got of them; pointers into *res, which the caller PQclear()s; *got the caller frees). */
static int pg__claim(struct pg *be, enum pg_stmt id, const char *const *v, size_t n, PGresult **res,
                     const char ***got, size_t *n_got) {
  struct buf arr;
  struct pgp p = {0};
  size_t len = 3;
  int bad = 0, err;

  *res = NULL;
  *got = NULL;
  *n_got = 0;
  for (size_t i = 0; i < n; i++)
    len += 2 * strlen(v[i]) + 3;
  /* A text[] literal of quoted elements; '"' and '\\' escaped (slugs never hold them, but the
   * request came from a client). */
  buf_init(&arr, len);
  bad |= buf_append(&arr, "{", 1);
  for (size_t i = 0; i < n; i++) {
    bad |= buf_append(&arr, i ? ",\"" : "\"", i ? 2 : 1);
    for (const char *c = v[i]; *c; c++) {
      if (*c == '"' || *c == '\\')
        bad |= buf_append(&arr, "\\", 1);
      bad |= buf_append(&arr, c, 1);
    }
    bad |= buf_append(&arr, "\"}", i + 1 == n ? 2 : 1);
  }
  if (bad) {
    buf_dispose(&arr);
    return PARLEY_EINTERNAL;
  }
  pgp_text(&p, arr.data);
  err = pg__q(be, id, &p, res);
  buf_dispose(&arr);
  if (err) {
    be->broken = 1; /* failed outside any savepoint: the transaction is aborted */
    return err;
  }
  *n_got = (size_t)PQntuples(*res);
  if (*n_got && (*got = malloc(*n_got * sizeof **got)) == NULL)
    return PARLEY_EINTERNAL;
  for (size_t i = 0; i < *n_got; i++)
    (*got)[i] = PQgetvalue(*res, (int)i, 0);
  return 0;
}

/* Takes the locks of the chats of the batch's sends and read markers before anything else, so
 * that a batch never waits for one chat's lock while it holds others: that made several nodes'
 * batches queue behind each other's commits (a lock convoy, measured at p99 0.3-2.6 s with three
 * nodes at 2,000 sends/s). First, in slug order and waiting, the chats of requests older than
 * PG_DEFER_NS (nobody is starved); then, without waiting, the others. Every request of the batch
 * on a chat another transaction holds is deferred (STORE_DEFER): it goes back to the lane's
 * queue and comes again with the next batch. `batch` is in lock order. Returns 0, or the error
 * that put the transaction in doubt. */
static int pg__claim_chats(struct pg *be, struct store_req *batch) {
  const char **want[2] = {NULL, NULL}, **got = NULL;
  size_t n_want[2] = {0, 0}, cap[2] = {0, 0}, n_got = 0;
  PGresult *res = NULL;
  uint64_t now = clock_mono_ns();
  const char *prev = "";
  int err = 0;

  for (struct store_req *r = batch; r != NULL; r = r->next) {
    /* 1: wait for it. A chat's first request in the batch is its oldest and decides. */
    int k = now - r->t_submit_ns >= PG_DEFER_NS;
    if (!pg__pipeable(r) || !PG_TERMINATED(r->in.slug) || r->in.slug[0] == '\0' ||
        strcmp(prev, r->in.slug) == 0)
      continue; /* in lock order, so a chat's requests are adjacent */
    prev = r->in.slug;
    if (n_want[k] == cap[k]) {
      const char **nw = realloc(want[k], (cap[k] = cap[k] ? 2 * cap[k] : 16) * sizeof **want);
      if (nw == NULL)
        goto out; /* nothing claimed, nothing deferred: the batch waits for its locks */
      want[k] = nw;
    }
    want[k][n_want[k]++] = r->in.slug;
  }
  if (n_want[1]) {
    err = pg__claim(be, PG_CHAT_CLAIM_WAIT, want[1], n_want[1], &res, &got, &n_got);
    PQclear(res);
    free(got);
    res = NULL;
    got = NULL;
    if (err)
      goto out;
  }
  if (n_want[0] == 0)
    goto out;
  err = pg__claim(be, PG_CHAT_CLAIM, want[0], n_want[0], &res, &got, &n_got);
  if (err)
    goto out;
  /* Held elsewhere, or no such chat (refused as ever once it has waited long enough). */
  for (struct store_req *r = batch; r != NULL; r = r->next)
    if (PG_TERMINATED(r->in.slug) && pg__slug_in(want[0], n_want[0], r->in.slug) &&
        !pg__slug_in(got, n_got, r->in.slug))
      r->status = STORE_DEFER;
out:
  if (!be->broken)
    err = 0; /* out of memory, not the database: the batch runs as it is, waiting for locks */
  free(got);
  PQclear(res);
  free(want[0]);
  free(want[1]);
  return err;
}

int pg_exec_batch(void *arg, struct store_req *batch) {
  struct pg *be = arg;
  struct pg__ordered *saved = NULL;
  size_t n = 0;
  struct store_req *sorted = pg__lock_order(batch, &saved, &n);
  struct store_req *r = sorted ? sorted : batch;
  int err = pg__claim_chats(be, r);
  while (r != NULL && err == 0) {
    if (r->status == STORE_DEFER) {
      r = r->next;
      continue;
    }
    if (pg__pipeable(r) && !be->doomed) {
      r = pg__run_pipelined(be, r, &err);
      continue;
    }
    err = pg_savepoint(be);
    if (err)
      break;
    r->status = pg_exec(be, r);
    err = pg_release(be, r->status != 0);
    r = r->next;
  }
  if (sorted)
    pg__restore_order(saved, n);
  return err;
}
