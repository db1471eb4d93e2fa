/* clients.c - the bottom of src/app/: sockets and users here, the clock, store submission on a
 * client's behalf, and sending an encoded event to the sockets here of some users.
 */
#include "app/clients.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "common/clock.h"
#include "proto/proto.h"

int64_t app__now(const struct app *a) { return a->clock ? a->clock() : clock_wall_ms(); }

struct client *app__client_ref(struct client *cl) {
  cl->refs++;
  return cl;
}

void app__client_unref(struct client *cl) {
  if (--cl->refs == 0) {
    if (cl->on_free)
      cl->on_free(cl); /* e.g. a request still in progress when the connection went away */
    if (cl->au)
      cl->au->pins--; /* app__presence_tick frees it once offline and unpinned */
    free(cl);
  }
}

int app__submit(struct app *a, struct client *cl, struct store_req *req, store_cb cb) {
  int err;
  if (cl)
    app__client_ref(cl);
  /* The time the op was asked for: kept when the caller set it already, since other inputs may
   * have been computed from it (an invitation's expires_at is in.now + ttl: taking the clock
   * again here made a 1 s ttl 999 ms when the millisecond turned in between). */
  if (req->in.now == 0)
    req->in.now = app__now(a);
  req->order = cl; /* one socket's ops take effect in the order it sent them */
  err = store_submit(a->store, req, cb, cl);
  if (err) {
    if (cl)
      app__client_unref(cl);
    store_req_free(req);
  }
  return err;
}

struct app_user *app__user_find(struct app *a, int64_t id) {
  struct app_user *au;
  HASH_FIND(hh, a->users, &id, sizeof id, au);
  return au;
}

json_t *app__user_json(struct app *a, int64_t id) {
  struct app_user *au = app__user_find(a, id);
  const struct store_user *u = au ? &au->user : app__api_user(a, id);
  return u ? proto_user_json(u) : NULL;
}

void app__metrics_fanned_out(struct app *a, uint64_t recv_ns) {
  struct app_metrics *m = &a->metrics;
  if (m->turn_n == m->turn_cap) {
    size_t cap = m->turn_cap ? m->turn_cap * 2 : 256;
    uint64_t *p = realloc(m->turn_recv, cap * sizeof *p);
    if (p == NULL)
      return; /* a sample less; the message itself is unaffected */
    m->turn_recv = p;
    m->turn_cap = cap;
  }
  m->turn_recv[m->turn_n++] = recv_ns;
}

struct outq_chunk *app__event_frame(const char *ev, json_t *fields) {
  struct outq_chunk *frame;
  size_t len;
  char *json = proto_event(ev, fields, &len);
  if (json == NULL)
    return NULL;
  frame = net_ws_frame_text(json, len);
  free(json);
  return frame;
}

void app__notify_frame(struct app *a, const int64_t *ids, size_t n, struct outq_chunk *frame) {
  app__notify_frame_but(a, ids, n, frame, NULL, NULL);
}

void app__notify_frame_but(struct app *a, const int64_t *ids, size_t n, struct outq_chunk *frame,
                           int (*skip)(struct client *cl, const void *arg), const void *arg) {
  /* The same id twice (say, inviter and invitee lists overlapping) gets one event. Marking the
   * users this call reached keeps that linear: a nested search over the ids was quadratic, 82%
   * of a 12,000-member chat's chat.update. */
  uint64_t turn = ++a->notify_turn;
  for (size_t i = 0; i < n; i++) {
    struct app_user *au;
    struct client *cl;
    HASH_FIND(hh, a->users, &ids[i], sizeof ids[i], au);
    if (au == NULL || au->notified == turn)
      continue;
    au->notified = turn;
    DL_FOREACH2(au->clients, cl, unext) {
      if (cl->conn && (skip == NULL || !skip(cl, arg)))
        net_ws_send_frame(cl->conn, frame);
    }
  }
}

void app__notify_here(struct app *a, const int64_t *ids, size_t n, const char *json, size_t len) {
  struct outq_chunk *frame = net_ws_frame_text(json, len);
  if (frame == NULL)
    return;
  app__notify_frame(a, ids, n, frame);
  outq_chunk_unref(frame);
}

void app__notify_local(struct app *a, const int64_t *ids, size_t n, const char *ev,
                       json_t *fields) {
  struct outq_chunk *frame = app__event_frame(ev, fields);
  if (frame == NULL)
    return;
  app__notify_frame(a, ids, n, frame);
  outq_chunk_unref(frame);
}

void app__close_session_here(struct app *a, const uint8_t *session_hash, uint16_t code,
                             const char *reason) {
  struct app_user *au, *tmp;
  HASH_ITER(hh, a->users, au, tmp) {
    struct client *cl, *ctmp;
    DL_FOREACH_SAFE2(au->clients, cl, ctmp, unext) {
      if (cl->conn && memcmp(cl->session_hash, session_hash, STORE_TOKEN_HASH_LEN) == 0)
        net_ws_close(cl->conn, code, reason);
    }
  }
}

/* ---- users of the HTTP API with no socket here (issue 19, app_api.c) ---- */

struct api_rl {
  int64_t user_id;
  struct ratelimit rl;
  struct store_user user;  /* names, for typing lists */
  int64_t used_at;         /* Unix ms of its last HTTP op */
  UT_hash_handle hh;
};
struct app_api_rl {
  struct api_rl *by_user;
  size_t n;
};
#define API_RL_MAX 100000 /* socketless users held at once */
/* Kept this long after their last op: longer than any typing TTL, so a bot that typed over
 * HTTP stays named in the typing list as long as it is listed. */
#define API_USER_KEEP_MS (11 * 60 * 1000)

static struct api_rl *api_entry(struct app *a, int64_t user_id, int create);

void app__api_user_seen(struct app *a, const struct store_user *u) {
  struct api_rl *r = api_entry(a, u->id, 1);
  if (r) {
    r->user = *u;
    r->used_at = app__now(a);
  }
}

static struct api_rl *api_entry(struct app *a, int64_t user_id, int create) {
  struct api_rl *r = NULL;
  if (a->api_rl == NULL && (!create || (a->api_rl = calloc(1, sizeof *a->api_rl)) == NULL))
    return NULL;
  HASH_FIND(hh, a->api_rl->by_user, &user_id, sizeof user_id, r);
  if (r || !create)
    return r;
  if (a->api_rl->n >= API_RL_MAX || (r = calloc(1, sizeof *r)) == NULL)
    return NULL;
  r->user_id = user_id;
  r->used_at = app__now(a);
  HASH_ADD(hh, a->api_rl->by_user, user_id, sizeof r->user_id, r);
  a->api_rl->n++;
  return r;
}

struct ratelimit *app__api_send_rl(struct app *a, int64_t user_id) {
  struct api_rl *r = api_entry(a, user_id, 1);
  return r ? &r->rl : NULL;
}

const struct store_user *app__api_user(struct app *a, int64_t user_id) {
  struct api_rl *r = api_entry(a, user_id, 0);
  return r && r->user.id ? &r->user : NULL;
}

void app__api_rl_sweep(struct app *a, int64_t now) {
  struct api_rl *r, *tmp;
  if (a->api_rl == NULL)
    return;
  HASH_ITER(hh, a->api_rl->by_user, r, tmp) {
    if (now - r->used_at > API_USER_KEEP_MS && now - r->rl.last_ms > API_USER_KEEP_MS) {
      HASH_DEL(a->api_rl->by_user, r);
      free(r);
      a->api_rl->n--;
    }
  }
}

void app__api_rl_free(struct app *a) {
  struct api_rl *r, *tmp;
  if (a->api_rl == NULL)
    return;
  HASH_ITER(hh, a->api_rl->by_user, r, tmp) {
    HASH_DEL(a->api_rl->by_user, r);
    free(r);
  }
  free(a->api_rl);
  a->api_rl = NULL;
}
