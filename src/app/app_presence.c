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
 *
 * Several nodes (PARLEY_BUS): a user is online if online on any node. Each node states its own
 * view of its users (core/presence.h, grace included) in the bus (bus_presence_put: keys in
 * Redis), valid PRES_TTL_MS and refreshed three times as often, and every node sweeps expired
 * statements each tick, so a node that dies stops counting after the TTL. The bus reports each
 * change of the aggregate once, to the node whose call made it; that node asks the store for the
 * audience, persists lastSeen when offline, and announces the event on the bus ("p"); every
 * node sends it to its sockets of the audience and of its own search watchers, and keeps the
 * aggregate (app->pcache) for the snapshots it serves (sub, chat.get, users.search).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/app.h"
#include "common/error.h"
#include "common/log.h"

#define TYPING_NAMES_MAX 5 /* typers named in an event; the rest are counted in `others` */
/* A node's presence statements last PARLEY_PRESENCE_NODE_TTL_MS (15 s) unless refreshed, which
 * each node does three times per TTL. */
#define PRES_TTL_MS (a->cfg.presence_node_ttl_ms)
#define PRES_REFRESH_MS ((uint64_t)a->cfg.presence_node_ttl_ms / 3)

/* A user's presence across nodes, as last announced. */
struct app_pcache {
  int64_t id;
  int state; /* enum presence_state */
  int64_t last_seen;
  UT_hash_handle hh;
};

static int clustered(const struct app *a) {
  return !a->bus_solo && a->bus != NULL;
}

static void pcache_set(struct app *a, int64_t id, int state, int64_t last_seen) {
  struct app_pcache *c;
  HASH_FIND(hh, a->pcache, &id, sizeof id, c);
  if (c == NULL) {
    c = calloc(1, sizeof *c);
    if (c == NULL)
      return;
    c->id = id;
    HASH_ADD(hh, a->pcache, id, sizeof c->id, c);
  }
  c->state = state;
  if (last_seen > c->last_seen)
    c->last_seen = last_seen;
}

void app__presence_dispose(struct app *a) {
  struct app_pcache *c, *tmp;
  HASH_ITER(hh, a->pcache, c, tmp) {
    HASH_DEL(a->pcache, c);
    free(c);
  }
}

/* --- presence ------------------------------------------------------------------------------ */

static json_t *presence_event(const struct app_user *au) {
  return json_pack("{s:{s:I, s:s}, s:s, s:o}", "user", "id", (json_int_t)au->id, "username",
                   au->user.username, "state", presence_state_name(au->pres.state), "lastSeen",
                   au->pres.last_seen ? json_integer(au->pres.last_seen) : json_null());
}

json_t *app__presence_json(struct app *a, const struct store_user *u) {
  struct app_user *au;
  struct app_pcache *c = NULL;
  int state = PRESENCE_OFFLINE;
  int64_t last = u->last_seen;
  HASH_FIND(hh, a->users, &u->id, sizeof u->id, au);
  if (au && !clustered(a))
    return presence_event(au);
  if (au) {
    state = au->pres.state;
    if (au->pres.last_seen > last)
      last = au->pres.last_seen;
  }
  if (clustered(a))
    HASH_FIND(hh, a->pcache, &u->id, sizeof u->id, c);
  /* The announced aggregate; this node's own sockets are a floor while its news is on the way. */
  if (c && c->state > state)
    state = c->state;
  if (c && c->last_seen > last)
    last = c->last_seen;
  return json_pack("{s:{s:I, s:s}, s:s, s:o}", "user", "id", (json_int_t)u->id, "username",
                   u->username, "state", presence_state_name((enum presence_state)state),
                   "lastSeen", last ? json_integer(last) : json_null());
}

/* Sends a presence event (encoded) about user_id to the sockets here of ids and of the user's
 * watchers here. */
static void presence_deliver(struct app *a, int64_t user_id, const int64_t *ids, size_t n,
                             const char *json, size_t len) {
  struct app_watch *w;
  int64_t *all;
  size_t k = 0;
  HASH_FIND(hh, a->watches, &user_id, sizeof user_id, w);
  all = malloc((n + (w ? w->n : 0) + 1) * sizeof *all);
  if (all == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    all[k++] = ids[i];
  for (size_t i = 0; w && i < w->n; i++)
    all[k++] = w->watchers[i];
  app__notify_here(a, all, k, json, len);
  free(all);
}

void app__presence_remote(struct app *a, int64_t user_id, int state, int64_t last_seen,
                          const int64_t *ids, size_t n, const char *json, size_t len) {
  if (state < PRESENCE_OFFLINE || state > PRESENCE_ONLINE)
    return;
  pcache_set(a, user_id, state, last_seen);
  if (json)
    presence_deliver(a, user_id, ids, n, json, len);
}

/* A change of a user's presence across nodes that this node is to announce. */
struct announce_ctx {
  struct app *app;
  struct bus_presence p;
};

static void on_announce_audience(struct store_req *sreq) {
  struct announce_ctx *ctx = sreq->ctx;
  struct app *a = ctx->app;
  const struct bus_presence *p = &ctx->p;
  int64_t *ids;
  size_t n = 0, len;
  char *json;

  if (sreq->status) {
    log_warn("presence audience: %s", parley_strerror(sreq->status));
    goto done;
  }
  ids = malloc((sreq->out.n_member_ids + 1) * sizeof *ids);
  json = proto_event("presence",
                     json_pack("{s:{s:I, s:s}, s:s, s:o}", "user", "id", (json_int_t)p->user_id,
                               "username", p->name, "state",
                               presence_state_name((enum presence_state)p->state), "lastSeen",
                               p->last_seen ? json_integer(p->last_seen) : json_null()),
                     &len);
  if (ids && json) {
    for (size_t i = 0; i < sreq->out.n_member_ids; i++)
      ids[n++] = sreq->out.member_ids[i];
    ids[n++] = p->user_id; /* the user's own tabs, on every node */
    app__bus_publish_presence(a, p->user_id, p->state, p->last_seen, ids, n, json, len);
    presence_deliver(a, p->user_id, ids, n, json, len);
  }
  free(ids);
  free(json);
done:
  free(ctx);
  store_req_free(sreq);
}

static void announce(struct app *a, const struct bus_presence *p) {
  struct store_req *sreq;
  struct announce_ctx *ctx;
  if (p->state < PRESENCE_OFFLINE || p->state > PRESENCE_ONLINE || p->name[0] == '\0')
    return;
  pcache_set(a, p->user_id, p->state, p->last_seen);
  /* The other nodes' snapshots change now; the event follows once the audience is known. */
  app__bus_publish_presence(a, p->user_id, p->state, p->last_seen, NULL, 0, NULL, 0);
  if (p->state == PRESENCE_OFFLINE && p->last_seen) {
    /* lastSeen is durable; after a node died nobody else would write it. */
    struct store_req *seen = store_req_new(STORE_USER_SEEN);
    if (seen) {
      seen->in.user_id = p->user_id;
      seen->in.seq = p->last_seen;
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
  ctx->p = *p;
  sreq->in.user_id = p->user_id;
  sreq->ctx = ctx;
  if (app__submit(a, NULL, sreq, on_announce_audience) != 0)
    free(ctx);
}

static void on_changes(void *arg, int status, const struct bus_presence *changed, size_t n) {
  struct app *a = arg;
  if (status) {
    log_debug("bus presence: %s", parley_strerror(status));
    return;
  }
  for (size_t i = 0; i < n; i++)
    announce(a, &changed[i]);
}

/* States this node's view of au in the bus. */
static void presence_state_here(struct app *a, struct app_user *au) {
  struct bus_presence p;
  int err;
  memset(&p, 0, sizeof p);
  p.user_id = au->id;
  p.state = (int)au->pres.state;
  p.last_seen = au->pres.last_seen;
  snprintf(p.name, sizeof p.name, "%s", au->user.username);
  err = bus_presence_put(a->bus, &p, app__now(a) + PRES_TTL_MS, on_changes, a);
  if (err)
    log_debug("bus presence of user %lld not stated: %s", (long long)au->id,
              parley_strerror(err)); /* stated again when the bus is back */
}

static void on_list(void *arg, int status, const struct bus_presence *list, size_t n) {
  struct app *a = arg;
  struct app_pcache *c, *tmp;
  if (status)
    return;
  /* Everyone not listed is offline now (their lastSeen stays). */
  HASH_ITER(hh, a->pcache, c, tmp) {
    c->state = PRESENCE_OFFLINE;
  }
  for (size_t i = 0; i < n; i++)
    pcache_set(a, list[i].user_id, list[i].state, list[i].last_seen);
}

void app__presence_bus_up(struct app *a) {
  struct app_user *au;
  if (!clustered(a))
    return;
  for (au = a->users; au; au = au->hh.next) {
    if (au->pres.state != PRESENCE_OFFLINE)
      presence_state_here(a, au); /* it may have expired while the bus was away */
  }
  bus_presence_list(a->bus, on_list, a);
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
  /* One node: its view is the whole truth (several: see announce()). */
  app__notify_local(a, ids, n, "presence", json_incref(ctx->event));
  free(ids);
done:
  json_decref(ctx->event);
  free(ctx);
  store_req_free(sreq);
}

static void presence_publish(struct app *a, struct app_user *au) {
  struct store_req *sreq;
  struct audience_ctx *ctx;

  if (clustered(a)) {
    /* The bus decides whether the user's state across nodes changed, and who announces it. */
    presence_state_here(a, au);
    if (au->pres.state != PRESENCE_OFFLINE)
      return;
  }

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
  if (clustered(a))
    return;
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

/* Several nodes: statements of dead nodes end (anyone's sweep), ours are kept alive. */
static void presence_cluster_tick(struct app *a, int64_t now) {
  uint64_t loop_now = uv_now(a->loop);
  bus_presence_sweep(a->bus, now, PRES_TTL_MS, on_changes, a);
  if (loop_now - a->pres_refreshed >= PRES_REFRESH_MS) {
    struct app_user *au;
    size_t n = 0, cap = HASH_COUNT(a->users);
    int64_t *ids = malloc((cap ? cap : 1) * sizeof *ids);
    a->pres_refreshed = loop_now;
    if (ids == NULL)
      return;
    for (au = a->users; au; au = au->hh.next)
      if (au->pres.state != PRESENCE_OFFLINE)
        ids[n++] = au->id;
    bus_presence_refresh(a->bus, ids, n, now + PRES_TTL_MS);
    free(ids);
  }
}

void app__presence_tick(struct app *a) {
  struct app_user *au, *tmp;
  int64_t now = app__now(a);
  if (clustered(a))
    presence_cluster_tick(a, now);
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
  /* A change of this node's own state is news for the other nodes with the chat open. */
  if (what & ROOM_DIRTY_REMOTE)
    what &= ~ROOM_DIRTY_REMOTE;
  else if (!a->bus_solo)
    what |= ROOM_DIRTY_PUBLISH;
  if (r->dirty == 0) {
    r->dnext = a->dirty_rooms;
    a->dirty_rooms = r;
  }
  r->dirty |= what;
}

static void remote_free(struct room_remote *rr) {
  json_decref(rr->typing);
  json_decref(rr->active);
  free(rr);
}

void app__room_free(struct room *r) {
  while (r->remote) {
    struct room_remote *rr = r->remote;
    r->remote = rr->next;
    remote_free(rr);
  }
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

static int listed_id(json_t *users, json_int_t id) {
  size_t i;
  json_t *u;
  json_array_foreach(users, i, u) {
    if (json_integer_value(json_object_get(u, "id")) == id)
      return 1;
  }
  return 0;
}

/* This node's typers first, then other nodes' (a user typing on two nodes counts once). */
json_t *app__room_typing_json(struct app *a, struct room *r, json_t **others) {
  json_t *users = json_array();
  json_t *more_ids = json_array(); /* typers counted in `others`, as {id} */
  size_t listed = 0;
  for (size_t i = 0; i < r->typing.n; i++) {
    json_t *u;
    if (listed == TYPING_NAMES_MAX) {
      json_array_append_new(more_ids, json_pack("{s:I}", "id", (json_int_t)r->typing.e[i].user_id));
      continue;
    }
    u = user_json_by_id(a, r->typing.e[i].user_id);
    if (u) {
      json_array_append_new(users, u);
      listed++;
    }
  }
  for (struct room_remote *rr = r->remote; rr; rr = rr->next) {
    size_t i;
    json_t *t;
    json_array_foreach(rr->typing, i, t) {
      json_t *u = json_object_get(t, "user");
      json_int_t id = json_integer_value(json_object_get(u, "id"));
      if (listed_id(users, id) || listed_id(more_ids, id))
        continue;
      if (listed == TYPING_NAMES_MAX) {
        json_array_append_new(more_ids, json_pack("{s:I}", "id", id));
        continue;
      }
      json_array_append(users, u);
      listed++;
    }
  }
  *others = json_integer((json_int_t)json_array_size(more_ids));
  json_decref(more_ids);
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
  for (struct room_remote *rr = r ? r->remote : NULL; rr; rr = rr->next) {
    size_t i;
    json_t *u;
    json_array_foreach(rr->active, i, u) {
      if (!listed_id(users, json_integer_value(json_object_get(u, "id"))))
        json_array_append(users, u);
    }
  }
  return users;
}

json_t *app__room_local_state(struct app *a, struct room *r) {
  json_t *o = json_object();
  int64_t now = app__now(a);
  if (r->typing.n) {
    json_t *typing = json_array();
    for (size_t i = 0; i < r->typing.n; i++) {
      json_t *u = user_json_by_id(a, r->typing.e[i].user_id);
      int64_t left = r->typing.e[i].expires_at - now;
      if (u && left > 0)
        json_array_append_new(typing, json_pack("{s:o, s:I}", "user", u, "ttl", (json_int_t)left));
      else
        json_decref(u);
    }
    json_object_set_new(o, "typing", typing);
  }
  if (r->n_active) {
    json_t *active = json_array();
    for (size_t i = 0; i < r->n_active; i++) {
      json_t *u = user_json_by_id(a, r->active[i].user_id);
      if (u)
        json_array_append_new(active, u);
    }
    json_object_set_new(o, "active", active);
  }
  return o;
}

static int user_obj_ok(json_t *u) {
  return json_is_object(u) && json_is_integer(json_object_get(u, "id")) &&
         json_is_string(json_object_get(u, "username"));
}

void app__room_remote_set(struct app *a, struct room *r, const char *node, json_t *state) {
  struct room_remote **pp = &r->remote, *rr;
  json_t *typing = json_array(), *active = json_array(), *t;
  int64_t now = app__now(a);
  size_t i;
  unsigned what = ROOM_DIRTY_REMOTE;

  /* Typers arrive with their time left: the same TTL counts here from now. */
  json_array_foreach(json_object_get(state, "typing"), i, t) {
    json_t *u = json_object_get(t, "user");
    json_int_t left = json_integer_value(json_object_get(t, "ttl"));
    if (user_obj_ok(u) && left > 0 && left <= a->cfg.typing_ttl_ms)
      json_array_append_new(typing,
                            json_pack("{s:O, s:I}", "user", u, "exp", (json_int_t)(now + left)));
  }
  json_array_foreach(json_object_get(state, "active"), i, t) {
    if (user_obj_ok(t))
      json_array_append(active, t);
  }
  while (*pp && strcmp((*pp)->node, node) != 0)
    pp = &(*pp)->next;
  rr = *pp;
  if (rr == NULL && json_array_size(typing) == 0 && json_array_size(active) == 0)
    goto done; /* nothing known from it, nothing now */
  if (rr == NULL) {
    rr = calloc(1, sizeof *rr);
    if (rr == NULL)
      goto done;
    snprintf(rr->node, sizeof rr->node, "%s", node);
    rr->typing = json_array();
    rr->active = json_array();
    rr->next = r->remote;
    r->remote = rr;
    pp = &r->remote;
  }
  /* Tell the room only what changed: a typer's refresh is not news. */
  {
    json_t *ot, *nt;
    size_t j;
    int same = json_array_size(rr->typing) == json_array_size(typing);
    for (j = 0; same && j < json_array_size(typing); j++) {
      ot = json_object_get(json_array_get(rr->typing, j), "user");
      nt = json_object_get(json_array_get(typing, j), "user");
      same = json_equal(ot, nt);
    }
    if (!same)
      what |= ROOM_DIRTY_TYPING;
    if (!json_equal(rr->active, active))
      what |= ROOM_DIRTY_ACTIVE;
  }
  json_decref(rr->typing);
  json_decref(rr->active);
  rr->typing = json_incref(typing);
  rr->active = json_incref(active);
  if (json_array_size(typing) == 0 && json_array_size(active) == 0) {
    *pp = rr->next;
    remote_free(rr);
  }
  if (what != ROOM_DIRTY_REMOTE)
    app__room_mark(a, r, what);
done:
  json_decref(typing);
  json_decref(active);
}

void app__rooms_forget_node(struct app *a, const char *node) {
  struct room *r, *tmp;
  HASH_ITER(hh, a->rooms, r, tmp) {
    app__room_remote_set(a, r, node, NULL);
  }
}

/* Drops other nodes' typers whose time is up; 1 if any was. */
static int remote_typing_expire(struct room *r, int64_t now) {
  int changed = 0;
  for (struct room_remote *rr = r->remote; rr; rr = rr->next) {
    for (size_t i = 0; i < json_array_size(rr->typing);) {
      if (json_integer_value(json_object_get(json_array_get(rr->typing, i), "exp")) <= now) {
        json_array_remove(rr->typing, i);
        changed = 1;
      } else {
        i++;
      }
    }
  }
  return changed;
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
    if (what & ROOM_DIRTY_PUBLISH)
      app__bus_publish_room_state(a, r);
  }
}

void app__rooms_tick(struct app *a) {
  struct room *r, *tmp;
  int64_t now = app__now(a);
  HASH_ITER(hh, a->rooms, r, tmp) {
    if (r->typing.n && typing_expire(&r->typing, now))
      app__room_mark(a, r, ROOM_DIRTY_TYPING);
    /* Each node expires the others' typers by the same TTL, so a dead node's stop too. */
    if (r->remote && remote_typing_expire(r, now))
      app__room_mark(a, r, ROOM_DIRTY_TYPING | ROOM_DIRTY_REMOTE);
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
  else if (changed == 0 && req->on && !a->bus_solo)
    app__room_mark(a, r, ROOM_DIRTY_PUBLISH); /* a refresh: the other nodes' TTL restarts */
  app__reply_ok(cl, req, NULL);
}
