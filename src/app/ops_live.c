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

static int sub_presence_from_room(struct client *cl, struct sub *s, const struct store_chat *c);
static int sub_submit(struct client *cl, const struct proto_req *req, struct sub *s,
                      const char *slug, int64_t since, int members);

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
  if (!s->own_read && !sub_presence_from_room(cl, s, &sreq->out.chat)) {
    /* The room's list is not the chat's now (or never came): read it, and the replay again. */
    if (sub_submit(cl, &ctx->env, s, sreq->in.slug, sreq->in.since, 1) != 0)
      app__sub_free(cl->app, s); /* answered with the error */
    goto done;
  }
  /* Authorized: only now does the user count as having the chat open. */
  if (!s->counted) {
    s->counted = 1;
    app__room_sub_added(cl->app, s->room, cl->user->id);
  }
  chat = proto_chat_json(&sreq->out.chat);
  if (sreq->out.n_member_ids == 1) {
    /* The caller's counts as of the replay (issue 15): the client counts on from them. */
    json_object_set_new(chat, "unread", json_integer(sreq->out.member_reads[0]));
    json_object_set_new(chat, "mentions", json_integer(sreq->out.member_mentions[0]));
  }
  {
    /* The presence page and activeUsers come encoded (the room's, made once for many subs)
     * and are added to the encoded reply; chat.activeUsers is the same list. */
    json_t *others, *typing = app__room_typing_json(cl->app, s->room, &others);
    size_t n_active, chat_len;
    struct proto_raw in_chat = {"activeUsers", NULL, 0};
    char *chat_enc;
    int online = s->presence ? s->online : 0;
    in_chat.json = app__room_active_enc(cl->app, s->room, &in_chat.len, &n_active);
    chat_enc = app__chat_enc_with(chat, &in_chat, n_active, &chat_len);
    if (chat_enc == NULL) {
      free(chat_enc);
      json_decref(typing);
      json_decref(others);
      app__sub_free(cl->app, s); /* (s->presence with it) */
      app__reply_err(cl, &ctx->env, PARLEY_EINTERNAL, NULL);
      goto done;
    }
    {
      struct proto_raw raw[] = {
          {"chat", chat_enc, chat_len},
          {"presence", s->presence ? s->presence : "[]", s->presence ? s->presence_len : 2},
          in_chat};
      app__reply_ok_raw(
          cl, &ctx->env,
          json_pack("{s:o, s:o, s:I, s:b, s:i, s:b, s:o, s:o, s:I}", "streams",
                    app__msgs_json(sreq->out.streams, sreq->out.n_streams, sreq->in.slug), "msgs",
                    app__msgs_json(sreq->out.msgs, sreq->out.n_msgs, sreq->in.slug), "lastSeq",
                    (json_int_t)sreq->out.chat.last_seq, "reset", sreq->out.reset, "online", online,
                    "presenceMore", online > (int)(s->presence ? s->n_presence : 0), "typing",
                    typing, "typingOthers", others, "activeCount", (json_int_t)n_active),
          raw, sizeof raw / sizeof raw[0]);
      free(chat_enc);
    }
    free(s->presence);
    s->presence = NULL;
  }
  app__sub_go_live(cl->app, s, sreq->out.chat.last_seq, sreq->out.chat.member_gen);
done:
  app__op_finish(sreq);
}

/* Moves the participants of a compact CHAT_MEMBERS answer into room r, with the member_gen and
 * participant_count they were read at. */
static void sub_members_keep(struct app *a, struct room *r, struct store_req *sreq) {
  free(r->members.ids);
  free(r->members.seen);
  free(r->members.names);
  r->members.ids = sreq->out.member_ids;
  r->members.seen = sreq->out.member_reads;
  r->members.names = sreq->out.data;
  r->members.n_ids = sreq->out.n_member_ids;
  r->members.gen = sreq->out.chat.member_gen;
  r->members.count = sreq->out.chat.participant_count;
  r->members.version = ++a->presence_gen; /* (a kept presence page is looked at again) */
  r->members.reading = 0;
  sreq->out.member_ids = NULL;
  sreq->out.member_reads = NULL;
  sreq->out.data = NULL;
  sreq->out.n_member_ids = 0;
  sreq->out.data_len = 0;
}

/* Encodes room r's presence page: key holds the participants' version, then (participant
 * index, state, lastSeen) for each entry. The room keeps it with the key (taken). */
static void presence_page_encode(struct room *r, int64_t *key, size_t k) {
  const size_t w = STORE_USERNAME_MAX + 1;
  json_t *page = json_array();
  char *json;
  for (size_t j = 1; j + 2 < k; j += 3) {
    size_t i = (size_t)key[j];
    char name[STORE_USERNAME_MAX + 1];
    memcpy(name, r->members.names + i * w, w);
    name[STORE_USERNAME_MAX] = '\0';
    json_array_append_new(page,
                          app__presence_pack(r->members.ids[i], name, (int)key[j + 1], key[j + 2]));
  }
  json = json_dumps(page, JSON_COMPACT);
  json_decref(page);
  app__room_enc_keep(&r->presence_enc, json, json ? strlen(json) : 0, key, k);
}

/* s's presence snapshot from its room's list. Only who is there, and a bounded first page of
 * them: a hash lookup per participant, an encoding for at most PARLEY_SUB_PRESENCE_MAX (issue 15:
 * a 10,000-member chat's sub cost 23-77 ms of loop with every participant in the reply). The
 * room keeps the page encoded: while no presence here changed (presence_gen) the next sub takes
 * a copy at once, and otherwise when its look finds the same participants in the same states (a
 * join storm's subs did both). chat.members pages through the rest. */
static void sub_presence_fill(struct client *cl, struct sub *s) {
  struct app *a = cl->app;
  struct room *r = s->room;
  struct room_enc *e = r ? &r->presence_enc : NULL;
  free(s->presence);
  s->presence = NULL;
  s->presence_len = s->n_presence = 0;
  s->online = 0;
  if (e == NULL)
    return; /* no room: an empty page */
  if (!e->valid || e->gen != a->presence_gen) {
    const size_t max = (size_t)a->cfg.sub_presence_max;
    int64_t *key = malloc((3 * max + 1) * sizeof *key);
    size_t k = 0;
    int online = 0;
    if (key == NULL)
      return;
    key[k++] = (int64_t)r->members.version;
    for (size_t i = 0; i < r->members.n_ids; i++) {
      int64_t last = r->members.seen[i];
      int state = app__presence_of(a, r->members.ids[i], &last);
      if (state == PRESENCE_OFFLINE || (size_t)online++ >= max)
        continue;
      key[k++] = (int64_t)i;
      key[k++] = state;
      key[k++] = last;
    }
    if (app__room_enc_same(e, key, k))
      free(key);
    else
      presence_page_encode(r, key, k);
    e->gen = a->presence_gen;
    e->count = online;
  }
  s->online = e->count;
  if (e->json && (s->presence = malloc(e->len + 1)) != NULL) {
    memcpy(s->presence, e->json, e->len + 1);
    s->presence_len = e->len;
    s->n_presence = e->n_key / 3; /* (the version, then three a participant) */
  }
}

/* For a sub that did not read the participants: its presence from the room's list when that
 * list is the chat's as of the replay (c: the chat row read with it). 0: it is not. */
static int sub_presence_from_room(struct client *cl, struct sub *s, const struct store_chat *c) {
  const struct room *r = s->room;
  if (r == NULL || r->members.ids == NULL || r->members.gen != c->member_gen ||
      r->members.count != c->participant_count)
    return 0;
  sub_presence_fill(cl, s);
  return 1;
}

/* The participants for the sub reply; runs just before the replay's callback. */
static void on_sub_members(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct sub *s;
  if (cl->conn == NULL || sreq->status)
    goto done; /* the replay request reports the error */
  s = app__sub_find(cl, sreq->in.slug);
  if (s == NULL || s->gen != ctx->sub_gen || s->room == NULL)
    goto done;
  sub_members_keep(cl->app, s->room, sreq);
  sub_presence_fill(cl, s);
done:
  app__op_finish(sreq);
}

/* Submits s's store round trip: with `members`, the participants first (for the presence
 * snapshot; completions come back in submission order, so they arrive just before the replay
 * that answers the sub), then the replay of chat `slug` after `since`. Returns 0, or an error
 * already answered (the caller frees s). */
static int sub_submit(struct client *cl, const struct proto_req *req, struct sub *s,
                      const char *slug, int64_t since, int members) {
  struct store_req *sreq;
  struct op_opts opts = {0};
  opts.sub_gen = s->gen;
  s->own_read = members;
  if (members && (sreq = store_req_new(STORE_CHAT_MEMBERS)) != NULL) {
    struct op_opts first = opts;
    sreq->in.compact = 1; /* ids, names and lastSeen: what the presence snapshot needs */
    first.paired = 1; /* only the replay below may be refused: one answer per op */
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", slug);
    if (s->room)
      s->room->members.reading = 1;
    app__op_submit(cl, req, sreq, on_sub_members, &first);
  }
  sreq = store_req_new(STORE_MSG_SINCE);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return PARLEY_EINTERNAL;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", slug);
  sreq->in.since = since;
  sreq->in.limit = PROTO_HISTORY_MAX;
  sreq->in.with_streams = 1; /* the open streams, read after this socket holds their deltas */
  return app__op_submit(cl, req, sreq, on_sub, &opts);
}

void app__op_sub(struct client *cl, const struct proto_req *req) {
  struct sub *s = app__sub_open(cl->app, cl, req->chat);
  const struct room *r;
  if (s == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  /* The participants are read by the first sub of a room (and after a membership change); the
   * subs that follow, a storm of them included, take that list once their replay shows the chat
   * still has those participants. Without `since` the socket goes live from now: ask for nothing
   * after "infinity". */
  r = s->room;
  if (sub_submit(cl, req, s, req->chat,
                 PROTO_HAS(req, PROTO_F_SINCE) ? req->since : APP_SEQ_INFINITY,
                 r == NULL || (r->members.ids == NULL && !r->members.reading)) != 0)
    app__sub_free(cl->app, s); /* answered with the error; the members' reply finds no sub */
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
  if (s == NULL && cl->api_chat && strcmp(cl->api_chat, req->chat) == 0) {
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
  au = app__user_find(a, cl->user->id);
  if (au && app__rate_limited(cl, req, &au->typing_rl, a->cfg.typing_rate, a->cfg.typing_burst,
                              "typing updates too fast"))
    return;
  if (req->on)
    /* A bot's typing is its "thinking": it lasts until it answers (issue 19). */
    changed = typing_on(&r->typing, cl->user->id, app__now(a),
                        cl->user->bot ? a->cfg.bot_typing_ttl_ms : a->cfg.typing_ttl_ms);
  else
    changed = typing_off(&r->typing, cl->user->id);
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
  au = app__user_find(a, cl->user->id);
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
