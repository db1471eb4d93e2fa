/* ws_conn.c - a WebSocket's text messages, from the socket to the op's handler: held while the
 * socket's auth is in flight (bounded), decoded against the op's schema (proto), limited (the
 * per-socket op rate), authorized (auth first) and dispatched through one op table. The auth
 * and ping ops live here: they are about the connection, not about chats.
 */
#include "app/ws_conn.h"

#include <stdlib.h>
#include <string.h>

#include "app/ops.h"
#include "app/presence.h"
#include "app/reply.h"
#include "auth/auth.h"
#include "common/clock.h"
#include "common/error.h"

#define HELD_IN_MAX (256 * 1024) /* bytes a socket may send while its auth is in flight */

void app__client_drop_held(struct client *cl) {
  while (cl->held_in) {
    struct held_text *h = cl->held_in;
    cl->held_in = h->next;
    free(h);
  }
  cl->held_tail = NULL;
  cl->held_bytes = 0;
}

/* Runs the messages that waited for the auth reply, in the order they came. */
static void replay_held(struct client *cl) {
  struct held_text *h = cl->held_in;
  cl->held_in = NULL;
  cl->held_tail = NULL;
  cl->held_bytes = 0;
  while (h) {
    struct held_text *next = h->next;
    if (cl->conn && !cl->authing)
      app__on_ws_text(cl->app, cl->conn, h->data, h->len);
    else if (cl->conn) {
      /* A second auth op among them: the rest waits for that one. */
      h->next = NULL;
      if (cl->held_tail)
        *cl->held_tail = h;
      else
        cl->held_in = h;
      cl->held_tail = &h->next;
      cl->held_bytes += h->len;
      h = next;
      continue;
    }
    free(h);
    h = next;
  }
}

static void on_auth(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  int err;
  cl->authing = 0;
  if (cl->conn == NULL)
    goto done;
  if (sreq->status) {
    app__reply_err(cl, &ctx->env, PARLEY_EUNAUTHORIZED, "invalid or expired token");
    goto done;
  }
  if (cl->authed) { /* two auth ops raced: the first one won */
    app__reply_ok(cl, &ctx->env, json_pack("{s:o}", "user", proto_user_json(cl->user)));
    goto done;
  }
  err = app__user_attach(cl->app, cl, &sreq->out.user, sreq->in.token_hash, sreq->out.expires_at);
  if (err) {
    app__reply_err(cl, &ctx->env, err, "too many connections for this user");
    net_ws_close(cl->conn, NET_CLOSE_TOO_MANY, "too many connections for this user");
    goto done;
  }
  app__reply_ok(cl, &ctx->env, json_pack("{s:o}", "user", proto_user_json(cl->user)));
  app__ws_hello(cl);
done:
  if (cl->conn)
    replay_held(cl); /* after the reply: a client may pipeline requests behind its auth */
  app__op_finish(sreq);
}

static void op_auth(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq;
  if (cl->authed) {
    app__reply_ok(cl, req, json_pack("{s:o}", "user", proto_user_json(cl->user)));
    return;
  }
  sreq = store_req_new(STORE_SESSION_GET);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  auth_token_hash(req->token, sreq->in.token_hash);
  cl->authing = 1;
  app__op_submit(cl, req, sreq, on_auth, NULL);
}

static void op_ping(struct client *cl, const struct proto_req *req) {
  app__reply_ok(cl, req, json_pack("{s:I}", "now", (json_int_t)app__now(cl->app)));
}

/* Every op but those of the connection itself, by proto's op number. */
static const app_op_fn op_table[PROTO_OP__COUNT] = {
    [PROTO_OP_AUTH] = op_auth,
    [PROTO_OP_PING] = op_ping,
    [PROTO_OP_CHAT_CREATE] = app__op_chat_create,
    [PROTO_OP_CHAT_GET] = app__op_chat_get,
    [PROTO_OP_CHAT_LIST] = app__op_chat_list,
    [PROTO_OP_CHAT_JOIN] = app__op_chat_join,
    [PROTO_OP_CHAT_UPDATE] = app__op_chat_update,
    [PROTO_OP_CHAT_LEAVE] = app__op_membership,
    [PROTO_OP_CHAT_REMOVE] = app__op_membership,
    [PROTO_OP_CHAT_SET_ROLE] = app__op_membership,
    [PROTO_OP_MSG_SEND] = app__op_msg_send,
    [PROTO_OP_MSG_HISTORY] = app__op_msg_history,
    [PROTO_OP_SUB] = app__op_sub,
    [PROTO_OP_UNSUB] = app__op_unsub,
    [PROTO_OP_READ] = app__op_read,
    [PROTO_OP_TYPING] = app__op_typing,
    [PROTO_OP_PRESENCE] = app__op_presence,
    [PROTO_OP_USERS_SEARCH] = app__op_users_search,
    [PROTO_OP_MSG_SEARCH] = app__op_msg_search,
    [PROTO_OP_INVITE_CREATE] = app__op_invite_create,
    [PROTO_OP_INVITE_ACCEPT] = app__op_invite_accept,
    [PROTO_OP_INVITE_DECLINE] = app__op_invite_decline,
    [PROTO_OP_INVITE_REVOKE] = app__op_invite_revoke,
    [PROTO_OP_INVITE_LIST] = app__op_invite_list,
    [PROTO_OP_DM_OPEN] = app__op_dm_open,
    [PROTO_OP_MSG_EDIT] = app__op_msg_edit,
    [PROTO_OP_MSG_DELETE] = app__op_msg_delete,
    [PROTO_OP_REACT] = app__op_react,
    [PROTO_OP_CHAT_NOTIFY] = app__op_chat_notify,
    [PROTO_OP_CHAT_BROWSE] = app__op_chat_browse,
    [PROTO_OP_ME_UPDATE] = app__op_me_update,
    [PROTO_OP_STREAM_START] = app__op_stream_start,
    [PROTO_OP_STREAM_APPEND] = app__op_stream_append,
    [PROTO_OP_STREAM_END] = app__op_stream_end,
    [PROTO_OP_CHAT_MEMBERS] = app__op_chat_members,
};

void app__op_dispatch(struct client *cl, const struct proto_req *req) {
  if (req->op == PROTO_OP_AUTH)
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST, "auth: this connection is authenticated");
  else if ((unsigned)req->op < PROTO_OP__COUNT && op_table[req->op])
    op_table[req->op](cl, req);
  else
    app__reply_err(cl, req, PARLEY_EINTERNAL, "op not wired");
}

void app__on_ws_text(void *ud, struct net_conn *c, const char *data, size_t len) {
  struct app *a = ud;
  struct client *cl = net_conn_get_data(c);
  struct proto_req req;
  char err[160];
  int rc;

  if (cl == NULL)
    return;
  a->metrics.recv_ns = clock_mono_ns();
  if (cl->authing) {
    struct held_text *h;
    if (cl->held_bytes + len > HELD_IN_MAX) {
      net_ws_close(c, APP_CLOSE_POLICY, "too much sent before authentication finished");
      return;
    }
    h = malloc(sizeof *h + len);
    if (h == NULL)
      return;
    h->next = NULL;
    h->len = len;
    if (len)
      memcpy(h->data, data, len); /* an empty message may come with data NULL */
    if (cl->held_tail)
      *cl->held_tail = h;
    else
      cl->held_in = h;
    cl->held_tail = &h->next;
    cl->held_bytes += len;
    return;
  }
  rc = proto_decode(data, len, &req, err, sizeof err);
  if (rc) {
    app__reply_err(cl, &req, rc, err);
    goto done;
  }
  if (app__rate_limited(cl, &req, &cl->op_rl, a->cfg.op_rate, a->cfg.op_burst,
                        "too many requests on this connection"))
    goto done;
  if (!cl->authed && !proto_op_is_public(req.op)) {
    app__reply_err(cl, &req, PARLEY_EUNAUTHORIZED, "authenticate first with the auth op");
    goto done;
  }
  if (a->shutting_down && req.op != PROTO_OP_PING) {
    app__reply_err(cl, &req, PARLEY_EUNAVAILABLE, "server shutting down");
    goto done;
  }
  if ((unsigned)req.op < PROTO_OP__COUNT && op_table[req.op])
    op_table[req.op](cl, &req);
  else
    app__reply_err(cl, &req, PARLEY_EINTERNAL, "op not wired");
done:
  proto_req_dispose(&req);
}
