/* presence_batch.c - presence events coalesced per recipient (see presence_batch.h).
 *
 * Each change is kept once, encoded once (the presence object's text, refcounted) and shared by
 * every recipient whose window holds it; a batch is those texts joined, so a storm costs one
 * encoding per change plus one frame per recipient per window. A recipient's pending list is
 * bounded (PEND_MAX): when it fills, the batch leaves at once.
 */
#include "app/presence_batch.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "app/churn.h"
#include "common/log.h"
#include "net/net.h"

#define PEND_MAX 4096 /* changes waiting for one recipient; past it the batch leaves now */

/* One change: the presence object's text ({"user":...,"state":...,"lastSeen":...}). */
struct pres_change {
  int refs;
  int64_t user_id;
  size_t len;
  char text[];
};

static const char EV_PREFIX[] = "{\"ev\":\"presence\",";
#define EV_PREFIX_LEN (sizeof EV_PREFIX - 1)

static void change_unref(struct pres_change *c) {
  if (--c->refs == 0)
    free(c);
}

static void send_text(struct app_user *au, const char *json, size_t len) {
  struct outq_chunk *frame = net_ws_frame_text(json, len);
  struct client *cl;
  if (frame == NULL)
    return;
  DL_FOREACH2(au->clients, cl, unext) {
    if (cl->conn)
      net_ws_send_frame(cl->conn, frame);
  }
  outq_chunk_unref(frame);
}

struct keep {
  int64_t user_id;
  size_t at;
};

static int keep_cmp(const void *x, const void *y) {
  const struct keep *p = x, *q = y;
  if (p->user_id != q->user_id)
    return p->user_id < q->user_id ? -1 : 1;
  return p->at < q->at ? -1 : p->at > q->at;
}

/* Marks in `drop` every change of au's batch that a later change of the same user replaces. */
static int batch_dedupe(struct app_user *au, unsigned char *drop) {
  struct keep *k = malloc(au->pres_n * sizeof *k);
  if (k == NULL)
    return -1;
  for (size_t i = 0; i < au->pres_n; i++)
    k[i] = (struct keep){au->pres_pend[i]->user_id, i};
  qsort(k, au->pres_n, sizeof *k, keep_cmp);
  for (size_t i = 0; i + 1 < au->pres_n; i++)
    if (k[i].user_id == k[i + 1].user_id)
      drop[k[i].at] = 1;
  free(k);
  return 0;
}

/* Sends au's batch as one event, and starts its next window. */
static void batch_send(struct app *a, struct app_user *au) {
  size_t n = au->pres_n, total = EV_PREFIX_LEN + 16, used = 0;
  unsigned char *drop = calloc(n ? n : 1, 1);
  struct pres_change *last = n ? au->pres_pend[n - 1] : NULL;
  char *out = NULL;

  if (last && drop && batch_dedupe(au, drop) == 0) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
      if (!drop[i]) {
        total += au->pres_pend[i]->len + 1;
        kept++;
      }
    total += last->len;
    out = malloc(total);
    if (out && kept == 1) {
      /* {"ev":"presence", + the object without its '{' */
      memcpy(out, EV_PREFIX, EV_PREFIX_LEN);
      memcpy(out + EV_PREFIX_LEN, last->text + 1, last->len - 1);
      used = EV_PREFIX_LEN + last->len - 1;
    } else if (out) {
      /* {"ev":"presence", <last's fields>, "users":[<each kept object>]} */
      static const char USERS[] = ",\"users\":[";
      int first = 1;
      memcpy(out, EV_PREFIX, EV_PREFIX_LEN);
      used = EV_PREFIX_LEN;
      memcpy(out + used, last->text + 1, last->len - 2); /* without '{' and '}' */
      used += last->len - 2;
      memcpy(out + used, USERS, sizeof USERS - 1);
      used += sizeof USERS - 1;
      for (size_t i = 0; i < n; i++) {
        if (drop[i])
          continue;
        if (!first)
          out[used++] = ',';
        first = 0;
        memcpy(out + used, au->pres_pend[i]->text, au->pres_pend[i]->len);
        used += au->pres_pend[i]->len;
      }
      out[used++] = ']';
      out[used++] = '}';
    }
  }
  if (out)
    send_text(au, out, used);
  else if (last)
    log_warn("presence batch of user %lld dropped: out of memory", (long long)au->id);
  free(out);
  free(drop);
  for (size_t i = 0; i < n; i++)
    change_unref(au->pres_pend[i]);
  au->pres_n = 0;
  au->pres_quiet_until = uv_now(a->loop) + au->pres_window;
  if (au->pres_listed) {
    au->pres_listed = 0;
    DL_DELETE2(a->pres_pending, au, pres_prev, pres_next);
  }
}

static int pend(struct app *a, struct app_user *au, struct pres_change *c) {
  if (au->pres_n == au->pres_cap) {
    size_t ncap = au->pres_cap ? au->pres_cap * 2 : 8;
    struct pres_change **p = realloc(au->pres_pend, ncap * sizeof *p);
    if (p == NULL)
      return -1;
    au->pres_pend = p;
    au->pres_cap = ncap;
  }
  c->refs++;
  au->pres_pend[au->pres_n++] = c;
  if (!au->pres_listed) {
    au->pres_listed = 1;
    DL_APPEND2(a->pres_pending, au, pres_prev, pres_next);
    app__churn_wake(a, au->pres_quiet_until);
  }
  if (au->pres_n >= PEND_MAX)
    batch_send(a, au);
  return 0;
}

void app__presence_batch_deliver(struct app *a, int64_t user_id, const int64_t *ids, size_t n,
                                 const char *json, size_t len, size_t audience) {
  uint64_t now = uv_now(a->loop), window = app__churn_window(audience);
  uint64_t turn = ++a->notify_turn;
  struct outq_chunk *frame = NULL;
  struct pres_change *c = NULL;

  if (len > EV_PREFIX_LEN && memcmp(json, EV_PREFIX, EV_PREFIX_LEN) == 0) {
    c = malloc(sizeof *c + len - EV_PREFIX_LEN + 1);
    if (c) {
      c->refs = 1; /* this call's */
      c->user_id = user_id;
      c->text[0] = '{';
      memcpy(c->text + 1, json + EV_PREFIX_LEN, len - EV_PREFIX_LEN);
      c->len = len - EV_PREFIX_LEN + 1;
    }
  }
  for (size_t i = 0; i < n; i++) {
    struct app_user *au;
    HASH_FIND(hh, a->users, &ids[i], sizeof ids[i], au);
    if (au == NULL || au->notified == turn || au->clients == NULL)
      continue;
    au->notified = turn;
    if (window > au->pres_window || now >= au->pres_quiet_until + au->pres_window)
      au->pres_window = window; /* a quiet spell forgets an old, wider window */
    if (c && (au->pres_n > 0 || now < au->pres_quiet_until) && pend(a, au, c) == 0)
      continue;
    /* Quiet: at once, and the window starts. */
    if (frame == NULL && (frame = net_ws_frame_text(json, len)) == NULL)
      continue;
    {
      struct client *cl;
      DL_FOREACH2(au->clients, cl, unext) {
        if (cl->conn)
          net_ws_send_frame(cl->conn, frame);
      }
    }
    au->pres_quiet_until = now + au->pres_window;
  }
  if (frame)
    outq_chunk_unref(frame);
  if (c)
    change_unref(c);
}

void app__presence_batch_flush(struct app *a) {
  uint64_t now, next = 0;
  struct app_user *au, *tmp;
  if (a->pres_pending == NULL)
    return;
  now = uv_now(a->loop);
  DL_FOREACH_SAFE2(a->pres_pending, au, tmp, pres_next) {
    if (au->pres_quiet_until <= now)
      batch_send(a, au);
    else if (next == 0 || au->pres_quiet_until < next)
      next = au->pres_quiet_until;
  }
  if (next)
    app__churn_wake(a, next);
}

void app__presence_batch_forget(struct app *a, struct app_user *au) {
  for (size_t i = 0; i < au->pres_n; i++)
    change_unref(au->pres_pend[i]);
  free(au->pres_pend);
  au->pres_pend = NULL;
  au->pres_n = au->pres_cap = 0;
  if (au->pres_listed) {
    au->pres_listed = 0;
    DL_DELETE2(a->pres_pending, au, pres_prev, pres_next);
  }
}
