/* wire.h - the peer servers' wire protocols, for the side-by-side chat benchmark.
 *
 * `loadgen --server socketio|xmpp` runs the chat scenario (same pacing, body, measurement,
 * integrity checks and report as for Parley) against a peer server. Each peer protocol is one
 * file behind struct wire_ops: wire_sio.c (Engine.IO/Socket.IO text framing over ws.c's WebSocket
 * client) and wire_xmpp.c (XMPP over plain TCP, parsed with libexpat). wire_peer.c holds what is
 * common to the peers: the set-up steps, the send, and the accounting of received messages.
 * Parley's own protocol stays in loadgen.c (lg->wire == NULL): it has requests with replies,
 * per-chat sequence numbers and the other scenarios, which the peers have no equivalent for.
 *
 * Peers have no acknowledgement and no sequence number, so:
 *   - every member of a room, the sender included, is owed each message from the moment it is
 *     sent (expected deliveries grow at send time, not at ack time);
 *   - the sender's own copy plays the ack: acks/s and the ack latency count it, and a send is in
 *     flight until it came back;
 *   - the body carries "lgt=<send time ns> u<sender index> n<sender's counter>", and each socket
 *     keeps the next counter it expects from every member of its room: a jump is a gap (loss),
 *     a counter seen again or going back is a duplicate.
 */
#ifndef BENCH_WIRE_H
#define BENCH_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct lg;

struct wire_ops {
  const char *name; /* "socketio", "xmpp": the server column of the report and CSV */
  /* Opens c's connection (c zeroed except lg/idx/group and the loadgen fields) and logs in.
   * Calls lg_step_done(c, 1) once logged in; on failure, or if the socket goes down, calls
   * lg_on_ws_down(c, why) once (which ends the step). Returns 0, or -1 if the connection could
   * not even be started (lg_on_ws_down was called then too). */
  int (*open)(struct conn *c);
  /* Joins c's room (lg->groups[c->group].slug, borrowed). Calls lg_step_done(c, 1) once c is in
   * the room, lg_step_done(c, 0) if the server refused. Returns 0, or -1 if not sent. */
  int (*join)(struct conn *c);
  /* Sends one chat message with body p[0..n) (borrowed for the call; printable ASCII without
   * quotes, backslashes, '<' or '&') to c's room. Returns 0, or -1 (connection down, queue full). */
  int (*send)(struct conn *c, const char *p, size_t n);
  /* Starts a clean close; lg_on_ws_down(c) follows when the socket is gone. */
  void (*close)(struct conn *c);
  /* Closes the socket now, without calling lg_on_ws_down. */
  void (*abort)(struct conn *c);
  /* For wires that ride on ws.c: its events, routed here by loadgen.c (NULL otherwise). The
   * frame p[0..n) is borrowed for the call. */
  void (*ws_open)(struct conn *c);
  void (*ws_text)(struct conn *c, const uint8_t *p, size_t n);
};

extern const struct wire_ops wire_sio;
extern const struct wire_ops wire_xmpp;

/* The wire named `name` ("parley" gives NULL through *out), or -1 if unknown. */
int wire_lookup(const char *name, const struct wire_ops **out);

/* wire_peer.c: the peer side of loadgen.c. */
/* After the groups are laid out: names the rooms, allocates the per-sender counters.
 * Returns 0 or -1 (out of memory). */
int wire_peer_init(struct lg *lg);
/* One set-up step of the current phase for c (connect: open; create, join: join). 0 or -1. */
int wire_peer_step(struct lg *lg, struct conn *c);
/* One paced chat message from c. */
void wire_peer_send(struct lg *lg, struct conn *c);
/* c's socket is gone: its messages that never came back are counted as unacknowledged. */
void wire_peer_down(struct lg *lg, struct conn *c);
/* A chat message reached c: room[0..room_len) and body[0..n) borrowed for the call. Checks the
 * room and the sender's counter, then counts the delivery like a Parley `msg` event. */
void wire_peer_msg(struct conn *c, const char *room, size_t room_len, const char *body, size_t n);
/* A frame or stanza the wire could not make sense of: counted as a bad frame, the first few
 * printed. `what` and p[0..n) are borrowed. */
void wire_peer_bad(struct conn *c, const char *what, const char *p, size_t n);

/* loadgen.c, for wire_peer.c */
/* Ends c's set-up step (ok or failed), as a Parley reply would. */
void lg_step_done(struct conn *c, int ok);
/* Counts one delivery to c with the send time `ts` (0: none), like a Parley `msg` event;
 * seq -1: no sequence check. */
void lg_count_delivery(struct conn *c, int64_t seq, uint64_t ts);

#endif
