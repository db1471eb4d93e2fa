/* app_http.c - the REST endpoints (signup, login, logout, me, health, metrics), the WebSocket
 * upgrade with its Origin check and cookie authentication, and the static web app.
 *
 * Each endpoint is a short chain of asynchronous steps (hash on the thread pool, then a store
 * request, then a response). Hashes wait for one of a bounded number of slots, logins first, and
 * logins and signups are throttled per client address before they cost a hash. The connection answers one request at a time, so the chain's state
 * hangs off the client as `http_op`.
 */
#include <jansson.h>
#include <llhttp.h> /* HTTP_GET, ... for http_request.method */
#include <sodium.h> /* sodium_memzero: a plain memset before free may be optimized away */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/app_http.h"

#include "app/app_api.h"
#include "app/app_bots.h"
#include "app/clients.h"
#include "app/deliver.h"
#include "app/metrics.h"
#include "app/presence.h"
#include "app/reply.h"
#include "auth/auth.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "net/static.h"

/* The argon2 queues (hash_submit): logins are served before signups. */
enum { HASH_LOGIN = 0, HASH_SIGNUP = 1 };

/* A throttle entry: "ip:<addr>" (login attempts per address), "su:<addr>" (signups per
 * address), "u:<name>" (failed logins per username) or "p:<name> <addr>" (a username tried from
 * one address: its failures in a row and their lockout). */
#define APP_THROTTLE_KEY_MAX 112 /* "p:" + a username + " " + an address, with the NUL */
struct app_throttle {
  char key[APP_THROTTLE_KEY_MAX];
  struct ratelimit rl;
  int failures;           /* consecutive failed logins ("p:" keys) */
  int64_t locked_until;   /* progressive delay: no login attempt before this (Unix ms) */
  int64_t last_failure;
  int64_t last_success;   /* "p:" keys: this address logged in as this user then (Unix ms) */
  UT_hash_handle hh;
};

#define THROTTLE_MEMORY_MS INT64_C(86400000) /* failed logins are remembered for a day */

struct http_op {
  char token[AUTH_TOKEN_LEN + 1];
  uint8_t token_hash[STORE_TOKEN_HASH_LEN];
  char username[STORE_USERNAME_MAX + 1];
  char display_name[STORE_DISPLAY_NAME_MAX + 1];
  char *password;
  char *pwhash;  /* login: the stored hash (owned), NULL for an unknown user */
  int hash_kind; /* HASH_LOGIN or HASH_SIGNUP: which queue it waits in for an argon2 slot */
  struct store_user user;
  int status_ok; /* 201 for signup, 200 for login */
  int change;    /* POST /api/password: verify `password`, then hash `new_password` */
  char *new_password;
};

static int origin_matches(const char *list, const char *origin) {
  size_t olen = strlen(origin);
  const char *p = list;
  while (*p) {
    size_t n = strcspn(p, ",");
    while (n && *p == ' ') {
      p++;
      n--;
    }
    if (n == olen && strncmp(p, origin, n) == 0)
      return 1;
    p += n;
    if (*p == ',')
      p++;
  }
  return 0;
}

static int origin_allowed(const struct app *a, const char *origin) {
  char own[160];
  if (origin == NULL)
    return 1; /* not a browser: it has to authenticate with a token, so there is no CSRF */
  if (a->cfg.origins[0])
    return origin_matches(a->cfg.origins, origin);
  /* By default only the server's own origin, under the names a local user would type. */
  snprintf(own, sizeof own, "http://%s:%d", a->cfg.host, net_server_port(a->net));
  if (strcmp(origin, own) == 0)
    return 1;
  snprintf(own, sizeof own, "http://localhost:%d", net_server_port(a->net));
  if (strcmp(origin, own) == 0)
    return 1;
  snprintf(own, sizeof own, "http://127.0.0.1:%d", net_server_port(a->net));
  return strcmp(origin, own) == 0;
}

/* The plaintext password is kept only until it is handed to the thread pool (auth copies it
 * and wipes its copy when done); every path that drops it wipes it. */
static void op_wipe_password(struct http_op *op) {
  if (op->password) {
    sodium_memzero(op->password, strlen(op->password));
    free(op->password);
    op->password = NULL;
  }
}

static void op_free(struct client *cl) {
  struct http_op *op = cl->http_op;
  if (op == NULL)
    return;
  op_wipe_password(op);
  if (op->new_password) {
    sodium_memzero(op->new_password, strlen(op->new_password));
    free(op->new_password);
  }
  sodium_memzero(op->token, sizeof op->token);
  free(op->pwhash);
  free(op);
  cl->http_op = NULL;
}

static void respond_json(struct client *cl, int status, json_t *body, const char *headers) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  char h[512];
  snprintf(h, sizeof h, "Cache-Control: no-store\r\n%s", headers ? headers : "");
  json_decref(body);
  if (cl->conn)
    net_http_respond(cl->conn, status, s ? "application/json" : NULL, h, s, s ? strlen(s) : 0);
  free(s);
  op_free(cl);
}

static void respond_err(struct client *cl, int err, const char *msg, const char *headers) {
  respond_json(cl, parley_err_http_status(err),
               json_pack("{s:{s:s, s:s}}", "error", "code", parley_err_name(err), "message",
                         msg ? msg : parley_strerror(err)),
               headers);
}

static void session_cookie(const struct app *a, const char *token, char *out, size_t len) {
  snprintf(out, len,
           "Set-Cookie: " AUTH_COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld%s"
           "\r\n",
           token, (long long)(a->cfg.session_ttl_ms / 1000),
           a->cfg.cookie_secure ? "; Secure" : "");
}

/* The token a request carries: the cookie (browsers) or a bearer header (other clients). */
static int request_token(const struct http_request *req, char *token) {
  if (auth_bearer_token(req->authorization, token) == 0)
    return 0;
  return auth_cookie_token(req->cookie, token);
}

/* --- signup and login: both end by creating a session ------------------------------------- */

static struct app_throttle *throttle_get(struct app *a, const char *key);
static void respond_throttled(struct client *cl, int64_t wait, const char *msg);
static void hash_submit(struct client *cl, int kind);
static void hash_release(struct app *a);

static void on_session_created(struct store_req *req) {
  struct client *cl = req->data;
  struct app *a = cl->app;
  struct http_op *op = cl->http_op;
  char cookie[256];

  if (cl->conn == NULL || op == NULL)
    goto done;
  if (req->status) {
    respond_err(cl, req->status, NULL, NULL);
    goto done;
  }
  session_cookie(a, op->token, cookie, sizeof cookie);
  respond_json(cl, op->status_ok,
               json_pack("{s:o, s:s}", "user", proto_user_json(&op->user), "token", op->token),
               cookie);
done:
  store_req_free(req);
  app__client_unref(cl);
}

static void session_create(struct client *cl) {
  struct app *a = cl->app;
  struct http_op *op = cl->http_op;
  struct store_req *req = store_req_new(STORE_SESSION_CREATE);
  if (req == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  auth_token_new(op->token, op->token_hash);
  req->in.user_id = op->user.id;
  memcpy(req->in.token_hash, op->token_hash, STORE_TOKEN_HASH_LEN);
  req->in.expires_at = app__now(a) + a->cfg.session_ttl_ms;
  if (app__submit(a, cl, req, on_session_created) != 0)
    respond_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
}

static void on_user_created(struct store_req *req) {
  struct client *cl = req->data;
  if (cl->conn == NULL || cl->http_op == NULL)
    goto done;
  if (req->status) {
    respond_err(cl, req->status, req->status == PARLEY_ECONFLICT ? "that username is taken" : NULL,
                NULL);
    goto done;
  }
  ((struct http_op *)cl->http_op)->user = req->out.user;
  session_create(cl);
done:
  store_req_free(req);
  app__client_unref(cl);
}

static void password_store(struct client *cl, struct auth_work *w);

static void on_signup_hashed(struct auth_work *w) {
  struct client *cl = w->data;
  struct http_op *op = cl->http_op;
  struct store_req *req;

  hash_release(cl->app);
  if (cl->conn == NULL || op == NULL)
    goto done;
  if (w->status) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    goto done;
  }
  if (op->change) {
    password_store(cl, w);
    goto done;
  }
  req = store_req_new(STORE_USER_CREATE);
  if (req == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    goto done;
  }
  snprintf(req->in.user.username, sizeof req->in.user.username, "%s", op->username);
  snprintf(req->in.user.display_name, sizeof req->in.user.display_name, "%s", op->display_name);
  req->in.pwhash = w->hash;
  w->hash = NULL;
  if (app__submit(cl->app, cl, req, on_user_created) != 0)
    respond_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
done:
  auth_work_free(w);
  app__client_unref(cl);
}

/* Reads {"username", "password", "displayName"?} into a new http_op. Returns 0 or answers. */
static int parse_credentials(struct client *cl, struct http_request *req, int signup) {
  json_error_t jerr;
  json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, &jerr);
  const char *username, *password, *display = NULL;
  struct http_op *op;

  if (!json_is_object(body)) {
    json_decref(body);
    respond_err(cl, PARLEY_EBAD_REQUEST, "the body must be a JSON object", NULL);
    return -1;
  }
  username = json_string_value(json_object_get(body, "username"));
  password = json_string_value(json_object_get(body, "password"));
  if (signup && json_object_get(body, "displayName") &&
      !json_is_null(json_object_get(body, "displayName")))
    display = json_string_value(json_object_get(body, "displayName"));
  op = calloc(1, sizeof *op);
  if (op == NULL) {
    json_decref(body);
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return -1;
  }
  cl->http_op = op;
  if (auth_username_normalize(username, op->username) != 0) {
    json_decref(body);
    /* A login with an impossible username is simply wrong credentials. */
    respond_err(cl, signup ? PARLEY_EBAD_REQUEST : PARLEY_EUNAUTHORIZED,
                signup ? "username: 3-32 characters of a-z, 0-9, _ . -"
                       : "wrong username or password",
                NULL);
    return -1;
  }
  if (password == NULL || strlen(password) < (signup ? AUTH_PASSWORD_MIN : 1) ||
      strlen(password) > AUTH_PASSWORD_MAX) {
    json_decref(body);
    respond_err(cl, signup ? PARLEY_EBAD_REQUEST : PARLEY_EUNAUTHORIZED,
                signup ? "password: 8-256 bytes" : "wrong username or password", NULL);
    return -1;
  }
  if (signup && json_object_get(body, "displayName") &&
      !json_is_null(json_object_get(body, "displayName")) &&
      (display == NULL || auth_display_name_valid(display) != 0)) {
    json_decref(body);
    respond_err(cl, PARLEY_EBAD_REQUEST,
                "displayName: 1-64 characters, at least one visible, without control or bidi "
                "override characters",
                NULL);
    return -1;
  }
  snprintf(op->display_name, sizeof op->display_name, "%s", display ? display : op->username);
  op->password = strdup(password);
  /* jansson's copy goes back to the allocator with the object: wipe it first (the string is
   * the object's own malloc'd buffer, and `body` is ours alone). */
  sodium_memzero((char *)password, strlen(password));
  json_decref(body);
  if (op->password == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return -1;
  }
  return 0;
}

static void handle_signup(struct client *cl, struct http_request *req) {
  struct app *a = cl->app;
  struct http_op *op;
  if (parse_credentials(cl, req, 1) != 0)
    return;
  op = cl->http_op;
  op->status_ok = 201;
  /* Each signup costs an argon2 hash (19 MiB, tens of ms of a core): a flood of them from one
   * address would slow everyone's logins. */
  if (a->cfg.rate_limits) {
    char key[APP_THROTTLE_KEY_MAX];
    struct app_throttle *t;
    int64_t wait;
    snprintf(key, sizeof key, "su:%s", cl->peer);
    t = throttle_get(a, key);
    if (t &&
        (wait = ratelimit_take(&t->rl, a->cfg.signup_rate, a->cfg.signup_burst, app__now(a))) > 0) {
      respond_throttled(cl, wait, "too many signups from this address; try again later");
      return;
    }
  }
  hash_submit(cl, HASH_SIGNUP);
}

/* Login throttling, as mature servers do it (Mastodon/GitLab's Rack::Attack rules, Django-axes
 * by "username and IP"): an attempt is first charged to its address ("ip:", every attempt
 * counts); one the address budget refuses costs the username nothing. Failures in a row of one
 * username from one address ("p:") lock that pair out after the 3rd (1 s, doubling, up to
 * 15 min), so guessing from one address is slow while the real user, elsewhere, is untouched.
 * Against guessing spread over many addresses a username also has a failure budget ("u:",
 * charged by failures only, much larger than one address's), which refuses addresses that never
 * logged in as that user: a botnet can make a new device wait, but not lock out a device the
 * user already signed in from (while this process remembers it). */
#define LOGIN_FREE_FAILURES 2 /* the 3rd failure in a row starts the lockout */
#define LOGIN_MAX_DELAY_MS (15 * 60 * 1000)

static void login_pair_key(const struct client *cl, const char *username, char *key, size_t len) {
  snprintf(key, len, "p:%s %s", username, cl->peer);
}

/* Records the outcome of a login: a failure counts against the (username, address) pair and the
 * username's budget, a success forgets the pair's failures and marks the address as known. */
static void login_outcome(struct client *cl, const char *username, int ok) {
  struct app *a = cl->app;
  char key[APP_THROTTLE_KEY_MAX];
  struct app_throttle *t;
  int64_t now = app__now(a);
  if (!a->cfg.rate_limits)
    return;
  login_pair_key(cl, username, key, sizeof key);
  t = throttle_get(a, key);
  if (t == NULL)
    return;
  if (ok) {
    t->failures = 0;
    t->locked_until = 0;
    t->last_success = now;
    return;
  }
  t->failures++;
  t->last_failure = now;
  t->locked_until =
      now + ratelimit_backoff_ms(t->failures, LOGIN_FREE_FAILURES, LOGIN_MAX_DELAY_MS);
  snprintf(key, sizeof key, "u:%s", username);
  t = throttle_get(a, key);
  if (t) {
    (void)ratelimit_take(&t->rl, a->cfg.login_user_rate, a->cfg.login_user_burst, now);
    t->last_failure = now;
  }
}

/* --- argon2 slots: at most cfg.hash_max_running hashes on the thread pool, the rest wait in a
 * bounded FIFO where logins go before signups, so a signup flood cannot starve logins. ---- */

static void on_signup_hashed(struct auth_work *w);
static void on_login_verified(struct auth_work *w);

/* Runs the hash of cl's request on the thread pool (a slot is taken). */
static void hash_run(struct client *cl) {
  struct app *a = cl->app;
  struct http_op *op = cl->http_op;
  int err;
  a->hash_running++;
  if (op->hash_kind == HASH_SIGNUP)
    err = auth_hash_async(a->loop, op->password, on_signup_hashed, app__client_ref(cl));
  else
    err = auth_verify_async(a->loop, op->pwhash, op->password, on_login_verified,
                            app__client_ref(cl));
  if (err) {
    a->hash_running--;
    app__client_unref(cl);
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  op_wipe_password(op); /* auth has its own copy */
}

/* A slot freed: the oldest waiting login runs, else the oldest waiting signup. */
static void hash_release(struct app *a) {
  a->hash_running--;
  while (a->hash_running < a->cfg.hash_max_running && a->hash_queued > 0) {
    int k = a->hash_queue[HASH_LOGIN] ? HASH_LOGIN : HASH_SIGNUP;
    struct client *cl = a->hash_queue[k];
    a->hash_queue[k] = cl->hash_next;
    if (a->hash_queue[k] == NULL)
      a->hash_tail[k] = NULL;
    cl->hash_next = NULL;
    cl->hash_waiting = 0;
    a->hash_queued--;
    if (cl->conn && cl->http_op)
      hash_run(cl);
    else
      op_free(cl); /* the client went away while it waited: its password goes now */
    app__client_unref(cl);
  }
}

/* Runs cl's hash now if a slot is free, else queues it; a full queue answers 503. */
static void hash_submit(struct client *cl, int kind) {
  struct app *a = cl->app;
  ((struct http_op *)cl->http_op)->hash_kind = kind;
  if (a->hash_running < a->cfg.hash_max_running) {
    hash_run(cl);
    return;
  }
  if (a->hash_queued >= a->cfg.hash_max_queued) {
    a->metrics.rejected_rate++;
    respond_err(cl, PARLEY_EUNAVAILABLE, "the server is busy; try again in a moment",
                "Retry-After: 1\r\n");
    return;
  }
  cl->hash_waiting = 1;
  app__client_ref(cl);
  if (a->hash_tail[kind])
    a->hash_tail[kind]->hash_next = cl;
  else
    a->hash_queue[kind] = cl;
  a->hash_tail[kind] = cl;
  a->hash_queued++;
}

static void password_hash_new(struct client *cl);

static void on_login_verified(struct auth_work *w) {
  struct client *cl = w->data;
  hash_release(cl->app);
  if (cl->http_op)
    login_outcome(cl, ((struct http_op *)cl->http_op)->username, w->status == 0);
  if (cl->conn == NULL || cl->http_op == NULL)
    goto done;
  if (w->status)
    respond_err(cl, PARLEY_EUNAUTHORIZED,
                ((struct http_op *)cl->http_op)->change ? "wrong password"
                                                        : "wrong username or password",
                NULL);
  else if (((struct http_op *)cl->http_op)->change)
    password_hash_new(cl);
  else
    session_create(cl);
done:
  auth_work_free(w);
  app__client_unref(cl);
}

static void on_login_user(struct store_req *req) {
  struct client *cl = req->data;
  struct http_op *op = cl->http_op;
  if (cl->conn == NULL || op == NULL)
    goto done;
  if (req->status && req->status != PARLEY_ENOT_FOUND) {
    respond_err(cl, req->status, NULL, NULL);
    goto done;
  }
  /* An unknown user is verified against a dummy hash: the answer takes as long either way. A
   * bot never logs in with a password (issue 19): it is answered as an unknown user. */
  if (req->status == 0 && !req->out.user.bot) {
    op->user = req->out.user;
    op->pwhash = req->out.pwhash ? strdup(req->out.pwhash) : NULL;
    if (req->out.pwhash && op->pwhash == NULL) {
      respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
      goto done;
    }
  }
  hash_submit(cl, HASH_LOGIN);
done:
  store_req_free(req);
  app__client_unref(cl);
}

static struct app_throttle *throttle_get(struct app *a, const char *key) {
  struct app_throttle *t;
  HASH_FIND_STR(a->throttles, key, t);
  if (t == NULL) {
    t = calloc(1, sizeof *t);
    if (t == NULL)
      return NULL;
    snprintf(t->key, sizeof t->key, "%s", key);
    HASH_ADD_STR(a->throttles, key, t);
  }
  return t;
}

/* How long cl must wait before this login attempt may be tried (0: go ahead). Only an attempt
 * the address budget accepts goes on to the username's checks, and those take nothing: the
 * username is charged by failures alone (login_outcome). */
static int64_t login_wait(struct client *cl, const char *username) {
  struct app *a = cl->app;
  char key[APP_THROTTLE_KEY_MAX];
  struct app_throttle *t, *pair;
  int64_t now = app__now(a), wait;

  snprintf(key, sizeof key, "ip:%s", cl->peer);
  t = throttle_get(a, key);
  if (t && (wait = ratelimit_take(&t->rl, a->cfg.login_rate, a->cfg.login_burst, now)) > 0)
    return wait;
  login_pair_key(cl, username, key, sizeof key);
  HASH_FIND_STR(a->throttles, key, pair);
  if (pair && pair->locked_until > now)
    return pair->locked_until - now;
  if (pair && pair->last_success)
    return 0; /* an address the user signed in from: the username's budget does not apply */
  snprintf(key, sizeof key, "u:%s", username);
  HASH_FIND_STR(a->throttles, key, t);
  if (t)
    return ratelimit_peek(&t->rl, a->cfg.login_user_rate, a->cfg.login_user_burst, now);
  return 0;
}

static void respond_throttled(struct client *cl, int64_t wait, const char *msg) {
  char h[64];
  snprintf(h, sizeof h, "Retry-After: %lld\r\n", (long long)(wait + 999) / 1000);
  cl->app->metrics.rejected_rate++;
  respond_err(cl, PARLEY_ERATE_LIMITED, msg, h);
}

static void handle_login(struct client *cl, struct http_request *req) {
  struct app *a = cl->app;
  struct http_op *op;
  struct store_req *sreq;
  int64_t wait;

  if (parse_credentials(cl, req, 0) != 0)
    return;
  op = cl->http_op;
  op->status_ok = 200;
  if (a->cfg.rate_limits && (wait = login_wait(cl, op->username)) > 0) {
    respond_throttled(cl, wait, "too many login attempts; try again later");
    return;
  }
  sreq = store_req_new(STORE_USER_BY_NAME);
  if (sreq == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  snprintf(sreq->in.user.username, sizeof sreq->in.user.username, "%s", op->username);
  if (app__submit(a, cl, sreq, on_login_user) != 0)
    respond_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
}

/* --- logout and me ------------------------------------------------------------------------ */

/* Submits a store request of `op` for the session token the request carries (cookie or bearer);
 * cb gets the result. Answers 401 at once if there is no token. */
static void submit_for_token(struct client *cl, struct http_request *req, enum store_op op,
                             store_cb cb) {
  char token[AUTH_TOKEN_LEN + 1];
  struct store_req *sreq;
  if (request_token(req, token) != 0) {
    respond_err(cl, PARLEY_EUNAUTHORIZED, "not signed in", NULL);
    return;
  }
  sreq = store_req_new(op);
  if (sreq == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  auth_token_hash(token, sreq->in.token_hash);
  if (app__submit(cl->app, cl, sreq, cb) != 0)
    respond_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
}

static void on_logout(struct store_req *req) {
  struct client *cl = req->data;
  struct app *a = cl->app;
  char h[200];
  if (req->status == 0)
    app__close_session(a, req->in.token_hash, NET_CLOSE_UNAUTHORIZED, "signed out");
  if (cl->conn == NULL)
    goto done;
  if (req->status) {
    respond_err(cl, req->status, NULL, NULL);
    goto done;
  }
  snprintf(h, sizeof h,
           "Set-Cookie: " AUTH_COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s\r\n",
           a->cfg.cookie_secure ? "; Secure" : "");
  respond_json(cl, 204, NULL, h);
done:
  store_req_free(req);
  app__client_unref(cl);
}

static void handle_logout(struct client *cl, struct http_request *req) {
  submit_for_token(cl, req, STORE_SESSION_DELETE, on_logout);
}

static void on_me(struct store_req *req) {
  struct client *cl = req->data;
  if (cl->conn == NULL)
    goto done;
  if (req->status)
    respond_err(cl, req->status, req->status == PARLEY_EUNAUTHORIZED ? "not signed in" : NULL,
                NULL);
  else
    respond_json(cl, 200, json_pack("{s:o}", "user", proto_user_json(&req->out.user)), NULL);
done:
  store_req_free(req);
  app__client_unref(cl);
}

/* --- password change: the current password is checked like a login (same slots, same
 * throttles), then the new one is hashed like a signup's, then stored with the user's other
 * sessions ended. ------------------------------------------------------------------------- */

static void on_password_set(struct store_req *req) {
  struct client *cl = req->data;
  if (req->status == 0)
    for (size_t i = 0; i < req->out.n_hashes; i++)
      app__close_session(cl->app, req->out.hashes[i], NET_CLOSE_UNAUTHORIZED, "password changed");
  if (cl->conn && cl->http_op)
    respond_json(cl, req->status ? parley_err_http_status(req->status) : 204, NULL, NULL);
  store_req_free(req);
  app__client_unref(cl);
}

static void password_store(struct client *cl, struct auth_work *w) {
  struct http_op *op = cl->http_op;
  struct store_req *req = store_req_new(STORE_PASSWORD_SET);
  if (req == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  req->in.user_id = op->user.id;
  memcpy(req->in.token_hash, op->token_hash, STORE_TOKEN_HASH_LEN);
  req->in.pwhash = w->hash;
  w->hash = NULL;
  if (app__submit(cl->app, cl, req, on_password_set) != 0)
    respond_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
}

static void password_hash_new(struct client *cl) {
  struct http_op *op = cl->http_op;
  op->password = op->new_password; /* moved: hash_run wipes it once auth has its copy */
  op->new_password = NULL;
  hash_submit(cl, HASH_SIGNUP);
}

static void on_password_user(struct store_req *req) {
  struct client *cl = req->data;
  struct http_op *op = cl->http_op;
  if (cl->conn == NULL || op == NULL)
    goto done;
  if (req->status) {
    respond_err(cl, req->status, NULL, NULL);
    goto done;
  }
  op->pwhash = req->out.pwhash ? strdup(req->out.pwhash) : NULL;
  if (op->pwhash == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    goto done;
  }
  hash_submit(cl, HASH_LOGIN);
done:
  store_req_free(req);
  app__client_unref(cl);
}

static void on_password_session(struct store_req *req) {
  struct client *cl = req->data;
  struct app *a = cl->app;
  struct http_op *op = cl->http_op;
  struct store_req *sreq;
  int64_t wait;
  if (cl->conn == NULL || op == NULL)
    goto done;
  if (req->status) {
    respond_err(cl, req->status, req->status == PARLEY_EUNAUTHORIZED ? "not signed in" : NULL,
                NULL);
    goto done;
  }
  op->user = req->out.user;
  snprintf(op->username, sizeof op->username, "%s", req->out.user.username);
  memcpy(op->token_hash, req->in.token_hash, STORE_TOKEN_HASH_LEN);
  /* A stolen session must not become a way to guess the password faster than a login. */
  if (a->cfg.rate_limits && (wait = login_wait(cl, op->username)) > 0) {
    respond_throttled(cl, wait, "too many attempts; try again later");
    goto done;
  }
  sreq = store_req_new(STORE_USER_BY_NAME);
  if (sreq == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    goto done;
  }
  snprintf(sreq->in.user.username, sizeof sreq->in.user.username, "%s", op->username);
  if (app__submit(a, cl, sreq, on_password_user) != 0)
    respond_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
done:
  store_req_free(req);
  app__client_unref(cl);
}

static void handle_password(struct client *cl, struct http_request *req) {
  json_t *body = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
  const char *password = json_string_value(json_object_get(body, "password"));
  const char *fresh = json_string_value(json_object_get(body, "newPassword"));
  struct http_op *op;
  const char *bad = NULL;

  if (!json_is_object(body))
    bad = "the body must be a JSON object";
  else if (password == NULL || strlen(password) < 1 || strlen(password) > AUTH_PASSWORD_MAX)
    bad = "password: the current password, 1-256 bytes";
  else if (fresh == NULL || strlen(fresh) < AUTH_PASSWORD_MIN || strlen(fresh) > AUTH_PASSWORD_MAX)
    bad = "newPassword: 8-256 bytes";
  op = bad ? NULL : calloc(1, sizeof *op);
  if (op) {
    cl->http_op = op;
    op->change = 1;
    op->password = strdup(password);
    op->new_password = strdup(fresh);
  }
  if (password)
    sodium_memzero((char *)password, strlen(password));
  if (fresh)
    sodium_memzero((char *)fresh, strlen(fresh));
  json_decref(body);
  if (bad) {
    respond_err(cl, PARLEY_EBAD_REQUEST, bad, NULL);
    return;
  }
  if (op == NULL || op->password == NULL || op->new_password == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  submit_for_token(cl, req, STORE_SESSION_GET, on_password_session);
}

/* --- WebSocket upgrade -------------------------------------------------------------------- */

static void ws_opened(struct client *cl) {
  struct app *a = cl->app;
  cl->is_ws = 1;
  cl->opened_ms = uv_now(a->loop);
  a->metrics.ws_opened++;
  DL_APPEND2(a->unauthed, cl, uprev, unext);
}

static void on_upgrade_session(struct store_req *req) {
  struct client *cl = req->data;
  struct app *a = cl->app;
  if (cl->conn == NULL)
    goto done;
  if (net_ws_accept(cl->conn) != 0)
    goto done;
  ws_opened(cl);
  if (req->status == 0) {
    if (app__user_attach(a, cl, &req->out.user, req->in.token_hash, req->out.expires_at) != 0)
      net_ws_close(cl->conn, NET_CLOSE_TOO_MANY, "too many connections for this user");
    else
      app__ws_hello(cl);
  }
  /* A stale cookie is no error here: the socket may still authenticate with a token. */
done:
  store_req_free(req);
  app__client_unref(cl);
}

static void handle_upgrade(struct client *cl, struct http_request *req) {
  char token[AUTH_TOKEN_LEN + 1];
  struct store_req *sreq;

  if (!origin_allowed(cl->app, req->origin)) {
    log_info("ws upgrade refused: origin not allowed");
    respond_err(cl, PARLEY_EFORBIDDEN, "origin not allowed", NULL);
    return;
  }
  if (auth_cookie_token(req->cookie, token) != 0) {
    if (net_ws_accept(cl->conn) == 0)
      ws_opened(cl);
    return;
  }
  sreq = store_req_new(STORE_SESSION_GET);
  if (sreq == NULL) {
    respond_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  auth_token_hash(token, sreq->in.token_hash);
  if (app__submit(cl->app, cl, sreq, on_upgrade_session) != 0)
    respond_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
}

/* --- health and metrics ------------------------------------------------------------------- */

static void handle_metrics(struct client *cl) {
  struct buf b;
  app__metrics_text(cl->app, &b);
  net_http_respond(cl->conn, 200, "text/plain; version=0.0.4", "Cache-Control: no-store\r\n",
                   b.data, b.len);
  buf_dispose(&b);
}

/* --- routing ------------------------------------------------------------------------------ */

void app__on_request(void *ud, struct net_conn *c, struct http_request *req) {
  struct app *a = ud;
  struct client *cl = net_conn_get_data(c);
  int is_get = req->method == HTTP_GET || req->method == HTTP_HEAD;
  int is_post = req->method == HTTP_POST;
  const char *p = req->path;

  if (cl == NULL) {
    cl = calloc(1, sizeof *cl);
    if (cl == NULL) {
      net_conn_abort(c);
      return;
    }
    cl->app = a;
    cl->conn = c;
    cl->refs = 1; /* the connection's, dropped in on_close */
    cl->on_free = op_free; /* a request in progress when the last reference goes */
    net_conn_peer(c, cl->peer, sizeof cl->peer);
    net_conn_set_data(c, cl);
  }
  a->metrics.http_requests++;
  if (a->shutting_down) {
    respond_err(cl, PARLEY_EUNAVAILABLE, "shutting down", "Retry-After: 1\r\n");
    return;
  }
  if (strcmp(p, "/ws") == 0) {
    if (!is_get || !req->wants_upgrade)
      respond_err(cl, PARLEY_EBAD_REQUEST, "this endpoint takes WebSocket upgrades only",
                  "Upgrade: websocket\r\n");
    else
      handle_upgrade(cl, req);
    return;
  }
  if (strncmp(p, "/api/", 5) == 0) {
    /* A cross-site page must not be able to act with the user's cookie (CSRF). */
    char bearer[AUTH_TOKEN_LEN + 1];
    /* A bearer token is no ambient credential: a cross-site page cannot send it, so only
     * requests without one are checked. */
    int has_bearer = auth_bearer_token(req->authorization, bearer) == 0;
    sodium_memzero(bearer, sizeof bearer);
    if ((is_post || req->method == HTTP_DELETE || req->method == HTTP_PATCH) && !has_bearer &&
        !origin_allowed(a, req->origin)) {
      respond_err(cl, PARLEY_EFORBIDDEN, "origin not allowed", NULL);
      return;
    }
    if (app__bots_request(cl, req) || app__api_request(cl, req))
      return;
    if (strcmp(p, "/api/signup") == 0 && is_post)
      handle_signup(cl, req);
    else if (strcmp(p, "/api/login") == 0 && is_post)
      handle_login(cl, req);
    else if (strcmp(p, "/api/logout") == 0 && is_post)
      handle_logout(cl, req);
    else if (strcmp(p, "/api/me") == 0 && is_get)
      submit_for_token(cl, req, STORE_SESSION_GET, on_me);
    else if (strcmp(p, "/api/password") == 0 && is_post)
      handle_password(cl, req);
    else if (strcmp(p, "/api/avatar") == 0 && (is_post || req->method == HTTP_DELETE))
      app__avatar_request(cl, req);
    else if (strcmp(p, "/api/signup") == 0 || strcmp(p, "/api/login") == 0 ||
             strcmp(p, "/api/logout") == 0 || strcmp(p, "/api/me") == 0 ||
             strcmp(p, "/api/password") == 0 || strcmp(p, "/api/avatar") == 0)
      respond_json(cl, 405,
                   json_pack("{s:{s:s, s:s}}", "error", "code", "bad_request", "message",
                             "method not allowed"),
                   NULL);
    else
      respond_err(cl, PARLEY_ENOT_FOUND, "no such endpoint", NULL);
    return;
  }
  if (strcmp(p, "/healthz") == 0 && is_get) {
    respond_json(cl, 200, json_pack("{s:b}", "ok", 1), NULL);
    return;
  }
  if (strcmp(p, "/metrics") == 0 && is_get) {
    handle_metrics(cl);
    return;
  }
  if (strncmp(p, "/avatars/", 9) == 0 && is_get) {
    app__avatar_serve(cl, req, p + 9);
    return;
  }
  if (!is_get) {
    respond_json(cl, 405,
                 json_pack("{s:{s:s, s:s}}", "error", "code", "bad_request", "message",
                           "method not allowed"),
                 NULL);
    return;
  }
  static_serve(c, a->cfg.web_dir, p, req->method == HTTP_HEAD);
}

void app__throttles_sweep(struct app *a, int64_t now) {
  struct app_throttle *th, *ttmp;
  /* A throttle entry that carries no more information is dropped: its bucket has refilled,
   * its lockout is over, its failures are a day old, and (a "p:" entry) its address last
   * logged in as the user longer ago than a session lasts. */
  HASH_ITER(hh, a->throttles, th, ttmp) {
    double rate = a->cfg.login_rate, burst = a->cfg.login_burst;
    if (th->key[0] == 'u')
      rate = a->cfg.login_user_rate, burst = a->cfg.login_user_burst;
    else if (th->key[0] == 's')
      rate = a->cfg.signup_rate, burst = a->cfg.signup_burst;
    if ((th->rl.last_ms == 0 || (double)(now - th->rl.last_ms) * rate / 1000.0 >= burst) &&
        th->locked_until <= now &&
        (th->last_failure == 0 || now - th->last_failure > THROTTLE_MEMORY_MS) &&
        (th->last_success == 0 || now - th->last_success > a->cfg.session_ttl_ms)) {
      HASH_DEL(a->throttles, th);
      free(th);
    }
  }
}

void app__throttles_free(struct app *a) {
  struct app_throttle *th, *ttmp;
  HASH_ITER(hh, a->throttles, th, ttmp) {
    HASH_DEL(a->throttles, th);
    free(th);
  }
}
