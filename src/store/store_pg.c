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
#include "store/store_pg_int.h"

const char *const pg_sql[PG__COUNT] = {
#define PG__SQL(name, sql) sql,
    PG_STATEMENTS(PG__SQL)
#undef PG__SQL
};

const char *const pg_names[PG__COUNT] = {
#define PG__NAME(name, sql) "parley_" #name,
    PG_STATEMENTS(PG__NAME)
#undef PG__NAME
};

/* ---- errors ---- */

/* Maps a failed result to the error table, as sq__err() does for SQLite: operational failures
 * (connection, resources, lock waits, deadlocks, serialization) are `unavailable` so that clients
 * retry; constraint violations are the caller's doing; the rest is a bug of ours. */
int pg__err(struct pg *be, const PGresult *res, const char *what) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(be->conn);

  snprintf(be->last_state, sizeof be->last_state, "%s", state ? state : "");

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
  if (strcmp(state, "55P03") == 0 || strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
      strncmp(state, "57", 2) == 0 || strcmp(state, "25006") == 0) {
    log_warn("store: postgres: %s: %s", what, msg);
    return PARLEY_EUNAVAILABLE;
  }
  log_error("store: postgres: %s: [%s] %s", what, state, msg);
  return PARLEY_EINTERNAL;
}

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
    int ok = c->sql ? PQsendQueryParams(conn, c->sql, p ? p->n : 0, NULL, p ? p->v : NULL,
                                        p ? p->len : NULL, p ? p->fmt : NULL, 0)
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
int pg__exchange_at(struct pg *be, const struct pg_call *calls, int n, PGresult **res,
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
int pg__exchange(struct pg *be, const struct pg_call *calls, int n, PGresult **res) {
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
int pg__q(struct pg *be, enum pg_stmt id, const struct pgp *p, PGresult **out) {
  struct pg_call call = {id, p, NULL};
  PGresult *res = NULL;
  int err = pg__exchange(be, &call, 1, &res);
  if (out)
    *out = res;
  else
    PQclear(res);
  return err;
}

int pg__run(struct pg *be, enum pg_stmt id, const struct pgp *p) {
  return pg__q(be, id, p, NULL);
}

/* Runs `id` and sets *changes to the number of rows it wrote. */
int pg__run_n(struct pg *be, enum pg_stmt id, const struct pgp *p, long *changes) {
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

int pg_savepoint(void *arg) {
  struct pg *be = arg;
  if (be->broken)
    return PARLEY_EUNAVAILABLE;
  be->sp_open = 0;
  be->pend |= PG_PEND_SAVEPOINT;
  return 0;
}

int pg_release(void *arg, int undo) {
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

int pg_exec(void *arg, struct store_req *req) {
  struct pg *be = arg;
  int err;
  if (be->doomed)
    return PARLEY_EUNAVAILABLE; /* see pg__err(): reported, for the client to retry */
  if (store_rules_bots_exec(&pg_prims, be, req, &err) == 0)
    return err;
  if (store_rules_live_exec(&pg_prims, be, req, &err) == 0)
    return err; /* an op of issue 18 */
  return store_rules_exec(&pg_prims, be, req);
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
