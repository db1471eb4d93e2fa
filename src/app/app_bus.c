/* app_bus.c - what this node tells other nodes, and what it does with what they tell it.
 *
 * Local sockets are always served by the direct fan-out of app_ws.c (one encoded, framed,
 * refcounted chunk for all of them); the bus only carries committed events to other nodes, and
 * a node never receives its own publications. Without PARLEY_BUS the node is alone: it opens a
 * private in-process bus (so the code paths are the same) and publishes nothing.
 *
 * Channels: "c:<slug>" for a chat, subscribed while a local socket has the chat open (the room
 * exists). A message is "m<seq> <member_gen>\n<event JSON>": a `msg` event and the chat's
 * member_gen it was committed with (app_ws.c's sub_deliver), framed once here and delivered to the
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "common/error.h"
#include "common/log.h"

#include <sodium.h>
#include <uthash.h>
#include <utlist.h>

#define CHAN_CHAT "c:"
#define CHAN_USERS "u"

#define NODE_ID_LEN 16     /* hex characters of a node's random id */
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

/* A publication held back by PARLEY_TEST_BUS_DELAY_MS. */
struct delayed_pub {
  struct delayed_pub *next;
  uint64_t due;
  size_t len;
  char channel[BUS_CHANNEL_MAX + 1];
  char data[];
};

struct app_busx {
  char node[NODE_ID_LEN + 1]; /* this node's id */
  uint32_t next_fid;
  struct bus_node *nodes; /* the other nodes heard from */
  struct fence_in *fences;
  struct fence_out *waits;
  uv_timer_t delay_timer;
  uv_timer_t kick; /* runs removals that have no ack to wait for */
  int closed;      /* timers closed, at app__bus_stop */
  struct delayed_pub *dq_head, *dq_tail;
};

/* --- publishing, with the test delay -------------------------------------------------------- */

static void on_delay_timer(uv_timer_t *t) {
  struct app *a = t->data;
  struct app_busx *x = a->busx;
  uint64_t now = uv_now(a->loop);
  while (x->dq_head && x->dq_head->due <= now) {
    struct delayed_pub *d = x->dq_head;
    x->dq_head = d->next;
    if (x->dq_head == NULL)
      x->dq_tail = NULL;
    if (a->bus)
      bus_publish(a->bus, d->channel, d->data, d->len);
    free(d);
  }
  if (x->dq_head)
    uv_timer_start(&x->delay_timer, on_delay_timer, x->dq_head->due - now, 0);
}

/* Every publication of this node goes through here. PARLEY_TEST_BUS_DELAY_MS holds them back
 * (in order) so the tests can make other nodes' events overtake this node's. */
static void publish2(struct app *a, const char *channel, const char *head, size_t hlen,
                     const char *body, size_t blen);

static void bus_send(struct app *a, const char *channel, const char *data, size_t len) {
  struct app_busx *x = a->busx;
  struct delayed_pub *d;
  if (a->bus == NULL)
    return;
  if (a->cfg.bus_test_delay_ms == 0 || x == NULL) {
    bus_publish(a->bus, channel, data, len);
    return;
  }
  d = malloc(sizeof *d + len);
  if (d == NULL)
    return;
  d->next = NULL;
  d->due = uv_now(a->loop) + a->cfg.bus_test_delay_ms;
  d->len = len;
  snprintf(d->channel, sizeof d->channel, "%s", channel);
  memcpy(d->data, data, len);
  if (x->dq_tail)
    x->dq_tail->next = d;
  else
    x->dq_head = d;
  x->dq_tail = d;
  if (!uv_is_active((uv_handle_t *)&x->delay_timer))
    uv_timer_start(&x->delay_timer, on_delay_timer, a->cfg.bus_test_delay_ms, 0);
}

static void send_line(struct app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_line(struct app *a, const char *fmt, ...) {
  char line[256];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof line)
    bus_send(a, CHAN_USERS, line, (size_t)n);
}

/* --- nodes and fences ----------------------------------------------------------------------- */

static void heartbeat(struct app *a) {
  send_line(a, "h%s\n", a->busx->node);
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
  int fenced = app__bus_fenced(a, username, slug);
  struct app_user *au, *tmp;
  HASH_ITER(hh, a->users, au, tmp) {
    struct client *cl, *ctmp;
    if (strcmp(au->user.username, username) != 0)
      continue;
    DL_FOREACH_SAFE2(au->clients, cl, ctmp, unext) {
      struct sub *sb, *stmp;
      DL_FOREACH_SAFE2(cl->subs, sb, stmp, cnext) {
        if (strcmp(sb->room->slug, slug) == 0)
          app__sub_fence(a, sb, fenced, verify);
      }
    }
  }
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
  send_line(a, "a%s %" PRIu32 " %s\n", owner, fid, a->busx->node);
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
  send_line(a, "F%s %" PRIu32 " %s %s\n", x->node, w->fid, slug, username);
  LL_PREPEND(x->waits, w);
  if (w->n_waiting == 0) /* nobody else is alive: go ahead, but never synchronously */
    uv_timer_start(&x->kick, on_kick, 0, 0);
  return 1;
}

void app__bus_unfence(struct app *a, uint32_t fid) {
  struct fence_in *f;
  if (fid == 0 || a->bus_solo || a->busx == NULL)
    return;
  send_line(a, "f%s %" PRIu32 "\n", a->busx->node, fid);
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
    app__rooms_forget_node(a, n->id); /* its typers and openers stop counting */
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

/* Parses a list of ids "1,2,3" that ends at `end`; returns how many (at most cap), or -1. */
static long parse_ids(const char *p, const char *end, int64_t *ids, size_t cap) {
  size_t n = 0;
  while (p < end) {
    char *num_end;
    long long v = strtoll(p, &num_end, 10);
    if (num_end == p || v <= 0 || n == cap)
      return -1;
    ids[n++] = v;
    p = num_end;
    if (p < end && *p++ != ',')
      return -1;
  }
  return (long)n;
}

static int hex_decode(const char *p, size_t n, uint8_t *out, size_t out_len) {
  if (n != 2 * out_len)
    return -1;
  for (size_t i = 0; i < out_len; i++) {
    unsigned v;
    if (sscanf(p + 2 * i, "%2x", &v) != 1)
      return -1;
    out[i] = (uint8_t)v;
  }
  return 0;
}

#define USER_EVENT_IDS_MAX 100000 /* ids one user event names (a chat's members, at most) */

/* Heartbeats and fences: one line of space-separated words (see the file's header). */
static void on_node_event(struct app *a, const char *p, size_t len) {
  char line[256], *w[5], *save = NULL;
  int n = 0;
  unsigned long fid;
  if (len >= sizeof line || a->busx == NULL)
    return;
  memcpy(line, p + 1, len - 1);
  line[len - 1] = '\0';
  for (char *t = strtok_r(line, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
    w[n++] = t;
  if (n < 1 || strlen(w[0]) != NODE_ID_LEN)
    return;
  fid = n > 1 ? strtoul(w[1], NULL, 10) : 0;
  switch (p[0]) {
  case 'h':
    node_heard(a, w[0]);
    return;
  case 'F':
    if (n == 4 && fid && strlen(w[2]) <= STORE_SLUG_MAX && strlen(w[3]) <= STORE_USERNAME_MAX)
      on_fence(a, w[0], (uint32_t)fid, w[2], w[3]);
    return;
  case 'a':
    if (n == 3 && strcmp(w[0], a->busx->node) == 0)
      on_ack(a, (uint32_t)fid, w[2]);
    return;
  case 'f': {
    struct fence_in *f = n == 2 ? fence_find(a, w[0], (uint32_t)fid) : NULL;
    if (f)
      fence_drop(a, f, 0);
    return;
  }
  default:
    return;
  }
}

/* An event for users, published by another node (see the file's header for the kinds). */
static void on_user_event(struct app *a, const char *p, size_t len) {
  const char *end = p + len, *nl = memchr(p, '\n', len);
  if (nl == NULL || len < 2)
    return;
  switch (p[0]) {
  case 'n': {
    size_t cap = (size_t)(nl - p); /* a bound: every id takes at least two bytes but the last */
    int64_t *ids;
    long n;
    if (cap > USER_EVENT_IDS_MAX)
      cap = USER_EVENT_IDS_MAX;
    ids = malloc((cap ? cap : 1) * sizeof *ids);
    if (ids == NULL)
      return;
    n = parse_ids(p + 1, nl, ids, cap);
    if (n > 0)
      app__notify_here(a, ids, (size_t)n, nl + 1, (size_t)(end - nl - 1));
    free(ids);
    return;
  }
  case 'd': {
    char slug[STORE_SLUG_MAX + 1];
    char *sp;
    long long uid = strtoll(p + 1, &sp, 10);
    size_t slen;
    if (uid <= 0 || *sp != ' ')
      return;
    slen = (size_t)(nl - sp - 1);
    if (slen == 0 || slen > STORE_SLUG_MAX)
      return;
    memcpy(slug, sp + 1, slen);
    slug[slen] = '\0';
    app__drop_user_subs_here(a, uid, slug);
    return;
  }
  case 'x': {
    uint8_t hash[STORE_TOKEN_HASH_LEN];
    const char *sp = memchr(p, ' ', (size_t)(nl - p));
    char *num_end;
    long code;
    char reason[124];
    size_t rlen = (size_t)(end - nl - 1);
    if (sp == NULL || hex_decode(p + 1, (size_t)(sp - p - 1), hash, sizeof hash) != 0)
      return;
    code = strtol(sp + 1, &num_end, 10);
    if (num_end != nl || code < 1000 || code > 4999)
      return;
    if (rlen >= sizeof reason)
      rlen = sizeof reason - 1;
    memcpy(reason, nl + 1, rlen);
    reason[rlen] = '\0';
    app__close_session_here(a, hash, (uint16_t)code, reason);
    return;
  }
  case 'h':
  case 'F':
  case 'a':
  case 'f':
    on_node_event(a, p, (size_t)(nl - p));
    return;
  case 'P': {
    long long uid, last;
    int st;
    if (sscanf(p + 1, "%lld %d %lld", &uid, &st, &last) == 3 && uid > 0)
      app__presence_remote(a, uid, st, last, NULL, 0, NULL, 0);
    return;
  }
  case 'p': {
    /* "p<user id> <state> <lastSeen>\n<id>,<id>,...\n<event JSON>" */
    const char *nl2 = memchr(nl + 1, '\n', (size_t)(end - nl - 1));
    long long uid, last;
    int st;
    size_t cap;
    int64_t *ids;
    long n;
    if (nl2 == NULL || sscanf(p + 1, "%lld %d %lld", &uid, &st, &last) != 3 || uid <= 0)
      return;
    cap = (size_t)(nl2 - nl);
    if (cap > USER_EVENT_IDS_MAX)
      cap = USER_EVENT_IDS_MAX;
    ids = malloc(cap * sizeof *ids);
    if (ids == NULL)
      return;
    n = parse_ids(nl + 1, nl2, ids, cap);
    if (n >= 0)
      app__presence_remote(a, uid, st, last, ids, (size_t)n, nl2 + 1, (size_t)(end - nl2 - 1));
    free(ids);
    return;
  }
  default:
    log_debug("bus: unknown user event kind '%c'", p[0]);
    return;
  }
}

/* "s<node>\n<state JSON>": a node's typers and openers of the chat; "q<node>\n": a node just
 * opened the chat and asks the others for theirs. */
static void on_room_event(struct app *a, struct room *r, const char *p, size_t len,
                          const char *nl) {
  char node[NODE_ID_LEN + 1];
  size_t nlen = (size_t)(nl - p - 1);
  if (nlen != NODE_ID_LEN)
    return;
  memcpy(node, p + 1, nlen);
  node[nlen] = '\0';
  if (p[0] == 'q') {
    if (r->n_active || r->typing.n)
      app__bus_publish_room_state(a, r);
    return;
  }
  {
    json_error_t jerr;
    json_t *state = json_loadb(nl + 1, len - (size_t)(nl + 1 - p), 0, &jerr);
    if (!json_is_object(state)) {
      json_decref(state);
      return;
    }
    app__room_remote_set(a, r, node, state);
    json_decref(state);
  }
}

static void room_query(struct app *a, struct room *r) {
  char ch[BUS_CHANNEL_MAX + 1];
  char line[NODE_ID_LEN + 3];
  int n;
  if (a->bus_solo || a->busx == NULL)
    return;
  snprintf(ch, sizeof ch, CHAN_CHAT "%s", r->slug);
  n = snprintf(line, sizeof line, "q%s\n", a->busx->node);
  bus_send(a, ch, line, (size_t)n);
}

static void on_message(void *ud, const char *channel, const void *data, size_t len) {
  struct app *a = ud;
  const char *p = data, *end = p + len, *nl;
  struct room *r;
  char *num_end;
  long long seq, mgen;
  struct outq_chunk *frame;

  if (strcmp(channel, CHAN_USERS) == 0) {
    on_user_event(a, p, len);
    return;
  }
  if (strncmp(channel, CHAN_CHAT, 2) != 0 || len < 3)
    return;
  r = app__room_find(a, channel + 2);
  if (r == NULL)
    return; /* nobody here has the chat open any more */
  nl = memchr(p, '\n', len);
  if (nl == NULL)
    return;
  switch (p[0]) {
  case 's':
  case 'q':
    on_room_event(a, r, p, len, nl);
    return;
  case 'm':
    seq = strtoll(p + 1, &num_end, 10);
    if (*num_end != ' ' || seq <= 0)
      return;
    mgen = strtoll(num_end + 1, &num_end, 10);
    if (num_end != nl || mgen < 0)
      return;
    frame = net_ws_frame_text(nl + 1, (size_t)(end - nl - 1));
    if (frame == NULL)
      return;
    app__room_deliver_msg(a, r, seq, mgen, frame);
    outq_chunk_unref(frame);
    return;
  default:
    log_debug("bus: unknown event kind '%c' on %s", p[0], channel);
    return;
  }
}

static void on_subscribed(void *ud, const char *channel) {
  struct app *a = ud;
  struct room *r;
  if (strcmp(channel, CHAN_USERS) == 0) {
    if (a->busx)
      heartbeat(a); /* the other nodes count this one from now on */
    return;
  }
  if (strncmp(channel, CHAN_CHAT, 2) != 0)
    return;
  r = app__room_find(a, channel + 2);
  if (r == NULL)
    return;
  r->bus_ready = 1;
  app__room_catch_up(a, r);
  room_query(a, r); /* who types and who has it open on the other nodes */
}

static void on_state(void *ud, int up) {
  struct app *a = ud;
  if (up)
    app__presence_bus_up(a);
  if (!up) {
    /* Until each channel is back (on_subscribed), events from other nodes may be missed. */
    for (struct room *r = a->rooms; r; r = r->hh.next)
      r->bus_ready = 0;
  }
}

int app__bus_start(struct app *a) {
  struct bus_callbacks cb = {a, on_message, on_subscribed, on_state};
  int err;
  uint8_t id[NODE_ID_LEN / 2];
  a->bus_solo = a->cfg.bus_url[0] == '\0';
  a->busx = calloc(1, sizeof *a->busx);
  if (a->busx == NULL)
    return PARLEY_EINTERNAL;
  randombytes_buf(id, sizeof id);
  sodium_bin2hex(a->busx->node, sizeof a->busx->node, id, sizeof id);
  uv_timer_init(a->loop, &a->busx->delay_timer);
  a->busx->delay_timer.data = a;
  uv_timer_init(a->loop, &a->busx->kick);
  a->busx->kick.data = a;
  err = bus_open(&a->bus, a->loop, a->cfg.bus_url, &cb);
  if (err) {
    log_error("cannot open the bus %s: %s", a->cfg.bus_url, parley_strerror(err));
    return err;
  }
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

/* Both timers of busx are closed with this; the second frees it (close callbacks run in an
 * order libuv does not promise). */
static void on_busx_closed(uv_handle_t *h) {
  struct app_busx *x = h->data;
  if (++x->closed == 2)
    free(x);
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
    while (x->dq_head) {
      struct delayed_pub *d = x->dq_head;
      x->dq_head = d->next;
      free(d);
    }
    a->busx = NULL;
    x->delay_timer.data = x;
    x->kick.data = x;
    uv_close((uv_handle_t *)&x->delay_timer, on_busx_closed);
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

void app__bus_room_opened(struct app *a, struct room *r) {
  char ch[BUS_CHANNEL_MAX + 1];
  int rc;
  if (a->bus == NULL)
    return;
  chat_channel(ch, sizeof ch, r->slug);
  rc = bus_subscribe(a->bus, ch);
  /* 1: effective now, before this room's first store read is submitted: nothing can be missed.
   * 0: on_subscribed says when, and the subscriptions read again then. */
  r->bus_ready = rc == 1;
  if (rc < 0)
    log_warn("bus: cannot subscribe to %s: %s", ch, parley_strerror(rc));
  if (rc == 1)
    room_query(a, r);
}

void app__bus_room_closed(struct app *a, struct room *r) {
  char ch[BUS_CHANNEL_MAX + 1];
  if (a->bus == NULL)
    return;
  chat_channel(ch, sizeof ch, r->slug);
  if (!a->bus_solo && a->busx) {
    /* Nobody here has it open any more: this node's typers and openers are gone. */
    char line[NODE_ID_LEN + 8];
    int n = snprintf(line, sizeof line, "s%s\n{}", a->busx->node);
    bus_send(a, ch, line, (size_t)n);
  }
  bus_unsubscribe(a->bus, ch);
}

void app__bus_publish_room_state(struct app *a, struct room *r) {
  char ch[BUS_CHANNEL_MAX + 1];
  char head[NODE_ID_LEN + 3];
  json_t *state;
  char *json;
  int hlen;
  if (a->bus_solo || a->bus == NULL || a->busx == NULL)
    return;
  state = app__room_local_state(a, r);
  json = json_dumps(state, JSON_COMPACT);
  json_decref(state);
  if (json == NULL)
    return;
  chat_channel(ch, sizeof ch, r->slug);
  hlen = snprintf(head, sizeof head, "s%s\n", a->busx->node);
  publish2(a, ch, head, (size_t)hlen, json, strlen(json));
  free(json);
}

void app__bus_publish_msg(struct app *a, const char *slug, int64_t seq, int64_t mgen,
                          const char *json, size_t len) {
  char ch[BUS_CHANNEL_MAX + 1];
  char head[48];
  char *payload;
  int hlen;
  if (a->bus_solo || a->bus == NULL)
    return;
  chat_channel(ch, sizeof ch, slug);
  hlen = snprintf(head, sizeof head, "m%" PRId64 " %" PRId64 "\n", seq, mgen);
  payload = malloc((size_t)hlen + len);
  if (payload == NULL)
    return; /* the receivers' next message shows the gap and they catch up */
  memcpy(payload, head, (size_t)hlen);
  memcpy(payload + hlen, json, len);
  bus_send(a, ch, payload, (size_t)hlen + len);
  free(payload);
}

/* Publishes "<head><body>" on `channel`. */
static void publish2(struct app *a, const char *channel, const char *head, size_t hlen,
                     const char *body, size_t blen) {
  char *payload = malloc(hlen + blen + 1);
  if (payload == NULL)
    return;
  memcpy(payload, head, hlen);
  if (blen)
    memcpy(payload + hlen, body, blen);
  bus_send(a, channel, payload, hlen + blen);
  free(payload);
}

void app__bus_publish_notify(struct app *a, const int64_t *ids, size_t n, const char *json,
                             size_t len) {
  char *head, *w;
  if (a->bus_solo || a->bus == NULL || n == 0)
    return;
  head = malloc(2 + n * 21);
  if (head == NULL)
    return;
  w = head;
  *w++ = 'n';
  for (size_t i = 0; i < n; i++)
    w += sprintf(w, i ? ",%" PRId64 : "%" PRId64, ids[i]);
  *w++ = '\n';
  publish2(a, CHAN_USERS, head, (size_t)(w - head), json, len);
  free(head);
}

void app__bus_publish_drop(struct app *a, int64_t user_id, const char *slug) {
  char head[40 + STORE_SLUG_MAX];
  int hlen;
  if (a->bus_solo || a->bus == NULL)
    return;
  hlen = snprintf(head, sizeof head, "d%" PRId64 " %s\n", user_id, slug);
  publish2(a, CHAN_USERS, head, (size_t)hlen, NULL, 0);
}

void app__bus_publish_close_session(struct app *a, const uint8_t *session_hash, uint16_t code,
                                    const char *reason) {
  char head[2 * STORE_TOKEN_HASH_LEN + 16];
  int hlen = 1;
  if (a->bus_solo || a->bus == NULL)
    return;
  head[0] = 'x';
  for (size_t i = 0; i < STORE_TOKEN_HASH_LEN; i++)
    hlen += sprintf(head + hlen, "%02x", session_hash[i]);
  hlen += snprintf(head + hlen, sizeof head - (size_t)hlen, " %u\n", (unsigned)code);
  publish2(a, CHAN_USERS, head, (size_t)hlen, reason, strlen(reason));
}

void app__bus_publish_presence(struct app *a, int64_t user_id, int state, int64_t last_seen,
                               const int64_t *ids, size_t n, const char *json, size_t len) {
  char *head, *w;
  if (a->bus_solo || a->bus == NULL)
    return;
  if (json == NULL) {
    send_line(a, "P%" PRId64 " %d %" PRId64 "\n", user_id, state, last_seen);
    return;
  }
  head = malloc(64 + n * 21);
  if (head == NULL)
    return;
  w = head + sprintf(head, "p%" PRId64 " %d %" PRId64 "\n", user_id, state, last_seen);
  for (size_t i = 0; i < n; i++)
    w += sprintf(w, i ? ",%" PRId64 : "%" PRId64, ids[i]);
  *w++ = '\n';
  publish2(a, CHAN_USERS, head, (size_t)(w - head), json, len);
  free(head);
}
