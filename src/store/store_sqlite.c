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
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "core/acl.h"
#include "store/migrations.h"
#include "store/store.h"

#define SQ_BUSY_TIMEOUT_MS 5000 /* how long a write waits for another process' lock */
#define SQ_SLUG_NUMBERED_TRIES 50 /* "-2" ... "-51", then random suffixes */
#define SQ_SLUG_RANDOM_TRIES 8

/* Columns of a chat row (c) plus the caller's role (p.role): 11 columns. */
#define SQ_CHAT_COLS                                                                              \
  "c.id, c.slug, c.title, c.is_public, c.max_participants, c.owner_id, c.created_at,"            \
  " c.last_activity, c.last_seq, c.participant_count, p.role"
#define SQ_CHAT_NCOLS 11
/* Columns of a message (m) with its author (u): 9 columns. */
#define SQ_MSG_COLS                                                                               \
  "m.seq, m.chat_id, m.body, m.client_msg_id, m.created_at, u.id, u.username, u.display_name,"   \
  " u.created_at"

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
  X(CHAT_BY_SLUG, "SELECT " SQ_CHAT_COLS " FROM chats c LEFT JOIN participants p"                 \
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
  X(MSG_BY_CLIENT_ID, "SELECT " SQ_MSG_COLS " FROM messages m JOIN users u ON u.id = m.author_id" \
                      " WHERE m.chat_id = ?1 AND m.author_id = ?2 AND m.client_msg_id = ?3")      \
  X(MSG_RANGE, "SELECT " SQ_MSG_COLS " FROM messages m JOIN users u ON u.id = m.author_id"       \
               " WHERE m.chat_id = ?1 AND m.seq > ?2 AND m.seq < ?3"                              \
               " ORDER BY m.seq DESC LIMIT ?4")                                                   \
  X(CHAT_LIST, "SELECT " SQ_CHAT_COLS ", coalesce(r.seq, 0), " SQ_MSG_COLS                        \
               " FROM participants p JOIN chats c ON c.id = p.chat_id"                            \
               " LEFT JOIN read_markers r ON r.chat_id = p.chat_id AND r.user_id = p.user_id"     \
               " LEFT JOIN messages m ON m.chat_id = c.id AND m.seq = c.last_seq"                 \
               " LEFT JOIN users u ON u.id = m.author_id"                                         \
               " WHERE p.user_id = ?1 ORDER BY c.last_activity DESC, c.id DESC")                  \
  X(READ_UPSERT, "INSERT INTO read_markers(chat_id, user_id, seq, updated_at)"                    \
                 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(chat_id, user_id) DO UPDATE SET"          \
                 " seq = max(seq, excluded.seq), updated_at = excluded.updated_at"                \
                 " RETURNING seq")

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
};

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
  if (n >= cap)
    n = cap - 1;
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

/* Reads SQ_CHAT_COLS starting at column 0 into c (its previous title is freed). */
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
  return 0;
}

/* Reads SQ_MSG_COLS starting at `col` into m (its previous body is freed). A NULL seq (no
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
static int sq__chat_load(struct sq *be, const char *slug, int64_t user_id, struct store_chat *c) {
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

/* Loads the chat from the request's slug and checks `op` for the requesting user. */
static int sq__chat_access(struct sq *be, struct store_req *req, enum acl_op op) {
  int err;
  if (!SQ_TERMINATED(req->in.slug) || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  err = sq__chat_load(be, req->in.slug, req->in.user_id, &req->out.chat);
  if (err)
    return err;
  return acl_check(op, req->out.chat.my_role, req->out.chat.is_public);
}

static int sq__slug_taken(struct sq *be, const char *slug, int *taken) {
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

static int sq_user_create(struct sq *be, struct store_req *req) {
  struct store_user *u = &req->in.user;
  sqlite3_stmt *st = be->st[SQ_USER_INSERT];
  const char *display;
  size_t ulen;
  int rc;

  if (!SQ_TERMINATED(u->username) || !SQ_TERMINATED(u->display_name))
    return PARLEY_EBAD_REQUEST;
  ulen = strlen(u->username);
  if (ulen == 0 || ulen > STORE_USERNAME_MAX || req->in.pwhash == NULL ||
      req->in.pwhash[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  display = u->display_name[0] ? u->display_name : u->username;

  sqlite3_bind_text(st, 1, u->username, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, display, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, req->in.pwhash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, req->in.now);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    req->out.user.id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW)
    return sq__err(be, rc, "insert user");
  snprintf(req->out.user.username, sizeof req->out.user.username, "%s", u->username);
  snprintf(req->out.user.display_name, sizeof req->out.user.display_name, "%s", display);
  req->out.user.created_at = req->in.now;
  return 0;
}

static int sq_user_by_name(struct sq *be, struct store_req *req) {
  sqlite3_stmt *st = be->st[SQ_USER_BY_NAME];
  int err = 0;
  int rc;
  if (!SQ_TERMINATED(req->in.user.username))
    return PARLEY_EBAD_REQUEST;
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

static int sq_session_create(struct sq *be, struct store_req *req) {
  sqlite3_stmt *st = be->st[SQ_SESSION_INSERT];
  if (req->in.expires_at <= req->in.now)
    return PARLEY_EBAD_REQUEST;
  sqlite3_bind_blob(st, 1, req->in.token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, req->in.now);
  sqlite3_bind_int64(st, 4, req->in.expires_at);
  return sq__run(be, SQ_SESSION_INSERT);
}

static int sq_session_get(struct sq *be, struct store_req *req) {
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

static int sq_session_delete(struct sq *be, struct store_req *req) {
  sqlite3_bind_blob(be->st[SQ_SESSION_DELETE], 1, req->in.token_hash, STORE_TOKEN_HASH_LEN,
                    SQLITE_STATIC);
  return sq__run(be, SQ_SESSION_DELETE);
}

/* Picks the slug of a new chat into `slug`: the explicit one if free, else the title's with the
 * first free "-N" (then random) suffix. */
static int sq__chat_pick_slug(struct sq *be, struct store_req *req, char slug[STORE_SLUG_MAX + 1]) {
  char base[STORE_SLUG_MAX + 1];
  int taken = 0;
  int err;

  if (req->in.slug[0] != '\0') {
    if (!store_slug_valid(req->in.slug))
      return PARLEY_EBAD_REQUEST;
    err = sq__slug_taken(be, req->in.slug, &taken);
    if (err)
      return err;
    if (taken)
      return PARLEY_ECONFLICT; /* the caller asked for this name: do not silently rename */
    memcpy(slug, req->in.slug, STORE_SLUG_MAX + 1);
    return 0;
  }
  store_slug_derive(req->in.title, base);
  snprintf(slug, STORE_SLUG_MAX + 1, "%s", base);
  for (int i = 0; i < 1 + SQ_SLUG_NUMBERED_TRIES + SQ_SLUG_RANDOM_TRIES; i++) {
    if (i > 0 && i <= SQ_SLUG_NUMBERED_TRIES) {
      snprintf(slug, STORE_SLUG_MAX + 1, "%.*s-%d", STORE_SLUG_DERIVED_MAX, base, i + 1);
    } else if (i > SQ_SLUG_NUMBERED_TRIES) {
      /* A popular title ("general") would otherwise cost one lookup per earlier chat. */
      static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
      unsigned char rnd[6];
      char suffix[sizeof rnd + 1];
      sqlite3_randomness(sizeof rnd, rnd);
      for (size_t k = 0; k < sizeof rnd; k++)
        suffix[k] = alphabet[rnd[k] % (sizeof alphabet - 1)];
      suffix[sizeof rnd] = '\0';
      snprintf(slug, STORE_SLUG_MAX + 1, "%.*s-%s", STORE_SLUG_DERIVED_MAX, base, suffix);
    }
    err = sq__slug_taken(be, slug, &taken);
    if (err)
      return err;
    if (!taken)
      return 0;
  }
  return PARLEY_ECONFLICT;
}

static int sq_chat_create(struct sq *be, struct store_req *req) {
  sqlite3_stmt *st;
  char slug[STORE_SLUG_MAX + 1];
  int64_t chat_id;
  int err, rc;

  if (req->in.title == NULL || req->in.title[0] == '\0' || req->in.max_participants < 0 ||
      !SQ_TERMINATED(req->in.slug))
    return PARLEY_EBAD_REQUEST;
  err = sq__chat_pick_slug(be, req, slug);
  if (err)
    return err;

  st = be->st[SQ_CHAT_INSERT];
  sqlite3_bind_text(st, 1, slug, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, req->in.title, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, req->in.is_public != 0);
  sqlite3_bind_int(st, 4, req->in.max_participants);
  sqlite3_bind_int64(st, 5, req->in.user_id);
  sqlite3_bind_int64(st, 6, req->in.now);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return sq__err(be, rc, "insert chat"); /* an unknown owner fails the foreign key */
  chat_id = sqlite3_last_insert_rowid(be->db);

  st = be->st[SQ_PARTICIPANT_INSERT];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_text(st, 3, chat_role_name(CHAT_ROLE_OWNER), -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, req->in.now);
  err = sq__run(be, SQ_PARTICIPANT_INSERT);
  if (err)
    return err;
  return sq__chat_load(be, slug, req->in.user_id, &req->out.chat);
}

static int sq_chat_get(struct sq *be, struct store_req *req) {
  return sq__chat_access(be, req, ACL_CHAT_VIEW);
}

static int sq_chat_list(struct sq *be, struct store_req *req) {
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
    marker = sqlite3_column_int64(st, SQ_CHAT_NCOLS);
    /* seq is gap-free and messages are never deleted, so the count after the marker is a
     * subtraction, not a scan of every unread row. */
    req->out.unread[i] = req->out.chats[i].last_seq > marker ? req->out.chats[i].last_seq - marker
                                                             : 0;
    err = sq__read_msg(st, SQ_CHAT_NCOLS + 1, &req->out.last_msgs[i]);
    if (err)
      goto cleanup;
  }
  if (rc != SQLITE_DONE)
    err = sq__err(be, rc, "list chats");
cleanup:
  sqlite3_reset(st);
  return err;
}

static int sq_chat_join(struct sq *be, struct store_req *req) {
  struct store_chat *c = &req->out.chat;
  sqlite3_stmt *st;
  int err = sq__chat_access(be, req, ACL_CHAT_JOIN);
  if (err)
    return err;
  if (c->my_role != CHAT_ROLE_NONE) {
    req->out.joined = 0;
    return 0;
  }
  /* The cap counts the owner too, and is read in the transaction that adds the row, so two joins
   * racing for the last seat cannot both win. */
  if (c->max_participants > 0 && c->participant_count >= c->max_participants)
    return PARLEY_ECHAT_FULL;

  st = be->st[SQ_PARTICIPANT_INSERT];
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_text(st, 3, chat_role_name(CHAT_ROLE_MEMBER), -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, req->in.now);
  err = sq__run(be, SQ_PARTICIPANT_INSERT);
  if (err)
    return err;
  st = be->st[SQ_CHAT_TOUCH];
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, req->in.now);
  err = sq__run(be, SQ_CHAT_TOUCH);
  if (err)
    return err;
  req->out.joined = 1;
  return sq__chat_load(be, req->in.slug, req->in.user_id, c);
}

static int sq_msg_append(struct sq *be, struct store_req *req) {
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

static int sq__check_limit(int limit) {
  return limit >= 1 && limit <= STORE_LIMIT_MAX ? 0 : PARLEY_EBAD_REQUEST;
}

static int sq_msg_history(struct sq *be, struct store_req *req) {
  int err;
  if (sq__check_limit(req->in.limit) || req->in.before < 0)
    return PARLEY_EBAD_REQUEST;
  err = sq__chat_access(be, req, ACL_CHAT_READ);
  if (err)
    return err;
  return sq__msgs_range(be, req, req->out.chat.id, 0,
                        req->in.before > 0 ? req->in.before : INT64_MAX, req->in.limit,
                        &req->out.has_more);
}

static int sq_msg_since(struct sq *be, struct store_req *req) {
  int err;
  if (sq__check_limit(req->in.limit) || req->in.since < 0)
    return PARLEY_EBAD_REQUEST;
  err = sq__chat_access(be, req, ACL_CHAT_READ);
  if (err)
    return err;
  /* A since beyond last_seq finds nothing and is no reset: app/ passes a huge since to mean
   * "from now on", and it can compare since with out.chat.last_seq itself. */
  return sq__msgs_range(be, req, req->out.chat.id, req->in.since, INT64_MAX, req->in.limit,
                        &req->out.reset);
}

static int sq_read_set(struct sq *be, struct store_req *req) {
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

/* ---- the method table ---- */

static void sq_close(void *arg) {
  struct sq *be = arg;
  if (be == NULL)
    return;
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
  *out = be;
  be = NULL;
cleanup:
  sqlite3_finalize(st);
  sq_close(be);
  return err;
}

static int sq_begin(void *arg) {
  return sq__run(arg, SQ_BEGIN);
}

static int sq_commit(void *arg) {
  return sq__run(arg, SQ_COMMIT);
}

static int sq_rollback(void *arg) {
  struct sq *be = arg;
  /* After some I/O errors SQLite has rolled back by itself; a second ROLLBACK would fail. */
  if (sqlite3_get_autocommit(be->db))
    return 0;
  return sq__run(be, SQ_ROLLBACK);
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

static int sq_exec(void *arg, struct store_req *req) {
  struct sq *be = arg;
  switch (req->op) {
  case STORE_USER_CREATE:
    return sq_user_create(be, req);
  case STORE_USER_BY_NAME:
    return sq_user_by_name(be, req);
  case STORE_SESSION_CREATE:
    return sq_session_create(be, req);
  case STORE_SESSION_GET:
    return sq_session_get(be, req);
  case STORE_SESSION_DELETE:
    return sq_session_delete(be, req);
  case STORE_CHAT_CREATE:
    return sq_chat_create(be, req);
  case STORE_CHAT_GET:
    return sq_chat_get(be, req);
  case STORE_CHAT_LIST:
    return sq_chat_list(be, req);
  case STORE_CHAT_JOIN:
    return sq_chat_join(be, req);
  case STORE_MSG_APPEND:
    return sq_msg_append(be, req);
  case STORE_MSG_HISTORY:
    return sq_msg_history(be, req);
  case STORE_MSG_SINCE:
    return sq_msg_since(be, req);
  case STORE_READ_SET:
    return sq_read_set(be, req);
  case STORE_OP__COUNT:
    break;
  }
  return PARLEY_EBAD_REQUEST;
}

const struct store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .exec = sq_exec,
};
