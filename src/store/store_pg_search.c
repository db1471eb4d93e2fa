/* store_pg_search.c - msg.search on PostgreSQL: the GIN index of migration 8, queried with the
 * terms core/search_query.c quoted as to_tsquery() text, under a time budget.
 *
 * The budget is a statement_timeout set for the search alone (SET LOCAL, reset after it in the
 * same pipeline; a search that fails has its savepoint rolled back, which undoes the SET too),
 * so a word found in most of a million messages cannot hold the lane's connection, and every
 * request queued behind it, for seconds.
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/store_pg_int.h"

#define PG_SEARCH_TIMEOUT_SQL(ms) "SET LOCAL statement_timeout = " #ms
#define PG_SEARCH_TIMEOUT(ms) PG_SEARCH_TIMEOUT_SQL(ms)

int pg__msg_search(void *arg, struct store_req *req, const struct search_query *q, int64_t chat_id,
                   int offset, int limit, int *timed_out) {
  struct pg *be = arg;
  struct pgp p = {0};
  /* A custom plan for each query: the generic plan of a prepared statement cannot see how many
   * messages the words match and scans the table (measured: 300 ms and more for a word in ten
   * messages out of a million, instead of 3 ms through the GIN index). */
  struct pg_call calls[5] = {
      {.sql = PG_SEARCH_TIMEOUT(STORE_MSG_SEARCH_BUDGET_MS)},
      {.sql = "SET LOCAL plan_cache_mode = force_custom_plan"},
      {.id = PG_MSG_SEARCH, .p = &p},
      {.sql = "SET LOCAL statement_timeout TO DEFAULT"},
      {.sql = "SET LOCAL plan_cache_mode TO DEFAULT"},
  };
  PGresult *res[5] = {NULL, NULL, NULL, NULL, NULL};
  char *tsq = NULL;
  size_t rows;
  int err;

  *timed_out = 0;
  err = search_query_tsquery(q, &tsq);
  if (err)
    return err;
  pgp_text(&p, tsq);
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, chat_id ? chat_id : 0);
  pgp_i64(&p, chat_id ? chat_id : INT64_MAX);
  pgp_i64(&p, limit + 1); /* one more tells whether there is a next page */
  pgp_i64(&p, offset);
  pgp_i64(&p, STORE_MSG_SEARCH_CANDIDATES);
  be->last_state[0] = '\0';
  err = pg__exchange(be, calls, 5, res);
  free(tsq);
  if (err) {
    if (strcmp(be->last_state, "57014") == 0) /* query_canceled: the statement_timeout */
      *timed_out = 1;
    return err;
  }
  rows = (size_t)PQntuples(res[2]);
  req->out.found = calloc((size_t)limit, sizeof *req->out.found);
  if (req->out.found == NULL) {
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  for (size_t i = 0; i < rows; i++) {
    struct store_msg_hit *h;
    if (i == (size_t)limit) {
      req->out.has_more = 1;
      break;
    }
    h = &req->out.found[req->out.n_found++];
    err = pg__read_msg(res[2], (int)i, 0, &h->msg);
    if (err == 0)
      err = pg__dup(&h->title, res[2], (int)i, 10);
    if (err == 0)
      err = pg__dup(&h->snippet, res[2], (int)i, 11);
    if (err)
      goto cleanup;
    snprintf(h->slug, sizeof h->slug, "%s", pg__str(res[2], (int)i, 9));
  }
cleanup:
  for (int i = 0; i < 5; i++)
    PQclear(res[i]);
  return err;
}
