/* bus_local.c - the in-process bus: instances opened with the same "local://NAME" url in one
 * process form a hub and receive each other's publications. An empty url ("" or "local://") gets
 * a hub of its own, so a single node publishes into nothing and pays only a lookup.
 *
 * Delivery is asynchronous, as with a real broker: a publication is copied into each receiving
 * instance's queue and its uv_async handle is woken; the queue is drained on that loop turn.
 * Every instance of a hub must live on the same loop thread (the hubs are process-wide state,
 * which is what "in-process" means, and nothing here is locked).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "bus/bus.h"
#include "common/error.h"
#include "common/log.h"

#define LOCAL_QUEUE_MAX (64u << 20) /* bytes queued to one instance before publications drop */

struct lchan {
  UT_hash_handle hh;
  char name[];
};

struct lmsg {
  struct lmsg *next;
  size_t len;
  char channel[BUS_CHANNEL_MAX + 1];
  char data[];
};

struct hub;

/* One instance's statement about a user (bus_presence_put). */
struct lstate {
  struct lstate *next;
  const struct lbus *owner; /* compared, never dereferenced: it may be closed */
  int state;
  int64_t last_seen, expires;
};

/* A user's statements and aggregate, hub-wide. */
struct lpres {
  int64_t user_id;
  struct lstate *states;
  int pub_state;     /* the aggregate last reported */
  int64_t last_seen; /* the latest lastSeen of a statement withdrawn or expired */
  char name[BUS_PRES_NAME_MAX + 1];
  UT_hash_handle hh;
};

/* A presence callback waiting for the instance's next loop turn. */
struct lpcb {
  struct lpcb *next;
  bus_presence_cb cb;
  void *arg;
  size_t n;
  struct bus_presence changed[];
};

struct lbus {
  struct bus base;
  struct hub *hub;
  struct lbus *hnext;     /* hub->members */
  struct bus_callbacks cb;
  struct lchan *chans;    /* subscribed channels by name */
  struct lmsg *head, *tail;
  size_t queued;          /* bytes in the queue */
  uv_async_t wake;
  struct lpcb *pcb_head, *pcb_tail;
  void (*done)(void *arg);
  void *done_arg;
};

struct hub {
  struct hub *next;
  struct lbus *members;
  int private_hub;        /* opened without a name: never shared */
  struct lpres *pres;     /* presence by user id */
  char name[];
};

static struct hub *hubs; /* every named hub of the process (loop thread only) */

static struct hub *hub_get(const char *name) {
  struct hub *h;
  if (*name) {
    for (h = hubs; h; h = h->next)
      if (strcmp(h->name, name) == 0)
        return h;
  }
  h = calloc(1, sizeof *h + strlen(name) + 1);
  if (h == NULL)
    return NULL;
  strcpy(h->name, name);
  h->private_hub = *name == '\0';
  if (!h->private_hub) {
    h->next = hubs;
    hubs = h;
  }
  return h;
}

static void hub_leave(struct lbus *lb) {
  struct hub *h = lb->hub;
  struct lbus **pp = &h->members;
  while (*pp && *pp != lb)
    pp = &(*pp)->hnext;
  if (*pp)
    *pp = lb->hnext;
  if (h->members == NULL) {
    struct hub **hp = &hubs;
    while (*hp && *hp != h)
      hp = &(*hp)->next;
    struct lpres *p, *ptmp;
    if (*hp)
      *hp = h->next;
    HASH_ITER(hh, h->pres, p, ptmp) {
      HASH_DEL(h->pres, p);
      while (p->states) {
        struct lstate *st = p->states;
        p->states = st->next;
        free(st);
      }
      free(p);
    }
    free(h);
  }
}

static void on_wake(uv_async_t *w) {
  struct lbus *lb = w->data;
  /* Take the whole queue first: a callback may publish (to others) or unsubscribe. */
  struct lmsg *m = lb->head;
  lb->head = lb->tail = NULL;
  lb->queued = 0;
  while (m) {
    struct lmsg *next = m->next;
    struct lchan *c;
    HASH_FIND_STR(lb->chans, m->channel, c);
    if (c && lb->hub) /* still subscribed, and not closed by an earlier callback */
      lb->cb.on_message(lb->cb.ud, m->channel, m->data, m->len);
    free(m);
    m = next;
  }
  /* Then the presence answers, in the order of the calls. */
  while (lb->pcb_head && lb->hub) {
    struct lpcb *c = lb->pcb_head;
    lb->pcb_head = c->next;
    if (lb->pcb_head == NULL)
      lb->pcb_tail = NULL;
    c->cb(c->arg, 0, c->changed, c->n);
    free(c);
  }
}

static int local_open(struct bus **out, uv_loop_t *loop, const char *url,
                      const struct bus_callbacks *cb) {
  const char *name = strncmp(url, "local://", 8) == 0 ? url + 8 : url;
  struct lbus *lb = calloc(1, sizeof *lb);
  if (lb == NULL)
    return PARLEY_EINTERNAL;
  lb->base.ops = &bus_local_ops;
  lb->cb = *cb;
  lb->hub = hub_get(name);
  if (lb->hub == NULL || uv_async_init(loop, &lb->wake, on_wake) != 0) {
    if (lb->hub && lb->hub->members == NULL) {
      lb->hub->members = lb;
      hub_leave(lb);
    }
    free(lb);
    return PARLEY_EINTERNAL;
  }
  lb->wake.data = lb;
  lb->hnext = lb->hub->members;
  lb->hub->members = lb;
  *out = &lb->base;
  return 0;
}

static int local_subscribe(struct bus *b, const char *channel) {
  struct lbus *lb = (struct lbus *)b;
  struct lchan *c;
  HASH_FIND_STR(lb->chans, channel, c);
  if (c)
    return 1;
  c = malloc(sizeof *c + strlen(channel) + 1);
  if (c == NULL)
    return PARLEY_EINTERNAL;
  strcpy(c->name, channel);
  HASH_ADD_STR(lb->chans, name, c);
  return 1; /* the hub sees it at once: nothing published from now on can be missed */
}

static int local_unsubscribe(struct bus *b, const char *channel) {
  struct lbus *lb = (struct lbus *)b;
  struct lchan *c;
  HASH_FIND_STR(lb->chans, channel, c);
  if (c) {
    HASH_DEL(lb->chans, c);
    free(c);
  }
  return 0;
}

static int local_publish(struct bus *b, const char *channel, const void *data, size_t len) {
  struct lbus *self = (struct lbus *)b;
  for (struct lbus *lb = self->hub->members; lb; lb = lb->hnext) {
    struct lchan *c;
    struct lmsg *m;
    if (lb == self)
      continue;
    HASH_FIND_STR(lb->chans, channel, c);
    if (c == NULL)
      continue;
    if (lb->queued + len > LOCAL_QUEUE_MAX) {
      log_warn("bus: local queue full, a publication on %s is dropped", channel);
      continue;
    }
    m = malloc(sizeof *m + len);
    if (m == NULL)
      return PARLEY_EINTERNAL;
    m->next = NULL;
    m->len = len;
    snprintf(m->channel, sizeof m->channel, "%s", channel);
    memcpy(m->data, data, len);
    if (lb->tail)
      lb->tail->next = m;
    else
      lb->head = m;
    lb->tail = m;
    lb->queued += len;
    uv_async_send(&lb->wake);
  }
  return 0;
}

static void on_closed(uv_handle_t *h) {
  struct lbus *lb = h->data;
  if (lb->done)
    lb->done(lb->done_arg);
  free(lb);
}

static void local_close(struct bus *b, void (*done)(void *arg), void *arg) {
  struct lbus *lb = (struct lbus *)b;
  struct lchan *c, *tmp;
  struct lmsg *m = lb->head;
  hub_leave(lb);
  lb->hub = NULL;
  HASH_ITER(hh, lb->chans, c, tmp) {
    HASH_DEL(lb->chans, c);
    free(c);
  }
  while (m) {
    struct lmsg *next = m->next;
    free(m);
    m = next;
  }
  lb->head = lb->tail = NULL;
  /* Calls already answered but not yet reported: the answer is lost with the instance. */
  while (lb->pcb_head) {
    struct lpcb *pc = lb->pcb_head;
    lb->pcb_head = pc->next;
    pc->cb(pc->arg, PARLEY_EUNAVAILABLE, NULL, 0);
    free(pc);
  }
  lb->pcb_tail = NULL;
  lb->done = done;
  lb->done_arg = arg;
  uv_close((uv_handle_t *)&lb->wake, on_closed);
}

/* --- presence ------------------------------------------------------------------------------- */

/* Recomputes p's aggregate; appends it to *out (capacity cap) if it changed. */
static void pres_aggregate(struct lpres *p, struct bus_presence *out, size_t *n, size_t cap) {
  int best = BUS_PRES_NONE;
  int64_t last = p->last_seen;
  for (struct lstate *st = p->states; st; st = st->next) {
    if (st->state > best)
      best = st->state;
    if (st->last_seen > last)
      last = st->last_seen;
  }
  if (best == p->pub_state || *n == cap)
    return;
  p->pub_state = best;
  out[*n] = (struct bus_presence){p->user_id, best, last, ""};
  memcpy(out[(*n)++].name, p->name, sizeof p->name);
}

/* Queues cb for the next loop turn of lb with the changes (copied). */
static int pres_answer(struct lbus *lb, bus_presence_cb cb, void *arg,
                       const struct bus_presence *changed, size_t n) {
  struct lpcb *c = malloc(sizeof *c + n * sizeof *changed);
  if (c == NULL)
    return PARLEY_EINTERNAL;
  c->next = NULL;
  c->cb = cb;
  c->arg = arg;
  c->n = n;
  if (n)
    memcpy(c->changed, changed, n * sizeof *changed);
  if (lb->pcb_tail)
    lb->pcb_tail->next = c;
  else
    lb->pcb_head = c;
  lb->pcb_tail = c;
  uv_async_send(&lb->wake);
  return 0;
}

static void pres_free_if_empty(struct hub *h, struct lpres *p) {
  if (p->states == NULL && p->pub_state == BUS_PRES_NONE) {
    HASH_DEL(h->pres, p);
    free(p);
  }
}

static int local_presence_put(struct bus *b, const struct bus_presence *in, int64_t expires_at,
                              bus_presence_cb cb, void *arg) {
  struct lbus *lb = (struct lbus *)b;
  struct hub *h = lb->hub;
  struct lpres *p;
  struct lstate **pp, *st;
  struct bus_presence changed[1];
  size_t n = 0;
  int err;

  HASH_FIND(hh, h->pres, &in->user_id, sizeof in->user_id, p);
  if (p == NULL) {
    p = calloc(1, sizeof *p);
    if (p == NULL)
      return PARLEY_EINTERNAL;
    p->user_id = in->user_id;
    HASH_ADD(hh, h->pres, user_id, sizeof p->user_id, p);
  }
  snprintf(p->name, sizeof p->name, "%s", in->name);
  for (pp = &p->states; *pp && (*pp)->owner != lb; pp = &(*pp)->next)
    ;
  st = *pp;
  if (in->state == BUS_PRES_NONE) {
    if (st) {
      *pp = st->next;
      free(st);
    }
    if (in->last_seen > p->last_seen)
      p->last_seen = in->last_seen;
  } else {
    if (st == NULL) {
      st = calloc(1, sizeof *st);
      if (st == NULL)
        return PARLEY_EINTERNAL;
      st->owner = lb;
      st->next = p->states;
      p->states = st;
    }
    st->state = in->state;
    st->last_seen = in->last_seen;
    st->expires = expires_at;
  }
  pres_aggregate(p, changed, &n, 1);
  err = pres_answer(lb, cb, arg, changed, n);
  pres_free_if_empty(h, p);
  return err;
}

static int local_presence_refresh(struct bus *b, const int64_t *ids, size_t n, int64_t expires_at) {
  struct lbus *lb = (struct lbus *)b;
  for (size_t i = 0; i < n; i++) {
    struct lpres *p;
    HASH_FIND(hh, lb->hub->pres, &ids[i], sizeof ids[i], p);
    for (struct lstate *st = p ? p->states : NULL; st; st = st->next)
      if (st->owner == lb)
        st->expires = expires_at;
  }
  return 0;
}

static int local_presence_sweep(struct bus *b, int64_t now, int64_t ttl_ms, bus_presence_cb cb,
                                void *arg) {
  struct lbus *lb = (struct lbus *)b;
  struct hub *h = lb->hub;
  size_t cap = HASH_COUNT(h->pres), n = 0;
  struct bus_presence *changed = malloc((cap ? cap : 1) * sizeof *changed);
  struct lpres *p, *tmp;
  int err;
  if (changed == NULL)
    return PARLEY_EINTERNAL;
  HASH_ITER(hh, h->pres, p, tmp) {
    struct lstate **pp = &p->states;
    int any = 0;
    while (*pp) {
      struct lstate *st = *pp;
      if (st->expires > now) {
        pp = &st->next;
        continue;
      }
      /* Last refreshed ttl_ms before it expired: the user was there until then. */
      if (st->expires - ttl_ms > p->last_seen)
        p->last_seen = st->expires - ttl_ms;
      if (st->last_seen > p->last_seen)
        p->last_seen = st->last_seen;
      *pp = st->next;
      free(st);
      any = 1;
    }
    if (any) {
      pres_aggregate(p, changed, &n, cap);
      pres_free_if_empty(h, p);
    }
  }
  err = pres_answer(lb, cb, arg, changed, n);
  free(changed);
  return err;
}

static int local_presence_list(struct bus *b, bus_presence_cb cb, void *arg) {
  struct lbus *lb = (struct lbus *)b;
  struct hub *h = lb->hub;
  size_t n = 0, cap = HASH_COUNT(h->pres);
  struct bus_presence *list = malloc((cap ? cap : 1) * sizeof *list);
  struct lpres *p;
  int err;
  if (list == NULL)
    return PARLEY_EINTERNAL;
  for (p = h->pres; p; p = p->hh.next) {
    int64_t last = p->last_seen;
    if (p->pub_state == BUS_PRES_NONE)
      continue;
    for (struct lstate *st = p->states; st; st = st->next)
      if (st->last_seen > last)
        last = st->last_seen;
    list[n] = (struct bus_presence){p->user_id, p->pub_state, last, ""};
    memcpy(list[n++].name, p->name, sizeof p->name);
  }
  err = pres_answer(lb, cb, arg, list, n);
  free(list);
  return err;
}

const struct bus_ops bus_local_ops = {
    .name = "local",
    .open = local_open,
    .subscribe = local_subscribe,
    .unsubscribe = local_unsubscribe,
    .publish = local_publish,
    .close = local_close,
    .presence_put = local_presence_put,
    .presence_refresh = local_presence_refresh,
    .presence_sweep = local_presence_sweep,
    .presence_list = local_presence_list,
};
