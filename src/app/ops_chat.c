/* ops_chat.c - the ops on chats and their messages: chat.create, chat.get, chat.list,
 * chat.join, msg.send, msg.history and read. The store decides (membership, seq, dedupe) inside
 * its transaction; these build the request, then reply and tell everyone concerned.
 */
#include "app/ops.h"

#include <stdlib.h>
#include <string.h>

#include "app/activity.h"
#include "app/deliver.h"
#include "app/presence.h"
#include "app/bot_hooks.h"
#include "app/reply.h"
#include "app/rooms.h"
#include "common/error.h"

/* Replies {chat} for the ops whose result is one chat. */
static void on_chat_reply(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (app__op_failed(sreq))
    goto done;
  app__reply_chat(cl, &ctx->env, &sreq->out.chat);
done:
  app__op_finish(sreq);
}

static void on_chat_join(struct store_req *sreq) {
  struct client *cl = sreq->data;
  if (sreq->status == 0 && sreq->out.joined)
    app__announce_join(cl->app, sreq, cl->user); /* with the "joined" notice */
  on_chat_reply(sreq);
}

/* The participants of a CHAT_MEMBERS answer (borrowed) with their presence: a new array. */
static json_t *members_json(struct app *a, const struct store_req *sreq) {
  json_t *members = json_array();
  for (size_t i = 0; i < sreq->out.n_members; i++) {
    json_t *m = proto_member_json(&sreq->out.members[i]);
    json_t *p = app__presence_json(a, &sreq->out.members[i].user);
    json_object_set(m, "state", json_object_get(p, "state"));
    json_object_set(m, "lastSeen", json_object_get(p, "lastSeen"));
    json_decref(p);
    json_array_append_new(members, m);
  }
  return members;
}

static void on_chat_get(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  json_t *members;
  if (app__op_failed(sreq))
    goto done;
  members = members_json(cl->app, sreq);
  {
    json_t *chat = app__chat_json(cl->app, &sreq->out.chat);
    if (sreq->out.chat.my_role != CHAT_ROLE_NONE) /* the caller's own setting (issue 18) */
      json_object_set_new(chat, "notify", json_string(proto_notify_name(sreq->out.chat.notify, sreq->out.chat.is_dm)));
    json_t *r = json_pack("{s:o, s:o}", "chat", chat, "participants", members);
    if (sreq->in.limit > 0) /* a first page (by user id): chat.members has the rest */
      json_object_set_new(r, "participantsMore", json_boolean(sreq->out.has_more));
    app__reply_ok(cl, &ctx->env, r);
  }
done:
  app__op_finish(sreq);
}

static void on_chat_create(struct store_req *sreq) {
  struct client *cl = sreq->data;
  if (sreq->status == 0)
    /* The creator's other tabs add the chat to their lists. */
    app__notify_users(cl->app, &cl->user->id, 1, "chat.created",
                      json_pack("{s:o}", "chat", app__chat_json(cl->app, &sreq->out.chat)));
  on_chat_reply(sreq);
}

void app__op_chat_create(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_CHAT_CREATE);
  if (sreq == NULL || (sreq->in.title = strdup(req->title)) == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  sreq->in.is_public = PROTO_HAS(req, PROTO_F_IS_PUBLIC) ? req->is_public : 0;
  sreq->in.max_participants =
      PROTO_HAS(req, PROTO_F_MAX_PARTICIPANTS) ? (int)req->max_participants : 0;
  if (PROTO_HAS(req, PROTO_F_SLUG))
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->slug);
  app__op_submit(cl, req, sreq, on_chat_create, NULL);
}

static void op_chat_by_slug(struct client *cl, const struct proto_req *req, enum store_op op,
                            store_cb cb) {
  struct store_req *sreq = store_req_new(op);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.now = app__now(cl->app);
  app__op_submit(cl, req, sreq, cb, NULL);
}

void app__op_chat_get(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_CHAT_MEMBERS);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.now = app__now(cl->app);
  /* With a limit, the participants are chat.members' first page (issue 15: a big chat). */
  sreq->in.limit = PROTO_HAS(req, PROTO_F_LIMIT) ? (int)req->limit : 0;
  app__op_submit(cl, req, sreq, on_chat_get, NULL);
}

#define MEMBERS_PAGE_DEFAULT 100 /* participants of a chat.members page without a limit */

static void on_chat_members(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:s, s:o, s:b, s:i}", "chat", sreq->in.slug, "members",
                          members_json(cl->app, sreq), "hasMore", sreq->out.has_more,
                          "participantCount", sreq->out.chat.participant_count));
done:
  app__op_finish(sreq);
}

/* One page of a chat's participants by user id, each with role and presence: what a big chat's
 * people panel shows beyond the sub reply's first online ones (issue 15). */
void app__op_chat_members(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_CHAT_MEMBERS);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.now = app__now(cl->app);
  sreq->in.since = PROTO_HAS(req, PROTO_F_AFTER) ? req->after : 0;
  sreq->in.limit = PROTO_HAS(req, PROTO_F_LIMIT) ? (int)req->limit : MEMBERS_PAGE_DEFAULT;
  app__op_submit(cl, req, sreq, on_chat_members, NULL);
}

void app__op_chat_join(struct client *cl, const struct proto_req *req) {
  op_chat_by_slug(cl, req, STORE_CHAT_JOIN, on_chat_join);
}

static void on_chat_list(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  json_t *chats;
  if (app__op_failed(sreq))
    goto done;
  chats = json_array();
  for (size_t i = 0; i < sreq->out.n_chats; i++) {
    const struct store_chat *c = &sreq->out.chats[i];
    json_t *o = app__chat_json(cl->app, c);
    json_object_set_new(o, "unread", json_integer(sreq->out.unread ? sreq->out.unread[i] : 0));
    json_object_set_new(o, "mentions", json_integer(c->mentions));
    json_object_set_new(o, "notify", json_string(proto_notify_name(c->notify, c->is_dm)));
    json_object_set_new(o, "lastMessage",
                        sreq->out.last_msgs && sreq->out.last_msgs[i].seq > 0
                            ? proto_msg_json(&sreq->out.last_msgs[i], c->slug)
                            : json_null());
    json_array_append_new(chats, o);
  }
  {
    json_t *invs = json_array();
    for (size_t i = 0; i < sreq->out.n_invites; i++)
      json_array_append_new(invs, proto_invite_json(&sreq->out.invites[i]));
    app__reply_ok(cl, &ctx->env, json_pack("{s:o, s:o}", "chats", chats, "invitations", invs));
  }
done:
  app__op_finish(sreq);
}

void app__op_chat_list(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_CHAT_LIST);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  app__op_submit(cl, req, sreq, on_chat_list, NULL);
}

static void on_msg_send(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct app *a = cl->app;
  const char *slug = sreq->out.chat.slug;
  char *enc = NULL; /* the message, encoded once for its event and the reply */
  size_t enc_len = 0;

  if (sreq->status == 0) {
    /* The sender is the author: MSG_APPEND's row does not carry users.bot (issue 19). */
    sreq->out.msg.author.bot = cl->user->bot;
    enc = proto_msg_enc(&sreq->out.msg, slug, &enc_len);
  }
  /* Fan out even if the sender is gone: the message is committed and others must see it. */
  if (sreq->status == 0 && !sreq->out.duplicate) {
    struct room *r = app__room_find(a, slug);
    a->metrics.msgs_sent++;
    /* Sending ends typing, in the same turn as the message, so the two never disagree. */
    if (r && typing_off(&r->typing, sreq->out.msg.author.id) == 1)
      app__room_mark(a, r, ROOM_DIRTY_TYPING);
    if (enc)
      app__deliver_msg_enc(a, slug, sreq->out.msg.seq, sreq->out.chat.member_gen, enc, enc_len);
    app__mention_event(a, slug, &sreq->out.msg);
    app__metrics_fanned_out(a, ctx->recv_ns);
    app__activity_msg(a, &sreq->out.chat, &sreq->out.msg); /* every participant's list */
    app__bots_msg_sent(a, &sreq->out.chat, &sreq->out.msg);    /* webhooks (app_bots.c) */
  } else if (sreq->status == 0 && !a->bus_solo && enc) {
    /* A retry of a message already stored: the node that stored it may have died between the
     * commit and its publication, so announce it again. Receivers drop it by seq if they had
     * it; those that did not would otherwise wait for the chat's next message. */
    app__deliver_msg_enc(a, slug, sreq->out.msg.seq, sreq->out.chat.member_gen, enc, enc_len);
  }
  if (cl->conn == NULL)
    goto done;
  if (sreq->status)
    app__reply_err(cl, &ctx->env, sreq->status,
                   sreq->status == PARLEY_EUNAVAILABLE
                       ? "not stored: the database is not "
                         "available; retry with the same clientMsgId"
                       : NULL);
  else if (enc == NULL) /* out of memory: a retry with the same clientMsgId gets it */
    app__reply_err(cl, &ctx->env, PARLEY_EINTERNAL, NULL);
  else
    app__reply_ok_raw(cl, &ctx->env, json_pack("{s:b}", "duplicate", sreq->out.duplicate),
                      &(struct proto_raw){"msg", enc, enc_len}, 1);
done:
  free(enc);
  app__op_finish(sreq);
}

void app__op_msg_send(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct store_req *sreq;
  struct app_user *au = app__user_find(a, cl->user->id);
  /* A user with no socket here (the HTTP API) has a bucket of its own; bots have their own
   * rates (issue 19). */
  struct ratelimit *rl = au ? &au->send_rl : app__api_send_rl(a, cl->user->id);
  double rate = cl->user->bot ? a->cfg.bot_send_rate : a->cfg.send_rate;
  double burst = cl->user->bot ? a->cfg.bot_send_burst : a->cfg.send_burst;

  if (rl && app__rate_limited(cl, req, rl, rate, burst, "sending too fast"))
    return;
  sreq = store_req_new(STORE_MSG_APPEND);
  if (sreq == NULL || (sreq->in.body = strdup(req->body)) == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  if (PROTO_HAS(req, PROTO_F_CLIENT_MSG_ID))
    snprintf(sreq->in.client_msg_id, sizeof sreq->in.client_msg_id, "%s", req->client_msg_id);
  sreq->in.reply_to = PROTO_HAS(req, PROTO_F_REPLY_TO) ? req->reply_to : 0;
  app__op_submit(cl, req, sreq, on_msg_send, NULL);
}

static void on_msg_history(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:o, s:b}", "msgs",
                          app__msgs_json(sreq->out.msgs, sreq->out.n_msgs, sreq->in.slug), "hasMore",
                          sreq->out.has_more));
done:
  app__op_finish(sreq);
}

void app__op_msg_history(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_MSG_HISTORY);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.before = PROTO_HAS(req, PROTO_F_BEFORE) ? req->before : 0;
  sreq->in.limit = PROTO_HAS(req, PROTO_F_LIMIT) ? (int)req->limit : PROTO_HISTORY_DEFAULT;
  app__op_submit(cl, req, sreq, on_msg_history, NULL);
}

static void on_read(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (sreq->status == 0) {
    /* The reader's other tabs and devices clear their unread counts too. Read markers are the
     * user's own business: nobody else is told. */
    app__notify_users(cl->app, &cl->user->id, 1, "read",
                      json_pack("{s:s, s:I}", "chat", sreq->in.slug, "seq",
                                (json_int_t)sreq->out.read_seq));
    app__activity_read(cl->app, cl->user->id, sreq->in.slug);
  }
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(
      cl, &ctx->env,
      json_pack("{s:s, s:I}", "chat", sreq->in.slug, "seq", (json_int_t)sreq->out.read_seq));
done:
  app__op_finish(sreq);
}

void app__op_read(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_READ_SET);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.seq = req->seq;
  app__op_submit(cl, req, sreq, on_read, NULL);
}
