/* store_pg_rows.c - the rows of the PostgreSQL backend: column readers, the chat lookups that lock
 * first, and the primitives of store_rules.c's membership and invitation rules (see store_pg.c for
 * the locking argument), on the lane's connection.
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

/* ---- column readers ---- */

int64_t pg__i64(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int pg__int(const PGresult *r, int row, int col) {
  return (int)pg__i64(r, row, col);
}

const char *pg__str(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* As sq__copy(): cut before a character that does not fit, never inside it. */
static void pg__copy(char *dst, size_t cap, const PGresult *r, int row, int col) {
  store_copy_text(dst, cap, PQgetvalue(r, row, col),
                  PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col));
}

int pg__dup(char **dst, const PGresult *r, int row, int col) {
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

void pg__read_user(const PGresult *r, int row, int col, struct store_user *u) {
  u->id = pg__i64(r, row, col);
  pg__copy(u->username, sizeof u->username, r, row, col + 1);
  pg__copy(u->display_name, sizeof u->display_name, r, row, col + 2);
  u->created_at = pg__i64(r, row, col + 3);
}

int pg__read_chat(const PGresult *r, int row, struct store_chat *c) {
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
int pg__read_msg(const PGresult *r, int row, int col, struct store_msg *m) {
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

int pg__chat_load(void *arg, const char *slug, int64_t user_id, struct store_chat *c) {
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
int pg__chat_lock(void *arg, const char *slug) {
  struct pg *be = arg;
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

/* Reads the chat row that starts a result of CHAT_BY_SLUG, MSG_APPEND or READ_SET
 * (STORE_SQL_CHAT_COLS first) into out.chat and decides `op` on it as store_chat_access() does. No
 * row, or a NULL id (the functions' answer), is not found. */
int pg__chat_take(struct store_req *req, const PGresult *r, enum acl_op op) {
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

int pg__chat_touch(void *arg, int64_t chat_id, int64_t now) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, now);
  return pg__run(be, PG_CHAT_TOUCH, &p);
}

/* One user row from `stmt` with parameters p (borrowed) into *u: PARLEY_ENOT_FOUND for none. */
static int pg__user_row(struct pg *be, enum pg_stmt stmt, const struct pgp *p,
                        struct store_user *u) {
  PGresult *r = NULL;
  int err = pg__q(be, stmt, p, &r);
  if (err == 0) {
    if (PQntuples(r) == 1) {
      pg__read_user(r, 0, 0, u);
      pg__read_avatar(r, 0, 4, u);
    } else
      err = PARLEY_ENOT_FOUND;
  }
  PQclear(r);
  return err;
}

int pg__user_by_username(void *arg, struct store_req *req, const char *username,
                         struct store_user *u) {
  struct pgp p = {0};
  (void)req;
  pgp_text(&p, username);
  return pg__user_row(arg, PG_USER_BY_USERNAME, &p, u);
}

int pg__user_by_id(void *arg, int64_t id, struct store_user *u) {
  struct pgp p = {0};
  pgp_i64(&p, id);
  return pg__user_row(arg, PG_USER_BY_ID, &p, u);
}

int pg__role_of(void *arg, int64_t chat_id, int64_t user_id, enum chat_role *role) {
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

int pg__set_role(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  pgp_text(&p, chat_role_name(role));
  return pg__run(be, PG_PARTICIPANT_SET_ROLE, &p);
}

int pg__set_owner(void *arg, int64_t chat_id, int64_t owner_id) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, owner_id);
  return pg__run(be, PG_CHAT_SET_OWNER, &p);
}

int pg__participant_add(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role,
                        int64_t now) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  pgp_text(&p, chat_role_name(role));
  pgp_i64(&p, now);
  return pg__run(be, PG_PARTICIPANT_INSERT, &p);
}

int pg__participants(void *arg, int64_t chat_id, struct acl_member **out, size_t *n) {
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
int pg__invites_read(struct pg *be, struct store_req *req, enum pg_stmt id, const struct pgp *p,
                     size_t limit, int *more) {
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
int pg__invite_load_locked(void *arg, int64_t id, struct store_invite *inv, int64_t *chat_id,
                           int *archived) {
  struct pg *be = arg;
  int64_t cid = 0;
  int err = pg__invite_load(be, id, inv, &cid, NULL);
  if (err == 0)
    err = pg__chat_lock_id(be, cid);
  if (err == 0)
    err = pg__invite_load(be, id, inv, chat_id, archived);
  return err;
}

int pg__invite_set_status(void *arg, int64_t id, enum invite_status status, int64_t now) {
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

int pg__slug_taken(void *arg, const char *slug, int *taken) {
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
int pg__chat_msgs(void *arg, struct store_req *req, int64_t lo, int64_t hi, int limit, int *more) {
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

/* ---- the primitives of store_rules.c ---- */

int pg__participant_delete(void *arg, int64_t chat_id, int64_t user_id) {
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  return pg__run(arg, PG_PARTICIPANT_DELETE, &p);
}

int pg__removal_put(void *arg, int64_t chat_id, int64_t user_id, int64_t by, int64_t now) {
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  pgp_i64(&p, by);
  pgp_i64(&p, now);
  return pg__run(arg, PG_REMOVAL_INSERT, &p);
}

int pg__removal_delete(void *arg, int64_t chat_id, int64_t user_id) {
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  return pg__run(arg, PG_REMOVAL_DELETE, &p);
}

int pg__invite_pending_for(void *arg, int64_t chat_id, int64_t to_id, struct store_invite *inv,
                           int *found) {
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

int pg__invite_insert(void *arg, struct store_req *req, int64_t chat_id, int64_t to_id,
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
