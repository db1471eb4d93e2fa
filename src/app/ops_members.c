/* ops_members.c - who is in a chat: chat.update, chat.leave, chat.remove, chat.setRole,
 * users.search and the invitation ops, with the live events that tell everyone concerned.
 *
 * The rules are checked by the store inside the transaction that applies the change (with the
 * pure functions of core/acl.h and core/invite.h), so a race between two admins, or ten users
 * accepting the last seat, is decided by the database and never by the order of events here.
 * Every membership change returns the participants after it, and the event goes to all their
 * sockets, on every node. A removed user's subscriptions end here, at once, before any later
 * message can be fanned out to them; with several nodes a removal (and a leave) is submitted
 * only once every node holds that user's deliveries in the chat (app__bus_fence), so that holds
 * on every node.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/ops.h"

#include "app/cluster.h"
#include "app/deliver.h"
#include "app/presence.h"
#include "app/reply.h"
#include "app/rooms.h"
#include "app/subs.h"
#include "auth/auth.h"
#include "common/error.h"
#include "common/log.h"

/* A chat object for an event: the receivers' roles differ, so the sender's is left out. */
static json_t *chat_event_json(struct app *a, const struct store_chat *c) {
  json_t *o = app__chat_json(a, c);
  json_object_del(o, "role");
  return o;
}

static int target_user(struct client *cl, const struct proto_req *req, struct store_req *sreq) {
  if (auth_username_normalize(req->user, sreq->in.target) != 0) {
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST, "user: not a valid username");
    store_req_free(sreq);
    return -1;
  }
  return 0;
}

static struct store_req *new_req(struct client *cl, const struct proto_req *req, enum store_op op) {
  struct store_req *sreq = store_req_new(op);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return NULL;
  }
  if (req->chat)
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.now = app__now(cl->app);
  return sreq;
}


/* Which change of an invitation a reply announces (op_ctx.invite_action). */
enum { INVITE_ACTION_ACCEPT = 1, INVITE_ACTION_DECLINE, INVITE_ACTION_REVOKE };

#define SEARCH_RESULTS_MAX 20   /* users one users.search returns */
#define INVITE_SWEEP_BATCH 500 /* expired invitations one sweep settles; a full batch goes again */

/* --- chat.update ---------------------------------------------------------------------------- */

static void on_update(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (sreq->status == 0)
    app__notify_users(cl->app, sreq->out.member_ids, sreq->out.n_member_ids, "chat.updated",
                      json_pack("{s:o}", "chat", chat_event_json(cl->app, &sreq->out.chat)));
  app__deliver_notice(cl->app, sreq); /* a rename is a notice in the chat's sequence */
  if (!app__op_failed(sreq))
    app__reply_chat(cl, &ctx->env, &sreq->out.chat);
  app__op_finish(sreq);
}

void app__op_chat_update(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = new_req(cl, req, STORE_CHAT_UPDATE);
  if (sreq == NULL)
    return;
  if (PROTO_HAS(req, PROTO_F_TITLE)) {
    sreq->in.update_mask |= STORE_UPD_TITLE;
    sreq->in.title = strdup(req->title);
  }
  if (PROTO_HAS(req, PROTO_F_IS_PUBLIC)) {
    sreq->in.update_mask |= STORE_UPD_PUBLIC;
    sreq->in.is_public = req->is_public;
  }
  if (PROTO_HAS(req, PROTO_F_MAX_PARTICIPANTS)) {
    sreq->in.update_mask |= STORE_UPD_CAP;
    sreq->in.max_participants = (int)req->max_participants; /* 0 (null) removes the cap */
  }
  if (PROTO_HAS(req, PROTO_F_INVITE_POLICY)) {
    sreq->in.update_mask |= STORE_UPD_POLICY;
    if (invite_policy_parse(req->invite_policy, &sreq->in.invite_policy) != 0) {
      app__reply_err(cl, req, PARLEY_EBAD_REQUEST,
                     "invitePolicy: must be \"owner\", \"admins\" or \"members\"");
      store_req_free(sreq);
      return;
    }
  }
  if (sreq->in.update_mask == 0) {
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST,
                   "nothing to change: give title, isPublic, maxParticipants or invitePolicy");
    store_req_free(sreq);
    return;
  }
  app__op_submit(cl, req, sreq, on_update, NULL);
}

/* --- chat.leave, chat.remove, chat.setRole ---------------------------------------------------- */

static void on_leave(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct app *a = cl->app;
  struct op_ctx *ctx = sreq->ctx;
  const char *slug = sreq->in.slug;

  if (sreq->status == 0) {
    int64_t self = sreq->in.user_id;
    json_t *ev = json_pack("{s:s, s:o, s:i}", "chat", slug, "user", proto_user_json(cl->user),
                           "participantCount", sreq->out.chat.participant_count);
    if (sreq->out.new_owner.id)
      json_object_set_new(ev, "newOwner", proto_user_json(&sreq->out.new_owner));
    app__drop_user_subs(a, self, slug);
    app__room_members_left(a, slug, sreq->out.chat.member_gen);
    app__notify_users(a, sreq->out.member_ids, sreq->out.n_member_ids, "participant.left",
                      json_incref(ev));
    /* The last one out archived the chat: its pending invitations were revoked with it. */
    for (size_t i = 0; i < sreq->out.n_invites; i++)
      app__invite_event(a, &sreq->out.invites[i], "revoked");
    /* The leaver's other tabs learn it too, so they drop the chat from their list. */
    app__notify_users(a, &self, 1, "participant.left", ev);
    app__deliver_notice(a, sreq);
  }
  app__bus_unfence(a, ctx->fence_id); /* after the "d" above: the subscriptions are gone first */
  if (!app__op_failed(sreq))
    app__reply_ok(cl, &ctx->env,
                  json_pack("{s:s, s:b}", "chat", slug, "archived", sreq->out.archived));
  app__op_finish(sreq);
}

static void on_remove(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct app *a = cl->app;
  struct op_ctx *ctx = sreq->ctx;
  const char *slug = sreq->in.slug;

  if (sreq->status == 0) {
    int64_t gone = sreq->out.user.id;
    /* Cut the removed user off first: nothing fanned out from now on can reach them. */
    app__drop_user_subs(a, gone, slug);
    app__room_members_left(a, slug, sreq->out.chat.member_gen);
    app__notify_users(a, &gone, 1, "removed",
                      json_pack("{s:s, s:o}", "chat", slug, "by", proto_user_json(cl->user)));
    app__notify_users(a, sreq->out.member_ids, sreq->out.n_member_ids, "participant.removed",
                      json_pack("{s:s, s:o, s:o, s:i}", "chat", slug, "user",
                                proto_user_json(&sreq->out.user), "by", proto_user_json(cl->user),
                                "participantCount", sreq->out.chat.participant_count));
    app__invite_events(a, sreq); /* their pending invitation was revoked */
    app__deliver_notice(a, sreq);
  }
  app__bus_unfence(a, ctx->fence_id); /* after the "d" above: the subscriptions are gone first */
  if (!app__op_failed(sreq))
    app__reply_ok(cl, &ctx->env,
                  json_pack("{s:s, s:o}", "chat", slug, "user", proto_user_json(&sreq->out.user)));
  app__op_finish(sreq);
}

static void on_set_role(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct app *a = cl->app;
  struct op_ctx *ctx = sreq->ctx;
  const char *slug = sreq->in.slug;

  if (sreq->status == 0) {
    app__notify_users(a, sreq->out.member_ids, sreq->out.n_member_ids, "participant.updated",
                      json_pack("{s:s, s:o, s:s}", "chat", slug, "user",
                                proto_user_json(&sreq->out.user), "role",
                                chat_role_name(sreq->out.role)));
    if (sreq->out.new_owner.id) /* ownership moved: the old owner is an admin now */
      app__notify_users(a, sreq->out.member_ids, sreq->out.n_member_ids, "participant.updated",
                        json_pack("{s:s, s:o, s:s}", "chat", slug, "user",
                                  proto_user_json(cl->user), "role", "admin"));
    app__deliver_notice(a, sreq);
  }
  if (!app__op_failed(sreq))
    app__reply_ok(cl, &ctx->env,
                  json_pack("{s:s, s:o, s:s}", "chat", slug, "user",
                            proto_user_json(&sreq->out.user), "role",
                            chat_role_name(sreq->out.role)));
  app__op_finish(sreq);
}

/* A removal or a leave waiting for every node to fence the user out of the chat. */
struct fenced_op {
  struct client *cl;    /* a reference */
  struct proto_req env; /* only has_id, id and op */
  struct store_req *sreq;
  store_cb cb;
  uint32_t fid;
};

static void fenced_go(void *arg) {
  struct fenced_op *f = arg;
  /* Submitted even if the socket closed meanwhile: the fence is up and the change was asked. */
  struct op_opts opts = {0};
  opts.fence_id = f->fid;
  app__op_submit(f->cl, &f->env, f->sreq, f->cb, &opts);
  app__client_unref(f->cl);
  free(f);
}

/* Submits sreq once no node can fan out a message committed after it to `username` in the chat
 * before it knows of it (cluster.c). The op's context carries the fence's id in `fence_id`, for
 * the callback to lift it (app__bus_unfence) once the events are out. */
static void submit_fenced(struct client *cl, const struct proto_req *req, struct store_req *sreq,
                          store_cb cb, const char *username) {
  struct fenced_op *f = calloc(1, sizeof *f);
  if (f == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  f->cl = app__client_ref(cl);
  f->env.has_id = req->has_id;
  f->env.id = req->id;
  f->env.op = req->op;
  f->sreq = sreq;
  f->cb = cb;
  if (!app__bus_fence(cl->app, sreq->in.slug, username, fenced_go, f, &f->fid))
    fenced_go(f);
}

void app__op_membership(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq;
  switch (req->op) {
  case PROTO_OP_CHAT_LEAVE:
    if ((sreq = new_req(cl, req, STORE_CHAT_LEAVE)))
      submit_fenced(cl, req, sreq, on_leave, cl->user->username);
    return;
  case PROTO_OP_CHAT_REMOVE:
    if ((sreq = new_req(cl, req, STORE_CHAT_REMOVE)) && target_user(cl, req, sreq) == 0)
      submit_fenced(cl, req, sreq, on_remove, sreq->in.target);
    return;
  case PROTO_OP_CHAT_SET_ROLE: {
    enum chat_role role = chat_role_parse(req->role);
    if (role == CHAT_ROLE_NONE) {
      app__reply_err(cl, req, PARLEY_EBAD_REQUEST,
                     "role: must be \"member\", \"admin\" or \"owner\"");
      return;
    }
    if ((sreq = new_req(cl, req, STORE_CHAT_SET_ROLE)) && target_user(cl, req, sreq) == 0) {
      sreq->in.role = role;
      app__op_submit(cl, req, sreq, on_set_role, NULL);
    }
    return;
  }
  default:
    return;
  }
}

/* --- users.search ----------------------------------------------------------------------------- */

static void on_search(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  json_t *users;
  if (app__op_failed(sreq))
    goto done;
  users = json_array();
  for (size_t i = 0; i < sreq->out.n_hits; i++) {
    json_t *u = proto_user_json(&sreq->out.hits[i].user);
    json_t *p = app__presence_json(cl->app, &sreq->out.hits[i].user);
    struct app_user *au;
    /* Finding someone shows their presence, and keeps showing it while it changes. */
    json_object_set(u, "state", json_object_get(p, "state"));
    json_object_set(u, "lastSeen", json_object_get(p, "lastSeen"));
    json_decref(p);
    HASH_FIND(hh, cl->app->users, &cl->user->id, sizeof cl->user->id, au);
    if (au)
      app__presence_watch(cl->app, au, sreq->out.hits[i].user.id);
    json_object_set_new(u, "participant", json_boolean(sreq->out.hits[i].participant));
    json_object_set_new(u, "invited", json_boolean(sreq->out.hits[i].invited));
    json_array_append_new(users, u);
  }
  app__reply_ok(cl, &ctx->env, json_pack("{s:o}", "users", users));
done:
  app__op_finish(sreq);
}

void app__op_users_search(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct store_req *sreq;
  struct app_user *au;

  HASH_FIND(hh, a->users, &cl->user->id, sizeof cl->user->id, au);
  if (au && app__rate_limited(cl, req, &au->search_rl, a->cfg.search_rate, a->cfg.search_burst,
                              "searching too fast"))
    return;
  sreq = new_req(cl, req, STORE_USERS_SEARCH);
  if (sreq == NULL)
    return;
  sreq->in.query = strdup(req->q);
  sreq->in.limit = SEARCH_RESULTS_MAX;
  app__op_submit(cl, req, sreq, on_search, NULL);
}

/* --- invitations --------------------------------------------------------------------------------
 */

static void on_invite_create(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (sreq->status == 0 && sreq->out.created)
    app__invite_event(cl->app, &sreq->out.invite, "received");
  if (!app__op_failed(sreq))
    app__reply_ok(cl, &ctx->env,
                  json_pack("{s:o, s:b}", "invitation", proto_invite_json(&sreq->out.invite),
                            "created", sreq->out.created));
  app__op_finish(sreq);
}

static void on_invite_change(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct app *a = cl->app;
  struct op_ctx *ctx = sreq->ctx;
  const char *action = ctx->invite_action == INVITE_ACTION_ACCEPT    ? "accepted"
                       : ctx->invite_action == INVITE_ACTION_DECLINE ? "declined"
                                                                     : "revoked";
  if (sreq->status == 0) {
    app__invite_event(a, &sreq->out.invite, action);
    if (sreq->op == STORE_INVITE_ACCEPT && sreq->out.joined)
      app__announce_join(a, sreq, cl->user);
  }
  if (!app__op_failed(sreq)) {
    json_t *r = json_pack("{s:o}", "invitation", proto_invite_json(&sreq->out.invite));
    if (sreq->op == STORE_INVITE_ACCEPT)
      json_object_set_new(r, "chat", app__chat_json(cl->app, &sreq->out.chat));
    app__reply_ok(cl, &ctx->env, r);
  }
  app__op_finish(sreq);
}

void app__op_invite_create(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = new_req(cl, req, STORE_INVITE_CREATE);
  if (sreq == NULL || target_user(cl, req, sreq) != 0)
    return;
  if (invite_expiry(sreq->in.now, PROTO_HAS(req, PROTO_F_TTL) ? req->ttl : 0,
                    &sreq->in.expires_at) != 0) {
    app__reply_err(cl, req, PARLEY_EBAD_REQUEST, "ttl: 1 second to 30 days");
    store_req_free(sreq);
    return;
  }
  app__op_submit(cl, req, sreq, on_invite_create, NULL);
}

static void op_invite_change(struct client *cl, const struct proto_req *req, enum store_op op) {
  struct store_req *sreq = new_req(cl, req, op);
  struct op_opts opts = {0};
  if (sreq == NULL)
    return;
  sreq->in.invite_id = req->invitation;
  /* The reply's callback announces which action this was. */
  opts.invite_action = op == STORE_INVITE_ACCEPT    ? INVITE_ACTION_ACCEPT
                       : op == STORE_INVITE_DECLINE ? INVITE_ACTION_DECLINE
                                                    : INVITE_ACTION_REVOKE;
  app__op_submit(cl, req, sreq, on_invite_change, &opts);
}

static void on_invite_list(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  json_t *incoming, *outgoing;
  if (app__op_failed(sreq))
    goto done;
  incoming = json_array();
  outgoing = json_array();
  for (size_t i = 0; i < sreq->out.n_invites; i++) {
    const struct store_invite *inv = &sreq->out.invites[i];
    json_array_append_new(inv->to.id == cl->user->id ? incoming : outgoing, proto_invite_json(inv));
  }
  app__reply_ok(cl, &ctx->env, json_pack("{s:o, s:o}", "incoming", incoming, "outgoing", outgoing));
done:
  app__op_finish(sreq);
}

void app__op_invite_accept(struct client *cl, const struct proto_req *req) {
  op_invite_change(cl, req, STORE_INVITE_ACCEPT);
}

void app__op_invite_decline(struct client *cl, const struct proto_req *req) {
  op_invite_change(cl, req, STORE_INVITE_DECLINE);
}

void app__op_invite_revoke(struct client *cl, const struct proto_req *req) {
  op_invite_change(cl, req, STORE_INVITE_REVOKE);
}

void app__op_invite_list(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = new_req(cl, req, STORE_INVITE_LIST);
  if (sreq)
    app__op_submit(cl, req, sreq, on_invite_list, NULL);
}

/* --- the expiry sweep ----------------------------------------------------------------------------
 */

static void on_sweep(struct store_req *sreq) {
  struct app *a = sreq->ctx;
  a->sweeping = 0;
  if (sreq->status == 0) {
    for (size_t i = 0; i < sreq->out.n_invites; i++)
      app__invite_event(a, &sreq->out.invites[i], "expired");
    /* A full batch means more may be due: go again on the next tick without waiting. */
  } else {
    log_warn("invitation sweep failed: %s", parley_strerror(sreq->status));
  }
  store_req_free(sreq);
}

void app__invite_sweep(struct app *a) {
  struct store_req *sreq;
  if (a->sweeping || a->shutting_down)
    return;
  sreq = store_req_new(STORE_INVITE_SWEEP);
  if (sreq == NULL)
    return;
  sreq->in.limit = INVITE_SWEEP_BATCH;
  sreq->ctx = a;
  a->sweeping = 1;
  if (app__submit(a, NULL, sreq, on_sweep) != 0)
    a->sweeping = 0;
}
