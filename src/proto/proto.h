/* proto.h - protocol v1: JSON text <-> typed requests, replies and events.
 *
 * Decoding checks a request against its op's schema (proto.c has one table row per op and per
 * field), so app/ handlers receive typed, range-checked arguments and never look at JSON. Every
 * failure names the problem ("body: must be a string of 1-16384 bytes"). Encoders turn store
 * objects into the wire shapes of docs/protocol.md.
 */
#ifndef PARLEY_PROTO_PROTO_H
#define PARLEY_PROTO_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define PROTO_BODY_MAX 16384
#define PROTO_TITLE_MAX 100 /* characters (code points; core/text.h TEXT_TITLE_MAX) */
#define PROTO_HISTORY_MAX 200
/* Integers on the wire stay below 2^53, the largest JavaScript clients keep exactly. */
#define PROTO_INT_LIMIT (INT64_C(1) << 53)
#define PROTO_HISTORY_DEFAULT 50

enum proto_op {
  PROTO_OP_AUTH,
  PROTO_OP_PING,
  PROTO_OP_CHAT_CREATE,
  PROTO_OP_CHAT_GET,
  PROTO_OP_CHAT_LIST,
  PROTO_OP_CHAT_JOIN,
  PROTO_OP_MSG_SEND,
  PROTO_OP_MSG_HISTORY,
  PROTO_OP_SUB,
  PROTO_OP_UNSUB,
  PROTO_OP_READ,
  PROTO_OP_CHAT_UPDATE,
  PROTO_OP_CHAT_LEAVE,
  PROTO_OP_CHAT_REMOVE,
  PROTO_OP_CHAT_SET_ROLE,
  PROTO_OP_USERS_SEARCH,
  PROTO_OP_INVITE_CREATE,
  PROTO_OP_INVITE_ACCEPT,
  PROTO_OP_INVITE_DECLINE,
  PROTO_OP_INVITE_REVOKE,
  PROTO_OP_INVITE_LIST,
  PROTO_OP_TYPING,
  PROTO_OP_PRESENCE,
  PROTO_OP_DM_OPEN,
  PROTO_OP_MSG_EDIT,
  PROTO_OP_MSG_DELETE,
  PROTO_OP_REACT,
  PROTO_OP_CHAT_NOTIFY, /* issue 18 */
  PROTO_OP_CHAT_BROWSE,
  PROTO_OP_ME_UPDATE,
  PROTO_OP_MSG_SEARCH,
  PROTO_OP_STREAM_START, /* issue 19 */
  PROTO_OP_STREAM_APPEND,
  PROTO_OP_STREAM_END,
  PROTO_OP_CHAT_MEMBERS, /* issue 15: paged participants with presence */
  PROTO_OP__COUNT
};

enum proto_field {
  PROTO_F_TOKEN,
  PROTO_F_CHAT,
  PROTO_F_TITLE,
  PROTO_F_IS_PUBLIC,
  PROTO_F_MAX_PARTICIPANTS,
  PROTO_F_SLUG,
  PROTO_F_BODY,
  PROTO_F_CLIENT_MSG_ID,
  PROTO_F_BEFORE,
  PROTO_F_SINCE,
  PROTO_F_SEQ,
  PROTO_F_LIMIT,
  PROTO_F_USER,
  PROTO_F_ROLE,
  PROTO_F_INVITE_POLICY,
  PROTO_F_Q,
  PROTO_F_TTL,
  PROTO_F_INVITATION,
  PROTO_F_ON,
  PROTO_F_STATE,
  PROTO_F_REPLY_TO,
  PROTO_F_EMOJI,
  PROTO_F_LEVEL,        /* issue 18 */
  PROTO_F_DISPLAY_NAME,
  PROTO_F_SEARCH_Q, /* msg.search's "q": longer than users.search's, same slot (q) */
  PROTO_F_DELTA,    /* issue 19: msg.stream.append */
  PROTO_F_OFFSET,
  PROTO_F_AFTER,    /* chat.members: a user id */
  PROTO_F__COUNT
};

/* A decoded request. Strings point into `root` and live as long as the request. */
struct proto_req {
  json_t *root;     /* owned */
  int64_t id;
  int has_id;       /* 0: the reply must carry "id": null */
  enum proto_op op;
  uint32_t present; /* bit (1 << PROTO_F_x) for each argument given */
  const char *token, *chat, *title, *slug, *body, *client_msg_id, *user, *role, *invite_policy,
      *q, *state, *emoji, *level, *display_name, *delta;
  int is_public, on;
  int64_t max_participants, before, since, seq, limit, ttl, invitation, reply_to, offset, after;
};

#define PROTO_HAS(r, f) (((r)->present >> (f)) & 1u)

/* Decodes one text message (borrowed) into *req. Returns 0, or PARLEY_EBAD_REQUEST with a
 * message naming the problem written to err (errlen bytes). On failure req->has_id and req->id
 * still tell what to reply to. Always call proto_req_dispose afterwards. */
int proto_decode(const char *data, size_t len, struct proto_req *req, char *err, size_t errlen);

/* Releases the JSON behind req. */
void proto_req_dispose(struct proto_req *req);

/* Wire name of an op ("msg.send"). Static string. */
const char *proto_op_name(enum proto_op op);

/* Whether an op may be used before authentication (auth, ping). */
int proto_op_is_public(enum proto_op op);

/* Encoders: each returns a new JSON object (the caller owns one reference). */
json_t *proto_user_json(const struct store_user *u);
json_t *proto_chat_json(const struct store_chat *c);
json_t *proto_msg_json(const struct store_msg *m, const char *chat_slug);
/* proto_msg_json's object, encoded: once per message for every frame that carries it (the msg
 * event, the sender's reply). Returns a malloc'ed string (the caller frees it) and its length in
 * *len; NULL without memory. */
char *proto_msg_enc(const struct store_msg *m, const char *chat_slug, size_t *len);
json_t *proto_member_json(const struct store_member *m);
json_t *proto_invite_json(const struct store_invite *inv);
/* The wire name of a chat.notify level ("all", "mentions", "none"); DEFAULT resolves by the
 * chat's kind (is_dm: "all", else "mentions"). Static string. And back: 0 if unknown. */
const char *proto_notify_name(enum store_notify level, int is_dm);
enum store_notify proto_notify_parse(const char *name);

/* Serializes a reply {"id", "ok": true, ...fields of `result`} (result may be NULL; its
 * reference is stolen). Returns a malloc'ed string (caller frees) and its length in *len. */
char *proto_reply_ok(const struct proto_req *req, json_t *result, size_t *len);

/* A field whose value is already encoded JSON (issue 15: a room's presence page and activeUsers,
 * encoded once for every sub reply that carries them). key: a plain ASCII name, written as is;
 * json: borrowed, len bytes of jansson's encoding of one value. */
struct proto_raw {
  const char *key;
  const char *json;
  size_t len;
};

/* Adds the fields raw[0..n-1] at the end of obj, an encoded object (malloc'ed, *len bytes, as
 * proto_reply_ok or json_dumps make it; its ownership passes here). Returns the result (malloc'ed,
 * caller frees; *len its length), or NULL without memory or when obj is not an object (obj is
 * freed either way). */
char *proto_splice(char *obj, size_t *len, const struct proto_raw *raw, size_t n);

/* Serializes {"id", "ok": false, "error": {"code", "message"}} for a PARLEY_E* code; msg
 * (borrowed) may be NULL for the default. Caller frees the result. */
char *proto_reply_err(const struct proto_req *req, int err, const char *msg, size_t *len);

/* Serializes an event {"ev": name, ...fields} (fields' reference is stolen). Caller frees. */
char *proto_event(const char *name, json_t *fields, size_t *len);

#endif
