/* cluster.c - what this node tells other nodes, and what it does with what they tell it.
 * Everything another node sends goes up through the callbacks of struct cluster_events
 * (cluster.h); the lines themselves are cluster_wire.c's.
 *
 * Local sockets are always served by the direct fan-out of deliver.c (one encoded, framed,
 * refcounted chunk for all of them); the bus only carries committed events to other nodes, and
 * a node never receives its own publications. Without PARLEY_BUS the node is alone: it opens a
 * private in-process bus (so the code paths are the same) and publishes nothing.
 *
 * Channels: "c:<slug>" for a chat, subscribed while a local socket has the chat open (the room
 * exists). A message is "m<seq> <member_gen>\n<event JSON>": a `msg` event and the chat's
 * member_gen it was committed with (rooms.c's sub_deliver), framed once here and delivered to the
 * room's subscriptions by seq: in order, never twice, and a gap (an event lost between nodes, or
 * overtaken by a local commit) that the bus has not filled within 25 ms makes the subscription
 * read what it missed from the store before anything later is delivered (app__room_deliver_msg).
 *
 * When a channel's subscription becomes effective (the first time, or after the bus
 * reconnected), messages published before it may have been missed: every subscription of the
 * room reads from the store from its next_seq (app__room_catch_up). Nothing acknowledged is
 * lost, because the store is the source of truth and the bus only a shortcut to it.
 *
 * Events for users (membership, invitations, chat.updated, logout: whatever app__notify_users
 * sends) travel on one channel, "u", that every node reads from start to stop. Why one channel
 * and not one per user: such events are rare and usually go to several users at once (a chat's
 * members), so one publication carries the id list and each node picks its own sockets; there
 * is no SUBSCRIBE per login, and so no window where a user who just connected has sockets on a
 * node that does not listen yet. The price, every node parsing every user event, is small for a
 * handful of nodes. Kinds on "u":
 *   "n<id>,<id>,...\n<event JSON>"  the event for those users' sockets here
 *   "d<user id> <slug>\n"           end that user's subscriptions to the chat here (removal)
 *   "x<session hash hex> <code>\n<reason>"  close the sockets of that session here (logout)
 *   "h<node>\n"                     a node's heartbeat (every tick): the nodes alive
 *   "F<node> <fence> <slug> <username>\n"  a removal is about to be submitted (below)
 *   "a<node> <fence> <acking node>\n"       the fence holds on the acking node
 *   "f<node> <fence>\n"             the removal is done (its "d" came first) or failed
 *   "P<user> <state> <lastSeen>\n"  a presence change, at once, for the nodes' snapshots
 *   "p<user> <state> <lastSeen>\n<id>,...\n<event JSON>"  the same with its event and audience
 *
 * Removal and leaving are ordered against messages only by the database (the chat's row lock),
 * and two nodes' publications may overtake each other on the bus, so a message committed just
 * after a removal could reach another node before the news of the removal, or be committed by
 * that node itself before it has read the news. So before the removal is submitted, its node
 * fences the user out of the chat on every node: each node holds back everything for that
 * user's subscriptions to the chat (they neither get nor lose anything) and acknowledges; once
 * every node alive (heard within NODE_TTL_MS) has acknowledged, or after FENCE_WAIT_MS, the
 * removal is submitted. Any message committed after it is therefore fanned out, on any node,
 * after the fence holds there. When the removal is done, "d" ends the subscriptions and "f"
 * lifts the fence (a refused removal only lifts it: the held messages follow). A fence not
 * lifted within FENCE_TTL_MS (its node died) is lifted by reading from the store, which checks
 * membership. What is not covered: a node cut off from Redis but not from the database for
 * longer than NODE_TTL_MS can still hand its own later messages to a removed user's sockets
 * there until it hears of the removal.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cluster.h"

#include "app/cluster_wire.h"
#include "bus/bus.h"
#include "bus/bus_delay.h"
#include "common/error.h"
#include "common/log.h"

#include <sodium.h>
#include <uthash.h>
#include <utlist.h>

#define CHAN_CHAT "c:"
#define CHAN_USERS "u"

#define NODE_ID_LEN CLUSTER_NODE_ID_LEN
#define NODE_TTL_MS 3500   /* a node not heard for this long is gone */
#define FENCE_WAIT_MS 5000 /* a removal waits at most this long for every node's ack */
#define FENCE_TTL_MS 15000 /* a fence nobody lifted is lifted through the store */

struct bus_node {
  char id[NODE_ID_LEN + 1];
  uint64_t heard; /* loop time of its last heartbeat */
  UT_hash_handle hh;
};

/* A fence another node (or this one) put up: the user's subscriptions to the chat hold. */
struct fence_in {
  struct fence_in *next;
  char owner[NODE_ID_LEN + 1];
  uint32_t fid;
  uint64_t expires; /* loop time */
  char slug[STORE_SLUG_MAX + 1];
  char username[STORE_USERNAME_MAX + 1];
};

/* A fence of this node, waiting for the other nodes' acks before its removal is submitted. */
struct fence_out {
  struct fence_out *next;
  uint32_t fid;
  uint64_t deadline; /* loop time */
  char (*waiting)[NODE_ID_LEN + 1];
  size_t n_waiting;
  void (*cb)(void *arg);
  void *arg;
};

struct app_busx {
  char node[NODE_ID_LEN + 1]; /* this node's id */
  struct cluster_events ev;   /* where other nodes' events go */
  uint32_t next_fid;
  struct bus_node *nodes; /* the other nodes heard from */
  struct fence_in *fences;
  struct fence_out *waits;
  uv_timer_t kick; /* runs removals that have no ack to wait for */
};

/* --- publishing ---------------------------------------------------------------------------- */

/* Every publication of this node goes through here. (PARLEY_TEST_BUS_DELAY_MS holds them back
 * in a wrapping backend, bus_delay.c, so the tests can make other nodes' events overtake this
 * node's.) */
static void bus_send(struct app *a, const char *channel, const char *data, size_t len) {
  if (a->bus)
    bus_publish(a->bus, channel, data, len);
}

/* Encodes m (with ids for n and p lines) and publishes it on `channel`. */
static void send_wire(struct app *a, const char *channel, const struct cluster_wire_msg *m,
                      const int64_t *ids, size_t n) {
  size_t len;
  char *payload = cluster_wire_encode(m, ids, n, &len);
  if (payload == NULL)
    return; /* a receiver that misses a message sees the gap and reads the store */
  bus_send(a, channel, payload, len);
  free(payload);
}

/* A line of this node on the users' channel (heartbeat, fences). */
static void send_node_line(struct app *a, int kind, uint32_t fid, const char *slug,
                           const char *username, const char *owner) {
  struct cluster_wire_msg m;
  memset(&m, 0, sizeof m);
  m.kind = kind;
  snprintf(m.node, sizeof m.node, "%s", owner ? owner : a->busx->node);
  snprintf(m.acker, sizeof m.acker, "%s", a->busx->node);
  m.fid = fid;
  snprintf(m.slug, sizeof m.slug, "%s", slug ? slug : "");
  snprintf(m.username, sizeof m.username, "%s", username ? username : "");
  send_wire(a, CHAN_USERS, &m, NULL, 0);
}

/* --- nodes and fences ----------------------------------------------------------------------- */

static void heartbeat(struct app *a) {
  send_node_line(a, CLUSTER_HEARTBEAT, 0, NULL, NULL, NULL);
}

static void node_heard(struct app *a, const char *id) {
  struct app_busx *x = a->busx;
  struct bus_node *n;
  HASH_FIND_STR(x->nodes, id, n);
  if (n == NULL) {
    n = calloc(1, sizeof *n);
    if (n == NULL)
      return;
    snprintf(n->id, sizeof n->id, "%s", id);
    HASH_ADD_STR(x->nodes, id, n);
    log_info("bus: node %s joined", id);
    heartbeat(a); /* so that it learns of this node at once too */
  }
  n->heard = uv_now(a->loop);
}

static int fence_matches(const struct fence_in *f, const char *username, const char *slug) {
  return strcmp(f->username, username) == 0 && strcmp(f->slug, slug) == 0;
}

int app__bus_fenced(struct app *a, const char *username, const char *slug) {
  struct fence_in *f;
  if (a->busx == NULL)
    return 0;
  LL_FOREACH(a->busx->fences, f) {
    if (fence_matches(f, username, slug))
      return 1;
  }
  return 0;
}

/* Applies the fences of (username, slug) to that user's subscriptions here: held while one is up;
 * released (verify: through a store read) when none is left. */
static void fence_apply(struct app *a, const char *username, const char *slug, int verify) {
  a->busx->ev.fence(a, username, slug, app__bus_fenced(a, username, slug), verify);
}

static void fence_drop(struct app *a, struct fence_in *f, int verify) {
  char slug[STORE_SLUG_MAX + 1], username[STORE_USERNAME_MAX + 1];
  snprintf(slug, sizeof slug, "%s", f->slug);
  snprintf(username, sizeof username, "%s", f->username);
  LL_DELETE(a->busx->fences, f);
  free(f);
  fence_apply(a, username, slug, verify);
}

static struct fence_in *fence_find(struct app *a, const char *owner, uint32_t fid) {
  struct fence_in *f;
  LL_FOREACH(a->busx->fences, f) {
    if (f->fid == fid && strcmp(f->owner, owner) == 0)
      return f;
  }
  return NULL;
}

static void on_fence_local(struct app *a, const char *owner, uint32_t fid, const char *slug,
                           const char *username) {
  struct fence_in *f = calloc(1, sizeof *f);
  if (f == NULL)
    return; /* the catch-up reads still check membership */
  snprintf(f->owner, sizeof f->owner, "%s", owner);
  f->fid = fid;
  f->expires = uv_now(a->loop) + FENCE_TTL_MS;
  snprintf(f->slug, sizeof f->slug, "%s", slug);
  snprintf(f->username, sizeof f->username, "%s", username);
  LL_PREPEND(a->busx->fences, f);
  fence_apply(a, username, slug, 0);
}

static void on_fence(struct app *a, const char *owner, uint32_t fid, const char *slug,
                     const char *username) {
  on_fence_local(a, owner, fid, slug, username);
  send_node_line(a, CLUSTER_ACK, fid, NULL, NULL, owner);
}

static void wait_done(struct app *a, struct fence_out *w) {
  LL_DELETE(a->busx->waits, w);
  free(w->waiting);
  w->cb(w->arg);
  free(w);
}

static void wait_forget_node(struct fence_out *w, const char *node) {
  for (size_t i = 0; i < w->n_waiting; i++) {
    if (strcmp(w->waiting[i], node) == 0) {
      memcpy(w->waiting[i], w->waiting[--w->n_waiting], sizeof w->waiting[i]);
      return;
    }
  }
}

static void on_ack(struct app *a, uint32_t fid, const char *node) {
  struct fence_out *w;
  LL_FOREACH(a->busx->waits, w) {
    if (w->fid == fid) {
      wait_forget_node(w, node);
      if (w->n_waiting == 0)
        wait_done(a, w);
      return;
    }
  }
}

static void on_kick(uv_timer_t *t) {
  struct app *a = t->data;
  struct fence_out *w, *wtmp;
  if (a->busx == NULL)
    return;
  LL_FOREACH_SAFE(a->busx->waits, w, wtmp) {
    if (w->n_waiting == 0)
      wait_done(a, w);
  }
}

int app__bus_fence(struct app *a, const char *slug, const char *username, void (*cb)(void *arg),
                   void *arg, uint32_t *fid) {
  struct app_busx *x = a->busx;
  struct fence_out *w;
  struct bus_node *n;
  size_t i = 0;
  *fid = 0;
  if (a->bus_solo || x == NULL)
    return 0;
  w = calloc(1, sizeof *w);
  if (w == NULL)
    return 0;
  w->waiting = calloc(HASH_COUNT(x->nodes) + 1, sizeof *w->waiting);
  if (w->waiting == NULL) {
    free(w);
    return 0;
  }
  for (n = x->nodes; n; n = n->hh.next)
    memcpy(w->waiting[i++], n->id, sizeof n->id);
  w->n_waiting = i;
  w->fid = ++x->next_fid ? x->next_fid : ++x->next_fid;
  w->deadline = uv_now(a->loop) + FENCE_WAIT_MS;
  w->cb = cb;
  w->arg = arg;
  *fid = w->fid;
  /* This node holds too: a message another node commits after the removal may arrive here
   * from the bus before the removal's own completion does. */
  on_fence_local(a, x->node, w->fid, slug, username);
  send_node_line(a, CLUSTER_FENCE, w->fid, slug, username, NULL);
  LL_PREPEND(x->waits, w);
  if (w->n_waiting == 0) /* nobody else is alive: go ahead, but never synchronously */
    uv_timer_start(&x->kick, on_kick, 0, 0);
  return 1;
}

void app__bus_unfence(struct app *a, uint32_t fid) {
  struct fence_in *f;
  if (fid == 0 || a->bus_solo || a->busx == NULL)
    return;
  send_node_line(a, CLUSTER_UNFENCE, fid, NULL, NULL, NULL);
  f = fence_find(a, a->busx->node, fid);
  if (f)
    fence_drop(a, f, 0);
}

void app__bus_tick(struct app *a) {
  struct app_busx *x = a->busx;
  uint64_t now;
  struct bus_node *n, *ntmp;
  struct fence_out *w, *wtmp;
  struct fence_in *f, *ftmp;
  if (a->bus_solo || x == NULL)
    return;
  now = uv_now(a->loop);
  heartbeat(a);
  HASH_ITER(hh, x->nodes, n, ntmp) {
    if (now - n->heard <= NODE_TTL_MS)
      continue;
    log_warn("bus: node %s not heard for %d ms: counted as gone", n->id, NODE_TTL_MS);
    LL_FOREACH(x->waits, w)
    wait_forget_node(w, n->id);
    x->ev.node_gone(a, n->id); /* its typers and openers stop counting */
    HASH_DEL(x->nodes, n);
    free(n);
  }
  LL_FOREACH_SAFE(x->waits, w, wtmp) {
    if (w->n_waiting == 0 || now >= w->deadline) {
      if (w->n_waiting)
        log_warn("bus: fence %" PRIu32 ": %zu node(s) did not answer; going ahead", w->fid,
                 w->n_waiting);
      wait_done(a, w);
    }
  }
  LL_FOREACH_SAFE(x->fences, f, ftmp) {
    if (now >= f->expires) {
      log_warn("bus: fence %s/%" PRIu32 " on %s was never lifted: reading from the store", f->owner,
               f->fid, f->slug);
      fence_drop(a, f, 1);
    }
  }
}

/* An event for users, or a node's line, published by another node (see the file's header). */
static void on_user_event(struct app *a, const struct cluster_wire_msg *m) {
  struct app_busx *x = a->busx;
  int64_t *ids;
  switch (m->kind) {
  case CLUSTER_NOTIFY:
  case CLUSTER_PRESENCE:
    ids = malloc((m->n_ids ? m->n_ids : 1) * sizeof *ids);
    if (ids == NULL)
      return;
    cluster_wire_ids(m, ids);
    if (m->kind == CLUSTER_NOTIFY)
      x->ev.notify(a, ids, m->n_ids, m->body, m->body_len);
    else
      x->ev.presence(a, m->user_id, m->state, m->last_seen, ids, m->n_ids, m->body, m->body_len);
    free(ids);
    return;
  case CLUSTER_PRESENCE_STATE:
    x->ev.presence(a, m->user_id, m->state, m->last_seen, NULL, 0, NULL, 0);
    return;
  case CLUSTER_DROP:
    x->ev.drop_subs(a, m->user_id, m->slug);
    return;
  case CLUSTER_CLOSE:
    x->ev.close_session(a, m->session_hash, m->code, m->reason);
    return;
  case CLUSTER_HEARTBEAT:
    node_heard(a, m->node);
    return;
  case CLUSTER_FENCE:
    on_fence(a, m->node, m->fid, m->slug, m->username);
    return;
  case CLUSTER_ACK:
    if (strcmp(m->node, x->node) == 0)
      on_ack(a, m->fid, m->acker);
    return;
  case CLUSTER_UNFENCE: {
    struct fence_in *f = fence_find(a, m->node, m->fid);
    if (f)
      fence_drop(a, f, 0);
    return;
  }
  default:
    return;
  }
}

/* Asks the other nodes with the chat open for their typers and openers. */
static void room_query(struct app *a, const char *slug) {
  char ch[BUS_CHANNEL_MAX + 1];
  struct cluster_wire_msg m;
  if (a->bus_solo || a->busx == NULL)
    return;
  snprintf(ch, sizeof ch, CHAN_CHAT "%s", slug);
  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_ROOM_QUERY;
  snprintf(m.node, sizeof m.node, "%s", a->busx->node);
  send_wire(a, ch, &m, NULL, 0);
}

static void on_message(void *ud, const char *channel, const void *data, size_t len) {
  struct app *a = ud;
  struct cluster_wire_msg m;
  int chat = strncmp(channel, CHAN_CHAT, 2) == 0;
  const char *slug = channel + 2;

  if (a->busx == NULL || (!chat && strcmp(channel, CHAN_USERS) != 0))
    return;
  if (cluster_wire_decode(chat, data, len, &m) != 0) {
    log_debug("bus: a malformed or unknown line on %s", channel);
    return;
  }
  if (!chat) {
    on_user_event(a, &m);
    return;
  }
  switch (m.kind) {
  case CLUSTER_ROOM_QUERY:
    a->busx->ev.room_query(a, slug);
    return;
  case CLUSTER_ROOM_STATE: {
    json_error_t jerr;
    json_t *state = json_loadb(m.body, m.body_len, 0, &jerr);
    if (json_is_object(state))
      a->busx->ev.room_state(a, slug, m.node, state);
    json_decref(state);
    return;
  }
  case CLUSTER_MSG: {
    struct outq_chunk *frame = net_ws_frame_text(m.body, m.body_len);
    if (frame == NULL)
      return;
    a->busx->ev.msg(a, slug, m.seq, m.member_gen, frame);
    outq_chunk_unref(frame);
    return;
  }
  case CLUSTER_DELTA: {
    struct outq_chunk *frame = net_ws_frame_text(m.body, m.body_len);
    if (frame == NULL)
      return;
    a->busx->ev.delta(a, slug, m.seq, m.offset, m.member_gen, frame);
    outq_chunk_unref(frame);
    return;
  }
  default:
    return;
  }
}

static void on_subscribed(void *ud, const char *channel) {
  struct app *a = ud;
  if (a->busx == NULL)
    return;
  if (strcmp(channel, CHAN_USERS) == 0) {
    heartbeat(a); /* the other nodes count this one from now on */
    return;
  }
  if (strncmp(channel, CHAN_CHAT, 2) != 0)
    return;
  /* The room (if it is still open here) reads what it may have missed... */
  a->busx->ev.room_ready(a, channel + 2);
  /* ...and asks who types and who has it open on the other nodes. */
  room_query(a, channel + 2);
}

static void on_state(void *ud, int up) {
  struct app *a = ud;
  if (a->busx)
    a->busx->ev.bus_state(a, up);
}

int app__bus_start(struct app *a, const struct cluster_events *ev) {
  struct bus_callbacks cb = {a, on_message, on_subscribed, on_state};
  int err;
  uint8_t id[NODE_ID_LEN / 2];
  a->bus_solo = a->cfg.bus_url[0] == '\0';
  a->busx = calloc(1, sizeof *a->busx);
  if (a->busx == NULL)
    return PARLEY_EINTERNAL;
  a->busx->ev = *ev;
  randombytes_buf(id, sizeof id);
  sodium_bin2hex(a->busx->node, sizeof a->busx->node, id, sizeof id);
  uv_timer_init(a->loop, &a->busx->kick);
  a->busx->kick.data = a;
  err = bus_open(&a->bus, a->loop, a->cfg.bus_url, &cb);
  if (err) {
    log_error("cannot open the bus %s: %s", a->cfg.bus_url, parley_strerror(err));
    return err;
  }
  if (a->cfg.bus_test_delay_ms && bus_delay_wrap(&a->bus, a->loop, a->cfg.bus_test_delay_ms))
    return PARLEY_EINTERNAL;
  if (!a->bus_solo) {
    log_info("bus: %s (node %s)", a->cfg.bus_url, a->busx->node);
    /* Read for the node's whole life. Events for users published before it is effective are
     * missed, as are those of a bus outage: they are live notices, and every list they update
     * is read again by the client when it reconnects. */
    err = bus_subscribe(a->bus, CHAN_USERS);
    if (err < 0)
      log_warn("bus: cannot subscribe to %s: %s", CHAN_USERS, parley_strerror(err));
  }
  return 0;
}

/* busx's timer is closed: busx can go. */
static void on_busx_closed(uv_handle_t *h) {
  free(h->data);
}

void app__bus_stop(struct app *a, void (*done)(void *arg), void *arg) {
  struct bus *b = a->bus;
  struct app_busx *x = a->busx;
  a->bus = NULL;
  if (x) {
    struct bus_node *n, *ntmp;
    struct fence_in *f, *ftmp;
    /* Removals still waiting go ahead (and find the store closed). */
    while (x->waits)
      wait_done(a, x->waits);
    HASH_ITER(hh, x->nodes, n, ntmp) {
      HASH_DEL(x->nodes, n);
      free(n);
    }
    LL_FOREACH_SAFE(x->fences, f, ftmp) {
      free(f);
    }
    a->busx = NULL;
    x->kick.data = x;
    uv_close((uv_handle_t *)&x->kick, on_busx_closed);
  }
  if (b)
    bus_close(b, done, arg);
  else if (done)
    done(arg);
}

static void chat_channel(char *buf, size_t cap, const char *slug) {
  snprintf(buf, cap, CHAN_CHAT "%s", slug);
}

int app__bus_room_opened(struct app *a, const char *slug) {
  char ch[BUS_CHANNEL_MAX + 1];
  int rc;
  if (a->bus == NULL)
    return 0;
  chat_channel(ch, sizeof ch, slug);
  rc = bus_subscribe(a->bus, ch);
  /* 1: effective now, before this room's first store read is submitted: nothing can be missed.
   * 0: on_subscribed says when, and the subscriptions read again then. */
  if (rc < 0)
    log_warn("bus: cannot subscribe to %s: %s", ch, parley_strerror(rc));
  if (rc == 1)
    room_query(a, slug);
  return rc == 1;
}

void app__bus_room_closed(struct app *a, const char *slug) {
  char ch[BUS_CHANNEL_MAX + 1];
  if (a->bus == NULL)
    return;
  chat_channel(ch, sizeof ch, slug);
  if (!a->bus_solo && a->busx) {
    /* Nobody here has it open any more: this node's typers and openers are gone. */
    struct cluster_wire_msg m;
    memset(&m, 0, sizeof m);
    m.kind = CLUSTER_ROOM_STATE;
    snprintf(m.node, sizeof m.node, "%s", a->busx->node);
    m.body = "{}";
    m.body_len = 2;
    send_wire(a, ch, &m, NULL, 0);
  }
  bus_unsubscribe(a->bus, ch);
}

void app__bus_publish_room_state(struct app *a, const char *slug, json_t *state) {
  char ch[BUS_CHANNEL_MAX + 1];
  struct cluster_wire_msg m;
  char *json;
  if (a->bus_solo || a->bus == NULL || a->busx == NULL)
    return;
  json = json_dumps(state, JSON_COMPACT);
  if (json == NULL)
    return;
  chat_channel(ch, sizeof ch, slug);
  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_ROOM_STATE;
  snprintf(m.node, sizeof m.node, "%s", a->busx->node);
  m.body = json;
  m.body_len = strlen(json);
  send_wire(a, ch, &m, NULL, 0);
  free(json);
}

void app__bus_publish_msg(struct app *a, const char *slug, int64_t seq, int64_t mgen,
                          const char *json, size_t len) {
  char ch[BUS_CHANNEL_MAX + 1];
  struct cluster_wire_msg m;
  if (a->bus_solo || a->bus == NULL)
    return;
  chat_channel(ch, sizeof ch, slug);
  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_MSG;
  m.seq = seq;
  m.member_gen = mgen;
  m.body = json;
  m.body_len = len;
  send_wire(a, ch, &m, NULL, 0);
}

void app__bus_publish_delta(struct app *a, const char *slug, int64_t seq, int64_t offset,
                            int64_t mgen, const char *json, size_t len) {
  char ch[BUS_CHANNEL_MAX + 1];
  struct cluster_wire_msg m;
  if (a->bus_solo || a->bus == NULL)
    return;
  chat_channel(ch, sizeof ch, slug);
  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_DELTA;
  m.seq = seq;
  m.offset = offset;
  m.member_gen = mgen;
  m.body = json;
  m.body_len = len;
  send_wire(a, ch, &m, NULL, 0);
}

void app__bus_publish_notify(struct app *a, const int64_t *ids, size_t n, const char *json,
                             size_t len) {
  struct cluster_wire_msg m;
  if (a->bus_solo || a->bus == NULL || n == 0)
    return;
  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_NOTIFY;
  m.body = json;
  m.body_len = len;
  send_wire(a, CHAN_USERS, &m, ids, n);
}

void app__bus_publish_drop(struct app *a, int64_t user_id, const char *slug) {
  struct cluster_wire_msg m;
  if (a->bus_solo || a->bus == NULL)
    return;
  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_DROP;
  m.user_id = user_id;
  snprintf(m.slug, sizeof m.slug, "%s", slug);
  send_wire(a, CHAN_USERS, &m, NULL, 0);
}

void app__bus_publish_close_session(struct app *a, const uint8_t *session_hash, uint16_t code,
                                    const char *reason) {
  struct cluster_wire_msg m;
  if (a->bus_solo || a->bus == NULL)
    return;
  memset(&m, 0, sizeof m);
  m.kind = CLUSTER_CLOSE;
  memcpy(m.session_hash, session_hash, sizeof m.session_hash);
  m.code = code;
  snprintf(m.reason, sizeof m.reason, "%s", reason);
  send_wire(a, CHAN_USERS, &m, NULL, 0);
}

void app__bus_publish_presence(struct app *a, int64_t user_id, int state, int64_t last_seen,
                               const int64_t *ids, size_t n, const char *json, size_t len) {
  struct cluster_wire_msg m;
  if (a->bus_solo || a->bus == NULL)
    return;
  memset(&m, 0, sizeof m);
  m.kind = json ? CLUSTER_PRESENCE : CLUSTER_PRESENCE_STATE;
  m.user_id = user_id;
  m.state = state;
  m.last_seen = last_seen;
  m.body = json;
  m.body_len = json ? len : 0;
  send_wire(a, CHAN_USERS, &m, ids, n);
}
