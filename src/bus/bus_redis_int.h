/* bus_redis_int.h - what bus_redis.c (connections, channels, publications) and
 * bus_redis_presence.c (presence in keys, changed by Lua scripts) share: one instance's
 * state. Private to those two files; bus.h is the public face. */
#ifndef PARLEY_BUS_BUS_REDIS_INT_H
#define PARLEY_BUS_BUS_REDIS_INT_H

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bus/bus.h"

#define SELF_LEN 16
#define PUB_QUEUE_MAX (16u << 20) /* bytes of publications waiting for Redis */
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 2000
#define CONNECT_TIMEOUT_MS 1000 /* a connect not done by then is abandoned and retried */
#define BEAT_MS 500               /* a heartbeat through Redis back to ourselves */
#define SILENT_MS 2500            /* no heartbeat back for this long: reconnect */
#define NS_MAX 64                 /* bytes of a "/NAME" namespace */
#define FULL_MAX (BUS_CHANNEL_MAX + NS_MAX + 1) /* a channel with its namespace */

struct rchan;
struct rpub;

/* A presence call waiting for its reply. */
struct rpcall {
  struct rpcall *next, *prev;
  bus_presence_cb cb; /* NULL once cancelled by close: the reply only frees this */
  void *arg;
};

struct rbus {
  struct bus base;
  uv_loop_t *loop;
  struct bus_callbacks cb;
  char host[256];
  int port;
  uint8_t self[SELF_LEN];
  char self_hex[2 * SELF_LEN + 1];
  char own_channel[64];   /* keeps the subscription count above zero (see above) */
  char ns[NS_MAX + 2];    /* "NAME:" or "" */
  size_t ns_len;
  struct rpcall *calls; /* presence calls in flight */
  redisAsyncContext *sub, *pub;
  uint64_t sub_started, pub_started; /* loop time each connect began */
  int sub_ready, pub_ready; /* connected (sub: and its own channel is subscribed) */
  int up;                 /* what on_state last said */
  uv_timer_t retry;
  uv_timer_t beat;          /* heartbeat (see above) */
  uint64_t last_heard;      /* loop time the last heartbeat came back */
  uint64_t backoff_ms;
  struct rchan *chans;
  struct rpub *q_head, *q_tail;
  size_t q_bytes;
  int closing;
  void (*done)(void *arg);
  void *done_arg;
};

/* bus_redis_presence.c: the presence methods of bus_ops (bus.h says what each does and who
 * owns what). They use the publish connection. */
int redis__presence_put(struct bus *b, const struct bus_presence *p, int64_t expires_at,
                        bus_presence_cb cb, void *arg);
int redis__presence_refresh(struct bus *b, const int64_t *ids, size_t n, int64_t expires_at);
int redis__presence_sweep(struct bus *b, int64_t now, int64_t ttl_ms, bus_presence_cb cb,
                          void *arg);
int redis__presence_list(struct bus *b, bus_presence_cb cb, void *arg);

#endif
