/* churn.c - throttling of a chat's membership churn events in proportion to its size.
 *
 * A join tells every member (`participant.joined`) and a sub tells every subscriber
 * (`chat.active`, rooms.c), so N users arriving in one chat cost N events per user, O(N^2) in
 * all: a connect storm of 1,000 users into one chat made ~570k frames. Here a chat's churn
 * events go out at most once per window of CHURN_RECIPIENTS_PER_MS recipients per ms (capped at
 * CHURN_WINDOW_MAX_MS): the first one after a quiet spell leaves at once (a small chat's window
 * is a few ms, so nothing changes there), the ones within the window wait and leave as one. The
 * frames a chat's churn costs per second are then bounded whatever its size, and a storm costs
 * O(N) frames. A batched `participant.joined` names every joiner in `users` (docs/protocol.md).
 */
#include "app/churn.h"

#include <stdlib.h>
#include <string.h>

#include "app/clients.h"
#include "app/cluster.h"
#include "proto/proto.h"

#define CHURN_RECIPIENTS_PER_MS 1
#define CHURN_WINDOW_MAX_MS 2000

/* The joins of one chat waiting for its window, and when its last event left. */
struct churn_join {
  char slug[STORE_SLUG_MAX + 1];
  uint64_t sent;     /* loop ms of the last participant.joined */
  json_t *joiners;   /* [{user, role, presence}] waiting; NULL: none */
  json_int_t count;  /* participantCount after the last of them */
  int64_t *ids;      /* whom to tell: the members as of the last join */
  size_t n_ids, cap_ids;
  UT_hash_handle hh;
};

uint64_t app__churn_window(size_t recipients) {
  uint64_t w = recipients / CHURN_RECIPIENTS_PER_MS;
  return w > CHURN_WINDOW_MAX_MS ? CHURN_WINDOW_MAX_MS : w;
}

/* Nothing to do: the loop turn it wakes runs on_before_flush, which sends what is due. */
static void on_churn_timer(uv_timer_t *t) { (void)t; }

void app__churn_wake(struct app *a, uint64_t due) {
  uint64_t now = uv_now(a->loop);
  if (!a->churn_timer_on) {
    uv_timer_init(a->loop, &a->churn_timer);
    a->churn_timer.data = a;
    a->churn_timer_on = 1;
  }
  if (uv_is_active((uv_handle_t *)&a->churn_timer) && a->churn_due <= due)
    return;
  a->churn_due = due;
  uv_timer_start(&a->churn_timer, on_churn_timer, due > now ? due - now : 0, 0);
}

/* One participant.joined: the last joiner in user/role/presence as before; with several, all of
 * them (in order) in `users`. */
static void join_send(struct app *a, struct churn_join *j) {
  size_t n = json_array_size(j->joiners);
  json_t *last = json_array_get(j->joiners, n - 1);
  json_t *fields = json_pack("{s:s, s:O, s:O, s:I, s:O}", "chat", j->slug, "user",
                             json_object_get(last, "user"), "role", json_object_get(last, "role"),
                             "participantCount", j->count, "presence",
                             json_object_get(last, "presence"));
  if (fields && n > 1)
    json_object_set(fields, "users", j->joiners);
  if (fields) {
    size_t len;
    char *json = proto_event("participant.joined", fields, &len);
    if (json) {
      app__bus_publish_notify(a, j->ids, j->n_ids, json, len);
      app__notify_here(a, j->ids, j->n_ids, json, len);
      free(json);
    }
  }
  json_decref(j->joiners);
  j->joiners = NULL;
  j->n_ids = 0;
  j->sent = uv_now(a->loop);
  a->churn_pending--;
}

void app__churn_join(struct app *a, const char *slug, json_t *joiner, json_int_t count,
                     const int64_t *ids, size_t n) {
  uint64_t now = uv_now(a->loop);
  struct churn_join *j;

  HASH_FIND_STR(a->churn_joins, slug, j);
  if (j == NULL) {
    j = calloc(1, sizeof *j);
    if (j == NULL) {
      json_decref(joiner);
      return;
    }
    snprintf(j->slug, sizeof j->slug, "%s", slug);
    HASH_ADD_STR(a->churn_joins, slug, j);
  }
  if (j->joiners == NULL) {
    j->joiners = json_array();
    if (j->joiners == NULL) {
      json_decref(joiner);
      return;
    }
    a->churn_pending++;
  }
  json_array_append_new(j->joiners, joiner);
  j->count = count;
  if (n > j->cap_ids) {
    int64_t *grown = realloc(j->ids, n * sizeof *grown);
    if (grown == NULL) {
      join_send(a, j); /* the joiners so far, to the members known so far */
      return;
    }
    j->ids = grown;
    j->cap_ids = n;
  }
  if (n)
    memcpy(j->ids, ids, n * sizeof *j->ids);
  j->n_ids = n;
  if (j->sent == 0 || now >= j->sent + app__churn_window(n))
    join_send(a, j);
  else
    app__churn_wake(a, j->sent + app__churn_window(n));
}

static void join_free(struct app *a, struct churn_join *j) {
  HASH_DEL(a->churn_joins, j);
  if (j->joiners) {
    json_decref(j->joiners);
    a->churn_pending--;
  }
  free(j->ids);
  free(j);
}

void app__churn_flush(struct app *a) {
  struct churn_join *j, *tmp;
  uint64_t now;
  if (a->churn_joins == NULL)
    return;
  now = uv_now(a->loop);
  HASH_ITER(hh, a->churn_joins, j, tmp) {
    uint64_t due = j->sent + app__churn_window(j->n_ids);
    if (j->joiners == NULL) {
      if (now >= j->sent + CHURN_WINDOW_MAX_MS)
        join_free(a, j); /* quiet for a whole window: the next join leaves at once anyway */
    } else if (now >= due) {
      join_send(a, j);
    } else {
      app__churn_wake(a, due);
    }
  }
}

void app__churn_dispose(struct app *a) {
  struct churn_join *j, *tmp;
  HASH_ITER(hh, a->churn_joins, j, tmp) {
    join_free(a, j);
  }
  if (a->churn_timer_on)
    uv_close((uv_handle_t *)&a->churn_timer, NULL);
  a->churn_timer_on = 0;
}
