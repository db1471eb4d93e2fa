/* app.h - the server: wires net (connections), proto (wire format), core (rules), store
 * (durability) and auth together. One function per protocol op lives in app_ws.c, the REST
 * endpoints in app_http.c; this header holds the state they share.
 *
 * All of it runs on the loop thread. Store requests carry a reference to the client that made
 * them, so a client that disconnects while its request is in flight is freed only after the
 * request's callback ran (and found it gone).
 */
#ifndef PARLEY_APP_APP_H
#define PARLEY_APP_APP_H

#include <stdint.h>
#include <uthash.h>
#include <uv.h>

#include "common/hist.h"
#include "core/presence.h"
#include "core/ratelimit.h"
#include "bus/bus.h"
#include "core/typing.h"
#include "net/net.h"
#include "proto/proto.h"
#include "store/store.h"

struct app_config {
  char host[64];
  int port;
  char data_dir[1024];
  char store_url[512];         /* PARLEY_STORE: "" = SQLite under data_dir, else postgres://... */
  char web_dir[1024];
  char origins[2048];          /* comma-separated allowlist; "" = the server's own origin */
  enum store_durability durability;
  int store_conns;             /* PARLEY_STORE_CONNS: database connections (0: the backend's) */
  uint64_t wal_max;            /* PARLEY_WAL_MAX: bound on SQLite's WAL file, bytes */
  size_t max_body, max_header, ws_max_msg, outq_max, outq_hard_max;
  uint64_t ping_interval_ms;
  uint64_t http_idle_ms;       /* keep-alive idle and header-read timeout (slowloris) */
  uint64_t auth_timeout_ms;
  int64_t session_ttl_ms;
  int rate_limits;             /* 0 disables the per-user and per-IP rate limits */
  double send_rate, send_burst;     /* msg.send per user */
  double op_rate, op_burst;         /* any op per connection */
  double login_rate, login_burst;   /* login attempts per client IP (every attempt counts) */
  double login_user_rate, login_user_burst; /* failed logins per username, from any address
                                               that never logged in as it (app_http.c) */
  double signup_rate, signup_burst; /* signups per client IP */
  int hash_max_running;        /* PARLEY_HASH_CONCURRENCY: argon2 runs at once (thread pool) */
  int hash_max_queued;         /* PARLEY_HASH_QUEUE: argon2 runs waiting for a slot; more: 503 */
  uint64_t session_sweep_ms;   /* PARLEY_SESSION_SWEEP_MS: expired sessions deleted this often */
  double search_rate, search_burst; /* users.search per user */
  double typing_rate, typing_burst; /* typing per user */
  double presence_rate, presence_burst; /* presence reports per user */
  int64_t presence_grace_ms;
  int64_t presence_node_ttl_ms; /* several nodes: a node's presence statements last this long */
  int64_t typing_ttl_ms;
  int max_conns_per_user;
  int cookie_secure;
  char bus_url[256];           /* PARLEY_BUS: "" = single node, "redis://host:port" = cluster */
  uint64_t bus_test_delay_ms;  /* PARLEY_TEST_BUS_DELAY_MS: publications wait this long (tests) */
};

/* Fills cfg with defaults, then applies PARLEY_* environment variables. Returns 0 or
 * PARLEY_EBAD_REQUEST (with a message logged) for a malformed value. */
int app_config_load(struct app_config *cfg);

struct app;
struct client;
struct room;

/* A socket's subscription to a chat. Live messages are delivered when live; while the replay
 * read is in flight they wait in `held`, and the seam is closed by seq (no gap, no duplicate). */
struct sub {
  struct room *room;
  struct client *client;
  uint32_t gen;                /* bumped by each (re)sub: stale replies are ignored */
  int live;                    /* authorized by the store and receiving messages */
  int counted;                 /* counted in the room's activeUsers (only once authorized) */
  int64_t next_seq;            /* the next seq this socket should receive */
  int catching_up;             /* a store read fills a gap: messages wait in `held` meanwhile */
  int recheck;                 /* the bus may have missed messages since this sub's last read */
  int fenced;                  /* a removal of this user from the chat may be under way on some
                                  node: everything waits in `held` (app_bus.c) */
  int draining;                /* sub_drain_held() is running for it */
  int gap_listed;              /* in app->gap_subs: a seq is missing since gap_deadline - wait */
  uint64_t gap_deadline;       /* loop time after which the store fills the gap */
  struct sub *gprev, *gnext;   /* app->gap_subs */
  json_t *presence;            /* participants' presence, read just before the replay */
  int64_t member_gen;          /* the chat's member_gen when the store last confirmed access */
  struct held_frame {
    int64_t seq;
    int64_t mgen;              /* the member_gen it was committed with */
    struct outq_chunk *frame;
  } *held;
  size_t n_held, cap_held;
  struct sub *rprev, *rnext;   /* room->subs */
  struct sub *cprev, *cnext;   /* client->subs */
};

/* A user with the chat open, and on how many sockets. */
struct room_active {
  int64_t user_id;
  int subs;
};

#define ROOM_DIRTY_TYPING 1u
#define ROOM_DIRTY_ACTIVE 2u
#define ROOM_DIRTY_PUBLISH 4u /* this node's own state changed: other nodes are told */
#define ROOM_DIRTY_REMOTE 8u  /* (to app__room_mark) the change came from another node */

/* What another node contributes to a room: its typers and its users with the chat open. */
struct room_remote {
  struct room_remote *next;
  char node[24];
  json_t *typing; /* [{"user": {...}, "exp": Unix ms}] */
  json_t *active; /* [{id, username, displayName}] */
};

struct room {
  char slug[STORE_SLUG_MAX + 1];
  struct sub *subs;
  size_t n_subs;
  struct typing_set typing;    /* who types here now (core/typing.h) */
  struct room_active *active;  /* activeUsers, in the order they opened the chat */
  size_t n_active, cap_active;
  struct room_remote *remote;  /* other nodes' typers and openers (app_presence.c) */
  unsigned dirty;              /* ROOM_DIRTY_*: events to send before the loop sleeps */
  int bus_ready;               /* the bus channel of the chat is subscribed and effective */
  struct room *dnext;          /* app->dirty_rooms */
  UT_hash_handle hh;           /* app->rooms by slug */
};

struct client {
  struct app *app;
  struct net_conn *conn;       /* NULL once the connection closed */
  int refs;                    /* the connection's and each request's in flight */
  int is_ws;
  int authed;
  struct store_user user;
  uint8_t session_hash[STORE_TOKEN_HASH_LEN];
  int64_t session_expires_at;
  uint64_t opened_ms;          /* loop time of the upgrade */
  int active;                  /* this socket's last presence report: active (1) or idle/hidden */
  int authing;                 /* an auth op is in flight: later messages wait in `held_in` */
  struct held_text *held_in;   /* FIFO of messages received while authing (bounded) */
  struct held_text **held_tail;
  size_t held_bytes;
  char peer[64];
  void *http_op;               /* state of the HTTP request being answered (app_http.c) */
  struct client *hash_next;    /* app->hash_queue: waiting for an argon2 slot */
  int hash_waiting;            /* in app->hash_queue (holds a reference) */
  struct ratelimit op_rl;
  struct sub *subs;
  struct client *uprev, *unext; /* app_user->clients */
};

/* A user with sockets here, or whose last socket closed less than the presence grace ago. */
/* A message that arrived while its socket's auth was in flight. */
struct held_text {
  struct held_text *next;
  size_t len;
  char data[];
};

struct app_user {
  int64_t id;
  struct store_user user;      /* names, for events */
  struct client *clients;
  int n_clients;
  struct presence_user pres;   /* core/presence.h */
  struct ratelimit send_rl;
  struct ratelimit search_rl;
  struct ratelimit typing_rl;
  struct ratelimit presence_rl;
  int64_t watching[32];        /* users found by this user's searches: their presence is shown */
  int n_watching;
  UT_hash_handle hh;           /* app->users by id */
};

/* Reverse index of app_user.watching: who watches a user's presence through search. */
struct app_watch {
  int64_t id;
  int64_t *watchers;
  size_t n, cap;
  UT_hash_handle hh;
};

/* A throttle entry (app_http.c): "ip:<addr>" (login attempts per address), "su:<addr>"
 * (signups per address), "u:<name>" (failed logins per username) or "p:<name> <addr>" (a
 * username tried from one address: its failures in a row and their lockout). */
#define APP_THROTTLE_KEY_MAX 112 /* "p:" + a username + " " + an address, with the NUL */
struct app_throttle {
  char key[APP_THROTTLE_KEY_MAX];
  struct ratelimit rl;
  int failures;           /* consecutive failed logins ("p:" keys) */
  int64_t locked_until;   /* progressive delay: no login attempt before this (Unix ms) */
  int64_t last_failure;
  int64_t last_success;   /* "p:" keys: this address logged in as this user then (Unix ms) */
  UT_hash_handle hh;
};

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
};

struct app_busx;
struct app_pcache;

struct app {
  uv_loop_t *loop;
  struct app_config cfg;
  struct net_server *net;
  struct store *store;
  struct bus *bus;              /* other nodes (app_bus.c); never NULL once started */
  int bus_solo;                 /* no PARLEY_BUS: a single node, nothing is published */
  struct app_busx *busx;        /* nodes alive and removal fences (app_bus.c) */
  struct app_pcache *pcache;    /* users' presence across nodes, as announced (app_presence.c) */
  uint64_t pres_refreshed;      /* loop time this node last refreshed its presence statements */
  struct room *rooms;
  struct app_user *users;
  struct app_throttle *throttles;
  struct client *unauthed;      /* WebSockets waiting for their auth op (linked by unext) */
  struct app_watch *watches;
  struct room *dirty_rooms;     /* rooms with typing/activeUsers events to send (net's
                                   on_before_flush sends them in the same loop turn) */
  uv_timer_t ticker;            /* auth deadlines, session expiry, throttle sweep */
  uv_timer_t gap_timer;         /* the oldest gap_subs' wait is over (app_ws.c) */
  struct sub *gap_subs;         /* subscriptions waiting for a missing seq, oldest first */
  uv_signal_t sigterm, sigint;
  int shutting_down;
  int sweeping;                 /* an invitation expiry sweep is in flight */
  int session_sweeping;         /* an expired-session sweep is in flight */
  uint64_t session_swept;       /* loop time of the last expired-session sweep */
  int hash_running;             /* argon2 runs on the thread pool now (app_http.c) */
  struct client *hash_queue[2]; /* waiting for a slot: [0] logins, [1] signups (FIFO each) */
  struct client *hash_tail[2];
  int hash_queued;
  struct app_metrics metrics;
};

/* Opens the store, binds the listener and starts serving. Returns 0 or a PARLEY_E* code. */
int app_start(struct app *a, uv_loop_t *loop, const struct app_config *cfg);

/* Graceful shutdown: stop accepting, close WebSockets with 1001, let the store finish its queue,
 * then release everything so uv_run returns. */
void app_shutdown(struct app *a);

/* Latency figures on /metrics cover the last one to two of these periods. */
#define APP_LAT_PERIOD_NS (60ull * 1000000000ull)

/* app.c, shared with app_http.c and app_ws.c */
/* Counts a message fanned out this loop turn that was read at recv_ns (its delivery latency is
 * taken when the turn's output has been written). */
void app__metrics_fanned_out(struct app *a, uint64_t recv_ns);
struct client *app__client_ref(struct client *cl);
void app__client_unref(struct client *cl);
int app__origin_allowed(const struct app *a, const char *origin);
int64_t app__now(const struct app *a);
/* Submits a store request on behalf of cl (a reference is held until cb). */
int app__submit(struct app *a, struct client *cl, struct store_req *req, store_cb cb);
/* Registers an authenticated socket; PARLEY_ERATE_LIMITED at the per-user connection cap. */
int app__user_attach(struct app *a, struct client *cl, const struct store_user *u,
                     const uint8_t *session_hash, int64_t expires_at);

/* app_presence.c */
void app__presence_attached(struct app *a, struct app_user *au);
void app__presence_detached(struct app *a, struct app_user *au, struct client *cl);
void app__presence_tick(struct app *a);
void app__presence_persist_all(struct app *a);
void app__presence_watch(struct app *a, struct app_user *au, int64_t watched);
/* Several nodes: the bus is (back) up, so this node states its users' presence again and reads
 * everyone's. */
void app__presence_bus_up(struct app *a);
/* Several nodes: another node announced user_id's presence (json: the encoded event, borrowed)
 * to the users in ids (borrowed); this node's watchers of the user get it too. json NULL: only
 * the new state, nobody is told. */
void app__presence_remote(struct app *a, int64_t user_id, int state, int64_t last_seen,
                          const int64_t *ids, size_t n, const char *json, size_t len);
void app__presence_dispose(struct app *a);
json_t *app__presence_json(struct app *a, const struct store_user *u);
void app__room_sub_added(struct app *a, struct room *r, int64_t user_id);
void app__room_sub_removed(struct app *a, struct room *r, int64_t user_id);
void app__room_mark(struct app *a, struct room *r, unsigned what);
void app__room_free(struct room *r);
json_t *app__room_typing_json(struct app *a, struct room *r, json_t **others);
json_t *app__room_active_json(struct app *a, const struct room *r);
void app__rooms_flush(struct app *a);
void app__rooms_tick(struct app *a);
void app__op_typing(struct client *cl, const struct proto_req *req);
/* This node's typers (with their time left) and openers of the room, for other nodes: a new
 * reference, an empty object when there are none. */
json_t *app__room_local_state(struct app *a, struct room *r);
/* Replaces node's contribution to the room with `state` (borrowed; what
 * app__room_local_state returned there; empty or NULL: nothing). */
void app__room_remote_set(struct app *a, struct room *r, const char *node, json_t *state);
/* A node is gone: its contributions to every room end. */
void app__rooms_forget_node(struct app *a, const char *node);
void app__op_presence(struct client *cl, const struct proto_req *req);
struct room *app__room_find(struct app *a, const char *slug);

/* app_bus.c: events to and from other nodes (see the file's header) */
/* Opens the bus PARLEY_BUS names. Returns 0 or a PARLEY_E* code (logged). */
int app__bus_start(struct app *a);
/* Closes it; `done` (NULL allowed) runs once its handles are closed. */
void app__bus_stop(struct app *a, void (*done)(void *arg), void *arg);
/* A room came to exist on this node (a local socket opened the chat) / is about to be freed. */
void app__bus_room_opened(struct app *a, struct room *r);
void app__bus_room_closed(struct app *a, struct room *r);
/* Publishes a presence event (json borrowed) of user_id for the users in ids (borrowed); with
 * json NULL, only the new state, for the other nodes' snapshots (ids unused). */
void app__bus_publish_presence(struct app *a, int64_t user_id, int state, int64_t last_seen,
                               const int64_t *ids, size_t n, const char *json, size_t len);
/* Publishes this node's typers and openers of the room (ROOM_DIRTY_PUBLISH). */
void app__bus_publish_room_state(struct app *a, struct room *r);
/* Publishes the committed message `seq` of chat `slug`, committed with member_gen `mgen`, as its
 * encoded event `json` (borrowed). */
void app__bus_publish_msg(struct app *a, const char *slug, int64_t seq, int64_t mgen,
                          const char *json, size_t len);

/* Heartbeat, and the timeouts of nodes and fences; from the housekeeping tick. */
void app__bus_tick(struct app *a);
/* Fences `username` (borrowed) out of chat `slug` (borrowed) on every node before a removal or a
 * leave is submitted (see app_bus.c). Returns 1 if cb(arg) will run once every node holds (or
 * after a timeout; never synchronously; also at app__bus_stop), with *fid set; 0 if there is no
 * other node to fence (a single node): the caller goes ahead at once. */
int app__bus_fence(struct app *a, const char *slug, const char *username, void (*cb)(void *arg),
                   void *arg, uint32_t *fid);
/* Lifts fence fid (0: none) everywhere, after the removal's events were published. */
void app__bus_unfence(struct app *a, uint32_t fid);
/* 1 if a fence of (username, slug) is up on this node: a new subscription starts fenced. */
int app__bus_fenced(struct app *a, const char *username, const char *slug);
/* Publishes an event for users (json borrowed: the encoded event) to other nodes, which send it
 * to the sockets there of the users in ids (borrowed). */
void app__bus_publish_notify(struct app *a, const int64_t *ids, size_t n, const char *json,
                             size_t len);
/* Tells other nodes to end user_id's subscriptions to the chat `slug` (borrowed). */
void app__bus_publish_drop(struct app *a, int64_t user_id, const char *slug);
/* Tells other nodes to close the sockets of a session (hash and reason borrowed). */
void app__bus_publish_close_session(struct app *a, const uint8_t *session_hash, uint16_t code,
                                    const char *reason);

/* app_ws.c, for app_bus.c: the local halves of app__notify_users (json: an encoded event,
 * borrowed), app__drop_user_subs and app__close_session, for what another node published. */
void app__notify_here(struct app *a, const int64_t *ids, size_t n, const char *json, size_t len);
void app__drop_user_subs_here(struct app *a, int64_t user_id, const char *slug);
void app__close_session_here(struct app *a, const uint8_t *session_hash, uint16_t code,
                             const char *reason);
/* app_ws.c, for app_bus.c: delivers message `seq` (frame borrowed; every sub takes its own
 * reference) to the room's subscriptions in seq order, catching up from the store on a gap, and
 * on a member_gen `mgen` newer than a subscription's (its access is checked again first). */
void app__room_deliver_msg(struct app *a, struct room *r, int64_t seq, int64_t mgen,
                           struct outq_chunk *frame);
/* app_ws.c, for app_members.c: a leave or removal this node committed moved chat `slug`'s
 * member_gen to `gen`, and the leaver's subscriptions here are gone. The others here that were
 * confirmed just before it are confirmed as of `gen` too (nobody else lost access by it), so they
 * need not ask the store again. */
void app__room_members_left(struct app *a, const char *slug, int64_t gen);
/* Holds (fenced = 1) or releases a subscription's deliveries; a release with verify = 1 drops
 * what was held and reads it again from the store, which checks membership. */
void app__sub_fence(struct app *a, struct sub *s, int fenced, int verify);
/* The bus may have missed messages of this room: every subscription checks the store. */
void app__room_catch_up(struct app *a, struct room *r);

/* app_members.c: chat.update, leave, remove, setRole, users.search, invitations */
void app__members_dispatch(struct client *cl, const struct proto_req *req);
void app__invite_sweep(struct app *a);

/* app_http.c */
void app__on_request(void *ud, struct net_conn *c, struct http_request *req);
/* Frees cl->http_op (wiping the password it may hold); called when cl itself is freed. */
void app__http_op_free(struct client *cl);

/* A chat object for the wire with the live activeUsers of its room filled in. */
json_t *app__chat_json(struct app *a, const struct store_chat *c);

/* The store's explanation of a failure, or NULL for the error table's default. */
#define STORE_ERRMSG(sreq) ((sreq)->out.errmsg[0] ? (sreq)->out.errmsg : NULL)

/* app_ws.c */
/* A store request made for an op keeps what its reply needs in one of these (store_req.ctx). */
struct op_ctx {
  struct proto_req env; /* only has_id and id are used; root is NULL */
  uint32_t gen;         /* sub: generation of the subscription this reply is for;
                           chat.remove, chat.leave: their fence (app__bus_fence), 0 = none */
  uint64_t recv_ns;     /* when the op's message was read (app_metrics.recv_ns) */
};
void app__reply_ok(struct client *cl, const struct proto_req *req, json_t *result);
void app__reply_err(struct client *cl, const struct proto_req *req, int err, const char *msg);
/* Replies rate_limited with error.retryAfter = wait_ms, and counts it in /metrics. */
void app__reply_rate_limited(struct client *cl, const struct proto_req *req, int64_t wait_ms,
                             const char *msg);
/* Submits sreq for the op req of cl; cb must end with app__op_finish(sreq). */
void app__op_submit(struct client *cl, const struct proto_req *req, struct store_req *sreq,
                    store_cb cb, uint32_t gen);
void app__op_finish(struct store_req *sreq);
/* For an op's store callback: returns 1 if there is nothing more to do because the socket is
 * gone or the request failed (the error reply, with the store's explanation, is then sent). */
int app__op_failed(struct store_req *sreq);
/* Encodes an event once into a frame any number of sockets can share (fields' reference is
 * stolen). Returns a chunk with one reference, or NULL. */
struct outq_chunk *app__event_frame(const char *ev, json_t *fields);
/* Encodes an event once and sends it to every socket of each user in ids (borrowed), on this
 * node and (through the bus) on every other. The event fields' reference is stolen. */
void app__notify_users(struct app *a, const int64_t *ids, size_t n, const char *ev,
                       json_t *fields);
/* As app__notify_users, but only to this node's sockets (what they alone need to know). */
void app__notify_local(struct app *a, const int64_t *ids, size_t n, const char *ev, json_t *fields);
/* Ends every subscription of user_id's sockets to the chat `slug`, on every node. */
void app__drop_user_subs(struct app *a, int64_t user_id, const char *slug);
/* Sends participant.joined to the chat's members (after a join or an accepted invitation). */
void app__announce_join(struct app *a, const struct store_req *sreq, const struct store_user *u);
/* Tells the invitee and the inviter of each of sreq->out.invites (invitations an op settled on
 * its way: a join, a removal) its new status, as an "invite" event. */
void app__invite_events(struct app *a, const struct store_req *sreq);
void app__on_ws_text(void *ud, struct net_conn *c, const char *data, size_t len);
void app__ws_hello(struct client *cl);
void app__client_drop_subs(struct client *cl);
void app__client_drop_held(struct client *cl);
/* Closes every socket of the session with that hash (logout), on every node. */
void app__close_session(struct app *a, const uint8_t *session_hash, uint16_t code,
                        const char *reason);

#endif
