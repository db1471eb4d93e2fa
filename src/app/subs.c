/* subs.c - subscriptions: how a chat's messages reach the sockets that have it open, in seq
 * order, each once.
 *
 * Resume without gap or duplicate: `sub` registers the subscription at once, held (not live),
 * then asks the store for what follows `since`. Messages committed meanwhile are held back with
 * their seq. When the replay arrives (it covers everything up to lastSeq), the reply goes out,
 * then the held messages with seq > lastSeq, then the subscription is live. Every delivery
 * checks seq against the subscription's next_seq, so nothing is sent twice.
 */
#include "app/subs.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/clients.h"
#include "app/cluster.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/proto.h"

/* The context of a catch-up read: the subscription generation it was made for. */
struct catch_up_ctx {
  uint32_t sub_gen;
};

struct sub *app__sub_find(struct client *cl, const char *slug) {
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

void app__sub_free(struct app *a, struct sub *s) {
  struct room *r = s->room;
  sub_gap_unlist(a, s);
  DL_DELETE2(r->subs, s, rprev, rnext);
  DL_DELETE2(s->client->subs, s, cprev, cnext);
  r->n_subs--;
  if (s->counted)
    app__room_sub_removed(a, r, s->client->user->id);
  sub_drop_held(s);
  free(s->presence);
  free(s);
  if (r->n_subs == 0)
    app__room_release(a, r);
}

void app__client_drop_subs(struct client *cl) {
  while (cl->subs)
    app__sub_free(cl->app, cl->subs);
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

static void sub_hold_x(struct sub *s, int64_t seq, int64_t mgen, struct outq_chunk *frame,
                       int delta, int64_t offset) {
  if (s->n_held == s->cap_held) {
    size_t ncap = s->cap_held ? s->cap_held * 2 : 8;
    struct held_frame *n = realloc(s->held, ncap * sizeof *n);
    if (n == NULL)
      return; /* the gap it leaves is found by the next message and read from the store */
    s->held = n;
    s->cap_held = ncap;
  }
  s->held[s->n_held++] = (struct held_frame){seq, mgen, outq_chunk_ref(frame), delta, offset};
}

static void sub_hold(struct sub *s, int64_t seq, int64_t mgen, struct outq_chunk *frame) {
  sub_hold_x(s, seq, mgen, frame, 0, 0);
}

/* A stream's delta goes to a subscription that has the stream's message already (seq below
 * next_seq), in the order the deltas came; anything else holds it where the messages wait, and
 * the drain sends it after its message. The client applies only the bytes beyond what it has,
 * so a delta the replay or a catch-up already covered costs nothing. */
static void sub_deliver_delta(struct app *a, struct sub *s, int64_t seq, int64_t offset,
                              int64_t mgen, struct outq_chunk *frame) {
  if (!s->live || s->catching_up || s->fenced) {
    sub_hold_x(s, seq, mgen, frame, 1, offset);
    if (s->catching_up && mgen > s->member_gen)
      s->recheck = 1;
    return;
  }
  if (mgen > s->member_gen) {
    sub_hold_x(s, seq, mgen, frame, 1, offset);
    sub_catch_up(a, s);
    return;
  }
  if (seq >= s->next_seq) { /* its stream's message has not arrived yet */
    sub_hold_x(s, seq, mgen, frame, 1, offset);
    sub_gap_wait(a, s);
    return;
  }
  if (s->client->conn && net_ws_send_frame(s->client->conn, frame) == 0)
    a->metrics.deliveries++;
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

/* By seq; a stream's message before its deltas, its deltas by offset. */
static int held_cmp(const void *x, const void *y) {
  const struct held_frame *p = x, *q = y;
  if (p->seq != q->seq)
    return p->seq < q->seq ? -1 : 1;
  if (p->delta != q->delta)
    return p->delta - q->delta;
  return p->offset < q->offset ? -1 : p->offset > q->offset;
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
    if (held[i].delta)
      sub_deliver_delta(a, s, held[i].seq, held[i].offset, held[i].mgen, held[i].frame);
    else
      sub_deliver(a, s, held[i].seq, held[i].mgen, held[i].frame);
    outq_chunk_unref(held[i].frame);
  }
  s->draining = 0;
  if (s->n_held == 0)
    sub_gap_unlist(a, s); /* filled */
  free(held);
}

/* Holds (fenced = 1) or releases a subscription's deliveries; a release with verify = 1 drops
 * what was held and reads it again from the store, which checks membership. */
static void sub_fence(struct app *a, struct sub *s, int fenced, int verify) {
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

void app__room_deliver_delta(struct app *a, struct room *r, int64_t seq, int64_t offset,
                             int64_t mgen, struct outq_chunk *frame) {
  struct sub *s, *tmp;
  DL_FOREACH_SAFE2(r->subs, s, tmp, rnext) {
    sub_deliver_delta(a, s, seq, offset, mgen, frame);
  }
}

void app__subs_bus_delta(struct app *a, const char *slug, int64_t seq, int64_t offset,
                         int64_t mgen, struct outq_chunk *frame) {
  struct room *r = app__room_find(a, slug);
  if (r)
    app__room_deliver_delta(a, r, seq, offset, mgen, frame);
}

/* The missed messages of one subscription, from its next_seq. */
static void on_catch_up(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct catch_up_ctx *ctx = sreq->ctx;
  struct app *a = cl->app;
  struct sub *s;
  const char *slug = sreq->in.slug;

  if (cl->conn == NULL)
    goto done;
  s = app__sub_find(cl, slug);
  if (s == NULL || s->gen != ctx->sub_gen || !s->catching_up)
    goto done; /* unsubscribed or subscribed again meanwhile */
  s->catching_up = 0;
  if (sreq->status == 0 && sreq->out.chat.member_gen > s->member_gen)
    s->member_gen = sreq->out.chat.member_gen; /* access confirmed as of this generation */
  if (sreq->status == PARLEY_EFORBIDDEN || sreq->status == PARLEY_ENOT_FOUND) {
    /* Removed (or the chat archived) while the news was on its way: cut access now. */
    app__sub_free(a, s);
    app__notify_local(a, &cl->user->id, 1, "removed", json_pack("{s:s, s:n}", "chat", slug, "by"));
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
  struct catch_up_ctx *ctx;
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
  ctx->sub_gen = s->gen;
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", s->room->slug);
  sreq->in.user_id = s->client->user->id;
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
  struct room *r = app__room_find(a, slug);
  struct sub *s;
  if (r == NULL)
    return;
  DL_FOREACH2(r->subs, s, rnext) {
    if (s->member_gen == gen - 1)
      s->member_gen = gen;
  }
}

/* The bus may have missed messages of this room: every subscription checks the store. */
static void room_catch_up(struct app *a, struct room *r) {
  struct sub *s;
  DL_FOREACH2(r->subs, s, rnext) {
    /* A sub whose replay (or catch-up) is in flight may have been read before the bus was
     * listening: it reads again once that answer is in. */
    s->recheck = 1;
    if (s->live && !s->catching_up)
      sub_catch_up(a, s);
  }
}

void app__drop_user_subs_here(struct app *a, int64_t user_id, const char *slug) {
  struct app_user *au;
  struct client *cl;
  HASH_FIND(hh, a->users, &user_id, sizeof user_id, au);
  if (au == NULL)
    return;
  DL_FOREACH2(au->clients, cl, unext) {
    struct sub *s = app__sub_find(cl, slug);
    if (s)
      app__sub_free(a, s);
  }
}

struct sub *app__sub_open(struct app *a, struct client *cl, const char *slug) {
  struct sub *s = app__sub_find(cl, slug);
  if (s == NULL) {
    struct room *r = app__room_get(a, slug);
    s = r ? calloc(1, sizeof *s) : NULL;
    if (s == NULL)
      return NULL;
    s->room = r;
    s->client = cl;
    /* A removal of this user under way on some node holds the new subscription too. */
    s->fenced = app__bus_fenced(a, cl->user->username, r->slug);
    DL_APPEND2(r->subs, s, rprev, rnext);
    DL_APPEND2(cl->subs, s, cprev, cnext);
    r->n_subs++;
  }
  /* (Re)subscribing restarts the seam: hold live messages until the replay is in. */
  s->gen++;
  s->live = 0;
  s->catching_up = 0; /* a catch-up in flight belongs to the old generation */
  sub_drop_held(s);
  return s;
}

void app__sub_go_live(struct app *a, struct sub *s, int64_t last_seq, int64_t member_gen) {
  /* The replay covered everything up to lastSeq; what was held back beyond it goes next. */
  s->live = 1;
  s->next_seq = last_seq + 1;
  s->member_gen = member_gen;
  sub_drain_held(a, s);
  if (s->recheck) /* the bus subscription became effective after the replay was read */
    sub_catch_up(a, s);
}

void app__subs_bus_msg(struct app *a, const char *slug, int64_t seq, int64_t mgen,
                       struct outq_chunk *frame) {
  struct room *r = app__room_find(a, slug);
  if (r) /* else nobody here has the chat open any more */
    app__room_deliver_msg(a, r, seq, mgen, frame);
}

void app__subs_room_ready(struct app *a, const char *slug) {
  struct room *r = app__room_find(a, slug);
  if (r == NULL)
    return;
  r->bus_ready = 1;
  room_catch_up(a, r);
}

void app__subs_fence(struct app *a, const char *username, const char *slug, int fenced,
                     int verify) {
  struct app_user *au, *tmp;
  HASH_ITER(hh, a->users, au, tmp) {
    struct client *cl, *ctmp;
    if (strcmp(au->user.username, username) != 0)
      continue;
    DL_FOREACH_SAFE2(au->clients, cl, ctmp, unext) {
      struct sub *sb, *stmp;
      DL_FOREACH_SAFE2(cl->subs, sb, stmp, cnext) {
        if (strcmp(sb->room->slug, slug) == 0)
          sub_fence(a, sb, fenced, verify);
      }
    }
  }
}
