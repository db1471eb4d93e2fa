/* bus_local.c - the in-process bus: instances opened with the same "local://NAME" url in one
 * process form a hub and receive each other's publications. An empty url ("" or "local://") gets
 * a hub of its own, so a single node publishes into nothing and pays only a lookup.
 *
 * Delivery is asynchronous, as with a real broker: a publication is copied into each receiving
 * instance's queue and its uv_async handle is woken; the queue is drained on that loop turn.
 * Every instance of a hub must live on the same loop thread (the hubs are process-wide state,
 * which is what "in-process" means, and nothing here is locked).
 */
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

struct lbus {
  struct bus base;
  struct hub *hub;
  struct lbus *hnext;     /* hub->members */
  struct bus_callbacks cb;
  struct lchan *chans;    /* subscribed channels by name */
  struct lmsg *head, *tail;
  size_t queued;          /* bytes in the queue */
  uv_async_t wake;
  void (*done)(void *arg);
  void *done_arg;
};

struct hub {
  struct hub *next;
  struct lbus *members;
  int private_hub;        /* opened without a name: never shared */
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
    if (*hp)
      *hp = h->next;
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
  lb->done = done;
  lb->done_arg = arg;
  uv_close((uv_handle_t *)&lb->wake, on_closed);
}

const struct bus_ops bus_local_ops = {
    .name = "local",
    .open = local_open,
    .subscribe = local_subscribe,
    .unsubscribe = local_unsubscribe,
    .publish = local_publish,
    .close = local_close,
};
