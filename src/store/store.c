/* store.c - the backend-independent half of the store: request memory, the queues, the store
 * threads with group commit, and the hand-off of completions to the loop thread.
 *
 * The store runs one or more lanes. A lane is a thread with its own backend handle (its own
 * database connection) and its own FIFO. The loop thread appends a request to its lane's FIFO
 * under the store's mutex and lets go of it; the lane is signalled at the end of the loop's turn
 * (a uv_check_t), once for everything the turn submitted. The lane takes everything queued at
 * once (at most STORE__BATCH_MAX) and runs it as one transaction, so a batch of a hundred sends
 * costs one commit (one fsync with durability=fsync) instead of a hundred, and one failing request
 * rolls back only itself: either it wrote nothing, or the batch runs again with a savepoint per
 * request (store__run_batch). The finished batch goes to the completion list and a uv_async_t
 * wakes the loop, which calls the callbacks. Each backend handle is touched by its lane's thread
 * only, from open to close.
 *
 * SQLite has one writer, so it gets one lane and everything runs in submission order.
 * PostgreSQL may get several (PARLEY_STORE_CONNS; one by default, see store_pg.c's PG_CONNS for
 * why): with one connection every batch waits for the previous batch's commit flush. With
 * lanes, lane 0 takes the requests that name no chat (sessions, users, invitations by id, lists,
 * sweeps) and every other request goes to the lane its chat's slug hashes to. So a chat's
 * requests still run in submission order on one lane (a node's messages of one chat complete in
 * seq order, as app/ expects), and lanes commit in parallel (PostgreSQL groups their flushes).
 *
 * A backend may defer requests of a batch (STORE_DEFER): they go back to the head of their
 * lane's queue, in order, and run with the next batch. store_pg.c defers sends to a chat whose
 * lock another node holds, rather than wait for it while holding the locks of the batch's other
 * chats; when a lane's whole batch was deferred it pauses STORE__DEFER_PAUSE_NS (or until new
 * work comes) before it asks again.
 *
 * Order across lanes. Requests of one client must still take effect in the order it sent them
 * when one depends on another: an invitation accepted (lane 0) before a message sent to that
 * chat (a chat lane), a chat created with a chosen slug and then written to. Requests carry an
 * order key (store_req.order, the caller's; app/ uses the client). A request whose key has
 * requests in flight on the other side (lane 0 against the chat lanes) waits in the key's
 * backlog until they have completed; requests of one key on different chats run in parallel.
 * Completions of one key are therefore also reported in its submission order.
 */
#include "store/store.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/hist.h"
#include "common/log.h"

#define STORE_LANES_MAX 16

struct store;

struct store_lane {
  struct store *s;
  int index;
  void *be;                 /* backend state, owned by this lane's thread */
  uv_thread_t thread;
  uv_cond_t work;           /* new request, or closing */
  int started;              /* thread created: join it */
  int open_done, open_status;
  struct store_req *q_head, *q_tail; /* submitted, not yet taken by the thread */
  size_t queued;
  size_t executing;         /* taken by the thread, not yet completed */
  int kick;                 /* loop thread only: to be signalled at the end of this turn */
};

/* Requests of one order key in flight, by side, and those waiting for the other side. */
struct store_order {
  const void *key;
  int n_general;            /* in flight on lane 0 */
  int n_chat;               /* in flight on the chat lanes */
  struct store_req *wait_head, *wait_tail;
  UT_hash_handle hh;
};

struct store {
  uv_loop_t *loop;
  const struct store_backend_ops *ops;
  char *uri;                /* copy, read by the threads at open */
  enum store_durability durability;
  int n_lanes;
  struct store_lane lanes[STORE_LANES_MAX];

  uv_mutex_t mu;            /* guards everything below, and every lane's queue fields */
  uv_cond_t opened;         /* a lane finished opening its backend */
  uv_async_t async;         /* completions ready, or the threads ended */
  int async_ready;          /* async was initialised: the threads may send on it */
  /* The end of the loop's turn, where the lanes with new work are signalled (store__on_turn_end),
   * and an idle handle, active while one is due, so the loop does not block in poll first. Loop
   * thread only, like kick_due. */
  uv_check_t turn_end;
  uv_idle_t turn_idle;
  int kick_due;     /* some lane's kick is set */
  int handles_open; /* of async, turn_end and turn_idle, not yet closed */

  struct store_order *orders; /* keys with requests in flight or waiting (n_lanes > 1 only) */
  size_t waiting;           /* requests in some key's backlog */
  struct store_req *done_head, *done_tail; /* completed, callbacks not yet run */

  int closing;              /* store_close() began: submissions are refused */
  int lanes_done;           /* threads that closed their backend and are exiting */
  int handle_closing;       /* uv_close() was called on the handles */
  void (*close_cb)(void *arg);
  void *close_arg;

  size_t inflight;          /* sheddable requests submitted, callback not yet run (loop thread
                               only): what admission control bounds */
  size_t admit_queued;      /* store_set_admission() */
  uint64_t admit_wait_ns;
  struct store_stats stats;
  struct hist_window commit_lat; /* ns per batch commit; recorded by the threads under mu */
  struct hist_window req_lat;    /* ns per request, submit to callback; loop thread only */
};

#define STORE__LAT_PERIOD_NS (60ull * 1000000000ull)
#define STORE__DEFER_PAUSE_NS (500ull * 1000ull) /* a lane whose whole batch was deferred */
#define STORE__BATCH_MAX 256 /* requests per transaction, at most */

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
  free(m->detail);
  m->detail = NULL;
  free(m->reactions);
  m->reactions = NULL;
  m->n_reactions = 0;
  free(m->reply_preview);
  m->reply_preview = NULL;
  free(m->mentions);
  m->mentions = NULL;
  m->n_mentions = 0;
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
  store_msg_dispose(&req->out.notice);
  for (size_t i = 0; i < req->out.n_msgs; i++)
    store_msg_dispose(&req->out.msgs[i]);
  free(req->out.msgs);
  for (size_t i = 0; i < req->out.n_streams; i++)
    store_msg_dispose(&req->out.streams[i]);
  free(req->out.streams);
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
  for (size_t i = 0; req->out.found && i < req->out.n_found; i++) {
    store_msg_dispose(&req->out.found[i].msg);
    free(req->out.found[i].title);
    free(req->out.found[i].snippet);
  }
  free(req->out.found);
  store__invite_dispose(&req->out.invite);
  for (size_t i = 0; req->out.invites && i < req->out.n_invites; i++)
    store__invite_dispose(&req->out.invites[i]);
  free(req->out.invites);
  free(req->out.member_ids);
  free(req->out.member_reads);
  free(req->out.member_mentions);
  free(req->out.hashes);
  free(req->out.data);
  for (size_t i = 0; req->out.bots && i < req->out.n_bots; i++) {
    free(req->out.bots[i].webhook_url);
    if (req->out.bots[i].webhook_secret)
      memset(req->out.bots[i].webhook_secret, 0, strlen(req->out.bots[i].webhook_secret));
    free(req->out.bots[i].webhook_secret);
  }
  free(req->out.bots);
  {
    /* A refused stream append tells the stream's length (error.length), like errmsg. */
    int64_t stream_len = req->out.stream_len;
    memset(&req->out, 0, sizeof req->out);
    if (keep_errmsg)
      req->out.stream_len = stream_len;
  }
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
  free(req->in.data);
  free(req->in.webhook_url);
  if (req->in.webhook_secret)
    memset(req->in.webhook_secret, 0, strlen(req->in.webhook_secret));
  free(req->in.webhook_secret);
  free(req->in.reader_ids);
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

/* ---- lanes and order keys ---- */

/* 1 if `req` names an existing chat by slug: it runs on that chat's lane. CHAT_CREATE (the chat
 * does not exist yet) and USERS_SEARCH (the slug only marks hits) are general. */
static int store__chat_keyed(const struct store_req *req) {
  switch (req->op) {
  case STORE_CHAT_GET:
  case STORE_CHAT_JOIN:
  case STORE_MSG_APPEND:
  case STORE_MSG_HISTORY:
  case STORE_MSG_SINCE:
  case STORE_READ_SET:
  case STORE_CHAT_UPDATE:
  case STORE_CHAT_LEAVE:
  case STORE_CHAT_REMOVE:
  case STORE_CHAT_SET_ROLE:
  case STORE_CHAT_MEMBERS:
  case STORE_INVITE_CREATE:
  case STORE_MSG_EDIT:
  case STORE_MSG_DELETE:
  case STORE_REACT:
  case STORE_CHAT_ACTIVITY: /* after its chat's sends, in order with them */
  case STORE_NOTIFY_SET:
  case STORE_STREAM_START:
  case STORE_STREAM_APPEND:
  case STORE_STREAM_END:
    return req->in.slug[0] != '\0';
  default:
    return 0;
  }
}

/* Lane 0 for general requests; lanes 1.. by FNV-1a of the slug, the same on every node. */
static int store__lane_of(const struct store *s, const struct store_req *req) {
  uint32_t h = 2166136261u;
  if (s->n_lanes == 1 || !store__chat_keyed(req))
    return 0;
  for (const unsigned char *p = (const unsigned char *)req->in.slug; *p; p++)
    h = (h ^ *p) * 16777619u;
  return 1 + (int)(h % (uint32_t)(s->n_lanes - 1));
}

/* Appends `req` to its lane's queue and returns the lane, whose `work` the caller signals. Under
 * s->mu. The loop thread signals after it lets go of the mutex: a lane woken while the mutex is
 * still held wakes only to wait for the mutex, which costs a second sleep and a second wake. */
static struct store_lane *store__enqueue(struct store *s, struct store_req *req) {
  struct store_lane *l = &s->lanes[req->lane];
  req->next = NULL;
  if (l->q_tail)
    l->q_tail->next = req;
  else
    l->q_head = req;
  l->q_tail = req;
  l->queued++;
  return l;
}

/* 1 if a request on `lane` may run beside what its key has in flight. */
static int store__order_admits(const struct store_order *o, int lane) {
  return lane == 0 ? o->n_chat == 0 : o->n_general == 0;
}

static void store__order_count(struct store_order *o, int lane, int delta) {
  if (lane == 0)
    o->n_general += delta;
  else
    o->n_chat += delta;
}

/* Routes a submitted request: to its lane, or to its key's backlog. Under s->mu. */
static int store__dispatch(struct store *s, struct store_req *req, struct store_lane **wake) {
  struct store_order *o = NULL;

  *wake = NULL;
  req->lane = store__lane_of(s, req);
  if (s->n_lanes == 1 || req->order == NULL) {
    *wake = store__enqueue(s, req);
    return 0;
  }
  HASH_FIND_PTR(s->orders, &req->order, o);
  if (o == NULL) {
    o = calloc(1, sizeof *o);
    if (o == NULL)
      return PARLEY_EUNAVAILABLE;
    o->key = req->order;
    HASH_ADD_PTR(s->orders, key, o);
  }
  if (o->wait_head == NULL && store__order_admits(o, req->lane)) {
    store__order_count(o, req->lane, +1);
    *wake = store__enqueue(s, req);
    return 0;
  }
  req->next = NULL;
  if (o->wait_tail)
    o->wait_tail->next = req;
  else
    o->wait_head = req;
  o->wait_tail = req;
  s->waiting++;
  return 0;
}

/* `req` completed: its key may let the head of its backlog go. Under s->mu. */
static void store__order_done(struct store *s, struct store_req *req) {
  struct store_order *o = NULL;

  if (s->n_lanes == 1 || req->order == NULL)
    return;
  HASH_FIND_PTR(s->orders, &req->order, o);
  assert(o != NULL);
  store__order_count(o, req->lane, -1);
  while (o->wait_head && store__order_admits(o, o->wait_head->lane)) {
    struct store_req *w = o->wait_head;
    o->wait_head = w->next;
    if (o->wait_head == NULL)
      o->wait_tail = NULL;
    s->waiting--;
    store__order_count(o, w->lane, +1);
    uv_cond_signal(&store__enqueue(s, w)->work); /* a lane thread, under the mutex anyway */
  }
  if (o->n_general == 0 && o->n_chat == 0 && o->wait_head == NULL) {
    HASH_DEL(s->orders, o);
    free(o);
  }
  if (s->closing && s->waiting == 0) /* lanes waiting to exit may now */
    for (int i = 0; i < s->n_lanes; i++)
      uv_cond_signal(&s->lanes[i].work);
}

/* ---- the store threads ---- */

static void store__fail_batch(struct store_req *batch, int status) {
  for (struct store_req *r = batch; r != NULL; r = r->next) {
    r->status = status;
    store__req_clear_out(r, 0); /* whatever a request explained no longer applies */
  }
}

/* Runs each request of `batch` inside the open transaction, each between savepoints when
 * `careful` (or when the backend cannot count its changes). Returns 0; 1 if a request failed
 * after changing something while not careful (the caller rolls back and runs the batch again,
 * carefully); or an error when the transaction is in doubt. */
static int store__exec_each(struct store *s, void *be, struct store_req *batch, int careful) {
  int64_t before = 0, after;
  int err = 0;
  careful = careful || s->ops->changes == NULL;
  for (struct store_req *r = batch; r != NULL; r = r->next) {
    if (careful)
      err = s->ops->savepoint(be);
    else if ((before = s->ops->changes(be)) < 0)
      err = PARLEY_EUNAVAILABLE;
    if (err)
      return err;
    r->status = s->ops->exec(be, r);
    assert(r->status <= 0 && "a backend returns 0 or a PARLEY_E* code");
    if (r->status > 0)
      r->status = PARLEY_EINTERNAL;
    if (careful) {
      /* A release that fails means the transaction itself is in doubt (SQLite may already have
       * rolled all of it back after an I/O error), so nothing in it may be acknowledged. */
      err = s->ops->release(be, r->status != 0);
    } else if ((after = s->ops->changes(be)) < 0) {
      err = PARLEY_EUNAVAILABLE;
    } else if (r->status != 0 && after != before) {
      return 1;
    }
    if (r->status != 0)
      store__req_clear_out(r, 1);
    if (err)
      return err;
  }
  return 0;
}

/* Runs one batch as one transaction on `be`. Returns the commit time in nanoseconds, or -1 if
 * the batch never reached commit.
 *
 * Savepoints are the exception, not the rule: a savepoint makes SQLite copy every page the
 * request then writes into a statement journal, in 1 KB pieces, so that ROLLBACK TO can put it
 * back; at 2,000 sends/s that was most of the store thread's malloc, memcpy and locking. A
 * request that fails almost always fails before it writes (access, validation, a duplicate), so
 * the batch runs without them, and only a request that failed after a write sends the batch
 * back to run again between savepoints. Requests are only decided, never reported, before the
 * commit, so running them again is invisible. */
static int64_t store__run_batch(struct store *s, void *be, struct store_req *batch) {
  uint64_t t0;
  int64_t commit_ns = -1;
  int careful = 0;
  int err;

again:
  err = s->ops->begin(be);
  if (err) {
    /* Nothing ran, so nothing can be reported as done: the callers retry. */
    log_warn("store: cannot begin a transaction (%s); %s", parley_err_name(err),
             "every request of the batch fails as unavailable");
    store__fail_batch(batch, PARLEY_EUNAVAILABLE);
    return -1;
  }
  if (s->ops->exec_batch) {
    err = s->ops->exec_batch(be, batch);
    for (struct store_req *r = batch; r != NULL; r = r->next) {
      assert((r->status <= 0 || r->status == STORE_DEFER) &&
             "a backend returns 0, a PARLEY_E* code or STORE_DEFER");
      if (r->status == STORE_DEFER)
        continue;
      if (r->status > 0)
        r->status = PARLEY_EINTERNAL;
      if (r->status != 0)
        store__req_clear_out(r, 1);
    }
  } else {
    err = store__exec_each(s, be, batch, careful);
    if (err == 1) {
      s->ops->rollback(be);
      for (struct store_req *r = batch; r != NULL; r = r->next) {
        r->status = 0;
        store__req_clear_out(r, 0);
      }
      careful = 1;
      goto again;
    }
  }
  if (err == 0) {
    t0 = clock_mono_ns();
    err = s->ops->commit(be);
    commit_ns = (int64_t)(clock_mono_ns() - t0);
  }
  if (err) {
    log_warn("store: batch aborted (%s); every request in it fails as unavailable",
             parley_err_name(err));
    s->ops->rollback(be);
    /* Requests that had already failed on their own get unavailable too: their answer was read
     * in a transaction that no longer exists, and a retry gives it again if it still holds. */
    store__fail_batch(batch, PARLEY_EUNAVAILABLE);
  }
  return commit_ns;
}

/* Splits the requests the backend deferred (STORE_DEFER) off `batch`, in order, into *deferred
 * (NULL if none; *deferred_tail its last), counting each deferral. Returns what is left of the
 * batch, with *tail and *n updated (NULL, 0 if everything was deferred). */
static struct store_req *store__take_deferred(struct store_req *batch, struct store_req **tail,
                                              size_t *n, struct store_req **deferred,
                                              struct store_req **deferred_tail) {
  struct store_req *done = NULL, **dp = &done, *d = NULL, **ddp = &d, *next;
  *tail = NULL;
  *n = 0;
  *deferred_tail = NULL;
  for (struct store_req *r = batch; r != NULL; r = next) {
    next = r->next;
    r->next = NULL;
    if (r->status == STORE_DEFER) {
      r->status = 0;
      r->defers++;
      *ddp = r;
      ddp = &r->next;
      *deferred_tail = r;
    } else {
      *dp = r;
      dp = &r->next;
      *tail = r;
      (*n)++;
    }
  }
  *deferred = d;
  return done;
}

static void store__lane_main(void *arg) {
  struct store_lane *l = arg;
  struct store *s = l->s;
  int err = s->ops->open(&l->be, s->uri, s->durability);
  int async_ready, idle;
  uint64_t idle_ns = 0; /* when the backend wants its idle() again (0: it does not) */

  uv_mutex_lock(&s->mu);
  l->open_done = 1;
  l->open_status = err;
  uv_cond_broadcast(&s->opened);
  uv_mutex_unlock(&s->mu);
  if (err)
    return;

  for (;;) {
    struct store_req *batch, *tail, *deferred, *deferred_tail;
    size_t n;
    int64_t commit_ns;

    uv_mutex_lock(&s->mu);
    /* Closing ends a lane only when no backlog can still send it work. */
    while (l->q_head == NULL && !(s->closing && s->waiting == 0)) {
      if (idle_ns == 0) {
        uv_cond_wait(&l->work, &s->mu);
      } else if (uv_cond_timedwait(&l->work, &s->mu, idle_ns) == UV_ETIMEDOUT) {
        uv_mutex_unlock(&s->mu);
        idle_ns = s->ops->idle(l->be);
        uv_mutex_lock(&s->mu);
      }
    }
    if (l->q_head == NULL) {
      uv_mutex_unlock(&s->mu);
      break;
    }
    /* Take everything, up to STORE__BATCH_MAX: the more requests share a transaction, the fewer
     * commits per request, but a batch without bound under overload (8,000 sends/s offered) ran
     * for seconds, every request admitted behind it waited that long (reply max 2.1 s with a
     * 500 ms admission bound), and the loop then ran thousands of callbacks in one turn. */
    batch = tail = l->q_head;
    n = 1;
    while (tail->next && n < STORE__BATCH_MAX) {
      tail = tail->next;
      n++;
    }
    l->q_head = tail->next;
    if (l->q_head == NULL)
      l->q_tail = NULL;
    tail->next = NULL;
    l->queued -= n;
    l->executing = n;
    uv_mutex_unlock(&s->mu);

    commit_ns = store__run_batch(s, l->be, batch);
    batch = store__take_deferred(batch, &tail, &n, &deferred, &deferred_tail);

    uv_mutex_lock(&s->mu);
    if (deferred) { /* back to the head of the queue, in order, before anything newer */
      deferred_tail->next = l->q_head;
      if (l->q_head == NULL)
        l->q_tail = deferred_tail;
      l->q_head = deferred;
      for (struct store_req *r = deferred; r != NULL; r = r->next)
        l->queued++;
    }
    l->executing = 0;
    if (batch == NULL) {
      /* Everything deferred: the chats are busy elsewhere. Unless something new came, give the
       * other transactions a moment to commit instead of asking again at once. */
      if (l->q_head == deferred && l->q_tail == deferred_tail && !s->closing)
        uv_cond_timedwait(&l->work, &s->mu, STORE__DEFER_PAUSE_NS);
      uv_mutex_unlock(&s->mu);
      continue;
    }
    /* Completions first, then the backlogs they release: a key's completions stay in order. */
    if (s->done_tail)
      s->done_tail->next = batch;
    else
      s->done_head = batch;
    s->done_tail = tail;
    for (struct store_req *r = batch; r != NULL; r = r->next)
      store__order_done(s, r);
    s->stats.batches++;
    s->stats.requests += n;
    if (commit_ns >= 0) {
      s->stats.commit_us_total += (uint64_t)commit_ns / 1000;
      hist_window_record(&s->commit_lat, clock_mono_ns(), (uint64_t)commit_ns);
    }
    async_ready = s->async_ready;
    idle = l->q_head == NULL && !s->closing;
    uv_mutex_unlock(&s->mu);
    if (async_ready)
      uv_async_send(&s->async);
    if (idle && s->ops->idle)
      idle_ns = s->ops->idle(l->be);
  }

  s->ops->close(l->be);
  l->be = NULL;
  uv_mutex_lock(&s->mu);
  s->lanes_done++;
  async_ready = s->async_ready;
  uv_mutex_unlock(&s->mu);
  if (async_ready)
    uv_async_send(&s->async);
}

/* ---- the loop side ---- */

static void store__destroy(struct store *s) {
  for (int i = 0; i < s->n_lanes; i++)
    uv_cond_destroy(&s->lanes[i].work);
  uv_cond_destroy(&s->opened);
  uv_mutex_destroy(&s->mu);
  free(s->uri);
  free(s);
}

static void store__on_closed(uv_handle_t *h) {
  struct store *s = h->data;
  void (*cb)(void *) = s->close_cb;
  void *arg = s->close_arg;
  if (--s->handles_open > 0)
    return;
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
  /* A thread appends its last completions before it counts itself done, under this mutex, so
   * when every lane is seen done here, `list` holds every remaining completion. */
  finished = s->lanes_done == s->n_lanes;
  uv_mutex_unlock(&s->mu);

  for (; list != NULL; list = next) {
    uint64_t now = clock_mono_ns();
    next = list->next;
    list->next = NULL;
    hist_window_record(&s->req_lat, now, now - list->t_submit_ns);
    if (list->sheddable)
      s->inflight--;
    list->cb(list); /* ownership of the request passes to the callback */
  }

  if (finished && !s->handle_closing) {
    s->handle_closing = 1;
    /* The joins also wait for the threads' last uv_async_send() to return, so the handle is
     * not closed (and freed) under them. */
    for (int i = 0; i < s->n_lanes; i++)
      uv_thread_join(&s->lanes[i].thread);
    uv_close((uv_handle_t *)&s->async, store__on_closed);
    uv_close((uv_handle_t *)&s->turn_end, store__on_closed);
    uv_close((uv_handle_t *)&s->turn_idle, store__on_closed);
  }
}

/* Nothing to do: while active, the idle handle only keeps the loop from blocking in poll, so that
 * a lane kicked before poll (by a timer) is signalled at the end of this turn, and one kicked
 * after the check (by a close callback) at the end of the next, without waiting for I/O. */
static void store__on_turn_idle(uv_idle_t *h) {
  (void)h;
}

/* The end of the loop's turn: signals every lane that was given work during it. Waking a lane at
 * each submission started a transaction for the first request of a turn while the turn was still
 * reading the others, which then waited for the next one: at 2,000 sends/s, 30% more
 * transactions, each a WAL write, a wake-up of the lane and one of the loop (issue 15). The
 * delay is the rest of the turn's reading, tens of microseconds. Signalled without the mutex:
 * a lane checks its queue under it before it waits, and the lanes live until store_close(). */
static void store__on_turn_end(uv_check_t *h) {
  struct store *s = h->data;
  if (!s->kick_due)
    return;
  s->kick_due = 0;
  uv_idle_stop(&s->turn_idle);
  for (int i = 0; i < s->n_lanes; i++) {
    if (s->lanes[i].kick) {
      s->lanes[i].kick = 0;
      uv_cond_signal(&s->lanes[i].work);
    }
  }
}

/* Allocates a store of `n_lanes` lanes with its queues and synchronisation set up, or returns
 * NULL. */
static struct store *store__new(const char *uri, int n_lanes) {
  struct store *s = calloc(1, sizeof *s);
  int i;
  if (s == NULL)
    return NULL;
  s->uri = strdup(uri);
  if (s->uri == NULL)
    goto fail_uri;
  s->admit_queued = STORE_ADMIT_QUEUED;
  s->admit_wait_ns = STORE_ADMIT_WAIT_MS * 1000000ull;
  hist_window_init(&s->commit_lat, clock_mono_ns(), STORE__LAT_PERIOD_NS);
  hist_window_init(&s->req_lat, clock_mono_ns(), STORE__LAT_PERIOD_NS);
  if (uv_mutex_init(&s->mu) != 0)
    goto fail_mutex;
  if (uv_cond_init(&s->opened) != 0)
    goto fail_opened;
  for (i = 0; i < n_lanes; i++) {
    s->lanes[i].s = s;
    s->lanes[i].index = i;
    if (uv_cond_init(&s->lanes[i].work) != 0)
      goto fail_lanes;
  }
  s->n_lanes = n_lanes;
  return s;
  /* Unwinding in reverse order of construction, the one place that needs more than one label. */
fail_lanes:
  while (i-- > 0)
    uv_cond_destroy(&s->lanes[i].work);
  uv_cond_destroy(&s->opened);
fail_opened:
  uv_mutex_destroy(&s->mu);
fail_mutex:
  free(s->uri);
fail_uri:
  free(s);
  return NULL;
}

/* Starts lane `i`'s thread and waits until it opened its backend. Returns its open status. */
static int store__start_lane(struct store *s, int i) {
  struct store_lane *l = &s->lanes[i];
  int err;
  if (uv_thread_create(&l->thread, store__lane_main, l) != 0)
    return PARLEY_EUNAVAILABLE;
  l->started = 1;
  uv_mutex_lock(&s->mu);
  while (!l->open_done)
    uv_cond_wait(&s->opened, &s->mu);
  err = l->open_status;
  uv_mutex_unlock(&s->mu);
  return err;
}

int store_open_backend(struct store **out, uv_loop_t *loop, const struct store_backend_ops *ops,
                       const char *uri, enum store_durability durability, int conns) {
  struct store *s = NULL;
  int err = 0;
  int n_lanes = conns > 0 ? conns : ops->conns > 0 ? ops->conns : 1;

  assert(out && loop && ops && uri);
  *out = NULL;
  if (ops->conns <= 1 || n_lanes > STORE_LANES_MAX)
    n_lanes = ops->conns <= 1 ? 1 : STORE_LANES_MAX;
  s = store__new(uri, n_lanes);
  if (s == NULL)
    return PARLEY_EUNAVAILABLE;
  s->loop = loop;
  s->ops = ops;
  s->durability = durability;

  /* Each backend handle is opened on its lane's thread, because the backend contract says its
   * functions run there only (a PostgreSQL connection, for one, must not hop threads). Lane 0
   * first, alone: it creates and migrates the database, so the others find it ready. */
  for (int i = 0; i < n_lanes && err == 0; i++)
    err = store__start_lane(s, i);

  /* Initialised only now, so a failed open never leaves a handle that needs the loop to close.
   * The threads cannot send on it before this: they have no work until store_submit(). */
  if (err == 0 && uv_async_init(loop, &s->async, store__on_async) != 0)
    err = PARLEY_EUNAVAILABLE;
  if (err) {
    uv_mutex_lock(&s->mu);
    s->closing = 1;
    for (int i = 0; i < n_lanes; i++)
      uv_cond_signal(&s->lanes[i].work);
    uv_mutex_unlock(&s->mu);
    for (int i = 0; i < n_lanes; i++)
      if (s->lanes[i].started)
        uv_thread_join(&s->lanes[i].thread);
    store__destroy(s);
    return err;
  }
  s->async.data = s;
  /* Neither keeps the loop alive: the async does, while the lanes run. */
  uv_check_init(loop, &s->turn_end);
  uv_idle_init(loop, &s->turn_idle);
  s->turn_end.data = s->turn_idle.data = s;
  uv_unref((uv_handle_t *)&s->turn_end);
  uv_unref((uv_handle_t *)&s->turn_idle);
  uv_check_start(&s->turn_end, store__on_turn_end);
  s->handles_open = 3;
  uv_mutex_lock(&s->mu);
  s->async_ready = 1;
  uv_mutex_unlock(&s->mu);
  log_info("store: opened %s backend (durability=%s, %d connection%s)", ops->name,
           durability == STORE_DURABILITY_FSYNC ? "fsync" : "normal", n_lanes,
           n_lanes == 1 ? "" : "s");
  *out = s;
  return 0;
}


/* How long the oldest request in a lane's queue (not yet taken by its thread) has waited at
 * `now`. Under s->mu. */
static uint64_t store__oldest_wait(const struct store *s, uint64_t now) {
  uint64_t oldest = 0;
  for (int i = 0; i < s->n_lanes; i++) {
    const struct store_lane *l = &s->lanes[i];
    if (l->q_head && now > l->q_head->t_submit_ns && now - l->q_head->t_submit_ns > oldest)
      oldest = now - l->q_head->t_submit_ns;
  }
  return oldest;
}

int store_submit(struct store *s, struct store_req *req, store_cb cb, void *data) {
  struct store_lane *wake;
  int err;
  uint64_t now = clock_mono_ns();
  assert(s && req && cb);
  assert(req->op >= 0 && req->op < STORE_OP__COUNT);
  uv_mutex_lock(&s->mu);
  if (s->closing) {
    uv_mutex_unlock(&s->mu);
    return PARLEY_EUNAVAILABLE;
  }
  /* Past capacity a queue only turns throughput into latency: the requests behind it wait for
   * seconds and their memory grows. Refusing at once keeps both bounded, and the client knows
   * to retry; internal work is never refused. */
  if (req->sheddable &&
      (s->inflight >= s->admit_queued || store__oldest_wait(s, now) >= s->admit_wait_ns)) {
    s->stats.shed++;
    uv_mutex_unlock(&s->mu);
    return PARLEY_EUNAVAILABLE;
  }
  req->cb = cb;
  req->data = data;
  req->status = 0;
  req->t_submit_ns = now;
  err = store__dispatch(s, req, &wake);
  if (err == 0 && req->sheddable)
    s->inflight++;
  uv_mutex_unlock(&s->mu);
  if (wake && !wake->kick) {
    wake->kick = 1;
    if (!s->kick_due) {
      s->kick_due = 1;
      uv_idle_start(&s->turn_idle, store__on_turn_idle);
    }
  }
  return err;
}

size_t store_pending(const struct store *s) {
  /* The mutex is part of the mutable state even when the caller only reads. */
  struct store *m = (struct store *)s;
  size_t n;
  uv_mutex_lock(&m->mu);
  n = m->waiting;
  for (int i = 0; i < m->n_lanes; i++)
    n += m->lanes[i].queued + m->lanes[i].executing;
  uv_mutex_unlock(&m->mu);
  return n;
}

int store_conns(const struct store *s) {
  return s->n_lanes;
}

void store_get_stats(const struct store *s, struct store_stats *out) {
  struct store *m = (struct store *)s;
  uv_mutex_lock(&m->mu);
  *out = m->stats;
  out->queued = m->inflight;
  out->oldest_wait_ns = store__oldest_wait(m, clock_mono_ns());
  out->commits = m->commit_lat.total_count;
  out->commit_ns_total = m->commit_lat.total_sum;
  uv_mutex_unlock(&m->mu);
  out->request_ns_total = m->req_lat.total_sum; /* loop thread's own, like the caller */
  out->requests_done = m->req_lat.total_count;
  if (m->ops->wal_stats && m->lanes[0].be)
    m->ops->wal_stats(m->lanes[0].be, out);
}

void store_set_admission(struct store *s, size_t max_queued, uint64_t max_wait_ms) {
  assert(max_queued >= 1 && max_wait_ms >= 1);
  uv_mutex_lock(&s->mu);
  s->admit_queued = max_queued;
  s->admit_wait_ns = max_wait_ms * 1000000ull;
  uv_mutex_unlock(&s->mu);
}

void store_set_wal_max(struct store *s, uint64_t bytes) {
  assert(s);
  if (s->ops->set_wal_max && s->lanes[0].be)
    s->ops->set_wal_max(s->lanes[0].be, bytes);
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
  /* The lanes finish what is queued or waiting, close their backends, and wake the loop one
   * last time each; store__on_async() then joins them and closes the handle. The loop is never
   * blocked here. */
  for (int i = 0; i < s->n_lanes; i++)
    uv_cond_signal(&s->lanes[i].work);
  uv_mutex_unlock(&s->mu);
}
