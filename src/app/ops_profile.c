/* ops_profile.c - the ops of issue 18 that are not about messages: chat.notify (a participant's
 * notification level, kept by the server so it follows the user), chat.browse (the directory of
 * public chats) and me.update (the display name, told live to everyone who shows it).
 */
#include "app/ops.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/activity.h"
#include "app/deliver.h"
#include "app/reply.h"
#include "auth/auth.h"
#include "common/error.h"

#define BROWSE_DEFAULT 30 /* chats of a chat.browse page without a limit */

static void on_chat_notify(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  const char *level = proto_notify_name(sreq->out.chat.notify, 0);
  if (sreq->status == 0)
    /* The user's other tabs and devices show the same setting. */
    app__notify_others(cl, "chat.notify",
                       json_pack("{s:s, s:s}", "chat", sreq->out.chat.slug, "level", level));
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:s, s:s}", "chat", sreq->out.chat.slug, "level", level));
done:
  app__op_finish(sreq);
}

void app__op_chat_notify(struct client *cl, const struct proto_req *req) {
  enum store_notify level = proto_notify_parse(req->level);
  struct store_req *sreq;
  if (level == STORE_NOTIFY_DEFAULT) {
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST,
                   "level: must be \"all\", \"mentions\" or \"none\"");
    return;
  }
  sreq = store_req_new(STORE_NOTIFY_SET);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.level = (int)level;
  app__op_submit(cl, req, sreq, on_chat_notify, NULL);
}

static void on_chat_browse(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  json_t *chats;
  if (app__op_failed(sreq))
    goto done;
  chats = json_array();
  for (size_t i = 0; i < sreq->out.n_chats; i++) {
    const struct store_chat *c = &sreq->out.chats[i];
    json_array_append_new(
        chats, json_pack("{s:s, s:s, s:i, s:I, s:b}", "slug", c->slug, "title",
                         c->title ? c->title : "", "participantCount", c->participant_count,
                         "lastActivity", (json_int_t)c->last_activity, "joined",
                         c->my_role != CHAT_ROLE_NONE));
  }
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:o, s:b}", "chats", chats, "hasMore", sreq->out.has_more));
done:
  app__op_finish(sreq);
}

void app__op_chat_browse(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_CHAT_BROWSE);
  if (sreq == NULL || (PROTO_HAS(req, PROTO_F_Q) && (sreq->in.query = strdup(req->q)) == NULL)) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  sreq->in.before = PROTO_HAS(req, PROTO_F_BEFORE) ? req->before : 0;
  if (PROTO_HAS(req, PROTO_F_CHAT)) /* the last chat of the previous page */
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.limit = PROTO_HAS(req, PROTO_F_LIMIT) ? (int)req->limit : BROWSE_DEFAULT;
  if (sreq->in.limit > STORE_BROWSE_MAX)
    sreq->in.limit = STORE_BROWSE_MAX;
  app__op_submit(cl, req, sreq, on_chat_browse, NULL);
}

/* The names in this node's memory (events it builds: typing, presence, members) follow the
 * change at once; other nodes' copies are refreshed when the user's sockets there reconnect. */
void app__user_renamed(struct app *a, const struct store_user *u) {
  struct app_user *au = app__user_find(a, u->id);
  if (au == NULL)
    return;
  au->user = *u; /* which its sockets' `user` points to */
  a->users_gen++;
}

void app__user_announce(struct app *a, const struct store_req *sreq) {
  int64_t *ids = malloc((sreq->out.n_member_ids + 1) * sizeof *ids);
  if (ids == NULL)
    return;
  app__user_renamed(a, &sreq->out.user);
  ids[0] = sreq->out.user.id; /* the user's own sockets, then everyone who shows them */
  if (sreq->out.n_member_ids)
    memcpy(ids + 1, sreq->out.member_ids, sreq->out.n_member_ids * sizeof *ids);
  app__notify_users(a, ids, sreq->out.n_member_ids + 1, "user.updated",
                    json_pack("{s:o}", "user", proto_user_json(&sreq->out.user)));
  free(ids);
}

static void on_me_update(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (sreq->status == 0)
    app__user_announce(cl->app, sreq);
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env, json_pack("{s:o}", "user", proto_user_json(&sreq->out.user)));
done:
  app__op_finish(sreq);
}

void app__op_me_update(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq;
  /* The rules of signup's displayName, written once in auth. */
  if (auth_display_name_valid(req->display_name) != 0) {
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST,
                   "displayName: 1-64 characters, at least one visible, without control or bidi "
                   "characters");
    return;
  }
  sreq = store_req_new(STORE_USER_UPDATE);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.user.display_name, sizeof sreq->in.user.display_name, "%s",
           req->display_name);
  app__op_submit(cl, req, sreq, on_me_update, NULL);
}
