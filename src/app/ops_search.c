/* ops_search.c - msg.search: full-text search over the messages of the chats the caller is in
 * (issue 18). The store ranks and marks the matches (store.h, STORE_MSG_SEARCH); this file turns
 * the page into the reply of docs/protocol.md. It shares users.search's per-user rate limit: both
 * are reads a user types, and a search holds the store for up to its time budget.
 */
#include "app/ops.h"

#include <stdlib.h>
#include <string.h>

#include "app/reply.h"
#include "common/error.h"

#define MSG_SEARCH_DEFAULT 20 /* results per page when the client names no limit */

/* One result: the chat (as a list entry names it: a DM has kind "dm" and the other person's
 * name as title), the message, the marked snippet. */
static json_t *search__hit_json(const struct store_msg_hit *h) {
  return json_pack("{s:{s:s, s:s, s:s}, s:o, s:s}", "chat", "slug", h->slug, "title",
                   h->title ? h->title : "", "kind", h->is_dm ? "dm" : "group", "msg",
                   proto_msg_json(&h->msg, h->slug), "snippet", h->snippet ? h->snippet : "");
}

static void on_msg_search(struct store_req *sreq) {
  struct client *cl = sreq->data;
  struct op_ctx *ctx = sreq->ctx;
  json_t *results;

  if (app__op_failed(sreq))
    goto done;
  results = json_array();
  for (size_t i = 0; i < sreq->out.n_found; i++)
    json_array_append_new(results, search__hit_json(&sreq->out.found[i]));
  app__reply_ok(cl, &ctx->env,
                json_pack("{s:o, s:b}", "results", results, "hasMore", sreq->out.has_more));
done:
  app__op_finish(sreq);
}

void app__op_msg_search(struct client *cl, const struct proto_req *req) {
  struct app *a = cl->app;
  struct app_user *au = app__user_find(a, cl->user->id);
  struct store_req *sreq;

  if (au && app__rate_limited(cl, req, &au->search_rl, a->cfg.search_rate, a->cfg.search_burst,
                              "searching too fast"))
    return;
  sreq = store_req_new(STORE_MSG_SEARCH);
  if (sreq == NULL || (sreq->in.query = strdup(req->q)) == NULL) {
    store_req_free(sreq);
    app__reply_err(cl, req, PARLEY_EINTERNAL, NULL);
    return;
  }
  if (PROTO_HAS(req, PROTO_F_CHAT))
    snprintf(sreq->in.slug, sizeof sreq->in.slug, "%s", req->chat);
  sreq->in.before = PROTO_HAS(req, PROTO_F_BEFORE) ? req->before : 0;
  sreq->in.limit = PROTO_HAS(req, PROTO_F_LIMIT) ? (int)req->limit : MSG_SEARCH_DEFAULT;
  app__op_submit(cl, req, sreq, on_msg_search, NULL);
}
