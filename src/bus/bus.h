/* bus.h - fan-out of events between Parley nodes, behind one small asynchronous interface.
 *
 * A node publishes bytes on a named channel; every *other* bus instance subscribed to that
 * channel receives them, in the order one publisher published them on that channel. An instance
 * never receives its own publications: local sockets are served by the app's direct fan-out,
 * the bus only carries events to other nodes. Delivery is at most once and may miss events
 * while the bus is down; the bus says when that may have happened (on_subscribed after a
 * reconnect), and the app catches up from the store, which is the source of truth.
 *
 * Backends implement `struct bus_ops` (one per file): bus_local.c, an in-process hub (instances
 * opened with the same "local://NAME" url in one process talk to each other; the single-node
 * default), and bus_redis.c, Redis pub/sub on hiredis' libuv adapter ("redis://host:port").
 * Everything here runs on the thread of the loop given to bus_open(); callbacks run there too,
 * never from inside the call that caused them.
 */
#ifndef PARLEY_BUS_BUS_H
#define PARLEY_BUS_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define BUS_CHANNEL_MAX 128 /* bytes of a channel name, without the NUL */

struct bus;

struct bus_callbacks {
  void *ud; /* passed back to every callback; the caller's */
  /* A message another instance published on a channel this one is subscribed to. `channel`
   * (NUL-terminated) and `data` are borrowed for the duration of the call. */
  void (*on_message)(void *ud, const char *channel, const void *data, size_t len);
  /* A subscription became effective: the first time (when bus_subscribe() returned 0), and
   * again after every reconnect. Anything published on `channel` (borrowed for the call) before
   * this may have been missed. NULL allowed. */
  void (*on_subscribed)(void *ud, const char *channel);
  /* The bus went down (up = 0: publications are queued, nothing is received) or came back
   * (up = 1: publications flow again; every channel's on_subscribed follows). NULL allowed. */
  void (*on_state)(void *ud, int up);
};

/* A backend. Every function runs on the loop thread; `b` is what open() returned. */
struct bus_ops {
  const char *name;
  /* Opens an instance for `url` (borrowed) on `loop`; `cb` is copied. Returns 0 and sets *out,
   * or a PARLEY_E* code (and no callback is ever called). */
  int (*open)(struct bus **out, uv_loop_t *loop, const char *url, const struct bus_callbacks *cb);
  int (*subscribe)(struct bus *b, const char *channel);
  int (*unsubscribe)(struct bus *b, const char *channel);
  int (*publish)(struct bus *b, const char *channel, const void *data, size_t len);
  void (*close)(struct bus *b, void (*done)(void *arg), void *arg);
};

extern const struct bus_ops bus_local_ops;
extern const struct bus_ops bus_redis_ops;

/* The common header of every backend's instance: the first member of its own struct. */
struct bus {
  const struct bus_ops *ops;
};

/* Opens the backend `url` names: NULL or "" is a private in-process hub ("local://"),
 * "local://NAME" a shared in-process hub, "redis://host:port" Redis. `url` is borrowed; `cb` is
 * copied. Returns 0 and sets *out, or PARLEY_EBAD_REQUEST for an unknown scheme or a malformed
 * url, or another PARLEY_E* code; on failure no callback is ever called. */
int bus_open(struct bus **out, uv_loop_t *loop, const char *url, const struct bus_callbacks *cb);

/* Subscribes to `channel` (borrowed; 1..BUS_CHANNEL_MAX bytes, binary-safe except NUL).
 * Returns 1 if the subscription is effective on return (no on_subscribed follows), 0 if it
 * becomes effective later (on_subscribed reports it), or a PARLEY_E* code. Subscribing to a
 * channel already subscribed is a no-op that returns as the first call would now. */
int bus_subscribe(struct bus *b, const char *channel);

/* Ends the subscription to `channel` (borrowed). Messages already received but not yet
 * delivered for it are dropped. Returns 0 (also when not subscribed) or a PARLEY_E* code. */
int bus_unsubscribe(struct bus *b, const char *channel);

/* Publishes `len` bytes at `data` (borrowed, copied before the call returns; any bytes) on
 * `channel` (borrowed). While the bus is down publications are queued (bounded; the oldest
 * are dropped past the bound, and receivers catch up by seq). Returns 0 or a PARLEY_E* code. */
int bus_publish(struct bus *b, const char *channel, const void *data, size_t len);

/* Closes the instance: no callback runs after this returns, except `done` (NULL allowed), called
 * once every handle is closed (the loop must keep running until then). `b` is freed. */
void bus_close(struct bus *b, void (*done)(void *arg), void *arg);

#endif
