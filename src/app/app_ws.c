/* app_ws.c - protocol v1 over WebSocket: one handler per op, subscriptions and fan-out.
 *
 * A message is fanned out from the callback of its store request, i.e. after it committed.
 * The event is encoded once (JSON, then the frame) and every subscriber's queue takes a
 * reference to the same chunk.
 *
 * Resume without gap or duplicate: `sub` registers the subscription at once, held (not live),
 * then asks the store for what follows `since`. Messages committed meanwhile are held back with
 * their seq. When the replay arrives (it covers everything up to lastSeq), the reply goes out,
 * then the held messages with seq > lastSeq, then the subscription is live. Every delivery
 * checks seq against the subscription's next_seq, so nothing is sent twice.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/app.h"
#include "auth/auth.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

/* --- sending to one socket ---------------------------------------------------------------- */

static void send_str(struct client *cl, char *s, size_t len) {
  if (s && cl->conn)
    net_ws_send_text(cl->conn, s, len);
  free(s);
}

void app__reply_ok(struct client *cl, const struct proto_req *req, json_t *result) {
  size_t len;
  char *s = proto_reply_ok(req, result, &len);
  send_str(cl, s, len);
}

void app__reply_err(struct client *cl, const struct proto_req *req, int err, const char *msg) {
  size_t len;
  char *s = proto_reply_err(req, err, msg, &len);
  send_str(cl, s, len);
}

static struct proto_req envelope(const struct proto_req *req) {
  struct proto_req e;
  memset(&e, 0, sizeof e);
  e.has_id = req->has_id;
  e.id = req->id;
  e.op = req->op;
  return e;
}

void app__reply_rate_limited(struct client *cl, const struct proto_req *req, int64_t wait_ms,
                             const char *msg) {
  json_t *o = json_pack("{s:o, s:b, s:{s:s, s:s, s:I}}", "id",
                        req->has_id ? json_integer(req->id) : json_null(), "ok", 0, "error",
                        "code", "rate_limited", "message", msg, "retryAfter",
                        (json_int_t)(wait_ms > 0 ? wait_ms : 1));
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  cl->app->metrics.rejected_rate++;
  send_str(cl, s, s ? strlen(s) : 0);
}

void app__ws_hello(struct client *cl) {
  size_t len;
  char *s = proto_event("hello", json_pack("{s:o}", "user", proto_user_json(&cl->user)), &len);
  send_str(cl, s, len);
}

/* --- rooms and subscriptions -------------------------------------------------------------- */

struct room *app__room_find(struct app *a, const char *slug) {
  struct room *r;
  HASH_FIND_STR(a->rooms, slug, r);
  return r;
}

static struct room *room_get(struct app *a, const char *slug, int create) {
  struct room *r;
  HASH_FIND_STR(a->rooms, slug, r);
  if (r || !create)
    return r;
  r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  snprintf(r->slug, sizeof r->slug, "%s", slug);
  HASH_ADD_STR(a->rooms, slug, r);
  app__bus_room_opened(a, r); /* other nodes' messages of the chat come here from now on */
  return r;
}

static struct sub *sub_find(struct client *cl, const char *slug) {
  struct sub *s;
  DL_FOREACH2(cl->subs, s, cnext) {
    if (strcmp(s->room->slug, slug) == 0)
      return s;
  }
  return NULL;
}

static void sub_drop_held(struct sub *s) {
  for (size_t i = 0; i < s->n_held; i++)
    outq_chunk_unref(s->held[i].frame);
  free(s->held);
  s->held = NULL;
  s->n_held = s->cap_held = 0;
}

static void sub_gap_unlist(struct app *a, struct sub *s);

static void sub_free(struct app *a, struct sub *s) {
  struct room *r = s->room;
  sub_gap_unlist(a, s);
  DL_DELETE2(r->subs, s, rprev, rnext);
  DL_DELETE2(s->client->subs, s, cprev, cnext);
  r->n_subs--;
  if (s->counted)
    app__room_sub_removed(a, r, s->client->user.id);
  sub_drop_held(s);
  json_decref(s->presence);
  free(s);
  if (r->n_subs == 0) {
    /* Nobody is left to tell: forget pending events with the room. */
    if (r->dirty) {
      struct room **pp = &a->dirty_rooms;
      while (*pp && *pp != r)
        pp = &(*pp)->dnext;
      if (*pp)
        *pp = r->dnext;
    }
    app__bus_room_closed(a, r);
    HASH_DEL(a->rooms, r);
    app__room_free(r);
  }
}

void app__client_drop_subs(struct client *cl) {
  while (cl->subs)
    sub_free(cl->app, cl->subs);
}

static void sub_catch_up(struct app *a, struct sub *s);
static void sub_drain_held(struct app *a, struct sub *s);

/* --- gaps ------------------------------------------------------------------------------------
 * In a cluster a gap in a chat's seqs is nearly always a message another node committed a moment
 * earlier and published, still on its way through Redis while this node's own later commit (or
 * another node's) arrived first. Reading the store at once for every subscription that sees one
 * costs a store request each, on the lane that runs the chat's sends, many per second under load
 * (measured: 250 per second per node with three nodes at 2,000 sends/s). So a gap first waits
 * GAP_WAIT_MS for the bus to fill it; only a gap still open then is read from the store (a
 * message really lost, for instance while Redis restarted). */
#define GAP_WAIT_MS 25

static void on_gap_timer(uv_timer_t *t) {
  struct app *a = t->data;
  uint64_t now = uv_now(a->loop);
  struct sub *s;
  while ((s = a->gap_subs) != NULL && s->gap_deadline <= now) {
    sub_gap_unlist(a, s);
    if (s->live && !s->catching_up && !s->fenced && s->n_held > 0)
      sub_catch_up(a, s);
  }
  if (a->gap_subs)
    uv_timer_start(&a->gap_timer, on_gap_timer, a->gap_subs->gap_deadline - now, 0);
}

/* `s` holds a message beyond its next_seq: the store fills the gap if the bus has not within
 * GAP_WAIT_MS (of the oldest gap, if it already waits). */
static void sub_gap_wait(struct app *a, struct sub *s) {
  if (s->gap_listed)
    return;
  s->gap_listed = 1;
  s->gap_deadline = uv_now(a->loop) + GAP_WAIT_MS;
  if (a->gap_subs == NULL)
    uv_timer_start(&a->gap_timer, on_gap_timer, GAP_WAIT_MS, 0);
  DL_APPEND2(a->gap_subs, s, gprev, gnext);
}

static void sub_gap_unlist(struct app *a, struct sub *s) {
  if (!s->gap_listed)
    return;
  s->gap_listed = 0;
  DL_DELETE2(a->gap_subs, s, gprev, gnext);
}

static void sub_hold(struct sub *s, int64_t seq, int64_t mgen, struct outq_chunk *frame) {
  if (s->n_held == s->cap_held) {
    size_t ncap = s->cap_held ? s->cap_held * 2 : 8;
    struct held_frame *n = realloc(s->held, ncap * sizeof *n);
    if (n == NULL)
      return; /* the gap it leaves is found by the next message and read from the store */
    s->held = n;
    s->cap_held = ncap;
  }
  s->held[s->n_held++] = (struct held_frame){seq, mgen, outq_chunk_ref(frame)};
}

/* Delivers message `seq` (its frame shared) to one subscription, in order, at most once. A seq
 * beyond next_seq means an earlier message has not arrived: one committed by another node and
 * still on the bus, or lost there. It waits, and the store fills the gap (sub_catch_up). On a
 * single node messages complete in commit order, so this never happens there.
 *
 * `mgen` is the chat's member_gen the message was committed with. One newer than the
 * subscription's means somebody left or was removed since the store last confirmed this
 * socket's access, perhaps its own user on a node whose news has not arrived: the message is not
 * delivered, the store is asked instead (a catch-up reads it with the access check, and ends the
 * subscription if access is gone). So a removal holds on every node from its commit on, whatever
 * the bus does. */
static void sub_deliver(struct app *a, struct sub *s, int64_t seq, int64_t mgen,
                        struct outq_chunk *frame) {
  if (!s->live || s->catching_up || s->fenced) {
    sub_hold(s, seq, mgen, frame);
    if (s->catching_up && mgen > s->member_gen)
      s->recheck = 1; /* the read in flight may predate the change */
    return;
  }
  if (seq < s->next_seq)
    return; /* already delivered, by the replay or before */
  if (mgen > s->member_gen) {
    sub_catch_up(a, s);
    return;
  }
  if (seq > s->next_seq) {
    sub_hold(s, seq, mgen, frame);
    sub_gap_wait(a, s);
    return;
  }
  if (s->client->conn && net_ws_send_frame(s->client->conn, frame) == 0)
    a->metrics.deliveries++;
  s->next_seq = seq + 1;
  if (s->n_held > 0 && !s->draining)
    sub_drain_held(a, s); /* the missing message came: what waited behind it follows */
}

static int held_cmp(const void *x, const void *y) {
  const struct held_frame *p = x, *q = y;
  return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* Delivers what waited, by seq. A gap among them starts a catch-up that holds the rest again. */
static void sub_drain_held(struct app *a, struct sub *s) {
  struct held_frame *held = s->held;
  size_t n = s->n_held;
  s->held = NULL;
  s->n_held = s->cap_held = 0;
  if (n > 1)
    qsort(held, n, sizeof *held, held_cmp);
  s->draining = 1;
  for (size_t i = 0; i < n; i++) {
    sub_deliver(a, s, held[i].seq, held[i].mgen, held[i].frame);
    outq_chunk_unref(held[i].frame);
  }
  s->draining = 0;
  if (s->n_held == 0)
    sub_gap_unlist(a, s); /* filled */
  free(held);
}

void app__sub_fence(struct app *a, struct sub *s, int fenced, int verify) {
  if (s->fenced == fenced)
    return;
  s->fenced = fenced;
  if (fenced || !s->live)
    return; /* a sub not live yet drains when its replay is in */
  if (verify) {
    sub_drop_held(s);
    if (s->catching_up)
      s->recheck = 1;
    else
      sub_catch_up(a, s);
  } else if (!s->catching_up) {
    sub_drain_held(a, s);
  }
}

void app__room_deliver_msg(struct app *a, struct room *r, int64_t seq, int64_t mgen,
                           struct outq_chunk *frame) {
  struct sub *s, *tmp;
  DL_FOREACH_SAFE2(r->subs, s, tmp, rnext) {
    sub_deliver(a, s, seq, mgen, frame);
  }
}

/* Fans a committed message out to everyone subscribed to its chat here, and to other nodes.
 * `mgen`: the chat's member_gen read with it (see sub_deliver). */
static void fanout_msg(struct app *a, const char *slug, const struct store_msg *m, int64_t mgen) {
  struct room *r = room_get(a, slug, 0);
  struct outq_chunk *frame;
  size_t len;
  char *json;

  if (r == NULL && a->bus_solo)
    return;
  json = proto_event("msg", json_pack("{s:s, s:o}", "chat", slug, "msg", proto_msg_json(m, slug)),
                     &len);
  if (json == NULL)
    return;
  app__bus_publish_msg(a, slug, m->seq, mgen, json, len);
  frame = r ? net_ws_frame_text(json, len) : NULL;
  free(json);
  if (frame == NULL)
    return;
  app__room_deliver_msg(a, r, m->seq, mgen, frame);
  outq_chunk_unref(frame);
}

struct outq_chunk *app__event_frame(const char *ev, json_t *fields) {
  struct outq_chunk *frame;
  size_t len;
  char *json = proto_event(ev, fields, &len);
  if (json == NULL)
    return NULL;
  frame = net_ws_frame_text(json, len);
  free(json);
  return frame;
}

/* Sends a framed event to every socket here of each user in ids. */
static void notify_frame(struct app *a, const int64_t *ids, size_t n, struct outq_chunk *frame) {
  for (size_t i = 0; i < n; i++) {
    struct app_user *au;
    struct client *cl;
    /* The same id twice (say, inviter and invitee lists overlapping) gets one event. */
    int seen = 0;
    for (size_t j = 0; j < i; j++)
      seen |= ids[j] == ids[i];
    if (seen)
      continue;
    HASH_FIND(hh, a->users, &ids[i], sizeof ids[i], au);
    if (au == NULL)
      continue;
    DL_FOREACH2(au->clients, cl, unext) {
      if (cl->conn)
        net_ws_send_frame(cl->conn, frame);
    }
  }
}

void app__notify_here(struct app *a, const int64_t *ids, size_t n, const char *json, size_t len) {
  struct outq_chunk *frame = net_ws_frame_text(json, len);
  if (frame == NULL)
    return;
  notify_frame(a, ids, n, frame);
  outq_chunk_unref(frame);
}

void app__notify_users(struct app *a, const int64_t *ids, size_t n, const char *ev,
                       json_t *fields) {
  size_t len;
  char *json = proto_event(ev, fields, &len);
  if (json == NULL)
    return;
  app__bus_publish_notify(a, ids, n, json, len);
  app__notify_here(a, ids, n, json, len);
  free(json);
}

void app__notify_local(struct app *a, const int64_t *ids, size_t n, const char *ev,
                       json_t *fields) {
  struct outq_chunk *frame = app__event_frame(ev, fields);
  if (frame == NULL)
    return;
  notify_frame(a, ids, n, frame);
  outq_chunk_unref(frame);
}

void app__drop_user_subs_here(struct app *a, int64_t user_id, const char *slug) {
  struct app_user *au;
  struct client *cl;
  HASH_FIND(hh, a->users, &user_id, sizeof user_id, au);
  if (au == NULL)
    return;
  DL_FOREACH2(au->clients, cl, unext) {
    struct sub *s = sub_find(cl, slug);
    if (s)
      sub_free(a, s);
  }
}

void app__drop_user_subs(struct app *a, int64_t user_id, const char *slug) {
  app__bus_publish_drop(a, user_id, slug);
  app__drop_user_subs_here(a, user_id, slug);
}

void app__announce_join(struct app *a, const struct store_req *sreq, const struct store_user *u) {
  /* The joiner's presence rides along: the others share a chat with them from now on. */
  app__notify_users(a, sreq->out.member_ids, sreq->out.n_member_ids, "participant.joined",
                    json_pack("{s:s, s:o, s:s, s:i, s:o}", "chat", sreq->out.chat.slug, "user",
                              proto_user_json(u), "role", "member", "participantCount",
                              sreq->out.chat.participant_count, "presence",
                              app__presence_json(a, u)));
  app__invite_events(a, sreq); /* a join settles the joiner's pending invitation */
}

/* --- store round trips -------------------------------------------------------------------- */

void app__op_submit(struct client *cl, const struct proto_req *req, struct store_req *sreq,
                    store_cb cb, uint32_t gen) {
  struct op_ctx *ctx = calloc(1, sizeof *ctx);
  int err;
  if (ctx == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  ctx->env = envelope(req);
  ctx->gen = gen;
  ctx->recv_ns = cl->app->metrics.recv_ns;
  sreq->in.user_id = cl->user.id;
  sreq->ctx = ctx;
  err = app__submit(cl->app, cl, sreq, cb);
  if (err) {
    /* app__submit freed sreq; the context is still ours. */
    app__reply_err(cl, &ctx->env, err, "the database is not available; retry later");
    free(ctx);
  }
}

int app__op_failed(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (cl->conn == NULL)
    return 1;
  if (sreq->status == 0)
    return 0;
  app__reply_err(cl, &ctx->env, sreq->status, STORE_ERRMSG(sreq));
  return 1;
}

void app__op_finish(struct store_req *sreq) {
  struct client *cl = sreq->data;
  free(sreq->ctx);
  store_req_free(sreq);
  app__client_unref(cl);
}

static json_t *msgs_json(const struct store_msg *msgs, size_t n, const char *slug) {
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, proto_msg_json(&msgs[i], slug));
  return arr;
}

/* --- catching up from the store ------------------------------------------------------------ */

/* The missed messages of one subscription, from its next_seq. */
static void on_catch_up(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct app *a = cl->app;
  struct sub *s;
  const char *slug = sreq->in.slug;

  if (cl->conn == NULL)
    goto done;
  s = sub_find(cl, slug);
  if (s == NULL || s->gen != ctx->gen || !s->catching_up)
    goto done; /* unsubscribed or subscribed again meanwhile */
  s->catching_up = 0;
  if (sreq->status == 0 && sreq->out.chat.member_gen > s->member_gen)
    s->member_gen = sreq->out.chat.member_gen; /* access confirmed as of this generation */
  if (sreq->status == PARLEY_EFORBIDDEN || sreq->status == PARLEY_ENOT_FOUND) {
    /* Removed (or the chat archived) while the news was on its way: cut access now. */
    sub_free(a, s);
    app__notify_local(a, &cl->user.id, 1, "removed", json_pack("{s:s, s:n}", "chat", slug, "by"));
    goto done;
  }
  if (sreq->status || sreq->out.reset) {
    /* The store is away, or more was missed than one read returns: the client reconnects and
     * resumes by seq, which is exactly what it does after any drop. */
    log_warn("catch-up of %s failed (%s): the socket resumes by reconnecting", slug,
             sreq->status ? parley_strerror(sreq->status) : "too many missed");
    net_ws_close(cl->conn, NET_CLOSE_SLOW, "resume required");
    goto done;
  }
  for (size_t i = 0; i < sreq->out.n_msgs; i++) {
    const struct store_msg *m = &sreq->out.msgs[i];
    struct outq_chunk *frame;
    if (m->seq < s->next_seq)
      continue;
    frame = app__event_frame("msg", json_pack("{s:s, s:o}", "chat", slug, "msg",
                                              proto_msg_json(m, slug)));
    if (frame == NULL)
      continue;
    if (net_ws_send_frame(cl->conn, frame) == 0)
      a->metrics.deliveries++;
    outq_chunk_unref(frame);
    s->next_seq = m->seq + 1;
  }
  if (s->recheck) {
    sub_catch_up(a, s); /* the bus may have missed more while this read was in flight */
    goto done;
  }
  sub_drain_held(a, s);
done:
  free(ctx);
  store_req_free(sreq);
  app__client_unref(cl);
}

static void sub_catch_up(struct app *a, struct sub *s) {
  struct store_req *sreq;
  struct op_ctx *ctx;
  if (s->catching_up)
    return; /* its reply looks again */
  s->recheck = 0;
  sreq = store_req_new(STORE_MSG_SINCE);
  ctx = calloc(1, sizeof *ctx);
  if (sreq == NULL || ctx == NULL) {
    store_req_free(sreq);
    free(ctx);
    return;
  }
  ctx->gen = s->gen;
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", s->room->slug);
  sreq->in.user_id = s->client->user.id;
  sreq->in.since = s->next_seq - 1;
  sreq->in.limit = STORE_LIMIT_MAX;
  sreq->ctx = ctx;
  s->catching_up = 1;
  a->metrics.catch_ups++;
  log_debug("catch-up: %s from seq %lld", s->room->slug, (long long)s->next_seq);
  if (app__submit(a, s->client, sreq, on_catch_up) != 0) {
    s->catching_up = 0;
    free(ctx);
  }
}

void app__room_members_left(struct app *a, const char *slug, int64_t gen) {
  struct room *r = room_get(a, slug, 0);
  struct sub *s;
  if (r == NULL)
    return;
  DL_FOREACH2(r->subs, s, rnext) {
    if (s->member_gen == gen - 1)
      s->member_gen = gen;
  }
}

void app__room_catch_up(struct app *a, struct room *r) {
  struct sub *s;
  DL_FOREACH2(r->subs, s, rnext) {
    /* A sub whose replay (or catch-up) is in flight may have been read before the bus was
     * listening: it reads again once that answer is in. */
    s->recheck = 1;
    if (s->live && !s->catching_up)
      sub_catch_up(a, s);
  }
}

/* --- ops ---------------------------------------------------------------------------------- */

#define HELD_IN_MAX (256 * 1024) /* bytes a socket may send while its auth is in flight */

void app__client_drop_held(struct client *cl) {
  while (cl->held_in) {
    struct held_text *h = cl->held_in;
    cl->held_in = h->next;
    free(h);
  }
  cl->held_tail = NULL;
  cl->held_bytes = 0;
}

/* Runs the messages that waited for the auth reply, in the order they came. */
static void replay_held(struct client *cl) {
  struct held_text *h = cl->held_in;
  cl->held_in = NULL;
  cl->held_tail = NULL;
  cl->held_bytes = 0;
  while (h) {
    struct held_text *next = h->next;
    if (cl->conn && !cl->authing)
      app__on_ws_text(cl->app, cl->conn, h->data, h->len);
    else if (cl->conn) {
      /* A second auth op among them: the rest waits for that one. */
      h->next = NULL;
      if (cl->held_tail)
        *cl->held_tail = h;
      else
        cl->held_in = h;
      cl->held_tail = &h->next;
      cl->held_bytes += h->len;
      h = next;
      continue;
    }
    free(h);
    h = next;
  }
}

static void on_auth(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  int err;
  cl->authing = 0;
  if (cl->conn == NULL)
    goto done;
  if (sreq->status) {
    app__reply_err(cl, &ctx->env, PARLEY_EUNAUTHORIZED, "invalid or expired token");
    goto done;
  }
  if (cl->authed) { /* two auth ops raced: the first one won */
    app__reply_ok(cl, &ctx->env, json_pack("{s:o}", "user", proto_user_json(&cl->user)));
    goto done;
  }
  err = app__user_attach(cl->app, cl, &sreq->out.user, sreq->in.token_hash, sreq->out.expires_at);
  if (err) {
    app__reply_err(cl, &ctx->env, err, "too many connections for this user");
    net_ws_close(cl->conn, NET_CLOSE_TOO_MANY, "too many connections for this user");
    goto done;
  }
  app__reply_ok(cl, &ctx->env, json_pack("{s:o}", "user", proto_user_json(&cl->user)));
  app__ws_hello(cl);
done:
  if (cl->conn)
    replay_held(cl); /* after the reply: a client may pipeline requests behind its auth */
  app__op_finish(sreq);
}

static void op_auth(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq;
  if (cl->authed) {
    app__reply_ok(cl, req, json_pack("{s:o}", "user", proto_user_json(&cl->user)));
    return;
  }
  sreq = store_req_new(STORE_SESSION_GET);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  auth_token_hash(req->token, sreq->in.token_hash);
  cl->authing = 1;
  app__op_submit(cl, req, sreq, on_auth, 0);
}

static void op_ping(struct client *cl, const struct proto_req *req) {
  app__reply_ok(cl, req, json_pack("{s:I}", "now", (json_int_t)app__now(cl->app)));
}

/* Replies {chat} for the ops whose result is one chat. */
static void on_chat_reply(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:o}", "chat", app__chat_json(cl->app, &sreq->out.chat)));
done:
  app__op_finish(sreq);
}

static void on_chat_join(struct store_req *sreq) {
  struct client *cl = sreq->data;
  if (sreq->status == 0 && sreq->out.joined)
    app__announce_join(cl->app, sreq, &cl->user);
  on_chat_reply(sreq);
}

static void on_chat_get(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  json_t *members;
  if (app__op_failed(sreq))
    goto done;
  members = json_array();
  for (size_t i = 0; i < sreq->out.n_members; i++) {
    json_t *m = proto_member_json(&sreq->out.members[i]);
    json_t *p = app__presence_json(cl->app, &sreq->out.members[i].user);
    json_object_set(m, "state", json_object_get(p, "state"));
    json_object_set(m, "lastSeen", json_object_get(p, "lastSeen"));
    json_decref(p);
    json_array_append_new(members, m);
  }
  {
    json_t *chat = app__chat_json(cl->app, &sreq->out.chat);
    app__reply_ok(cl, &ctx->env, json_pack("{s:o, s:o}", "chat", chat, "participants", members));
  }
done:
  app__op_finish(sreq);
}

static void on_chat_create(struct store_req *sreq) {
  struct client *cl = sreq->data;
  if (sreq->status == 0)
    /* The creator's other tabs add the chat to their lists. */
    app__notify_users(cl->app, &cl->user.id, 1, "chat.created",
                      json_pack("{s:o}", "chat", app__chat_json(cl->app, &sreq->out.chat)));
  on_chat_reply(sreq);
}

static void op_chat_create(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_CHAT_CREATE);
  if (sreq == NULL || (sreq->in.title = strdup(req->title)) == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  sreq->in.is_public = PROTO_HAS(req, PROTO_F_IS_PUBLIC) ? req->is_public : 0;
  sreq->in.max_participants =
      PROTO_HAS(req, PROTO_F_MAX_PARTICIPANTS) ? (int)req->max_participants : 0;
  if (PROTO_HAS(req, PROTO_F_SLUG))
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->slug);
  app__op_submit(cl, req, sreq, on_chat_create, 0);
}

static void op_chat_by_slug(struct client *cl, const struct proto_req *req, enum store_op op,
                            store_cb cb) {
  struct store_req *sreq = store_req_new(op);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.now = app__now(cl->app);
  app__op_submit(cl, req, sreq, cb, 0);
}

static void on_chat_list(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  json_t *chats;
  if (app__op_failed(sreq))
    goto done;
  chats = json_array();
  for (size_t i = 0; i < sreq->out.n_chats; i++) {
    const struct store_chat *c = &sreq->out.chats[i];
    json_t *o = app__chat_json(cl->app, c);
    json_object_set_new(o, "unread", json_integer(sreq->out.unread ? sreq->out.unread[i] : 0));
    json_object_set_new(o, "lastMessage",
                        sreq->out.last_msgs && sreq->out.last_msgs[i].seq > 0
                            ? proto_msg_json(&sreq->out.last_msgs[i], c->slug)
                            : json_null());
    json_array_append_new(chats, o);
  }
  {
    json_t *invs = json_array();
    for (size_t i = 0; i < sreq->out.n_invites; i++)
      json_array_append_new(invs, proto_invite_json(&sreq->out.invites[i]));
    app__reply_ok(cl, &ctx->env, json_pack("{s:o, s:o}", "chats", chats, "invitations", invs));
  }
done:
  app__op_finish(sreq);
}

static void op_chat_list(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_CHAT_LIST);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  app__op_submit(cl, req, sreq, on_chat_list, 0);
}

static void on_msg_send(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct app *a = cl->app;

  /* Fan out even if the sender is gone: the message is committed and others must see it. */
  if (sreq->status == 0 && !sreq->out.duplicate) {
    struct room *r = app__room_find(a, sreq->out.chat.slug);
    a->metrics.msgs_sent++;
    /* Sending ends typing, in the same turn as the message, so the two never disagree. */
    if (r && typing_off(&r->typing, sreq->out.msg.author.id) == 1)
      app__room_mark(a, r, ROOM_DIRTY_TYPING);
    fanout_msg(a, sreq->out.chat.slug, &sreq->out.msg, sreq->out.chat.member_gen);
    app__metrics_fanned_out(a, ctx->recv_ns);
  } else if (sreq->status == 0 && !a->bus_solo) {
    /* A retry of a message already stored: the node that stored it may have died between the
     * commit and its publication, so announce it again. Receivers drop it by seq if they had
     * it; those that did not would otherwise wait for the chat's next message. */
    fanout_msg(a, sreq->out.chat.slug, &sreq->out.msg, sreq->out.chat.member_gen);
  }
  if (cl->conn == NULL)
    goto done;
  if (sreq->status)
    app__reply_err(cl, &ctx->env, sreq->status,
                   sreq->status == PARLEY_EUNAVAILABLE
                       ? "not stored: the database is not "
                         "available; retry with the same clientMsgId"
                       : NULL);
  else
    app__reply_ok(cl, &ctx->env,
                  json_pack("{s:o, s:b}", "msg",
                            proto_msg_json(&sreq->out.msg, sreq->out.chat.slug), "duplicate",
                            sreq->out.duplicate));
done:
  app__op_finish(sreq);
}

static void op_msg_send(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct store_req *sreq;
  struct app_user *au;

  HASH_FIND(hh, a->users, &cl->user.id, sizeof cl->user.id, au);
  if (a->cfg.rate_limits && au) {
    int64_t wait = ratelimit_take(&au->send_rl, a->cfg.send_rate, a->cfg.send_burst, app__now(a));
    if (wait > 0) {
      app__reply_rate_limited(cl, req, wait, "sending too fast");
      return;
    }
  }
  sreq = store_req_new(STORE_MSG_APPEND);
  if (sreq == NULL || (sreq->in.body = strdup(req->body)) == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  if (PROTO_HAS(req, PROTO_F_CLIENT_MSG_ID))
    snprintf(sreq->in.client_msg_id, sizeof sreq->in.client_msg_id, "%s", req->client_msg_id);
  app__op_submit(cl, req, sreq, on_msg_send, 0);
}

static void on_msg_history(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:o, s:b}", "msgs",
                          msgs_json(sreq->out.msgs, sreq->out.n_msgs, sreq->in.slug), "hasMore",
                          sreq->out.has_more));
done:
  app__op_finish(sreq);
}

static void op_msg_history(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_MSG_HISTORY);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.before = PROTO_HAS(req, PROTO_F_BEFORE) ? req->before : 0;
  sreq->in.limit = PROTO_HAS(req, PROTO_F_LIMIT) ? (int)req->limit : PROTO_HISTORY_DEFAULT;
  app__op_submit(cl, req, sreq, on_msg_history, 0);
}

static void on_sub(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct sub *s;
  json_t *chat;

  if (cl->conn == NULL)
    goto done;
  s = sub_find(cl, sreq->in.slug);
  if (s == NULL || s->gen != ctx->gen)
    goto done; /* unsubscribed, or subscribed again, while the replay was read */
  if (sreq->status) {
    sub_free(cl->app, s);
    app__reply_err(cl, &ctx->env, sreq->status, STORE_ERRMSG(sreq));
    goto done;
  }
  /* Authorized: only now does the user count as having the chat open. */
  if (!s->counted) {
    s->counted = 1;
    app__room_sub_added(cl->app, s->room, cl->user.id);
  }
  chat = proto_chat_json(&sreq->out.chat);
  {
    json_t *others, *typing = app__room_typing_json(cl->app, s->room, &others);
    json_t *active = app__room_active_json(cl->app, s->room);
    json_object_set(chat, "activeUsers", active);
    app__reply_ok(cl, &ctx->env,
                  json_pack("{s:o, s:o, s:I, s:b, s:o, s:o, s:o, s:o}", "chat", chat, "msgs",
                            msgs_json(sreq->out.msgs, sreq->out.n_msgs, sreq->in.slug), "lastSeq",
                            (json_int_t)sreq->out.chat.last_seq, "reset", sreq->out.reset,
                            "presence", s->presence ? json_incref(s->presence) : json_array(),
                            "typing", typing, "typingOthers", others, "activeUsers", active));
    json_decref(s->presence);
    s->presence = NULL;
  }
  /* The replay covered everything up to lastSeq; what was held back beyond it goes next. */
  s->live = 1;
  s->next_seq = sreq->out.chat.last_seq + 1;
  s->member_gen = sreq->out.chat.member_gen;
  sub_drain_held(cl->app, s);
  if (s->recheck) /* the bus subscription became effective after the replay was read */
    sub_catch_up(cl->app, s);
done:
  app__op_finish(sreq);
}

/* The participants' presence for the sub reply; runs just before the replay's callback. */
static void on_sub_members(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct sub *s;
  if (cl->conn == NULL || sreq->status)
    goto done; /* the replay request reports the error */
  s = sub_find(cl, sreq->in.slug);
  if (s == NULL || s->gen != ctx->gen)
    goto done;
  json_decref(s->presence);
  s->presence = json_array();
  for (size_t i = 0; i < sreq->out.n_members; i++)
    json_array_append_new(s->presence, app__presence_json(cl->app, &sreq->out.members[i].user));
done:
  app__op_finish(sreq);
}

static void op_sub(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct store_req *sreq;
  struct sub *s = sub_find(cl, req->chat);

  if (s == NULL) {
    struct room *r = room_get(a, req->chat, 1);
    s = r ? calloc(1, sizeof *s) : NULL;
    if (s == NULL) {
      app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
      return;
    }
    s->room = r;
    s->client = cl;
    /* A removal of this user under way on some node holds the new subscription too. */
    s->fenced = app__bus_fenced(a, cl->user.username, r->slug);
    DL_APPEND2(r->subs, s, rprev, rnext);
    DL_APPEND2(cl->subs, s, cprev, cnext);
    r->n_subs++;
  }
  /* (Re)subscribing restarts the seam: hold live messages until the replay is in. */
  s->gen++;
  s->live = 0;
  s->catching_up = 0; /* a catch-up in flight belongs to the old generation */
  sub_drop_held(s);
  /* Completions come back in submission order: the members (for the presence snapshot)
   * arrive just before the replay that answers the sub. */
  sreq = store_req_new(STORE_CHAT_MEMBERS);
  if (sreq) {
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
    app__op_submit(cl, req, sreq, on_sub_members, s->gen);
  }
  sreq = store_req_new(STORE_MSG_SINCE);
  if (sreq == NULL) {
    sub_free(a, s);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  /* Without `since` the socket goes live from now: ask for nothing after "infinity". */
  sreq->in.since = PROTO_HAS(req, PROTO_F_SINCE) ? req->since : (INT64_C(1) << 53);
  sreq->in.limit = PROTO_HISTORY_MAX;
  app__op_submit(cl, req, sreq, on_sub, s->gen);
}

static void op_unsub(struct client *cl, const struct proto_req *req) {
  struct sub *s = sub_find(cl, req->chat);
  if (s)
    sub_free(cl->app, s);
  app__reply_ok(cl, req, json_pack("{s:s}", "chat", req->chat));
}

static void on_read(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (sreq->status == 0)
    /* The reader's other tabs and devices clear their unread counts too. Read markers are the
     * user's own business: nobody else is told. */
    app__notify_users(cl->app, &cl->user.id, 1, "read",
                      json_pack("{s:s, s:I}", "chat", sreq->in.slug, "seq",
                                (json_int_t)sreq->out.read_seq));
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(
      cl, &ctx->env,
      json_pack("{s:s, s:I}", "chat", sreq->in.slug, "seq", (json_int_t)sreq->out.read_seq));
done:
  app__op_finish(sreq);
}

static void op_read(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_READ_SET);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.seq = req->seq;
  app__op_submit(cl, req, sreq, on_read, 0);
}

/* --- dispatch ----------------------------------------------------------------------------- */

void app__on_ws_text(void *ud, struct net_conn *c, const char *data, size_t len) {
  struct app *a = ud;
  struct client *cl = net_conn_get_data(c);
  struct proto_req req;
  char err[160];
  int rc;

  if (cl == NULL)
    return;
  a->metrics.recv_ns = clock_mono_ns();
  if (cl->authing) {
    struct held_text *h;
    if (cl->held_bytes + len > HELD_IN_MAX) {
      net_ws_close(c, 1008, "too much sent before authentication finished");
      return;
    }
    h = malloc(sizeof *h + len);
    if (h == NULL)
      return;
    h->next = NULL;
    h->len = len;
    if (len)
      memcpy(h->data, data, len); /* an empty message may come with data NULL */
    if (cl->held_tail)
      *cl->held_tail = h;
    else
      cl->held_in = h;
    cl->held_tail = &h->next;
    cl->held_bytes += len;
    return;
  }
  rc = proto_decode(data, len, &req, err, sizeof err);
  if (rc) {
    app__reply_err(cl, &req, rc, err);
    goto done;
  }
  if (a->cfg.rate_limits) {
    int64_t wait = ratelimit_take(&cl->op_rl, a->cfg.op_rate, a->cfg.op_burst, app__now(a));
    if (wait > 0) {
      app__reply_rate_limited(cl, &req, wait, "too many requests on this connection");
      goto done;
    }
  }
  if (!cl->authed && !proto_op_is_public(req.op)) {
    app__reply_err(cl, &req, PARLEY_EUNAUTHORIZED, "authenticate first with the auth op");
    goto done;
  }
  if (a->shutting_down && req.op != PROTO_OP_PING) {
    app__reply_err(cl, &req, PARLEY_EUNAVAILABLE, "server shutting down");
    goto done;
  }
  switch (req.op) {
  case PROTO_OP_AUTH:
    op_auth(cl, &req);
    break;
  case PROTO_OP_PING:
    op_ping(cl, &req);
    break;
  case PROTO_OP_CHAT_CREATE:
    op_chat_create(cl, &req);
    break;
  case PROTO_OP_CHAT_GET:
    op_chat_by_slug(cl, &req, STORE_CHAT_MEMBERS, on_chat_get);
    break;
  case PROTO_OP_CHAT_LIST:
    op_chat_list(cl, &req);
    break;
  case PROTO_OP_CHAT_JOIN:
    op_chat_by_slug(cl, &req, STORE_CHAT_JOIN, on_chat_join);
    break;
  case PROTO_OP_MSG_SEND:
    op_msg_send(cl, &req);
    break;
  case PROTO_OP_MSG_HISTORY:
    op_msg_history(cl, &req);
    break;
  case PROTO_OP_SUB:
    op_sub(cl, &req);
    break;
  case PROTO_OP_UNSUB:
    op_unsub(cl, &req);
    break;
  case PROTO_OP_READ:
    op_read(cl, &req);
    break;
  case PROTO_OP_TYPING:
    app__op_typing(cl, &req);
    break;
  case PROTO_OP_PRESENCE:
    app__op_presence(cl, &req);
    break;
  default:
    app__members_dispatch(cl, &req);
    break;
  }
done:
  proto_req_dispose(&req);
}

void app__close_session_here(struct app *a, const uint8_t *session_hash, uint16_t code,
                             const char *reason) {
  struct app_user *au, *tmp;
  HASH_ITER(hh, a->users, au, tmp) {
    struct client *cl, *ctmp;
    DL_FOREACH_SAFE2(au->clients, cl, ctmp, unext) {
      if (cl->conn && memcmp(cl->session_hash, session_hash, STORE_TOKEN_HASH_LEN) == 0)
        net_ws_close(cl->conn, code, reason);
    }
  }
}

void app__close_session(struct app *a, const uint8_t *session_hash, uint16_t code,
                        const char *reason) {
  app__bus_publish_close_session(a, session_hash, code, reason);
  app__close_session_here(a, session_hash, code, reason);
}
