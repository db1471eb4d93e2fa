/* test_store.c - the store (src/store) through its real asynchronous API, on a temporary SQLite
 * file, or on a fresh PostgreSQL schema when PARLEY_TEST_PG is set (store_fixture.h): requests
 * are submitted and a libuv loop runs until their callbacks ran. `make unit` runs it both ways.
 *
 * Most tests open the store with store_open(). The batching tests open it with
 * store_open_backend() and a thin wrapper around the backend's method table that can hold the
 * store thread at BEGIN (so a batch is formed deterministically) and inject failures into exec and
 * commit. The two-node tests open a second store on the same database. Every time is a fixed fake
 * `now`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "common/error.h"
#include "common/log.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store_fixture.h"

#define NOW INT64_C(1700000000000)
#define FAIL_AFTER_WRITE "FAIL-AFTER-WRITE" /* body that makes the wrapper fail after exec */

/* ---- a fault-injecting wrapper around the backend under test ---- */

static const struct store_backend_ops *g_inner; /* the fixture's backend (SQLite or PostgreSQL) */

static atomic_int g_gate_armed;  /* the next this many BEGINs wait for g_gate_release */
static atomic_int g_fail_begin;  /* BEGIN fails */
static atomic_int g_fail_commit; /* COMMIT fails (after really rolling back) */
static uv_sem_t g_gate_entered, g_gate_release;
/* PostgreSQL two-node test: a request whose body is BARRIER waits, after it ran, until the other
 * node's one ran too, so each node holds one chat's lock before either asks for the other's. */
static atomic_int g_barrier_on;
static uv_barrier_t g_barrier;

static int fault_open(void **be, const char *uri, enum store_durability d) {
  return g_inner->open(be, uri, d);
}
static void fault_close(void *be) {
  g_inner->close(be);
}
static int fault_begin(void *be) {
  if (atomic_load(&g_gate_armed) > 0 && atomic_fetch_sub(&g_gate_armed, 1) > 0) {
    uv_sem_post(&g_gate_entered);
    uv_sem_wait(&g_gate_release);
  }
  if (atomic_load(&g_fail_begin))
    return PARLEY_EUNAVAILABLE;
  return g_inner->begin(be);
}
static int fault_commit(void *be) {
  if (atomic_load(&g_fail_commit)) {
    g_inner->rollback(be); /* what a real failed commit leaves behind: nothing */
    return PARLEY_EUNAVAILABLE;
  }
  return g_inner->commit(be);
}
static int fault_rollback(void *be) {
  return g_inner->rollback(be);
}
static int fault_savepoint(void *be) {
  return g_inner->savepoint(be);
}
static int fault_release(void *be, int undo) {
  return g_inner->release(be, undo);
}
/* Runs the real request, then claims it failed: the store must undo what it wrote. */
static int fault_exec(void *be, struct store_req *req) {
  int rc = g_inner->exec(be, req);
  if (atomic_load(&g_barrier_on) && req->op == STORE_MSG_APPEND && req->in.body &&
      strcmp(req->in.body, "BARRIER") == 0)
    uv_barrier_wait(&g_barrier);
  if (rc == 0 && req->op == STORE_MSG_APPEND && req->in.body &&
      strcmp(req->in.body, FAIL_AFTER_WRITE) == 0)
    return PARLEY_EINTERNAL;
  return rc;
}

#define FAULT_METHODS                                                                             \
  .open = fault_open, .close = fault_close, .begin = fault_begin, .commit = fault_commit,         \
  .rollback = fault_rollback, .savepoint = fault_savepoint, .release = fault_release,             \
  .exec = fault_exec

static const struct store_backend_ops fault_ops = {.name = "faults", FAULT_METHODS};

/* fault_ops with the backend's own exec_batch (PostgreSQL's pipelines), for faulty == 2: the
 * gate still forms the batch, the per-request faults do not apply. */
static int fault_exec_batch(void *be, struct store_req *batch) {
  return g_inner->exec_batch(be, batch);
}

static const struct store_backend_ops fault_batch_ops = {
    .name = "faults+batch", FAULT_METHODS, .exec_batch = fault_exec_batch};

static int store_reopen(struct fx *f) {
  store_close_wait(f);
  if (f->faulty == 2 && g_inner->exec_batch)
    return store_open_backend(&f->s, &f->loop, &fault_batch_ops, f->path,
                              STORE_DURABILITY_NORMAL, 0);
  if (f->faulty)
    return store_open_backend(&f->s, &f->loop, &fault_ops, f->path, STORE_DURABILITY_NORMAL, 0);
  return store_open(&f->s, &f->loop, f->path, STORE_DURABILITY_NORMAL, 0);
}

/* ---- fixtures ---- */

static int fx_setup_common(void **state, int faulty) {
  struct fx *f = fx_new("parley-store");
  if (f == NULL)
    return -1;
  f->faulty = faulty;
  g_inner = fx_ops(f);
  atomic_store(&g_gate_armed, 0);
  atomic_store(&g_fail_begin, 0);
  atomic_store(&g_fail_commit, 0);
  if (store_reopen(f) != 0)
    return -1;
  *state = f;
  return 0;
}

static int fx_setup(void **state) {
  return fx_setup_common(state, 0);
}

static int fx_setup_faulty(void **state) {
  return fx_setup_common(state, 1);
}

static int fx_setup_faulty_batch(void **state) {
  return fx_setup_common(state, 2);
}

static int fx_teardown(void **state) { return fx_free(*state); }

/* ---- request builders ---- */

static struct store_req *new_req(enum store_op op, int64_t user_id, const char *slug) {
  struct store_req *r = store_req_new(op);
  assert_non_null(r);
  r->in.now = NOW;
  r->in.user_id = user_id;
  if (slug)
    snprintf(r->in.slug, sizeof r->in.slug, "%s", slug);
  return r;
}

static int user_create(struct fx *f, const char *name, int64_t *id) {
  struct store_req *r = new_req(STORE_USER_CREATE, 0, NULL);
  int rc;
  snprintf(r->in.user.username, sizeof r->in.user.username, "%s", name);
  r->in.pwhash = strdup("$argon2id$v=19$fake");
  rc = run(f, r);
  if (id)
    *id = r->out.user.id;
  store_req_free(r);
  return rc;
}

static int64_t mk_user(struct fx *f, const char *name) {
  int64_t id = 0;
  assert_int_equal(user_create(f, name, &id), 0);
  assert_true(id > 0);
  return id;
}

static struct store_req *chat_create_req(int64_t owner, const char *title, int is_public, int max,
                                         const char *slug) {
  struct store_req *r = new_req(STORE_CHAT_CREATE, owner, slug);
  r->in.title = strdup(title);
  r->in.is_public = is_public;
  r->in.max_participants = max;
  return r;
}

/* Creates a chat; copies its slug to out_slug (may be NULL). */
static int chat_create(struct fx *f, int64_t owner, const char *title, int is_public, int max,
                       const char *slug, char *out_slug) {
  struct store_req *r = chat_create_req(owner, title, is_public, max, slug);
  int rc = run(f, r);
  if (rc == 0) {
    assert_int_equal(r->out.chat.my_role, CHAT_ROLE_OWNER);
    assert_int_equal(r->out.chat.participant_count, 1);
    assert_string_equal(r->out.chat.title, title);
  }
  if (out_slug)
    snprintf(out_slug, STORE_SLUG_MAX + 1, "%s", r->out.chat.slug);
  store_req_free(r);
  return rc;
}

static struct store_req *append_req(int64_t user, const char *slug, const char *body,
                                    const char *cmid, int64_t now) {
  struct store_req *r = new_req(STORE_MSG_APPEND, user, slug);
  r->in.body = strdup(body);
  r->in.now = now;
  if (cmid)
    snprintf(r->in.client_msg_id, sizeof r->in.client_msg_id, "%s", cmid);
  return r;
}

static int append(struct fx *f, int64_t user, const char *slug, const char *body,
                  const char *cmid, int64_t *seq, int *dup) {
  struct store_req *r = append_req(user, slug, body, cmid, NOW);
  int rc = run(f, r);
  if (rc == 0) {
    assert_string_equal(r->out.chat.slug, slug);
    assert_int_equal(r->out.msg.author.id, user);
    assert_int_equal(r->out.chat.last_seq >= r->out.msg.seq, 1);
  } else {
    assert_int_equal(r->out.msg.seq, 0); /* a failure never carries a result */
    assert_null(r->out.msg.body);
  }
  if (seq)
    *seq = r->out.msg.seq;
  if (dup)
    *dup = r->out.duplicate;
  store_req_free(r);
  return rc;
}

static int join(struct fx *f, int64_t user, const char *slug, int *joined) {
  struct store_req *r = new_req(STORE_CHAT_JOIN, user, slug);
  int rc = run(f, r);
  if (joined)
    *joined = r->out.joined;
  if (rc == 0)
    assert_int_equal(r->out.chat.my_role != CHAT_ROLE_NONE, 1);
  store_req_free(r);
  return rc;
}

/* Runs MSG_HISTORY or MSG_SINCE and returns the finished request (caller frees). */
static struct store_req *page(struct fx *f, enum store_op op, int64_t user, const char *slug,
                              int64_t before_or_since, int limit) {
  struct store_req *r = new_req(op, user, slug);
  if (op == STORE_MSG_HISTORY)
    r->in.before = before_or_since;
  else
    r->in.since = before_or_since;
  r->in.limit = limit;
  run(f, r);
  return r;
}

/* Asserts r->out.msgs are exactly seqs first..last, oldest first. */
static void assert_seqs(const struct store_req *r, int64_t first, int64_t last) {
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.n_msgs, (size_t)(last - first + 1));
  for (size_t i = 0; i < r->out.n_msgs; i++) {
    assert_int_equal(r->out.msgs[i].seq, first + (int64_t)i);
    assert_non_null(r->out.msgs[i].body);
  }
}

static void fill_chat(struct fx *f, int64_t user, const char *slug, int n) {
  for (int i = 1; i <= n; i++) {
    char body[32];
    int64_t seq;
    snprintf(body, sizeof body, "message %d", i);
    assert_int_equal(append(f, user, slug, body, NULL, &seq, NULL), 0);
    assert_int_equal(seq, i);
  }
}

/* ---- users and sessions ---- */

static void test_user_create_and_conflict(void **state) {
  struct fx *f = *state;
  struct store_req *r;
  int64_t ana = mk_user(f, "ana");

  assert_int_equal(user_create(f, "ana", NULL), PARLEY_ECONFLICT);
  assert_true(mk_user(f, "bob") != ana);

  r = new_req(STORE_USER_BY_NAME, 0, NULL);
  snprintf(r->in.user.username, sizeof r->in.user.username, "ana");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.user.id, ana);
  assert_string_equal(r->out.user.display_name, "ana"); /* defaults to the username */
  assert_int_equal(r->out.user.created_at, NOW);
  assert_string_equal(r->out.pwhash, "$argon2id$v=19$fake");
  store_req_free(r);

  r = new_req(STORE_USER_BY_NAME, 0, NULL);
  snprintf(r->in.user.username, sizeof r->in.user.username, "nobody");
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  assert_null(r->out.pwhash);
  store_req_free(r);

  /* No password hash is a caller bug, refused rather than stored. */
  r = new_req(STORE_USER_CREATE, 0, NULL);
  snprintf(r->in.user.username, sizeof r->in.user.username, "carol");
  assert_int_equal(run(f, r), PARLEY_EBAD_REQUEST);
  store_req_free(r);
}

static int session_get(struct fx *f, uint8_t hash_byte, int64_t now, int64_t *user_id) {
  struct store_req *r = new_req(STORE_SESSION_GET, 0, NULL);
  int rc;
  memset(r->in.token_hash, hash_byte, sizeof r->in.token_hash);
  r->in.now = now;
  rc = run(f, r);
  if (user_id)
    *user_id = r->out.user.id;
  if (rc == 0) {
    assert_string_equal(r->out.user.username, "ana");
    assert_int_equal(r->out.expires_at, NOW + 1000);
  }
  store_req_free(r);
  return rc;
}

static void test_session_lifecycle(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), got = 0;
  struct store_req *r = new_req(STORE_SESSION_CREATE, ana, NULL);
  memset(r->in.token_hash, 0xab, sizeof r->in.token_hash);
  r->in.expires_at = NOW + 1000;
  assert_int_equal(run(f, r), 0);
  store_req_free(r);

  assert_int_equal(session_get(f, 0xab, NOW, &got), 0);
  assert_int_equal(got, ana);
  assert_int_equal(session_get(f, 0xab, NOW + 999, NULL), 0);
  assert_int_equal(session_get(f, 0xab, NOW + 1000, NULL), PARLEY_EUNAUTHORIZED); /* expired */
  assert_int_equal(session_get(f, 0xcd, NOW, NULL), PARLEY_EUNAUTHORIZED);        /* unknown */

  /* A session for a user that does not exist is refused by the foreign key. */
  r = new_req(STORE_SESSION_CREATE, ana + 100, NULL);
  memset(r->in.token_hash, 0x11, sizeof r->in.token_hash);
  r->in.expires_at = NOW + 1000;
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  store_req_free(r);

  for (int i = 0; i < 2; i++) { /* deleting twice is fine */
    r = new_req(STORE_SESSION_DELETE, 0, NULL);
    memset(r->in.token_hash, 0xab, sizeof r->in.token_hash);
    assert_int_equal(run(f, r), 0);
    store_req_free(r);
  }
  assert_int_equal(session_get(f, 0xab, NOW, NULL), PARLEY_EUNAUTHORIZED);
}

static void session_put(struct fx *f, int64_t user, uint8_t hash_byte, int64_t expires_at) {
  struct store_req *r = new_req(STORE_SESSION_CREATE, user, NULL);
  memset(r->in.token_hash, hash_byte, sizeof r->in.token_hash);
  r->in.expires_at = expires_at;
  r->in.now = expires_at - 100; /* made before it expires */
  assert_int_equal(run(f, r), 0);
  store_req_free(r);
}

static struct store_req *session_sweep(struct fx *f, int64_t now, int limit) {
  struct store_req *r = new_req(STORE_SESSION_SWEEP, 0, NULL);
  r->in.now = now;
  r->in.limit = limit;
  assert_int_equal(run(f, r), 0);
  return r;
}

/* The sweep deletes expired sessions only, in batches of `limit`, and says when more are due. */
static void test_session_sweep(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  struct store_req *r;
  session_put(f, ana, 0x01, NOW - 10);
  session_put(f, ana, 0x02, NOW - 5);
  session_put(f, ana, 0x03, NOW);        /* expires_at == now: expired (session_get agrees) */
  session_put(f, ana, 0xab, NOW + 1000); /* live */

  r = session_sweep(f, NOW, 2);
  assert_int_equal(r->out.n_deleted, 2);
  assert_int_equal(r->out.has_more, 1);
  store_req_free(r);
  r = session_sweep(f, NOW, 2);
  assert_int_equal(r->out.n_deleted, 1);
  assert_int_equal(r->out.has_more, 0);
  store_req_free(r);
  r = session_sweep(f, NOW, 2);
  assert_int_equal(r->out.n_deleted, 0);
  store_req_free(r);
  /* The live one is untouched and still works; once expired it goes too. */
  assert_int_equal(session_get(f, 0xab, NOW, NULL), 0);
  r = session_sweep(f, NOW + 1000, 0); /* 0: the largest batch */
  assert_int_equal(r->out.n_deleted, 1);
  store_req_free(r);
  /* Deleted, not only refused: recreating the same token hash works (it is the primary key). */
  session_put(f, ana, 0xab, NOW + 1000);
  assert_int_equal(session_get(f, 0xab, NOW, NULL), 0);
}

/* ---- chats ---- */

static void test_slug_rules(void **state) {
  static const struct {
    const char *title, *slug;
  } cases[] = {
      {"Design Review", "design-review"},
      {"  --Hello,   World!--  ", "hello-world"},
      {"Q3 2024 / Plans", "q3-2024-plans"},
      {"\xc3\x9c" "n" "\xc3\xaf" "code", "n-code"}, /* UTF-8 "Ünïcode": non-ASCII is a separator */
      {"!!!", "chat"},
      {"", "chat"},
      {"ABC", "abc"},
  };
  char out[STORE_SLUG_MAX + 1];
  char longt[200];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    store_slug_derive(cases[i].title, out);
    assert_string_equal(out, cases[i].slug);
    assert_true(store_slug_valid(out));
  }
  store_slug_derive(NULL, out);
  assert_string_equal(out, "chat");

  /* Cut at 48 bytes, never ending on the separator the cut lands next to. */
  memset(longt, 'a', sizeof longt - 1);
  longt[sizeof longt - 1] = '\0';
  store_slug_derive(longt, out);
  assert_int_equal(strlen(out), STORE_SLUG_DERIVED_MAX);
  memset(longt, 'b', 47);
  strcpy(longt + 47, " cdef");
  store_slug_derive(longt, out);
  assert_int_equal(strlen(out), 47);
  assert_true(store_slug_valid(out));

  assert_true(store_slug_valid("a"));
  assert_true(store_slug_valid("design-review-2"));
  assert_false(store_slug_valid(""));
  assert_false(store_slug_valid("-a"));
  assert_false(store_slug_valid("a-"));
  assert_false(store_slug_valid("Design"));
  assert_false(store_slug_valid("a b"));
  assert_false(store_slug_valid("a_b"));
  assert_false(store_slug_valid(NULL));
}

static void test_chat_create_slugs(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  char slug[STORE_SLUG_MAX + 1];
  struct store_req *r;

  assert_int_equal(chat_create(f, ana, "Design Review", 1, 0, NULL, slug), 0);
  assert_string_equal(slug, "design-review");
  assert_int_equal(chat_create(f, ana, "design review!", 1, 0, NULL, slug), 0);
  assert_string_equal(slug, "design-review-2");
  assert_int_equal(chat_create(f, ana, "DESIGN  REVIEW", 0, 0, NULL, slug), 0);
  assert_string_equal(slug, "design-review-3");
  assert_int_equal(chat_create(f, ana, "???", 0, 0, NULL, slug), 0);
  assert_string_equal(slug, "chat");

  /* An explicit slug is used as given, and never silently renamed. */
  assert_int_equal(chat_create(f, ana, "Anything", 0, 0, "ops", slug), 0);
  assert_string_equal(slug, "ops");
  assert_int_equal(chat_create(f, ana, "Other", 0, 0, "design-review", NULL), PARLEY_ECONFLICT);
  assert_int_equal(chat_create(f, ana, "Other", 0, 0, "Bad Slug", NULL), PARLEY_EBAD_REQUEST);
  assert_int_equal(chat_create(f, ana, "Other", 0, 0, "-x", NULL), PARLEY_EBAD_REQUEST);
  assert_int_equal(chat_create(f, ana + 100, "Ghost", 0, 0, NULL, NULL), PARLEY_ENOT_FOUND);

  /* A derived slug that an explicit one already took moves on to the next suffix. */
  assert_int_equal(chat_create(f, ana, "x", 0, 0, "ops-2", NULL), 0);
  assert_int_equal(chat_create(f, ana, "Ops", 0, 0, NULL, slug), 0);
  assert_string_equal(slug, "ops-3");

  r = chat_create_req(ana, "", 0, 0, NULL); /* an empty title is the caller's bug */
  assert_int_equal(run(f, r), PARLEY_EBAD_REQUEST);
  assert_null(r->out.chat.title);
  store_req_free(r);

  r = new_req(STORE_CHAT_GET, ana, "design-review-2");
  assert_int_equal(run(f, r), 0);
  assert_string_equal(r->out.chat.title, "design review!");
  assert_int_equal(r->out.chat.owner_id, ana);
  assert_int_equal(r->out.chat.is_public, 1);
  assert_int_equal(r->out.chat.created_at, NOW);
  assert_int_equal(r->out.chat.last_activity, NOW);
  assert_int_equal(r->out.chat.last_seq, 0);
  store_req_free(r);
}

static void test_chat_join_and_get(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy");
  int joined = -1;
  struct store_req *r;

  assert_int_equal(chat_create(f, ana, "Lobby", 1, 0, NULL, NULL), 0);
  assert_int_equal(chat_create(f, ana, "Secret", 0, 0, NULL, NULL), 0);
  assert_int_equal(chat_create(f, ana, "Pair", 1, 2, NULL, NULL), 0);

  /* Public: anyone joins, once. */
  r = new_req(STORE_CHAT_JOIN, bob, "lobby");
  r->in.now = NOW + 50;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.joined, 1);
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_MEMBER);
  assert_int_equal(r->out.chat.participant_count, 2);
  assert_int_equal(r->out.chat.last_activity, NOW + 50); /* a join is activity */
  store_req_free(r);
  assert_int_equal(join(f, bob, "lobby", &joined), 0);
  assert_int_equal(joined, 0);
  assert_int_equal(join(f, ana, "lobby", &joined), 0); /* the owner, too */
  assert_int_equal(joined, 0);

  /* Private: not without an invitation; to an outsider it does not exist, like an unknown one. */
  assert_int_equal(join(f, bob, "secret", NULL), PARLEY_ENOT_FOUND);
  assert_int_equal(join(f, bob, "no-such-chat", NULL), PARLEY_ENOT_FOUND);

  /* The cap counts the owner: a cap of 2 leaves one seat. */
  assert_int_equal(join(f, bob, "pair", &joined), 0);
  assert_int_equal(joined, 1);
  assert_int_equal(join(f, cy, "pair", NULL), PARLEY_ECHAT_FULL);
  assert_int_equal(join(f, bob, "pair", &joined), 0); /* already in: still fine at the cap */
  assert_int_equal(joined, 0);

  /* chat.get: a public chat is visible to outsiders (role none), a private one does not exist to them. */
  r = new_req(STORE_CHAT_GET, cy, "lobby");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_NONE);
  assert_int_equal(r->out.chat.participant_count, 2);
  store_req_free(r);
  r = new_req(STORE_CHAT_GET, cy, "secret");
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  assert_null(r->out.chat.title); /* nothing leaks out of a refusal */
  assert_int_equal(r->out.chat.id, 0);
  store_req_free(r);
  r = new_req(STORE_CHAT_GET, cy, "nope");
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  store_req_free(r);
}

/* ---- messages ---- */

static void test_msg_append_gap_free(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  struct store_req *r;
  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);
  assert_int_equal(chat_create(f, ana, "Other", 0, 0, NULL, NULL), 0);
  fill_chat(f, ana, "room", 12);
  fill_chat(f, ana, "other", 3); /* seq is per chat */

  r = append_req(ana, "room", "hello", NULL, NOW + 7);
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.msg.seq, 13);
  assert_string_equal(r->out.msg.body, "hello");
  assert_string_equal(r->out.msg.author.username, "ana");
  assert_string_equal(r->out.msg.client_msg_id, "");
  assert_int_equal(r->out.msg.created_at, NOW + 7);
  assert_int_equal(r->out.duplicate, 0);
  assert_int_equal(r->out.chat.last_seq, 13);
  assert_int_equal(r->out.chat.last_activity, NOW + 7);
  store_req_free(r);

  r = append_req(ana, "room", "", NULL, NOW); /* empty body: refused, seq not consumed */
  assert_int_equal(run(f, r), PARLEY_EBAD_REQUEST);
  store_req_free(r);
  r = page(f, STORE_MSG_HISTORY, ana, "room", 0, 100);
  assert_seqs(r, 1, 13);
  assert_int_equal(r->out.chat.last_seq, 13);
  store_req_free(r);
}

/* The WAL stays under store_set_wal_max() while commits write several times that (issue 15: a
 * checkpointer that never checkpointed let it reach 1.6 GB). PostgreSQL has no WAL of ours. */
static void test_wal_bounded(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  const uint64_t max = UINT64_C(1) << 20;
  char body[4000];
  struct store_stats st;
  uint64_t largest = 0;

  memset(body, 'w', sizeof body - 1);
  body[sizeof body - 1] = '\0';
  store_set_wal_max(f->s, max);
  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);
  for (int i = 0; i < 800; i++) { /* ~3 MB of messages alone, one commit each */
    struct store_req *r = append_req(ana, "room", body, NULL, NOW + i);
    assert_int_equal(run(f, r), 0);
    store_req_free(r);
    store_get_stats(f->s, &st);
    if (st.wal_bytes > largest)
      largest = st.wal_bytes;
  }
  store_get_stats(f->s, &st);
  if (f->pg) {
    assert_int_equal(largest, 0);
    assert_int_equal(st.checkpoints_ok + st.wal_forced, 0);
    return;
  }
  assert_int_equal(st.wal_max, max);
  assert_true(largest > 0);
  assert_true(largest <= max);
  assert_true(st.checkpoints_ok + st.wal_forced > 0);
}

static void test_msg_idempotent_retry(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), seq = 0;
  int dup = -1;
  struct store_req *r;

  assert_int_equal(chat_create(f, ana, "Room", 1, 0, NULL, NULL), 0);
  assert_int_equal(join(f, bob, "room", NULL), 0); /* its "joined" notice is seq 1 (issue 17) */
  assert_int_equal(append(f, ana, "room", "first", "c-1", &seq, &dup), 0);
  assert_int_equal(seq, 2);
  assert_int_equal(dup, 0);

  /* The retry carries the same id (even with a different body): the original comes back. */
  r = append_req(ana, "room", "first, edited", "c-1", NOW + 99);
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.duplicate, 1);
  assert_int_equal(r->out.msg.seq, 2);
  assert_string_equal(r->out.msg.body, "first");
  assert_string_equal(r->out.msg.client_msg_id, "c-1");
  assert_int_equal(r->out.msg.created_at, NOW);
  assert_string_equal(r->out.msg.author.username, "ana");
  assert_int_equal(r->out.chat.last_seq, 2);
  store_req_free(r);

  /* The same id from another author, and sends without an id, are new messages. */
  assert_int_equal(append(f, bob, "room", "bob's", "c-1", &seq, &dup), 0);
  assert_int_equal(seq, 3);
  assert_int_equal(dup, 0);
  assert_int_equal(append(f, ana, "room", "no id", NULL, &seq, &dup), 0);
  assert_int_equal(seq, 4);
  assert_int_equal(append(f, ana, "room", "no id", NULL, &seq, &dup), 0);
  assert_int_equal(seq, 5);

  r = page(f, STORE_MSG_HISTORY, ana, "room", 0, 50);
  assert_seqs(r, 1, 5); /* nothing was stored for the retry */
  assert_int_equal(r->out.msgs[0].kind, STORE_KIND_NOTICE);
  assert_string_equal(r->out.msgs[1].body, "first");
  assert_string_equal(r->out.msgs[2].author.username, "bob");
  store_req_free(r);
}

static void test_msg_duplicate_survives_reopen(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), seq = 0;
  int dup = -1;
  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);
  fill_chat(f, ana, "room", 2);
  assert_int_equal(append(f, ana, "room", "keep me", "k-7", &seq, &dup), 0);
  assert_int_equal(seq, 3);

  assert_int_equal(store_reopen(f), 0);

  assert_int_equal(append(f, ana, "room", "keep me", "k-7", &seq, &dup), 0);
  assert_int_equal(seq, 3);
  assert_int_equal(dup, 1);
  assert_int_equal(append(f, ana, "room", "next", "k-8", &seq, &dup), 0);
  assert_int_equal(seq, 4);
  assert_int_equal(dup, 0);
}

static void test_msg_access(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), eve = mk_user(f, "eve");
  struct store_req *r;
  assert_int_equal(chat_create(f, ana, "Open", 1, 0, NULL, NULL), 0);
  assert_int_equal(chat_create(f, ana, "Closed", 0, 0, NULL, NULL), 0);
  assert_int_equal(append(f, ana, "open", "hi", NULL, NULL, NULL), 0);

  /* Public does not mean writable or readable: only participants. */
  assert_int_equal(append(f, eve, "open", "spam", NULL, NULL, NULL), PARLEY_EFORBIDDEN);
  assert_int_equal(append(f, eve, "closed", "spam", NULL, NULL, NULL), PARLEY_ENOT_FOUND);
  assert_int_equal(append(f, ana, "missing", "hi", NULL, NULL, NULL), PARLEY_ENOT_FOUND);
  r = page(f, STORE_MSG_HISTORY, eve, "open", 0, 10);
  assert_int_equal(r->status, PARLEY_EFORBIDDEN);
  assert_null(r->out.msgs);
  store_req_free(r);
  r = page(f, STORE_MSG_SINCE, eve, "open", 0, 10);
  assert_int_equal(r->status, PARLEY_EFORBIDDEN);
  store_req_free(r);
  r = new_req(STORE_READ_SET, eve, "open");
  r->in.seq = 1;
  assert_int_equal(run(f, r), PARLEY_EFORBIDDEN);
  store_req_free(r);

  /* After joining, the same sender may write. */
  assert_int_equal(join(f, eve, "open", NULL), 0);
  assert_int_equal(append(f, eve, "open", "hello", NULL, NULL, NULL), 0);
}

static void test_msg_history_paging(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  struct store_req *r;
  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);

  r = page(f, STORE_MSG_HISTORY, ana, "room", 0, 10); /* empty chat */
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.n_msgs, 0);
  assert_int_equal(r->out.has_more, 0);
  store_req_free(r);

  fill_chat(f, ana, "room", 25);
  r = page(f, STORE_MSG_HISTORY, ana, "room", 0, 10);
  assert_seqs(r, 16, 25);
  assert_int_equal(r->out.has_more, 1);
  assert_string_equal(r->out.msgs[0].body, "message 16");
  store_req_free(r);
  r = page(f, STORE_MSG_HISTORY, ana, "room", 16, 10);
  assert_seqs(r, 6, 15);
  assert_int_equal(r->out.has_more, 1);
  store_req_free(r);
  r = page(f, STORE_MSG_HISTORY, ana, "room", 6, 10);
  assert_seqs(r, 1, 5);
  assert_int_equal(r->out.has_more, 0);
  store_req_free(r);
  r = page(f, STORE_MSG_HISTORY, ana, "room", 11, 10); /* exactly the rest: no more */
  assert_seqs(r, 1, 10);
  assert_int_equal(r->out.has_more, 0);
  store_req_free(r);

  r = page(f, STORE_MSG_HISTORY, ana, "room", 0, 0);
  assert_int_equal(r->status, PARLEY_EBAD_REQUEST);
  store_req_free(r);
  r = page(f, STORE_MSG_HISTORY, ana, "room", 0, STORE_LIMIT_MAX + 1);
  assert_int_equal(r->status, PARLEY_EBAD_REQUEST);
  store_req_free(r);
}

static void test_msg_since(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  struct store_req *r;
  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);
  fill_chat(f, ana, "room", 25);

  r = page(f, STORE_MSG_SINCE, ana, "room", 20, 10);
  assert_seqs(r, 21, 25);
  assert_int_equal(r->out.reset, 0);
  assert_int_equal(r->out.chat.last_seq, 25);
  store_req_free(r);
  r = page(f, STORE_MSG_SINCE, ana, "room", 15, 10); /* exactly `limit` missed: no reset */
  assert_seqs(r, 16, 25);
  assert_int_equal(r->out.reset, 0);
  store_req_free(r);
  r = page(f, STORE_MSG_SINCE, ana, "room", 14, 10); /* one more: reset, newest 10 */
  assert_seqs(r, 16, 25);
  assert_int_equal(r->out.reset, 1);
  store_req_free(r);
  r = page(f, STORE_MSG_SINCE, ana, "room", 0, 10);
  assert_seqs(r, 16, 25);
  assert_int_equal(r->out.reset, 1);
  store_req_free(r);
  r = page(f, STORE_MSG_SINCE, ana, "room", 25, 10); /* up to date */
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.n_msgs, 0);
  assert_int_equal(r->out.reset, 0);
  assert_int_equal(r->out.chat.last_seq, 25);
  store_req_free(r);
  r = page(f, STORE_MSG_SINCE, ana, "room", INT64_C(1) << 53, 10); /* "from now on" */
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.n_msgs, 0);
  assert_int_equal(r->out.reset, 0);
  assert_int_equal(r->out.chat.last_seq, 25);
  store_req_free(r);
}

static struct store_req *chat_list(struct fx *f, int64_t user) {
  struct store_req *r = new_req(STORE_CHAT_LIST, user, NULL);
  assert_int_equal(run(f, r), 0);
  return r;
}

static int64_t read_set(struct fx *f, int64_t user, const char *slug, int64_t seq) {
  struct store_req *r = new_req(STORE_READ_SET, user, slug);
  int64_t out;
  r->in.seq = seq;
  assert_int_equal(run(f, r), 0);
  assert_string_equal(r->out.chat.slug, slug);
  out = r->out.read_seq;
  store_req_free(r);
  return out;
}

static void test_read_markers_and_chat_list(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob");
  struct store_req *r;

  assert_int_equal(chat_create(f, ana, "Alpha", 1, 0, NULL, NULL), 0);
  assert_int_equal(chat_create(f, ana, "Beta", 1, 0, NULL, NULL), 0);
  assert_int_equal(chat_create(f, ana, "Gamma", 0, 0, NULL, NULL), 0); /* bob is not in it */
  assert_int_equal(join(f, bob, "alpha", NULL), 0);
  assert_int_equal(join(f, bob, "beta", NULL), 0);

  /* alpha gets 3 messages at NOW+10..12 (seq 2..4, after bob's "joined" notice), beta only
   * its notice: unread and lastMessage count text messages only (issue 17). */
  for (int i = 0; i < 3; i++) {
    r = append_req(ana, "alpha", i == 2 ? "latest" : "older", NULL, NOW + 10 + i);
    assert_int_equal(run(f, r), 0);
    store_req_free(r);
  }

  r = chat_list(f, bob);
  assert_int_equal(r->out.n_chats, 2);
  assert_string_equal(r->out.chats[0].slug, "alpha"); /* most recent activity first */
  assert_int_equal(r->out.chats[0].my_role, CHAT_ROLE_MEMBER);
  assert_int_equal(r->out.chats[0].participant_count, 2);
  assert_int_equal(r->out.unread[0], 3);
  assert_int_equal(r->out.last_msgs[0].seq, 4);
  assert_string_equal(r->out.last_msgs[0].body, "latest");
  assert_string_equal(r->out.last_msgs[0].author.username, "ana");
  assert_string_equal(r->out.chats[1].slug, "beta");
  assert_int_equal(r->out.unread[1], 0);
  assert_int_equal(r->out.last_msgs[1].seq, 0); /* no message yet */
  assert_null(r->out.last_msgs[1].body);
  store_req_free(r);

  /* The marker moves forward only, and never past the newest message. */
  assert_int_equal(read_set(f, bob, "alpha", 2), 2);
  r = chat_list(f, bob);
  assert_int_equal(r->out.unread[0], 2);
  store_req_free(r);
  assert_int_equal(read_set(f, bob, "alpha", 1), 2);
  r = chat_list(f, bob);
  assert_int_equal(r->out.unread[0], 2);
  store_req_free(r);
  assert_int_equal(read_set(f, bob, "alpha", 99), 4);
  r = chat_list(f, bob);
  assert_int_equal(r->out.unread[0], 0);
  store_req_free(r);
  /* ana's marker is her own, untouched by bob's reads; she wrote all three messages, and her
   * own messages are never unread. */
  r = chat_list(f, ana);
  assert_int_equal(r->out.n_chats, 3);
  assert_string_equal(r->out.chats[0].slug, "alpha");
  assert_int_equal(r->out.chats[0].my_role, CHAT_ROLE_OWNER);
  assert_int_equal(r->out.unread[0], 0);
  store_req_free(r);

  /* A send into beta makes it the most recent. */
  r = append_req(bob, "beta", "wake up", NULL, NOW + 100);
  assert_int_equal(run(f, r), 0);
  store_req_free(r);
  r = chat_list(f, bob);
  assert_string_equal(r->out.chats[0].slug, "beta");
  assert_int_equal(r->out.chats[0].last_activity, NOW + 100);
  assert_string_equal(r->out.last_msgs[0].body, "wake up");
  assert_string_equal(r->out.chats[1].slug, "alpha");
  store_req_free(r);

  r = chat_list(f, mk_user(f, "newbie"));
  assert_int_equal(r->out.n_chats, 0);
  store_req_free(r);
}

/* ---- batching ---- */

struct tracker {
  int n;
  struct store_req *order[256];
};

static void on_track(struct store_req *req) {
  struct tracker *t = req->data;
  t->order[t->n++] = req;
}

static void wait_tracker(struct fx *f, struct tracker *t, int n) {
  uint64_t deadline = uv_hrtime() + UINT64_C(10000000000);
  while (t->n < n) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (t->n >= n)
      break;
    if (uv_hrtime() > deadline)
      fail_msg("timed out: %d of %d callbacks", t->n, n);
    uv_sleep(1);
  }
}

static void test_group_commit_order(void **state) {
  struct fx *f = *state;
  enum { N = 100 };
  int64_t ana = mk_user(f, "ana");
  struct store_req *reqs[N];
  struct tracker t = {0};
  struct store_stats before, after;

  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);
  store_get_stats(f->s, &before);
  for (int i = 0; i < N; i++) {
    char cmid[16];
    snprintf(cmid, sizeof cmid, "m-%d", i);
    reqs[i] = append_req(ana, "room", "burst", cmid, NOW);
    assert_int_equal(store_submit(f->s, reqs[i], on_track, &t), 0);
  }
  assert_int_equal(t.n, 0); /* nothing runs before the loop does */
  wait_tracker(f, &t, N);
  for (int i = 0; i < N; i++) {
    assert_ptr_equal(t.order[i], reqs[i]); /* completions in submission order */
    assert_int_equal(reqs[i]->status, 0);
    assert_int_equal(reqs[i]->out.msg.seq, i + 1); /* and seqs in that order, without gaps */
    store_req_free(reqs[i]);
  }
  store_get_stats(f->s, &after);
  assert_int_equal(after.requests - before.requests, N);
  assert_true(after.batches - before.batches < N); /* some requests shared a commit */
  assert_true(after.batches - before.batches >= 1);
  assert_int_equal(store_pending(f->s), 0);
}

/* Holds the store thread at BEGIN of the batch that contains `first`, then submits `rest` so
 * they all queue up behind it and form exactly one second batch. */
static void submit_behind_gate(struct fx *f, struct store_req *first, struct store_req **rest,
                               int n, struct tracker *t) {
  atomic_store(&g_gate_armed, 1);
  assert_int_equal(store_submit(f->s, first, on_track, t), 0);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* the end of the turn, where the store thread is woken */
  uv_sem_wait(&g_gate_entered);
  for (int i = 0; i < n; i++)
    assert_int_equal(store_submit(f->s, rest[i], on_track, t), 0);
  assert_int_equal(store_pending(f->s), (size_t)n + 1);
  uv_sem_post(&g_gate_release);
}

static void test_batch_failure_is_isolated(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), eve = mk_user(f, "eve");
  struct store_req *first, *rest[7];
  struct tracker t = {0};
  struct store_stats before, after;

  assert_int_equal(chat_create(f, ana, "Room", 1, 0, NULL, NULL), 0);
  store_get_stats(f->s, &before);
  first = new_req(STORE_CHAT_GET, ana, "room");
  rest[0] = append_req(ana, "room", "one", NULL, NOW);
  rest[1] = append_req(eve, "room", "intruder", NULL, NOW);       /* forbidden */
  rest[2] = append_req(ana, "room", FAIL_AFTER_WRITE, NULL, NOW); /* wrote seq 2, then failed */
  rest[3] = append_req(ana, "nowhere", "lost", NULL, NOW);        /* not found */
  rest[4] = append_req(ana, "room", "two", NULL, NOW);            /* takes seq 2 after the undo */
  rest[5] = append_req(ana, "room", "three", "x", NOW);
  rest[6] = append_req(ana, "room", "three again", "x", NOW);     /* sees rest[5] in the batch */
  submit_behind_gate(f, first, rest, 7, &t);
  wait_tracker(f, &t, 8);

  store_get_stats(f->s, &after);
  assert_int_equal(after.batches - before.batches, 2);
  assert_int_equal(after.requests - before.requests, 8);
  assert_ptr_equal(t.order[0], first);
  for (int i = 0; i < 7; i++)
    assert_ptr_equal(t.order[i + 1], rest[i]);

  assert_int_equal(first->status, 0);
  assert_int_equal(rest[0]->status, 0);
  assert_int_equal(rest[0]->out.msg.seq, 1);
  assert_int_equal(rest[1]->status, PARLEY_EFORBIDDEN);
  assert_int_equal(rest[2]->status, PARLEY_EINTERNAL);
  assert_int_equal(rest[2]->out.msg.seq, 0); /* its half-made result was cleared */
  assert_null(rest[2]->out.msg.body);
  assert_null(rest[2]->out.chat.title);
  assert_int_equal(rest[3]->status, PARLEY_ENOT_FOUND);
  assert_int_equal(rest[4]->status, 0);
  assert_int_equal(rest[4]->out.msg.seq, 2);
  assert_int_equal(rest[5]->status, 0);
  assert_int_equal(rest[5]->out.msg.seq, 3);
  assert_int_equal(rest[6]->status, 0);
  assert_int_equal(rest[6]->out.duplicate, 1);
  assert_int_equal(rest[6]->out.msg.seq, 3);
  store_req_free(first);
  for (int i = 0; i < 7; i++)
    store_req_free(rest[i]);

  /* Committed: exactly the three good messages, and the undone one is gone. */
  assert_int_equal(store_reopen(f), 0);
  struct store_req *r = page(f, STORE_MSG_HISTORY, ana, "room", 0, 50);
  assert_seqs(r, 1, 3);
  assert_string_equal(r->out.msgs[0].body, "one");
  assert_string_equal(r->out.msgs[1].body, "two");
  assert_string_equal(r->out.msgs[2].body, "three");
  store_req_free(r);
}

/* The same isolation when the backend runs the batch itself (PostgreSQL sends its sends and read
 * markers in one pipeline): a send that the database refuses in the middle (PostgreSQL rejects
 * invalid UTF-8; SQLite stores the bytes as they are) fails alone, and everything after it, the
 * duplicate of a send before it included, still runs once. */
static void test_pipelined_batch_failure_is_isolated(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), eve = mk_user(f, "eve");
  const int64_t shift = f->pg ? 0 : 1; /* SQLite also stored the invalid body */
  struct store_req *first, *rest[8], *r;
  struct tracker t = {0};
  struct store_stats before, after;

  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);
  store_get_stats(f->s, &before);
  first = new_req(STORE_CHAT_GET, ana, "room");
  rest[0] = append_req(ana, "room", "one", NULL, NOW);
  rest[1] = append_req(ana, "room", "bad \xff\xfe", NULL, NOW);
  rest[2] = append_req(eve, "room", "intruder", NULL, NOW); /* not_found: a private chat */
  rest[3] = append_req(ana, "room", "two", "x", NOW);
  rest[4] = new_req(STORE_READ_SET, ana, "room");
  rest[4]->in.seq = 1;
  rest[5] = new_req(STORE_CHAT_GET, ana, "room"); /* not pipelined: splits the run */
  rest[6] = append_req(ana, "room", "two again", "x", NOW);
  rest[7] = append_req(ana, "room", "three", NULL, NOW);
  submit_behind_gate(f, first, rest, 8, &t);
  wait_tracker(f, &t, 9);

  store_get_stats(f->s, &after);
  assert_int_equal(after.batches - before.batches, 2);
  for (int i = 0; i < 8; i++)
    assert_ptr_equal(t.order[i + 1], rest[i]);
  assert_int_equal(first->status, 0);
  assert_int_equal(rest[0]->status, 0);
  assert_int_equal(rest[0]->out.msg.seq, 1);
  if (f->pg) {
    assert_int_equal(rest[1]->status, PARLEY_EBAD_REQUEST);
    assert_int_equal(rest[1]->out.msg.seq, 0);
    assert_null(rest[1]->out.chat.title);
  } else {
    assert_int_equal(rest[1]->status, 0);
    assert_int_equal(rest[1]->out.msg.seq, 2);
  }
  assert_int_equal(rest[2]->status, PARLEY_ENOT_FOUND);
  assert_int_equal(rest[3]->status, 0);
  assert_int_equal(rest[3]->out.msg.seq, 2 + shift);
  assert_int_equal(rest[3]->out.duplicate, 0);
  assert_int_equal(rest[4]->status, 0);
  assert_int_equal(rest[4]->out.read_seq, 2 + shift); /* own messages are read already */
  assert_int_equal(rest[5]->status, 0);
  assert_int_equal(rest[6]->status, 0);
  assert_int_equal(rest[6]->out.duplicate, 1);
  assert_int_equal(rest[6]->out.msg.seq, 2 + shift);
  assert_string_equal(rest[6]->out.msg.body, "two");
  assert_int_equal(rest[7]->status, 0);
  assert_int_equal(rest[7]->out.msg.seq, 3 + shift);
  assert_int_equal(rest[7]->out.chat.last_seq, 3 + shift);
  store_req_free(first);
  for (int i = 0; i < 8; i++)
    store_req_free(rest[i]);

  assert_int_equal(store_reopen(f), 0);
  r = page(f, STORE_MSG_HISTORY, ana, "room", 0, 50);
  assert_seqs(r, 1, 3 + shift);
  assert_string_equal(r->out.msgs[0].body, "one");
  assert_string_equal(r->out.msgs[1 + shift].body, "two");
  assert_string_equal(r->out.msgs[2 + shift].body, "three");
  store_req_free(r);
}

static void test_commit_failure_fails_whole_batch(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), seq = 0;
  struct store_req *first, *rest[3];
  struct tracker t = {0};
  struct store_req *r;

  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);
  atomic_store(&g_fail_commit, 1);
  first = append_req(ana, "room", "a", NULL, NOW);
  rest[0] = append_req(ana, "room", "b", "id-b", NOW);
  rest[1] = append_req(ana, "nowhere", "c", NULL, NOW); /* failed on its own, too */
  rest[2] = new_req(STORE_CHAT_LIST, ana, NULL);
  submit_behind_gate(f, first, rest, 3, &t);
  wait_tracker(f, &t, 4);
  atomic_store(&g_fail_commit, 0);

  for (int i = 0; i < 4; i++) {
    struct store_req *q = t.order[i];
    assert_int_equal(q->status, PARLEY_EUNAVAILABLE);
    assert_int_equal(q->out.msg.seq, 0);
    assert_null(q->out.msg.body);
    assert_null(q->out.chat.title);
    assert_int_equal(q->out.chat.last_seq, 0);
    assert_int_equal(q->out.n_chats, 0);
    assert_null(q->out.chats);
  }
  store_req_free(first);
  for (int i = 0; i < 3; i++)
    store_req_free(rest[i]);

  /* Nothing of the failed batch exists: the retry of "b" is new, and seq restarts at 1. */
  int dup = -1;
  assert_int_equal(append(f, ana, "room", "b", "id-b", &seq, &dup), 0);
  assert_int_equal(seq, 1);
  assert_int_equal(dup, 0);

  /* A failed BEGIN is reported the same way. */
  atomic_store(&g_fail_begin, 1);
  r = append_req(ana, "room", "c", NULL, NOW);
  assert_int_equal(run(f, r), PARLEY_EUNAVAILABLE);
  assert_int_equal(r->out.msg.seq, 0);
  store_req_free(r);
  atomic_store(&g_fail_begin, 0);
  assert_int_equal(append(f, ana, "room", "c", NULL, &seq, NULL), 0);
  assert_int_equal(seq, 2);
}

/* ---- lifecycle ---- */

static void test_close_drains_queue(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  struct store_req *reqs[5], *late;
  struct tracker t = {0};
  int closed = 0;

  assert_int_equal(chat_create(f, ana, "Room", 0, 0, NULL, NULL), 0);
  for (int i = 0; i < 5; i++) {
    reqs[i] = append_req(ana, "room", "queued", NULL, NOW);
    assert_int_equal(store_submit(f->s, reqs[i], on_track, &t), 0);
  }
  store_close(f->s, on_closed, &closed);
  late = append_req(ana, "room", "too late", NULL, NOW);
  assert_int_equal(store_submit(f->s, late, on_track, &t), PARLEY_EUNAVAILABLE);
  store_req_free(late); /* refused: still ours */
  pump(f, &closed);
  f->s = NULL;
  assert_int_equal(t.n, 5); /* every queued callback ran before `done` */
  for (int i = 0; i < 5; i++) {
    assert_int_equal(reqs[i]->status, 0);
    assert_int_equal(reqs[i]->out.msg.seq, i + 1);
    store_req_free(reqs[i]);
  }
  assert_int_equal(store_reopen(f), 0);
  struct store_req *r = page(f, STORE_MSG_SINCE, ana, "room", 0, 10);
  assert_seqs(r, 1, 5);
  store_req_free(r);
}

static void test_schema_and_open_errors(void **state) {
  struct fx *f = *state;
  struct store *s = NULL;
  char bad[200];

  store_close_wait(f);
  assert_int_equal(fx_sql_int(f, "SELECT max(version) FROM schema_version"),
                   store__migrations[store__migrations_count - 1].version);
  if (!f->pg) {
    /* SQLite only: readers never block the writer. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  /* The indexes the queries rely on. */
  assert_int_equal(fx_index_count(f, "'participants_by_user', 'messages_by_client_id',"
                                     " 'sessions_by_user'"),
                   3);

  /* Reopening an up-to-date database applies nothing and works. */
  assert_int_equal(store_reopen(f), 0);
  store_close_wait(f);
  assert_int_equal(fx_sql_int(f, "SELECT count(*) FROM schema_version"),
                   (int64_t)store__migrations_count);

  /* A database from a newer binary is refused rather than written to. */
  assert_int_equal(fx_sql_exec(f, "INSERT INTO schema_version VALUES (9999, 'from the future', 0)"),
                   0);
  assert_int_equal(store_open(&s, &f->loop, f->path, STORE_DURABILITY_FSYNC, 0), PARLEY_EINTERNAL);
  assert_null(s);

  /* A database that cannot be reached is unavailable (retry later), on either backend. */
  snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", f->dir);
  assert_int_equal(store_open(&s, &f->loop, bad, STORE_DURABILITY_NORMAL, 0), PARLEY_EUNAVAILABLE);
  assert_int_equal(store_open(&s, &f->loop, "postgres://parley@127.0.0.1:1/parley?connect_timeout=2",
                              STORE_DURABILITY_NORMAL, 0),
                   PARLEY_EUNAVAILABLE);
  assert_null(s);
}

/* ---- two nodes on one database ---- */

/* Several Parley nodes share one PostgreSQL database; SQLite allows it too (one writer at a time,
 * the other waits on the lock), so these run against both backends. */

#define NODE_SENDS 150 /* per node */
#define NODE_IDS 20    /* clientMsgIds sent through both nodes */
#define NODE_CROSSED 40

struct counter {
  int n;
};

static void on_count(struct store_req *req) {
  ((struct counter *)req->data)->n++;
}

static void wait_count(struct fx *f, const struct counter *c, int n) {
  uint64_t deadline = uv_hrtime() + UINT64_C(60000000000);
  while (c->n < n) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (c->n >= n)
      break;
    if (uv_hrtime() > deadline)
      fail_msg("timed out: %d of %d callbacks", c->n, n);
    uv_sleep(1);
  }
}

/* A second store on the fixture's database, on the same loop: another node. */
static struct store *node_open(struct fx *f) {
  struct store *s2 = NULL;
  assert_int_equal(store_open(&s2, &f->loop, f->path, STORE_DURABILITY_NORMAL, 0), 0);
  return s2;
}

static void node_close(struct fx *f, struct store *s2) {
  int done = 0;
  store_close(s2, on_closed, &done);
  pump(f, &done);
}

static int64_t chat_last_seq(struct fx *f, const char *slug) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT last_seq FROM chats WHERE slug = '%s'", slug);
  return fx_sql_int(f, sql);
}

static int64_t chat_msg_count(struct fx *f, const char *slug) {
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM messages m JOIN chats c ON c.id = m.chat_id WHERE c.slug = '%s'",
           slug);
  return fx_sql_int(f, sql);
}

/* Two nodes append to one chat at once: seqs 1..N exactly, each once, all stored. */
static void test_two_nodes_append_gap_free(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob");
  struct store *s2 = node_open(f);
  static struct store_req *reqs[2 * NODE_SENDS];
  char seen[2 * NODE_SENDS + 2] = {0};
  struct counter c = {0};
  struct store_req *r;

  assert_int_equal(chat_create(f, ana, "Room", 1, 0, "room", NULL), 0);
  assert_int_equal(join(f, bob, "room", NULL), 0); /* seq 1: the "joined" notice (issue 17) */
  for (int i = 0; i < 2 * NODE_SENDS; i++) {
    reqs[i] = append_req(i % 2 ? bob : ana, "room", "hello", NULL, NOW + i);
    assert_int_equal(store_submit(i % 2 ? s2 : f->s, reqs[i], on_count, &c), 0);
  }
  wait_count(f, &c, 2 * NODE_SENDS);
  for (int i = 0; i < 2 * NODE_SENDS; i++) {
    int64_t seq = reqs[i]->out.msg.seq;
    assert_int_equal(reqs[i]->status, 0);
    assert_in_range(seq, 2, 2 * NODE_SENDS + 1);
    assert_int_equal(seen[seq], 0); /* no duplicate */
    seen[seq] = 1;
    store_req_free(reqs[i]);
  }
  node_close(f, s2);
  assert_int_equal(chat_last_seq(f, "room"), 2 * NODE_SENDS + 1);
  assert_int_equal(chat_msg_count(f, "room"), 2 * NODE_SENDS + 1);
  r = page(f, STORE_MSG_SINCE, bob, "room", 0, 1000);
  assert_seqs(r, 1, 2 * NODE_SENDS + 1); /* no gap */
  store_req_free(r);
}

/* The same clientMsgId sent through both nodes at once (a client that retried on another node)
 * is stored once; both answers carry the original. */
static void test_two_nodes_same_client_msg_id(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  struct store *s2 = node_open(f);
  static struct store_req *reqs[2 * NODE_IDS];
  struct counter c = {0};
  char cmid[32];

  assert_int_equal(chat_create(f, ana, "Room", 0, 0, "room", NULL), 0);
  for (int i = 0; i < 2 * NODE_IDS; i++) {
    snprintf(cmid, sizeof cmid, "retry-%d", i / 2);
    reqs[i] = append_req(ana, "room", cmid, cmid, NOW + i);
    assert_int_equal(store_submit(i % 2 ? s2 : f->s, reqs[i], on_count, &c), 0);
  }
  wait_count(f, &c, 2 * NODE_IDS);
  for (int i = 0; i < NODE_IDS; i++) {
    struct store_req *a = reqs[2 * i], *b = reqs[2 * i + 1];
    assert_int_equal(a->status, 0);
    assert_int_equal(b->status, 0);
    assert_int_equal(a->out.msg.seq, b->out.msg.seq);
    assert_int_equal(a->out.duplicate + b->out.duplicate, 1);
    assert_string_equal(a->out.msg.client_msg_id, b->out.msg.client_msg_id);
    store_req_free(a);
    store_req_free(b);
  }
  node_close(f, s2);
  assert_int_equal(chat_msg_count(f, "room"), NODE_IDS);
  assert_int_equal(chat_last_seq(f, "room"), NODE_IDS);
}

/* PostgreSQL: a batch never waits for one chat's lock while it holds others. Another node
 * (here a plain connection) holds "busy"'s row lock in an open transaction; a send to "busy" and
 * a send to "free" are submitted together. The send to "free" is committed while "busy" is still
 * locked (it was not held back behind it); the one to "busy" was deferred to later batches, and
 * once the lock is released it is stored with the next seq. */
static void test_pg_busy_chat_is_deferred(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  struct counter c = {0};
  struct store_req *busy, *free_;
  PGconn *other;
  PGresult *res;

  assert_true(f->pg);
  assert_int_equal(chat_create(f, ana, "Busy", 0, 0, "busy", NULL), 0);
  assert_int_equal(chat_create(f, ana, "Free", 0, 0, "free", NULL), 0);
  other = PQconnectdb(f->path);
  assert_int_equal(PQstatus(other), CONNECTION_OK);
  res = PQexec(other, "BEGIN; SELECT id FROM chats WHERE slug = 'busy' FOR NO KEY UPDATE");
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);

  busy = append_req(ana, "busy", "waits", NULL, NOW);
  free_ = append_req(ana, "free", "goes", NULL, NOW);
  assert_int_equal(store_submit(f->s, busy, on_count, &c), 0);
  assert_int_equal(store_submit(f->s, free_, on_count, &c), 0);
  wait_count(f, &c, 1);
  assert_int_equal(c.n, 1); /* "busy" cannot have completed: its lock is still held */
  assert_int_equal(free_->status, 0);
  assert_int_equal(free_->out.msg.seq, 1);

  res = PQexec(other, "COMMIT");
  assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
  PQclear(res);
  PQfinish(other);
  wait_count(f, &c, 2);
  assert_int_equal(busy->status, 0);
  assert_int_equal(busy->out.msg.seq, 1);
  assert_true(busy->defers >= 1);
  store_req_free(busy);
  store_req_free(free_);
}

/* Two nodes append to two chats in opposite orders, in batches formed while both store threads
 * are held at BEGIN, so on PostgreSQL their transactions deadlock (SQLite serializes them). A
 * request that loses is reported (unavailable), never half-stored, and the rest of its batch
 * fails fast instead of deadlocking again: each chat's stored seqs are exactly the acknowledged
 * ones, 1..k without a gap. */
static void test_two_nodes_crossed_chats(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana");
  struct store *s2 = NULL;
  static struct store_req *reqs[2 * NODE_CROSSED];
  static const char *const slugs[2] = {"alpha", "beta"};
  struct store_req *primer[2];
  char seen[2][2 * NODE_CROSSED + 2];
  int64_t ok[2] = {0, 0};
  int failed = 0;
  struct counter c = {0};

  memset(seen, 0, sizeof seen);
  assert_int_equal(chat_create(f, ana, "Alpha", 0, 0, "alpha", NULL), 0);
  assert_int_equal(chat_create(f, ana, "Beta", 0, 0, "beta", NULL), 0);
  assert_int_equal(store_open_backend(&s2, &f->loop, &fault_ops, f->path,
                                      STORE_DURABILITY_NORMAL, 0),
                   0);
  /* Both threads take a one-request batch and wait at BEGIN; meanwhile the crossed requests queue
   * up behind them and become each node's next batch. */
  atomic_store(&g_gate_armed, 2);
  for (int node = 0; node < 2; node++) {
    primer[node] = append_req(ana, slugs[node], "primer", NULL, NOW);
    assert_int_equal(store_submit(node ? s2 : f->s, primer[node], on_count, &c), 0);
  }
  uv_run(&f->loop, UV_RUN_NOWAIT); /* the end of the turn, where both stores' threads are woken */
  uv_sem_wait(&g_gate_entered);
  uv_sem_wait(&g_gate_entered);
  /* On PostgreSQL each node's first request takes its chat's lock and waits for the other's:
   * the second requests then certainly deadlock. (SQLite's second writer waits at BEGIN, so it
   * would never reach the barrier.) */
  if (f->pg) {
    assert_int_equal(uv_barrier_init(&g_barrier, 2), 0);
    atomic_store(&g_barrier_on, 1);
  }
  for (int i = 0; i < 2 * NODE_CROSSED; i++) {
    int node = i % 2, k = (i / 2) % 2;
    reqs[i] = append_req(ana, slugs[node ? 1 - k : k], i < 2 && f->pg ? "BARRIER" : "x", NULL,
                         NOW + i);
    assert_int_equal(store_submit(node ? s2 : f->s, reqs[i], on_count, &c), 0);
  }
  uv_sem_post(&g_gate_release);
  uv_sem_post(&g_gate_release);
  wait_count(f, &c, 2 * NODE_CROSSED + 2);
  if (f->pg) {
    atomic_store(&g_barrier_on, 0);
    uv_barrier_destroy(&g_barrier);
  }
  for (int node = 0; node < 2; node++) {
    assert_int_equal(primer[node]->status, 0);
    seen[node][primer[node]->out.msg.seq] = 1;
    ok[node]++;
    store_req_free(primer[node]);
  }
  for (int i = 0; i < 2 * NODE_CROSSED; i++) {
    struct store_req *r = reqs[i];
    int chat = strcmp(r->in.slug, "alpha") == 0 ? 0 : 1;
    if (r->status == 0) {
      assert_in_range(r->out.msg.seq, 1, 2 * NODE_CROSSED + 1);
      assert_int_equal(seen[chat][r->out.msg.seq], 0);
      seen[chat][r->out.msg.seq] = 1;
      ok[chat]++;
    } else {
      assert_int_equal(r->status, PARLEY_EUNAVAILABLE);
      assert_int_equal(r->out.msg.seq, 0);
      failed++;
    }
    store_req_free(r);
  }
  node_close(f, s2);
  for (int k = 0; k < 2; k++) {
    assert_int_equal(chat_last_seq(f, slugs[k]), ok[k]);
    assert_int_equal(chat_msg_count(f, slugs[k]), ok[k]);
    for (int64_t seq = 1; seq <= ok[k]; seq++)
      assert_int_equal(seen[k][seq], 1);
  }
  if (f->pg)
    assert_true(failed > 0); /* the deadlock happened, and was reported */
  else
    assert_int_equal(failed, 0); /* one writer at a time: nothing to lose */
  print_message("crossed chats: %d of %d requests lost a deadlock and were reported\n", failed,
                2 * NODE_CROSSED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slug_rules),
      cmocka_unit_test_setup_teardown(test_user_create_and_conflict, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_session_lifecycle, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_session_sweep, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_chat_create_slugs, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_chat_join_and_get, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_msg_append_gap_free, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_msg_idempotent_retry, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_wal_bounded, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_msg_duplicate_survives_reopen, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_msg_access, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_msg_history_paging, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_msg_since, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_read_markers_and_chat_list, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_group_commit_order, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_batch_failure_is_isolated, fx_setup_faulty,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_pipelined_batch_failure_is_isolated,
                                      fx_setup_faulty_batch, fx_teardown),
      cmocka_unit_test_setup_teardown(test_commit_failure_fails_whole_batch, fx_setup_faulty,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_close_drains_queue, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_schema_and_open_errors, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_two_nodes_append_gap_free, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_two_nodes_same_client_msg_id, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_two_nodes_crossed_chats, fx_setup_faulty, fx_teardown),
  };
  /* Behaviour only PostgreSQL has (several writers): these run in the PostgreSQL pass only. */
  const struct CMUnitTest pg_tests[] = {
      cmocka_unit_test_setup_teardown(test_pg_busy_chat_is_deferred, fx_setup, fx_teardown),
  };
  int failed;
  log_set_level(LOG_ERROR); /* the expected warnings of the fault tests are noise here */
  if (uv_sem_init(&g_gate_entered, 0) != 0 || uv_sem_init(&g_gate_release, 0) != 0)
    return 1;
  failed = cmocka_run_group_tests(tests, NULL, NULL);
  if (getenv("PARLEY_TEST_PG") && *getenv("PARLEY_TEST_PG"))
    failed += cmocka_run_group_tests_name("postgresql", pg_tests, NULL, NULL);
  return failed;
}
