/* app_bus.c - what this node tells other nodes, and what it does with what they tell it.
 *
 * Local sockets are always served by the direct fan-out of app_ws.c (one encoded, framed,
 * refcounted chunk for all of them); the bus only carries committed events to other nodes, and
 * a node never receives its own publications. Without PARLEY_BUS the node is alone: it opens a
 * private in-process bus (so the code paths are the same) and publishes nothing.
 *
 * Channels: "c:<slug>" for a chat, subscribed while a local socket has the chat open (the room
 * exists). Payloads are "<kind><seq>\n<event JSON>"; kind 'm' is a `msg` event, framed once
 * here and delivered to the room's subscriptions by seq: in order, never twice, and a gap (an
 * event lost between nodes, or overtaken by a local commit) makes the subscription read what it
 * missed from the store before anything later is delivered (app__room_deliver_msg).
 *
 * When a channel's subscription becomes effective (the first time, or after the bus
 * reconnected), messages published before it may have been missed: every subscription of the
 * room reads from the store from its next_seq (app__room_catch_up). Nothing acknowledged is
 * lost, because the store is the source of truth and the bus only a shortcut to it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "common/error.h"
#include "common/log.h"

#define CHAN_CHAT "c:"

static void on_message(void *ud, const char *channel, const void *data, size_t len) {
  struct app *a = ud;
  const char *p = data, *end = p + len, *nl;
  struct room *r;
  char *num_end;
  long long seq;
  struct outq_chunk *frame;

  if (strncmp(channel, CHAN_CHAT, 2) != 0 || len < 3)
    return;
  r = app__room_find(a, channel + 2);
  if (r == NULL)
    return; /* nobody here has the chat open any more */
  nl = memchr(p, '\n', len);
  if (nl == NULL)
    return;
  switch (p[0]) {
  case 'm':
    seq = strtoll(p + 1, &num_end, 10);
    if (num_end != nl || seq <= 0)
      return;
    frame = net_ws_frame_text(nl + 1, (size_t)(end - nl - 1));
    if (frame == NULL)
      return;
    app__room_deliver_msg(a, r, seq, frame);
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
  if (strncmp(channel, CHAN_CHAT, 2) != 0)
    return;
  r = app__room_find(a, channel + 2);
  if (r == NULL)
    return;
  r->bus_ready = 1;
  app__room_catch_up(a, r);
}

static void on_state(void *ud, int up) {
  struct app *a = ud;
  if (!up) {
    /* Until each channel is back (on_subscribed), events from other nodes may be missed. */
    for (struct room *r = a->rooms; r; r = r->hh.next)
      r->bus_ready = 0;
  }
}

int app__bus_start(struct app *a) {
  struct bus_callbacks cb = {a, on_message, on_subscribed, on_state};
  int err;
  a->bus_solo = a->cfg.bus_url[0] == '\0';
  err = bus_open(&a->bus, a->loop, a->cfg.bus_url, &cb);
  if (err) {
    log_error("cannot open the bus %s: %s", a->cfg.bus_url, parley_strerror(err));
    return err;
  }
  if (!a->bus_solo)
    log_info("bus: %s", a->cfg.bus_url);
  return 0;
}

void app__bus_stop(struct app *a, void (*done)(void *arg), void *arg) {
  struct bus *b = a->bus;
  a->bus = NULL;
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
}

void app__bus_room_closed(struct app *a, struct room *r) {
  char ch[BUS_CHANNEL_MAX + 1];
  if (a->bus == NULL)
    return;
  chat_channel(ch, sizeof ch, r->slug);
  bus_unsubscribe(a->bus, ch);
}

void app__bus_publish_msg(struct app *a, const char *slug, int64_t seq, const char *json,
                          size_t len) {
  char ch[BUS_CHANNEL_MAX + 1];
  char head[32];
  char *payload;
  int hlen;
  if (a->bus_solo || a->bus == NULL)
    return;
  chat_channel(ch, sizeof ch, slug);
  hlen = snprintf(head, sizeof head, "m%" PRId64 "\n", seq);
  payload = malloc((size_t)hlen + len);
  if (payload == NULL)
    return; /* the receivers' next message shows the gap and they catch up */
  memcpy(payload, head, (size_t)hlen);
  memcpy(payload + hlen, json, len);
  bus_publish(a->bus, ch, payload, (size_t)hlen + len);
  free(payload);
}
