/* test_store_lanes.c - store.c's lanes and order keys, on a fake backend that runs anywhere.
 *
 * The fake backend allows four connections (lanes) and keeps nothing: exec() logs which
 * connection ran which request, in which order, and a request whose body is "GATE" waits in
 * exec() until the test opens the gate. With it the tests pin down what store.c promises when a
 * backend has several connections (store.h): requests naming one chat run on one connection in
 * submission order, other chats' requests are not held up by a slow one, requests that name no
 * chat run on the first connection, and requests with one order key take effect and complete in
 * submission order across lanes, while requests without a key pass them by.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "common/error.h"
#include "common/log.h"
#include "store/store.h"

#define LOG_MAX 1024
#define FAKE_CONNS 4

struct fake_conn {
  int index; /* in the order the connections were opened: 0 is lane 0 */
};

struct ran {
  const struct fake_conn *conn;
  enum store_op op;
  char slug[STORE_SLUG_MAX + 1];
  int tag; /* store_req.in.limit, set by the test to name the request */
};

static uv_mutex_t g_mu;
static uv_cond_t g_cond;
static int g_opened;
static struct ran g_log[LOG_MAX];
static int g_n_log;
static int g_gate_open;   /* GATE requests return */
static int g_gate_inside; /* GATE requests waiting in exec() */

static int fake_open(void **be, const char *uri, enum store_durability d) {
  struct fake_conn *c = calloc(1, sizeof *c);
  (void)uri;
  (void)d;
  if (c == NULL)
    return PARLEY_EUNAVAILABLE;
  uv_mutex_lock(&g_mu);
  c->index = g_opened++;
  uv_mutex_unlock(&g_mu);
  *be = c;
  return 0;
}
static void fake_close(void *be) {
  free(be);
}
static int fake_nop(void *be) {
  (void)be;
  return 0;
}
static int fake_release(void *be, int undo) {
  (void)be;
  (void)undo;
  return 0;
}
static int fake_exec(void *be, struct store_req *req) {
  uv_mutex_lock(&g_mu);
  if (req->in.body && strcmp(req->in.body, "GATE") == 0) {
    g_gate_inside++;
    uv_cond_broadcast(&g_cond);
    while (!g_gate_open)
      uv_cond_wait(&g_cond, &g_mu);
    g_gate_inside--;
  }
  assert_true(g_n_log < LOG_MAX);
  g_log[g_n_log] = (struct ran){be, req->op, "", req->in.limit};
  snprintf(g_log[g_n_log].slug, sizeof g_log[g_n_log].slug, "%s", req->in.slug);
  g_n_log++;
  uv_mutex_unlock(&g_mu);
  return 0;
}

#define FAKE_METHODS                                                                              \
  .open = fake_open, .close = fake_close, .begin = fake_nop, .commit = fake_nop,                  \
  .rollback = fake_nop, .savepoint = fake_nop, .release = fake_release, .exec = fake_exec

static const struct store_backend_ops fake_ops = {
    .name = "fake", .conns = FAKE_CONNS, FAKE_METHODS};

/* The same backend with exec_batch: a request whose body is "DEFER" is deferred (STORE_DEFER)
 * until it has been twice, and so is every request of its chat in the batch, as store.h asks. */
static int fake_exec_batch(void *be, struct store_req *batch) {
  for (struct store_req *r = batch; r != NULL; r = r->next) {
    for (struct store_req *d = batch; d != NULL; d = d->next)
      if (d->in.body && strcmp(d->in.body, "DEFER") == 0 && d->defers < 2 &&
          strcmp(d->in.slug, r->in.slug) == 0)
        r->status = STORE_DEFER;
    if (r->status != STORE_DEFER)
      r->status = fake_exec(be, r);
  }
  return 0;
}

static const struct store_backend_ops fake_batch_ops = {
    .name = "fake+batch", .conns = 1, FAKE_METHODS, .exec_batch = fake_exec_batch};

/* A one-connection backend that keeps what it is told, transactionally, and counts its changes
 * the way SQLite's total_changes does (only up, rolled back or not), so store.c can run a batch
 * without savepoints. Requests by body: "W" writes its tag; "FW" writes its tag, then fails;
 * "F" fails without writing. */
static struct {
  int committed[LOG_MAX], n_committed;
  int txn[LOG_MAX], n_txn;
  int marks[LOG_MAX], n_marks;
  int64_t changes;
  int in_txn, begins, rollbacks, savepoints, undos;
} g_tx;

static int tx_begin(void *be) {
  (void)be;
  g_tx.in_txn = 1;
  g_tx.n_txn = 0;
  g_tx.n_marks = 0;
  g_tx.begins++;
  return 0;
}
static int tx_commit(void *be) {
  (void)be;
  memcpy(g_tx.committed + g_tx.n_committed, g_tx.txn, (size_t)g_tx.n_txn * sizeof(int));
  g_tx.n_committed += g_tx.n_txn;
  g_tx.in_txn = 0;
  return 0;
}
static int tx_rollback(void *be) {
  (void)be;
  g_tx.in_txn = 0;
  g_tx.rollbacks++;
  return 0;
}
static int tx_savepoint(void *be) {
  (void)be;
  g_tx.marks[g_tx.n_marks++] = g_tx.n_txn;
  g_tx.savepoints++;
  return 0;
}
static int tx_release(void *be, int undo) {
  (void)be;
  assert_true(g_tx.n_marks > 0);
  g_tx.n_marks--;
  if (undo) {
    g_tx.n_txn = g_tx.marks[g_tx.n_marks];
    g_tx.undos++;
  }
  return 0;
}
static int64_t tx_changes(void *be) {
  (void)be;
  return g_tx.in_txn ? g_tx.changes : -1;
}
static int tx_exec(void *be, struct store_req *req) {
  const char *b = req->in.body ? req->in.body : "";
  int err = fake_exec(be, req); /* logs the run; a GATE waits */
  assert_true(g_tx.in_txn);
  if (strcmp(b, "W") == 0 || strcmp(b, "FW") == 0) {
    g_tx.txn[g_tx.n_txn++] = req->in.limit;
    g_tx.changes++;
  }
  if (strcmp(b, "FW") == 0 || strcmp(b, "F") == 0)
    return PARLEY_ECONFLICT;
  return err;
}

static const struct store_backend_ops fake_tx_ops = {.name = "fake+changes",
                                                     .conns = 1,
                                                     .open = fake_open,
                                                     .close = fake_close,
                                                     .begin = tx_begin,
                                                     .commit = tx_commit,
                                                     .rollback = tx_rollback,
                                                     .savepoint = tx_savepoint,
                                                     .release = tx_release,
                                                     .exec = tx_exec,
                                                     .changes = tx_changes};

/* ---- fixture ---- */

struct fx {
  uv_loop_t loop;
  struct store *s;
  int done[LOG_MAX];  /* tags in completion order */
  int status[LOG_MAX]; /* their statuses (on_status only) */
  int n_done;
  int closed;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_mutex_lock(&g_mu);
  g_opened = 0;
  g_n_log = 0;
  g_gate_open = 0;
  g_gate_inside = 0;
  uv_mutex_unlock(&g_mu);
  assert_int_equal(store_open_backend(&f->s, &f->loop, &fake_ops, "fake", STORE_DURABILITY_NORMAL,
                                      0),
                   0);
  *state = f;
  return 0;
}

static void on_closed(void *arg) {
  ((struct fx *)arg)->closed = 1;
}

static void open_gate(void) {
  uv_mutex_lock(&g_mu);
  g_gate_open = 1;
  uv_cond_broadcast(&g_cond);
  uv_mutex_unlock(&g_mu);
}

static int teardown(void **state) {
  struct fx *f = *state;
  open_gate();
  if (f->s && !f->closed) {
    store_close(f->s, on_closed, f);
    while (!f->closed)
      uv_run(&f->loop, UV_RUN_ONCE);
  }
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void on_done(struct store_req *req) {
  struct fx *f = req->data;
  assert_int_equal(req->status, 0);
  f->done[f->n_done++] = req->in.limit;
  store_req_free(req);
}

/* Submits `op` on `slug` ("" = none) with order key `key` (NULL = none), tagged `tag`. */
static void submit(struct fx *f, enum store_op op, const char *slug, const void *key, int tag,
                   int gate) {
  struct store_req *r = store_req_new(op);
  assert_non_null(r);
  snprintf(r->in.slug, sizeof r->in.slug, "%s", slug);
  r->in.limit = tag;
  r->order = key;
  if (gate)
    r->in.body = strdup("GATE");
  assert_int_equal(store_submit(f->s, r, on_done, f), 0);
}

static void run_until_done(struct fx *f, int n) {
  while (f->n_done < n)
    uv_run(&f->loop, UV_RUN_ONCE);
}

/* Waits until `n` GATE requests are inside exec(). One turn of the loop first: a lane starts on
 * what was submitted at the end of the turn. */
static void wait_gate_inside(struct fx *f, int n) {
  uv_run(&f->loop, UV_RUN_NOWAIT);
  uv_mutex_lock(&g_mu);
  while (g_gate_inside < n)
    uv_cond_wait(&g_cond, &g_mu);
  uv_mutex_unlock(&g_mu);
}

static const struct ran *ran_of(int tag) {
  for (int i = 0; i < g_n_log; i++)
    if (g_log[i].tag == tag)
      return &g_log[i];
  return NULL;
}

static int ran_pos(int tag) {
  for (int i = 0; i < g_n_log; i++)
    if (g_log[i].tag == tag)
      return i;
  return -1;
}

/* A slug whose lane differs from `than`'s, found by running one request on each candidate. */
static void slug_on_other_lane(struct fx *f, const char *than, char out[32]) {
  const struct fake_conn *c0;
  int base = 900;
  submit(f, STORE_MSG_APPEND, than, NULL, base, 0);
  run_until_done(f, f->n_done + 1);
  c0 = ran_of(base)->conn;
  for (int i = 0; i < 64; i++) {
    snprintf(out, 32, "other-%d", i);
    submit(f, STORE_MSG_APPEND, out, NULL, base + 1 + i, 0);
    run_until_done(f, f->n_done + 1);
    if (ran_of(base + 1 + i)->conn != c0)
      return;
  }
  fail_msg("no slug found on another lane");
}

/* ---- tests ---- */

/* Submits a sheddable request (a client's) on `slug`, tagged `tag`: 0, or the refusal. A
 * refused request is still the caller's. */
static int submit_sheddable(struct fx *f, const char *slug, int tag) {
  struct store_req *r = store_req_new(STORE_MSG_APPEND);
  int err;
  assert_non_null(r);
  snprintf(r->in.slug, sizeof r->in.slug, "%s", slug);
  r->in.limit = tag;
  r->sheddable = 1;
  err = store_submit(f->s, r, on_done, f);
  if (err)
    store_req_free(r);
  return err;
}

/* Past capacity the store says "not now" at once (issue 15): a sheddable request is refused
 * while the store holds too many, or while the oldest has waited too long for a lane; internal work still queues,
 * and once the backlog drains requests are taken again. */
static void test_admission_bounds_the_backlog(void **state) {
  struct fx *f = *state;
  struct store_stats st;
  int n = 0;

  store_set_admission(f->s, 3, 60000); /* three of the clients' requests */
  submit(f, STORE_MSG_APPEND, "slow", NULL, 1, 1); /* holds its lane */
  n++;
  wait_gate_inside(f, 1);
  for (int i = 0; i < 3; i++, n++)
    assert_int_equal(submit_sheddable(f, "slow", 10 + i), 0);
  assert_int_equal(submit_sheddable(f, "slow", 20), PARLEY_EUNAVAILABLE);
  assert_int_equal(submit_sheddable(f, "elsewhere", 21), PARLEY_EUNAVAILABLE); /* any lane */
  submit(f, STORE_MSG_APPEND, "slow", NULL, 22, 0); /* not sheddable: queued all the same */
  n++;
  store_get_stats(f->s, &st);
  assert_int_equal(st.shed, 2);
  assert_int_equal(st.queued, 3); /* internal work is not counted */

  open_gate();
  run_until_done(f, n);
  assert_int_equal(submit_sheddable(f, "slow", 30), 0);
  run_until_done(f, ++n);
  store_get_stats(f->s, &st);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.shed, 2);
}

static void test_admission_bounds_the_wait(void **state) {
  struct fx *f = *state;
  struct store_stats st;
  uv_loop_t *l = &f->loop;
  uint64_t t0;

  store_set_admission(f->s, 1000, 20);
  submit(f, STORE_MSG_APPEND, "slow", NULL, 1, 1);
  wait_gate_inside(f, 1);
  assert_int_equal(submit_sheddable(f, "slow", 2), 0); /* waits behind the gate */
  /* Time is what this test is about: the queued request ages past the bound. */
  uv_update_time(l);
  t0 = uv_now(l);
  while (uv_now(l) - t0 < 30) {
    uv_sleep(5);
    uv_update_time(l);
  }
  store_get_stats(f->s, &st);
  assert_true(st.oldest_wait_ns >= 20000000ull);
  assert_int_equal(submit_sheddable(f, "other", 3), PARLEY_EUNAVAILABLE);
  open_gate();
  run_until_done(f, 2);
  assert_int_equal(submit_sheddable(f, "other", 4), 0);
  run_until_done(f, 3);
}

static void test_opens_the_backends_connections(void **state) {
  struct fx *f = *state;
  assert_int_equal(store_conns(f->s), FAKE_CONNS);
  assert_int_equal(g_opened, FAKE_CONNS);
}

/* A chat's requests run on one connection, in submission order; requests naming no chat (and
 * CHAT_CREATE, whose chat does not exist yet) run on the first; chats spread over the others. */
static void test_routes_by_chat(void **state) {
  struct fx *f = *state;
  static const char *const slugs[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};
  int n = 0, used[FAKE_CONNS] = {0}, lanes_used = 0;

  for (int i = 0; i < 120; i++) {
    const char *slug = slugs[i % 6];
    enum store_op op = i % 3 == 0 ? STORE_READ_SET : STORE_MSG_APPEND;
    submit(f, op, slug, NULL, i, 0);
    n++;
    if (i % 10 == 0) {
      submit(f, STORE_SESSION_GET, "", NULL, 1000 + i, 0);
      submit(f, STORE_CHAT_CREATE, slug, NULL, 2000 + i, 0);
      n += 2;
    }
  }
  run_until_done(f, n);
  assert_int_equal(g_n_log, n);
  for (int s = 0; s < 6; s++) {
    const struct fake_conn *conn = NULL;
    int last = -1;
    for (int i = 0; i < g_n_log; i++) {
      const struct ran *r = &g_log[i];
      if (r->tag >= 1000 || strcmp(r->slug, slugs[s]) != 0)
        continue;
      if (conn == NULL)
        conn = r->conn;
      assert_ptr_equal(r->conn, conn);
      assert_true(r->tag > last); /* submission order */
      last = r->tag;
    }
    assert_int_not_equal(conn->index, 0);
    if (used[conn->index]++ == 0)
      lanes_used++;
  }
  assert_true(lanes_used >= 2); /* six chats are not all hashed onto one lane */
  for (int i = 0; i < g_n_log; i++)
    if (g_log[i].tag >= 1000)
      assert_int_equal(g_log[i].conn->index, 0);
}

/* A request stuck on one chat's connection does not hold up another chat's, nor lane 0. */
static void test_slow_chat_does_not_block_others(void **state) {
  struct fx *f = *state;
  char other[32];

  slug_on_other_lane(f, "slow", other);
  f->n_done = 0;
  submit(f, STORE_MSG_APPEND, "slow", NULL, 1, 1);
  wait_gate_inside(f, 1);
  submit(f, STORE_MSG_APPEND, "slow", NULL, 2, 0);
  submit(f, STORE_MSG_APPEND, other, NULL, 3, 0);
  submit(f, STORE_SESSION_GET, "", NULL, 4, 0);
  run_until_done(f, 2);
  assert_true((f->done[0] == 3 && f->done[1] == 4) || (f->done[0] == 4 && f->done[1] == 3));
  assert_null(ran_of(2)); /* behind the gate, on the same chat */
  open_gate();
  run_until_done(f, 4);
  assert_int_equal(f->done[2], 1);
  assert_int_equal(f->done[3], 2);
}

/* One key: a general request waits until the key's chat requests are done, a chat request
 * waits for the key's general requests, and completions come in submission order. A request
 * without the key, and the key's requests on other chats, are not held. */
static void test_order_key(void **state) {
  struct fx *f = *state;
  int key = 0, other_key = 0;
  char other[32];

  slug_on_other_lane(f, "room", other);
  f->n_done = 0;
  submit(f, STORE_MSG_APPEND, "room", &key, 1, 1);  /* waits at the gate */
  wait_gate_inside(f, 1);
  submit(f, STORE_MSG_APPEND, other, &key, 2, 0);   /* the key's other chat: runs */
  submit(f, STORE_INVITE_ACCEPT, "", &key, 3, 0);   /* general: waits for 1 and 2 */
  submit(f, STORE_MSG_APPEND, other, &key, 4, 0);   /* chat: waits for 3 */
  submit(f, STORE_SESSION_GET, "", &other_key, 5, 0); /* another key on lane 0: runs */
  submit(f, STORE_SESSION_GET, "", NULL, 6, 0);     /* no key on lane 0: runs */
  run_until_done(f, 3);
  assert_non_null(ran_of(2));
  assert_non_null(ran_of(5));
  assert_non_null(ran_of(6));
  assert_null(ran_of(3)); /* lane 0 was free (5 and 6 ran there): the key held it */
  assert_null(ran_of(4));
  assert_int_equal(store_pending(f->s), 3);
  open_gate();
  run_until_done(f, 6);
  assert_true(ran_pos(1) < ran_pos(3));
  assert_true(ran_pos(2) < ran_pos(3));
  assert_true(ran_pos(3) < ran_pos(4));
  /* The key's completions after the gate, in its submission order. */
  assert_int_equal(f->done[3], 1);
  assert_int_equal(f->done[4], 3);
  assert_int_equal(f->done[5], 4);
}

/* Closing finishes what waits in a key's backlog before the connections close. */
static void test_close_drains_backlog(void **state) {
  struct fx *f = *state;
  struct store_req *late;
  int key = 0;

  submit(f, STORE_MSG_APPEND, "room", &key, 1, 1);
  wait_gate_inside(f, 1);
  submit(f, STORE_CHAT_LIST, "", &key, 2, 0);
  submit(f, STORE_MSG_APPEND, "room-2", &key, 3, 0);
  store_close(f->s, on_closed, f);
  late = store_req_new(STORE_CHAT_LIST);
  assert_int_equal(store_submit(f->s, late, on_done, f), PARLEY_EUNAVAILABLE);
  store_req_free(late); /* refused: still ours */
  open_gate();
  while (!f->closed)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->n_done, 3);
  assert_int_equal(f->done[0], 1);
  assert_int_equal(f->done[1], 2);
  assert_int_equal(f->done[2], 3);
  f->s = NULL;
}

/* A deferred request goes back to the head of its lane's queue and runs in a later batch,
 * before anything newer of its chat; the others of its batch complete meanwhile. */
static void test_deferred_runs_again_in_order(void **state) {
  struct fx *f = *state;
  struct store_req *r;

  store_close(f->s, on_closed, f);
  while (!f->closed)
    uv_run(&f->loop, UV_RUN_ONCE);
  f->closed = 0;
  g_n_log = 0;
  assert_int_equal(store_open_backend(&f->s, &f->loop, &fake_batch_ops, "fake",
                                      STORE_DURABILITY_NORMAL, 0),
                   0);
  /* The lane is held in a first batch until all three are queued: they form the next batch. */
  submit(f, STORE_MSG_APPEND, "z", NULL, 9, 1);
  wait_gate_inside(f, 1);
  r = store_req_new(STORE_MSG_APPEND);
  snprintf(r->in.slug, sizeof r->in.slug, "x");
  r->in.limit = 1;
  r->in.body = strdup("DEFER");
  assert_int_equal(store_submit(f->s, r, on_done, f), 0);
  submit(f, STORE_MSG_APPEND, "x", NULL, 2, 0);
  submit(f, STORE_MSG_APPEND, "y", NULL, 3, 0);
  open_gate();
  run_until_done(f, 4);
  assert_int_equal(f->done[0], 9);
  assert_int_equal(f->done[1], 3); /* chat y was not held up */
  assert_int_equal(f->done[2], 1);
  assert_int_equal(f->done[3], 2);
  assert_true(ran_pos(3) < ran_pos(1));
  assert_true(ran_pos(1) < ran_pos(2));
  assert_int_equal(g_n_log, 4); /* each ran once */
}

static void on_status(struct store_req *req) {
  struct fx *f = req->data;
  f->status[f->n_done] = req->status;
  f->done[f->n_done++] = req->in.limit;
  store_req_free(req);
}

static void submit_body(struct fx *f, const char *body, int tag) {
  struct store_req *r = store_req_new(STORE_MSG_APPEND);
  assert_non_null(r);
  snprintf(r->in.slug, sizeof r->in.slug, "x");
  r->in.limit = tag;
  r->in.body = strdup(body);
  assert_int_equal(store_submit(f->s, r, on_status, f), 0);
}

static int runs_of(int tag) {
  int n = 0;
  for (int i = 0; i < g_n_log; i++)
    n += g_log[i].tag == tag;
  return n;
}

/* Runs `bodies` (tags 1..n) as one batch behind a GATE request (tag 9) on the fake+changes
 * backend, and checks that each completed with 0, or with its failure for "F" and "FW". */
/* Replaces the fixture's store by one on the fake+changes backend, with its counts at zero. */
static void reopen_tx(struct fx *f) {
  store_close(f->s, on_closed, f);
  while (!f->closed)
    uv_run(&f->loop, UV_RUN_ONCE);
  f->closed = 0;
  g_n_log = 0;
  memset(&g_tx, 0, sizeof g_tx);
  assert_int_equal(
      store_open_backend(&f->s, &f->loop, &fake_tx_ops, "fake", STORE_DURABILITY_NORMAL, 0), 0);
}

static void run_tx_batch(struct fx *f, const char *const *bodies, int n) {
  reopen_tx(f);
  submit_body(f, "GATE", 9);
  wait_gate_inside(f, 1);
  for (int i = 0; i < n; i++)
    submit_body(f, bodies[i], i + 1);
  open_gate();
  run_until_done(f, n + 1);
  for (int i = 0; i < n + 1; i++) {
    int tag = f->done[i];
    int fails = tag != 9 && bodies[tag - 1][0] == 'F';
    assert_int_equal(f->status[i], fails ? PARLEY_ECONFLICT : 0);
  }
}

/* A batch runs without savepoints when no request fails after writing: a request that fails
 * before it writes leaves nothing to undo, and the others commit with it. */
static void test_batch_without_savepoints(void **state) {
  static const char *const bodies[] = {"W", "F", "W"};
  struct fx *f = *state;
  run_tx_batch(f, bodies, 3);
  assert_int_equal(g_tx.savepoints, 0);
  assert_int_equal(g_tx.rollbacks, 0);
  assert_int_equal(g_tx.n_committed, 2);
  assert_int_equal(g_tx.committed[0], 1);
  assert_int_equal(g_tx.committed[1], 3);
  for (int tag = 1; tag <= 3; tag++)
    assert_int_equal(runs_of(tag), 1);
}

/* A request that fails after writing sends its batch back: rolled back, and run again with a
 * savepoint around each request, so that only the failed request's write is undone. */
static void test_batch_runs_again_with_savepoints(void **state) {
  static const char *const bodies[] = {"W", "FW", "W", "F"};
  struct fx *f = *state;
  run_tx_batch(f, bodies, 4);
  assert_int_equal(g_tx.rollbacks, 1);
  assert_int_equal(g_tx.savepoints, 4);
  assert_int_equal(g_tx.undos, 2); /* FW's write, and F, which wrote nothing */
  assert_int_equal(g_tx.n_committed, 2);
  assert_int_equal(g_tx.committed[0], 1);
  assert_int_equal(g_tx.committed[1], 3);
  assert_int_equal(runs_of(1), 2);
  assert_int_equal(runs_of(2), 2);
  assert_int_equal(runs_of(3), 1);
  assert_int_equal(runs_of(4), 1);
}

/* The store thread is woken at the end of the loop's turn, once for everything the turn
 * submitted: what one turn submits shares a transaction however long the turn goes on between
 * two submissions (issue 15: at 2,000 sends/s, waking it at each submission made 30% more
 * transactions), and nothing starts before the turn ends. */
static void test_one_turn_one_transaction(void **state) {
  struct fx *f = *state;
  int ran;
  reopen_tx(f);
  /* A thread still awake takes what is queued without being woken: first let it run once and,
   * with nothing queued, go back to its wait (there is no event that says it is there). */
  submit_body(f, "W", 8);
  run_until_done(f, 1);
  uv_sleep(100);
  submit_body(f, "W", 1);
  uv_sleep(50); /* the rest of a long turn, reading other sockets; a woken thread would run */
  uv_mutex_lock(&g_mu);
  ran = g_n_log;
  uv_mutex_unlock(&g_mu);
  assert_int_equal(ran, 1); /* the first request only */
  submit_body(f, "W", 2);
  submit_body(f, "W", 3);
  run_until_done(f, 4);
  assert_int_equal(g_tx.begins, 2);
  assert_int_equal(g_tx.n_committed, 4);
  for (int i = 0; i < 4; i++)
    assert_int_equal(f->status[i], 0);
}

static void on_timer_submit(uv_timer_t *t) {
  submit(t->data, STORE_MSG_APPEND, "x", NULL, 1, 0);
}

static void on_watchdog(uv_timer_t *t) {
  *(int *)t->data = 1;
}

/* A request submitted by a timer, before the loop polls, starts at the end of that turn: the
 * loop does not block in poll waiting for I/O first (the store's idle handle). Here the only
 * other thing the loop waits for is a watchdog two seconds away. */
static void test_timer_submission_starts_this_turn(void **state) {
  struct fx *f = *state;
  uv_timer_t t, watchdog;
  int fired = 0;
  uv_timer_init(&f->loop, &t);
  uv_timer_init(&f->loop, &watchdog);
  t.data = f;
  watchdog.data = &fired;
  uv_timer_start(&t, on_timer_submit, 0, 0);
  uv_timer_start(&watchdog, on_watchdog, 2000, 0);
  run_until_done(f, 1);
  assert_int_equal(fired, 0);
  uv_close((uv_handle_t *)&t, NULL);
  uv_close((uv_handle_t *)&watchdog, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_opens_the_backends_connections, setup, teardown),
      cmocka_unit_test_setup_teardown(test_routes_by_chat, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slow_chat_does_not_block_others, setup, teardown),
      cmocka_unit_test_setup_teardown(test_order_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_drains_backlog, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deferred_runs_again_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_admission_bounds_the_backlog, setup, teardown),
      cmocka_unit_test_setup_teardown(test_admission_bounds_the_wait, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_without_savepoints, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_runs_again_with_savepoints, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_turn_one_transaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timer_submission_starts_this_turn, setup, teardown),
  };
  log_set_level(LOG_WARN);
  uv_mutex_init(&g_mu);
  uv_cond_init(&g_cond);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
