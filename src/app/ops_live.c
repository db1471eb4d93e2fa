/* ops_live.c - the live ops: sub and unsub (the seam itself is subs.c's), typing and presence
 * reports. Typing is kept off the database: a live subscription is the proof of membership.
 */
#include "app/ops.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/presence.h"
#include "app/reply.h"
#include "app/subs.h"
#include "common/error.h"
#include "core/presence.h"

static void on_sub(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct sub *s;
  json_t *chat;

  if (cl->conn == NULL)
    goto done;
  s = app__sub_find(cl, sreq->in.slug);
  if (s == NULL || s->gen != ctx->sub_gen)
    goto done; /* unsubscribed, or subscribed again, while the replay was read */
  if (sreq->status) {
    app__sub_free(cl->app, s);
    app__reply_err(cl, &ctx->env, sreq->status, STORE_ERRMSG(sreq));
    goto done;
  }
  /* Authorized: only now does the user count as having the chat open. */
  if (!s->counted) {
    s->counted = 1;
    app__room_sub_added(cl->app, s->room, cl->user.id);
  }
  chat = proto_chat_json(&sreq->out.chat);
  if (sreq->out.n_member_ids == 1) {
    /* The caller's counts as of the replay (issue 15): the client counts on from them. */
    json_object_set_new(chat, "unread", json_integer(sreq->out.member_reads[0]));
    json_object_set_new(chat, "mentions", json_integer(sreq->out.member_mentions[0]));
  }
  {
    json_t *others, *typing = app__room_typing_json(cl->app, s->room, &others);
    size_t n_active;
    json_t *active = app__room_active_json_max(cl->app, s->room,
                                               (size_t)cl->app->cfg.sub_presence_max, &n_active);
    json_object_set(chat, "activeUsers", active);
    json_t *presence = s->presence ? json_incref(s->presence) : json_array();
    int online = s->presence ? s->online : 0;
    app__reply_ok(cl, &ctx->env,
                  json_pack("{s:o, s:o, s:o, s:I, s:b, s:o, s:i, s:b, s:o, s:o, s:o, s:I}",
                            "streams",
                            app__msgs_json(sreq->out.streams, sreq->out.n_streams, sreq->in.slug),
                            "chat", chat, "msgs",
                            app__msgs_json(sreq->out.msgs, sreq->out.n_msgs, sreq->in.slug),
                            "lastSeq", (json_int_t)sreq->out.chat.last_seq, "reset",
                            sreq->out.reset, "presence", presence, "online", online,
                            "presenceMore", online > (int)json_array_size(presence), "typing",
                            typing, "typingOthers", others, "activeUsers", active,
                            "activeCount", (json_int_t)n_active));
    json_decref(s->presence);
    s->presence = NULL;
  }
  app__sub_go_live(cl->app, s, sreq->out.chat.last_seq, sreq->out.chat.member_gen);
done:
  app__op_finish(sreq);
}

/* The participants' presence for the sub reply; runs just before the replay's callback. */
static void on_sub_members(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct sub *s;
  if (cl->conn == NULL || sreq->status)
    goto done; /* the replay request reports the error */
  s = app__sub_find(cl, sreq->in.slug);
  if (s == NULL || s->gen != ctx->sub_gen)
    goto done;
  json_decref(s->presence);
  s->presence = json_array();
  s->online = 0;
  /* Only who is there, and a bounded first page of them: a hash lookup per participant, an
   * encoding for at most PARLEY_SUB_PRESENCE_MAX (issue 15: a 10,000-member chat's sub cost 23-77 ms
   * of loop with every participant in the reply). chat.members pages through the rest. */
  for (size_t i = 0; i < sreq->out.n_member_ids; i++) {
    struct store_user u;
    const size_t w = STORE_USERNAME_MAX + 1;
    if (app__presence_state(cl->app, sreq->out.member_ids[i]) == PRESENCE_OFFLINE)
      continue;
    if (s->online++ >= cl->app->cfg.sub_presence_max)
      continue;
    memset(&u, 0, sizeof u);
    u.id = sreq->out.member_ids[i];
    u.last_seen = sreq->out.member_reads[i];
    memcpy(u.username, sreq->out.data + i * w, w);
    u.username[STORE_USERNAME_MAX] = '\0';
    json_array_append_new(s->presence, app__presence_json(cl->app, &u));
  }
done:
  app__op_finish(sreq);
}

void app__op_sub(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct store_req *sreq;
  struct sub *s = app__sub_open(a, cl, req->chat);
  struct op_opts opts = {0};

  if (s == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  opts.sub_gen = s->gen;
  /* Completions come back in submission order: the members (for the presence snapshot)
   * arrive just before the replay that answers the sub. */
  sreq = store_req_new(STORE_CHAT_MEMBERS);
  if (sreq) {
    struct op_opts first = opts;
    sreq->in.compact = 1; /* ids, names and lastSeen: what the presence snapshot needs */
    first.paired = 1; /* only the replay below may be refused: one answer per op */
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
    app__op_submit(cl, req, sreq, on_sub_members, &first);
  }
  sreq = store_req_new(STORE_MSG_SINCE);
  if (sreq == NULL) {
    app__sub_free(a, s);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  /* Without `since` the socket goes live from now: ask for nothing after "infinity". */
  sreq->in.since = PROTO_HAS(req, PROTO_F_SINCE) ? req->since : APP_SEQ_INFINITY;
  sreq->in.limit = PROTO_HISTORY_MAX;
  sreq->in.with_streams = 1; /* the open streams, read after this socket holds their deltas */
  if (app__op_submit(cl, req, sreq, on_sub, &opts) != 0)
    app__sub_free(a, s); /* answered with the error; the members' reply finds no sub */
}

void app__op_unsub(struct client *cl, const struct proto_req *req) {
  struct sub *s = app__sub_find(cl, req->chat);
  if (s)
    app__sub_free(cl->app, s);
  app__reply_ok(cl, req, json_pack("{s:s}", "chat", req->chat));
}

void app__op_typing(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct app_user *au;
  struct room *r = app__room_find(a, req->chat);
  struct sub *s = NULL;
  int changed;

  if (r)
    DL_FOREACH2(r->subs, s, rnext) {
      if (s->client == cl && s->live)
        break;
    }
  if (s == NULL && cl->on_reply && strcmp(cl->api_chat, req->chat) == 0) {
    /* The HTTP API checked membership in the store (app_api.c). Nobody here watching the
     * chat (no room): nobody here to tell. */
    if (r == NULL) {
      app__reply_ok(cl, req, NULL);
      return;
    }
  } else if (s == NULL) {
    /* A live subscription is the proof of membership that keeps typing off the database: the
     * store authorized it, and removal ends it. One still waiting for that answer proves
     * nothing yet. */
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST, "typing: subscribe to the chat first");
    return;
  }
  au = app__user_find(a, cl->user.id);
  if (au && app__rate_limited(cl, req, &au->typing_rl, a->cfg.typing_rate, a->cfg.typing_burst,
                              "typing updates too fast"))
    return;
  if (req->on)
    /* A bot's typing is its "thinking": it lasts until it answers (issue 19). */
    changed = typing_on(&r->typing, cl->user.id, app__now(a),
                        cl->user.bot ? a->cfg.bot_typing_ttl_ms : a->cfg.typing_ttl_ms);
  else
    changed = typing_off(&r->typing, cl->user.id);
  if (changed == 1)
    app__room_mark(a, r, ROOM_DIRTY_TYPING);
  else if (changed == 0 && req->on && !a->bus_solo)
    app__room_mark(a, r, ROOM_DIRTY_PUBLISH); /* a refresh: the other nodes' TTL restarts */
  app__reply_ok(cl, req, NULL);
}

void app__op_presence(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct app_user *au;
  int active;

  if (strcmp(req->state, "active") == 0)
    active = 1;
  else if (strcmp(req->state, "idle") == 0 || strcmp(req->state, "hidden") == 0)
    active = 0;
  else {
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST,
                   "state: must be \"active\", \"idle\" or \"hidden\"");
    return;
  }
  au = app__user_find(a, cl->user.id);
  if (au == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  /* Each change is a store query and an event to everyone who can see the user. */
  if (app__rate_limited(cl, req, &au->presence_rl, a->cfg.presence_rate, a->cfg.presence_burst,
                        "presence updates too fast"))
    return;
  app__presence_report(a, au, cl, active);
  app__reply_ok(cl, req, json_pack("{s:s}", "state", presence_state_name(au->pres.state)));
}
