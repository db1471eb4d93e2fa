/* ops_msg.c - the message model's ops (issue 17): dm.open, msg.edit, msg.delete and react, and
 * the `mention` event of msg.send and of an edit that mentions someone new.
 *
 * Each change is an entry of the chat's sequence, appended by the store in the transaction that
 * checks the rules (store_rules_msg.c); here it is fanned out like a message (the `msg` event,
 * by seq, so a subscription never misses or repeats it) and returned to the caller.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>
#include <uthash.h>

#include "app/ops.h"

#include "app/activity.h"
#include "app/cluster.h"
#include "app/deliver.h"
#include "app/reply.h"
#include "app/subs.h"
#include "auth/auth.h"
#include "common/error.h"
#include "net/net.h"

static struct store_req *msg_req(struct client *cl, const struct proto_req *req, enum store_op op) {
  struct store_req *sreq = store_req_new(op);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return NULL;
  }
  if (req->chat)
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.seq = req->seq;
  sreq->in.now = app__now(cl->app);
  return sreq;
}

static void mention_event_to(struct app *a, const char *slug, const struct store_msg *m,
                             const int64_t *who, size_t n_who);

/* The entry an op appended: to the subscriptions (here and on other nodes), then {msg} to the
 * caller; a react that changed nothing answers {msg: null}. */
static void on_entry(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  const struct store_msg *m = &sreq->out.msg;
  char *enc = NULL; /* the entry, encoded once for its event and the reply */
  size_t enc_len = 0;
  if (sreq->status == 0 && m->seq > 0) {
    enc = proto_msg_enc(m, sreq->out.chat.slug, &enc_len);
    if (enc)
      app__deliver_msg_enc(cl->app, sreq->out.chat.slug, m->seq, sreq->out.chat.member_gen, enc,
                           enc_len);
  }
  /* An edit that mentions someone new: they hear of it as of a new message that mentions them
   * (the edited message, as it reads now), and their chat list's mention count moves. */
  if (sreq->status == 0 && sreq->op == STORE_MSG_EDIT && sreq->out.n_msgs == 1) {
    mention_event_to(cl->app, sreq->out.chat.slug, &sreq->out.msgs[0], sreq->out.member_ids,
                     sreq->out.n_member_ids);
    for (size_t i = 0; i < sreq->out.n_member_ids; i++)
      if (sreq->out.member_ids[i] != cl->user->id)
        app__activity_read(cl->app, sreq->out.member_ids[i], sreq->out.chat.slug);
  }
  if (app__op_failed(sreq))
    goto done;
  if (m->seq == 0)
    app__reply_ok(cl, &ctx->env, json_pack("{s:n}", "msg"));
  else if (enc == NULL) /* out of memory */
    app__reply_err(cl, &ctx->env, PARLEY_EINTERNAL, NULL);
  else
    app__reply_ok_raw(cl, &ctx->env, NULL, &(struct proto_raw){"msg", enc, enc_len}, 1);
done:
  free(enc);
  app__op_finish(sreq);
}

void app__op_msg_edit(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = msg_req(cl, req, STORE_MSG_EDIT);
  if (sreq == NULL)
    return;
  if ((sreq->in.body = strdup(req->body)) == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  app__op_submit(cl, req, sreq, on_entry, NULL);
}

void app__op_msg_delete(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = msg_req(cl, req, STORE_MSG_DELETE);
  if (sreq != NULL)
    app__op_submit(cl, req, sreq, on_entry, NULL);
}

void app__op_react(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = msg_req(cl, req, STORE_REACT);
  if (sreq == NULL)
    return;
  sreq->in.on = req->on;
  if ((sreq->in.query = strdup(req->emoji)) == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  app__op_submit(cl, req, sreq, on_entry, NULL);
}

/* dm.open: {chat}; a new DM is announced to both (chat.created), as a new chat is to its
 * creator, so it appears in both lists at once. Each side sees it titled by the other. */
static void on_dm_open(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct app *a = cl->app;
  if (sreq->status == 0 && sreq->out.joined) {
    struct store_chat seen = sreq->out.chat; /* as the peer sees it: titled by the caller */
    int64_t me = cl->user->id, peer = sreq->out.chat.peer.id;
    seen.peer = *cl->user;
    app__notify_users(a, &peer, 1, "chat.created",
                      json_pack("{s:o}", "chat", app__chat_json(a, &seen)));
    app__notify_users(a, &me, 1, "chat.created",
                      json_pack("{s:o}", "chat", app__chat_json(a, &sreq->out.chat)));
  }
  if (app__op_failed(sreq))
    goto done;
  app__reply_chat(cl, &ctx->env, &sreq->out.chat);
done:
  app__op_finish(sreq);
}

void app__op_dm_open(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = msg_req(cl, req, STORE_DM_OPEN);
  if (sreq == NULL)
    return;
  if (auth_username_normalize(req->user, sreq->in.target) != 0) {
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST, "user: not a valid username");
    store_req_free(sreq);
    return;
  }
  app__op_submit(cl, req, sreq, on_dm_open, NULL);
}

/* The `mention` event of message m to users ids[0..n) (its author skipped). */
static void mention_event_to(struct app *a, const char *slug, const struct store_msg *m,
                             const int64_t *who, size_t n_who) {
  struct outq_chunk *frame;
  size_t len;
  char *json;
  if (n_who == 0)
    return;
  json = proto_event("mention", json_pack("{s:s, s:o}", "chat", slug, "msg", proto_msg_json(m, slug)),
                     &len);
  if (json == NULL)
    return;
  /* Other nodes send it to every socket of the user there (they do not know which of them
   * has the chat open: clients ignore a mention in the chat they show). */
  {
    int64_t ids[STORE_MENTIONS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < n_who && n < STORE_MENTIONS_MAX; i++)
      if (who[i] != m->author.id)
        ids[n++] = who[i];
    if (n > 0)
      app__bus_publish_notify(a, ids, n, json, len);
  }
  frame = net_ws_frame_text(json, len);
  free(json);
  if (frame == NULL)
    return;
  /* Here: the sockets that are not subscribed to the chat; those that are see the msg itself. */
  for (size_t i = 0; i < n_who; i++) {
    struct app_user *au;
    struct client *cl;
    if (who[i] == m->author.id)
      continue;
    au = app__user_find(a, who[i]);
    if (au == NULL)
      continue;
    DL_FOREACH2(au->clients, cl, unext) {
      if (cl->conn && cl->authed && app__sub_find(cl, slug) == NULL)
        net_ws_send_frame(cl->conn, frame);
    }
  }
  outq_chunk_unref(frame);
}

void app__mention_event(struct app *a, const char *slug, const struct store_msg *m) {
  mention_event_to(a, slug, m, m->mentions, m->n_mentions);
}
