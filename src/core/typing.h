/* typing.h - who is typing in one chat: a small set with a time-to-live per typer. Pure.
 *
 * Typers are kept in the order they started, so the names shown do not jump around. Nothing here
 * is persisted: a restart clears everyone, which is right for something that lasts seconds.
 */
#ifndef PARLEY_CORE_TYPING_H
#define PARLEY_CORE_TYPING_H

#include <stddef.h>
#include <stdint.h>

struct typing_entry {
  int64_t user_id;
  int64_t expires_at;
};

struct typing_set {
  struct typing_entry *e; /* owned */
  size_t n, cap;
};

/* Marks user_id as typing until now + ttl_ms. Returns 1 if the set changed (a new typer), 0 if
 * it only refreshed, or PARLEY_EINTERNAL on OOM. */
int typing_on(struct typing_set *t, int64_t user_id, int64_t now, int64_t ttl_ms);

/* Removes user_id. Returns 1 if it was typing. */
int typing_off(struct typing_set *t, int64_t user_id);

/* Removes typers whose time is up. Returns 1 if any was removed. */
int typing_expire(struct typing_set *t, int64_t now);

void typing_dispose(struct typing_set *t);

#endif
