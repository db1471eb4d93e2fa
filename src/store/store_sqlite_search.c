/* store_sqlite_search.c - msg.search on SQLite: the FTS5 index of migration 8, queried with the
 * terms core/search_query.c quoted, under a time budget.
 *
 * The search runs on the store thread, inside the batch's write transaction, so every send
 * waits for it: a progress handler stops a query that runs past STORE_MSG_SEARCH_BUDGET_MS (a
 * word common to most of a million messages), and the client is told to narrow it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "store/store_sqlite_int.h"

#define SQ_SEARCH_KEY_SEQS INT64_C(0xffffffff) /* the seq part of STORE_SQL_SEARCH_KEY */

/* Called by SQLite every few thousand virtual machine steps: nonzero interrupts the query. */
static int sq__search_over_budget(void *arg) {
  const uint64_t *deadline = arg;
  return clock_mono_ns() > *deadline;
}

static int sq__read_hit(sqlite3_stmt *st, struct store_msg_hit *h) {
  const char *slug = (const char *)sqlite3_column_text(st, 9);
  int err = sq__read_msg(st, 0, &h->msg);
  if (err == 0)
    err = sq__dup(&h->title, st, 10);
  if (err == 0)
    err = sq__dup(&h->snippet, st, 11);
  snprintf(h->slug, sizeof h->slug, "%s", slug ? slug : "");
  return err;
}

int sq__msg_search(void *arg, struct store_req *req, const struct search_query *q, int64_t chat_id,
                   int offset, int limit, int *timed_out) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_MSG_SEARCH];
  uint64_t deadline = clock_mono_ns() + (uint64_t)STORE_MSG_SEARCH_BUDGET_MS * 1000000u;
  char *match = NULL;
  int err, rc;

  *timed_out = 0;
  err = search_query_fts5(q, &match);
  if (err)
    return err;
  req->out.found = calloc((size_t)limit, sizeof *req->out.found);
  if (req->out.found == NULL) {
    free(match);
    return PARLEY_EUNAVAILABLE;
  }
  sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, chat_id ? chat_id << 32 : 0);
  sqlite3_bind_int64(st, 4, chat_id ? (chat_id << 32) | SQ_SEARCH_KEY_SEQS : INT64_MAX);
  sqlite3_bind_int(st, 5, limit + 1); /* one more tells whether there is a next page */
  sqlite3_bind_int(st, 6, offset);
  sqlite3_progress_handler(be->db, 1000, sq__search_over_budget, &deadline);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (req->out.n_found == (size_t)limit) {
      req->out.has_more = 1;
      break;
    }
    err = sq__read_hit(st, &req->out.found[req->out.n_found++]);
    if (err)
      break;
  }
  sqlite3_progress_handler(be->db, 0, NULL, NULL);
  if (err == 0 && rc == SQLITE_INTERRUPT) {
    *timed_out = 1;
    err = PARLEY_EUNAVAILABLE;
  } else if (err == 0 && rc == SQLITE_ERROR) {
    /* Every term is quoted, so FTS5 should never refuse the expression; if it does, the query
     * is what is wrong, not the database. */
    log_warn("store: sqlite: search %s: %s", match, sqlite3_errmsg(be->db));
    err = PARLEY_EBAD_REQUEST;
  } else if (err == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) {
    err = sq__err(be, rc, "search messages");
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  free(match);
  return err;
}
