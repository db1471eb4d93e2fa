/* app_presence.c - presence, typing and activeUsers: the live state that is never a message.
 *
 * The rules are core's (core/presence.h, core/typing.h); this file keeps the state per user and
 * per room and sends the events. Typing and activeUsers changes mark their room dirty, and one
 * event per room goes out just before net writes the sockets (net calls on_before_flush at the
 * start of its flusher), so a burst of changes in one loop turn costs one event and adds no
 * latency.
 *
 * Presence goes only to those allowed to see it: users who share a chat with the user (asked
 * from the store at each change, which is rare) and users who found them with users.search.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/app.h"
#include "common/error.h"
#include "common/log.h"

#define TYPING_NAMES_MAX 5 /* typers named in an event; the rest are counted in `others` */

/* --- presence ------------------------------------------------------------------------------ */

static json_t *presence_event(const struct app_user *au) {
  return json_pack("{s:{s:I, s:s}, s:s, s:o}", "user", "id", (json_int_t)au->id, "username",
                   au->user.username, "state", presence_state_name(au->pres.state), "lastSeen",
                   au->pres.last_seen ? json_integer(au->pres.last_seen) : json_null());
}

json_t *app__presence_json(struct app *a, const struct store_user *u) {
  struct app_user *au;
  HASH_FIND(hh, a->users, &u->id, sizeof u->id, au);
  if (au)
    return presence_event(au);
  return json_pack("{s:{s:I, s:s}, s:s, s:o}", "user", "id", (json_int_t)u->id, "username",
                   u->username, "state", "offline", "lastSeen",
                   u->last_seen ? json_integer(u->last_seen) : json_null());
}

struct audience_ctx {
  struct app *app;
  json_t *event;
  int64_t user_id;
};

static void on_audience_done(struct store_req *sreq) {
  struct audience_ctx *ctx = sreq->ctx;
  struct app *a = ctx->app;
  struct app_watch *w;
  int64_t *ids;
  size_t n = 0, cap;

  if (sreq->status) {
    log_warn("presence audience: %s", parley_strerror(sreq->status));
    goto done;
  }
  HASH_FIND(hh, a->watches, &ctx->user_id, sizeof ctx->user_id, w);
  cap = sreq->out.n_member_ids + (w ? w->n : 0) + 1;
  ids = malloc(cap * sizeof *ids);
  if (ids == NULL)
    goto done;
  for (size_t i = 0; i < sreq->out.n_member_ids; i++)
    ids[n++] = sreq->out.member_ids[i];
  for (size_t i = 0; w && i < w->n; i++)
    ids[n++] = w->watchers[i];
  ids[n++] = ctx->user_id; /* the user's other tabs show their own state too */
  app__notify_users(a, ids, n, "presence", json_incref(ctx->event));
  free(ids);
done:
  json_decref(ctx->event);
  free(ctx);
  store_req_free(sreq);
}

static void presence_publish(struct app *a, struct app_user *au) {
  struct store_req *sreq;
  struct audience_ctx *ctx;

  if (au->pres.state == PRESENCE_OFFLINE) {
    /* lastSeen is durable: shown for offline users after a restart too. */
    struct store_req *seen = store_req_new(STORE_USER_SEEN);
    if (seen) {
      seen->in.user_id = au->id;
      seen->in.seq = au->pres.last_seen;
      seen->ctx = NULL;
      app__submit(a, NULL, seen, (store_cb)store_req_free);
    }
  }
  sreq = store_req_new(STORE_PRESENCE_AUDIENCE);
  ctx = calloc(1, sizeof *ctx);
  if (sreq == NULL || ctx == NULL) {
    store_req_free(sreq);
    free(ctx);
    return;
  }
  ctx->app = a;
  ctx->event = presence_event(au);
  ctx->user_id = au->id;
  sreq->in.user_id = au->id;
  sreq->ctx = ctx;
  if (app__submit(a, NULL, sreq, on_audience_done) != 0) {
    json_decref(ctx->event);
    free(ctx);
  }
}

void app__presence_attached(struct app *a, struct app_user *au) {
  if (presence_connect(&au->pres, app__now(a)))
    presence_publish(a, au);
}

void app__presence_detached(struct app *a, struct app_user *au, struct client *cl) {
  if (presence_disconnect(&au->pres, cl->active, app__now(a)))
    presence_publish(a, au);
}

void app__op_presence(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct app_user *au;
  int active;

  if (strcmp(req->state, "active") == 0)
    active = 1;
  else if (strcmp(req->state, "idle") == 0 || strcmp(req->state, "hidden") == 0)
    active = 0;
  else {
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST,
                   "state: must be \"active\", \"idle\" or \"hidden\"");
    return;
  }
  HASH_FIND(hh, a->users, &cl->user.id, sizeof cl->user.id, au);
  if (au == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  if (a->cfg.rate_limits) {
    /* Each change is a store query and an event to everyone who can see the user. */
    int64_t wait =
        ratelimit_take(&au->presence_rl, a->cfg.presence_rate, a->cfg.presence_burst, app__now(a));
    if (wait > 0) {
      app__reply_rate_limited(cl, req, wait, "presence updates too fast");
      return;
    }
  }
  if (presence_activity(&au->pres, cl->active, active, app__now(a)))
    presence_publish(a, au);
  cl->active = active;
  app__reply_ok(cl, req, json_pack("{s:s}", "state", presence_state_name(au->pres.state)));
}

static void watch_remove(struct app *a, int64_t watched, int64_t watcher) {
  struct app_watch *w;
  HASH_FIND(hh, a->watches, &watched, sizeof watched, w);
  if (w == NULL)
    return;
  for (size_t i = 0; i < w->n; i++) {
    if (w->watchers[i] == watcher) {
      w->watchers[i] = w->watchers[--w->n];
      break;
    }
  }
  if (w->n == 0) {
    HASH_DEL(a->watches, w);
    free(w->watchers);
    free(w);
  }
}

void app__presence_watch(struct app *a, struct app_user *au, int64_t watched) {
  struct app_watch *w;
  const int max = (int)(sizeof au->watching / sizeof au->watching[0]);

  for (int i = 0; i < au->n_watching; i++)
    if (au->watching[i] == watched)
      return;
  if (au->n_watching == max) {
    /* Forget the oldest search result: presence of recent finds is what a user looks at. */
    watch_remove(a, au->watching[0], au->id);
    memmove(au->watching, au->watching + 1, (size_t)(max - 1) * sizeof au->watching[0]);
    au->n_watching--;
  }
  HASH_FIND(hh, a->watches, &watched, sizeof watched, w);
  if (w == NULL) {
    w = calloc(1, sizeof *w);
    if (w == NULL)
      return;
    w->id = watched;
    HASH_ADD(hh, a->watches, id, sizeof w->id, w);
  }
  if (w->n == w->cap) {
    size_t ncap = w->cap ? w->cap * 2 : 4;
    int64_t *n = realloc(w->watchers, ncap * sizeof *n);
    if (n == NULL)
      return;
    w->watchers = n;
    w->cap = ncap;
  }
  w->watchers[w->n++] = au->id;
  au->watching[au->n_watching++] = watched;
}

static void user_free(struct app *a, struct app_user *au) {
  for (int i = 0; i < au->n_watching; i++)
    watch_remove(a, au->watching[i], au->id);
  HASH_DEL(a->users, au);
  free(au);
}

void app__presence_tick(struct app *a) {
  struct app_user *au, *tmp;
  int64_t now = app__now(a);
  HASH_ITER(hh, a->users, au, tmp) {
    if (au->n_clients > 0)
      continue;
    if (presence_tick(&au->pres, now, a->cfg.presence_grace_ms))
      presence_publish(a, au);
    if (au->pres.gone_at == 0)
      user_free(a, au); /* offline and published: nothing left to keep */
  }
}

void app__presence_persist_all(struct app *a) {
  struct app_user *au;
  int64_t now = app__now(a);
  for (au = a->users; au; au = au->hh.next) {
    struct store_req *seen = store_req_new(STORE_USER_SEEN);
    if (seen == NULL)
      continue;
    seen->in.user_id = au->id;
    seen->in.seq = au->n_clients > 0 ? now : au->pres.last_seen;
    app__submit(a, NULL, seen, (store_cb)store_req_free);
  }
}

/* --- rooms: typing and activeUsers ----------------------------------------------------------- */

void app__room_mark(struct app *a, struct room *r, unsigned what) {
  if (r->dirty == 0) {
    r->dnext = a->dirty_rooms;
    a->dirty_rooms = r;
  }
  r->dirty |= what;
}

void app__room_free(struct room *r) {
  typing_dispose(&r->typing);
  free(r->active);
  free(r);
}

static json_t *user_json_by_id(struct app *a, int64_t id) {
  struct app_user *au;
  HASH_FIND(hh, a->users, &id, sizeof id, au);
  if (au == NULL)
    return NULL;
  return proto_user_json(&au->user);
}

json_t *app__room_typing_json(struct app *a, struct room *r, json_t **others) {
  json_t *users = json_array();
  size_t listed = 0, more = 0;
  for (size_t i = 0; i < r->typing.n; i++) {
    json_t *u;
    if (listed == TYPING_NAMES_MAX) {
      more++;
      continue;
    }
    u = user_json_by_id(a, r->typing.e[i].user_id);
    if (u) {
      json_array_append_new(users, u);
      listed++;
    }
  }
  *others = json_integer((json_int_t)more);
  return users;
}

json_t *app__chat_json(struct app *a, const struct store_chat *c) {
  json_t *o = proto_chat_json(c);
  json_object_set_new(o, "activeUsers", app__room_active_json(a, app__room_find(a, c->slug)));
  return o;
}

json_t *app__room_active_json(struct app *a, const struct room *r) {
  json_t *users = json_array();
  for (size_t i = 0; r && i < r->n_active; i++) {
    json_t *u = user_json_by_id(a, r->active[i].user_id);
    if (u)
      json_array_append_new(users, u);
  }
  return users;
}

void app__room_sub_added(struct app *a, struct room *r, int64_t user_id) {
  for (size_t i = 0; i < r->n_active; i++) {
    if (r->active[i].user_id == user_id) {
      r->active[i].subs++;
      return;
    }
  }
  if (r->n_active == r->cap_active) {
    size_t ncap = r->cap_active ? r->cap_active * 2 : 4;
    struct room_active *n = realloc(r->active, ncap * sizeof *n);
    if (n == NULL)
      return;
    r->active = n;
    r->cap_active = ncap;
  }
  r->active[r->n_active++] = (struct room_active){user_id, 1};
  app__room_mark(a, r, ROOM_DIRTY_ACTIVE);
}

void app__room_sub_removed(struct app *a, struct room *r, int64_t user_id) {
  /* Closing the chat (or losing the socket, or being removed) ends the user's typing there. */
  if (typing_off(&r->typing, user_id) == 1)
    app__room_mark(a, r, ROOM_DIRTY_TYPING);
  for (size_t i = 0; i < r->n_active; i++) {
    if (r->active[i].user_id != user_id)
      continue;
    if (--r->active[i].subs == 0) {
      memmove(&r->active[i], &r->active[i + 1], (r->n_active - i - 1) * sizeof r->active[0]);
      r->n_active--;
      app__room_mark(a, r, ROOM_DIRTY_ACTIVE);
    }
    return;
  }
}

/* Sends one event (encoded once) to the room's live subscribers. */
static void room_broadcast(struct room *r, const char *ev, json_t *fields) {
  struct outq_chunk *frame = app__event_frame(ev, fields);
  struct sub *s;
  if (frame == NULL)
    return;
  DL_FOREACH2(r->subs, s, rnext) {
    if (s->live && s->client->conn)
      net_ws_send_frame(s->client->conn, frame);
  }
  outq_chunk_unref(frame);
}

void app__rooms_flush(struct app *a) {
  while (a->dirty_rooms) {
    struct room *r = a->dirty_rooms;
    unsigned what = r->dirty;
    a->dirty_rooms = r->dnext;
    r->dirty = 0;
    r->dnext = NULL;
    if (what & ROOM_DIRTY_TYPING) {
      json_t *others;
      json_t *users = app__room_typing_json(a, r, &others);
      room_broadcast(
          r, "typing",
          json_pack("{s:s, s:o, s:o}", "chat", r->slug, "users", users, "others", others));
    }
    if (what & ROOM_DIRTY_ACTIVE)
      room_broadcast(
          r, "chat.active",
          json_pack("{s:s, s:o}", "chat", r->slug, "activeUsers", app__room_active_json(a, r)));
  }
}

void app__rooms_tick(struct app *a) {
  struct room *r, *tmp;
  int64_t now = app__now(a);
  HASH_ITER(hh, a->rooms, r, tmp) {
    if (r->typing.n && typing_expire(&r->typing, now))
      app__room_mark(a, r, ROOM_DIRTY_TYPING);
  }
}

void app__op_typing(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct app_user *au;
  struct room *r = app__room_find(a, req->chat);
  struct sub *s = NULL;
  int changed;

  if (r)
    DL_FOREACH2(r->subs, s, rnext) {
      if (s->client == cl && s->live)
        break;
    }
  if (s == NULL) {
    /* A live subscription is the proof of membership that keeps typing off the database: the
     * store authorized it, and removal ends it. One still waiting for that answer proves
     * nothing yet. */
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST, "typing: subscribe to the chat first");
    return;
  }
  HASH_FIND(hh, a->users, &cl->user.id, sizeof cl->user.id, au);
  if (a->cfg.rate_limits && au) {
    int64_t wait =
        ratelimit_take(&au->typing_rl, a->cfg.typing_rate, a->cfg.typing_burst, app__now(a));
    if (wait > 0) {
      app__reply_rate_limited(cl, req, wait, "typing updates too fast");
      return;
    }
  }
  if (req->on)
    changed = typing_on(&r->typing, cl->user.id, app__now(a), a->cfg.typing_ttl_ms);
  else
    changed = typing_off(&r->typing, cl->user.id);
  if (changed == 1)
    app__room_mark(a, r, ROOM_DIRTY_TYPING);
  app__reply_ok(cl, req, NULL);
}
