/* store.c - the backend-independent half of the store: request memory, the queue, the store
 * thread with group commit, and the hand-off of completions to the loop thread.
 *
 * The loop thread appends requests to a FIFO under a mutex and signals a condition variable. The
 * store thread takes everything queued at once and runs it as one transaction, a savepoint per
 * request, so a batch of a hundred sends costs one commit (one fsync with durability=fsync)
 * instead of a hundred, and one failing request rolls back only itself. The finished batch goes
 * to a completion list and a uv_async_t wakes the loop, which calls the callbacks in submission
 * order. The backend is touched by the store thread only, from open to close.
 */
#include "store/store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/hist.h"
#include "common/log.h"

struct store {
  uv_loop_t *loop;
  const struct store_backend_ops *ops;
  void *be;                 /* backend state, owned by the store thread */
  char *uri;                /* copy, read by the thread at open */
  enum store_durability durability;

  uv_thread_t thread;
  uv_mutex_t mu;            /* guards everything below */
  uv_cond_t work;           /* new request, or closing */
  uv_cond_t opened;         /* the thread finished opening the backend */
  uv_async_t async;         /* completions ready, or the thread ended */
  int async_ready;          /* async was initialised: the thread may send on it */

  struct store_req *q_head, *q_tail; /* submitted, not yet taken by the thread */
  size_t queued;
  size_t executing;         /* taken by the thread, not yet completed */
  struct store_req *done_head, *done_tail; /* completed, callbacks not yet run */

  int open_done, open_status;
  int closing;              /* store_close() began: submissions are refused */
  int thread_done;          /* the thread closed the backend and is exiting */
  int handle_closing;       /* uv_close() was called on async */
  void (*close_cb)(void *arg);
  void *close_arg;

  struct store_stats stats;
  struct hist_window commit_lat; /* ns per batch commit; recorded by the thread under mu */
  struct hist_window req_lat;    /* ns per request, submit to callback; loop thread only */
};

#define STORE__LAT_PERIOD_NS (60ull * 1000000000ull)

struct store_req *store_req_new(enum store_op op) {
  struct store_req *req;
  assert(op >= 0 && op < STORE_OP__COUNT);
  req = calloc(1, sizeof *req);
  if (req == NULL)
    return NULL;
  req->op = op;
  return req;
}

void store_msg_dispose(struct store_msg *m) {
  if (m == NULL)
    return;
  free(m->body);
  m->body = NULL;
}

static void store__invite_dispose(struct store_invite *inv) {
  free(inv->chat_title);
  inv->chat_title = NULL;
}

/* Frees every output of `req` and zeroes them, so a failed request never carries half a result
 * that a callback could mistake for success. Shared with nothing: backends leave outputs to us.
 * With keep_errmsg, out.errmsg survives: it is the explanation of the failure, for the client. */
static void store__req_clear_out(struct store_req *req, int keep_errmsg) {
  char errmsg[sizeof req->out.errmsg];

  if (keep_errmsg)
    memcpy(errmsg, req->out.errmsg, sizeof errmsg);
  free(req->out.pwhash);
  free(req->out.chat.title);
  store_msg_dispose(&req->out.msg);
  for (size_t i = 0; i < req->out.n_msgs; i++)
    store_msg_dispose(&req->out.msgs[i]);
  free(req->out.msgs);
  for (size_t i = 0; i < req->out.n_chats; i++) {
    if (req->out.chats)
      free(req->out.chats[i].title);
    if (req->out.last_msgs)
      store_msg_dispose(&req->out.last_msgs[i]);
  }
  free(req->out.chats);
  free(req->out.last_msgs);
  free(req->out.unread);
  free(req->out.members);
  free(req->out.hits);
  store__invite_dispose(&req->out.invite);
  for (size_t i = 0; req->out.invites && i < req->out.n_invites; i++)
    store__invite_dispose(&req->out.invites[i]);
  free(req->out.invites);
  free(req->out.member_ids);
  memset(&req->out, 0, sizeof req->out);
  if (keep_errmsg) {
    memcpy(req->out.errmsg, errmsg, sizeof errmsg);
    req->out.errmsg[sizeof req->out.errmsg - 1] = '\0';
  }
}

void store_req_free(struct store_req *req) {
  if (req == NULL)
    return;
  free(req->in.pwhash);
  free(req->in.title);
  free(req->in.body);
  free(req->in.query);
  store__req_clear_out(req, 0);
  free(req);
}

/* ---- slugs ---- */

static int slug__alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

void store_slug_derive(const char *title, char out[STORE_SLUG_MAX + 1]) {
  size_t len = 0;
  int dash = 0; /* a separator run was seen since the last kept character */
  const unsigned char *p = (const unsigned char *)(title ? title : "");

  for (; *p; p++) {
    /* Only ASCII is folded: a non-ASCII byte (any part of a UTF-8 sequence) is a separator, so
     * the slug is always plain ASCII and never needs percent-encoding in a URL. */
    unsigned char c = (*p >= 'A' && *p <= 'Z') ? (unsigned char)(*p - 'A' + 'a') : *p;
    if (!slug__alnum(c)) {
      dash = 1;
      continue;
    }
    if (dash && len > 0) {
      if (len + 2 > STORE_SLUG_DERIVED_MAX)
        break;
      out[len++] = '-';
    }
    dash = 0;
    if (len + 1 > STORE_SLUG_DERIVED_MAX)
      break;
    out[len++] = (char)c;
  }
  if (len == 0) {
    strcpy(out, "chat");
    return;
  }
  out[len] = '\0';
}

int store_slug_valid(const char *slug) {
  size_t len;
  if (slug == NULL)
    return 0;
  len = strlen(slug);
  if (len == 0 || len > STORE_SLUG_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)slug[i];
    if (!slug__alnum(c) && c != '-')
      return 0;
  }
  return slug[0] != '-' && slug[len - 1] != '-';
}

/* ---- the store thread ---- */

static void store__fail_batch(struct store_req *batch, int status) {
  for (struct store_req *r = batch; r != NULL; r = r->next) {
    r->status = status;
    store__req_clear_out(r, 0); /* whatever a request explained no longer applies */
  }
}

/* Runs one batch as one transaction. Returns the commit time in nanoseconds, or -1 if the batch
 * never reached commit. */
static int64_t store__run_batch(struct store *s, struct store_req *batch) {
  uint64_t t0;
  int64_t commit_ns = -1;
  int err;

  err = s->ops->begin(s->be);
  if (err) {
    /* Nothing ran, so nothing can be reported as done: the callers retry. */
    log_warn("store: cannot begin a transaction (%s); %s", parley_err_name(err),
             "every request of the batch fails as unavailable");
    store__fail_batch(batch, PARLEY_EUNAVAILABLE);
    return -1;
  }
  if (s->ops->exec_batch) {
    err = s->ops->exec_batch(s->be, batch);
    for (struct store_req *r = batch; r != NULL; r = r->next) {
      assert(r->status <= 0 && "a backend returns 0 or a PARLEY_E* code");
      if (r->status > 0)
        r->status = PARLEY_EINTERNAL;
      if (r->status != 0)
        store__req_clear_out(r, 1);
    }
  }
  for (struct store_req *r = batch; !s->ops->exec_batch && r != NULL && err == 0; r = r->next) {
    err = s->ops->savepoint(s->be);
    if (err)
      break;
    r->status = s->ops->exec(s->be, r);
    assert(r->status <= 0 && "a backend returns 0 or a PARLEY_E* code");
    if (r->status > 0)
      r->status = PARLEY_EINTERNAL;
    /* A release that fails means the transaction itself is in doubt (SQLite may already have
     * rolled all of it back after an I/O error), so nothing in it may be acknowledged. */
    err = s->ops->release(s->be, r->status != 0);
    if (r->status != 0)
      store__req_clear_out(r, 1);
  }
  if (err == 0) {
    t0 = clock_mono_ns();
    err = s->ops->commit(s->be);
    commit_ns = (int64_t)(clock_mono_ns() - t0);
  }
  if (err) {
    log_warn("store: batch aborted (%s); every request in it fails as unavailable",
             parley_err_name(err));
    s->ops->rollback(s->be);
    /* Requests that had already failed on their own get unavailable too: their answer was read
     * in a transaction that no longer exists, and a retry gives it again if it still holds. */
    store__fail_batch(batch, PARLEY_EUNAVAILABLE);
  }
  return commit_ns;
}

static void store__thread_main(void *arg) {
  struct store *s = arg;
  int err = s->ops->open(&s->be, s->uri, s->durability);

  uv_mutex_lock(&s->mu);
  s->open_done = 1;
  s->open_status = err;
  uv_cond_signal(&s->opened);
  uv_mutex_unlock(&s->mu);
  if (err)
    return;

  for (;;) {
    struct store_req *batch, *tail;
    size_t n;
    int64_t commit_ns;
    int async_ready;

    uv_mutex_lock(&s->mu);
    while (s->q_head == NULL && !s->closing)
      uv_cond_wait(&s->work, &s->mu);
    if (s->q_head == NULL) { /* closing, and the queue is drained */
      uv_mutex_unlock(&s->mu);
      break;
    }
    /* Take everything: the more requests share a transaction, the fewer commits per request. */
    batch = s->q_head;
    tail = s->q_tail;
    n = s->queued;
    s->q_head = s->q_tail = NULL;
    s->queued = 0;
    s->executing = n;
    uv_mutex_unlock(&s->mu);

    commit_ns = store__run_batch(s, batch);

    uv_mutex_lock(&s->mu);
    if (s->done_tail)
      s->done_tail->next = batch;
    else
      s->done_head = batch;
    s->done_tail = tail;
    s->executing = 0;
    s->stats.batches++;
    s->stats.requests += n;
    if (commit_ns >= 0) {
      s->stats.commit_us_total += (uint64_t)commit_ns / 1000;
      hist_window_record(&s->commit_lat, clock_mono_ns(), (uint64_t)commit_ns);
    }
    async_ready = s->async_ready;
    uv_mutex_unlock(&s->mu);
    if (async_ready)
      uv_async_send(&s->async);
  }

  s->ops->close(s->be);
  s->be = NULL;
  {
    int async_ready;
    uv_mutex_lock(&s->mu);
    s->thread_done = 1;
    async_ready = s->async_ready;
    uv_mutex_unlock(&s->mu);
    if (async_ready)
      uv_async_send(&s->async);
  }
}

/* ---- the loop side ---- */

static void store__destroy(struct store *s) {
  uv_cond_destroy(&s->opened);
  uv_cond_destroy(&s->work);
  uv_mutex_destroy(&s->mu);
  free(s->uri);
  free(s);
}

static void store__on_closed(uv_handle_t *h) {
  struct store *s = h->data;
  void (*cb)(void *) = s->close_cb;
  void *arg = s->close_arg;
  store__destroy(s);
  if (cb)
    cb(arg);
}

static void store__on_async(uv_async_t *h) {
  struct store *s = h->data;
  struct store_req *list, *next;
  int finished;

  uv_mutex_lock(&s->mu);
  list = s->done_head;
  s->done_head = s->done_tail = NULL;
  /* The thread appends its last completions before it sets thread_done, under this mutex, so
   * when finished is seen here, `list` holds every remaining completion. */
  finished = s->thread_done;
  uv_mutex_unlock(&s->mu);

  for (; list != NULL; list = next) {
    uint64_t now = clock_mono_ns();
    next = list->next;
    list->next = NULL;
    hist_window_record(&s->req_lat, now, now - list->t_submit_ns);
    list->cb(list); /* ownership of the request passes to the callback */
  }

  if (finished && !s->handle_closing) {
    s->handle_closing = 1;
    /* The join also waits for the thread's last uv_async_send() to return, so the handle is
     * not closed (and freed) under it. */
    uv_thread_join(&s->thread);
    uv_close((uv_handle_t *)&s->async, store__on_closed);
  }
}

/* Allocates a store with its queue and synchronisation set up, or returns NULL. */
static struct store *store__new(const char *uri) {
  struct store *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->uri = strdup(uri);
  if (s->uri == NULL)
    goto fail_uri;
  hist_window_init(&s->commit_lat, clock_mono_ns(), STORE__LAT_PERIOD_NS);
  hist_window_init(&s->req_lat, clock_mono_ns(), STORE__LAT_PERIOD_NS);
  if (uv_mutex_init(&s->mu) != 0)
    goto fail_mutex;
  if (uv_cond_init(&s->work) != 0)
    goto fail_work;
  if (uv_cond_init(&s->opened) != 0)
    goto fail_opened;
  return s;
  /* Unwinding in reverse order of construction, the one place that needs more than one label. */
fail_opened:
  uv_cond_destroy(&s->work);
fail_work:
  uv_mutex_destroy(&s->mu);
fail_mutex:
  free(s->uri);
fail_uri:
  free(s);
  return NULL;
}

int store_open_backend(struct store **out, uv_loop_t *loop, const struct store_backend_ops *ops,
                       const char *uri, enum store_durability durability) {
  struct store *s = NULL;
  int err = 0;
  int thread_ok = 0;

  assert(out && loop && ops && uri);
  *out = NULL;
  s = store__new(uri);
  if (s == NULL)
    return PARLEY_EUNAVAILABLE;
  s->loop = loop;
  s->ops = ops;
  s->durability = durability;

  /* The backend is opened on the store thread, because the backend contract says its functions
   * run there only (a PostgreSQL connection, for one, must not hop threads). */
  if (uv_thread_create(&s->thread, store__thread_main, s) != 0) {
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  thread_ok = 1;
  uv_mutex_lock(&s->mu);
  while (!s->open_done)
    uv_cond_wait(&s->opened, &s->mu);
  err = s->open_status;
  uv_mutex_unlock(&s->mu);
  if (err)
    goto cleanup; /* the thread has returned already */

  /* Initialised only now, so a failed open never leaves a handle that needs the loop to close.
   * The thread cannot send on it before this: it has no work until store_submit(). */
  if (uv_async_init(loop, &s->async, store__on_async) != 0) {
    uv_mutex_lock(&s->mu);
    s->closing = 1;
    uv_cond_signal(&s->work);
    uv_mutex_unlock(&s->mu);
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  s->async.data = s;
  uv_mutex_lock(&s->mu);
  s->async_ready = 1;
  uv_mutex_unlock(&s->mu);
  log_info("store: opened %s backend (durability=%s)", ops->name,
           durability == STORE_DURABILITY_FSYNC ? "fsync" : "normal");
  *out = s;
  return 0;

cleanup:
  if (thread_ok)
    uv_thread_join(&s->thread);
  store__destroy(s);
  return err;
}

int store_open(struct store **out, uv_loop_t *loop, const char *uri,
               enum store_durability durability) {
  static const char sqlite_scheme[] = "sqlite://";

  assert(uri);
  /* The scheme picks the backend; a plain path (or an SQLite "file:" URI) is SQLite. */
  if (strncmp(uri, "postgres://", 11) == 0 || strncmp(uri, "postgresql://", 13) == 0)
    return store_open_backend(out, loop, &store_pg_ops, uri, durability);
  if (strncmp(uri, sqlite_scheme, sizeof sqlite_scheme - 1) == 0)
    uri += sizeof sqlite_scheme - 1;
  return store_open_backend(out, loop, &store_sqlite_ops, uri, durability);
}

int store_submit(struct store *s, struct store_req *req, store_cb cb, void *data) {
  assert(s && req && cb);
  assert(req->op >= 0 && req->op < STORE_OP__COUNT);
  uv_mutex_lock(&s->mu);
  if (s->closing) {
    uv_mutex_unlock(&s->mu);
    return PARLEY_EUNAVAILABLE;
  }
  req->cb = cb;
  req->data = data;
  req->status = 0;
  req->next = NULL;
  req->t_submit_ns = clock_mono_ns();
  if (s->q_tail)
    s->q_tail->next = req;
  else
    s->q_head = req;
  s->q_tail = req;
  s->queued++;
  uv_cond_signal(&s->work);
  uv_mutex_unlock(&s->mu);
  return 0;
}

size_t store_pending(const struct store *s) {
  /* The mutex is part of the mutable state even when the caller only reads. */
  struct store *m = (struct store *)s;
  size_t n;
  uv_mutex_lock(&m->mu);
  n = m->queued + m->executing;
  uv_mutex_unlock(&m->mu);
  return n;
}

void store_get_stats(const struct store *s, struct store_stats *out) {
  struct store *m = (struct store *)s;
  uv_mutex_lock(&m->mu);
  *out = m->stats;
  out->commits = m->commit_lat.total_count;
  out->commit_ns_total = m->commit_lat.total_sum;
  uv_mutex_unlock(&m->mu);
  out->request_ns_total = m->req_lat.total_sum; /* loop thread's own, like the caller */
  out->requests_done = m->req_lat.total_count;
}

void store_get_latency(const struct store *s, uint64_t now_ns, struct hist *commit,
                       struct hist *request) {
  struct store *m = (struct store *)s;
  if (commit) {
    uv_mutex_lock(&m->mu);
    hist_window_recent(&m->commit_lat, now_ns, commit);
    uv_mutex_unlock(&m->mu);
  }
  if (request)
    hist_window_recent(&s->req_lat, now_ns, request);
}

void store_close(struct store *s, void (*done)(void *arg), void *arg) {
  assert(s);
  uv_mutex_lock(&s->mu);
  assert(!s->closing && "store_close() called twice");
  s->closing = 1;
  s->close_cb = done;
  s->close_arg = arg;
  /* The thread finishes what is queued, closes the backend, and wakes the loop one last time;
   * store__on_async() then joins it and closes the handle. The loop is never blocked here. */
  uv_cond_signal(&s->work);
  uv_mutex_unlock(&s->mu);
}
