/* ops_stream.c - streamed messages (issue 19): msg.stream.start, msg.stream.append and
 * msg.stream.end, the msg.delta events, and the sweep that ends the streams of authors gone
 * idle.
 *
 * The store decides inside its transaction (store_rules_stream.c) and answers once the group
 * commit made the change durable; only then does an append's delta go out, from the request's
 * callback. Callbacks of one chat's requests come in submission order, so a stream's deltas
 * leave this node in offset order, after the stream's `msg` event. Subscriptions hold deltas
 * where they hold messages (subs.c), so a socket gets a stream's deltas after the stream itself.
 *
 * The handlers take (client, decoded request) like every op, so an HTTP adapter that builds a
 * proto_req for a client can call them as they are.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/ops.h"

#include "app/activity.h"
#include "app/cluster.h"
#include "app/deliver.h"
#include "app/presence.h"
#include "app/reply.h"
#include "app/rooms.h"
#include "app/subs.h"
#include "common/error.h"
#include "common/log.h"
#include "core/stream.h"

#define STREAM_SWEEP_BATCH 100 /* idle streams one sweep looks at */

/* msg.stream.start: like msg.send with an empty body. */
static void on_stream_start(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  struct app *a = cl->app;
  if (sreq->status == 0 && !sreq->out.duplicate) {
    struct room *r = app__room_find(a, sreq->out.chat.slug);
    a->metrics.msgs_sent++;
    /* Starting a stream ends the author's typing, in the same turn. */
    if (r && typing_off(&r->typing, sreq->out.msg.author.id) == 1)
      app__room_mark(a, r, ROOM_DIRTY_TYPING);
    app__deliver_msg(a, sreq->out.chat.slug, &sreq->out.msg, sreq->out.chat.member_gen);
    app__metrics_fanned_out(a, ctx->recv_ns);
    app__activity_msg(a, &sreq->out.chat, &sreq->out.msg);
  }
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:o, s:b}", "msg", proto_msg_json(&sreq->out.msg, sreq->out.chat.slug),
                          "duplicate", sreq->out.duplicate));
done:
  app__op_finish(sreq);
}

void app__op_stream_start(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct app_user *au = app__user_find(a, cl->user->id);
  struct store_req *sreq;
  /* A stream counts as a message in the sender's rate limit. */
  if (au && app__rate_limited(cl, req, &au->send_rl, a->cfg.send_rate, a->cfg.send_burst,
                              "sending too fast"))
    return;
  sreq = store_req_new(STORE_STREAM_START);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  if (PROTO_HAS(req, PROTO_F_CLIENT_MSG_ID))
    snprintf(sreq->in.client_msg_id, sizeof sreq->in.client_msg_id, "%s", req->client_msg_id);
  sreq->in.reply_to = PROTO_HAS(req, PROTO_F_REPLY_TO) ? req->reply_to : 0;
  app__op_submit(cl, req, sreq, on_stream_start, NULL);
}

void app__deliver_delta(struct app *a, const char *slug, int64_t seq, int64_t offset,
                        const char *delta, int64_t mgen) {
  struct room *r = app__room_find(a, slug);
  struct outq_chunk *frame;
  size_t len;
  char *json;
  if (r == NULL && a->bus_solo)
    return;
  json = proto_event("msg.delta",
                     json_pack("{s:s, s:I, s:I, s:s}", "chat", slug, "seq", (json_int_t)seq,
                               "offset", (json_int_t)offset, "delta", delta),
                     &len);
  if (json == NULL)
    return;
  app__bus_publish_delta(a, slug, seq, offset, mgen, json, len);
  frame = r ? net_ws_frame_text(json, len) : NULL;
  free(json);
  if (frame == NULL)
    return;
  app__room_deliver_delta(a, r, seq, offset, mgen, frame);
  outq_chunk_unref(frame);
}

/* msg.stream.append: {seq, length}; a refused offset says the stream's length (error.length). */
static void on_stream_append(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (sreq->status == 0 && sreq->out.appended)
    app__deliver_delta(cl->app, sreq->out.chat.slug, sreq->in.seq, sreq->in.offset, sreq->in.body,
                       sreq->out.chat.member_gen);
  if (cl->conn == NULL)
    goto done;
  if (sreq->status == PARLEY_ECONFLICT) {
    app__reply_err_extra(cl, &ctx->env, sreq->status, STORE_ERRMSG(sreq),
                         json_pack("{s:I}", "length", (json_int_t)sreq->out.stream_len));
    goto done;
  }
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:I, s:I}", "seq", (json_int_t)sreq->in.seq, "length",
                          (json_int_t)sreq->out.stream_len));
done:
  app__op_finish(sreq);
}

void app__op_stream_append(struct client *cl, const struct proto_req *req) {
  struct store_req *sreq = store_req_new(STORE_STREAM_APPEND);
  if (sreq == NULL || (sreq->in.body = strdup(req->delta)) == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.seq = req->seq;
  sreq->in.offset = req->offset;
  app__op_submit(cl, req, sreq, on_stream_append, NULL);
}

/* The stream.end entry goes out like any entry of the sequence; the chat lists show the stream
 * with its final state. */
static void stream_ended(struct app *a, const struct store_req *sreq) {
  app__deliver_msg(a, sreq->out.chat.slug, &sreq->out.msg, sreq->out.chat.member_gen);
  if (sreq->out.n_msgs == 1)
    app__activity_msg_at(a, sreq->out.chat.slug, &sreq->out.msgs[0], sreq->out.msg.seq,
                         sreq->out.msg.created_at);
}

static void on_stream_end(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  if (sreq->status == 0)
    stream_ended(cl->app, sreq);
  if (app__op_failed(sreq))
    goto done;
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:o}", "msg", proto_msg_json(&sreq->out.msg, sreq->out.chat.slug)));
done:
  app__op_finish(sreq);
}

void app__op_stream_end(struct client *cl, const struct proto_req *req) {
  enum stream_state state = STREAM_DONE;
  struct store_req *sreq;
  if (PROTO_HAS(req, PROTO_F_STATE)) {
    state = stream_state_parse(req->state);
    if (state != STREAM_DONE && state != STREAM_ERROR) {
      app__reply_err(cl, req, PARLEY_EBAD_REQUEST, "state: must be \"done\" or \"error\"");
      return;
    }
  }
  sreq = store_req_new(STORE_STREAM_END);
  if (sreq == NULL) {
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.seq = req->seq;
  sreq->in.state = (int)state;
  app__op_submit(cl, req, sreq, on_stream_end, NULL);
}

/* --- the idle sweep ------------------------------------------------------------------------ */

/* 1 if user_id has a socket here, or (several nodes) is online or away as the nodes announce
 * it; *last_seen gets the latest lastSeen known. */
static int author_online(struct app *a, const struct store_user *u, int64_t *last_seen) {
  struct app_user *au = app__user_find(a, u->id);
  json_t *p;
  const char *state;
  int online;
  *last_seen = u->last_seen;
  if (au && au->clients)
    return 1;
  p = app__presence_json(a, u);
  state = json_string_value(json_object_get(p, "state"));
  if (json_integer_value(json_object_get(p, "lastSeen")) > *last_seen)
    *last_seen = json_integer_value(json_object_get(p, "lastSeen"));
  /* On a single node the local sockets are the whole truth; with several, the others' word. */
  online = !a->bus_solo && state && strcmp(state, "offline") != 0;
  json_decref(p);
  return online;
}

static void on_stream_interrupted(struct store_req *sreq) {
  struct app *a = sreq->ctx;
  if (sreq->status == 0)
    stream_ended(a, sreq);
  else if (sreq->status != PARLEY_ECONFLICT) /* conflict: ended or resumed meanwhile */
    log_warn("stream sweep: ending %s/%lld failed: %s", sreq->in.slug, (long long)sreq->in.seq,
             parley_strerror(sreq->status));
  store_req_free(sreq);
}

static void on_stream_due(struct store_req *sreq) {
  struct app *a = sreq->ctx;
  int64_t now = app__now(a);
  a->stream_sweeping = 0;
  for (size_t i = 0; sreq->status == 0 && i < sreq->out.n_found; i++) {
    const struct store_msg_hit *h = &sreq->out.found[i];
    int64_t last_seen = 0;
    int online = author_online(a, &h->msg.author, &last_seen);
    struct store_req *end;
    if (!stream_idle_due(now, h->msg.created_at, online, last_seen, a->cfg.stream_idle_ms))
      continue;
    end = store_req_new(STORE_STREAM_END);
    if (end == NULL)
      break;
    snprintf(end->in.slug, sizeof end->in.slug, "%s", h->slug);
    end->in.seq = h->msg.seq;
    end->in.user_id = h->msg.author.id;
    end->in.state = STREAM_INTERRUPTED;
    end->in.since = sreq->in.since; /* an append after the cutoff keeps it open */
    end->ctx = a;
    app__submit(a, NULL, end, on_stream_interrupted);
  }
  store_req_free(sreq);
}

void app__stream_sweep(struct app *a) {
  struct store_req *sreq;
  if (a->stream_sweeping || a->shutting_down)
    return;
  sreq = store_req_new(STORE_STREAM_DUE);
  if (sreq == NULL)
    return;
  sreq->in.since = app__now(a) - a->cfg.stream_idle_ms;
  sreq->in.limit = STREAM_SWEEP_BATCH;
  sreq->ctx = a;
  a->stream_sweeping = 1;
  if (app__submit(a, NULL, sreq, on_stream_due) != 0)
    a->stream_sweeping = 0;
}
