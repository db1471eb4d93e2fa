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
 * default), and bus_redis.c, Redis pub/sub on hiredis' libuv adapter ("redis://host:port", or
 * "redis://host:port/NAME" to keep the channels and keys of deployment NAME apart from others
 * on the same Redis).
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

/* Presence across nodes: the bus is where the nodes meet, so it keeps, per user, what each
 * instance states of them (BUS_PRES_*: its own sockets' view, after its grace) and the
 * aggregate: the best state any instance states (online > away > none, which is offline), and
 * lastSeen the latest any stated. A statement holds until its expires_at (Unix ms) unless
 * refreshed, so an instance that dies stops counting once bus_presence_sweep() finds it
 * expired. Each change of an aggregate is reported to exactly one caller (of whichever instance
 * made the change), so it is announced once. */
#define BUS_PRES_NONE 0
#define BUS_PRES_AWAY 1
#define BUS_PRES_ONLINE 2

#define BUS_PRES_NAME_MAX 64 /* bytes of a user's name, without the NUL */

struct bus_presence {
  int64_t user_id;
  int state;                        /* BUS_PRES_* */
  int64_t last_seen;                /* Unix ms, 0 = unknown */
  char name[BUS_PRES_NAME_MAX + 1]; /* the user's name as last stated (no spaces), for events */
};

/* The result of a presence call: status 0 and the aggregates it changed (`changed`, n of them,
 * borrowed for the call), or status a PARLEY_E* code (the bus went away: n = 0). */
typedef void (*bus_presence_cb)(void *arg, int status, const struct bus_presence *changed,
                                size_t n);

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
  int (*presence_put)(struct bus *b, const struct bus_presence *p, int64_t expires_at,
                      bus_presence_cb cb, void *arg);
  int (*presence_refresh)(struct bus *b, const int64_t *ids, size_t n, int64_t expires_at);
  int (*presence_sweep)(struct bus *b, int64_t now, int64_t ttl_ms, bus_presence_cb cb, void *arg);
  int (*presence_list)(struct bus *b, bus_presence_cb cb, void *arg);
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

/* States this instance's view of user p->user_id (p borrowed): p->state and p->last_seen, valid
 * until expires_at. BUS_PRES_NONE withdraws the statement (its last_seen still counts for the
 * aggregate's lastSeen). cb(arg, ...) runs once, later, with the aggregate if it changed.
 * Returns 0, or a PARLEY_E* code (PARLEY_EUNAVAILABLE while the bus is down) and cb never runs. */
int bus_presence_put(struct bus *b, const struct bus_presence *p, int64_t expires_at,
                     bus_presence_cb cb, void *arg);

/* Extends this instance's statements about the users in ids (borrowed) to expires_at. Returns 0
 * or a PARLEY_E* code. */
int bus_presence_refresh(struct bus *b, const int64_t *ids, size_t n, int64_t expires_at);

/* Ends every statement (of any instance) that expired at `now`; such a statement's user was last
 * seen at its expiry minus ttl_ms (when it was last refreshed, at the latest). cb as for
 * bus_presence_put, with every aggregate that changed. */
int bus_presence_sweep(struct bus *b, int64_t now, int64_t ttl_ms, bus_presence_cb cb, void *arg);

/* cb(arg, 0, list, n): every user whose aggregate is not offline, as last reported. */
int bus_presence_list(struct bus *b, bus_presence_cb cb, void *arg);

/* Closes the instance: no callback runs after this returns, except `done` (NULL allowed), called
 * once every handle is closed (the loop must keep running until then). `b` is freed. */
void bus_close(struct bus *b, void (*done)(void *arg), void *arg);

#endif
