/* store_sqlite_search.c - msg.search on SQLite: the FTS5 index of migration 8, queried with the
 * terms core/search_query.c quoted, under a time budget.
 *
 * The search runs on the store thread, inside the batch's write transaction, so every send
 * waits for it: a progress handler stops a query that runs past STORE_MSG_SEARCH_BUDGET_MS (a
 * word common to most of a million messages), and the client is told to narrow it. The handler
 * runs between the virtual machine's steps, and FTS5 ranks all the matches inside one of them,
 * so the budget is checked before and after that work, not during it.
 *
 * Ranking is what a frequent word makes expensive (bm25 of every match), so only a bounded set
 * of candidates is ranked, never every match: FTS5 hands out matches in key order (chat, seq)
 * for nothing, and computes `rank` only for the rows a statement outputs. A user in at most
 * SQ_SEARCH_PER_CHAT chats (or a search of one chat) has each chat's newest matches ranked
 * (its key range, at most STORE_MSG_SEARCH_CANDIDATES in all, at least a page's worth per
 * chat); a user in more chats has the first STORE_MSG_SEARCH_CANDIDATES matches of their chats,
 * from the most recently created chat down, ranked in one statement. The best of each set are
 * merged (bm25 takes its statistics from the whole table, so ranks compare across chats), and
 * only the page's results are read with their snippets.
 *
 * New and edited entries reach the index in batches (migration 14): the triggers put their
 * (chat_id, seq) in search_pending, and sq__search_flush() indexes them in one statement: at
 * most SQ_SEARCH_FLUSH_ROWS at a time from the store's idle moments and commits (store_sqlite.c),
 * and all of them before every search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "store/store_sqlite_int.h"

#define SQ_SEARCH_KEY_SEQS INT64_C(0xffffffff) /* the seq part of STORE_SQL_SEARCH_KEY */
#define SQ_SEARCH_PER_CHAT 64 /* most chats of a user that are searched chat by chat */

struct sq_ranked {
  int64_t key; /* STORE_SQL_SEARCH_KEY */
  double rank; /* bm25: lower is better */
};

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

/* Maps the end of a search statement: an interrupt is the budget, an error from MATCH the query. */
static int sq__search_rc(struct sq *be, int rc, const char *match, int *timed_out) {
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return 0;
  if (rc == SQLITE_INTERRUPT) {
    *timed_out = 1;
    return PARLEY_EUNAVAILABLE;
  }
  if (rc == SQLITE_ERROR) {
    /* Every term is quoted, so FTS5 should never refuse the expression; if it does, the query
     * is what is wrong, not the database. */
    log_warn("store: sqlite: search %s: %s", match, sqlite3_errmsg(be->db));
    return PARLEY_EBAD_REQUEST;
  }
  return sq__err(be, rc, "search messages");
}

static int sq__ranked_cmp(const void *a, const void *b) {
  const struct sq_ranked *x = a, *y = b;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  return x->key > y->key ? -1 : x->key < y->key; /* ties: the newer message first */
}

/* The caller's chats into ids (room for SQ_SEARCH_PER_CHAT + 1); their count into *n. */
static int sq__search_chats(struct sq *be, int64_t user_id, int64_t *ids, int *n) {
  sqlite3_stmt *st = be->st[SQ_SEARCH_CHATS];
  int rc;
  *n = 0;
  sqlite3_bind_int64(st, 1, user_id);
  sqlite3_bind_int(st, 2, SQ_SEARCH_PER_CHAT + 1);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n <= SQ_SEARCH_PER_CHAT)
    ids[(*n)++] = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq__err(be, rc, "search: chats");
}

/* Chat by chat (chats[0..n_chats)), or with chats NULL every chat of the user at once: each
 * candidate set's best `want` keys, merged, then the page [offset, offset + limit) read with
 * snippets. */
static int sq__search_ranked(struct sq *be, struct store_req *req, const char *match,
                             const int64_t *chats, int n_chats, int offset, int limit,
                             const uint64_t *deadline, int *timed_out) {
  const int want = offset + limit + 1;
  const int sets = chats ? n_chats : 1;
  /* Each chat's share of the candidates, but never fewer than a page could need. */
  const int per_chat = chats && n_chats > 0 && STORE_MSG_SEARCH_CANDIDATES / n_chats > want
                           ? STORE_MSG_SEARCH_CANDIDATES / n_chats
                           : want;
  struct sq_ranked *all = malloc((size_t)(sets > 0 ? sets : 1) * (size_t)want * sizeof *all);
  size_t n = 0;
  int err = 0, rc = SQLITE_DONE;

  if (all == NULL)
    return PARLEY_EUNAVAILABLE;
  for (int c = 0; c < sets && err == 0; c++) {
    sqlite3_stmt *st = be->st[chats ? SQ_SEARCH_KEYS : SQ_SEARCH_WIDE_KEYS];
    if (clock_mono_ns() > *deadline) {
      rc = SQLITE_INTERRUPT;
      break;
    }
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    if (chats) {
      sqlite3_bind_int64(st, 2, chats[c] << 32);
      sqlite3_bind_int64(st, 3, (chats[c] << 32) | SQ_SEARCH_KEY_SEQS);
      sqlite3_bind_int(st, 5, per_chat);
    } else {
      sqlite3_bind_int64(st, 2, req->in.user_id);
      sqlite3_bind_int(st, 3, STORE_MSG_SEARCH_CANDIDATES);
    }
    sqlite3_bind_int(st, 4, want);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      all[n].key = sqlite3_column_int64(st, 0);
      all[n].rank = sqlite3_column_double(st, 1);
      n++;
    }
    err = sq__search_rc(be, rc, match, timed_out);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
  if (err == 0 && rc == SQLITE_INTERRUPT) {
    *timed_out = 1;
    err = PARLEY_EUNAVAILABLE;
  }
  if (err == 0)
    qsort(all, n, sizeof *all, sq__ranked_cmp);
  req->out.has_more = err == 0 && n > (size_t)(offset + limit);
  for (size_t i = (size_t)offset; err == 0 && i < n && i < (size_t)(offset + limit); i++) {
    sqlite3_stmt *st = be->st[SQ_SEARCH_HIT];
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, all[i].key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
      err = sq__read_hit(st, &req->out.found[req->out.n_found++]);
    else
      err = sq__search_rc(be, rc, match, timed_out); /* DONE: gone since (not in this batch) */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }
  free(all);
  return err;
}

int sq__search_flush(struct sq *be, int rows) {
  uint64_t t0 = clock_mono_ns(), dt, max;
  int err, rc, taken = 0;
  be->search_flushed_ns = t0;
  rc = sqlite3_exec(be->db, "SAVEPOINT search_flush", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return sq__err(be, rc, "search flush savepoint");
  sqlite3_bind_int(be->st[SQ_SEARCH_FLUSH], 1, rows);
  sqlite3_bind_int(be->st[SQ_SEARCH_PENDING_CLEAR], 1, rows);
  err = sq__run(be, SQ_SEARCH_FLUSH);
  if (err == 0) {
    err = sq__run(be, SQ_SEARCH_PENDING_CLEAR);
    taken = sqlite3_changes(be->db);
  }
  if (err)
    sqlite3_exec(be->db, "ROLLBACK TO search_flush", NULL, NULL, NULL);
  sqlite3_exec(be->db, "RELEASE search_flush", NULL, NULL, NULL);
  be->search_dirty = err != 0;
  be->search_more = err == 0 && rows > 0 && taken == rows;
  if (err == 0 && taken > 0)
    be->search_merge = 1; /* a new segment */
  dt = clock_mono_ns() - t0;
  atomic_fetch_add(&be->search_flushes, 1);
  atomic_fetch_add(&be->search_flush_ns, dt);
  max = atomic_load(&be->search_flush_max_ns);
  if (dt > max) /* the store thread is the only writer */
    atomic_store(&be->search_flush_max_ns, dt);
  return err;
}

int sq__search_merge(struct sq *be) {
  uint64_t t0 = clock_mono_ns();
  int before = sqlite3_total_changes(be->db);
  int rc = sqlite3_exec(be->db, SQ_SEARCH_MERGE_SQL, NULL, NULL, NULL);
  atomic_fetch_add(&be->search_merges, 1);
  atomic_fetch_add(&be->search_merge_ns, clock_mono_ns() - t0);
  if (rc != SQLITE_OK) {
    /* Not again after every batch (a full disk would log each time): the next flush that
     * writes a segment asks for merging again, and FTS5's crisis merge bounds them meanwhile. */
    be->search_merge = 0;
    sq__err(be, rc, SQ_SEARCH_MERGE_SQL);
    return -1;
  }
  /* FTS5's documented test: two or more changes mean the step merged something. */
  be->search_merge = sqlite3_total_changes(be->db) - before >= 2;
  return be->search_merge;
}

int sq__msg_search(void *arg, struct store_req *req, const struct search_query *q, int64_t chat_id,
                   int offset, int limit, int *timed_out) {
  struct sq *be = arg;
  uint64_t deadline = clock_mono_ns() + (uint64_t)STORE_MSG_SEARCH_BUDGET_MS * 1000000u;
  char *match = NULL;
  int err;

  *timed_out = 0;
  err = search_query_fts5(q, &match);
  if (err)
    return err;
  /* Everything committed before the search is found: what is still pending is indexed first. */
  err = sq__search_flush(be, -1);
  if (err) {
    free(match);
    return err;
  }
  req->out.found = calloc((size_t)limit, sizeof *req->out.found);
  if (req->out.found == NULL) {
    free(match);
    return PARLEY_EUNAVAILABLE;
  }
  sqlite3_progress_handler(be->db, 1000, sq__search_over_budget, &deadline);
  if (chat_id != 0) {
    err = sq__search_ranked(be, req, match, &chat_id, 1, offset, limit, &deadline, timed_out);
  } else {
    int64_t chats[SQ_SEARCH_PER_CHAT + 1];
    int n_chats;
    err = sq__search_chats(be, req->in.user_id, chats, &n_chats);
    if (err == 0)
      err = sq__search_ranked(be, req, match, n_chats <= SQ_SEARCH_PER_CHAT ? chats : NULL, n_chats,
                              offset, limit, &deadline, timed_out);
  }
  sqlite3_progress_handler(be->db, 0, NULL, NULL);
  free(match);
  return err;
}
