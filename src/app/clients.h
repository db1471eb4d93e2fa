/* clients.h - the bottom of src/app/: sockets (struct client), the users who have them here
 * (struct app_user), the clock, store submission on a client's behalf, and sending an encoded
 * event to every socket here of some users. Everything above builds on these; nothing here
 * calls up.
 */
#ifndef PARLEY_APP_CLIENTS_H
#define PARLEY_APP_CLIENTS_H

#include <jansson.h>
#include <stdint.h>

#include "app/state.h"
#include "core/presence.h"
#include "core/ratelimit.h"
#include "net/outq.h"

struct sub;
struct pres_change; /* presence_batch.c */

/* A message that arrived while its socket's auth was in flight. */
struct held_text {
  struct held_text *next;
  size_t len;
  char data[];
};

struct client {
  struct app *app;
  struct net_conn *conn;       /* NULL once the connection closed */
  int refs;                    /* the connection's and each request's in flight */
  int is_ws;
  int authed;
  /* Who it is: NULL until authed; then its app_user's copy, which profile changes update (a
   * socket's user is pinned, so it outlives the socket's last request), or for an op of the
   * HTTP API the run's own copy (app_api.c). */
  const struct store_user *user;
  struct app_user *au;         /* pinned by this client from its auth until it is freed */
  uint8_t session_hash[STORE_TOKEN_HASH_LEN];
  int64_t session_expires_at;
  uint64_t opened_ms;          /* loop time of the upgrade */
  int active;                  /* this socket's last presence report: active (1) or idle/hidden */
  int authing;                 /* an auth op is in flight: later messages wait in `held_in` */
  struct held_text *held_in;   /* FIFO of messages received while authing (bounded, ws_conn.c) */
  struct held_text **held_tail;
  size_t held_bytes;
  char peer[64];
  void *http_op;               /* state of the HTTP request being answered (app_http.c) */
  void (*on_free)(struct client *cl); /* run when the last reference goes (NULL: nothing); the
                                         creator's (app_http.c: frees http_op, wiping it) */
  struct client *hash_next;    /* app->hash_queue: waiting for an argon2 slot */
  int hash_waiting;            /* in app->hash_queue (holds a reference) */
  struct ratelimit op_rl;
  struct sub *subs;            /* rooms.c */
  struct client *uprev, *unext; /* app_user->clients */
  /* An op run outside a WebSocket (app_api.c): every reply goes to on_reply (s borrowed) instead
   * of a socket, and conn is a marker that is never dereferenced. NULL for real connections. */
  void (*on_reply)(struct client *cl, const char *s, size_t len);
  void *reply_data;
  const char *api_chat;        /* the chat whose membership app_api.c checked (NULL: none; in
                                  reply_data): stands in for a live subscription (typing) */
};

/* A user with sockets here, or whose last socket closed less than the presence grace ago. */
struct app_user {
  int64_t id;
  struct store_user user;      /* names, for events */
  struct client *clients;
  int n_clients;
  int pins;                    /* clients whose `user` points here: kept until none is left */
  struct presence_user pres;   /* core/presence.h */
  struct ratelimit send_rl;
  struct ratelimit search_rl;
  struct ratelimit typing_rl;
  struct ratelimit presence_rl;
  uint64_t notified;           /* app->notify_turn of the last event sent to it (dedupe) */
  int64_t watching[32];        /* users found by this user's searches: their presence is shown */
  int n_watching;
  /* presence_batch.c: changes waiting for this recipient's window (refs), and the window */
  struct pres_change **pres_pend;
  size_t pres_n, pres_cap;
  uint64_t pres_quiet_until;   /* loop time before which a change waits */
  uint64_t pres_window;        /* ms: the widest window of the changes it got lately */
  int pres_listed;             /* in app->pres_pending */
  struct app_user *pres_prev, *pres_next;
  UT_hash_handle hh;           /* app->users by id */
};

/* The wall clock in Unix ms (a->clock: a fake one in unit tests). */
int64_t app__now(const struct app *a);
/* Takes a reference to cl (returned); app__client_unref frees it at the last one. */
struct client *app__client_ref(struct client *cl);
void app__client_unref(struct client *cl);
/* Submits a store request on behalf of cl (NULL: the server's own), which holds a reference to
 * cl until cb. Takes ownership of req (freed here on failure). Returns 0 or a PARLEY_E* code;
 * on failure cb is not called. */
int app__submit(struct app *a, struct client *cl, struct store_req *req, store_cb cb);
/* The user with that id who has (or recently had) sockets here, or NULL. Borrowed. */
struct app_user *app__user_find(struct app *a, int64_t id);
/* {id, username, displayName} of a user known here, or NULL: a new reference. */
json_t *app__user_json(struct app *a, int64_t id);
/* Counts a message fanned out this loop turn that was read at recv_ns (its delivery latency is
 * taken when the turn's output has been written). */
void app__metrics_fanned_out(struct app *a, uint64_t recv_ns);
/* Encodes an event once into a frame any number of sockets can share (fields' reference is
 * stolen). Returns a chunk with one reference, or NULL. */
struct outq_chunk *app__event_frame(const char *ev, json_t *fields);
/* Sends a frame (borrowed; each socket takes a reference) to every socket here of each user in
 * ids (borrowed), once per user even if listed twice. */
void app__notify_frame(struct app *a, const int64_t *ids, size_t n, struct outq_chunk *frame);
/* The same, but not to the sockets for which skip(cl, arg) is true (skip NULL: to every socket;
 * arg borrowed, passed on as is). */
void app__notify_frame_but(struct app *a, const int64_t *ids, size_t n, struct outq_chunk *frame,
                           int (*skip)(struct client *cl, const void *arg), const void *arg);
/* The same for an encoded event (json borrowed). */
void app__notify_here(struct app *a, const int64_t *ids, size_t n, const char *json, size_t len);
/* The same for an event not yet encoded (fields' reference stolen): this node's sockets only. */
void app__notify_local(struct app *a, const int64_t *ids, size_t n, const char *ev,
                       json_t *fields);
/* Closes every socket here of the session with that hash (borrowed), with code and reason. */
void app__close_session_here(struct app *a, const uint8_t *session_hash, uint16_t code,
                             const char *reason);

/* Users of the HTTP API (app_api.c) who have no socket here: their msg.send bucket and names.
 * app__api_user_seen records u (borrowed) as using it now. */
void app__api_user_seen(struct app *a, const struct store_user *u);
/* The msg.send bucket of a user with no socket here (who has one uses app_user.send_rl). */
struct ratelimit *app__api_send_rl(struct app *a, int64_t user_id);
/* The names of a user who used the HTTP API here lately and has no socket here (typing lists
 * show them), or NULL. Borrowed until the next sweep. */
const struct store_user *app__api_user(struct app *a, int64_t user_id);
/* Drops buckets that are full again (now: Unix ms; rate: the slowest refill); frees them all. */
void app__api_rl_sweep(struct app *a, int64_t now);
void app__api_rl_free(struct app *a);

#endif
