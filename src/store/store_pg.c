/* store_pg.c - the PostgreSQL backend of the store (store_pg_ops), on libpq.
 *
 * One connection per store lane (store.c opens PG_CONNS of them by default, PARLEY_STORE_CONNS
 * sets another number), each owned by its lane's thread; this file handles one connection and
 * knows nothing of the others. Every statement is prepared once per connection; parameters and
 * results travel as text, except the session token hash (bytea, binary). A lost connection is
 * reset at the next BEGIN, and the statements prepared again, so a database restart costs the
 * batches in flight (answered `unavailable`; clients retry, with the same clientMsgId for sends)
 * and nothing more. The membership and invitation ops are store_rules.c's, over the primitives
 * of pg_prims (their chat lookups lock the chat first).
 *
 * The semantics are those of store_sqlite.c, op by op, with one difference in method: SQLite has
 * a single writer, while several Parley nodes may share one PostgreSQL database. Transactions run
 * at READ COMMITTED, and every op that changes a chat first locks the chat's row (SELECT ... FOR
 * NO KEY UPDATE, a statement of its own) and only then reads the chat. Every later statement sees
 * what other nodes committed before the lock was granted, so the checks made in the transaction
 * (membership, role, cap, clientMsgId, invitation status) are as atomic as on SQLite:
 *   - seq: chats.last_seq + 1 under the row lock, in the transaction that inserts the message.
 *     Two nodes appending to one chat take turns on the lock; a rolled-back append leaves no hole.
 *   - clientMsgId: looked up after the lock, so a retry that reached another node finds the
 *     original instead of failing on the unique index.
 * Invitation ops lock the invitation's chat before they re-read the invitation, so locks are
 * always taken chat first. Two nodes' batches that each touch several chats would deadlock if they
 * took the chats in different orders (measured: three nodes at 2,000 sends/s deadlocked every
 * second and failed most sends as `unavailable`), so pg_exec_batch() runs a batch's requests in
 * slug order (stable: requests on one chat keep their order, and completions are still reported
 * in submission order); every node then takes chat locks in the same order. Requests that lock a
 * chat not named by slug (invitation ops by id) run first; a rare deadlock they might still cause
 * is broken by PostgreSQL after deadlock_timeout: the victim request is rolled back to its
 * savepoint and fails as `unavailable`, never half-applied.
 *
 * Round trips, not the database's CPU, bound one store thread, so they are few (issue 8). A send
 * and a read marker are one statement each, a PL/pgSQL function of migration 4 that takes the
 * steps above in the same order (a VOLATILE function takes a fresh snapshot per statement, so the
 * lock-then-read argument holds inside it). Everything travels in libpq's pipeline mode:
 * pg_exec_batch() sends consecutive sends and read markers of a batch in one pipeline (SAVEPOINT,
 * statement, RELEASE each), and the other ops' transaction control (BEGIN, SAVEPOINT, RELEASE,
 * ROLLBACK TO) waits in be->pend to ride along with their next statement. A batch of sends thus
 * costs two round trips, the pipeline (one per PG_PIPE_MAX requests) and COMMIT.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libpq-fe.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "core/acl.h"
#include "core/invite.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store/store_rules.h"
#include "store/store_sql.h"

#define PG_MAX_PARAMS 8
/* Connections per node by default. One: on the 2-core machine of bench/RESULTS.md, with the
 * database, three nodes and the load generator sharing the cores, every extra connection made
 * smaller batches, more commits and more database CPU (three nodes at 2,000 sends/s: p99 21-25 ms
 * with one, 33 with two, 160 with four; at 4,000 sends/s, 281 ms with one and 2.2 s with two).
 * PARLEY_STORE_CONNS raises it where the database has cores to spare or is far away (store.c's
 * lanes: a chat's requests stay on one connection). */
#define PG_CONNS 1

/* Search compares bytes and folds ASCII only, like SQLite's lower() (see migration 2). */
#define PG_LOWER_NAME "lower(u.username COLLATE \"C\")"
#define PG_LOWER_DISPLAY "lower(u.display_name COLLATE \"C\")"

/* X(name, sql). Prepared on every new connection, in this order. */
#define PG_STATEMENTS(X)                                                                          \
  X(USER_INSERT, "INSERT INTO users(username, display_name, pwhash, created_at)"                 \
                 " VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING RETURNING id")       \
  X(USER_BY_NAME, "SELECT id, username, display_name, created_at, pwhash FROM users"              \
                  " WHERE username = $1")                                                         \
  X(USER_BY_ID, "SELECT id, username, display_name, created_at FROM users WHERE id = $1")         \
  X(SESSION_INSERT, "INSERT INTO sessions(token_hash, user_id, created_at, expires_at)"          \
                    " VALUES ($1, $2, $3, $4)")                                                   \
  X(SESSION_GET, "SELECT s.expires_at, u.id, u.username, u.display_name, u.created_at"            \
                 " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1")     \
  X(SESSION_DELETE, "DELETE FROM sessions WHERE token_hash = $1")                                 \
  X(CHAT_BY_SLUG, "SELECT " STORE_SQL_CHAT_COLS " FROM chats c LEFT JOIN participants p"                 \
                  " ON p.chat_id = c.id AND p.user_id = $2 WHERE c.slug = $1")                    \
  /* The row locks. A statement of their own: after waiting for another node's transaction, the \
   * next statement's snapshot includes what it committed (a join locked in the same statement  \
   * would keep the participant rows it read before the wait). */                                 \
  X(CHAT_LOCK_SLUG, "SELECT id FROM chats WHERE slug = $1 FOR NO KEY UPDATE")                     \
  X(CHAT_LOCK_ID, "SELECT id FROM chats WHERE id = $1 FOR NO KEY UPDATE")                         \
  /* pg__claim_chats(): the chats of a batch's sends that nobody else holds, locked now. */      \
  X(CHAT_CLAIM, "SELECT slug FROM chats WHERE slug = ANY($1::text[])"                             \
                " FOR NO KEY UPDATE SKIP LOCKED")                                                 \
  /* The same for chats that must not wait any longer: in slug order (rows are locked as the   \
   * sort emits them), so every node waits for them in one order and never holds others. */     \
  X(CHAT_CLAIM_WAIT, "SELECT slug FROM chats WHERE slug = ANY($1::text[]) ORDER BY slug"          \
                     " FOR NO KEY UPDATE")                                                        \
  X(SLUG_TAKEN, "SELECT 1 FROM chats WHERE slug = $1")                                            \
  X(CHAT_INSERT, "INSERT INTO chats(slug, title, is_public, max_participants, owner_id,"         \
                 " created_at, last_activity) VALUES ($1, $2, $3, $4, $5, $6, $6)"                \
                 " ON CONFLICT (slug) DO NOTHING RETURNING id")                                   \
  X(PARTICIPANT_INSERT, "INSERT INTO participants(chat_id, user_id, role, joined_at)"            \
                        " VALUES ($1, $2, $3, $4)")                                               \
  X(CHAT_TOUCH, "UPDATE chats SET last_activity = GREATEST(last_activity, $2) WHERE id = $1")     \
  /* Migration 4's functions: a send and a read marker in one statement each (see there). */    \
  X(MSG_APPEND, "SELECT * FROM parley_msg_append($1, $2, $3, $4, $5)")                            \
  X(READ_SET, "SELECT * FROM parley_read_set($1, $2, $3, $4)")                                    \
  /* By slug, so it travels in one pipeline with CHAT_BY_SLUG (the access check comes after). */ \
  X(MSG_RANGE, "SELECT " STORE_SQL_MSG_COLS " FROM messages m JOIN users u ON u.id = m.author_id"       \
               " WHERE m.chat_id = (SELECT id FROM chats WHERE slug = $1)"                        \
               " AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq DESC LIMIT $4")                     \
  X(CHAT_LIST, "SELECT " STORE_SQL_CHAT_COLS ", coalesce(r.seq, 0), " STORE_SQL_MSG_COLS                        \
               " FROM participants p JOIN chats c ON c.id = p.chat_id"                            \
               " LEFT JOIN read_markers r ON r.chat_id = p.chat_id AND r.user_id = p.user_id"     \
               " LEFT JOIN messages m ON m.chat_id = c.id AND m.seq = c.last_seq"                 \
               " LEFT JOIN users u ON u.id = m.author_id"                                         \
               " WHERE p.user_id = $1 ORDER BY c.last_activity DESC, c.id DESC")                  \
  X(USER_BY_USERNAME, "SELECT id, username, display_name, created_at FROM users"                  \
                      " WHERE username = $1")                                                     \
  X(PARTICIPANT_ROLE, "SELECT role FROM participants WHERE chat_id = $1 AND user_id = $2")        \
  /* Ordered as SQLite's WITHOUT ROWID primary key returns them, so succession ties agree. */    \
  X(PARTICIPANTS, "SELECT user_id, role, joined_at FROM participants WHERE chat_id = $1"          \
                  " ORDER BY user_id")                                                            \
  X(MEMBERS, "SELECT u.id, u.username, u.display_name, u.created_at, p.role, p.joined_at,"        \
             " coalesce(u.last_seen, 0) FROM participants p JOIN users u ON u.id = p.user_id"     \
             " WHERE p.chat_id = $1 ORDER BY p.joined_at, p.user_id")                             \
  X(PARTICIPANT_DELETE, "DELETE FROM participants WHERE chat_id = $1 AND user_id = $2")           \
  X(PARTICIPANT_SET_ROLE, "UPDATE participants SET role = $3 WHERE chat_id = $1 AND user_id = $2") \
  X(CHAT_SET_OWNER, "UPDATE chats SET owner_id = $2 WHERE id = $1")                               \
  X(CHAT_ARCHIVE, "UPDATE chats SET archived = 1 WHERE id = $1")                                  \
  X(CHAT_UPDATE, "UPDATE chats SET title = coalesce($2::text, title),"                            \
                 " is_public = coalesce($3::smallint, is_public),"                                \
                 " max_participants = coalesce($4::integer, max_participants),"                   \
                 " invite_policy = coalesce($5::smallint, invite_policy) WHERE id = $1")          \
  X(USERS_SEARCH, "SELECT u.id, u.username, u.display_name, u.created_at,"                        \
                  " EXISTS (SELECT 1 FROM participants p WHERE p.chat_id = $4"                    \
                  "   AND p.user_id = u.id)::integer,"                                            \
                  " EXISTS (SELECT 1 FROM invitations i WHERE i.chat_id = $4 AND i.to_id = u.id"  \
                  "   AND i.status = 0 AND i.expires_at > $5)::integer,"                          \
                  " coalesce(u.last_seen, 0) FROM users u WHERE u.id <> $3 AND"                   \
                  " ((" PG_LOWER_NAME " >= $1 AND " PG_LOWER_NAME " < $2) OR"                     \
                  "  (" PG_LOWER_DISPLAY " >= $1 AND " PG_LOWER_DISPLAY " < $2))"                 \
                  " ORDER BY u.username COLLATE \"C\" LIMIT $6")                                  \
  X(INV_BY_ID, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.id = $1")                              \
  X(INV_PENDING_FOR, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM                                            \
                     " WHERE i.chat_id = $1 AND i.to_id = $2 AND i.status = 0")                   \
  X(INV_PENDING_OF_CHAT, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM                                        \
                         " WHERE i.chat_id = $1 AND i.status = 0 ORDER BY i.id")                  \
  X(INV_INSERT, "INSERT INTO invitations(chat_id, from_id, to_id, status, created_at,"            \
                " expires_at, updated_at) VALUES ($1, $2, $3, 0, $4, $5, $4) RETURNING id")       \
  X(INV_SET_STATUS, "UPDATE invitations SET status = $2, updated_at = $3"                         \
                    " WHERE id = $1 AND status = 0")                                              \
  X(INV_INCOMING, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.to_id = $1 AND i.status = 0"        \
                  " AND i.expires_at > $2 ORDER BY i.created_at DESC, i.id DESC LIMIT $3")        \
  X(INV_LIST, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.id IN ("                                \
              "  SELECT id FROM invitations WHERE to_id = $1 AND status = 0 AND expires_at > $2"  \
              "  UNION ALL"                                                                       \
              "  SELECT j.id FROM participants p JOIN invitations j"                              \
              "    ON j.chat_id = p.chat_id AND j.status = 0"                                     \
              "  WHERE p.user_id = $1 AND j.expires_at > $2"                                      \
              "    AND (p.role IN ('owner', 'admin') OR j.from_id = $1))"                         \
              " ORDER BY (i.to_id = $1) DESC, i.created_at DESC, i.id DESC LIMIT $3")             \
  /* Several nodes sweep the same table: each takes the due rows nobody holds, and a row whose  \
   * invitation is being accepted elsewhere waits for the next sweep. */                          \
  X(INV_DUE, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.status = 0 AND i.expires_at <= $1"       \
             " ORDER BY i.expires_at, i.id LIMIT $2 FOR NO KEY UPDATE OF i SKIP LOCKED")          \
  X(REMOVAL_INSERT, "INSERT INTO removals(chat_id, user_id, removed_by, removed_at)"              \
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (chat_id, user_id) DO UPDATE SET"       \
                    " removed_by = excluded.removed_by, removed_at = excluded.removed_at")        \
  X(REMOVAL_GET, "SELECT 1 FROM removals WHERE chat_id = $1 AND user_id = $2")                    \
  X(REMOVAL_DELETE, "DELETE FROM removals WHERE chat_id = $1 AND user_id = $2")                   \
  X(AUDIENCE, "SELECT DISTINCT p2.user_id FROM participants p1"                                   \
              " JOIN chats c ON c.id = p1.chat_id AND c.archived = 0"                             \
              " JOIN participants p2 ON p2.chat_id = p1.chat_id"                                  \
              " WHERE p1.user_id = $1 AND p2.user_id <> $1 ORDER BY p2.user_id")                  \
  X(USER_SEEN, "UPDATE users SET last_seen = GREATEST(coalesce(last_seen, 0), $2) WHERE id = $1")

enum pg_stmt {
#define PG__ENUM(name, sql) PG_##name,
  PG_STATEMENTS(PG__ENUM)
#undef PG__ENUM
  PG__COUNT
};

static const char *const pg_sql[PG__COUNT] = {
#define PG__SQL(name, sql) sql,
    PG_STATEMENTS(PG__SQL)
#undef PG__SQL
};

static const char *const pg_names[PG__COUNT] = {
#define PG__NAME(name, sql) "parley_" #name,
    PG_STATEMENTS(PG__NAME)
#undef PG__NAME
};

/* Transaction control that has not been sent yet: it travels in the pipeline of the next
 * statement (or of COMMIT), in this order, instead of costing a round trip of its own. */
enum {
  PG_PEND_BEGIN = 1,     /* the batch's BEGIN */
  PG_PEND_UNDO = 2,      /* the previous request failed: ROLLBACK TO and RELEASE its savepoint */
  PG_PEND_RELEASE = 4,   /* the previous request succeeded: RELEASE its savepoint */
  PG_PEND_SAVEPOINT = 8  /* the current request's SAVEPOINT */
};

struct pg {
  PGconn *conn;
  char *uri;                        /* for reconnecting; never logged (it may hold a password) */
  enum store_durability durability;
  int doomed; /* this transaction lost a deadlock: the rest of its batch fails fast */
  unsigned pend;  /* PG_PEND_* not sent yet */
  int sp_open;    /* the current request's SAVEPOINT reached the server */
  int broken;     /* transaction control failed or the connection dropped: no commit */
  uint64_t round_trips, statements; /* since open, logged at close */
};

static const struct store_prims pg_prims; /* the membership ops' primitives (store_rules.h) */

/* The parameters of one statement, in $1, $2 ... order. Numbers are formatted into `num`. */
struct pgp {
  int n;
  const char *v[PG_MAX_PARAMS];
  int len[PG_MAX_PARAMS];
  int fmt[PG_MAX_PARAMS];
  char num[PG_MAX_PARAMS][24];
};

static void pgp_i64(struct pgp *p, int64_t x) {
  assert(p->n < PG_MAX_PARAMS);
  snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)x);
  p->v[p->n] = p->num[p->n];
  p->len[p->n] = 0;
  p->fmt[p->n] = 0;
  p->n++;
}

/* A text parameter; NULL is SQL NULL. Borrowed until the statement ran. */
static void pgp_text(struct pgp *p, const char *s) {
  assert(p->n < PG_MAX_PARAMS);
  p->v[p->n] = s;
  p->len[p->n] = 0;
  p->fmt[p->n] = 0;
  p->n++;
}

static void pgp_bytes(struct pgp *p, const void *b, int n) {
  assert(p->n < PG_MAX_PARAMS);
  p->v[p->n] = b;
  p->len[p->n] = n;
  p->fmt[p->n] = 1;
  p->n++;
}

/* ---- errors ---- */

/* Maps a failed result to the error table, as sq__err() does for SQLite: operational failures
 * (connection, resources, lock waits, deadlocks, serialization) are `unavailable` so that clients
 * retry; constraint violations are the caller's doing; the rest is a bug of ours. */
static int pg__err(struct pg *be, const PGresult *res, const char *what) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(be->conn);

  if (state == NULL || PQstatus(be->conn) != CONNECTION_OK) {
    log_warn("store: postgres: %s: %s", what, msg);
    return PARLEY_EUNAVAILABLE;
  }
  if (strcmp(state, "23505") == 0)
    return PARLEY_ECONFLICT;
  if (strcmp(state, "23503") == 0)
    return PARLEY_ENOT_FOUND;
  if (strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0 || strncmp(state, "22", 2) == 0)
    return PARLEY_EBAD_REQUEST;
  if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
    /* The other node waits for locks this transaction still holds: every further request of the
     * batch would likely deadlock again (a second wait of deadlock_timeout each), so they fail
     * at once, the batch commits what it has, and the other node proceeds. */
    be->doomed = 1;
    log_warn("store: postgres: %s: %s", what, msg);
    return PARLEY_EUNAVAILABLE;
  }
  if (strcmp(state, "55P03") == 0 || strncmp(state, "08", 2) == 0 ||
      strncmp(state, "53", 2) == 0 || strncmp(state, "57", 2) == 0 ||
      strcmp(state, "25006") == 0) {
    log_warn("store: postgres: %s: %s", what, msg);
    return PARLEY_EUNAVAILABLE;
  }
  log_error("store: postgres: %s: [%s] %s", what, state, msg);
  return PARLEY_EINTERNAL;
}

/* One statement of a pipeline: prepared statement `id` with `p` (NULL: no parameters), or, when
 * `sql` is set, that parameterless command (transaction control). */
struct pg_call {
  enum pg_stmt id;
  const struct pgp *p;
  const char *sql;
};

#define PG_MAX_CALLS 8 /* calls of a pipeline kept on the stack; longer ones are allocated */

static int pg__reconnect(struct pg *be);

/* Sends calls[0..n) as one pipeline (one round trip) and reads every answer. res (may be NULL)
 * gets one result per call, the caller PQclear()s them; on failure only those of the calls
 * before the failed one are kept. *failed (may be NULL) is the index of the first call that
 * failed (n: none, or the connection failed after them all). Returns 0 or that call's error.
 * A failed call leaves the transaction in error until its savepoint is rolled back, as
 * PQexecPrepared() would, and the server skips the calls after it. */
static int pg__pipeline(struct pg *be, const struct pg_call *calls, int n, PGresult **res,
                        int *failed) {
  PGconn *conn = be->conn;
  int sent = 0, got = 0, err = 0, at = n;
  PGresult *r;

  assert(n > 0);
  if (res)
    memset(res, 0, (size_t)n * sizeof *res);
  if (failed)
    *failed = 0;
  be->round_trips++;
  be->statements += (uint64_t)n;
  if (!PQenterPipelineMode(conn)) {
    be->broken = 1; /* only a connection busy with something else refuses */
    return pg__err(be, NULL, "enter pipeline mode");
  }
  for (; sent < n; sent++) {
    const struct pg_call *c = &calls[sent];
    const struct pgp *p = c->p;
    int ok = c->sql ? PQsendQueryParams(conn, c->sql, 0, NULL, NULL, NULL, NULL, 0)
                    : PQsendQueryPrepared(conn, pg_names[c->id], p ? p->n : 0, p ? p->v : NULL,
                                          p ? p->len : NULL, p ? p->fmt : NULL, 0);
    if (!ok)
      break;
  }
  if (sent < n || !PQpipelineSync(conn)) {
    /* Only a broken connection refuses to queue: nothing can be read back from it. */
    err = pg__err(be, NULL, "send pipeline");
    be->broken = 1;
    PQexitPipelineMode(conn);
    return err;
  }
  /* Each call answers with its result then a NULL; the sync point answers last, alone. */
  for (; got < n; got++) {
    const struct pg_call *c = &calls[got];
    ExecStatusType st;
    r = PQgetResult(conn);
    if (r == NULL)
      break; /* the connection went away mid-pipeline */
    st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      if (res && err == 0)
        res[got] = r;
      else
        PQclear(r);
    } else {
      if (err == 0) {
        at = got;
        err = st == PGRES_PIPELINE_ABORTED ? PARLEY_EUNAVAILABLE
                                           : pg__err(be, r, c->sql ? c->sql : pg_names[c->id]);
      }
      PQclear(r);
    }
    while ((r = PQgetResult(conn)) != NULL)
      PQclear(r);
  }
  if (got == n) {
    while ((r = PQgetResult(conn)) != NULL) {
      ExecStatusType st = PQresultStatus(r);
      PQclear(r);
      if (st == PGRES_PIPELINE_SYNC)
        break;
    }
  }
  if (got < n || PQstatus(conn) != CONNECTION_OK) {
    if (err == 0) {
      at = got;
      err = pg__err(be, NULL, "pipeline");
    }
    be->broken = 1; /* the transaction is gone with the connection */
  }
  PQexitPipelineMode(conn);
  if (err && res) {
    for (int i = at; i < n; i++) {
      PQclear(res[i]);
      res[i] = NULL;
    }
  }
  if (failed)
    *failed = err ? at : n;
  return err;
}

/* Runs calls[0..n) preceded by the pending transaction control (be->pend), all in one round trip.
 * res (may be NULL) gets one result per call; on failure only those before the failed call are
 * kept, and *failed (may be NULL) is its index (n: none). If the control itself fails, the batch
 * cannot commit (be->broken): *failed is -1 and this returns PARLEY_EUNAVAILABLE. */
static int pg__exchange_at(struct pg *be, const struct pg_call *calls, int n, PGresult **res,
                           int *failed) {
  struct pg_call all_small[PG_MAX_CALLS], *all = all_small;
  PGresult *out_small[PG_MAX_CALLS], **out = out_small;
  unsigned pend = be->pend;
  int k = 0, at = 0, err;

  assert(n > 0);
  if (failed)
    *failed = -1;
  if (res)
    memset(res, 0, (size_t)n * sizeof *res);
  if (be->broken)
    return PARLEY_EUNAVAILABLE;
  if (n + 4 > PG_MAX_CALLS) {
    all = calloc((size_t)n + 4, sizeof *all);
    out = calloc((size_t)n + 4, sizeof *out);
    if (all == NULL || out == NULL) {
      err = PARLEY_EUNAVAILABLE;
      goto cleanup;
    }
  }
  memset(all, 0, 4 * sizeof *all);
  if (pend & PG_PEND_BEGIN)
    all[k++].sql = "BEGIN";
  if (pend & PG_PEND_UNDO) {
    all[k++].sql = "ROLLBACK TO SAVEPOINT req";
    all[k++].sql = "RELEASE SAVEPOINT req";
  } else if (pend & PG_PEND_RELEASE) {
    all[k++].sql = "RELEASE SAVEPOINT req";
  }
  if (pend & PG_PEND_SAVEPOINT)
    all[k++].sql = "SAVEPOINT req";
  memcpy(&all[k], calls, (size_t)n * sizeof *calls);

  err = pg__pipeline(be, all, k + n, out, &at);
  /* The server may have gone away while the connection looked idle and fine. A pipeline that
   * opens the transaction has nothing on the server yet, so one fresh try on a new connection
   * cannot do anything twice. */
  if (err && (pend & PG_PEND_BEGIN) && PQstatus(be->conn) != CONNECTION_OK &&
      pg__reconnect(be) == 0) {
    for (int i = 0; i < k + n; i++)
      PQclear(out[i]);
    be->broken = 0;
    err = pg__pipeline(be, all, k + n, out, &at);
  }
  for (int i = 0; i < k; i++)
    PQclear(out[i]); /* the control calls' answers: only their success mattered */
  if (err && at < k) {
    be->broken = 1; /* the control failed: the savepoints no longer match the requests */
    err = PARLEY_EUNAVAILABLE;
    for (int i = k; i < k + n; i++)
      PQclear(out[i]);
  } else {
    be->pend = 0; /* all of it ran */
    if (pend & PG_PEND_SAVEPOINT)
      be->sp_open = 1;
    if (failed)
      *failed = at - k;
    if (res)
      memcpy(res, &out[k], (size_t)n * sizeof *res);
    else
      for (int i = k; i < k + n; i++)
        PQclear(out[i]);
  }
cleanup:
  if (all != all_small)
    free(all);
  if (out != out_small)
    free(out);
  return err;
}

/* pg__exchange_at() for callers that need all results or none: on failure none is kept. */
static int pg__exchange(struct pg *be, const struct pg_call *calls, int n, PGresult **res) {
  int err = pg__exchange_at(be, calls, n, res, NULL);
  if (err && res) {
    for (int i = 0; i < n; i++) {
      PQclear(res[i]);
      res[i] = NULL;
    }
  }
  return err;
}

/* Runs prepared statement `id` (in one round trip with any pending transaction control). On
 * success returns 0 and, if `out` is not NULL, the result in *out (the caller PQclear()s it); on
 * failure a mapped error and *out = NULL. */
static int pg__q(struct pg *be, enum pg_stmt id, const struct pgp *p, PGresult **out) {
  struct pg_call call = {id, p, NULL};
  PGresult *res = NULL;
  int err = pg__exchange(be, &call, 1, &res);
  if (out)
    *out = res;
  else
    PQclear(res);
  return err;
}

static int pg__run(struct pg *be, enum pg_stmt id, const struct pgp *p) {
  return pg__q(be, id, p, NULL);
}

/* Runs `id` and sets *changes to the number of rows it wrote. */
static int pg__run_n(struct pg *be, enum pg_stmt id, const struct pgp *p, long *changes) {
  PGresult *res = NULL;
  int err = pg__q(be, id, p, &res);
  if (err == 0)
    *changes = strtol(PQcmdTuples(res), NULL, 10);
  PQclear(res);
  return err;
}

/* Runs a statement without parameters outside any pipeline (session set-up, ROLLBACK). */
static int pg__simple(struct pg *be, const char *sql) {
  PGresult *res = PQexec(be->conn, sql);
  int err = 0;
  be->round_trips++;
  be->statements++;
  if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
    err = pg__err(be, res, sql);
  PQclear(res);
  return err;
}

/* ---- column readers ---- */

static int64_t pg__i64(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int pg__int(const PGresult *r, int row, int col) {
  return (int)pg__i64(r, row, col);
}

static const char *pg__str(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* As sq__copy(): cut before a character that does not fit, never inside it. */
static void pg__copy(char *dst, size_t cap, const PGresult *r, int row, int col) {
  const unsigned char *t = (const unsigned char *)PQgetvalue(r, row, col);
  size_t n = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
  if (n >= cap) {
    n = cap - 1;
    while (n > 0 && (t[n] & 0xC0) == 0x80)
      n--;
  }
  if (n)
    memcpy(dst, t, n);
  dst[n] = '\0';
}

static int pg__dup(char **dst, const PGresult *r, int row, int col) {
  size_t n = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
  char *p = malloc(n + 1);
  if (p == NULL)
    return PARLEY_EUNAVAILABLE;
  if (n)
    memcpy(p, PQgetvalue(r, row, col), n);
  p[n] = '\0';
  free(*dst);
  *dst = p;
  return 0;
}

static void pg__read_user(const PGresult *r, int row, int col, struct store_user *u) {
  u->id = pg__i64(r, row, col);
  pg__copy(u->username, sizeof u->username, r, row, col + 1);
  pg__copy(u->display_name, sizeof u->display_name, r, row, col + 2);
  u->created_at = pg__i64(r, row, col + 3);
}

static int pg__read_chat(const PGresult *r, int row, struct store_chat *c) {
  int err = pg__dup(&c->title, r, row, 2);
  if (err)
    return err;
  c->id = pg__i64(r, row, 0);
  pg__copy(c->slug, sizeof c->slug, r, row, 1);
  c->is_public = pg__int(r, row, 3) != 0;
  c->max_participants = pg__int(r, row, 4);
  c->owner_id = pg__i64(r, row, 5);
  c->created_at = pg__i64(r, row, 6);
  c->last_activity = pg__i64(r, row, 7);
  c->last_seq = pg__i64(r, row, 8);
  c->participant_count = pg__int(r, row, 9);
  c->my_role = chat_role_parse(pg__str(r, row, 10));
  c->invite_policy = (enum invite_policy)pg__int(r, row, 11);
  c->archived = pg__int(r, row, 12) != 0;
  c->member_gen = pg__i64(r, row, 13);
  return 0;
}

static int pg__read_invite(const PGresult *r, int row, struct store_invite *inv, int64_t *chat_id,
                           int *archived) {
  int err = pg__dup(&inv->chat_title, r, row, 6);
  if (err)
    return err;
  inv->id = pg__i64(r, row, 0);
  inv->status = (enum invite_status)pg__int(r, row, 1);
  inv->created_at = pg__i64(r, row, 2);
  inv->expires_at = pg__i64(r, row, 3);
  if (chat_id)
    *chat_id = pg__i64(r, row, 4);
  pg__copy(inv->chat_slug, sizeof inv->chat_slug, r, row, 5);
  if (archived)
    *archived = pg__int(r, row, 7) != 0;
  pg__read_user(r, row, 8, &inv->from);
  pg__read_user(r, row, 12, &inv->to);
  return 0;
}

/* A NULL seq (no message on the right side of a LEFT JOIN) leaves m zeroed. */
static int pg__read_msg(const PGresult *r, int row, int col, struct store_msg *m) {
  int err;
  store_msg_dispose(m);
  memset(m, 0, sizeof *m);
  if (PQgetisnull(r, row, col))
    return 0;
  err = pg__dup(&m->body, r, row, col + 2);
  if (err)
    return err;
  m->seq = pg__i64(r, row, col);
  m->chat_id = pg__i64(r, row, col + 1);
  pg__copy(m->client_msg_id, sizeof m->client_msg_id, r, row, col + 3);
  m->created_at = pg__i64(r, row, col + 4);
  pg__read_user(r, row, col + 5, &m->author);
  return 0;
}

/* ---- shared steps ---- */

#define PG_TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))

static int pg__chat_load(void *arg, const char *slug, int64_t user_id, struct store_chat *c) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, slug);
  pgp_i64(&p, user_id);
  err = pg__q(be, PG_CHAT_BY_SLUG, &p, &r);
  if (err == 0)
    err = PQntuples(r) == 1 ? pg__read_chat(r, 0, c) : PARLEY_ENOT_FOUND;
  PQclear(r);
  return err;
}

/* Takes the row lock of the chat named `slug` (held to the end of the batch's transaction).
 * Returns 0 or PARLEY_ENOT_FOUND. */
static int pg__chat_lock(struct pg *be, const char *slug) {
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, slug);
  err = pg__q(be, PG_CHAT_LOCK_SLUG, &p, &r);
  if (err == 0 && PQntuples(r) != 1)
    err = PARLEY_ENOT_FOUND;
  PQclear(r);
  return err;
}

static int pg__chat_lock_id(struct pg *be, int64_t chat_id) {
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, chat_id);
  err = pg__q(be, PG_CHAT_LOCK_ID, &p, &r);
  if (err == 0 && PQntuples(r) != 1)
    err = PARLEY_ENOT_FOUND;
  PQclear(r);
  return err;
}

/* Loads the chat of in.slug into out.chat; with `lock`, locks its row first (every op that
 * changes the chat or decides on its current state). Archived chats are not found. */
static int pg__chat_find(void *arg, struct store_req *req, int lock) {
  struct pg *be = arg;
  int err;
  if (!PG_TERMINATED(req->in.slug) || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  if (lock) {
    err = pg__chat_lock(be, req->in.slug);
    if (err)
      return err;
  }
  err = pg__chat_load(be, req->in.slug, req->in.user_id, &req->out.chat);
  if (err)
    return err;
  return req->out.chat.archived ? PARLEY_ENOT_FOUND : 0;
}

static int pg__chat_access(struct pg *be, struct store_req *req, enum acl_op op, int lock) {
  int err = pg__chat_find(be, req, lock);
  if (err)
    return err;
  return acl_check(op, req->out.chat.my_role, req->out.chat.is_public);
}

/* Reads the chat row that starts a result of CHAT_BY_SLUG, MSG_APPEND or READ_SET (STORE_SQL_CHAT_COLS
 * first) into out.chat and decides `op` on it as pg__chat_access() does. No row, or a NULL id
 * (the functions' answer), is not found. */
static int pg__chat_take(struct store_req *req, const PGresult *r, enum acl_op op) {
  int err;
  if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
    return PARLEY_ENOT_FOUND;
  err = pg__read_chat(r, 0, &req->out.chat);
  if (err)
    return err;
  if (req->out.chat.archived)
    return PARLEY_ENOT_FOUND;
  return acl_check(op, req->out.chat.my_role, req->out.chat.is_public);
}

static int pg__chat_touch(void *arg, int64_t chat_id, int64_t now) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, now);
  return pg__run(be, PG_CHAT_TOUCH, &p);
}

static int pg__user_by_username(void *arg, struct store_req *req, const char *username,
                                struct store_user *u) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, username);
  err = pg__q(be, PG_USER_BY_USERNAME, &p, &r);
  if (err == 0) {
    if (PQntuples(r) == 1)
      pg__read_user(r, 0, 0, u);
    else
      err = store_fail(req, PARLEY_ENOT_FOUND, "there is no user named %s", username);
  }
  PQclear(r);
  return err;
}

static int pg__user_by_id(void *arg, int64_t id, struct store_user *u) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, id);
  err = pg__q(be, PG_USER_BY_ID, &p, &r);
  if (err == 0) {
    if (PQntuples(r) == 1)
      pg__read_user(r, 0, 0, u);
    else
      err = PARLEY_ENOT_FOUND;
  }
  PQclear(r);
  return err;
}

static int pg__role_of(void *arg, int64_t chat_id, int64_t user_id, enum chat_role *role) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  err = pg__q(be, PG_PARTICIPANT_ROLE, &p, &r);
  *role = CHAT_ROLE_NONE;
  if (err == 0 && PQntuples(r) == 1)
    *role = chat_role_parse(pg__str(r, 0, 0));
  PQclear(r);
  return err;
}

static int pg__set_role(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  pgp_text(&p, chat_role_name(role));
  return pg__run(be, PG_PARTICIPANT_SET_ROLE, &p);
}

static int pg__set_owner(void *arg, int64_t chat_id, int64_t owner_id) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, owner_id);
  return pg__run(be, PG_CHAT_SET_OWNER, &p);
}

static int pg__participant_add(void *arg, int64_t chat_id, int64_t user_id,
                               enum chat_role role, int64_t now) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  pgp_text(&p, chat_role_name(role));
  pgp_i64(&p, now);
  return pg__run(be, PG_PARTICIPANT_INSERT, &p);
}

static int pg__participants(void *arg, int64_t chat_id, struct acl_member **out, size_t *n) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  struct acl_member *m = NULL;
  int rows;
  int err;

  *out = NULL;
  *n = 0;
  pgp_i64(&p, chat_id);
  err = pg__q(be, PG_PARTICIPANTS, &p, &r);
  if (err)
    return err;
  rows = PQntuples(r);
  if (rows > 0) {
    m = calloc((size_t)rows, sizeof *m);
    if (m == NULL) {
      PQclear(r);
      return PARLEY_EUNAVAILABLE;
    }
  }
  for (int i = 0; i < rows; i++) {
    m[i].user_id = pg__i64(r, i, 0);
    m[i].role = chat_role_parse(pg__str(r, i, 1));
    m[i].joined_at = pg__i64(r, i, 2);
  }
  PQclear(r);
  *out = m;
  *n = (size_t)rows;
  return 0;
}

/* Runs `id` and appends up to `limit` invitations to out.invites; *more (may be NULL) is set when
 * a row beyond `limit` came back. */
static int pg__invites_read(struct pg *be, struct store_req *req, enum pg_stmt id,
                            const struct pgp *p, size_t limit, int *more) {
  PGresult *r = NULL;
  size_t have = req->out.n_invites;
  size_t rows, take;
  struct store_invite *inv;
  int err;

  if (more)
    *more = 0;
  err = pg__q(be, id, p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  take = rows;
  if (have + take > limit) {
    take = limit > have ? limit - have : 0;
    if (more)
      *more = 1;
  }
  if (take == 0) {
    PQclear(r);
    return 0;
  }
  inv = realloc(req->out.invites, (have + take) * sizeof *inv);
  if (inv == NULL) {
    PQclear(r);
    return PARLEY_EUNAVAILABLE;
  }
  req->out.invites = inv;
  for (size_t i = 0; i < take; i++) {
    memset(&inv[have + i], 0, sizeof inv[have + i]);
    req->out.n_invites = have + i + 1; /* counted before filling: a failure frees what was read */
    err = pg__read_invite(r, (int)i, &inv[have + i], NULL, NULL);
    if (err)
      break;
  }
  PQclear(r);
  return err;
}

static int pg__invite_load(struct pg *be, int64_t id, struct store_invite *inv, int64_t *chat_id,
                           int *archived) {
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, id);
  err = pg__q(be, PG_INV_BY_ID, &p, &r);
  if (err == 0)
    err = PQntuples(r) == 1 ? pg__read_invite(r, 0, inv, chat_id, archived) : PARLEY_ENOT_FOUND;
  PQclear(r);
  return err;
}

/* Loads invitation `id` with its chat's row locked: the first read finds the chat, the lock waits
 * for whoever holds it, and the second read sees the invitation as they left it. */
static int pg__invite_load_locked(void *arg, int64_t id, struct store_invite *inv,
                                  int64_t *chat_id, int *archived) {
  struct pg *be = arg;
  int64_t cid = 0;
  int err = pg__invite_load(be, id, inv, &cid, NULL);
  if (err == 0)
    err = pg__chat_lock_id(be, cid);
  if (err == 0)
    err = pg__invite_load(be, id, inv, chat_id, archived);
  return err;
}

static int pg__invite_set_status(void *arg, int64_t id, enum invite_status status,
                                 int64_t now) {
  struct pg *be = arg;
  struct pgp p = {0};
  long changes = 0;
  int err;
  pgp_i64(&p, id);
  pgp_i64(&p, (int64_t)status);
  pgp_i64(&p, now);
  err = pg__run_n(be, PG_INV_SET_STATUS, &p, &changes);
  if (err)
    return err;
  /* The caller read the row as pending under its chat's lock (or its own): anything else is a
   * bug. */
  return changes == 1 ? 0 : PARLEY_EINTERNAL;
}

static int pg__slug_taken(void *arg, const char *slug, int *taken) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, slug);
  err = pg__q(be, PG_SLUG_TAKEN, &p, &r);
  if (err == 0)
    *taken = PQntuples(r) > 0;
  PQclear(r);
  return err;
}

/* Reads the chat of in.slug and its messages with lo < seq < hi, newest `limit` of them, in one
 * round trip: both statements travel in one pipeline, and the messages are used only when the
 * chat passes ACL_CHAT_READ. *more is set when there are older ones in the range. */
static int pg__chat_msgs(void *arg, struct store_req *req, int64_t lo, int64_t hi, int limit,
                         int *more) {
  struct pg *be = arg;
  struct pgp pc = {0}, pm = {0};
  struct pg_call calls[2] = {{PG_CHAT_BY_SLUG, &pc, NULL}, {PG_MSG_RANGE, &pm, NULL}};
  PGresult *res[2] = {NULL, NULL};
  struct store_msg *msgs = NULL;
  size_t n = 0, rows = 0;
  int err;

  assert(limit > 0 && limit <= STORE_LIMIT_MAX);
  *more = 0;
  if (!PG_TERMINATED(req->in.slug) || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  pgp_text(&pc, req->in.slug);
  pgp_i64(&pc, req->in.user_id);
  pgp_text(&pm, req->in.slug);
  pgp_i64(&pm, lo);
  pgp_i64(&pm, hi);
  pgp_i64(&pm, (int64_t)limit + 1); /* one more tells whether there is more without a COUNT */
  err = pg__exchange(be, calls, 2, res);
  if (err == 0)
    err = pg__chat_take(req, res[0], ACL_CHAT_READ);
  if (err == 0) {
    rows = (size_t)PQntuples(res[1]);
    if (rows > (size_t)limit) {
      *more = 1;
      rows = (size_t)limit;
    }
    msgs = calloc((size_t)limit, sizeof *msgs);
    if (msgs == NULL)
      err = PARLEY_EUNAVAILABLE;
  }
  /* The query walks newest first (so LIMIT keeps the newest); the contract is oldest first. */
  for (; err == 0 && n < rows; n++)
    err = pg__read_msg(res[1], (int)(rows - 1 - n), 0, &msgs[n]);
  PQclear(res[0]);
  PQclear(res[1]);
  if (err) {
    for (size_t i = 0; msgs && i < rows; i++) /* calloc'd: the unread ones are empty */
      store_msg_dispose(&msgs[i]);
    free(msgs);
    *more = 0;
    return err;
  }
  req->out.msgs = msgs;
  req->out.n_msgs = n;
  return 0;
}

/* ---- operations ---- */

static int pg__user_insert(void *arg, struct store_req *req, const char *display, int64_t *id) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, req->in.user.username);
  pgp_text(&p, display);
  pgp_text(&p, req->in.pwhash);
  pgp_i64(&p, req->in.now);
  err = pg__q(be, PG_USER_INSERT, &p, &r);
  if (err == 0 && PQntuples(r) != 1)
    err = PARLEY_ECONFLICT; /* ON CONFLICT DO NOTHING: the name is taken (maybe by another node) */
  if (err == 0)
    *id = pg__i64(r, 0, 0);
  PQclear(r);
  return err;
}
static int pg_user_by_name(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, req->in.user.username);
  err = pg__q(be, PG_USER_BY_NAME, &p, &r);
  if (err == 0) {
    if (PQntuples(r) == 1) {
      pg__read_user(r, 0, 0, &req->out.user);
      err = pg__dup(&req->out.pwhash, r, 0, 4);
    } else {
      err = PARLEY_ENOT_FOUND;
    }
  }
  PQclear(r);
  return err;
}

static int pg_session_create(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_bytes(&p, req->in.token_hash, STORE_TOKEN_HASH_LEN);
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, req->in.expires_at);
  return pg__run(be, PG_SESSION_INSERT, &p);
}

static int pg_session_get(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_bytes(&p, req->in.token_hash, STORE_TOKEN_HASH_LEN);
  err = pg__q(be, PG_SESSION_GET, &p, &r);
  if (err == 0) {
    if (PQntuples(r) == 1 && pg__i64(r, 0, 0) > req->in.now) {
      req->out.expires_at = pg__i64(r, 0, 0);
      pg__read_user(r, 0, 1, &req->out.user);
    } else {
      err = PARLEY_EUNAUTHORIZED; /* unknown, or expired (left for a sweep: a lookup is a read) */
    }
  }
  PQclear(r);
  return err;
}

static int pg_session_delete(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_bytes(&p, req->in.token_hash, STORE_TOKEN_HASH_LEN);
  return pg__run(be, PG_SESSION_DELETE, &p);
}

/* Inserts the chat under `slug`. *chat_id is 0 if the slug was taken meanwhile (another node). */
static int pg__chat_insert(void *arg, struct store_req *req, const char *slug, int64_t *chat_id) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, slug);
  pgp_text(&p, req->in.title);
  pgp_i64(&p, req->in.is_public != 0);
  pgp_i64(&p, req->in.max_participants);
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, req->in.now);
  err = pg__q(be, PG_CHAT_INSERT, &p, &r); /* an unknown owner fails the foreign key */
  *chat_id = err == 0 && PQntuples(r) == 1 ? pg__i64(r, 0, 0) : 0;
  PQclear(r);
  return err;
}

static int pg_chat_list(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0}, q = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;

  pgp_i64(&p, req->in.user_id);
  err = pg__q(be, PG_CHAT_LIST, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  if (rows > 0) {
    req->out.chats = calloc(rows, sizeof *req->out.chats);
    req->out.last_msgs = calloc(rows, sizeof *req->out.last_msgs);
    req->out.unread = calloc(rows, sizeof *req->out.unread);
    if (req->out.chats == NULL || req->out.last_msgs == NULL || req->out.unread == NULL) {
      PQclear(r);
      return PARLEY_EUNAVAILABLE; /* store.c frees whichever arrays were allocated */
    }
  }
  for (size_t i = 0; i < rows; i++) {
    int64_t marker;
    req->out.n_chats = i + 1;
    err = pg__read_chat(r, (int)i, &req->out.chats[i]);
    if (err)
      break;
    marker = pg__i64(r, (int)i, STORE_SQL_CHAT_NCOLS);
    /* seq is gap-free and messages are never deleted: unread is a subtraction. */
    req->out.unread[i] = req->out.chats[i].last_seq > marker ? req->out.chats[i].last_seq - marker
                                                             : 0;
    err = pg__read_msg(r, (int)i, STORE_SQL_CHAT_NCOLS + 1, &req->out.last_msgs[i]);
    if (err)
      break;
  }
  PQclear(r);
  if (err)
    return err;
  pgp_i64(&q, req->in.user_id);
  pgp_i64(&q, req->in.now);
  pgp_i64(&q, STORE_LIMIT_MAX);
  return pg__invites_read(be, req, PG_INV_INCOMING, &q, STORE_LIMIT_MAX, NULL);
}

static int pg__removed(void *arg, int64_t chat_id, int64_t user_id, int *removed) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  err = pg__q(be, PG_REMOVAL_GET, &p, &r);
  if (err == 0)
    *removed = PQntuples(r) > 0;
  PQclear(r);
  return err;
}
/* The parameters of MSG_APPEND for `req` into *p (borrowing req's strings), or
 * PARLEY_EBAD_REQUEST. One statement (migration 4's parley_msg_append): lock the chat, then, for
 * a participant, find the clientMsgId's original or allocate the seq under the lock, insert, and
 * move the sender's read marker. */
static int pg__msg_append_params(const struct store_req *req, struct pgp *p) {
  int has_client_id;
  if (req->in.body == NULL || req->in.body[0] == '\0' || !PG_TERMINATED(req->in.client_msg_id) ||
      !PG_TERMINATED(req->in.slug) || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  has_client_id = req->in.client_msg_id[0] != '\0';
  memset(p, 0, sizeof *p);
  pgp_text(p, req->in.slug);
  pgp_i64(p, req->in.user_id);
  pgp_text(p, req->in.body);
  pgp_text(p, has_client_id ? req->in.client_msg_id : NULL);
  pgp_i64(p, req->in.now);
  return 0;
}

/* Fills req's outputs from MSG_APPEND's result `r` (borrowed). The function writes only when
 * acl_check() allows, so a refusal here has nothing to undo (the savepoint would anyway). */
static int pg__msg_append_take(struct store_req *req, const PGresult *r) {
  int err = pg__chat_take(req, r, ACL_MSG_SEND);
  if (err == 0 && PQgetisnull(r, 0, STORE_SQL_CHAT_NCOLS))
    err = PARLEY_ENOT_FOUND; /* no message: cannot happen for a participant (as before: no row) */
  if (err == 0)
    err = pg__read_msg(r, 0, STORE_SQL_CHAT_NCOLS, &req->out.msg);
  if (err == 0)
    req->out.duplicate = strcmp(PQgetvalue(r, 0, STORE_SQL_CHAT_NCOLS + 9), "t") == 0;
  return err;
}

static int pg_msg_append(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p;
  PGresult *r = NULL;
  int err = pg__msg_append_params(req, &p);
  if (err == 0)
    err = pg__q(be, PG_MSG_APPEND, &p, &r);
  if (err == 0)
    err = pg__msg_append_take(req, r);
  PQclear(r);
  return err;
}

/* As pg__msg_append_params() for READ_SET (migration 4's parley_read_set): locked like a send, so
 * read markers and sends of one chat always lock in the same order; the marker never passes
 * chats.last_seq. */
static int pg__read_set_params(const struct store_req *req, struct pgp *p) {
  if (req->in.seq < 0 || !PG_TERMINATED(req->in.slug) || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  memset(p, 0, sizeof *p);
  pgp_text(p, req->in.slug);
  pgp_i64(p, req->in.user_id);
  pgp_i64(p, req->in.seq);
  pgp_i64(p, req->in.now);
  return 0;
}

static int pg__read_set_take(struct store_req *req, const PGresult *r) {
  int err = pg__chat_take(req, r, ACL_CHAT_READ);
  if (err == 0 && PQgetisnull(r, 0, STORE_SQL_CHAT_NCOLS))
    err = PARLEY_EINTERNAL; /* the function and acl_check() disagree on who may read */
  if (err == 0)
    req->out.read_seq = pg__i64(r, 0, STORE_SQL_CHAT_NCOLS);
  return err;
}

static int pg_read_set(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p;
  PGresult *r = NULL;
  int err = pg__read_set_params(req, &p);
  if (err == 0)
    err = pg__q(be, PG_READ_SET, &p, &r);
  if (err == 0)
    err = pg__read_set_take(req, r);
  PQclear(r);
  return err;
}

/* ---- membership ---- */

static int pg_chat_members(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  size_t rows;
  int err = pg__chat_access(be, req, ACL_CHAT_VIEW, 0);
  if (err)
    return err;
  pgp_i64(&p, req->out.chat.id);
  err = pg__q(be, PG_MEMBERS, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  if (rows > 0) {
    req->out.members = calloc(rows, sizeof *req->out.members);
    if (req->out.members == NULL) {
      PQclear(r);
      return PARLEY_EUNAVAILABLE;
    }
  }
  for (size_t i = 0; i < rows; i++) {
    struct store_member *m = &req->out.members[i];
    pg__read_user(r, (int)i, 0, &m->user);
    m->role = chat_role_parse(pg__str(r, (int)i, 4));
    m->joined_at = pg__i64(r, (int)i, 5);
    m->user.last_seen = pg__i64(r, (int)i, 6);
  }
  req->out.n_members = rows;
  PQclear(r);
  return 0;
}

static int pg__chat_update(void *arg, const struct store_req *req, int64_t chat_id) {
  struct pg *be = arg;
  const unsigned mask = req->in.update_mask;
  struct pgp p = {0};
  char pub[4], cap[16], pol[4];
  snprintf(pub, sizeof pub, "%d", req->in.is_public != 0);
  snprintf(cap, sizeof cap, "%d", req->in.max_participants);
  snprintf(pol, sizeof pol, "%d", (int)req->in.invite_policy);
  pgp_i64(&p, chat_id);
  pgp_text(&p, (mask & STORE_UPD_TITLE) ? req->in.title : NULL);
  pgp_text(&p, (mask & STORE_UPD_PUBLIC) ? pub : NULL);
  pgp_text(&p, (mask & STORE_UPD_CAP) ? cap : NULL);
  pgp_text(&p, (mask & STORE_UPD_POLICY) ? pol : NULL);
  return pg__run(be, PG_CHAT_UPDATE, &p);
}
static int pg__chat_archive(void *arg, struct store_req *req, int64_t chat_id) {
  struct pg *be = arg;
  struct pgp p = {0};
  int err;
  pgp_i64(&p, chat_id);
  err = pg__run(be, PG_CHAT_ARCHIVE, &p);
  if (err)
    return err;
  return pg__invites_read(be, req, PG_INV_PENDING_OF_CHAT, &p, SIZE_MAX, NULL);
}

/* [lo, hi) holds every string that starts with lo. SQLite's hi (last byte + 1) is not always
 * valid UTF-8, which PostgreSQL refuses in a text parameter: then hi is lo followed by the
 * highest code point, U+10FFFF (only names continuing with that noncharacter are missed). */
static int pg__users_search(void *arg, struct store_req *req, const char *lo, size_t len,
                            int64_t mark_chat, int limit) {
  struct pg *be = arg;
  char hi[STORE_DISPLAY_NAME_MAX + 5]; /* lo and 4 more bytes */
  struct pgp p = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;

  memcpy(hi, lo, len + 1);
  if ((unsigned char)lo[len - 1] < 0x7f)
    hi[len - 1] = (char)(lo[len - 1] + 1);
  else
    memcpy(hi + len, "\xf4\x8f\xbf\xbf", 5);
  pgp_text(&p, lo);
  pgp_text(&p, hi);
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, mark_chat);
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, limit);
  err = pg__q(be, PG_USERS_SEARCH, &p, &r);
  if (err)
    return err;
  req->out.hits = calloc((size_t)limit, sizeof *req->out.hits);
  if (req->out.hits == NULL) {
    PQclear(r);
    return PARLEY_EUNAVAILABLE;
  }
  rows = (size_t)PQntuples(r);
  for (size_t i = 0; i < rows && i < (size_t)limit; i++) {
    struct store_user_hit *h = &req->out.hits[req->out.n_hits++];
    pg__read_user(r, (int)i, 0, &h->user);
    h->participant = pg__int(r, (int)i, 4) != 0;
    h->invited = pg__int(r, (int)i, 5) != 0;
    h->user.last_seen = pg__i64(r, (int)i, 6);
  }
  PQclear(r);
  return 0;
}
/* ---- invitations ---- */

static int pg_invite_list(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, STORE_LIMIT_MAX);
  return pg__invites_read(be, req, PG_INV_LIST, &p, STORE_LIMIT_MAX, NULL);
}

static int pg__invites_due(void *arg, struct store_req *req, int limit) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, (int64_t)limit + 1); /* one more tells whether more are due */
  return pg__invites_read(be, req, PG_INV_DUE, &p, (size_t)limit, &req->out.has_more);
}
/* ---- presence ---- */

static int pg_presence_audience(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;
  pgp_i64(&p, req->in.user_id);
  err = pg__q(be, PG_AUDIENCE, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  if (rows > 0) {
    req->out.member_ids = malloc(rows * sizeof *req->out.member_ids);
    if (req->out.member_ids == NULL) {
      PQclear(r);
      return PARLEY_EUNAVAILABLE;
    }
  }
  for (size_t i = 0; i < rows; i++)
    req->out.member_ids[i] = pg__i64(r, (int)i, 0);
  req->out.n_member_ids = rows;
  PQclear(r);
  return 0;
}

static int pg_user_seen(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, req->in.seq);
  return pg__run(be, PG_USER_SEEN, &p);
}

/* ---- connection ---- */

/* Ranks synchronous_commit settings by what a commit waits for. */
static int pg__sync_rank(const char *v) {
  static const char *const order[] = {"off", "local", "remote_write", "on", "remote_apply"};
  for (int i = 0; i < (int)(sizeof order / sizeof order[0]); i++)
    if (strcmp(v, order[i]) == 0)
      return i;
  return 3; /* the aliases true/yes/1 mean on */
}

/* Reads one setting (SHOW) into buf. */
static int pg__show(struct pg *be, const char *name, char *buf, size_t cap) {
  char sql[64];
  PGresult *res;
  int err = 0;
  snprintf(sql, sizeof sql, "SHOW %s", name);
  res = PQexec(be->conn, sql);
  if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
    snprintf(buf, cap, "%s", PQgetvalue(res, 0, 0));
  else
    err = pg__err(be, res, sql);
  PQclear(res);
  return err;
}

/* Session settings every connection needs, then the statements. Durability: an acknowledged
 * message must survive a crash of this node (any setting does: the commit has reached the
 * server) and of the database server. `normal` therefore never runs below synchronous_commit =
 * local (flushed to the primary's WAL before COMMIT returns); `fsync` never below `on` (also
 * flushed by the synchronous standbys, when the cluster names any). A stronger server default is
 * kept. docs/operations.md says what this means for an operator. */
static int pg__session_setup(struct pg *be) {
  const char *want = be->durability == STORE_DURABILITY_FSYNC ? "on" : "local";
  char cur[64] = "", fsync[16] = "";
  char sql[96];
  int err;

  /* READ COMMITTED whatever the server's default: the lock-then-read steps above rely on each
   * statement seeing what was committed before it started. */
  err = pg__simple(be, "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED");
  if (err == 0)
    err = pg__simple(be, "SET client_encoding = 'UTF8'");
  /* A batch never waits for another node's lock forever: its requests fail as unavailable. */
  if (err == 0)
    err = pg__simple(be, "SET lock_timeout = '10s'");
  if (err == 0)
    err = pg__show(be, "synchronous_commit", cur, sizeof cur);
  if (err)
    return err;
  if (pg__sync_rank(cur) < pg__sync_rank(want)) {
    snprintf(sql, sizeof sql, "SET synchronous_commit = '%s'", want);
    err = pg__simple(be, sql);
    if (err)
      return err;
  }
  if (pg__show(be, "fsync", fsync, sizeof fsync) == 0 && strcmp(fsync, "off") == 0)
    log_warn("store: the PostgreSQL server runs with fsync=off: a crash of the database server "
             "can lose acknowledged messages");
  for (int i = 0; i < PG__COUNT; i++) {
    PGresult *res = PQprepare(be->conn, pg_names[i], pg_sql[i], 0, NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
      err = pg__err(be, res, pg_sql[i]);
      PQclear(res);
      return err;
    }
    PQclear(res);
  }
  return 0;
}

/* Server notices (IF NOT EXISTS skipping, and the like) go to the log, not to stderr. */
static void pg__notice(void *arg, const char *message) {
  (void)arg;
  log_debug("store: postgres: %s", message);
}

static PGconn *pg__connect(const char *uri) {
  /* Earlier keywords are overridden by what the URI says, so these are defaults only. */
  static const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
  const char *vals[] = {"10", "parley", uri, NULL};
  return PQconnectdbParams(keys, vals, 1);
}

/* Replaces a broken connection. Returns 0 or PARLEY_EUNAVAILABLE. */
static int pg__reconnect(struct pg *be) {
  PQreset(be->conn);
  if (PQstatus(be->conn) != CONNECTION_OK) {
    log_warn("store: postgres: reconnect failed: %s", PQerrorMessage(be->conn));
    return PARLEY_EUNAVAILABLE;
  }
  log_info("store: postgres: reconnected");
  return pg__session_setup(be) ? PARLEY_EUNAVAILABLE : 0;
}

static void pg_close(void *arg) {
  struct pg *be = arg;
  if (be == NULL)
    return;
  log_info("store: postgres: %llu round trips for %llu statements",
           (unsigned long long)be->round_trips, (unsigned long long)be->statements);
  PQfinish(be->conn);
  free(be->uri);
  free(be);
}

static int pg_open(void **out, const char *uri, enum store_durability durability) {
  struct pg *be = NULL;
  int err = 0;

  *out = NULL;
  be = calloc(1, sizeof *be);
  if (be == NULL)
    return PARLEY_EUNAVAILABLE;
  be->durability = durability;
  be->uri = strdup(uri);
  if (be->uri == NULL) {
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  be->conn = pg__connect(uri);
  if (be->conn == NULL || PQstatus(be->conn) != CONNECTION_OK) {
    /* libpq's message names host and port, never the password. */
    log_error("store: cannot connect to PostgreSQL: %s",
              be->conn ? PQerrorMessage(be->conn) : "no memory");
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  PQsetNoticeProcessor(be->conn, pg__notice, NULL);
  if (PQserverVersion(be->conn) < 110000) {
    log_error("store: PostgreSQL %d is too old (11 or newer needed)", PQserverVersion(be->conn));
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  err = store__pg_migrate(be->conn, clock_wall_ms(), NULL);
  if (err)
    goto cleanup;
  err = pg__session_setup(be);
  if (err)
    goto cleanup;
  log_info("store: postgres at %s:%s, database %s", PQhost(be->conn), PQport(be->conn),
           PQdb(be->conn));
  *out = be;
  be = NULL;
cleanup:
  pg_close(be);
  return err;
}

/* Transaction control is deferred (be->pend) and rides in the pipeline of the next statement:
 * a request that is a single statement costs one round trip, SAVEPOINT and the previous
 * request's RELEASE included, and a batch costs one more for COMMIT. Nothing is acknowledged
 * before COMMIT succeeded, so a RELEASE that fails when it is finally sent still fails the whole
 * batch (be->broken), as it did when it was sent at once. */
static int pg_begin(void *arg) {
  struct pg *be = arg;
  be->doomed = 0;
  be->broken = 0;
  be->sp_open = 0;
  be->pend = 0;
  /* A pipeline cut short (the connection failed under it) may have left libpq in pipeline mode
   * with answers pending: a fresh connection is the only clean state after that. */
  if ((PQstatus(be->conn) != CONNECTION_OK || PQpipelineStatus(be->conn) != PQ_PIPELINE_OFF) &&
      pg__reconnect(be) != 0)
    return PARLEY_EUNAVAILABLE;
  be->pend = PG_PEND_BEGIN; /* retried once on a fresh connection: see pg__exchange() */
  return 0;
}

static int pg_commit(void *arg) {
  struct pg *be = arg;
  struct pg_call calls[3];
  PGresult *res[3] = {NULL, NULL, NULL};
  int n = 0, err;

  if (be->broken)
    return PARLEY_EUNAVAILABLE;
  if (be->pend & PG_PEND_BEGIN) {
    be->pend = 0; /* no request reached the server: there is no transaction to commit */
    return 0;
  }
  memset(calls, 0, sizeof calls);
  if (be->pend & PG_PEND_UNDO) {
    calls[n++].sql = "ROLLBACK TO SAVEPOINT req";
    calls[n++].sql = "RELEASE SAVEPOINT req";
  }
  /* A pending RELEASE is implied by COMMIT. */
  calls[n++].sql = "COMMIT";
  be->pend = 0;
  err = pg__pipeline(be, calls, n, res, NULL);
  if (err == 0 && strcmp(PQcmdStatus(res[n - 1]), "COMMIT") != 0)
    err = PARLEY_EUNAVAILABLE; /* COMMIT of a failed transaction answers ROLLBACK */
  for (int i = 0; i < n; i++)
    PQclear(res[i]);
  /* A connection lost during COMMIT leaves the outcome unknown: the batch is reported
   * unavailable, and the retries are safe because sends carry their clientMsgId. */
  return err;
}

static int pg_rollback(void *arg) {
  struct pg *be = arg;
  be->pend = 0;
  be->sp_open = 0;
  if (PQstatus(be->conn) != CONNECTION_OK || PQtransactionStatus(be->conn) == PQTRANS_IDLE)
    return 0;
  return pg__simple(be, "ROLLBACK");
}

static int pg_savepoint(void *arg) {
  struct pg *be = arg;
  if (be->broken)
    return PARLEY_EUNAVAILABLE;
  be->sp_open = 0;
  be->pend |= PG_PEND_SAVEPOINT;
  return 0;
}

static int pg_release(void *arg, int undo) {
  struct pg *be = arg;
  if (be->broken) {
    log_warn("store: postgres: the transaction ended under a request");
    return PARLEY_EUNAVAILABLE;
  }
  if (!be->sp_open) {
    be->pend &= ~(unsigned)PG_PEND_SAVEPOINT; /* the request sent nothing: nothing to undo */
    return 0;
  }
  /* A request whose statement failed leaves the transaction in error until the ROLLBACK TO,
   * which also drops the locks the request took; it goes first in the next pipeline. */
  be->sp_open = 0;
  be->pend |= undo ? PG_PEND_UNDO : PG_PEND_RELEASE;
  return 0;
}

/* ---- the primitives of store_rules.c ---- */

static int pg__participant_delete(void *arg, int64_t chat_id, int64_t user_id) {
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  return pg__run(arg, PG_PARTICIPANT_DELETE, &p);
}

static int pg__removal_put(void *arg, int64_t chat_id, int64_t user_id, int64_t by, int64_t now) {
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  pgp_i64(&p, by);
  pgp_i64(&p, now);
  return pg__run(arg, PG_REMOVAL_INSERT, &p);
}

static int pg__removal_delete(void *arg, int64_t chat_id, int64_t user_id) {
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  return pg__run(arg, PG_REMOVAL_DELETE, &p);
}

static int pg__invite_pending_for(void *arg, int64_t chat_id, int64_t to_id,
                                  struct store_invite *inv, int *found) {
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, chat_id);
  pgp_i64(&p, to_id);
  err = pg__q(arg, PG_INV_PENDING_FOR, &p, &r);
  *found = err == 0 && PQntuples(r) == 1;
  if (*found)
    err = pg__read_invite(r, 0, inv, NULL, NULL);
  PQclear(r);
  return err;
}

static int pg__invite_insert(void *arg, struct store_req *req, int64_t chat_id, int64_t to_id,
                             struct store_invite *inv) {
  struct pgp p = {0};
  PGresult *r = NULL;
  int64_t id;
  int err;
  pgp_i64(&p, chat_id);
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, to_id);
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, req->in.expires_at);
  err = pg__q(arg, PG_INV_INSERT, &p, &r);
  if (err)
    return err;
  id = pg__i64(r, 0, 0);
  PQclear(r);
  return pg__invite_load(arg, id, inv, NULL, NULL);
}

static const struct store_prims pg_prims = {
    .chat_find = pg__chat_find,
    .chat_load = pg__chat_load,
    .chat_touch = pg__chat_touch,
    .chat_archive = pg__chat_archive,
    .user_by_id = pg__user_by_id,
    .user_by_username = pg__user_by_username,
    .role_of = pg__role_of,
    .set_role = pg__set_role,
    .set_owner = pg__set_owner,
    .participant_add = pg__participant_add,
    .participant_delete = pg__participant_delete,
    .participants = pg__participants,
    .removal_put = pg__removal_put,
    .removal_delete = pg__removal_delete,
    .invite_load = pg__invite_load_locked,
    .invite_set_status = pg__invite_set_status,
    .invite_pending_for = pg__invite_pending_for,
    .invite_insert = pg__invite_insert,
    .user_insert = pg__user_insert,
    .slug_taken = pg__slug_taken,
    .chat_insert = pg__chat_insert,
    .chat_update = pg__chat_update,
    .removed = pg__removed,
    .msgs = pg__chat_msgs,
    .users_search = pg__users_search,
    .invites_due = pg__invites_due,
    .op =
        {
            [STORE_USER_BY_NAME] = pg_user_by_name,
            [STORE_SESSION_CREATE] = pg_session_create,
            [STORE_SESSION_GET] = pg_session_get,
            [STORE_SESSION_DELETE] = pg_session_delete,
            [STORE_CHAT_LIST] = pg_chat_list,
            [STORE_MSG_APPEND] = pg_msg_append,
            [STORE_READ_SET] = pg_read_set,
            [STORE_CHAT_MEMBERS] = pg_chat_members,
            [STORE_INVITE_LIST] = pg_invite_list,
            [STORE_PRESENCE_AUDIENCE] = pg_presence_audience,
            [STORE_USER_SEEN] = pg_user_seen,
        },
};

static int pg_exec(void *arg, struct store_req *req) {
  struct pg *be = arg;
  if (be->doomed)
    return PARLEY_EUNAVAILABLE; /* see pg__err(): reported, for the client to retry */
  return store_rules_exec(&pg_prims, be, req);
}
/* ---- batches ---- */

#define PG_PIPE_MAX 64 /* requests sent in one pipeline, three statements each */
/* How long a send (or read marker) may wait for a busy chat in the lane's queue, not on the
 * chat's lock; older ones wait on the lock, first thing in their transaction (pg__claim_chats). */
#define PG_DEFER_NS (20ull * 1000000ull)

/* Requests that are one statement whose refusals (acl_check on the returned row) have written
 * nothing: they need no savepoint of their own around C code, so a run of them goes in one
 * pipeline. The rest take the request-by-request path. */
static int pg__pipeable(const struct store_req *r) {
  return r->op == STORE_MSG_APPEND || r->op == STORE_READ_SET;
}

static int pg__pipe_params(const struct store_req *r, struct pgp *p, enum pg_stmt *id) {
  *id = r->op == STORE_MSG_APPEND ? PG_MSG_APPEND : PG_READ_SET;
  return r->op == STORE_MSG_APPEND ? pg__msg_append_params(r, p) : pg__read_set_params(r, p);
}

static int pg__pipe_take(struct store_req *r, const PGresult *res) {
  return r->op == STORE_MSG_APPEND ? pg__msg_append_take(r, res) : pg__read_set_take(r, res);
}

/* Runs the pipeable requests that follow one another from `first` (at most PG_PIPE_MAX) in one
 * round trip: SAVEPOINT, the statement and RELEASE for each, behind any pending control. When
 * request j fails, the server skips everything after it: j's savepoint is rolled back at the
 * head of the next pipeline, which resends the requests after j (or, after a deadlock, fails
 * them as pg_exec() would). Sets each status; *txerr is set when the transaction is in doubt.
 * Returns the first request not handled. */
static struct store_req *pg__run_pipelined(struct pg *be, struct store_req *first, int *txerr) {
  struct store_req *reqs[PG_PIPE_MAX];
  struct pgp params[PG_PIPE_MAX];
  enum pg_stmt ids[PG_PIPE_MAX];
  struct pg_call calls[3 * PG_PIPE_MAX];
  PGresult *res[3 * PG_PIPE_MAX];
  struct store_req *r = first;
  int n = 0, start = 0;

  for (; r != NULL && n < PG_PIPE_MAX && pg__pipeable(r); r = r->next) {
    int st;
    if (r->status == STORE_DEFER)
      continue; /* its chat is busy elsewhere (pg__claim_chats) */
    st = pg__pipe_params(r, &params[n], &ids[n]);
    if (st) {
      r->status = st; /* refused before the database: nothing to send */
      continue;
    }
    reqs[n++] = r;
  }
  memset(calls, 0, sizeof calls);
  while (start < n) {
    int m = 0, failed = 0, done, err;
    for (int i = start; i < n; i++) {
      calls[m].sql = "SAVEPOINT req";
      calls[m + 1].sql = NULL;
      calls[m + 1].id = ids[i];
      calls[m + 1].p = &params[i];
      calls[m + 2].sql = "RELEASE SAVEPOINT req";
      m += 3;
    }
    err = pg__exchange_at(be, calls, m, res, &failed);
    if (err && failed < 0) {
      *txerr = err;
      return r;
    }
    done = err ? failed / 3 : n - start;
    for (int i = 0; i < done; i++) {
      struct store_req *q = reqs[start + i];
      q->status = pg__pipe_take(q, res[3 * i + 1]);
      /* Its savepoint is released: only "nothing was written" answers may fail it now. */
      if (q->status == PARLEY_EUNAVAILABLE)
        *txerr = PARLEY_EUNAVAILABLE;
    }
    for (int i = 0; i < m; i++)
      PQclear(res[i]);
    if (err == 0 || *txerr)
      break;
    if (failed % 3 != 1 || be->broken) {
      *txerr = PARLEY_EUNAVAILABLE; /* SAVEPOINT or RELEASE failed, or the connection went */
      break;
    }
    reqs[start + done]->status = err;
    be->pend = PG_PEND_UNDO;
    start += done + 1;
    if (be->doomed) { /* see pg__err(): the rest fail at once, for the clients to retry */
      for (int i = start; i < n; i++)
        reqs[i]->status = PARLEY_EUNAVAILABLE;
      break;
    }
  }
  return r;
}

/* Sort order of a batch: requests without a slug first, then by slug; stable (qsort is not, so
 * the submission index breaks ties). */
struct pg__ordered {
  struct store_req *r;
  size_t idx;
};

static int pg__order_cmp(const void *a, const void *b) {
  const struct pg__ordered *x = a, *y = b;
  int c = strcmp(x->r->in.slug, y->r->in.slug);
  if (c)
    return c;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Relinks `batch` in lock order and returns the new head; `saved` (caller's array of n) keeps the
 * submission order so pg__restore_order() can put the links back. Returns NULL if the batch has
 * one request or memory ran out (the batch then runs as submitted). */
static struct store_req *pg__lock_order(struct store_req *batch, struct pg__ordered **saved,
                                        size_t *n_out) {
  size_t n = 0, i = 0;
  struct pg__ordered *v;
  for (struct store_req *r = batch; r; r = r->next)
    n++;
  if (n < 2 || (v = malloc(2 * n * sizeof *v)) == NULL)
    return NULL;
  for (struct store_req *r = batch; r; r = r->next, i++)
    v[i] = v[n + i] = (struct pg__ordered){r, i};
  qsort(v, n, sizeof *v, pg__order_cmp);
  for (i = 0; i < n; i++)
    v[i].r->next = i + 1 < n ? v[i + 1].r : NULL;
  *saved = v;
  *n_out = n;
  return v[0].r;
}

static void pg__restore_order(struct pg__ordered *saved, size_t n) {
  const struct pg__ordered *orig = saved + n;
  for (size_t i = 0; i < n; i++)
    orig[i].r->next = i + 1 < n ? orig[i + 1].r : NULL;
  free(saved);
}

/* 1 if `slug` is among the first n of `v`. */
static int pg__slug_in(const char *const *v, size_t n, const char *slug) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], slug) == 0)
      return 1;
  return 0;
}

/* Runs CHAT_CLAIM or CHAT_CLAIM_WAIT (`id`) on the n slugs of `v`; the slugs locked go to *got
 * (n_got of them; pointers into *res, which the caller PQclear()s; *got the caller frees). */
static int pg__claim(struct pg *be, enum pg_stmt id, const char *const *v, size_t n,
                     PGresult **res, const char ***got, size_t *n_got) {
  struct buf arr;
  struct pgp p = {0};
  size_t len = 3;
  int bad = 0, err;

  *res = NULL;
  *got = NULL;
  *n_got = 0;
  for (size_t i = 0; i < n; i++)
    len += 2 * strlen(v[i]) + 3;
  /* A text[] literal of quoted elements; '"' and '\\' escaped (slugs never hold them, but the
   * request came from a client). */
  buf_init(&arr, len);
  bad |= buf_append(&arr, "{", 1);
  for (size_t i = 0; i < n; i++) {
    bad |= buf_append(&arr, i ? ",\"" : "\"", i ? 2 : 1);
    for (const char *c = v[i]; *c; c++) {
      if (*c == '"' || *c == '\\')
        bad |= buf_append(&arr, "\\", 1);
      bad |= buf_append(&arr, c, 1);
    }
    bad |= buf_append(&arr, "\"}", i + 1 == n ? 2 : 1);
  }
  if (bad) {
    buf_dispose(&arr);
    return PARLEY_EINTERNAL;
  }
  pgp_text(&p, arr.data);
  err = pg__q(be, id, &p, res);
  buf_dispose(&arr);
  if (err) {
    be->broken = 1; /* failed outside any savepoint: the transaction is aborted */
    return err;
  }
  *n_got = (size_t)PQntuples(*res);
  if (*n_got && (*got = malloc(*n_got * sizeof **got)) == NULL)
    return PARLEY_EINTERNAL;
  for (size_t i = 0; i < *n_got; i++)
    (*got)[i] = PQgetvalue(*res, (int)i, 0);
  return 0;
}

/* Takes the locks of the chats of the batch's sends and read markers before anything else, so
 * that a batch never waits for one chat's lock while it holds others: that made several nodes'
 * batches queue behind each other's commits (a lock convoy, measured at p99 0.3-2.6 s with three
 * nodes at 2,000 sends/s). First, in slug order and waiting, the chats of requests older than
 * PG_DEFER_NS (nobody is starved); then, without waiting, the others. Every request of the batch
 * on a chat another transaction holds is deferred (STORE_DEFER): it goes back to the lane's
 * queue and comes again with the next batch. `batch` is in lock order. Returns 0, or the error
 * that put the transaction in doubt. */
static int pg__claim_chats(struct pg *be, struct store_req *batch) {
  const char **want[2] = {NULL, NULL}, **got = NULL;
  size_t n_want[2] = {0, 0}, cap[2] = {0, 0}, n_got = 0;
  PGresult *res = NULL;
  uint64_t now = clock_mono_ns();
  const char *prev = "";
  int err = 0;

  for (struct store_req *r = batch; r != NULL; r = r->next) {
    /* 1: wait for it. A chat's first request in the batch is its oldest and decides. */
    int k = now - r->t_submit_ns >= PG_DEFER_NS;
    if (!pg__pipeable(r) || !PG_TERMINATED(r->in.slug) || r->in.slug[0] == '\0' ||
        strcmp(prev, r->in.slug) == 0)
      continue; /* in lock order, so a chat's requests are adjacent */
    prev = r->in.slug;
    if (n_want[k] == cap[k]) {
      const char **nw = realloc(want[k], (cap[k] = cap[k] ? 2 * cap[k] : 16) * sizeof **want);
      if (nw == NULL)
        goto out; /* nothing claimed, nothing deferred: the batch waits for its locks */
      want[k] = nw;
    }
    want[k][n_want[k]++] = r->in.slug;
  }
  if (n_want[1]) {
    err = pg__claim(be, PG_CHAT_CLAIM_WAIT, want[1], n_want[1], &res, &got, &n_got);
    PQclear(res);
    free(got);
    res = NULL;
    got = NULL;
    if (err)
      goto out;
  }
  if (n_want[0] == 0)
    goto out;
  err = pg__claim(be, PG_CHAT_CLAIM, want[0], n_want[0], &res, &got, &n_got);
  if (err)
    goto out;
  /* Held elsewhere, or no such chat (refused as ever once it has waited long enough). */
  for (struct store_req *r = batch; r != NULL; r = r->next)
    if (PG_TERMINATED(r->in.slug) && pg__slug_in(want[0], n_want[0], r->in.slug) &&
        !pg__slug_in(got, n_got, r->in.slug))
      r->status = STORE_DEFER;
out:
  if (!be->broken)
    err = 0; /* out of memory, not the database: the batch runs as it is, waiting for locks */
  free(got);
  PQclear(res);
  free(want[0]);
  free(want[1]);
  return err;
}

static int pg_exec_batch(void *arg, struct store_req *batch) {
  struct pg *be = arg;
  struct pg__ordered *saved = NULL;
  size_t n = 0;
  struct store_req *sorted = pg__lock_order(batch, &saved, &n);
  struct store_req *r = sorted ? sorted : batch;
  int err = pg__claim_chats(be, r);
  while (r != NULL && err == 0) {
    if (r->status == STORE_DEFER) {
      r = r->next;
      continue;
    }
    if (pg__pipeable(r) && !be->doomed) {
      r = pg__run_pipelined(be, r, &err);
      continue;
    }
    err = pg_savepoint(be);
    if (err)
      break;
    r->status = pg_exec(be, r);
    err = pg_release(be, r->status != 0);
    r = r->next;
  }
  if (sorted)
    pg__restore_order(saved, n);
  return err;
}

const struct store_backend_ops store_pg_ops = {
    .name = "postgres",
    .conns = PG_CONNS,
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .exec = pg_exec,
    .exec_batch = pg_exec_batch,
};
