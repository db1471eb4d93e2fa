/* activity.c - the chat.activity events of the live chat list (issue 18).
 *
 * Cost per message: one store request reads every participant's read marker (no query per
 * recipient), then one event is encoded per distinct (unread, mentioned) pair among them, not
 * one per recipient: in a chat where most people keep up, that is a handful of encodings however
 * large the chat. app__notify_users carries them to every node, which hands them to the
 * recipients' sockets there; a user with 500 chats holds no subscription to any of them.
 *
 * unread is what chat.list counts (text messages by others after the recipient's marker), read
 * in the same query as the markers and capped at 1000 per recipient so a 10,000-member chat
 * nobody reads stays cheap; `mentions` (the unread messages that mention the recipient, as
 * chat.list counts them) comes from the same query with the same cap. Events are sent for
 * "text" and "notice" entries only (edits and reactions do not move a chat list; an edit
 * that mentions someone new refreshes their row as a read does: ops_msg.c). `mentioned` reads the
 * msg object's `mentions` array.
 */
#include "app/activity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#include "app/cluster.h"
#include "app/deliver.h"
#include "app/subs.h"
#include "common/error.h"
#include "common/log.h"
#include "core/text.h"
#include "proto/proto.h"

struct activity_ctx {
  struct app *a;         /* app__submit passes no app to the callback (its data is the client) */
  int unsub_only;        /* not to sockets subscribed to the chat: they have the msg itself */
  json_t *msg;           /* the message's wire object (owned), NULL for a read */
  int64_t seq;           /* the message's seq */
  int64_t last_activity;
};

/* One recipient: its place in the request's member arrays and its two personal fields. */
struct activity_row {
  int64_t unread;
  int64_t mentions; /* unread messages that mention the recipient */
  int mentioned;
  int64_t id;
};

static int activity_row_cmp(const void *x, const void *y) {
  const struct activity_row *a = x, *b = y;
  if (a->mentioned != b->mentioned)
    return a->mentioned - b->mentioned;
  if (a->mentions != b->mentions)
    return a->mentions < b->mentions ? -1 : 1;
  return a->unread < b->unread ? -1 : a->unread > b->unread;
}

/* Whether the msg object names user id among its mentions (issue 17's `mentions`). */
static int activity_mentions(json_t *msg, int64_t id) {
  json_t *list = json_object_get(msg, "mentions"), *v;
  size_t i;
  json_array_foreach(list, i, v) {
    if (json_is_integer(v) && json_integer_value(v) == id)
      return 1;
  }
  return 0;
}

/* Only what a chat list shows: a text message or a notice, not an edit or a reaction. */
static int activity_counts(json_t *msg) {
  const char *kind = json_string_value(json_object_get(msg, "kind"));
  return kind == NULL || strcmp(kind, "text") == 0 || strcmp(kind, "notice") == 0;
}

/* A chat list shows a preview, so lastMsg's body is cut to ACTIVITY_PREVIEW_MAX bytes (at a
 * UTF-8 boundary): a client that sends large messages without reading must not be pushed the
 * whole body once more per send (issue 15's push budget). Returns a new reference, or msg's
 * own (incref'd) when it is short enough; NULL stays NULL. */
#define ACTIVITY_PREVIEW_MAX 280
static json_t *activity_preview(json_t *msg) {
  const char *body = msg ? json_string_value(json_object_get(msg, "body")) : NULL;
  size_t len = body ? strlen(body) : 0;
  if (msg == NULL || len <= ACTIVITY_PREVIEW_MAX)
    return msg ? json_incref(msg) : NULL;
  json_t *copy = json_copy(msg);
  if (copy == NULL)
    return json_incref(msg);
  json_object_set_new(copy, "body", json_stringn(body, text_utf8_fit(body, len, ACTIVITY_PREVIEW_MAX)));
  json_object_set_new(copy, "truncated", json_true());
  return copy;
}

/* mentions: the unread messages that mention the recipient, as chat.list counts them. */
static json_t *activity_fields(const char *slug, json_t *full, int64_t unread, int64_t mentions,
                               int mentioned, int64_t last_activity, int64_t seq) {
  json_t *msg = activity_preview(full);
  json_t *ev = json_pack("{s:s, s:O, s:I, s:I, s:I, s:I, s:b}", "chat", slug, "lastMsg",
                         msg ? msg : json_null(), "unread", (json_int_t)unread, "mentions",
                         (json_int_t)mentions, "lastActivity", (json_int_t)last_activity, "seq",
                         (json_int_t)seq, "mentioned", mentioned);
  json_decref(msg);
  return ev;
}

/* The event without its counts, encoded once per message: each group of recipients' frame is
 * this text with its counts added by proto_splice (issue 15: in a 1,000-member chat nearly every
 * recipient has a count of their own, and building and encoding the whole event for each cost
 * more than the store). NULL when out of memory; *len its length. */
static char *activity_base(const char *slug, json_t *full, int64_t last_activity, int64_t seq,
                           size_t *len) {
  json_t *msg = activity_preview(full);
  char *text = proto_event("chat.activity",
                           json_pack("{s:s, s:O, s:I, s:I}", "chat", slug, "lastMsg",
                                     msg ? msg : json_null(), "lastActivity",
                                     (json_int_t)last_activity, "seq", (json_int_t)seq),
                           len);
  json_decref(msg);
  return text;
}

/* app__notify_frame_but's test: cl has chat `arg` (a slug) open. */
static int activity_subscribed(struct client *cl, const void *arg) {
  return app__sub_find(cl, arg) != NULL;
}

/* Sends text to every socket of the n users in ids, on every node, but (with unsub_only) not to
 * the sockets here subscribed to chat `slug`. Other nodes send it to every socket: a client
 * that has the chat open takes an event for a seq it has counted already as the server's word
 * on the counts (docs/protocol.md), so both agree. */
static void activity_notify(struct app *a, const int64_t *ids, size_t n, const char *slug,
                            int unsub_only, const char *text, size_t len) {
  struct outq_chunk *frame;
  if (!unsub_only) {
    app__notify_users_json(a, ids, n, text, len);
    return;
  }
  app__bus_publish_notify(a, ids, n, text, len);
  frame = net_ws_frame_text(text, len);
  if (frame == NULL)
    return;
  app__notify_frame_but(a, ids, n, frame, activity_subscribed, slug);
  outq_chunk_unref(frame);
}

/* Sends base (of activity_base) with one group's counts to the n users in ids. */
static void activity_send(struct app *a, const struct activity_ctx *ctx, const char *slug,
                          const int64_t *ids, size_t n, const char *base, size_t len,
                          const struct activity_row *row) {
  char unread[24], mentions[24];
  struct proto_raw counts[] = {
      {"unread", unread, 0},
      {"mentions", mentions, 0},
      {"mentioned", row->mentioned ? "true" : "false", row->mentioned ? 4 : 5}};
  char *text = malloc(len + 1);
  counts[0].len = (size_t)snprintf(unread, sizeof unread, "%lld", (long long)row->unread);
  counts[1].len = (size_t)snprintf(mentions, sizeof mentions, "%lld", (long long)row->mentions);
  if (text == NULL)
    return;
  memcpy(text, base, len + 1);
  text = proto_splice(text, &len, counts, sizeof counts / sizeof counts[0]);
  if (text)
    activity_notify(a, ids, n, slug, ctx->unsub_only, text, len);
  free(text);
}

static void on_activity_msg(struct store_req *req) {
  struct activity_ctx *ctx = req->ctx;
  struct app *a = ctx->a;
  struct activity_row *rows = NULL;
  size_t n = req->out.n_member_ids, start = 0, base_len = 0;
  int64_t *ids = NULL;
  char *base = NULL;
  int dm = 0;

  if (req->status) {
    log_warn("chat.activity of %s: %s", req->in.slug, parley_strerror(req->status));
    goto done;
  }
  if (n == 0)
    goto done;
  {
    json_t *chat = proto_chat_json(&req->out.chat);
    const char *kind = json_string_value(json_object_get(chat, "kind"));
    dm = kind && strcmp(kind, "dm") == 0; /* issue 17's DMs: every entry is for the peer */
    json_decref(chat);
  }
  rows = malloc(n * sizeof *rows);
  ids = malloc(n * sizeof *ids);
  base = activity_base(req->in.slug, ctx->msg, ctx->last_activity, ctx->seq, &base_len);
  if (rows == NULL || ids == NULL || base == NULL)
    goto done;
  for (size_t i = 0; i < n; i++) {
    rows[i].id = req->out.member_ids[i];
    rows[i].unread = req->out.member_reads[i];
    rows[i].mentions = req->out.member_mentions[i];
    rows[i].mentioned = dm || activity_mentions(ctx->msg, rows[i].id);
  }
  /* Recipients with the same counts share one encoded event. */
  qsort(rows, n, sizeof *rows, activity_row_cmp);
  for (size_t i = 1; i <= n; i++) {
    if (i < n && rows[i].unread == rows[start].unread && rows[i].mentions == rows[start].mentions &&
        rows[i].mentioned == rows[start].mentioned)
      continue;
    for (size_t k = start; k < i; k++)
      ids[k - start] = rows[k].id;
    activity_send(a, ctx, req->in.slug, ids, i - start, base, base_len, &rows[start]);
    start = i;
  }
done:
  free(base);
  free(rows);
  free(ids);
  json_decref(ctx->msg);
  free(ctx);
  store_req_free(req);
}

/* only (owned, passed on to the request): NULL, or the participants to read ("id,id,..."). */
static void activity_submit(struct app *a, const char *slug, int64_t user_id,
                            struct activity_ctx *ctx, store_cb cb, char *only) {
  struct store_req *req = store_req_new(STORE_CHAT_ACTIVITY);
  if (req == NULL) {
    free(only);
    json_decref(ctx->msg);
    free(ctx);
    return;
  }
  snprintf(req->in.slug, sizeof req->in.slug, "%s", slug);
  req->in.user_id = user_id;
  req->in.reader_ids = only;
  ctx->a = a;
  req->ctx = ctx;
  /* The server's own request (never shed): the message is committed, its readers must hear. */
  if (app__submit(a, NULL, req, cb) != 0) {
    json_decref(ctx->msg);
    free(ctx);
  }
}

/* only (owned): as activity_submit's. */
static void activity_msg(struct app *a, const char *slug, const struct store_msg *m, int64_t seq,
                         int64_t last_activity, int unsub_only, char *only) {
  struct activity_ctx *ctx;
  json_t *msg = proto_msg_json(m, slug);
  if (msg == NULL || !activity_counts(msg)) {
    json_decref(msg);
    free(only);
    return;
  }
  ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) {
    json_decref(msg);
    free(only);
    return;
  }
  ctx->msg = msg;
  ctx->seq = seq;
  ctx->last_activity = last_activity;
  ctx->unsub_only = unsub_only;
  activity_submit(a, slug, 0, ctx, on_activity_msg, only);
}

void app__activity_msg_at(struct app *a, const char *slug, const struct store_msg *m, int64_t seq,
                          int64_t last_activity) {
  activity_msg(a, slug, m, seq, last_activity, 0, NULL);
}

/* Whether every participant of chat c has it open on every socket they have, here, on the only
 * node: then each has the msg event, which is all chat.activity would tell them, and the store
 * need not read anyone's counts. Participants are counted through live subscriptions (the
 * store authorized each); linear in the chat's subscriptions. */
static int activity_all_watching(struct app *a, const struct store_chat *c) {
  struct room *r;
  struct sub *s;
  uint64_t turn;
  int64_t users = 0;
  if (!a->bus_solo || c->participant_count <= 0)
    return 0;
  r = app__room_find(a, c->slug);
  if (r == NULL || r->n_subs < (size_t)c->participant_count)
    return 0;
  turn = ++a->notify_turn;
  DL_FOREACH2(r->subs, s, rnext) {
    struct app_user *au;
    struct client *cl;
    if (!s->live || s->client == NULL)
      continue;
    au = s->client->au; /* a subscriber is an authenticated socket: its pinned user */
    if (au == NULL || au->notified == turn)
      continue;
    au->notified = turn;
    DL_FOREACH2(au->clients, cl, unext) {
      if (cl->conn && app__sub_find(cl, c->slug) == NULL)
        return 0; /* a socket without the chat open: its list needs the event */
    }
    users++;
  }
  return users >= c->participant_count;
}

/* On the only node, when fewer users are online than chat c has participants: the users online
 * with a socket that does not have c open, as "id,id,..." for the store to read only those of
 * them who are participants (a 10,000-member chat with 50 people online reads at most 50 rows
 * per message, not 10,000). NULL: read every participant (a cluster, where who is online
 * elsewhere is not known here, or as many users online as participants: then the
 * participants are the shorter list). *none: nobody online needs the event. Linear in the
 * sockets online. Returns a new string (the caller owns it). */
static char *activity_online_readers(struct app *a, const struct store_chat *c, int *none) {
  struct app_user *au, *tmp;
  size_t n = 0, len = 0, cap;
  char *out;
  *none = 0;
  if (!a->bus_solo || c->participant_count <= 0 ||
      HASH_COUNT(a->users) >= (size_t)c->participant_count)
    return NULL;
  cap = HASH_COUNT(a->users) * 21 + 1; /* "-9223372036854775808," at most per id */
  out = malloc(cap);
  if (out == NULL)
    return NULL;
  HASH_ITER(hh, a->users, au, tmp) {
    struct client *cl;
    DL_FOREACH2(au->clients, cl, unext) {
      if (cl->conn && app__sub_find(cl, c->slug) == NULL)
        break;
    }
    if (cl == NULL)
      continue; /* every socket has the chat open, or none is connected */
    len += (size_t)snprintf(out + len, cap - len, "%s%lld", n ? "," : "", (long long)au->id);
    n++;
  }
  if (n == 0) {
    free(out);
    *none = 1;
    return NULL;
  }
  return out;
}

void app__activity_msg(struct app *a, const struct store_chat *c, const struct store_msg *m) {
  char *only;
  int none;
  /* A stream's start keeps its event for everyone: the client counts on only from finished
   * text messages (issue 19's streams are rare, and their end comes as an event anyway). */
  if (m->stream_state != STREAM_NONE) {
    activity_msg(a, c->slug, m, m->seq, m->created_at, 0, NULL);
    return;
  }
  if (activity_all_watching(a, c))
    return;
  only = activity_online_readers(a, c, &none);
  if (none)
    return;
  activity_msg(a, c->slug, m, m->seq, m->created_at, 1, only);
}

static void on_activity_read(struct store_req *req) {
  struct activity_ctx *ctx = req->ctx;
  struct app *a = ctx->a;
  const struct store_chat *c = &req->out.chat;
  if (req->status == 0 && req->out.n_member_ids == 1) {
    int64_t unread = req->out.member_reads[0];
    json_t *msg = req->out.msg.seq > 0 ? proto_msg_json(&req->out.msg, c->slug) : NULL;
    app__notify_users(a, req->out.member_ids, 1, "chat.activity",
                      activity_fields(c->slug, msg, unread, req->out.member_mentions[0], 0,
                                      c->last_activity, c->last_seq));
    json_decref(msg);
  }
  free(ctx);
  store_req_free(req);
}

void app__activity_read(struct app *a, int64_t user_id, const char *slug) {
  struct activity_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx)
    activity_submit(a, slug, user_id, ctx, on_activity_read, NULL);
}

void app__notify_others(struct client *cl, const char *ev, json_t *fields) {
  struct app *a = cl->app;
  struct app_user *au = app__user_find(a, cl->user->id);
  struct outq_chunk *frame;
  struct client *o;
  size_t len;
  char *json = proto_event(ev, fields, &len);
  if (json == NULL)
    return;
  app__bus_publish_notify(a, &cl->user->id, 1, json, len);
  frame = au ? net_ws_frame_text(json, len) : NULL;
  free(json);
  if (frame == NULL)
    return;
  DL_FOREACH2(au->clients, o, unext) {
    if (o != cl && o->conn)
      net_ws_send_frame(o->conn, frame);
  }
  outq_chunk_unref(frame);
}
