/* presence.c - users' presence: online, away or offline, and lastSeen.
 *
 * The rules are core's (core/presence.h); this file keeps the state per user and sends the
 * events. It also keeps the users' lifetime here: attached at auth, detached when a socket
 * closes, freed once offline after the grace.
 *
 * Presence goes only to those allowed to see it: users who share a chat with the user (asked
 * from the store at each change, which is rare) and users who found them with users.search.
 *
 * One pipeline, whether alone or one of several nodes: a user is online if online on any node.
 * Each node states its own view of its users (core/presence.h, grace included) in the bus
 * (bus_presence_put: keys in Redis; on a single node bus_local.c keeps them), valid PRES_TTL_MS and refreshed three times as often, and every node sweeps expired
 * statements each tick, so a node that dies stops counting after the TTL. The bus reports each
 * change of the aggregate once, to the node whose call made it; that node asks the store for the
 * audience, persists lastSeen when offline, and announces the event on the bus ("p"); every
 * node sends it to its sockets of the audience and of its own search watchers, and keeps the
 * aggregate (app->pcache) for the snapshots it serves (sub, chat.get, users.search).
 */
#include "app/presence.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/cluster.h"
#include "app/presence_batch.h"
#include "bus/bus.h"
#include "common/error.h"
#include "common/log.h"
#include "proto/proto.h"

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

/* Reverse index of app_user.watching: who watches a user's presence through search. */
struct app_watch {
  int64_t id;
  int64_t *watchers;
  size_t n, cap;
  UT_hash_handle hh;
};

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
  a->presence_gen++;
  c->state = state;
  if (last_seen > c->last_seen)
    c->last_seen = last_seen;
}

void app__presence_dispose(struct app *a) {
  struct app_pcache *c, *tmp;
  struct app_user *au, *autmp;
  struct app_watch *w, *wtmp;
  HASH_ITER(hh, a->users, au, autmp) {
    app__presence_batch_forget(a, au);
    HASH_DEL(a->users, au);
    free(au);
  }
  HASH_ITER(hh, a->watches, w, wtmp) {
    HASH_DEL(a->watches, w);
    free(w->watchers);
    free(w);
  }
  HASH_ITER(hh, a->pcache, c, tmp) {
    HASH_DEL(a->pcache, c);
    free(c);
  }
}

/* The one wire form of a user's presence (snapshots and events): {user, state, lastSeen}. */
json_t *app__presence_pack(int64_t id, const char *username, int state, int64_t last_seen) {
  return json_pack("{s:{s:I, s:s}, s:s, s:o}", "user", "id", (json_int_t)id, "username",
                   username, "state", presence_state_name((enum presence_state)state), "lastSeen",
                   last_seen ? json_integer(last_seen) : json_null());
}

int app__presence_of(struct app *a, int64_t id, int64_t *last) {
  struct app_user *au;
  struct app_pcache *c = NULL;
  int state = PRESENCE_OFFLINE;
  HASH_FIND(hh, a->users, &id, sizeof id, au);
  if (au) {
    state = au->pres.state;
    if (au->pres.last_seen > *last)
      *last = au->pres.last_seen;
  }
  HASH_FIND(hh, a->pcache, &id, sizeof id, c);
  /* The announced aggregate; this node's own sockets are a floor while its news is on the way. */
  if (c && c->state > state)
    state = c->state;
  if (c && c->last_seen > *last)
    *last = c->last_seen;
  return state;
}

int app__presence_state(struct app *a, int64_t id) {
  int64_t last = 0;
  return app__presence_of(a, id, &last);
}

json_t *app__presence_json(struct app *a, const struct store_user *u) {
  int64_t last = u->last_seen;
  int state = app__presence_of(a, u->id, &last);
  return app__presence_pack(u->id, u->username, state, last);
}

/* Sends a presence event (encoded) about user_id to the sockets here of ids and of the user's
 * watchers here, coalesced per recipient in a storm (presence_batch.c). */
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
  app__presence_batch_deliver(a, user_id, all, k, json, len, k);
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
  json = proto_event("presence", app__presence_pack(p->user_id, p->name, p->state, p->last_seen),
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
      seen->in.last_seen = p->last_seen;
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
  a->presence_gen++;
  HASH_ITER(hh, a->pcache, c, tmp) {
    c->state = PRESENCE_OFFLINE;
  }
  for (size_t i = 0; i < n; i++)
    pcache_set(a, list[i].user_id, list[i].state, list[i].last_seen);
}

void app__presence_bus_up(struct app *a) {
  struct app_user *au;
  if (a->bus == NULL)
    return;
  for (au = a->users; au; au = au->hh.next) {
    if (au->pres.state != PRESENCE_OFFLINE)
      presence_state_here(a, au); /* it may have expired while the bus was away */
  }
  bus_presence_list(a->bus, on_list, a);
}

/* au's state here changed: the bus (bus_local.c on a single node, so there is one pipeline)
 * decides whether the user's state across nodes changed, and on_changes announces it. */
static void presence_publish(struct app *a, struct app_user *au) {
  if (a->bus)
    presence_state_here(a, au);
}

/* After core/presence.h had its say on au (was: its state and lastSeen before): what this node
 * shows of au may have changed. */
static void presence_touched(struct app *a, const struct app_user *au, struct presence_user was) {
  if (au->pres.state != was.state || au->pres.last_seen != was.last_seen)
    a->presence_gen++;
}

static void presence_attached(struct app *a, struct app_user *au) {
  struct presence_user was = au->pres;
  if (presence_connect(&au->pres, app__now(a)))
    presence_publish(a, au);
  presence_touched(a, au, was);
}

static void presence_detached(struct app *a, struct app_user *au, struct client *cl) {
  struct presence_user was = au->pres;
  if (presence_disconnect(&au->pres, cl->active, app__now(a)))
    presence_publish(a, au);
  presence_touched(a, au, was);
}

void app__presence_report(struct app *a, struct app_user *au, struct client *cl, int active) {
  struct presence_user was = au->pres;
  if (presence_activity(&au->pres, cl->active, active, app__now(a)))
    presence_publish(a, au);
  presence_touched(a, au, was);
  cl->active = active;
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
  app__presence_batch_forget(a, au);
  for (int i = 0; i < au->n_watching; i++)
    watch_remove(a, au->watching[i], au->id);
  HASH_DEL(a->users, au);
  a->presence_gen++;
  free(au);
}

/* Statements of dead nodes end (anyone's sweep), ours are kept alive. */
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
  if (a->bus)
    presence_cluster_tick(a, now);
  HASH_ITER(hh, a->users, au, tmp) {
    struct presence_user was = au->pres;
    if (au->n_clients > 0)
      continue;
    if (presence_tick(&au->pres, now, a->cfg.presence_grace_ms))
      presence_publish(a, au);
    presence_touched(a, au, was);
    if (au->pres.gone_at == 0 && au->pins == 0)
      user_free(a, au); /* offline and published, and no client points at its names */
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
    seen->in.last_seen = au->n_clients > 0 ? now : au->pres.last_seen;
    app__submit(a, NULL, seen, (store_cb)store_req_free);
  }
}

int app__user_attach(struct app *a, struct client *cl, const struct store_user *u,
                     const uint8_t *session_hash, int64_t expires_at) {
  struct app_user *au;
  HASH_FIND(hh, a->users, &u->id, sizeof u->id, au);
  if (au && au->n_clients >= a->cfg.max_conns_per_user)
    return PARLEY_ERATE_LIMITED;
  if (au == NULL) {
    au = calloc(1, sizeof *au);
    if (au == NULL)
      return PARLEY_EINTERNAL;
    au->id = u->id;
    HASH_ADD(hh, a->users, id, sizeof au->id, au);
  } else if (memcmp(&au->user, u, sizeof *u) != 0) {
    a->users_gen++; /* (a new user here is in no room's activeUsers yet) */
  }
  au->user = *u;
  if (cl->is_ws && !cl->authed)
    DL_DELETE2(a->unauthed, cl, uprev, unext);
  DL_APPEND2(au->clients, cl, uprev, unext);
  au->n_clients++;
  cl->authed = 1;
  if (cl->au != au) {
    if (cl->au)
      cl->au->pins--;
    cl->au = au;
    au->pins++;
  }
  cl->user = &au->user;
  memcpy(cl->session_hash, session_hash, STORE_TOKEN_HASH_LEN);
  cl->session_expires_at = expires_at;
  cl->active = 1;
  presence_attached(a, au);
  return 0;
}

void app__user_detach(struct app *a, struct client *cl) {
  struct app_user *au;
  if (!cl->authed) {
    if (cl->is_ws)
      DL_DELETE2(a->unauthed, cl, uprev, unext);
    return;
  }
  HASH_FIND(hh, a->users, &cl->user->id, sizeof cl->user->id, au);
  if (au == NULL)
    return;
  DL_DELETE2(au->clients, cl, uprev, unext);
  au->n_clients--;
  /* The entry outlives its last socket for the presence grace (app__presence_tick frees it),
   * which also keeps its rate-limit buckets across a quick reconnect. */
  presence_detached(a, au, cl);
  cl->authed = 0;
}
