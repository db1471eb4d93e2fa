/* cluster.h - this node's side of the bus: what it tells the other nodes (publications), and
 * the events they send it, handed up through a table of callbacks so this layer never calls
 * the layers above it. cluster.c's header describes the channels and the removal fence;
 * cluster_wire.h the lines.
 */
#ifndef PARLEY_APP_CLUSTER_H
#define PARLEY_APP_CLUSTER_H

#include <jansson.h>
#include <stdint.h>

#include "app/state.h"
#include "net/outq.h"

/* What other nodes (and the bus itself) tell this node. Every pointer argument is borrowed for
 * the call. Set once, at app__bus_start. */
struct cluster_events {
  /* A committed message of chat `slug` (the frame: its `msg` event; mgen its member_gen). */
  void (*msg)(struct app *a, const char *slug, int64_t seq, int64_t mgen,
              struct outq_chunk *frame);
  /* A committed append (issue 19) to stream `seq` at `offset` (the frame: its msg.delta). */
  void (*delta)(struct app *a, const char *slug, int64_t seq, int64_t offset, int64_t mgen,
                struct outq_chunk *frame);
  /* Another node's typers and openers of the chat (state: a JSON object, or NULL: none). */
  void (*room_state)(struct app *a, const char *slug, const char *node, json_t *state);
  /* Another node opened the chat: this node states its own typers and openers of it. */
  void (*room_query)(struct app *a, const char *slug);
  /* The chat's channel is (again) subscribed: what was published before may have been missed. */
  void (*room_ready)(struct app *a, const char *slug);
  /* The bus went down (up = 0): every channel needs subscribing again; or came back (up = 1). */
  void (*bus_state)(struct app *a, int up);
  /* A node went silent: its typers and openers are gone. */
  void (*node_gone)(struct app *a, const char *node);
  /* An encoded event for the sockets here of the users in ids. */
  void (*notify)(struct app *a, const int64_t *ids, size_t n, const char *json, size_t len);
  /* End user_id's subscriptions here to chat `slug`. */
  void (*drop_subs)(struct app *a, int64_t user_id, const char *slug);
  /* Close the sockets here of a session. */
  void (*close_session)(struct app *a, const uint8_t *session_hash, uint16_t code,
                        const char *reason);
  /* Hold (fenced = 1) or release the deliveries of `username`'s subscriptions to `slug`; a
   * release with verify = 1 reads what was held again from the store. */
  void (*fence)(struct app *a, const char *username, const char *slug, int fenced, int verify);
  /* A user's presence across nodes, as another node announced it; json NULL: only the new
   * state, nobody to tell; else the encoded event for the users in ids. */
  void (*presence)(struct app *a, int64_t user_id, int state, int64_t last_seen,
                   const int64_t *ids, size_t n, const char *json, size_t len);
};

/* Opens the bus PARLEY_BUS names (a private in-process one for a single node), with ev
 * (borrowed for the app's life). Returns 0 or a PARLEY_E* code (logged). */
int app__bus_start(struct app *a, const struct cluster_events *ev);
/* Closes it; `done` (NULL allowed) runs once its handles are closed. */
void app__bus_stop(struct app *a, void (*done)(void *arg), void *arg);
/* A chat is open on this node now (a local socket subscribed) / not any more. Opening returns
 * 1 if the chat's channel is effective at once (nothing published from now on can be missed),
 * 0 if room_ready will say when. */
int app__bus_room_opened(struct app *a, const char *slug);
void app__bus_room_closed(struct app *a, const char *slug);
/* Publishes this node's typers and openers of the chat (state borrowed: a JSON object). */
void app__bus_publish_room_state(struct app *a, const char *slug, json_t *state);
/* Publishes the committed message `seq` of chat `slug`, committed with member_gen `mgen`, as its
 * encoded event `json` (borrowed). */
void app__bus_publish_msg(struct app *a, const char *slug, int64_t seq, int64_t mgen,
                          const char *json, size_t len);
/* Publishes a committed append to stream `seq` at `offset` as its msg.delta event (borrowed). */
void app__bus_publish_delta(struct app *a, const char *slug, int64_t seq, int64_t offset,
                            int64_t mgen, const char *json, size_t len);
/* Publishes an event for users (json borrowed: the encoded event) to other nodes, which send it
 * to the sockets there of the users in ids (borrowed). */
void app__bus_publish_notify(struct app *a, const int64_t *ids, size_t n, const char *json,
                             size_t len);
/* Tells other nodes to end user_id's subscriptions to the chat `slug` (borrowed). */
void app__bus_publish_drop(struct app *a, int64_t user_id, const char *slug);
/* Tells other nodes to close the sockets of a session (hash and reason borrowed). */
void app__bus_publish_close_session(struct app *a, const uint8_t *session_hash, uint16_t code,
                                    const char *reason);
/* Publishes a presence event (json borrowed) of user_id for the users in ids (borrowed); with
 * json NULL, only the new state, for the other nodes' snapshots (ids unused). */
void app__bus_publish_presence(struct app *a, int64_t user_id, int state, int64_t last_seen,
                               const int64_t *ids, size_t n, const char *json, size_t len);
/* Heartbeat, and the timeouts of nodes and fences; from the housekeeping tick. */
void app__bus_tick(struct app *a);
/* Fences `username` (borrowed) out of chat `slug` (borrowed) on every node before a removal or a
 * leave is submitted. Returns 1 if cb(arg) will run once every node holds (or after a timeout;
 * never synchronously; also at app__bus_stop), with *fid set; 0 if there is no other node to
 * fence (a single node): the caller goes ahead at once. */
int app__bus_fence(struct app *a, const char *slug, const char *username, void (*cb)(void *arg),
                   void *arg, uint32_t *fid);
/* Lifts fence fid (0: none) everywhere, after the removal's events were published. */
void app__bus_unfence(struct app *a, uint32_t fid);
/* 1 if a fence of (username, slug) is up on this node: a new subscription starts fenced. */
int app__bus_fenced(struct app *a, const char *username, const char *slug);

#endif
