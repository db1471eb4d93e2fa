/* cluster_wire.h - the lines nodes send each other on the bus: one pure codec (no I/O, no
 * state), used by cluster.c, unit-tested (tests/unit/test_cluster_wire.c) and fuzzed
 * (tests/fuzz/fuzz_cluster_wire.c). cluster.c's header describes what each kind means.
 *
 * On a chat's channel "c:<slug>":
 *   "m<seq> <member_gen>\n<event JSON>"    a committed message
 *   "D<seq> <offset> <member_gen>\n<event JSON>"  a committed append to a stream (msg.delta)
 *   "s<node>\n<state JSON>"                 a node's typers and openers of the chat
 *   "q<node>\n"                             a node opened the chat and asks for the others'
 * On the users' channel "u":
 *   "n<id>,<id>,...\n<event JSON>"          an event for those users' sockets
 *   "d<user id> <slug>\n"                   end that user's subscriptions to the chat
 *   "x<session hash hex> <code>\n<reason>"  close the sockets of that session
 *   "h<node>\n"                             a node's heartbeat
 *   "F<node> <fence> <slug> <username>\n"   a removal is about to be submitted: fence
 *   "a<node> <fence> <acking node>\n"       the fence holds on the acking node
 *   "f<node> <fence>\n"                     lift the fence
 *   "P<user> <state> <lastSeen>\n"          a presence change, for the nodes' snapshots
 *   "p<user> <state> <lastSeen>\n<id>,...\n<event JSON>"  the same with its event and audience
 */
#ifndef PARLEY_APP_CLUSTER_WIRE_H
#define PARLEY_APP_CLUSTER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define CLUSTER_NODE_ID_LEN 16        /* hex characters of a node's random id */
#define CLUSTER_IDS_MAX 100000        /* ids one user event names (a chat's members, at most) */
#define CLUSTER_REASON_MAX 123        /* bytes of a close reason kept (RFC 6455: 123) */
#define CLUSTER_LINE_MAX 255          /* a node event's line, without its newline */

enum cluster_kind {
  CLUSTER_MSG = 'm',
  CLUSTER_DELTA = 'D',
  CLUSTER_ROOM_STATE = 's',
  CLUSTER_ROOM_QUERY = 'q',
  CLUSTER_NOTIFY = 'n',
  CLUSTER_DROP = 'd',
  CLUSTER_CLOSE = 'x',
  CLUSTER_HEARTBEAT = 'h',
  CLUSTER_FENCE = 'F',
  CLUSTER_ACK = 'a',
  CLUSTER_UNFENCE = 'f',
  CLUSTER_PRESENCE_STATE = 'P',
  CLUSTER_PRESENCE = 'p',
};

/* One line, decoded or to encode. Which fields count depends on `kind` (see above); strings are
 * NUL-terminated copies, `ids_text` and `body` point into the decoded input (borrowed). */
struct cluster_wire_msg {
  int kind;                          /* enum cluster_kind */
  char node[CLUSTER_NODE_ID_LEN + 1]; /* s q h F a f: the sender (a: the fence's owner) */
  char acker[CLUSTER_NODE_ID_LEN + 1]; /* a */
  uint32_t fid;                      /* F a f */
  char slug[STORE_SLUG_MAX + 1];     /* F d */
  char username[STORE_USERNAME_MAX + 1]; /* F */
  int64_t user_id;                   /* d P p */
  int state;                         /* P p (range not checked here) */
  int64_t last_seen;                 /* P p */
  int64_t seq, member_gen;           /* m D */
  int64_t offset;                    /* D */
  uint8_t session_hash[STORE_TOKEN_HASH_LEN]; /* x */
  uint16_t code;                     /* x: 1000-4999 */
  char reason[CLUSTER_REASON_MAX + 1]; /* x */
  const char *ids_text;              /* n p: "<id>,<id>,..." (decode only) */
  size_t ids_len;
  size_t n_ids;                      /* n p: how many ids ids_text holds (decode only) */
  const char *body;                  /* m s n p: the JSON that follows the head */
  size_t body_len;
};

/* Decodes one publication (data borrowed) received on a chat's channel (chat = 1) or on the
 * users' channel (chat = 0) into *out. Returns 0, or PARLEY_EBAD_REQUEST for anything that is not
 * a well-formed line of a known kind. */
int cluster_wire_decode(int chat, const char *data, size_t len, struct cluster_wire_msg *out);

/* Parses the ids of a decoded n or p line into ids (caller's, room for m->n_ids). Returns how
 * many. */
size_t cluster_wire_ids(const struct cluster_wire_msg *m, int64_t *ids);

/* Encodes m (borrowed; for n and p the audience is ids, n_ids of them, borrowed). Returns a
 * malloc'd payload (the caller frees it) with its length in *len, or NULL (no memory, or a field
 * that does not fit the line). */
char *cluster_wire_encode(const struct cluster_wire_msg *m, const int64_t *ids, size_t n_ids,
                          size_t *len);

#endif
