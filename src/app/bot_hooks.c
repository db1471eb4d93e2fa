/* bot_hooks.c - which bots a new message concerns, and their webhook deliveries (issue 19).
 *
 * A text message that mentions someone, or one in a chat of two (a DM), may concern a bot with a
 * webhook: one store query (STORE_BOT_HOOKS) finds them, then each gets the message as JSON,
 * handed to the webhook worker (webhook.c) that signs, sends and retries it off the loop.
 */
#include "app/bot_hooks.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/webhook.h"
#include "common/log.h"
#include "proto/proto.h"

struct hook_ctx {
  struct app *a;
  json_t *msg; /* the message as clients see it */
};

static void on_hooks(struct store_req *sreq) {
  struct hook_ctx *h = sreq->ctx;
  const struct store_chat *ch = &sreq->out.chat;
  for (size_t i = 0; sreq->status == 0 && i < sreq->out.n_bots; i++) {
    const struct store_bot *b = &sreq->out.bots[i];
    json_t *body =
        json_pack("{s:s, s:o, s:{s:s, s:s, s:s}, s:O}", "type", "message", "bot",
                  proto_user_json(&b->user), "chat", "slug", ch->slug, "title",
                  ch->title ? ch->title : "", "kind", ch->is_dm ? "dm" : "group", "msg", h->msg);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s && b->webhook_url && h->a->webhooks &&
        webhook_submit(h->a->webhooks, b->webhook_url, b->webhook_secret, s, strlen(s)) != 0)
      log_warn("webhook of bot %s dropped: the queue is full", b->user.username);
    free(s);
  }
  json_decref(h->msg);
  free(h);
  store_req_free(sreq);
}

void app__bots_msg_sent(struct app *a, const struct store_chat *chat, const struct store_msg *m) {
  struct hook_ctx *h;
  struct store_req *r;
  /* Only a message that mentions someone, or one in a chat of two (a DM), can concern a bot:
   * the others cost no query. */
  if (m->kind != STORE_KIND_TEXT ||
      (m->n_mentions == 0 && !(chat->max_participants == 2 && chat->participant_count <= 2)))
    return;
  h = calloc(1, sizeof *h);
  r = store_req_new(STORE_BOT_HOOKS);
  if (h == NULL || r == NULL) {
    free(h);
    store_req_free(r);
    return;
  }
  h->a = a;
  h->msg = proto_msg_json(m, chat->slug);
  snprintf(r->in.slug, sizeof r->in.slug, "%s", chat->slug);
  r->in.seq = m->seq;
  r->in.user_id = m->author.id;
  r->ctx = h;
  if (app__submit(a, NULL, r, on_hooks) != 0) {
    json_decref(h->msg);
    free(h);
  }
}
