/* reply.c - answering an op: the reply (or error) to the socket that asked, and the store round
 * trip an op makes on its behalf, with what its reply needs kept in an op_ctx.
 */
#include "app/reply.h"

#include <stdlib.h>
#include <string.h>

#include "app/rooms.h"
#include "common/error.h"

static void send_str(struct client *cl, char *s, size_t len) {
  if (s && cl->on_reply)
    cl->on_reply(cl, s, len);
  else if (s && cl->conn)
    net_ws_send_text(cl->conn, s, len);
  free(s);
}

void app__reply_ok(struct client *cl, const struct proto_req *req, json_t *result) {
  size_t len;
  char *s = proto_reply_ok(req, result, &len);
  send_str(cl, s, len);
}

void app__reply_ok_raw(struct client *cl, const struct proto_req *req, json_t *result,
                       const struct proto_raw *raw, size_t n) {
  size_t len = 0;
  char *s = proto_reply_ok(req, result, &len);
  if (s)
    s = proto_splice(s, &len, raw, n);
  send_str(cl, s, len);
}

void app__reply_chat(struct client *cl, const struct proto_req *req, const struct store_chat *c) {
  struct proto_raw chat = {"chat", NULL, 0};
  char *enc = app__chat_enc(cl->app, proto_chat_json(c), &chat.len);
  if (enc == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  chat.json = enc;
  app__reply_ok_raw(cl, req, NULL, &chat, 1);
  free(enc);
}

void app__reply_err(struct client *cl, const struct proto_req *req, int err, const char *msg) {
  size_t len;
  char *s = proto_reply_err(req, err, msg, &len);
  send_str(cl, s, len);
}

void app__reply_err_extra(struct client *cl, const struct proto_req *req, int err,
                          const char *msg, json_t *extra) {
  json_t *o = json_pack("{s:o, s:b, s:{s:s, s:s}}", "id",
                        req->has_id ? json_integer(req->id) : json_null(), "ok", 0, "error",
                        "code", parley_err_name(err), "message",
                        msg ? msg : parley_strerror(err));
  char *s;
  if (o && extra)
    json_object_update(json_object_get(o, "error"), extra);
  json_decref(extra);
  s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  send_str(cl, s, s ? strlen(s) : 0);
}

static struct proto_req envelope(const struct proto_req *req) {
  struct proto_req e;
  memset(&e, 0, sizeof e);
  e.has_id = req->has_id;
  e.id = req->id;
  e.op = req->op;
  return e;
}

/* An error reply that tells the client when to try again: error.retryAfter in ms. */
static void reply_retry(struct client *cl, const struct proto_req *req, const char *code,
                        int64_t wait_ms, const char *msg) {
  json_t *o = json_pack("{s:o, s:b, s:{s:s, s:s, s:I}}", "id",
                        req->has_id ? json_integer(req->id) : json_null(), "ok", 0, "error",
                        "code", code, "message", msg, "retryAfter",
                        (json_int_t)(wait_ms > 0 ? wait_ms : 1));
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  send_str(cl, s, s ? strlen(s) : 0);
}

void app__reply_rate_limited(struct client *cl, const struct proto_req *req, int64_t wait_ms,
                             const char *msg) {
  cl->app->metrics.rejected_rate++;
  reply_retry(cl, req, "rate_limited", wait_ms, msg);
}

int app__rate_limited(struct client *cl, const struct proto_req *req, struct ratelimit *rl,
                      double rate, double burst, const char *msg) {
  struct app *a = cl->app;
  int64_t wait;
  if (!a->cfg.rate_limits)
    return 0;
  wait = ratelimit_take(rl, rate, burst, app__now(a));
  if (wait <= 0)
    return 0;
  app__reply_rate_limited(cl, req, wait, msg);
  return 1;
}

void app__ws_hello(struct client *cl) {
  size_t len;
  char *s = proto_event("hello", json_pack("{s:o}", "user", proto_user_json(cl->user)), &len);
  send_str(cl, s, len);
}

int app__op_submit(struct client *cl, const struct proto_req *req, struct store_req *sreq,
                   store_cb cb, const struct op_opts *opts) {
  struct op_ctx *ctx = calloc(1, sizeof *ctx);
  int err;
  if (ctx == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return PARLEY_EINTERNAL;
  }
  ctx->env = envelope(req);
  if (opts) {
    ctx->sub_gen = opts->sub_gen;
    ctx->fence_id = opts->fence_id;
    ctx->invite_action = opts->invite_action;
  }
  /* A client's request: past the store's capacity it is refused at once. */
  sreq->sheddable = !(opts && opts->paired);
  ctx->recv_ns = cl->app->metrics.recv_ns;
  sreq->in.user_id = cl->user ? cl->user->id : 0; /* none yet: the auth op's own */
  sreq->ctx = ctx;
  err = app__submit(cl->app, cl, sreq, cb);
  if (err == PARLEY_EUNAVAILABLE) {
    /* app__submit freed sreq; the context is still ours. The store is behind (or closing):
     * the client retries after about the longest the store lets a request wait. */
    reply_retry(cl, &ctx->env, "unavailable", (int64_t)cl->app->cfg.store_queue_wait_ms,
                "the server is overloaded; retry later");
    free(ctx);
  } else if (err) {
    app__reply_err(cl, &ctx->env, err, "the database is not available; retry later");
    free(ctx);
  }
  return err;
}

int app__op_failed(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (cl->conn == NULL)
    return 1;
  if (sreq->status == 0)
    return 0;
  app__reply_err(cl, &ctx->env, sreq->status, STORE_ERRMSG(sreq));
  return 1;
}

void app__op_finish(struct store_req *sreq) {
  struct client *cl = sreq->data;
  free(sreq->ctx);
  store_req_free(sreq);
  app__client_unref(cl);
}

json_t *app__msgs_json(const struct store_msg *msgs, size_t n, const char *slug) {
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, proto_msg_json(&msgs[i], slug));
  return arr;
}
