/* app_avatar.c - the avatar routes (issue 18): POST /api/avatar (the raw picture as the body),
 * DELETE /api/avatar, and GET /avatars/<name> that serves them.
 *
 * An upload is authenticated first, then decoded, scaled and encoded again on the thread pool
 * (media/image.h: a picture of up to 4096x4096 pixels costs tens of milliseconds, which the
 * loop must not spend), at most AVATAR_JOBS_MAX at a time; then stored by the SHA-256 of what
 * was encoded, so the URL changes with the picture and can be cached forever.
 */
#include <jansson.h>
#include <llhttp.h> /* HTTP_DELETE */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_http.h"
#include "app/clients.h"
#include "app/ops.h"
#include "auth/auth.h"
#include "common/error.h"
#include "media/image.h"

#define AVATAR_JOBS_MAX 2 /* pictures being transcoded at once; more wait for a 503's retry */

struct avatar_job {
  uv_work_t work;
  struct client *cl;       /* a reference, until the job ends */
  enum image_type type;
  uint8_t *in, *out;       /* owned */
  size_t in_len, out_len;
  const char *why;         /* static: why the picture was refused */
  int status;
  int64_t user_id;
  char name[STORE_AVATAR_NAME_MAX + 1];
};

/* The answers, as app_http.c gives them (app_http.c routes here, so this file cannot call
 * back into it). */
static void avatar_json(struct client *cl, int status, json_t *body, const char *headers) {
  char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
  char h[256];
  snprintf(h, sizeof h, "Cache-Control: no-store\r\n%s", headers ? headers : "");
  json_decref(body);
  if (cl->conn)
    net_http_respond(cl->conn, status, s ? "application/json" : NULL, h, s, s ? strlen(s) : 0);
  free(s);
}

static void avatar_err(struct client *cl, int err, const char *msg, const char *headers) {
  avatar_json(cl, parley_err_http_status(err),
                 json_pack("{s:{s:s, s:s}}", "error", "code", parley_err_name(err), "message",
                           msg ? msg : parley_strerror(err)),
                 headers);
}

/* Looks up the session the request carries (cookie or bearer token); cb gets the answer with
 * ctx in its request. Returns 0, or an error after answering (cb never runs, ctx stays ours). */
static int avatar_session(struct client *cl, struct http_request *req, store_cb cb, void *ctx) {
  char token[AUTH_TOKEN_LEN + 1];
  struct store_req *sreq;
  int err;
  if (auth_bearer_token(req->authorization, token) != 0 &&
      auth_cookie_token(req->cookie, token) != 0) {
    avatar_err(cl, PARLEY_EUNAUTHORIZED, "not signed in", NULL);
    return PARLEY_EUNAUTHORIZED;
  }
  sreq = store_req_new(STORE_SESSION_GET);
  if (sreq == NULL) {
    avatar_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return PARLEY_EINTERNAL;
  }
  auth_token_hash(token, sreq->in.token_hash);
  sodium_memzero(token, sizeof token);
  sreq->ctx = ctx;
  err = app__submit(cl->app, cl, sreq, cb);
  if (err)
    avatar_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
  return err;
}

static void job_free(struct avatar_job *job) {
  if (job == NULL)
    return;
  free(job->in);
  free(job->out);
  free(job);
}

static void on_avatar_set(struct store_req *req) {
  struct client *cl = req->data;
  if (req->status == 0)
    app__user_announce(cl->app, req);
  if (cl->conn) {
    if (req->status)
      avatar_err(cl, req->status, NULL, NULL);
    else
      avatar_json(cl, 200, json_pack("{s:o}", "user", proto_user_json(&req->out.user)), NULL);
  }
  store_req_free(req);
  app__client_unref(cl);
}

/* Stores the job's picture (job->out moved into the request), or with none removes the user's. */
static void avatar_store(struct client *cl, int64_t user_id, struct avatar_job *job) {
  struct store_req *req = store_req_new(STORE_AVATAR_SET);
  if (req == NULL || (job && (req->in.query = strdup(job->name)) == NULL)) {
    store_req_free(req);
    avatar_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  req->in.user_id = user_id;
  if (job) {
    req->in.data = job->out;
    req->in.data_len = job->out_len;
    job->out = NULL;
  }
  if (app__submit(cl->app, cl, req, on_avatar_set) != 0)
    avatar_err(cl, PARLEY_EUNAVAILABLE, NULL, NULL);
}

static void avatar_work(uv_work_t *w) {
  struct avatar_job *job = w->data;
  unsigned char hash[crypto_hash_sha256_BYTES];
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  job->status = image_avatar(job->type, job->in, job->in_len, &job->out, &job->out_len, &job->why);
  if (job->status)
    return;
  crypto_hash_sha256(hash, job->out, job->out_len);
  sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
  snprintf(job->name, sizeof job->name, "%s.%s", hex, image_ext(job->type));
}

static void avatar_worked(uv_work_t *w, int status) {
  struct avatar_job *job = w->data;
  struct client *cl = job->cl;
  cl->app->avatar_jobs--;
  if (cl->conn == NULL)
    goto done;
  if (status != 0)
    avatar_err(cl, PARLEY_EINTERNAL, NULL, NULL);
  else if (job->status)
    avatar_err(cl, job->status, job->status == PARLEY_EBAD_REQUEST ? job->why : NULL, NULL);
  else
    avatar_store(cl, job->user_id, job);
done:
  job_free(job);
  app__client_unref(cl);
}

static void on_avatar_session(struct store_req *req) {
  struct client *cl = req->data;
  struct app *a = cl->app;
  struct avatar_job *job = req->ctx;
  if (cl->conn == NULL)
    goto done;
  if (req->status) {
    avatar_err(cl, req->status, req->status == PARLEY_EUNAUTHORIZED ? "not signed in" : NULL,
                  NULL);
    goto done;
  }
  if (job == NULL) { /* DELETE */
    avatar_store(cl, req->out.user.id, NULL);
    goto done;
  }
  if (a->avatar_jobs >= AVATAR_JOBS_MAX) {
    a->metrics.rejected_rate++;
    avatar_err(cl, PARLEY_EUNAVAILABLE, "the server is busy; try again in a moment",
                  "Retry-After: 1\r\n");
    goto done;
  }
  job->user_id = req->out.user.id;
  job->cl = app__client_ref(cl);
  job->work.data = job;
  if (uv_queue_work(a->loop, &job->work, avatar_work, avatar_worked) != 0) {
    app__client_unref(cl);
    avatar_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    goto done;
  }
  a->avatar_jobs++;
  job = NULL; /* the work's now */
done:
  job_free(job);
  store_req_free(req);
  app__client_unref(cl);
}

void app__avatar_request(struct client *cl, struct http_request *req) {
  struct avatar_job *job = NULL;
  if (req->method != HTTP_DELETE) {
    enum image_type type = image_type_of_mime(req->content_type);
    if (type == IMAGE_NONE) {
      avatar_err(cl, PARLEY_EBAD_REQUEST,
                    "Content-Type: the picture must be image/png, image/jpeg or image/webp", NULL);
      return;
    }
    job = calloc(1, sizeof *job);
    if (job == NULL || (job->in = malloc(req->body.len ? req->body.len : 1)) == NULL) {
      job_free(job);
      avatar_err(cl, PARLEY_EINTERNAL, NULL, NULL);
      return;
    }
    job->type = type;
    job->in_len = req->body.len;
    if (req->body.len)
      memcpy(job->in, req->body.data, req->body.len);
  }
  if (avatar_session(cl, req, on_avatar_session, job) != 0)
    job_free(job);
}

static void on_avatar_get(struct store_req *req) {
  struct client *cl = req->data;
  const char *ext = strrchr(req->in.query, '.');
  if (cl->conn == NULL)
    goto done;
  if (req->status)
    avatar_err(cl, req->status, req->status == PARLEY_ENOT_FOUND ? "no such avatar" : NULL,
                  NULL);
  else
    /* The name is the content's hash: what it names never changes. */
    net_http_respond(cl->conn, 200, image_mime_of_ext(ext + 1),
                     "Cache-Control: public, max-age=31536000, immutable\r\n", req->out.data,
                     req->out.data_len);
done:
  store_req_free(req);
  app__client_unref(cl);
}

void app__avatar_serve(struct client *cl, struct http_request *req, const char *name) {
  const char *ext = strrchr(name, '.');
  struct store_req *sreq;
  (void)req;
  if (ext == NULL || image_mime_of_ext(ext + 1) == NULL || strlen(name) > STORE_AVATAR_NAME_MAX) {
    avatar_err(cl, PARLEY_ENOT_FOUND, "no such avatar", NULL);
    return;
  }
  sreq = store_req_new(STORE_AVATAR_GET);
  if (sreq == NULL || (sreq->in.query = strdup(name)) == NULL) {
    store_req_free(sreq);
    avatar_err(cl, PARLEY_EINTERNAL, NULL, NULL);
    return;
  }
  sreq->sheddable = 1; /* a client's read: refused at once when the store is behind */
  if (app__submit(cl->app, cl, sreq, on_avatar_get) != 0)
    avatar_err(cl, PARLEY_EUNAVAILABLE, NULL, "Retry-After: 1\r\n");
}
