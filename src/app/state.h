/* state.h - the state all of src/app/ shares: one `struct app` per server, and the request and
 * metrics types every layer fills in. Module-private to src/app/ (main.c sees app.h only).
 *
 * It holds data, not behaviour: each field says which file owns it, and only that file changes
 * it. The layers and what each may call are drawn in docs/architecture.md; the structs of a
 * layer (rooms, clients, the cluster's nodes and fences) are in that layer's header or .c.
 */
#ifndef PARLEY_APP_STATE_H
#define PARLEY_APP_STATE_H

#include <stdint.h>
#include <uthash.h>
#include <uv.h>

#include "app/config.h"
#include "common/hist.h"
#include "net/net.h"
#include "proto/proto.h"
#include "store/store.h"

struct bus;
struct room;
struct sub;
struct client;
struct app_user;
struct app_watch;
struct app_throttle;
struct app_busx;
struct app_pcache;

/* WebSocket close codes this layer sends (net/net.h names the ones net itself uses). */
#define APP_CLOSE_POLICY 1008   /* RFC 6455 policy violation: too much sent before auth */
#define APP_CLOSE_GOING_AWAY 1001 /* the server shuts down */

/* Latency figures on /metrics cover the last one to two of these periods. */
#define APP_LAT_PERIOD_NS (60ull * 1000000000ull)

/* A seq beyond any a chat can reach: `sub` without `since` asks for what follows it, i.e.
 * nothing. */
#define APP_SEQ_INFINITY PROTO_INT_LIMIT

struct app_metrics {
  uint64_t msgs_sent;
  uint64_t deliveries;
  uint64_t catch_ups;          /* subscriptions that read from the store: a gap, or member_gen */
  uint64_t rejected_rate;
  uint64_t ws_opened;
  uint64_t http_requests;
  /* Delivery latency, ns: from reading a msg.send off the socket to the end of the flush that
   * handed its event to the kernel for every local subscriber. One value per message. */
  struct hist_window delivery_lat;
  uint64_t recv_ns;            /* when the WebSocket message being handled was read */
  uint64_t *turn_recv;         /* recv_ns of the messages fanned out this loop turn */
  size_t turn_n, turn_cap;
  /* Loop lag, ns: how late a LOOP_LAG_PROBE_MS timer fires. Everything the loop thread does
   * (reads, fan-out, replies) waits this long behind whatever held the loop. */
  struct hist_window loop_lag;
  uint64_t lag_expected_ns;    /* when the probe should fire next */
  /* Loop work per turn, ns: the loop thread's CPU time from one flush to the next, i.e. what
   * one turn's callbacks and flush cost, and its maximum since the previous /metrics scrape (to
   * measure one operation's loop time, e.g. in a big chat). */
  struct hist_window loop_turn;
  uint64_t turn_mark_ns, turn_max_ns; /* thread CPU time at the last flush; max since scrape */
  uint64_t heap_trimmed_ms;           /* loop time of the last heap trim (app.c) */
  uint64_t heap_trims;
};

/* Wall clock, Unix ms. A field so that tests can run rooms.c and presence.c on a fake one. */
typedef int64_t (*app_clock_fn)(void);

struct app {
  uv_loop_t *loop;
  struct app_config cfg;
  app_clock_fn clock;           /* app__now reads it (clock_wall_ms unless a test sets it) */
  struct net_server *net;
  struct store *store;
  struct bus *bus;              /* the bus (cluster.c); never NULL once started */
  int bus_solo;                 /* no PARLEY_BUS: a single node, nothing is published */
  struct app_busx *busx;        /* nodes alive and removal fences (cluster.c) */
  struct app_pcache *pcache;    /* users' presence across nodes, as announced (presence.c) */
  uint64_t pres_refreshed;      /* loop time this node last refreshed its presence statements */
  struct room *rooms;           /* by slug (rooms.c) */
  struct app_user *users;       /* by id (clients.c, presence.c) */
  uint64_t users_gen;           /* bumped when a user here is renamed: the activeUsers a room
                                   keeps encoded are made again (rooms.c) */
  uint64_t presence_gen;        /* bumped when any presence this node knows changes, or a
                                   room's participants are read again: a room's encoded
                                   presence page still as of it needs no look (ops_live.c) */
  struct app_throttle *throttles; /* login throttles (app_http.c) */
  struct client *unauthed;      /* WebSockets waiting for their auth op (linked by unext) */
  struct app_watch *watches;    /* presence.c */
  struct room *dirty_rooms;     /* rooms with typing/activeUsers events to send (net's
                                   on_before_flush sends them in the same loop turn) */
  uv_timer_t ticker;            /* auth deadlines, session expiry, throttle sweep (app.c) */
  uv_timer_t gap_timer;         /* the oldest gap_subs' wait is over (rooms.c) */
  uv_timer_t lag_probe;         /* measures loop lag (app.c) */
  uv_timer_t churn_timer;       /* a throttled churn event is due (churn.c) */
  int churn_timer_on;           /* churn_timer was initialized */
  uint64_t churn_due;           /* loop time churn_timer fires */
  struct churn_join *churn_joins; /* participant.joined batches by slug (churn.c) */
  size_t churn_pending;         /* of them, with joiners waiting */
  struct sub *gap_subs;         /* subscriptions waiting for a missing seq, oldest first */
  struct app_user *pres_pending; /* users with presence changes waiting (presence_batch.c) */
  uv_signal_t sigterm, sigint;
  int shutting_down;
  int sweeping;                 /* an invitation expiry sweep is in flight (ops_members.c) */
  int stream_sweeping;          /* an idle-stream sweep is in flight (ops_stream.c) */
  int session_sweeping;         /* an expired-session sweep is in flight (app.c) */
  uint64_t session_swept;       /* loop time of the last expired-session sweep */
  uint64_t notify_turn;         /* bumped per app__notify_frame(): one event per user (clients.c) */
  int hash_running;             /* argon2 runs on the thread pool now (app_http.c) */
  struct client *hash_queue[2]; /* waiting for a slot: [0] logins, [1] signups (FIFO each) */
  struct client *hash_tail[2];
  int hash_queued;
  int avatar_jobs;              /* pictures being transcoded on the thread pool (app_avatar.c) */
  struct webhook *webhooks;     /* bots' outgoing webhooks (webhook.c), NULL until started */
  struct app_api_rl *api_rl;    /* send buckets of users with no socket here (app_api.c) */
  struct app_metrics metrics;
};

/* The store's explanation of a failure, or NULL for the error table's default. */
#define STORE_ERRMSG(sreq) ((sreq)->out.errmsg[0] ? (sreq)->out.errmsg : NULL)

#endif
