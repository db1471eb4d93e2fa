/* store_open.c - picks the backend for a store URI and opens it.
 *
 * Kept apart from store.c so that the store's core (lanes, group commit, admission) never names
 * a backend: the backends call store.c's helpers, and only this file, above both, knows which
 * backends exist (scripts/callgraph-check.py would see a circle otherwise).
 */
#include <assert.h>
#include <string.h>

#include "store/store.h"

int store_open(struct store **out, uv_loop_t *loop, const char *uri,
               enum store_durability durability, int conns) {
  static const char sqlite_scheme[] = "sqlite://";

  assert(uri);
  /* The scheme picks the backend; a plain path (or an SQLite "file:" URI) is SQLite. */
  if (strncmp(uri, "postgres://", 11) == 0 || strncmp(uri, "postgresql://", 13) == 0)
    return store_open_backend(out, loop, &store_pg_ops, uri, durability, conns);
  if (strncmp(uri, sqlite_scheme, sizeof sqlite_scheme - 1) == 0)
    uri += sizeof sqlite_scheme - 1;
  return store_open_backend(out, loop, &store_sqlite_ops, uri, durability, conns);
}
