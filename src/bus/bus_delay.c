/* bus_delay.c - the test-only delaying wrapper of bus_delay.h: publications wait in a FIFO
 * behind one timer; everything else is forwarded to the wrapped instance at once. */
#include "bus/bus_delay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* A publication held back. */
struct delayed_pub {
  struct delayed_pub *next;
  uint64_t due; /* loop time */
  size_t len;
  char channel[BUS_CHANNEL_MAX + 1];
  char data[];
};

struct bus_delay {
  struct bus base;
  struct bus *inner;
  uv_loop_t *loop;
  uint64_t delay_ms;
  uv_timer_t timer;
  struct delayed_pub *head, *tail;
  void (*done)(void *arg); /* bus_close's, run once the timer and the inner bus are closed */
  void *done_arg;
};

static const struct bus_ops delay_ops;

static void on_timer(uv_timer_t *t) {
  struct bus_delay *d = t->data;
  uint64_t now = uv_now(d->loop);
  while (d->head && d->head->due <= now) {
    struct delayed_pub *p = d->head;
    d->head = p->next;
    if (d->head == NULL)
      d->tail = NULL;
    bus_publish(d->inner, p->channel, p->data, p->len);
    free(p);
  }
  if (d->head)
    uv_timer_start(&d->timer, on_timer, d->head->due - now, 0);
}

static int delay_publish(struct bus *b, const char *channel, const void *data, size_t len) {
  struct bus_delay *d = (struct bus_delay *)b;
  struct delayed_pub *p = malloc(sizeof *p + len);
  if (p == NULL)
    return PARLEY_EINTERNAL;
  p->next = NULL;
  p->due = uv_now(d->loop) + d->delay_ms;
  p->len = len;
  snprintf(p->channel, sizeof p->channel, "%s", channel);
  if (len)
    memcpy(p->data, data, len);
  if (d->tail)
    d->tail->next = p;
  else
    d->head = p;
  d->tail = p;
  if (!uv_is_active((uv_handle_t *)&d->timer))
    uv_timer_start(&d->timer, on_timer, d->delay_ms, 0);
  return 0;
}

static int delay_subscribe(struct bus *b, const char *channel) {
  return bus_subscribe(((struct bus_delay *)b)->inner, channel);
}

static int delay_unsubscribe(struct bus *b, const char *channel) {
  return bus_unsubscribe(((struct bus_delay *)b)->inner, channel);
}

static int delay_presence_put(struct bus *b, const struct bus_presence *p, int64_t expires_at,
                              bus_presence_cb cb, void *arg) {
  return bus_presence_put(((struct bus_delay *)b)->inner, p, expires_at, cb, arg);
}

static int delay_presence_refresh(struct bus *b, const int64_t *ids, size_t n, int64_t expires_at) {
  return bus_presence_refresh(((struct bus_delay *)b)->inner, ids, n, expires_at);
}

static int delay_presence_sweep(struct bus *b, int64_t now, int64_t ttl_ms, bus_presence_cb cb,
                                void *arg) {
  return bus_presence_sweep(((struct bus_delay *)b)->inner, now, ttl_ms, cb, arg);
}

static int delay_presence_list(struct bus *b, bus_presence_cb cb, void *arg) {
  return bus_presence_list(((struct bus_delay *)b)->inner, cb, arg);
}

/* The timer is closed: close the wrapped bus, which runs `done` once its handles are. */
static void on_timer_closed(uv_handle_t *h) {
  struct bus_delay *d = h->data;
  bus_close(d->inner, d->done, d->done_arg);
  free(d);
}

static void delay_close(struct bus *b, void (*done)(void *arg), void *arg) {
  struct bus_delay *d = (struct bus_delay *)b;
  while (d->head) { /* publications not yet due are dropped, as a closing bus drops its queue */
    struct delayed_pub *p = d->head;
    d->head = p->next;
    free(p);
  }
  d->tail = NULL;
  d->done = done;
  d->done_arg = arg;
  uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

static int delay_open(struct bus **out, uv_loop_t *loop, const char *url,
                      const struct bus_callbacks *cb) {
  return PARLEY_EBAD_REQUEST; /* only ever made by bus_delay_wrap */
}

static const struct bus_ops delay_ops = {
    "delay",           delay_open,         delay_subscribe,        delay_unsubscribe,
    delay_publish,     delay_close,        delay_presence_put,     delay_presence_refresh,
    delay_presence_sweep, delay_presence_list,
};

int bus_delay_wrap(struct bus **b, uv_loop_t *loop, uint64_t delay_ms) {
  struct bus_delay *d = calloc(1, sizeof *d);
  if (d == NULL)
    return PARLEY_EINTERNAL;
  d->base.ops = &delay_ops;
  d->inner = *b;
  d->loop = loop;
  d->delay_ms = delay_ms;
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  *b = &d->base;
  return 0;
}
