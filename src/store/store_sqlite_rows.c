/* store_sqlite_rows.c - the rows of the SQLite backend: column readers and the primitives of
 * store_rules.c's membership and invitation rules, on the store thread's connection.
 *
 * Every statement was prepared at open (store_sqlite.c); each function binds, steps, reads and
 * resets. The checks that must be atomic with a change run inside the caller's transaction: the
 * store thread is the only writer, so what it reads stays as it is until it commits.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "core/acl.h"
#include "core/invite.h"
#include "store/store_sqlite_int.h"

/* ---- column readers ---- */

static void sq__copy(char *dst, size_t cap, sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  store_copy_text(dst, cap, (const char *)t, t ? (size_t)sqlite3_column_bytes(st, col) : 0);
}

/* Replaces *dst with a heap copy of the column. Returns 0 or PARLEY_EUNAVAILABLE (no memory). */
int sq__dup(char **dst, sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
  char *p = malloc(n + 1);
  if (p == NULL)
    return PARLEY_EUNAVAILABLE;
  if (n)
    memcpy(p, t, n);
  p[n] = '\0';
  free(*dst);
  *dst = p;
  return 0;
}

int sq__dup_str(char **dst, const char *s) {
  char *p = strdup(s);
  if (p == NULL)
    return PARLEY_EUNAVAILABLE;
  free(*dst);
  *dst = p;
  return 0;
}

/* Reads user columns id, username, display_name, created_at starting at `col`. */
void sq__read_user(sqlite3_stmt *st, int col, struct store_user *u) {
  u->id = sqlite3_column_int64(st, col);
  sq__copy(u->username, sizeof u->username, st, col + 1);
  sq__copy(u->display_name, sizeof u->display_name, st, col + 2);
  u->created_at = sqlite3_column_int64(st, col + 3);
}

/* Reads STORE_SQL_CHAT_COLS starting at column 0 into c (its previous title is freed). */
int sq__read_chat(sqlite3_stmt *st, struct store_chat *c) {
  int err = sq__dup(&c->title, st, 2);
  if (err)
    return err;
  c->id = sqlite3_column_int64(st, 0);
  sq__copy(c->slug, sizeof c->slug, st, 1);
  c->is_public = sqlite3_column_int(st, 3) != 0;
  c->max_participants = sqlite3_column_int(st, 4);
  c->owner_id = sqlite3_column_int64(st, 5);
  c->created_at = sqlite3_column_int64(st, 6);
  c->last_activity = sqlite3_column_int64(st, 7);
  c->last_seq = sqlite3_column_int64(st, 8);
  c->participant_count = sqlite3_column_int(st, 9);
  c->my_role = chat_role_parse((const char *)sqlite3_column_text(st, 10));
  c->invite_policy = (enum invite_policy)sqlite3_column_int(st, 11);
  c->archived = sqlite3_column_int(st, 12) != 0;
  c->member_gen = sqlite3_column_int64(st, 13);
  return 0;
}

/* Reads STORE_SQL_INV_COLS starting at column 0 into inv (its previous chat_title is freed), and
 * the invitation's chat id and archived flag into the optional out-parameters. */
static int sq__read_invite(sqlite3_stmt *st, struct store_invite *inv, int64_t *chat_id,
                           int *archived) {
  int err = sq__dup(&inv->chat_title, st, 6);
  if (err)
    return err;
  inv->id = sqlite3_column_int64(st, 0);
  inv->status = (enum invite_status)sqlite3_column_int(st, 1);
  inv->created_at = sqlite3_column_int64(st, 2);
  inv->expires_at = sqlite3_column_int64(st, 3);
  if (chat_id)
    *chat_id = sqlite3_column_int64(st, 4);
  sq__copy(inv->chat_slug, sizeof inv->chat_slug, st, 5);
  if (archived)
    *archived = sqlite3_column_int(st, 7) != 0;
  sq__read_user(st, 8, &inv->from);
  sq__read_user(st, 12, &inv->to);
  return 0;
}

/* Reads STORE_SQL_MSG_COLS starting at `col` into m (its previous body is freed). A NULL seq (no
 * message on the right side of a LEFT JOIN) leaves m zeroed. */
int sq__read_msg(sqlite3_stmt *st, int col, struct store_msg *m) {
  int err;
  store_msg_dispose(m);
  memset(m, 0, sizeof *m);
  if (sqlite3_column_type(st, col) == SQLITE_NULL)
    return 0;
  err = sq__dup(&m->body, st, col + 2);
  if (err)
    return err;
  m->seq = sqlite3_column_int64(st, col);
  m->chat_id = sqlite3_column_int64(st, col + 1);
  sq__copy(m->client_msg_id, sizeof m->client_msg_id, st, col + 3);
  m->created_at = sqlite3_column_int64(st, col + 4);
  sq__read_user(st, col + 5, &m->author);
  return 0;
}

/* ---- shared steps ---- */

/* Loads the chat named `slug` as seen by `user_id` into *c. Returns 0, PARLEY_ENOT_FOUND, or an
 * SQLite failure. */
int sq__chat_load(void *arg, const char *slug, int64_t user_id, struct store_chat *c) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_BY_SLUG];
  int err = 0;
  int rc;
  sqlite3_bind_text(st, 1, slug, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, user_id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    err = sq__read_chat(st, c);
  else if (rc == SQLITE_DONE)
    err = PARLEY_ENOT_FOUND;
  else
    err = sq__err(be, rc, "load chat");
  sqlite3_reset(st);
  return err;
}

/* Moves the chat's last_activity to `now` (never back): every membership change is activity. */
int sq__chat_touch(void *arg, int64_t chat_id, int64_t now) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_TOUCH];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, now);
  return sq__run(be, SQ_CHAT_TOUCH);
}

/* Looks up a user by username into *u. Returns 0, PARLEY_ENOT_FOUND (with errmsg), or an SQLite
 * failure. */
int sq__user_by_username(void *arg, struct store_req *req, const char *username,
                         struct store_user *u) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_BY_USERNAME];
  int rc;
  sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    sq__read_user(st, 0, u);
    sq__read_avatar(st, 4, u);
  }
  sqlite3_reset(st);
  if (rc == SQLITE_ROW)
    return 0;
  if (rc == SQLITE_DONE)
    return PARLEY_ENOT_FOUND;
  return sq__err(be, rc, "user by username");
}

int sq__user_by_id(void *arg, int64_t id, struct store_user *u) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_BY_ID];
  int rc;
  sqlite3_bind_int64(st, 1, id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    sq__read_user(st, 0, u);
    sq__read_avatar(st, 4, u);
  }
  sqlite3_reset(st);
  if (rc == SQLITE_ROW)
    return 0;
  return rc == SQLITE_DONE ? PARLEY_ENOT_FOUND : sq__err(be, rc, "user by id");
}

/* The role of user_id in chat_id into *role (CHAT_ROLE_NONE if not a participant). */
int sq__role_of(void *arg, int64_t chat_id, int64_t user_id, enum chat_role *role) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANT_ROLE];
  int rc;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  rc = sqlite3_step(st);
  *role =
      rc == SQLITE_ROW ? chat_role_parse((const char *)sqlite3_column_text(st, 0)) : CHAT_ROLE_NONE;
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq__err(be, rc, "participant role");
}

int sq__set_role(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANT_SET_ROLE];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_text(st, 3, chat_role_name(role), -1, SQLITE_STATIC);
  return sq__run(be, SQ_PARTICIPANT_SET_ROLE);
}

int sq__set_owner(void *arg, int64_t chat_id, int64_t owner_id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_SET_OWNER];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, owner_id);
  return sq__run(be, SQ_CHAT_SET_OWNER);
}

int sq__participant_add(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role,
                        int64_t now) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANT_INSERT];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_text(st, 3, chat_role_name(role), -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  return sq__run(be, SQ_PARTICIPANT_INSERT);
}

/* Reads every participant of chat_id into a heap array *out (caller frees; NULL when *n is 0). */
int sq__participants(void *arg, int64_t chat_id, struct acl_member **out, size_t *n) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANTS];
  struct acl_member *m = NULL;
  size_t len = 0, cap = 0;
  int err = 0;
  int rc;

  *out = NULL;
  *n = 0;
  sqlite3_bind_int64(st, 1, chat_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      struct acl_member *nm = realloc(m, ncap * sizeof *nm);
      if (nm == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      m = nm;
      cap = ncap;
    }
    m[len].user_id = sqlite3_column_int64(st, 0);
    m[len].role = chat_role_parse((const char *)sqlite3_column_text(st, 1));
    m[len].joined_at = sqlite3_column_int64(st, 2);
    len++;
  }
  if (rc != SQLITE_DONE)
    err = sq__err(be, rc, "participants");
cleanup:
  sqlite3_reset(st);
  if (err) {
    free(m);
    return err;
  }
  *out = m;
  *n = len;
  return 0;
}

/* Steps the bound statement `id` and appends up to `limit` invitations to out.invites. *more (may
 * be NULL) is set when a row beyond `limit` exists. Resets the statement. */
int sq__invites_read(struct sq *be, struct store_req *req, enum sq_stmt id, size_t limit,
                     int *more) {
  sqlite3_stmt *st = be->st[id];
  size_t cap = req->out.n_invites;
  int err = 0;
  int rc;

  if (more)
    *more = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    size_t i = req->out.n_invites;
    if (i >= limit) {
      if (more)
        *more = 1;
      break;
    }
    if (i == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      struct store_invite *inv = realloc(req->out.invites, ncap * sizeof *inv);
      if (inv == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.invites = inv;
      cap = ncap;
    }
    memset(&req->out.invites[i], 0, sizeof req->out.invites[i]);
    req->out.n_invites = i + 1; /* counted before filling so that a failure frees what was read */
    err = sq__read_invite(st, &req->out.invites[i], NULL, NULL);
    if (err)
      goto cleanup;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    err = sq__err(be, rc, sq_sql[id]);
cleanup:
  sqlite3_reset(st);
  return err;
}

/* Loads invitation `id` into *inv with its chat's id and archived flag. */
int sq__invite_load(void *arg, int64_t id, struct store_invite *inv, int64_t *chat_id,
                    int *archived) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_INV_BY_ID];
  int err = 0;
  int rc;
  sqlite3_bind_int64(st, 1, id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    err = sq__read_invite(st, inv, chat_id, archived);
  else if (rc == SQLITE_DONE)
    err = PARLEY_ENOT_FOUND;
  else
    err = sq__err(be, rc, "invitation by id");
  sqlite3_reset(st);
  return err;
}

int sq__invite_set_status(void *arg, int64_t id, enum invite_status status, int64_t now) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_INV_SET_STATUS];
  int err;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int(st, 2, (int)status);
  sqlite3_bind_int64(st, 3, now);
  err = sq__run(be, SQ_INV_SET_STATUS);
  if (err)
    return err;
  /* The caller read the row as pending in this transaction: anything else is a bug. */
  return sqlite3_changes(be->db) == 1 ? 0 : PARLEY_EINTERNAL;
}

int sq__slug_taken(void *arg, const char *slug, int *taken) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_SLUG_TAKEN];
  int rc;
  sqlite3_bind_text(st, 1, slug, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sq__err(be, rc, "slug lookup");
  *taken = rc == SQLITE_ROW;
  return 0;
}

/* Reads the messages of chat_id with lo < seq < hi, newest `limit` of them, into req->out.msgs
 * oldest first. *more is set if older messages in the range were left out. */
int sq__msgs_range(struct sq *be, struct store_req *req, int64_t chat_id, int64_t lo, int64_t hi,
                   int limit, int *more) {
  sqlite3_stmt *st = be->st[SQ_MSG_RANGE];
  struct store_msg *msgs = NULL;
  size_t n = 0;
  int err = 0;
  int rc;

  assert(limit > 0 && limit <= STORE_LIMIT_MAX);
  *more = 0;
  msgs = calloc((size_t)limit, sizeof *msgs);
  if (msgs == NULL)
    return PARLEY_EUNAVAILABLE;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, lo);
  sqlite3_bind_int64(st, 3, hi);
  /* One row more than asked tells whether there is more without a COUNT. */
  sqlite3_bind_int(st, 4, limit + 1);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == (size_t)limit) {
      *more = 1;
      break;
    }
    err = sq__read_msg(st, 0, &msgs[n]);
    if (err)
      goto cleanup;
    n++;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    err = sq__err(be, rc, "read messages");
    goto cleanup;
  }
  /* The query walks newest first (so LIMIT keeps the newest); the contract is oldest first. */
  for (size_t i = 0; i < n / 2; i++) {
    struct store_msg t = msgs[i];
    msgs[i] = msgs[n - 1 - i];
    msgs[n - 1 - i] = t;
  }
  req->out.msgs = msgs;
  req->out.n_msgs = n;
  msgs = NULL;
cleanup:
  sqlite3_reset(st);
  if (msgs) {
    for (size_t i = 0; i < n; i++)
      store_msg_dispose(&msgs[i]);
    free(msgs);
  }
  return err;
}

/* ---- the primitives of store_rules.c ---- */

int sq__participant_delete(void *arg, int64_t chat_id, int64_t user_id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANT_DELETE];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  return sq__run(be, SQ_PARTICIPANT_DELETE);
}

int sq__removal_put(void *arg, int64_t chat_id, int64_t user_id, int64_t by, int64_t now) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_REMOVAL_INSERT];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_int64(st, 3, by);
  sqlite3_bind_int64(st, 4, now);
  return sq__run(be, SQ_REMOVAL_INSERT);
}

int sq__removal_delete(void *arg, int64_t chat_id, int64_t user_id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_REMOVAL_DELETE];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  return sq__run(be, SQ_REMOVAL_DELETE);
}

int sq__invite_pending_for(void *arg, int64_t chat_id, int64_t to_id, struct store_invite *inv,
                           int *found) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_INV_PENDING_FOR];
  int err = 0, rc;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, to_id);
  rc = sqlite3_step(st);
  *found = rc == SQLITE_ROW;
  if (rc == SQLITE_ROW)
    err = sq__read_invite(st, inv, NULL, NULL);
  else if (rc != SQLITE_DONE)
    err = sq__err(be, rc, "pending invitation");
  sqlite3_reset(st);
  return err;
}

int sq__invite_insert(void *arg, struct store_req *req, int64_t chat_id, int64_t to_id,
                      struct store_invite *inv) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_INV_INSERT];
  int err;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, to_id);
  sqlite3_bind_int64(st, 4, req->in.now);
  sqlite3_bind_int64(st, 5, req->in.expires_at);
  err = sq__run(be, SQ_INV_INSERT);
  if (err)
    return err;
  return sq__invite_load(be, sqlite3_last_insert_rowid(be->db), inv, NULL, NULL);
}
