/* app_bots.c - bot accounts (/api/bots) and the webhook deliveries messages trigger.
 *
 * Every /api/bots request is made by a person (cookie or bearer token; a bot's token is 403),
 * about bots that person owns (another person's is 404, as if it did not exist). The store ops
 * (store_rules_bots.c) do the checks that must be atomic; this file parses, authenticates,
 * issues tokens and secrets (shown once: only the token's hash is stored), ends the sessions a
 * rotation or a deletion ends, and makes a deleted bot leave its chats through the chat.leave
 * op itself (app_api.c), so the `left` notices and member events are the usual ones.
 */
#include "app/app_bots.h"

#include <jansson.h>
#include <llhttp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_api.h"
#include "app/deliver.h"
#include "app/ops.h"
#include "auth/auth.h"
#include "common/error.h"
#include "common/log.h"
#include "net/net.h"
#include "proto/proto.h"

#define BOT_SESSION_TTL_MS INT64_C(3153600000000) /* a bot token lasts until rotated: 100 years */
#define BOT_SECRET_BYTES 32

enum bot_action { BOT_CREATE, BOT_LIST, BOT_TOKEN, BOT_UPDATE, BOT_SECRET, BOT_DELETE };

struct bot_call {
  struct client *hc; /* the HTTP connection's client (a reference) */
  enum bot_action action;
  char target[STORE_USERNAME_MAX + 1];
  json_t *body;                   /* the request body (POST /api/bots, PATCH) */
  char token[AUTH_TOKEN_LEN + 1]; /* issued: shown once in the response */
  char secret[2 * BOT_SECRET_BYTES + 1];
  int pending; /* BOT_DELETE: chat.leave ops still running */
};

static void respond(struct client *hc, int status, json_t *body) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (hc->conn)
    net_http_respond(hc->conn, status, s ? "application/json" : NULL, "Cache-Control: no-store\r\n",
                     s, s ? strlen(s) : 0);
  free(s);
}

static void respond_err(struct client *hc, int err, const char *msg) {
  respond(hc, parley_err_http_status(err),
          json_pack("{s:{s:s, s:s}}", "error", "code", parley_err_name(err), "message",
                    msg ? msg : parley_strerror(err)));
}

static void call_free(struct bot_call *c) {
  json_decref(c->body);
  sodium_memzero(c->token, sizeof c->token);
  sodium_memzero(c->secret, sizeof c->secret);
  app__client_unref(c->hc);
  free(c);
}

static json_t *bot_json(const struct store_bot *b) {
  json_t *o = proto_user_json(&b->user);
  json_object_set_new(o, "owner", proto_user_json(&b->owner));
  json_object_set_new(o, "webhookUrl", b->webhook_url ? json_string(b->webhook_url) : json_null());
  json_object_set_new(o, "createdAt", json_integer(b->user.created_at));
  return o;
}

static void new_secret(char *out) {
  unsigned char raw[BOT_SECRET_BYTES];
  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(out, 2 * BOT_SECRET_BYTES + 1, raw, sizeof raw);
  sodium_memzero(raw, sizeof raw);
}

/* webhookUrl: http:// or https://, at most STORE_WEBHOOK_URL_MAX bytes, no space or control
 * character. NULL v or JSON null: *out NULL. Returns 0 or -1. */
static int webhook_url(json_t *v, char **out) {
  const char *s;
  size_t n;
  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  s = json_string_value(v);
  if (s == NULL)
    return -1;
  n = strlen(s);
  if (n > STORE_WEBHOOK_URL_MAX ||
      (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) || n <= 8)
    return -1;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
      return -1;
  *out = strdup(s);
  return *out ? 0 : -1;
}

/* ---- the steps after the store ---- */

static void on_leave_done(struct app *a, void *data, const char *reply, size_t len) {
  struct bot_call *c = data;
  (void)a;
  (void)reply;
  (void)len;
  if (--c->pending > 0)
    return;
  respond(c->hc, 204, NULL);
  call_free(c);
}

static void on_bot_op(struct store_req *sreq) {
  struct bot_call *c = sreq->ctx;
  struct app *a = c->hc->app;
  /* Sessions end even if the asker went away: the change is committed. */
  if (sreq->status == 0)
    for (size_t i = 0; i < sreq->out.n_hashes; i++)
      app__close_session(a, sreq->out.hashes[i], NET_CLOSE_UNAUTHORIZED,
                         c->action == BOT_DELETE ? "bot deleted" : "bot token rotated");
  if (sreq->status == 0 && c->action == BOT_UPDATE && sreq->out.user.id)
    app__user_announce(a, sreq); /* a new display name: user.updated, as for me.update */
  if (sreq->status) {
    respond_err(c->hc, sreq->status, STORE_ERRMSG(sreq));
    goto done;
  }
  switch (c->action) {
  case BOT_CREATE:
    respond(c->hc, 201,
            json_pack("{s:o, s:s, s:s}", "bot", bot_json(&sreq->out.bots[0]), "token", c->token,
                      "webhookSecret", c->secret));
    break;
  case BOT_LIST: {
    json_t *arr = json_array();
    for (size_t i = 0; i < sreq->out.n_bots; i++)
      json_array_append_new(arr, bot_json(&sreq->out.bots[i]));
    respond(c->hc, 200, json_pack("{s:o}", "bots", arr));
    break;
  }
  case BOT_TOKEN:
    respond(c->hc, 200, json_pack("{s:s}", "token", c->token));
    break;
  case BOT_UPDATE:
    respond(c->hc, 200, json_pack("{s:o}", "bot", bot_json(&sreq->out.bots[0])));
    break;
  case BOT_SECRET:
    respond(c->hc, 200, json_pack("{s:s}", "webhookSecret", c->secret));
    break;
  case BOT_DELETE: {
    /* The bot leaves every chat it is in, as itself: the notices and events of chat.leave. */
    struct store_user bot = sreq->out.bots[0].user;
    c->pending = 1;
    for (size_t i = 0; i < sreq->out.n_chats; i++) {
      char op[160];
      int n = snprintf(op, sizeof op, "{\"op\":\"chat.leave\",\"id\":1,\"chat\":\"%s\"}",
                       sreq->out.chats[i].slug);
      c->pending++;
      if (app__api_run(a, &bot, NULL, op, (size_t)n, on_leave_done, c) != 0)
        c->pending--;
    }
    store_req_free(sreq);
    on_leave_done(a, c, NULL, 0); /* the one held while starting them */
    return;
  }
  }
done:
  store_req_free(sreq);
  call_free(c);
}

static void on_session(struct store_req *sreq) {
  struct bot_call *c = sreq->ctx;
  struct app *a = c->hc->app;
  static const enum store_op ops[] = {STORE_BOT_CREATE, STORE_BOT_LIST,   STORE_BOT_TOKEN,
                                      STORE_BOT_UPDATE, STORE_BOT_SECRET, STORE_BOT_DELETE};
  struct store_req *r = NULL;
  const char *bad = NULL;

  if (c->hc->conn == NULL)
    goto fail_quiet;
  if (sreq->status) {
    respond_err(c->hc, PARLEY_EUNAUTHORIZED, "not signed in");
    goto fail_quiet;
  }
  if (sreq->out.user.bot) {
    respond_err(c->hc, PARLEY_EFORBIDDEN, "bots cannot manage bots");
    goto fail_quiet;
  }
  r = store_req_new(ops[c->action]);
  if (r == NULL) {
    respond_err(c->hc, PARLEY_EINTERNAL, NULL);
    goto fail_quiet;
  }
  r->in.user_id = sreq->out.user.id;
  snprintf(r->in.target, sizeof r->in.target, "%s", c->target);
  if (c->action == BOT_CREATE) {
    const char *name = json_string_value(json_object_get(c->body, "username"));
    json_t *dn = json_object_get(c->body, "displayName");
    if (auth_username_normalize(name, r->in.user.username) != 0)
      bad = "username: 3-32 characters of a-z, 0-9, _ . -";
    else if (dn && !json_is_null(dn) &&
             (!json_is_string(dn) || auth_display_name_valid(json_string_value(dn)) != 0))
      bad = "displayName: 1-64 characters, at least one visible, without control or bidi "
            "override characters";
    else if (webhook_url(json_object_get(c->body, "webhookUrl"), &r->in.webhook_url) != 0)
      bad = "webhookUrl: an http:// or https:// URL of at most 2048 bytes";
    if (bad == NULL && dn && json_is_string(dn))
      snprintf(r->in.user.display_name, sizeof r->in.user.display_name, "%s",
               json_string_value(dn));
  }
  if (c->action == BOT_UPDATE) {
    json_t *dn = json_object_get(c->body, "displayName");
    json_t *url = json_object_get(c->body, "webhookUrl");
    if (dn && !json_is_null(dn)) {
      if (!json_is_string(dn) || auth_display_name_valid(json_string_value(dn)) != 0)
        bad = "displayName: 1-64 characters, at least one visible, without control or bidi "
              "override characters";
      else {
        snprintf(r->in.user.display_name, sizeof r->in.user.display_name, "%s",
                 json_string_value(dn));
        r->in.update_mask |= STORE_UPD_BOT_NAME;
      }
    }
    if (url) {
      if (webhook_url(url, &r->in.webhook_url) != 0)
        bad = "webhookUrl: an http:// or https:// URL of at most 2048 bytes, or null";
      r->in.update_mask |= STORE_UPD_BOT_HOOK;
    }
  }
  if (bad) {
    respond_err(c->hc, PARLEY_EBAD_REQUEST, bad);
    goto fail_quiet;
  }
  if (c->action == BOT_CREATE || c->action == BOT_TOKEN) {
    auth_token_new(c->token, r->in.token_hash);
    r->in.now = app__now(a);
    r->in.expires_at = r->in.now + BOT_SESSION_TTL_MS;
  }
  if (c->action == BOT_CREATE || c->action == BOT_SECRET) {
    new_secret(c->secret);
    if ((r->in.webhook_secret = strdup(c->secret)) == NULL) {
      respond_err(c->hc, PARLEY_EINTERNAL, NULL);
      goto fail_quiet;
    }
  }
  r->ctx = c;
  if (app__submit(a, NULL, r, on_bot_op) != 0) {
    r = NULL; /* freed by app__submit */
    respond_err(c->hc, PARLEY_EUNAVAILABLE, NULL);
    goto fail_quiet;
  }
  store_req_free(sreq);
  return;
fail_quiet:
  store_req_free(r);
  store_req_free(sreq);
  call_free(c);
}

int app__bots_request(struct client *hc, struct http_request *req) {
  const char *p = req->path, *rest;
  char token[AUTH_TOKEN_LEN + 1];
  struct bot_call *c;
  struct store_req *sreq;
  int action = -1;
  size_t n;

  if (strcmp(p, "/api/bots") != 0 && strncmp(p, "/api/bots/", 10) != 0)
    return 0;
  c = calloc(1, sizeof *c);
  if (c == NULL) {
    respond_err(hc, PARLEY_EINTERNAL, NULL);
    return 1;
  }
  c->hc = app__client_ref(hc);
  if (strcmp(p, "/api/bots") == 0) {
    action = req->method == HTTP_POST                              ? BOT_CREATE
             : req->method == HTTP_GET || req->method == HTTP_HEAD ? BOT_LIST
                                                                   : -2;
  } else {
    n = strcspn(p + 10, "/");
    rest = p + 10 + n;
    if (n == 0 || n > STORE_USERNAME_MAX) {
      respond_err(hc, PARLEY_ENOT_FOUND, "no such bot");
      call_free(c);
      return 1;
    }
    memcpy(c->target, p + 10, n);
    c->target[n] = '\0';
    if (*rest == '\0')
      action = req->method == HTTP_PATCH    ? BOT_UPDATE
               : req->method == HTTP_DELETE ? BOT_DELETE
                                            : -2;
    else if (strcmp(rest, "/token") == 0)
      action = req->method == HTTP_POST ? BOT_TOKEN : -2;
    else if (strcmp(rest, "/webhook-secret") == 0)
      action = req->method == HTTP_POST ? BOT_SECRET : -2;
  }
  if (action < 0) {
    if (action == -2)
      respond(hc, 405,
              json_pack("{s:{s:s, s:s}}", "error", "code", "bad_request", "message",
                        "method not allowed"));
    else
      respond_err(hc, PARLEY_ENOT_FOUND, "no such endpoint");
    call_free(c);
    return 1;
  }
  c->action = (enum bot_action)action;
  if (action == BOT_CREATE || action == BOT_UPDATE) {
    c->body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    if (!json_is_object(c->body)) {
      respond_err(hc, PARLEY_EBAD_REQUEST, "the body must be a JSON object");
      call_free(c);
      return 1;
    }
  }
  if (auth_bearer_token(req->authorization, token) != 0 &&
      auth_cookie_token(req->cookie, token) != 0) {
    respond_err(hc, PARLEY_EUNAUTHORIZED, "not signed in");
    call_free(c);
    return 1;
  }
  sreq = store_req_new(STORE_SESSION_GET);
  if (sreq == NULL) {
    respond_err(hc, PARLEY_EINTERNAL, NULL);
    call_free(c);
    return 1;
  }
  auth_token_hash(token, sreq->in.token_hash);
  sodium_memzero(token, sizeof token);
  sreq->ctx = c;
  if (app__submit(hc->app, NULL, sreq, on_session) != 0) {
    respond_err(hc, PARLEY_EUNAVAILABLE, NULL);
    call_free(c);
  }
  return 1;
}
