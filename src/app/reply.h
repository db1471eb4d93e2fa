/* reply.h - answering an op: replies, and the store round trip an op makes (op_ctx carries
 * what its reply needs). Used by ws_conn.c and the ops_* files.
 */
#ifndef PARLEY_APP_REPLY_H
#define PARLEY_APP_REPLY_H

#include <jansson.h>

#include "app/clients.h"
#include "proto/proto.h"

/* A store request made for an op keeps what its reply needs in one of these (store_req.ctx). */
struct op_ctx {
  struct proto_req env; /* only has_id and id are used; root is NULL */
  uint32_t sub_gen;     /* sub: generation of the subscription this reply is for */
  uint32_t fence_id;    /* chat.remove, chat.leave: their fence (app__bus_fence), 0 = none */
  int invite_action;    /* invitation.accept/decline/revoke: enum app_invite_action */
  uint64_t recv_ns;     /* when the op's message was read (app_metrics.recv_ns) */
};

/* What an op's context asks of its store round trip (all zero: nothing particular). */
struct op_opts {
  uint32_t sub_gen;
  uint32_t fence_id;
  int invite_action;
  int paired;     /* the first of two requests that answer one op together: never refused on
                     its own by the store's admission control (the second decides) */
};

void app__reply_ok(struct client *cl, const struct proto_req *req, json_t *result);
/* The same with the already encoded fields raw[0..n-1] (borrowed) added to result's. */
void app__reply_ok_raw(struct client *cl, const struct proto_req *req, json_t *result,
                       const struct proto_raw *raw, size_t n);
/* {chat}: c as the caller sees it, with its room's activeUsers (rooms.h app__chat_enc). */
void app__reply_chat(struct client *cl, const struct proto_req *req, const struct store_chat *c);
void app__reply_err(struct client *cl, const struct proto_req *req, int err, const char *msg);
/* The same with the fields of `extra` (reference stolen; NULL: none) added to error. */
void app__reply_err_extra(struct client *cl, const struct proto_req *req, int err,
                          const char *msg, json_t *extra);
/* Replies rate_limited with error.retryAfter = wait_ms, and counts it in /metrics. */
void app__reply_rate_limited(struct client *cl, const struct proto_req *req, int64_t wait_ms,
                             const char *msg);
/* With rate limits on, takes a token from rl (borrowed) at rate per second and burst; if there
 * was none, replies rate_limited (msg borrowed) and returns 1. Else 0: the op goes ahead. */
int app__rate_limited(struct client *cl, const struct proto_req *req, struct ratelimit *rl,
                      double rate, double burst, const char *msg);
/* Sends the `hello` event to a socket that just authenticated. */
void app__ws_hello(struct client *cl);
/* Submits sreq (ownership taken) for the op req (borrowed) of cl; cb must end with
 * app__op_finish(sreq). opts may be NULL. Returns 0, or the error after its reply was sent (cb
 * then never runs; PARLEY_EUNAVAILABLE: the store is past its capacity, `unavailable`). */
int app__op_submit(struct client *cl, const struct proto_req *req, struct store_req *sreq,
                   store_cb cb, const struct op_opts *opts);
void app__op_finish(struct store_req *sreq);
/* For an op's store callback: returns 1 if there is nothing more to do because the socket is
 * gone or the request failed (the error reply, with the store's explanation, is then sent). */
int app__op_failed(struct store_req *sreq);
/* The wire form of n messages (borrowed) of chat `slug`: a new JSON array. */
json_t *app__msgs_json(const struct store_msg *msgs, size_t n, const char *slug);

#endif
