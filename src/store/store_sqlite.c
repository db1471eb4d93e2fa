/* store_sqlite.c - the SQLite backend of the store (store_sqlite_ops), on libsqlite3.
 *
 * One connection, used only by the store thread. The database runs in WAL mode so that readers
 * (a backup, an operator's sqlite3 shell) never block the writer, with synchronous=NORMAL (a
 * killed process loses nothing committed) or FULL (power loss neither). Every statement is
 * prepared once at open and kept for the life of the connection.
 *
 * All checks that must be atomic with a change (membership through acl_check(), the participant
 * cap, clientMsgId idempotency, seq allocation) are made here, inside the transaction that makes
 * the change, by the only thread that writes. The per-chat seq comes from chats.last_seq, bumped
 * in the same transaction as the message insert, so a rolled-back send never leaves a hole.
 * The membership and invitation ops are store_rules.c's, over the primitives of sq_prims.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "core/acl.h"
#include "core/invite.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store/store_rules.h"
#include "store/store_sql.h"
#include "store/store_sqlite_ckpt.h"

#define SQ_BUSY_TIMEOUT_MS 5000 /* how long a write waits for another process' lock */


/* X(name, sql). Prepared at open, in this order. */
#define SQ_STATEMENTS(X)                                                                          \
  X(BEGIN, "BEGIN IMMEDIATE")                                                                     \
  X(COMMIT, "COMMIT")                                                                             \
  X(ROLLBACK, "ROLLBACK")                                                                         \
  X(SAVEPOINT, "SAVEPOINT req")                                                                   \
  X(RELEASE, "RELEASE req")                                                                       \
  X(ROLLBACK_TO, "ROLLBACK TO req")                                                               \
  X(USER_INSERT, "INSERT INTO users(username, display_name, pwhash, created_at)"                 \
                 " VALUES (?1, ?2, ?3, ?4) RETURNING id")                                         \
  X(USER_BY_NAME, "SELECT id, username, display_name, created_at, pwhash FROM users"              \
                  " WHERE username = ?1")                                                         \
  X(USER_BY_ID, "SELECT id, username, display_name, created_at FROM users WHERE id = ?1")         \
  X(SESSION_INSERT, "INSERT INTO sessions(token_hash, user_id, created_at, expires_at)"          \
                    " VALUES (?1, ?2, ?3, ?4)")                                                   \
  X(SESSION_GET, "SELECT s.expires_at, u.id, u.username, u.display_name, u.created_at"            \
                 " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1")     \
  X(SESSION_DELETE, "DELETE FROM sessions WHERE token_hash = ?1")                                 \
  X(CHAT_BY_SLUG, "SELECT " STORE_SQL_CHAT_COLS " FROM chats c LEFT JOIN participants p"                 \
                  " ON p.chat_id = c.id AND p.user_id = ?2 WHERE c.slug = ?1")                    \
  X(SLUG_TAKEN, "SELECT 1 FROM chats WHERE slug = ?1")                                            \
  X(CHAT_INSERT, "INSERT INTO chats(slug, title, is_public, max_participants, owner_id,"         \
                 " created_at, last_activity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)")               \
  X(PARTICIPANT_INSERT, "INSERT INTO participants(chat_id, user_id, role, joined_at)"            \
                        " VALUES (?1, ?2, ?3, ?4)")                                               \
  X(CHAT_TOUCH, "UPDATE chats SET last_activity = max(last_activity, ?2) WHERE id = ?1")          \
  X(CHAT_NEXT_SEQ, "UPDATE chats SET last_seq = last_seq + 1,"                                    \
                   " last_activity = max(last_activity, ?2) WHERE id = ?1"                        \
                   " RETURNING last_seq, last_activity")                                          \
  X(MSG_INSERT, "INSERT INTO messages(chat_id, seq, author_id, body, client_msg_id, created_at)" \
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                                               \
  X(MSG_BY_CLIENT_ID, "SELECT " STORE_SQL_MSG_COLS " FROM messages m JOIN users u ON u.id = m.author_id" \
                      " WHERE m.chat_id = ?1 AND m.author_id = ?2 AND m.client_msg_id = ?3")      \
  X(MSG_RANGE, "SELECT " STORE_SQL_MSG_COLS " FROM messages m JOIN users u ON u.id = m.author_id"       \
               " WHERE m.chat_id = ?1 AND m.seq > ?2 AND m.seq < ?3"                              \
               " ORDER BY m.seq DESC LIMIT ?4")                                                   \
  X(CHAT_LIST, "SELECT " STORE_SQL_CHAT_COLS ", coalesce(r.seq, 0), " STORE_SQL_MSG_COLS                        \
               " FROM participants p JOIN chats c ON c.id = p.chat_id"                            \
               " LEFT JOIN read_markers r ON r.chat_id = p.chat_id AND r.user_id = p.user_id"     \
               " LEFT JOIN messages m ON m.chat_id = c.id AND m.seq = c.last_seq"                 \
               " LEFT JOIN users u ON u.id = m.author_id"                                         \
               " WHERE p.user_id = ?1 ORDER BY c.last_activity DESC, c.id DESC")                  \
  X(READ_UPSERT, "INSERT INTO read_markers(chat_id, user_id, seq, updated_at)"                    \
                 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(chat_id, user_id) DO UPDATE SET"          \
                 " seq = max(seq, excluded.seq), updated_at = excluded.updated_at"                \
                 " RETURNING seq")                                                                \
  /* ---- membership (issue 3) ---- */                                                           \
  X(USER_BY_USERNAME, "SELECT id, username, display_name, created_at FROM users"                  \
                      " WHERE username = ?1")                                                     \
  X(PARTICIPANT_ROLE, "SELECT role FROM participants WHERE chat_id = ?1 AND user_id = ?2")        \
  X(PARTICIPANTS, "SELECT user_id, role, joined_at FROM participants WHERE chat_id = ?1")         \
  X(MEMBERS, "SELECT u.id, u.username, u.display_name, u.created_at, p.role, p.joined_at,"        \
             " coalesce(u.last_seen, 0) FROM participants p JOIN users u ON u.id = p.user_id"     \
             " WHERE p.chat_id = ?1"                                                              \
             " ORDER BY p.joined_at, p.user_id")                                                  \
  X(PARTICIPANT_DELETE, "DELETE FROM participants WHERE chat_id = ?1 AND user_id = ?2")           \
  X(PARTICIPANT_SET_ROLE, "UPDATE participants SET role = ?3 WHERE chat_id = ?1 AND user_id = ?2") \
  X(CHAT_SET_OWNER, "UPDATE chats SET owner_id = ?2 WHERE id = ?1")                               \
  X(CHAT_ARCHIVE, "UPDATE chats SET archived = 1 WHERE id = ?1")                                  \
  /* A NULL parameter leaves its column as it is: one statement serves every update mask. */     \
  X(CHAT_UPDATE, "UPDATE chats SET title = coalesce(?2, title),"                                  \
                 " is_public = coalesce(?3, is_public),"                                          \
                 " max_participants = coalesce(?4, max_participants),"                            \
                 " invite_policy = coalesce(?5, invite_policy) WHERE id = ?1")                    \
  /* Prefix ranges lower(x) >= ?1 AND lower(x) < ?2 use the lower() indexes of migration 2 (one  \
   * range scan per index, OR-ed); a LIKE would scan the table. ?4 is the chat whose marks are   \
   * asked for, 0 for none (no chat has id 0). */                                                 \
  X(USERS_SEARCH, "SELECT u.id, u.username, u.display_name, u.created_at,"                        \
                  " EXISTS (SELECT 1 FROM participants p WHERE p.chat_id = ?4"                    \
                  "   AND p.user_id = u.id),"                                                     \
                  " EXISTS (SELECT 1 FROM invitations i WHERE i.chat_id = ?4 AND i.to_id = u.id"  \
                  "   AND i.status = 0 AND i.expires_at > ?5),"                                   \
                  " coalesce(u.last_seen, 0) FROM users u WHERE u.id <> ?3 AND"                   \
                  " ((lower(u.username) >= ?1 AND lower(u.username) < ?2) OR"                     \
                  "  (lower(u.display_name) >= ?1 AND lower(u.display_name) < ?2))"               \
                  " ORDER BY u.username LIMIT ?6")                                                \
  /* ---- invitations (issue 3); status is enum invite_status ---- */                            \
  X(INV_BY_ID, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.id = ?1")                              \
  X(INV_PENDING_FOR, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM                                            \
                     " WHERE i.chat_id = ?1 AND i.to_id = ?2 AND i.status = 0")                   \
  X(INV_PENDING_OF_CHAT, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM                                        \
                         " WHERE i.chat_id = ?1 AND i.status = 0 ORDER BY i.id")                  \
  X(INV_INSERT, "INSERT INTO invitations(chat_id, from_id, to_id, status, created_at,"            \
                " expires_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?4)")                    \
  X(INV_SET_STATUS, "UPDATE invitations SET status = ?2, updated_at = ?3"                         \
                    " WHERE id = ?1 AND status = 0")                                              \
  X(INV_INCOMING, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.to_id = ?1 AND i.status = 0"        \
                  " AND i.expires_at > ?2 ORDER BY i.created_at DESC, i.id DESC LIMIT ?3")        \
  /* Incoming (to the caller), then outgoing: pending invitations of the chats the caller manages \
   * (owner, admin) or that the caller sent while still a participant. */                         \
  X(INV_LIST, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.id IN ("                                \
              "  SELECT id FROM invitations WHERE to_id = ?1 AND status = 0 AND expires_at > ?2"  \
              "  UNION ALL"                                                                       \
              "  SELECT j.id FROM participants p JOIN invitations j"                              \
              "    ON j.chat_id = p.chat_id AND j.status = 0"                                     \
              "  WHERE p.user_id = ?1 AND j.expires_at > ?2"                                      \
              "    AND (p.role IN ('owner', 'admin') OR j.from_id = ?1))"                         \
              " ORDER BY i.to_id = ?1 DESC, i.created_at DESC, i.id DESC LIMIT ?3")               \
  X(INV_DUE, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.status = 0 AND i.expires_at <= ?1"       \
             " ORDER BY i.expires_at, i.id LIMIT ?2")                                            \
  X(REMOVAL_INSERT, "INSERT OR REPLACE INTO removals(chat_id, user_id, removed_by, removed_at)"   \
                    " VALUES (?1, ?2, ?3, ?4)")                                                   \
  X(REMOVAL_GET, "SELECT 1 FROM removals WHERE chat_id = ?1 AND user_id = ?2")                    \
  X(REMOVAL_DELETE, "DELETE FROM removals WHERE chat_id = ?1 AND user_id = ?2")                   \
  /* Everyone who shares a live chat with ?1: participants_by_user finds ?1's chats, the        \
   * participants primary key their members. */                                                   \
  X(AUDIENCE, "SELECT DISTINCT p2.user_id FROM participants p1"                                   \
              " JOIN chats c ON c.id = p1.chat_id AND c.archived = 0"                             \
              " JOIN participants p2 ON p2.chat_id = p1.chat_id"                                  \
              " WHERE p1.user_id = ?1 AND p2.user_id != ?1")                                      \
  X(USER_SEEN, "UPDATE users SET last_seen = max(coalesce(last_seen, 0), ?2) WHERE id = ?1")

enum sq_stmt {
#define SQ__ENUM(name, sql) SQ_##name,
  SQ_STATEMENTS(SQ__ENUM)
#undef SQ__ENUM
  SQ__COUNT
};

static const char *const sq_sql[SQ__COUNT] = {
#define SQ__SQL(name, sql) sql,
    SQ_STATEMENTS(SQ__SQL)
#undef SQ__SQL
};

struct sq {
  sqlite3 *db;
  sqlite3_stmt *st[SQ__COUNT];
  struct sq_ckpt *ckpt; /* NULL for an in-memory database */
};

static const struct store_prims sq_prims; /* the membership ops' primitives (store_rules.h) */

/* ---- errors ---- */

/* Maps an SQLite result code to the error table. Operational failures (disk, locks, memory) are
 * `unavailable` so that clients retry; constraint violations are the caller's doing; the rest
 * is a bug of ours. */
static int sq__err(struct sq *be, int rc, const char *what) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return 0;
  case SQLITE_FULL:
  case SQLITE_IOERR:
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_READONLY:
  case SQLITE_CANTOPEN:
  case SQLITE_NOMEM:
    log_warn("store: sqlite: %s: %s (%d)", what, sqlite3_errmsg(be->db), rc);
    return PARLEY_EUNAVAILABLE;
  case SQLITE_CONSTRAINT:
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return PARLEY_ECONFLICT;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return PARLEY_ENOT_FOUND;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
      return PARLEY_EBAD_REQUEST;
    default:
      break;
    }
    /* fall through */
  default:
    log_error("store: sqlite: %s: %s (%d)", what, sqlite3_errmsg(be->db), rc);
    return PARLEY_EINTERNAL;
  }
}

/* Steps `st` once and resets it: for statements that return no row. */
static int sq__run(struct sq *be, enum sq_stmt id) {
  sqlite3_stmt *st = be->st[id];
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq__err(be, rc, sq_sql[id]);
}

/* ---- column readers ---- */

static void sq__copy(char *dst, size_t cap, sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
  if (n >= cap) {
    /* The schema counts characters, these arrays bytes: a row written by hand (a restore, a
     * migration) may not fit. Cut before the character that does not fit, never inside it, so
     * what we return stays UTF-8 (found by tests/fuzz/fuzz_store). */
    n = cap - 1;
    while (n > 0 && (t[n] & 0xC0) == 0x80)
      n--;
  }
  if (n)
    memcpy(dst, t, n);
  dst[n] = '\0';
}

/* Replaces *dst with a heap copy of the column. Returns 0 or PARLEY_EUNAVAILABLE (no memory). */
static int sq__dup(char **dst, sqlite3_stmt *st, int col) {
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

static int sq__dup_str(char **dst, const char *s) {
  char *p = strdup(s);
  if (p == NULL)
    return PARLEY_EUNAVAILABLE;
  free(*dst);
  *dst = p;
  return 0;
}

/* Reads user columns id, username, display_name, created_at starting at `col`. */
static void sq__read_user(sqlite3_stmt *st, int col, struct store_user *u) {
  u->id = sqlite3_column_int64(st, col);
  sq__copy(u->username, sizeof u->username, st, col + 1);
  sq__copy(u->display_name, sizeof u->display_name, st, col + 2);
  u->created_at = sqlite3_column_int64(st, col + 3);
}

/* Reads STORE_SQL_CHAT_COLS starting at column 0 into c (its previous title is freed). */
static int sq__read_chat(sqlite3_stmt *st, struct store_chat *c) {
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

/* Reads STORE_SQL_INV_COLS starting at column 0 into inv (its previous chat_title is freed), and the
 * invitation's chat id and archived flag into the optional out-parameters. */
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
static int sq__read_msg(sqlite3_stmt *st, int col, struct store_msg *m) {
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

/* ---- input checks ---- */

/* A fixed-size input string must be NUL-terminated inside its array. */
#define SQ_TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))

/* ---- shared steps ---- */

/* Loads the chat named `slug` as seen by `user_id` into *c. Returns 0, PARLEY_ENOT_FOUND, or an
 * SQLite failure. */
static int sq__chat_load(void *arg, const char *slug, int64_t user_id, struct store_chat *c) {
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

/* Loads the chat named by the request's slug into out.chat, as the requesting user sees it. An
 * archived chat is not found: nobody is in it, and nobody can enter it again. */
static int sq__chat_find(struct sq *be, struct store_req *req) {
  int err;
  if (!SQ_TERMINATED(req->in.slug) || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  err = sq__chat_load(be, req->in.slug, req->in.user_id, &req->out.chat);
  if (err)
    return err;
  return req->out.chat.archived ? PARLEY_ENOT_FOUND : 0;
}

/* Loads the chat from the request's slug and checks `op` for the requesting user. */
static int sq__chat_access(struct sq *be, struct store_req *req, enum acl_op op) {
  int err = sq__chat_find(be, req);
  if (err)
    return err;
  return acl_check(op, req->out.chat.my_role, req->out.chat.is_public);
}

/* Moves the chat's last_activity to `now` (never back): every membership change is activity. */
static int sq__chat_touch(void *arg, int64_t chat_id, int64_t now) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_TOUCH];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, now);
  return sq__run(be, SQ_CHAT_TOUCH);
}

/* Looks up a user by username into *u. Returns 0, PARLEY_ENOT_FOUND (with errmsg), or an SQLite
 * failure. */
static int sq__user_by_username(void *arg, struct store_req *req, const char *username,
                                struct store_user *u) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_BY_USERNAME];
  int rc;
  sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    sq__read_user(st, 0, u);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW)
    return 0;
  if (rc == SQLITE_DONE)
    return store_fail(req, PARLEY_ENOT_FOUND, "there is no user named %s", username);
  return sq__err(be, rc, "user by username");
}

static int sq__user_by_id(void *arg, int64_t id, struct store_user *u) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_BY_ID];
  int rc;
  sqlite3_bind_int64(st, 1, id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    sq__read_user(st, 0, u);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW)
    return 0;
  return rc == SQLITE_DONE ? PARLEY_ENOT_FOUND : sq__err(be, rc, "user by id");
}

/* The role of user_id in chat_id into *role (CHAT_ROLE_NONE if not a participant). */
static int sq__role_of(void *arg, int64_t chat_id, int64_t user_id, enum chat_role *role) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANT_ROLE];
  int rc;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  rc = sqlite3_step(st);
  *role = rc == SQLITE_ROW ? chat_role_parse((const char *)sqlite3_column_text(st, 0))
                           : CHAT_ROLE_NONE;
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq__err(be, rc, "participant role");
}

static int sq__set_role(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANT_SET_ROLE];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_text(st, 3, chat_role_name(role), -1, SQLITE_STATIC);
  return sq__run(be, SQ_PARTICIPANT_SET_ROLE);
}

static int sq__set_owner(void *arg, int64_t chat_id, int64_t owner_id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_SET_OWNER];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, owner_id);
  return sq__run(be, SQ_CHAT_SET_OWNER);
}

static int sq__participant_add(void *arg, int64_t chat_id, int64_t user_id,
                               enum chat_role role, int64_t now) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANT_INSERT];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_text(st, 3, chat_role_name(role), -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  return sq__run(be, SQ_PARTICIPANT_INSERT);
}

/* Reads every participant of chat_id into a heap array *out (caller frees; NULL when *n is 0). */
static int sq__participants(void *arg, int64_t chat_id, struct acl_member **out, size_t *n) {
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
static int sq__invites_read(struct sq *be, struct store_req *req, enum sq_stmt id, size_t limit,
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
static int sq__invite_load(void *arg, int64_t id, struct store_invite *inv, int64_t *chat_id,
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

static int sq__invite_set_status(void *arg, int64_t id, enum invite_status status,
                                 int64_t now) {
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

static int sq__slug_taken(void *arg, const char *slug, int *taken) {
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
static int sq__msgs_range(struct sq *be, struct store_req *req, int64_t chat_id, int64_t lo,
                          int64_t hi, int limit, int *more) {
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

/* ---- operations ---- */

static int sq__user_insert(void *arg, struct store_req *req, const char *display, int64_t *id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_INSERT];
  int rc;
  sqlite3_bind_text(st, 1, req->in.user.username, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, display, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, req->in.pwhash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, req->in.now);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    *id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : sq__err(be, rc, "insert user"); /* taken: a UNIQUE conflict */
}
static int sq_user_by_name(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_BY_NAME];
  int err = 0;
  int rc;
  sqlite3_bind_text(st, 1, req->in.user.username, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    sq__read_user(st, 0, &req->out.user);
    err = sq__dup(&req->out.pwhash, st, 4);
  } else if (rc == SQLITE_DONE) {
    err = PARLEY_ENOT_FOUND;
  } else {
    err = sq__err(be, rc, "user by name");
  }
  sqlite3_reset(st);
  return err;
}

static int sq_session_create(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_SESSION_INSERT];
  sqlite3_bind_blob(st, 1, req->in.token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, req->in.now);
  sqlite3_bind_int64(st, 4, req->in.expires_at);
  return sq__run(be, SQ_SESSION_INSERT);
}

static int sq_session_get(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_SESSION_GET];
  int err = 0;
  int rc;
  sqlite3_bind_blob(st, 1, req->in.token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    int64_t expires_at = sqlite3_column_int64(st, 0);
    /* Expired sessions stay until a sweep deletes them; this keeps a lookup read-only. */
    if (expires_at <= req->in.now) {
      err = PARLEY_EUNAUTHORIZED;
    } else {
      req->out.expires_at = expires_at;
      sq__read_user(st, 1, &req->out.user);
    }
  } else if (rc == SQLITE_DONE) {
    err = PARLEY_EUNAUTHORIZED;
  } else {
    err = sq__err(be, rc, "session lookup");
  }
  sqlite3_reset(st);
  return err;
}

static int sq_session_delete(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_bind_blob(be->st[SQ_SESSION_DELETE], 1, req->in.token_hash, STORE_TOKEN_HASH_LEN,
                    SQLITE_STATIC);
  return sq__run(be, SQ_SESSION_DELETE);
}

static int sq__chat_insert(void *arg, struct store_req *req, const char *slug, int64_t *chat_id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_INSERT];
  int rc;
  sqlite3_bind_text(st, 1, slug, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, req->in.title, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, req->in.is_public != 0);
  sqlite3_bind_int(st, 4, req->in.max_participants);
  sqlite3_bind_int64(st, 5, req->in.user_id);
  sqlite3_bind_int64(st, 6, req->in.now);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  *chat_id = rc == SQLITE_DONE ? sqlite3_last_insert_rowid(be->db) : 0;
  if (rc == SQLITE_CONSTRAINT_UNIQUE)
    return 0; /* the slug is taken */
  return rc == SQLITE_DONE ? 0 : sq__err(be, rc, "insert chat"); /* an unknown owner: the FK */
}
static int sq_chat_list(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_LIST];
  size_t cap = 0;
  int err = 0;
  int rc;

  sqlite3_bind_int64(st, 1, req->in.user_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    size_t i = req->out.n_chats;
    int64_t marker;
    if (i == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      struct store_chat *chats = realloc(req->out.chats, ncap * sizeof *chats);
      struct store_msg *last;
      int64_t *unread;
      if (chats == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.chats = chats;
      last = realloc(req->out.last_msgs, ncap * sizeof *last);
      if (last == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.last_msgs = last;
      unread = realloc(req->out.unread, ncap * sizeof *unread);
      if (unread == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.unread = unread;
      cap = ncap;
    }
    memset(&req->out.chats[i], 0, sizeof req->out.chats[i]);
    memset(&req->out.last_msgs[i], 0, sizeof req->out.last_msgs[i]);
    req->out.unread[i] = 0;
    req->out.n_chats = i + 1; /* counted before filling so that a failure frees what was read */
    err = sq__read_chat(st, &req->out.chats[i]);
    if (err)
      goto cleanup;
    marker = sqlite3_column_int64(st, STORE_SQL_CHAT_NCOLS);
    /* seq is gap-free and messages are never deleted, so the count after the marker is a
     * subtraction, not a scan of every unread row. */
    req->out.unread[i] = req->out.chats[i].last_seq > marker ? req->out.chats[i].last_seq - marker
                                                             : 0;
    err = sq__read_msg(st, STORE_SQL_CHAT_NCOLS + 1, &req->out.last_msgs[i]);
    if (err)
      goto cleanup;
  }
  if (rc != SQLITE_DONE)
    err = sq__err(be, rc, "list chats");
cleanup:
  sqlite3_reset(st);
  if (err)
    return err;
  /* The invitations waiting for the user, so a client needs one round trip to draw its list. */
  st = be->st[SQ_INV_INCOMING];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_int64(st, 2, req->in.now);
  sqlite3_bind_int(st, 3, STORE_LIMIT_MAX);
  return sq__invites_read(be, req, SQ_INV_INCOMING, STORE_LIMIT_MAX, NULL);
}

static int sq__removed(void *arg, int64_t chat_id, int64_t user_id, int *removed) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_REMOVAL_GET];
  int rc;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  *removed = rc == SQLITE_ROW;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq__err(be, rc, "removal lookup");
}
static int sq_msg_append(void *arg, struct store_req *req) {
  struct sq *be = arg;
  struct store_chat *c = &req->out.chat;
  struct store_msg *m = &req->out.msg;
  sqlite3_stmt *st;
  int has_client_id;
  int64_t seq = 0;
  int err, rc;

  if (req->in.body == NULL || req->in.body[0] == '\0' || !SQ_TERMINATED(req->in.client_msg_id))
    return PARLEY_EBAD_REQUEST;
  err = sq__chat_access(be, req, ACL_MSG_SEND);
  if (err)
    return err;
  has_client_id = req->in.client_msg_id[0] != '\0';

  if (has_client_id) {
    /* A retry of a send that already committed: answer with the original, store nothing. */
    st = be->st[SQ_MSG_BY_CLIENT_ID];
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, req->in.user_id);
    sqlite3_bind_text(st, 3, req->in.client_msg_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      err = sq__read_msg(st, 0, m);
      req->out.duplicate = 1;
    } else if (rc != SQLITE_DONE) {
      err = sq__err(be, rc, "client id lookup");
    }
    sqlite3_reset(st);
    if (err || req->out.duplicate)
      return err;
  }

  /* The author as stored, for the reply and the fan-out. */
  st = be->st[SQ_USER_BY_ID];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    sq__read_user(st, 0, &m->author);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW)
    return rc == SQLITE_DONE ? PARLEY_ENOT_FOUND : sq__err(be, rc, "author lookup");

  st = be->st[SQ_CHAT_NEXT_SEQ];
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, req->in.now);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    seq = sqlite3_column_int64(st, 0);
    c->last_activity = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW)
    return rc == SQLITE_DONE ? PARLEY_ENOT_FOUND : sq__err(be, rc, "next seq");

  st = be->st[SQ_MSG_INSERT];
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, seq);
  sqlite3_bind_int64(st, 3, req->in.user_id);
  sqlite3_bind_text(st, 4, req->in.body, -1, SQLITE_STATIC);
  if (has_client_id)
    sqlite3_bind_text(st, 5, req->in.client_msg_id, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 5);
  sqlite3_bind_int64(st, 6, req->in.now);
  err = sq__run(be, SQ_MSG_INSERT);
  if (err)
    return err;
  /* A user's own messages are never unread: the author has read up to what they wrote. */
  st = be->st[SQ_READ_UPSERT];
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, seq);
  sqlite3_bind_int64(st, 4, req->in.now);
  err = sq__run(be, SQ_READ_UPSERT);
  if (err)
    return err;

  err = sq__dup_str(&m->body, req->in.body);
  if (err)
    return err;
  m->seq = seq;
  m->chat_id = c->id;
  memcpy(m->client_msg_id, req->in.client_msg_id, sizeof m->client_msg_id);
  m->created_at = req->in.now;
  c->last_seq = seq;
  return 0;
}

static int sq__msgs(void *arg, struct store_req *req, int64_t lo, int64_t hi, int limit,
                    int *more) {
  struct sq *be = arg;
  int err = sq__chat_access(be, req, ACL_CHAT_READ);
  if (err)
    return err;
  return sq__msgs_range(be, req, req->out.chat.id, lo, hi, limit, more);
}
static int sq_read_set(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_READ_UPSERT];
  int64_t seq;
  int err, rc;
  if (req->in.seq < 0)
    return PARLEY_EBAD_REQUEST;
  err = sq__chat_access(be, req, ACL_CHAT_READ);
  if (err)
    return err;
  /* Nobody can have read past the newest message; clamping keeps unread counts non-negative. */
  seq = req->in.seq < req->out.chat.last_seq ? req->in.seq : req->out.chat.last_seq;
  sqlite3_bind_int64(st, 1, req->out.chat.id);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, seq);
  sqlite3_bind_int64(st, 4, req->in.now);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    req->out.read_seq = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : sq__err(be, rc, "set read marker");
}

/* ---- membership (issue 3) ---- */

static int sq_chat_members(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_MEMBERS];
  size_t cap = 0;
  int err = sq__chat_access(be, req, ACL_CHAT_VIEW);
  int rc;
  if (err)
    return err;
  sqlite3_bind_int64(st, 1, req->out.chat.id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct store_member *m;
    if (req->out.n_members == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      m = realloc(req->out.members, ncap * sizeof *m);
      if (m == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.members = m;
      cap = ncap;
    }
    m = &req->out.members[req->out.n_members++];
    memset(m, 0, sizeof *m);
    sq__read_user(st, 0, &m->user);
    m->role = chat_role_parse((const char *)sqlite3_column_text(st, 4));
    m->joined_at = sqlite3_column_int64(st, 5);
    m->user.last_seen = sqlite3_column_int64(st, 6);
  }
  if (rc != SQLITE_DONE)
    err = sq__err(be, rc, "chat members");
cleanup:
  sqlite3_reset(st);
  return err;
}

static int sq__chat_update(void *arg, const struct store_req *req, int64_t chat_id) {
  struct sq *be = arg;
  const unsigned mask = req->in.update_mask;
  sqlite3_stmt *st = be->st[SQ_CHAT_UPDATE];
  sqlite3_bind_int64(st, 1, chat_id);
  if (mask & STORE_UPD_TITLE)
    sqlite3_bind_text(st, 2, req->in.title, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 2);
  if (mask & STORE_UPD_PUBLIC)
    sqlite3_bind_int(st, 3, req->in.is_public != 0);
  else
    sqlite3_bind_null(st, 3);
  if (mask & STORE_UPD_CAP)
    sqlite3_bind_int(st, 4, req->in.max_participants);
  else
    sqlite3_bind_null(st, 4);
  if (mask & STORE_UPD_POLICY)
    sqlite3_bind_int(st, 5, (int)req->in.invite_policy);
  else
    sqlite3_bind_null(st, 5);
  return sq__run(be, SQ_CHAT_UPDATE);
}
/* Archives a chat nobody is in any more and revokes its pending invitations, which are returned in
 * out.invites so that their invitees can be told. */
static int sq__chat_archive(void *arg, struct store_req *req, int64_t chat_id) {
  struct sq *be = arg;
  int err;
  sqlite3_bind_int64(be->st[SQ_CHAT_ARCHIVE], 1, chat_id);
  err = sq__run(be, SQ_CHAT_ARCHIVE);
  if (err)
    return err;
  sqlite3_bind_int64(be->st[SQ_INV_PENDING_OF_CHAT], 1, chat_id);
  return sq__invites_read(be, req, SQ_INV_PENDING_OF_CHAT, SIZE_MAX, NULL);
}

/* The range [lo, hi) is every string that starts with lo: hi is lo with its last byte one higher.
 * No wildcard exists in a range, so '%' and '_' in a query are plain characters. */
static int sq__users_search(void *arg, struct store_req *req, const char *lo, size_t len,
                            int64_t mark_chat, int limit) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USERS_SEARCH];
  char hi[STORE_DISPLAY_NAME_MAX + 1];
  int err = 0;
  int rc;

  memcpy(hi, lo, len + 1);
  hi[len - 1] = (char)((unsigned char)hi[len - 1] + 1);
  req->out.hits = calloc((size_t)limit, sizeof *req->out.hits);
  if (req->out.hits == NULL)
    return PARLEY_EUNAVAILABLE;
  sqlite3_bind_text(st, 1, lo, (int)len, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, hi, (int)len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, req->in.user_id);
  sqlite3_bind_int64(st, 4, mark_chat);
  sqlite3_bind_int64(st, 5, req->in.now);
  sqlite3_bind_int(st, 6, limit);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && req->out.n_hits < (size_t)limit) {
    struct store_user_hit *h = &req->out.hits[req->out.n_hits++];
    sq__read_user(st, 0, &h->user);
    h->participant = sqlite3_column_int(st, 4) != 0;
    h->invited = sqlite3_column_int(st, 5) != 0;
    h->user.last_seen = sqlite3_column_int64(st, 6);
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    err = sq__err(be, rc, "search users");
  sqlite3_reset(st);
  return err;
}
/* ---- invitations (issue 3) ---- */

static int sq_invite_list(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_INV_LIST];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_int64(st, 2, req->in.now);
  sqlite3_bind_int(st, 3, STORE_LIMIT_MAX);
  return sq__invites_read(be, req, SQ_INV_LIST, STORE_LIMIT_MAX, NULL);
}

static int sq__invites_due(void *arg, struct store_req *req, int limit) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_INV_DUE];
  sqlite3_bind_int64(st, 1, req->in.now);
  sqlite3_bind_int(st, 2, limit + 1); /* one more tells whether more are due */
  return sq__invites_read(be, req, SQ_INV_DUE, (size_t)limit, &req->out.has_more);
}
/* ---- the method table ---- */

static void sq_close(void *arg) {
  struct sq *be = arg;
  if (be == NULL)
    return;
  store__sqlite_ckpt_stop(be->ckpt);
  for (int i = 0; i < SQ__COUNT; i++)
    sqlite3_finalize(be->st[i]);
  if (be->db && sqlite3_close(be->db) != SQLITE_OK)
    log_error("store: sqlite close: %s", sqlite3_errmsg(be->db));
  free(be);
}

static int sq__pragma(struct sq *be, const char *sql) {
  int rc = sqlite3_exec(be->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : sq__err(be, rc, sql);
}

static int sq_open(void **out, const char *uri, enum store_durability durability) {
  struct sq *be = NULL;
  sqlite3_stmt *st = NULL;
  int err = 0;
  int rc;

  *out = NULL;
  be = calloc(1, sizeof *be);
  if (be == NULL)
    return PARLEY_EUNAVAILABLE;
  /* NOMUTEX: the connection is used by the store thread alone. URI: "file:...?mode=ro" and
   * friends work as SQLite documents them. */
  rc = sqlite3_open_v2(uri, &be->db,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                           SQLITE_OPEN_URI,
                       NULL);
  if (rc != SQLITE_OK) {
    log_error("store: cannot open %s: %s", uri, be->db ? sqlite3_errmsg(be->db) : "no memory");
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  sqlite3_extended_result_codes(be->db, 1);
  sqlite3_busy_timeout(be->db, SQ_BUSY_TIMEOUT_MS);

  rc = sqlite3_prepare_v2(be->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    err = sq__err(be, rc, "journal_mode");
    goto cleanup;
  }
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    err = sq__err(be, rc, "journal_mode");
    goto cleanup;
  }
  if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
    log_warn("store: %s is not in WAL mode (%s): concurrent readers will block writes", uri,
             (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  st = NULL;
  err = sq__pragma(be, durability == STORE_DURABILITY_FSYNC ? "PRAGMA synchronous=FULL"
                                                           : "PRAGMA synchronous=NORMAL");
  if (err)
    goto cleanup;
  err = sq__pragma(be, "PRAGMA foreign_keys=ON");
  if (err)
    goto cleanup;
  /* Checkpoints run on the checkpointer thread (store_sqlite_ckpt.c); the last connection to
   * close still checkpoints everything, so a clean shutdown leaves a small WAL. */
  err = sq__pragma(be, "PRAGMA wal_autocheckpoint=0");
  if (err)
    goto cleanup;
  /* SQLite's default page cache is 2 MB: once the message indexes outgrow it, every send
   * re-reads B-tree pages with pread (measured: ~4 per send at 4,000 sends/s). A larger cache
   * (grown only as pages are used) and reads through a memory map keep the hot pages a pointer
   * away. Writes still go through the WAL as before, so durability is unchanged. */
  err = sq__pragma(be, "PRAGMA cache_size=-65536");
  if (!err)
    err = sq__pragma(be, "PRAGMA mmap_size=268435456");
  if (err)
    goto cleanup;

  err = store__sqlite_migrate(be->db, clock_wall_ms(), NULL);
  if (err)
    goto cleanup;

  for (int i = 0; i < SQ__COUNT; i++) {
    rc = sqlite3_prepare_v3(be->db, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &be->st[i], NULL);
    if (rc != SQLITE_OK) {
      err = sq__err(be, rc, sq_sql[i]);
      goto cleanup;
    }
  }
  /* An in-memory database has no WAL to checkpoint. */
  if (strcmp(uri, ":memory:") != 0 && strstr(uri, "mode=memory") == NULL) {
    err = store__sqlite_ckpt_start(&be->ckpt, be->db, SQ_BUSY_TIMEOUT_MS, uri);
    if (err)
      goto cleanup;
  }
  *out = be;
  be = NULL;
cleanup:
  sqlite3_finalize(st);
  sq_close(be);
  return err;
}

static int sq_begin(void *arg) {
  struct sq *be = arg;
  int err;
  store__sqlite_ckpt_writer_enter(be->ckpt); /* a RESTART of the checkpointer goes first */
  err = sq__run(be, SQ_BEGIN);
  if (err)
    store__sqlite_ckpt_writer_leave(be->ckpt);
  return err;
}

static int sq_commit(void *arg) {
  struct sq *be = arg;
  int err = sq__run(be, SQ_COMMIT);
  if (sqlite3_get_autocommit(be->db)) /* else store.c rolls back */
    store__sqlite_ckpt_writer_leave(be->ckpt);
  return err;
}

static int sq_rollback(void *arg) {
  struct sq *be = arg;
  int err = 0;
  /* After some I/O errors SQLite has rolled back by itself; a second ROLLBACK would fail. */
  if (!sqlite3_get_autocommit(be->db))
    err = sq__run(be, SQ_ROLLBACK);
  store__sqlite_ckpt_writer_leave(be->ckpt);
  return err;
}

static int sq_savepoint(void *arg) {
  struct sq *be = arg;
  /* Outside a transaction SAVEPOINT would open a new one and the request would commit on its
   * own, outside the batch: refuse instead. */
  if (sqlite3_get_autocommit(be->db))
    return PARLEY_EUNAVAILABLE;
  return sq__run(be, SQ_SAVEPOINT);
}

static int sq_release(void *arg, int undo) {
  struct sq *be = arg;
  int err;
  if (sqlite3_get_autocommit(be->db)) {
    log_warn("store: the transaction was rolled back under a request (%s)",
             sqlite3_errmsg(be->db));
    return PARLEY_EUNAVAILABLE;
  }
  if (undo) {
    err = sq__run(be, SQ_ROLLBACK_TO);
    if (err)
      return err;
  }
  return sq__run(be, SQ_RELEASE);
}

static int sq_presence_audience(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_AUDIENCE];
  int64_t *ids = NULL;
  size_t n = 0, cap = 0;
  int rc, err = 0;

  sqlite3_bind_int64(st, 1, req->in.user_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      int64_t *nids = realloc(ids, ncap * sizeof *nids);
      if (nids == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      ids = nids;
      cap = ncap;
    }
    ids[n++] = sqlite3_column_int64(st, 0);
  }
  if (rc != SQLITE_DONE) {
    err = sq__err(be, rc, "presence audience");
    goto cleanup;
  }
  req->out.member_ids = ids;
  req->out.n_member_ids = n;
  ids = NULL;
cleanup:
  sqlite3_reset(st);
  free(ids);
  return err;
}

static int sq_user_seen(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_SEEN];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_int64(st, 2, req->in.seq);
  return sq__run(be, SQ_USER_SEEN);
}

/* ---- the primitives of store_rules.c ---- */

static int sq__chat_find_prim(void *be, struct store_req *req, int lock) {
  (void)lock; /* one writer: what this transaction reads stays as it is */
  return sq__chat_find(be, req);
}

static int sq__participant_delete(void *arg, int64_t chat_id, int64_t user_id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PARTICIPANT_DELETE];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  return sq__run(be, SQ_PARTICIPANT_DELETE);
}

static int sq__removal_put(void *arg, int64_t chat_id, int64_t user_id, int64_t by, int64_t now) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_REMOVAL_INSERT];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_int64(st, 3, by);
  sqlite3_bind_int64(st, 4, now);
  return sq__run(be, SQ_REMOVAL_INSERT);
}

static int sq__removal_delete(void *arg, int64_t chat_id, int64_t user_id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_REMOVAL_DELETE];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  return sq__run(be, SQ_REMOVAL_DELETE);
}

static int sq__invite_pending_for(void *arg, int64_t chat_id, int64_t to_id,
                                  struct store_invite *inv, int *found) {
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

static int sq__invite_insert(void *arg, struct store_req *req, int64_t chat_id, int64_t to_id,
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

static const struct store_prims sq_prims = {
    .chat_find = sq__chat_find_prim,
    .chat_load = sq__chat_load,
    .chat_touch = sq__chat_touch,
    .chat_archive = sq__chat_archive,
    .user_by_id = sq__user_by_id,
    .user_by_username = sq__user_by_username,
    .role_of = sq__role_of,
    .set_role = sq__set_role,
    .set_owner = sq__set_owner,
    .participant_add = sq__participant_add,
    .participant_delete = sq__participant_delete,
    .participants = sq__participants,
    .removal_put = sq__removal_put,
    .removal_delete = sq__removal_delete,
    .invite_load = sq__invite_load,
    .invite_set_status = sq__invite_set_status,
    .invite_pending_for = sq__invite_pending_for,
    .invite_insert = sq__invite_insert,
    .user_insert = sq__user_insert,
    .slug_taken = sq__slug_taken,
    .chat_insert = sq__chat_insert,
    .chat_update = sq__chat_update,
    .removed = sq__removed,
    .msgs = sq__msgs,
    .users_search = sq__users_search,
    .invites_due = sq__invites_due,
    .op =
        {
            [STORE_USER_BY_NAME] = sq_user_by_name,
            [STORE_SESSION_CREATE] = sq_session_create,
            [STORE_SESSION_GET] = sq_session_get,
            [STORE_SESSION_DELETE] = sq_session_delete,
            [STORE_CHAT_LIST] = sq_chat_list,
            [STORE_MSG_APPEND] = sq_msg_append,
            [STORE_READ_SET] = sq_read_set,
            [STORE_CHAT_MEMBERS] = sq_chat_members,
            [STORE_INVITE_LIST] = sq_invite_list,
            [STORE_PRESENCE_AUDIENCE] = sq_presence_audience,
            [STORE_USER_SEEN] = sq_user_seen,
        },
};

static int sq_exec(void *arg, struct store_req *req) {
  return store_rules_exec(&sq_prims, arg, req);
}
static void sq_set_wal_max(void *arg, uint64_t bytes) {
  store__sqlite_ckpt_set_wal_max(((struct sq *)arg)->ckpt, bytes);
}

static void sq_wal_stats(void *arg, struct store_stats *out) {
  store__sqlite_ckpt_stats(((struct sq *)arg)->ckpt, out);
}

const struct store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .conns = 1, /* one writer */
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .exec = sq_exec,
    .set_wal_max = sq_set_wal_max,
    .wal_stats = sq_wal_stats,
};
