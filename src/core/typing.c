/* typing.c - typing sets with a TTL (typing.h). */
#include "core/typing.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

int typing_on(struct typing_set *t, int64_t user_id, int64_t now, int64_t ttl_ms) {
  for (size_t i = 0; i < t->n; i++) {
    if (t->e[i].user_id == user_id) {
      t->e[i].expires_at = now + ttl_ms;
      return 0;
    }
  }
  if (t->n == t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 4;
    struct typing_entry *n = realloc(t->e, ncap * sizeof *n);
    if (n == NULL)
      return PARLEY_EINTERNAL;
    t->e = n;
    t->cap = ncap;
  }
  t->e[t->n++] = (struct typing_entry){user_id, now + ttl_ms};
  return 1;
}

static void typing__remove_at(struct typing_set *t, size_t i) {
  memmove(&t->e[i], &t->e[i + 1], (t->n - i - 1) * sizeof t->e[0]);
  t->n--;
}

int typing_off(struct typing_set *t, int64_t user_id) {
  for (size_t i = 0; i < t->n; i++) {
    if (t->e[i].user_id == user_id) {
      typing__remove_at(t, i);
      return 1;
    }
  }
  return 0;
}

int typing_expire(struct typing_set *t, int64_t now) {
  int changed = 0;
  for (size_t i = 0; i < t->n;) {
    if (t->e[i].expires_at <= now) {
      typing__remove_at(t, i);
      changed = 1;
    } else {
      i++;
    }
  }
  return changed;
}

void typing_dispose(struct typing_set *t) {
  free(t->e);
  memset(t, 0, sizeof *t);
}
