/* app_api.c - the bot HTTP API: a small adapter from HTTP requests to the WebSocket ops.
 *
 * A route table maps a method and a path pattern to an op name; the adapter authenticates the
 * bearer token (or the cookie) like the auth op, builds the op's JSON request from the path and
 * the body, decodes it with proto_decode (the same schema checks as a socket's), and runs it
 * through the WebSocket's op table on a client of its own whose replies come back here
 * (client.on_reply) instead of going to a socket. The reply's result becomes the response body,
 * an error becomes {"error": ...} with the error table's HTTP status. So the HTTP API can never
 * disagree with the WebSocket about a rule: it runs the same code.
 */
#include "app/app_api.h"

#include <jansson.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/reply.h"
#include "app/ws_conn.h"
#include "auth/auth.h"
#include "common/error.h"
#include "net/net.h"
#include "proto/proto.h"

#define API_MEMBER 1 /* the op needs a checked membership (typing: a socket needs a sub) */
#define API_QUERY 2  /* arguments from the query string (before, limit), not a body */

struct api_route {
  int method;
  const char *pattern; /* segments; "{chat}" and "{seq}" capture */
  const char *op;
  int ok_status;
  int flags;
};

static const struct api_route api_routes[] = {
    {HTTP_POST, "/api/chats/{chat}/messages", "msg.send", 201, 0},
    {HTTP_GET, "/api/chats/{chat}/messages", "msg.history", 200, API_QUERY},
    {HTTP_POST, "/api/chats/{chat}/typing", "typing", 204, API_MEMBER},
    /* Streamed messages (ops_stream.c). */
    {HTTP_POST, "/api/chats/{chat}/streams", "msg.stream.start", 201, 0},
    {HTTP_POST, "/api/chats/{chat}/streams/{seq}", "msg.stream.append", 200, 0},
    {HTTP_POST, "/api/chats/{chat}/streams/{seq}/end", "msg.stream.end", 200, 0},
};

/* One HTTP request in progress (hc->http_op is not used: app_http.c owns that). */
struct api_call {
  struct client *hc; /* the HTTP connection's client (a reference) */
  const struct api_route *route;
  char chat[STORE_SLUG_MAX + 1];
  json_t *op; /* the op's request, until run */
  int replied;
};

/* ---- running an op without a socket ---- */

struct api_run {
  struct app *a;
  app_api_done done;
  void *data;
  int replied;
  struct store_user user;              /* the client's user */
  char chat_ok[STORE_SLUG_MAX + 1];    /* "": none */
};

static char api_conn_marker; /* the non-NULL conn of a socketless client; never dereferenced */

static void api_on_reply(struct client *cl, const char *s, size_t len) {
  struct api_run *r = cl->reply_data;
  if (r->replied)
    return;
  r->replied = 1;
  r->done(r->a, r->data, s, len);
}

static void api_on_free(struct client *cl) {
  struct api_run *r = cl->reply_data;
  if (r && !r->replied)
    r->done(r->a, r->data, NULL, 0);
  free(r);
  cl->reply_data = NULL;
}

int app__api_run(struct app *a, const struct store_user *u, const char *chat_ok, const char *json,
                 size_t len, app_api_done done, void *data) {
  struct proto_req req;
  char err[160];
  struct client *cl = calloc(1, sizeof *cl);
  struct api_run *r = calloc(1, sizeof *r);
  int rc;
  if (cl == NULL || r == NULL) {
    free(cl);
    free(r);
    return PARLEY_EINTERNAL;
  }
  r->a = a;
  r->done = done;
  r->data = data;
  cl->app = a;
  cl->conn = (struct net_conn *)(void *)&api_conn_marker;
  cl->refs = 1;
  cl->authed = 1;
  r->user = *u;
  cl->user = &r->user;
  cl->on_reply = api_on_reply;
  cl->reply_data = r;
  cl->on_free = api_on_free;
  snprintf(cl->peer, sizeof cl->peer, "http");
  if (chat_ok) {
    snprintf(r->chat_ok, sizeof r->chat_ok, "%s", chat_ok);
    cl->api_chat = r->chat_ok;
  }
  app__api_user_seen(a, u);
  rc = proto_decode(json, len, &req, err, sizeof err);
  if (rc)
    app__reply_err(cl, &req, rc, err);
  else
    app__op_dispatch(cl, &req);
  proto_req_dispose(&req);
  app__client_unref(cl); /* the op's store requests hold their own references */
  return 0;
}

/* ---- the HTTP side ---- */

static void api_respond(struct client *hc, int status, json_t *body, const char *headers) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  char h[256];
  snprintf(h, sizeof h, "Cache-Control: no-store\r\n%s", headers ? headers : "");
  json_decref(body);
  if (hc->conn)
    net_http_respond(hc->conn, status, s ? "application/json" : NULL, h, s, s ? strlen(s) : 0);
  free(s);
}

static void api_respond_err(struct client *hc, int err, const char *msg) {
  api_respond(hc, parley_err_http_status(err),
              json_pack("{s:{s:s, s:s}}", "error", "code", parley_err_name(err), "message",
                        msg ? msg : parley_strerror(err)),
              NULL);
}

static void call_free(struct api_call *c) {
  json_decref(c->op);
  app__client_unref(c->hc);
  free(c);
}

static int status_of_code(const char *code) {
  static const int all[] = {
#define API__ERR(name, wire, http, msg) PARLEY_E##name,
      PARLEY_ERRNO_MAP(API__ERR)
#undef API__ERR
  };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (code && strcmp(parley_err_name(all[i]), code) == 0)
      return parley_err_http_status(all[i]);
  return 500;
}

static void api_done(struct app *a, void *data, const char *reply, size_t len) {
  struct api_call *c = data;
  json_t *o = reply ? json_loadb(reply, len, 0, NULL) : NULL;
  json_t *err = json_object_get(o, "error");
  (void)a;
  if (c->hc->conn == NULL) {
    /* the client went away: nothing to answer */
  } else if (o == NULL) {
    api_respond_err(c->hc, PARLEY_EINTERNAL, "the op ended without a reply");
  } else if (!json_is_true(json_object_get(o, "ok")) || json_is_object(err)) {
    const char *code = json_string_value(json_object_get(err, "code"));
    json_t *retry = json_object_get(err, "retryAfter");
    char h[64] = "";
    if (json_is_integer(retry))
      snprintf(h, sizeof h, "Retry-After: %lld\r\n",
               (long long)((json_integer_value(retry) + 999) / 1000));
    api_respond(c->hc, status_of_code(code), json_pack("{s:O}", "error", err), h);
  } else {
    /* The reply's fields but the envelope (id, ok) are the result. */
    int status = c->route->ok_status;
    json_object_del(o, "id");
    json_object_del(o, "ok");
    if (json_is_true(json_object_get(o, "duplicate")))
      status = 200; /* the message was stored before: nothing new was created */
    api_respond(c->hc, status, status == 204 ? NULL : json_incref(o), NULL);
  }
  json_decref(o);
  call_free(c);
}

/* Runs c's op as u once its membership (if the route needs it) is known. */
static void call_run(struct api_call *c, const struct store_user *u) {
  char *s = json_dumps(c->op, JSON_COMPACT);
  struct app *a = c->hc->app;
  if (s == NULL) {
    api_respond_err(c->hc, PARLEY_EINTERNAL, NULL);
    call_free(c);
    return;
  }
  if (app__api_run(a, u, (c->route->flags & API_MEMBER) ? c->chat : NULL, s, strlen(s), api_done,
                   c) != 0) {
    api_respond_err(c->hc, PARLEY_EINTERNAL, NULL);
    call_free(c);
  }
  free(s);
}

static void on_member(struct store_req *sreq) {
  struct api_call *c = sreq->ctx;
  if (c->hc->conn == NULL)
    call_free(c);
  else if (sreq->status) {
    api_respond_err(c->hc, sreq->status, STORE_ERRMSG(sreq));
    call_free(c);
  } else if (sreq->out.chat.my_role == CHAT_ROLE_NONE) {
    api_respond_err(c->hc, PARLEY_EFORBIDDEN, "not a participant of this chat");
    call_free(c);
  } else
    call_run(c, &sreq->in.user);
  store_req_free(sreq);
}

static void on_session(struct store_req *sreq) {
  struct api_call *c = sreq->ctx;
  struct app *a = c->hc->app;
  if (c->hc->conn == NULL) {
    call_free(c);
  } else if (sreq->status) {
    api_respond_err(c->hc, PARLEY_EUNAUTHORIZED, "invalid or expired token");
    call_free(c);
  } else if (c->route->flags & API_MEMBER) {
    /* Typing over a socket proves membership with a live subscription; here the store does. */
    struct store_req *m = store_req_new(STORE_CHAT_GET);
    if (m == NULL) {
      api_respond_err(c->hc, PARLEY_EINTERNAL, NULL);
      call_free(c);
    } else {
      m->in.user_id = sreq->out.user.id;
      m->in.user = sreq->out.user;
      snprintf(m->in.slug, sizeof m->in.slug, "%s", c->chat);
      m->ctx = c;
      if (app__submit(a, NULL, m, on_member) != 0) {
        api_respond_err(c->hc, PARLEY_EUNAVAILABLE, NULL);
        call_free(c);
      }
    }
  } else {
    call_run(c, &sreq->out.user);
  }
  store_req_free(sreq);
}

/* Matches path against pattern; fills chat and *seq (-1: none, -2: malformed). */
static int route_match(const char *pattern, const char *path, char *chat, int64_t *seq) {
  *seq = -1;
  while (*pattern && *path) {
    size_t pn = strcspn(pattern + 1, "/") + 1, n = strcspn(path + 1, "/") + 1;
    if (*pattern != '/' || *path != '/')
      return 0;
    if (strncmp(pattern, "/{chat}", pn) == 0 && pn == 7) {
      if (n - 1 < 1 || n - 1 > STORE_SLUG_MAX)
        return 0;
      memcpy(chat, path + 1, n - 1);
      chat[n - 1] = '\0';
    } else if (strncmp(pattern, "/{seq}", pn) == 0 && pn == 6) {
      int64_t v = 0;
      for (size_t i = 1; i < n; i++) {
        if (path[i] < '0' || path[i] > '9' || v > INT64_MAX / 10 - 10) {
          v = -2;
          break;
        }
        v = v * 10 + (path[i] - '0');
      }
      *seq = n > 1 ? v : -2;
    } else if (pn != n || strncmp(pattern, path, n) != 0) {
      return 0;
    }
    pattern += pn;
    path += n;
  }
  return *pattern == '\0' && *path == '\0';
}

/* before=&limit= into the op (only digits; anything else is bad_request). */
static int query_args(const char *q, json_t *op) {
  while (q && *q) {
    size_t n = strcspn(q, "&");
    const char *eq = memchr(q, '=', n);
    if (eq) {
      size_t kn = (size_t)(eq - q), vn = n - kn - 1;
      int64_t v = 0;
      if (vn == 0 || vn > 18)
        return -1;
      for (size_t i = 0; i < vn; i++) {
        if (eq[1 + i] < '0' || eq[1 + i] > '9')
          return -1;
        v = v * 10 + (eq[1 + i] - '0');
      }
      if (kn == 6 && strncmp(q, "before", 6) == 0)
        json_object_set_new(op, "before", json_integer(v));
      else if (kn == 5 && strncmp(q, "limit", 5) == 0)
        json_object_set_new(op, "limit", json_integer(v));
    }
    q += n;
    if (*q == '&')
      q++;
  }
  return 0;
}

int app__api_request(struct client *hc, struct http_request *req) {
  const struct api_route *route = NULL;
  char chat[STORE_SLUG_MAX + 1] = "", token[AUTH_TOKEN_LEN + 1];
  int64_t seq = -1;
  int path_known = 0;
  struct api_call *c;
  struct store_req *sreq;

  if (strncmp(req->path, "/api/chats/", 11) != 0)
    return 0;
  for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++)
    if (route_match(api_routes[i].pattern, req->path, chat, &seq)) {
      path_known = 1;
      if (api_routes[i].method == req->method ||
          (api_routes[i].method == HTTP_GET && req->method == HTTP_HEAD)) {
        route = &api_routes[i];
        break;
      }
    }
  if (route == NULL) {
    if (path_known)
      api_respond(hc, 405,
                  json_pack("{s:{s:s, s:s}}", "error", "code", "bad_request", "message",
                            "method not allowed"),
                  NULL);
    else
      api_respond_err(hc, PARLEY_ENOT_FOUND, "no such endpoint");
    return 1;
  }
  if (seq == -2) {
    api_respond_err(hc, PARLEY_EBAD_REQUEST, "seq: a positive integer in the path");
    return 1;
  }
  if (auth_bearer_token(req->authorization, token) != 0 &&
      auth_cookie_token(req->cookie, token) != 0) {
    api_respond_err(hc, PARLEY_EUNAUTHORIZED, "not signed in: send Authorization: Bearer <token>");
    return 1;
  }
  c = calloc(1, sizeof *c);
  if (c == NULL) {
    api_respond_err(hc, PARLEY_EINTERNAL, NULL);
    return 1;
  }
  c->hc = app__client_ref(hc);
  c->route = route;
  snprintf(c->chat, sizeof c->chat, "%s", chat);
  if (route->flags & API_QUERY) {
    c->op = json_object();
    if (query_args(req->query, c->op) != 0) {
      api_respond_err(hc, PARLEY_EBAD_REQUEST, "before, limit: non-negative integers");
      call_free(c);
      return 1;
    }
  } else {
    json_error_t jerr;
    c->op = req->body.len ? json_loadb(req->body.data, req->body.len, 0, &jerr) : json_object();
    if (!json_is_object(c->op)) {
      api_respond_err(hc, PARLEY_EBAD_REQUEST, "the body must be a JSON object");
      call_free(c);
      return 1;
    }
  }
  /* The path names the op and its chat (and seq): the body cannot override them. */
  json_object_set_new(c->op, "op", json_string(route->op));
  json_object_set_new(c->op, "id", json_integer(1));
  json_object_set_new(c->op, "chat", json_string(chat));
  if (seq >= 0)
    json_object_set_new(c->op, "seq", json_integer(seq));
  sreq = store_req_new(STORE_SESSION_GET);
  if (sreq == NULL) {
    api_respond_err(hc, PARLEY_EINTERNAL, NULL);
    call_free(c);
    return 1;
  }
  auth_token_hash(token, sreq->in.token_hash);
  memset(token, 0, sizeof token);
  sreq->ctx = c;
  if (app__submit(hc->app, NULL, sreq, on_session) != 0) {
    api_respond_err(hc, PARLEY_EUNAVAILABLE, NULL);
    call_free(c);
  }
  return 1;
}
