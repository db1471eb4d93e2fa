/* rooms.c - the chats open on this node (struct room) and their live state that is never a
 * message: who types (core/typing.h) and who has the chat open (activeUsers), here and, with
 * several nodes, on the others (their share arrives through the bus, cluster.h).
 *
 * Typing and activeUsers changes mark their room dirty, and one event per room goes out just
 * before net writes the sockets (net calls on_before_flush at the start of its flusher), so a
 * burst of changes in one loop turn costs one event and adds no latency. A big room's
 * chat.active is also throttled across turns in proportion to its size (churn.h).
 */
#include "app/rooms.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/churn.h"
#include "app/clients.h"
#include "app/cluster.h"
#include "proto/proto.h"

#define TYPING_NAMES_MAX 5 /* typers named in an event; the rest are counted in `others` */

/* What another node contributes to a room: its typers and its users with the chat open. */
struct room_remote {
  struct room_remote *next;
  char node[24];
  json_t *typing; /* [{"user": {...}, "exp": Unix ms}] */
  json_t *active; /* [{id, username, displayName}] */
};

struct room *app__room_find(struct app *a, const char *slug) {
  struct room *r;
  HASH_FIND_STR(a->rooms, slug, r);
  return r;
}

struct room *app__room_get(struct app *a, const char *slug) {
  struct room *r;
  HASH_FIND_STR(a->rooms, slug, r);
  if (r)
    return r;
  r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  snprintf(r->slug, sizeof r->slug, "%s", slug);
  HASH_ADD_STR(a->rooms, slug, r);
  /* Other nodes' messages of the chat come here from now on. */
  r->bus_ready = app__bus_room_opened(a, r->slug);
  return r;
}

static void remote_free(struct room_remote *rr) {
  json_decref(rr->typing);
  json_decref(rr->active);
  free(rr);
}

static void room_free(struct room *r) {
  while (r->remote) {
    struct room_remote *rr = r->remote;
    r->remote = rr->next;
    remote_free(rr);
  }
  typing_dispose(&r->typing);
  free(r->active);
  free(r->members.ids);
  free(r->members.seen);
  free(r->members.names);
  app__room_enc_keep(&r->active_enc, NULL, 0, NULL, 0);
  app__room_enc_keep(&r->presence_enc, NULL, 0, NULL, 0);
  free(r);
}

void app__room_release(struct app *a, struct room *r) {
  /* Nobody is left to tell: forget pending events with the room. */
  if (r->dirty) {
    struct room **pp = &a->dirty_rooms;
    while (*pp && *pp != r)
      pp = &(*pp)->dnext;
    if (*pp)
      *pp = r->dnext;
  }
  app__bus_room_closed(a, r->slug);
  HASH_DEL(a->rooms, r);
  room_free(r);
}

void app__rooms_free_all(struct app *a) {
  struct room *r, *tmp;
  HASH_ITER(hh, a->rooms, r, tmp) {
    HASH_DEL(a->rooms, r);
    room_free(r);
  }
  a->dirty_rooms = NULL;
}

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
    u = app__user_json(a, r->typing.e[i].user_id);
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

/* A chat object carries the first PARLEY_SUB_PRESENCE_MAX users with the chat open and how many
 * there are, as the sub reply does (issue 15: a join storm's chat.join replies each carried every
 * opener). */
json_t *app__chat_json(struct app *a, const struct store_chat *c) {
  json_t *o = proto_chat_json(c);
  app__room_active_set(a, app__room_find(a, c->slug), o);
  return o;
}

char *app__chat_enc(struct app *a, json_t *chat, size_t *len) {
  struct room *r = app__room_find(a, json_string_value(json_object_get(chat, "slug")));
  struct proto_raw active = {"activeUsers", NULL, 0};
  size_t total = 0;
  active.json = app__room_active_enc(a, r, &active.len, &total);
  return app__chat_enc_with(chat, &active, total, len);
}

char *app__chat_enc_with(json_t *chat, const struct proto_raw *active, size_t total, size_t *len) {
  char *s;
  json_object_del(chat, "activeUsers"); /* (proto_chat_json's empty list) */
  json_object_set_new(chat, "activeCount", json_integer((json_int_t)total));
  s = active->json ? json_dumps(chat, JSON_COMPACT) : NULL;
  json_decref(chat);
  *len = s ? strlen(s) : 0;
  return s ? proto_splice(s, len, active, 1) : NULL;
}

void app__room_active_set(struct app *a, const struct room *r, json_t *o) {
  size_t n = 0;
  json_t *users = app__room_active_json_max(a, r, (size_t)a->cfg.sub_presence_max, &n);
  json_object_set_new(o, "activeUsers", users);
  json_object_set_new(o, "activeCount", json_integer((json_int_t)n));
}

static int local_active(const struct room *r, int64_t id) {
  for (size_t i = 0; i < r->n_active; i++)
    if (r->active[i].user_id == id)
      return 1;
  return 0;
}

json_t *app__room_active_json_max(struct app *a, const struct room *r, size_t max,
                                  size_t *total) {
  json_t *users = json_array();
  size_t n = 0;
  for (size_t i = 0; r && i < r->n_active; i++) {
    json_t *u;
    n++;
    if (json_array_size(users) < max && (u = app__user_json(a, r->active[i].user_id)) != NULL)
      json_array_append_new(users, u);
  }
  for (struct room_remote *rr = r ? r->remote : NULL; rr; rr = rr->next) {
    size_t i;
    json_t *u;
    json_array_foreach(rr->active, i, u) {
      json_int_t id = json_integer_value(json_object_get(u, "id"));
      if (local_active(r, id) || listed_id(users, id))
        continue; /* (a user open on two other nodes beyond the first `max` counts twice) */
      n++;
      if (json_array_size(users) < max)
        json_array_append(users, u);
    }
  }
  *total = n;
  return users;
}

int app__room_enc_same(const struct room_enc *e, const int64_t *key, size_t n) {
  return e->valid && e->n_key == n && (n == 0 || memcmp(e->key, key, n * sizeof *key) == 0);
}

void app__room_enc_keep(struct room_enc *e, char *json, size_t len, int64_t *key, size_t n) {
  free(e->json);
  free(e->key);
  e->json = json;
  e->len = len;
  e->key = key;
  e->n_key = key ? n : 0;
  e->valid = json != NULL && key != NULL;
}

const char *app__room_active_enc(struct app *a, struct room *r, size_t *len, size_t *total) {
  size_t max = (size_t)a->cfg.sub_presence_max, n = 0;
  int64_t *key = NULL;
  json_t *users;
  char *json;
  if (r == NULL) {
    *len = 2;
    *total = 0;
    return "[]";
  }
  /* Only this node's openers, each a user here: the list is their first `max` ids' names
   * (key: users_gen, then the ids). */
  if (r->remote == NULL && (key = malloc((max + 1) * sizeof *key)) != NULL) {
    key[n++] = (int64_t)a->users_gen;
    for (size_t i = 0; i < r->n_active && n <= max; i++) {
      if (app__user_find(a, r->active[i].user_id) == NULL) {
        free(key);
        key = NULL;
        break;
      }
      key[n++] = r->active[i].user_id;
    }
  }
  if (key && app__room_enc_same(&r->active_enc, key, n)) {
    free(key);
    *len = r->active_enc.len;
    *total = r->n_active;
    return r->active_enc.json;
  }
  users = app__room_active_json_max(a, r, max, total);
  json = json_dumps(users, JSON_COMPACT);
  json_decref(users);
  app__room_enc_keep(&r->active_enc, json, json ? strlen(json) : 0, key, n);
  *len = r->active_enc.len;
  return json;
}

/* This node's typers (with their time left) and openers of the room, for other nodes: a new
 * reference, an empty object when there are none. */
static json_t *room_local_state(struct app *a, struct room *r) {
  json_t *o = json_object();
  int64_t now = app__now(a);
  if (r->typing.n) {
    json_t *typing = json_array();
    for (size_t i = 0; i < r->typing.n; i++) {
      json_t *u = app__user_json(a, r->typing.e[i].user_id);
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
      json_t *u = app__user_json(a, r->active[i].user_id);
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

/* Replaces node's contribution to the room with `state` (borrowed; what room_local_state
 * returned there; empty or NULL: nothing). */
static void room_remote_set(struct app *a, struct room *r, const char *node, json_t *state) {
  struct room_remote **pp = &r->remote, *rr;
  json_t *typing = json_array(), *active = json_array(), *t;
  int64_t now = app__now(a);
  size_t i;
  unsigned what = ROOM_DIRTY_REMOTE;

  /* Typers arrive with their time left: the same TTL counts here from now. */
  json_array_foreach(json_object_get(state, "typing"), i, t) {
    json_t *u = json_object_get(t, "user");
    json_int_t left = json_integer_value(json_object_get(t, "ttl"));
    if (user_obj_ok(u) && left > 0 &&
        left <= (a->cfg.bot_typing_ttl_ms > a->cfg.typing_ttl_ms ? a->cfg.bot_typing_ttl_ms
                                                                 : a->cfg.typing_ttl_ms))
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
    room_remote_set(a, r, node, NULL);
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

/* Tells the other nodes this node's typers and openers of the room. */
static void room_publish_state(struct app *a, struct room *r) {
  json_t *state;
  if (a->bus_solo)
    return;
  state = room_local_state(a, r);
  app__bus_publish_room_state(a, r->slug, state);
  json_decref(state);
}

void app__rooms_flush(struct app *a) {
  struct room *later = NULL; /* rooms whose chat.active waits for its window */
  uint64_t now = uv_now(a->loop);
  while (a->dirty_rooms) {
    struct room *r = a->dirty_rooms;
    unsigned what = r->dirty;
    a->dirty_rooms = r->dnext;
    r->dirty = 0;
    r->dnext = NULL;
    /* A big room's chat.active goes out at most once per window (churn.h): a storm of subs then
     * costs O(N) frames, not one per subscriber per sub. */
    if ((what & ROOM_DIRTY_ACTIVE) && r->active_sent &&
        now < r->active_sent + app__churn_window(r->n_subs)) {
      r->dirty = ROOM_DIRTY_ACTIVE;
      r->dnext = later;
      later = r;
      app__churn_wake(a, r->active_sent + app__churn_window(r->n_subs));
      what &= ~ROOM_DIRTY_ACTIVE;
    }
    if (what & ROOM_DIRTY_TYPING) {
      json_t *others;
      json_t *users = app__room_typing_json(a, r, &others);
      room_broadcast(
          r, "typing",
          json_pack("{s:s, s:o, s:o}", "chat", r->slug, "users", users, "others", others));
    }
    if (what & ROOM_DIRTY_ACTIVE) {
      json_t *ev = json_pack("{s:s}", "chat", r->slug);
      app__room_active_set(a, r, ev); /* bounded: O(n) bytes per event, not O(n) users each */
      room_broadcast(r, "chat.active", ev);
      r->active_sent = now;
    }
    if (what & ROOM_DIRTY_PUBLISH)
      room_publish_state(a, r);
  }
  a->dirty_rooms = later;
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

void app__rooms_remote_state(struct app *a, const char *slug, const char *node, json_t *state) {
  struct room *r = app__room_find(a, slug);
  if (r)
    room_remote_set(a, r, node, state);
}

void app__rooms_query(struct app *a, const char *slug) {
  struct room *r = app__room_find(a, slug);
  if (r && (r->n_active || r->typing.n))
    room_publish_state(a, r);
}

void app__rooms_bus_down(struct app *a) {
  /* Until each channel is back (room_ready), events from other nodes may be missed. */
  for (struct room *r = a->rooms; r; r = r->hh.next)
    r->bus_ready = 0;
}
