/* fuzz_proto.c - libFuzzer target: proto_decode on arbitrary bytes.
 *
 * proto_decode is the only place client JSON is read; app/ trusts what it returns. So beyond
 * "no crash, leak or UB" (sanitizers) the target checks the contract of proto.h on every
 * input: a 0 return means a known op, an id in range, every required field of that op present
 * and only fields of that op, and string fields set to NUL-free UTF-8 within their limits; a
 * failure comes with a message and the right code.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "common/error.h"
#include "core/search_query.h"
#include "core/stream.h"
#include "core/text.h"
#include "proto/proto.h"

/* Required and optional fields per op, written out again from docs/protocol.md rather than
 * taken from proto.c, so that a table typo there is caught here. */
#define F(x) (1u << PROTO_F_##x)
static const struct {
  uint32_t required, optional;
} spec[PROTO_OP__COUNT] = {
    [PROTO_OP_AUTH] = {F(TOKEN), 0},
    [PROTO_OP_PING] = {0, 0},
    [PROTO_OP_CHAT_CREATE] = {F(TITLE), F(IS_PUBLIC) | F(MAX_PARTICIPANTS) | F(SLUG)},
    [PROTO_OP_CHAT_GET] = {F(CHAT), F(LIMIT)},
    [PROTO_OP_CHAT_LIST] = {0, 0},
    [PROTO_OP_CHAT_JOIN] = {F(CHAT), 0},
    [PROTO_OP_MSG_SEND] = {F(CHAT) | F(BODY), F(CLIENT_MSG_ID) | F(REPLY_TO)},
    [PROTO_OP_MSG_HISTORY] = {F(CHAT), F(BEFORE) | F(LIMIT)},
    [PROTO_OP_SUB] = {F(CHAT), F(SINCE)},
    [PROTO_OP_UNSUB] = {F(CHAT), 0},
    [PROTO_OP_READ] = {F(CHAT) | F(SEQ), 0},
    [PROTO_OP_CHAT_UPDATE] = {F(CHAT),
                              F(TITLE) | F(IS_PUBLIC) | F(MAX_PARTICIPANTS) | F(INVITE_POLICY)},
    [PROTO_OP_CHAT_LEAVE] = {F(CHAT), 0},
    [PROTO_OP_CHAT_REMOVE] = {F(CHAT) | F(USER), 0},
    [PROTO_OP_CHAT_SET_ROLE] = {F(CHAT) | F(USER) | F(ROLE), 0},
    [PROTO_OP_USERS_SEARCH] = {F(Q), F(CHAT)},
    [PROTO_OP_INVITE_CREATE] = {F(CHAT) | F(USER), F(TTL)},
    [PROTO_OP_INVITE_ACCEPT] = {F(INVITATION), 0},
    [PROTO_OP_INVITE_DECLINE] = {F(INVITATION), 0},
    [PROTO_OP_INVITE_REVOKE] = {F(INVITATION), 0},
    [PROTO_OP_INVITE_LIST] = {0, 0},
    [PROTO_OP_TYPING] = {F(CHAT) | F(ON), 0},
    [PROTO_OP_PRESENCE] = {F(STATE), 0},
    [PROTO_OP_DM_OPEN] = {F(USER), 0},
    [PROTO_OP_MSG_EDIT] = {F(CHAT) | F(SEQ) | F(BODY), 0},
    [PROTO_OP_MSG_DELETE] = {F(CHAT) | F(SEQ), 0},
    [PROTO_OP_REACT] = {F(CHAT) | F(SEQ) | F(EMOJI) | F(ON), 0},
    [PROTO_OP_CHAT_NOTIFY] = {F(CHAT) | F(LEVEL), 0},
    [PROTO_OP_CHAT_BROWSE] = {0, F(Q) | F(BEFORE) | F(CHAT) | F(LIMIT)},
    [PROTO_OP_ME_UPDATE] = {F(DISPLAY_NAME), 0},
    [PROTO_OP_MSG_SEARCH] = {F(SEARCH_Q), F(CHAT) | F(BEFORE) | F(LIMIT)},
    [PROTO_OP_STREAM_START] = {F(CHAT), F(CLIENT_MSG_ID) | F(REPLY_TO)},
    [PROTO_OP_STREAM_APPEND] = {F(CHAT) | F(SEQ) | F(DELTA) | F(OFFSET), 0},
    [PROTO_OP_STREAM_END] = {F(CHAT) | F(SEQ), F(STATE)},
    [PROTO_OP_CHAT_MEMBERS] = {F(CHAT), F(AFTER) | F(LIMIT)},
};
#undef F
/* A new op needs its row above (a missing row reads as "no fields allowed"). */
_Static_assert(PROTO_OP__COUNT == PROTO_OP_CHAT_MEMBERS + 1, "fuzz_proto: add the new op to spec");

static void check_str(const struct proto_req *r, enum proto_field f, const char *s, size_t min,
                      size_t max) {
  size_t n;
  if (!PROTO_HAS(r, f))
    return;
  assert(s != NULL);
  n = strlen(s);
  assert(u8_check((const uint8_t *)s, n) == NULL);
  if (f == PROTO_F_TITLE || f == PROTO_F_DISPLAY_NAME)
    n = u8_mbsnlen((const uint8_t *)s, n);
  assert(n >= min && n <= max);
}

static void check_int(const struct proto_req *r, enum proto_field f, int64_t v, int64_t min,
                      int64_t max) {
  if (PROTO_HAS(r, f))
    assert(v >= min && v <= max);
}

static void check_ok(const struct proto_req *r) {
  assert(r->root != NULL && json_is_object(r->root));
  assert(r->has_id && r->id >= 0 && r->id < (INT64_C(1) << 53));
  assert((unsigned)r->op < PROTO_OP__COUNT);
  assert(proto_op_name(r->op) != NULL);
  assert((r->present & spec[r->op].required) == spec[r->op].required);
  assert((r->present & ~(spec[r->op].required | spec[r->op].optional)) == 0);
  check_str(r, PROTO_F_TOKEN, r->token, 1, 256);
  check_str(r, PROTO_F_CHAT, r->chat, 1, STORE_SLUG_MAX);
  check_str(r, PROTO_F_TITLE, r->title, 1, PROTO_TITLE_MAX);
  check_str(r, PROTO_F_SLUG, r->slug, 1, 48);
  check_str(r, PROTO_F_BODY, r->body, 1, PROTO_BODY_MAX);
  check_str(r, PROTO_F_CLIENT_MSG_ID, r->client_msg_id, 1, STORE_CLIENT_MSG_ID_MAX);
  check_str(r, PROTO_F_USER, r->user, 3, STORE_USERNAME_MAX);
  check_str(r, PROTO_F_ROLE, r->role, 1, 16);
  check_str(r, PROTO_F_INVITE_POLICY, r->invite_policy, 1, 16);
  check_str(r, PROTO_F_Q, r->q, 1, 64);
  check_str(r, PROTO_F_STATE, r->state, 1, 16);
  check_str(r, PROTO_F_SEARCH_Q, r->q, 1, SEARCH_QUERY_MAX);
  check_str(r, PROTO_F_EMOJI, r->emoji, 1, 32);
  check_str(r, PROTO_F_LEVEL, r->level, 1, 16);
  check_str(r, PROTO_F_DISPLAY_NAME, r->display_name, 1, TEXT_DISPLAY_NAME_MAX);
  check_str(r, PROTO_F_DELTA, r->delta, 1, STREAM_DELTA_MAX);
  if (PROTO_HAS(r, PROTO_F_MAX_PARTICIPANTS) && r->max_participants != 0)
    check_int(r, PROTO_F_MAX_PARTICIPANTS, r->max_participants, 2, 10000);
  check_int(r, PROTO_F_BEFORE, r->before, 1, INT64_C(1) << 53);
  check_int(r, PROTO_F_SINCE, r->since, 0, INT64_C(1) << 53);
  check_int(r, PROTO_F_SEQ, r->seq, 0, INT64_C(1) << 53);
  check_int(r, PROTO_F_LIMIT, r->limit, 1, PROTO_HISTORY_MAX);
  check_int(r, PROTO_F_TTL, r->ttl, 1, 30 * 24 * 3600);
  check_int(r, PROTO_F_INVITATION, r->invitation, 1, INT64_C(1) << 53);
  check_int(r, PROTO_F_REPLY_TO, r->reply_to, 1, INT64_C(1) << 53);
  check_int(r, PROTO_F_OFFSET, r->offset, 0, STREAM_BODY_MAX);
  check_int(r, PROTO_F_AFTER, r->after, 0, INT64_C(1) << 53);
  if (PROTO_HAS(r, PROTO_F_IS_PUBLIC))
    assert(r->is_public == 0 || r->is_public == 1);
  if (PROTO_HAS(r, PROTO_F_ON))
    assert(r->on == 0 || r->on == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct proto_req req;
  char err[160]; /* the size app__on_ws_text uses: truncation is part of what is tested */
  int rc;

  /* The app only ever decodes complete, UTF-8-valid text messages of at most 64 KiB (ws.c
   * checks both first); anything else cannot reach proto_decode. */
  if (size > 64 * 1024 || u8_check(data, size) != NULL)
    return 0;
  err[0] = '\0';
  rc = proto_decode((const char *)data, size, &req, err, sizeof err);
  if (rc == 0) {
    check_ok(&req);
    /* The reply path must work for every accepted request. */
    size_t n = 0;
    char *s = proto_reply_ok(&req, NULL, &n);
    assert(s != NULL && n > 0);
    free(s);
  } else {
    assert(rc == PARLEY_EBAD_REQUEST || rc == PARLEY_ETOO_LARGE);
    assert(err[0] != '\0');
    if (req.has_id)
      assert(req.id >= 0 && req.id < (INT64_C(1) << 53));
    size_t n = 0;
    char *s = proto_reply_err(&req, rc, err, &n);
#ifdef FUZZ_SKIP_KNOWN
    /* Known bug, reproducers in crashes/fuzz_proto/: the message quotes client text cut at a
     * byte count (jansson's "near '...'", "unknown op \"%.40s\""), which can split a UTF-8
     * sequence; json_pack then refuses it and no reply is sent at all. */
    if (s == NULL && u8_check((const uint8_t *)err, strlen(err)) != NULL)
      s = strdup("known");
#endif
    assert(s != NULL); /* err may hold any client text: it must still serialize */
    free(s);
  }
  proto_req_dispose(&req);
  return 0;
}
