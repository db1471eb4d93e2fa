/* store_pg_int.h - what the files of the PostgreSQL backend share (private to store_pg*.c).
 *
 * store_pg.c: connection, pipelines, transactions and the method table; store_pg_rows.c: column
 * readers, chat lookups and the rules' row primitives; store_pg_ops.c: the ops that are SQL alone
 * and the primitives table; store_pg_batch.c: exec_batch. All run on the lane's thread.
 */
#ifndef PARLEY_STORE_PG_INT_H
#define PARLEY_STORE_PG_INT_H

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "store/store.h"
#include "store/store_rules.h"
#include "store/store_sql.h"

#define PG_MAX_PARAMS 16
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
#define PG_STATEMENTS(X)                                                                           \
  X(USER_INSERT, "INSERT INTO users(username, display_name, pwhash, created_at)"                   \
                 " VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING RETURNING id")        \
  X(USER_BY_NAME, "SELECT id, username, display_name, created_at, pwhash, bot FROM users"               \
                  " WHERE username = $1")                                                          \
  X(USER_BY_ID, "SELECT id, username, display_name, created_at, avatar, bot FROM users WHERE id = $1")  \
  X(SESSION_INSERT, "INSERT INTO sessions(token_hash, user_id, created_at, expires_at)"            \
                    " VALUES ($1, $2, $3, $4)")                                                    \
  X(SESSION_GET, "SELECT s.expires_at, u.id, u.username, u.display_name, u.created_at, u.avatar, u.bot"   \
                 " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1")      \
  X(SESSION_DELETE, "DELETE FROM sessions WHERE token_hash = $1")                                  \
  X(SESSION_SWEEP, "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "    \
                   "WHERE expires_at <= $1 LIMIT $2)")                                             \
  X(CHAT_BY_SLUG, "SELECT " STORE_SQL_CHAT_COLS " FROM chats c LEFT JOIN participants p"           \
                  " ON p.chat_id = c.id AND p.user_id = $2 WHERE c.slug = $1")                     \
  /* The row locks. A statement of their own: after waiting for another node's transaction, the    \
   * next statement's snapshot includes what it committed (a join locked in the same statement     \
   * would keep the participant rows it read before the wait). */                                  \
  X(CHAT_LOCK_SLUG, "SELECT id FROM chats WHERE slug = $1 FOR NO KEY UPDATE")                      \
  X(CHAT_LOCK_ID, "SELECT id FROM chats WHERE id = $1 FOR NO KEY UPDATE")                          \
  /* pg__claim_chats(): the chats of a batch's sends that nobody else holds, locked now. */        \
  X(CHAT_CLAIM, "SELECT slug FROM chats WHERE slug = ANY($1::text[])"                              \
                " FOR NO KEY UPDATE SKIP LOCKED")                                                  \
  /* The same for chats that must not wait any longer: in slug order (rows are locked as the       \
   * sort emits them), so every node waits for them in one order and never holds others. */        \
  X(CHAT_CLAIM_WAIT, "SELECT slug FROM chats WHERE slug = ANY($1::text[]) ORDER BY slug"           \
                     " FOR NO KEY UPDATE")                                                         \
  X(SLUG_TAKEN, "SELECT 1 FROM chats WHERE slug = $1")                                             \
  X(CHAT_INSERT, "INSERT INTO chats(slug, title, is_public, max_participants, owner_id,"           \
                 " created_at, last_activity) VALUES ($1, $2, $3, $4, $5, $6, $6)"                 \
                 " ON CONFLICT (slug) DO NOTHING RETURNING id")                                    \
  X(PARTICIPANT_INSERT, "INSERT INTO participants(chat_id, user_id, role, joined_at)"              \
                        " VALUES ($1, $2, $3, $4)")                                                \
  X(CHAT_TOUCH, "UPDATE chats SET last_activity = GREATEST(last_activity, $2) WHERE id = $1")      \
  /* Migration 4's functions: a send and a read marker in one statement each (see there). */       \
  X(MSG_APPEND, "SELECT * FROM parley_msg_append($1, $2, $3, $4, $5)")                             \
  X(READ_SET, "SELECT * FROM parley_read_set($1, $2, $3, $4)")                                     \
  /* By slug, so it travels in one pipeline with CHAT_BY_SLUG (the access check comes after). */   \
  X(MSG_RANGE, "SELECT " STORE_SQL_MSG_COLS " FROM messages m JOIN users u ON u.id = m.author_id"  \
               " WHERE m.chat_id = (SELECT id FROM chats WHERE slug = $1)"                         \
               " AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq DESC LIMIT $4")                      \
  X(CHAT_LIST, "SELECT " STORE_SQL_CHAT_COLS ", coalesce(r.seq, 0), p.notify, " STORE_SQL_MSG_COLS \
               " FROM participants p JOIN chats c ON c.id = p.chat_id"                             \
               " LEFT JOIN read_markers r ON r.chat_id = p.chat_id AND r.user_id = p.user_id"      \
               " LEFT JOIN messages m ON m.chat_id = c.id AND m.seq = c.last_seq"                  \
               " LEFT JOIN users u ON u.id = m.author_id"                                          \
               " WHERE p.user_id = $1 ORDER BY c.last_activity DESC, c.id DESC")                   \
  X(USER_BY_USERNAME, "SELECT id, username, display_name, created_at, avatar, bot FROM users"           \
                      " WHERE username = $1")                                                      \
  X(PARTICIPANT_ROLE, "SELECT role FROM participants WHERE chat_id = $1 AND user_id = $2")         \
  /* Ordered as SQLite's WITHOUT ROWID primary key returns them, so succession ties agree. */      \
  X(PARTICIPANTS, "SELECT user_id, role, joined_at FROM participants WHERE chat_id = $1"           \
                  " ORDER BY user_id")                                                             \
  X(MEMBERS, "SELECT u.id, u.username, u.display_name, u.created_at, p.role, p.joined_at,"         \
             " coalesce(u.last_seen, 0), u.avatar, u.bot FROM participants p"                             \
             " JOIN users u ON u.id = p.user_id WHERE p.chat_id = $1"                              \
             " ORDER BY p.joined_at, p.user_id")                                                   \
  X(PARTICIPANT_DELETE, "DELETE FROM participants WHERE chat_id = $1 AND user_id = $2")            \
  X(PARTICIPANT_SET_ROLE, "UPDATE participants SET role = $3 WHERE chat_id = $1 AND user_id = $2") \
  X(CHAT_SET_OWNER, "UPDATE chats SET owner_id = $2 WHERE id = $1")                                \
  X(CHAT_ARCHIVE, "UPDATE chats SET archived = 1 WHERE id = $1")                                   \
  X(CHAT_UPDATE, "UPDATE chats SET title = coalesce($2::text, title),"                             \
                 " is_public = coalesce($3::smallint, is_public),"                                 \
                 " max_participants = coalesce($4::integer, max_participants),"                    \
                 " invite_policy = coalesce($5::smallint, invite_policy) WHERE id = $1")           \
  X(USERS_SEARCH, "SELECT u.id, u.username, u.display_name, u.created_at,"                         \
                  " EXISTS (SELECT 1 FROM participants p WHERE p.chat_id = $4"                     \
                  "   AND p.user_id = u.id)::integer,"                                             \
                  " EXISTS (SELECT 1 FROM invitations i WHERE i.chat_id = $4 AND i.to_id = u.id"   \
                  "   AND i.status = 0 AND i.expires_at > $5)::integer,"                           \
                  " coalesce(u.last_seen, 0), u.avatar, u.bot FROM users u WHERE u.id <> $3 AND"          \
                  " ((" PG_LOWER_NAME " >= $1 AND " PG_LOWER_NAME " < $2) OR"                      \
                  "  (" PG_LOWER_DISPLAY " >= $1 AND " PG_LOWER_DISPLAY " < $2))"                  \
                  " ORDER BY " PG_LOWER_NAME " = $1 DESC,"                                         \
                  "  (" PG_LOWER_NAME " >= $1 AND " PG_LOWER_NAME " < $2) DESC,"                   \
                  "  u.username COLLATE \"C\" LIMIT $6")                                           \
  /* The word starts of users.search: user_words' range [$1, $2), prefix hits excluded             \
   * (USERS_SEARCH returned them), each user once. */                                              \
  /* As SQLite's: user_words' range [$1, $2) over its primary key, in the "C" collation. */        \
  X(USERS_SEARCH_WORDS,                                                                            \
    "SELECT u.id, u.username, u.display_name, u.created_at,"                                       \
    " EXISTS (SELECT 1 FROM participants p WHERE p.chat_id = $4"                                   \
    "   AND p.user_id = u.id)::integer,"                                                           \
    " EXISTS (SELECT 1 FROM invitations i WHERE i.chat_id = $4"                                    \
    "   AND i.to_id = u.id AND i.status = 0 AND i.expires_at > $5)::integer,"                      \
    " coalesce(u.last_seen, 0), u.avatar, u.bot FROM users u WHERE u.id IN"                               \
    "  (SELECT w.user_id FROM user_words w WHERE w.word >= $1 AND w.word < $2)"                    \
    " AND u.id <> $3"                                                                              \
    " AND NOT (" PG_LOWER_NAME " >= $1 AND " PG_LOWER_NAME " < $2)"                                \
    " AND NOT (" PG_LOWER_DISPLAY " >= $1 AND " PG_LOWER_DISPLAY " < $2)"                          \
    " ORDER BY u.username COLLATE \"C\" LIMIT $6")                                                 \
  X(USER_WORD_INSERT,                                                                              \
    "INSERT INTO user_words(word, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")                \
  X(INV_BY_ID, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.id = $1")                 \
  X(INV_PENDING_FOR, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM                               \
                     " WHERE i.chat_id = $1 AND i.to_id = $2 AND i.status = 0")                    \
  X(INV_PENDING_OF_CHAT, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM                           \
                         " WHERE i.chat_id = $1 AND i.status = 0 ORDER BY i.id")                   \
  X(INV_INSERT, "INSERT INTO invitations(chat_id, from_id, to_id, status, created_at,"             \
                " expires_at, updated_at) VALUES ($1, $2, $3, 0, $4, $5, $4) RETURNING id")        \
  X(INV_SET_STATUS, "UPDATE invitations SET status = $2, updated_at = $3"                          \
                    " WHERE id = $1 AND status = 0")                                               \
  X(INV_INCOMING,                                                                                  \
    "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.to_id = $1 AND i.status = 0"         \
    " AND i.expires_at > $2 ORDER BY i.created_at DESC, i.id DESC LIMIT $3")                       \
  X(INV_LIST, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.id IN ("                   \
              "  SELECT id FROM invitations WHERE to_id = $1 AND status = 0 AND expires_at > $2"   \
              "  UNION ALL"                                                                        \
              "  SELECT j.id FROM participants p JOIN invitations j"                               \
              "    ON j.chat_id = p.chat_id AND j.status = 0"                                      \
              "  WHERE p.user_id = $1 AND j.expires_at > $2"                                       \
              "    AND (p.role IN ('owner', 'admin') OR j.from_id = $1))"                          \
              " ORDER BY (i.to_id = $1) DESC, i.created_at DESC, i.id DESC LIMIT $3")              \
  /* Several nodes sweep the same table: each takes the due rows nobody holds, and a row whose     \
   * invitation is being accepted elsewhere waits for the next sweep. */                           \
  X(INV_DUE,                                                                                       \
    "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.status = 0 AND i.expires_at <= $1"   \
    " ORDER BY i.expires_at, i.id LIMIT $2 FOR NO KEY UPDATE OF i SKIP LOCKED")                    \
  X(REMOVAL_INSERT, "INSERT INTO removals(chat_id, user_id, removed_by, removed_at)"               \
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (chat_id, user_id) DO UPDATE SET"        \
                    " removed_by = excluded.removed_by, removed_at = excluded.removed_at")         \
  X(REMOVAL_GET, "SELECT 1 FROM removals WHERE chat_id = $1 AND user_id = $2")                     \
  X(REMOVAL_DELETE, "DELETE FROM removals WHERE chat_id = $1 AND user_id = $2")                    \
  X(AUDIENCE, "SELECT DISTINCT p2.user_id FROM participants p1"                                    \
              " JOIN chats c ON c.id = p1.chat_id AND c.archived = 0"                              \
              " JOIN participants p2 ON p2.chat_id = p1.chat_id"                                   \
              " WHERE p1.user_id = $1 AND p2.user_id <> $1 ORDER BY p2.user_id")                   \
  X(USER_SEEN, "UPDATE users SET last_seen = GREATEST(coalesce(last_seen, 0), $2) WHERE id = $1")  \
  /* msg.search (store_pg_search.c): the GIN index finds the matches ($1: to_tsquery text of      \
   * core/search_query.c) in the caller's chats; only the newest $7 of them (top-N by time, no    \
   * ranking) are ranked by ts_rank, which recomputes each candidate's tsvector, so a word in    \
   * most messages costs a bounded ranking; ts_headline marks the page alone. chat_id between    \
   * $3 and $4: one chat or every one. */                                                         \
  X(MSG_SEARCH,                                                                                    \
    "SELECT " STORE_SQL_MSG_COLS ", c.slug, c.title, ts_headline('simple'::regconfig,"             \
    " translate(m.body, E'\\x02\\x03', ''), h.q, 'StartSel=\x02" ", StopSel=\x03"                   \
    ", MaxWords=30, MinWords=12')"                                                                 \
    " FROM (SELECT k.chat_id, k.seq, q, ts_rank(" STORE_SQL_PG_SEARCH_DOC("k.body") ", q) AS r"    \
    "  FROM to_tsquery('simple'::regconfig, $1) q,"                                                \
    "  (SELECT m.chat_id, m.seq, m.body FROM messages m"                                           \
    "   WHERE " STORE_SQL_PG_SEARCH_DOC("m.body") " @@ to_tsquery('simple'::regconfig, $1)"        \
    "   AND m.chat_id BETWEEN $3 AND $4 AND m.kind = 'text'"                                       \
    "   AND m.stream_state IS DISTINCT FROM 'streaming'"                                          \
    "   AND m.chat_id IN (SELECT chat_id FROM participants WHERE user_id = $2)"                    \
    "   ORDER BY m.created_at DESC, m.chat_id, m.seq DESC LIMIT $7) k"                             \
    "  ORDER BY r DESC, k.chat_id, k.seq DESC LIMIT $5 OFFSET $6) h"                               \
    " JOIN messages m ON m.chat_id = h.chat_id AND m.seq = h.seq"                                  \
    " JOIN users u ON u.id = m.author_id JOIN chats c ON c.id = m.chat_id"                         \
    " ORDER BY h.r DESC, h.chat_id, h.seq DESC")                                                   \
  PG_LIVE_STATEMENTS(X)

/* Issue 18 (store_pg_live.c), as SQLite's SQ_LIVE_STATEMENTS. */
#define PG_LIVE_STATEMENTS(X)                                                                      \
  X(READERS, "SELECT p.user_id, LEAST(1000, GREATEST(0, "                                             \
             STORE_SQL_UNREAD_UPTO("p.chat_id", "coalesce(r.seq, 0)", "$1", "$4::bigint")          \
             ")),"                                                                                 \
             " (SELECT count(*) FROM (SELECT 1 FROM message_mentions mm"                         \
             "  WHERE mm.chat_id = p.chat_id AND mm.user_id = p.user_id"                         \
             "  AND mm.seq > coalesce(r.seq, 0) AND mm.seq <= $4::bigint LIMIT 1000) x)"         \
             " FROM participants p"                                                              \
             " LEFT JOIN read_markers r ON r.chat_id = p.chat_id AND r.user_id = p.user_id"        \
             " WHERE p.chat_id = $1 AND ($2::bigint = 0 OR p.user_id = $2::bigint) AND ($3::text"  \
             "  IS NULL OR p.user_id = ANY (string_to_array($3::text, ',')::bigint[]))")          \
  X(NOTIFY_SET, "UPDATE participants SET notify = $3 WHERE chat_id = $1 AND user_id = $2")         \
  X(NOTIFY_OF, "SELECT notify FROM participants WHERE chat_id = $1 AND user_id = $2")              \
  X(BROWSE, "SELECT " STORE_SQL_CHAT_COLS " FROM chats c LEFT JOIN participants p"                 \
            " ON p.chat_id = c.id AND p.user_id = $1"                                              \
            " WHERE c.is_public = 1 AND c.archived = 0"                                            \
            " AND ($2::bigint = 0 OR c.last_activity < $2::bigint OR (c.last_activity = $2::bigint" \
            "  AND c.id < (SELECT id FROM chats WHERE slug = $5::text AND is_public = 1)))"       \
            " AND ($3::text IS NULL OR lower(c.title COLLATE \"C\") LIKE $3 || '%'"                \
            "  OR lower(c.title COLLATE \"C\") LIKE '% ' || $3 || '%')"                            \
            " ORDER BY c.last_activity DESC, c.id DESC LIMIT $4")                                  \
  X(USER_SET_DISPLAY, "UPDATE users SET display_name = $2 WHERE id = $1")                          \
  X(USER_WORDS_DELETE, "DELETE FROM user_words WHERE user_id = $1")                                \
  X(PASSWORD_SET, "UPDATE users SET pwhash = $2 WHERE id = $1")                                    \
  X(SESSIONS_END, "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2"                   \
                  " RETURNING encode(token_hash, 'hex')")                                          \
  X(AVATAR_PUT, "INSERT INTO avatars(name, data, created_at) VALUES ($1, $2, $3)"                  \
                " ON CONFLICT (name) DO NOTHING")                                                  \
  X(AVATAR_OF, "SELECT coalesce(avatar, '') FROM users WHERE id = $1 FOR UPDATE")                  \
  X(USER_SET_AVATAR, "UPDATE users SET avatar = $2 WHERE id = $1")                                 \
  X(AVATAR_GC, "DELETE FROM avatars WHERE name = $1"                                               \
               " AND NOT EXISTS (SELECT 1 FROM users WHERE avatar = $1)")                          \
  X(AVATAR_GET, "SELECT data FROM avatars WHERE name = $1")

enum pg_stmt {
#define PG__ENUM(name, sql) PG_##name,
  PG_STATEMENTS(PG__ENUM)
#undef PG__ENUM
      PG__COUNT
};

/* Transaction control that has not been sent yet: it travels in the pipeline of the next
 * statement (or of COMMIT), in this order, instead of costing a round trip of its own. */
enum {
  PG_PEND_BEGIN = 1,    /* the batch's BEGIN */
  PG_PEND_UNDO = 2,     /* the previous request failed: ROLLBACK TO and RELEASE its savepoint */
  PG_PEND_RELEASE = 4,  /* the previous request succeeded: RELEASE its savepoint */
  PG_PEND_SAVEPOINT = 8 /* the current request's SAVEPOINT */
};

struct pg {
  PGconn *conn;
  char *uri; /* for reconnecting; never logged (it may hold a password) */
  enum store_durability durability;
  int doomed;    /* this transaction lost a deadlock: the rest of its batch fails fast */
  unsigned pend; /* PG_PEND_* not sent yet */
  int sp_open;   /* the current request's SAVEPOINT reached the server */
  char last_state[6]; /* SQLSTATE of the last error pg__err() mapped ("" if it had none) */
  int broken;    /* transaction control failed or the connection dropped: no commit */
  uint64_t round_trips, statements; /* since open, logged at close */
};

/* The parameters of one statement, in $1, $2 ... order. Numbers are formatted into `num`. */
struct pgp {
  int n;
  const char *v[PG_MAX_PARAMS];
  int len[PG_MAX_PARAMS];
  int fmt[PG_MAX_PARAMS];
  char num[PG_MAX_PARAMS][24];
};

static inline void pgp_i64(struct pgp *p, int64_t x) {
  assert(p->n < PG_MAX_PARAMS);
  snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)x);
  p->v[p->n] = p->num[p->n];
  p->len[p->n] = 0;
  p->fmt[p->n] = 0;
  p->n++;
}

/* A text parameter; NULL is SQL NULL. Borrowed until the statement ran. */
static inline void pgp_text(struct pgp *p, const char *s) {
  assert(p->n < PG_MAX_PARAMS);
  p->v[p->n] = s;
  p->len[p->n] = 0;
  p->fmt[p->n] = 0;
  p->n++;
}

static inline void pgp_bytes(struct pgp *p, const void *b, int n) {
  assert(p->n < PG_MAX_PARAMS);
  p->v[p->n] = b;
  p->len[p->n] = n;
  p->fmt[p->n] = 1;
  p->n++;
}

/* One statement of a pipeline: prepared statement `id` with `p` (NULL: no parameters), or, when
 * `sql` is set, that text (transaction control, or a generic statement with `p`). */
struct pg_call {
  enum pg_stmt id;
  const struct pgp *p;
  const char *sql;
};

#define PG_MAX_CALLS 8 /* calls of a pipeline kept on the stack; longer ones are allocated */

/* A fixed-size input array is valid only if it holds its NUL. */
#define PG_TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))

extern const char *const pg_sql[PG__COUNT];   /* store_pg.c */
extern const char *const pg_names[PG__COUNT]; /* store_pg.c: the prepared statements' names */
extern const struct store_prims pg_prims;     /* store_pg_ops.c */

/* Defined in one file of the backend, used in another. */
int pg__err(struct pg *be, const PGresult *res, const char *what);
int pg__exchange_at(struct pg *be, const struct pg_call *calls, int n, PGresult **res, int *failed);
int pg__exchange(struct pg *be, const struct pg_call *calls, int n, PGresult **res);
int pg__q(struct pg *be, enum pg_stmt id, const struct pgp *p, PGresult **out);
int pg__run(struct pg *be, enum pg_stmt id, const struct pgp *p);
int pg__run_n(struct pg *be, enum pg_stmt id, const struct pgp *p, long *changes);
int pg_savepoint(void *arg);
int pg_release(void *arg, int undo);
int pg_exec(void *arg, struct store_req *req);
int64_t pg__i64(const PGresult *r, int row, int col);
int pg__int(const PGresult *r, int row, int col);
const char *pg__str(const PGresult *r, int row, int col);
int pg__dup(char **dst, const PGresult *r, int row, int col);
void pg__read_user(const PGresult *r, int row, int col, struct store_user *u);
int pg__read_chat(const PGresult *r, int row, struct store_chat *c);
int pg__read_msg(const PGresult *r, int row, int col, struct store_msg *m);
int pg__chat_load(void *arg, const char *slug, int64_t user_id, struct store_chat *c);
int pg__chat_lock(void *arg, const char *slug);
int pg__chat_take(struct store_req *req, const PGresult *r, enum acl_op op);
int pg__chat_touch(void *arg, int64_t chat_id, int64_t now);
int pg__user_by_username(void *arg, struct store_req *req, const char *username,
                         struct store_user *u);
int pg__user_by_id(void *arg, int64_t id, struct store_user *u);
/* Issue 18 (store_pg_live.c): the primitives and ops of store_rules_live.c, and the user's
 * avatar column at `col` of a row. */
void pg__read_avatar(const PGresult *r, int row, int col, struct store_user *u);
int pg__chat_readers(void *arg, struct store_req *req, int64_t chat_id, int64_t user_id,
                     const char *only, int64_t upto);
int pg__notify_set(void *arg, int64_t chat_id, int64_t user_id, int level);
int pg__notify_of(void *arg, int64_t chat_id, int64_t user_id, int *level);
int pg__chats_browse(void *arg, struct store_req *req, const char *lo, size_t len, int64_t before,
                     int limit);
int pg__user_set_display(void *arg, int64_t user_id, const char *display);
int pg__user_words_delete(void *arg, int64_t user_id);
int pg__avatar_put(void *arg, const char *name, const unsigned char *data, size_t len,
                   int64_t now);
int pg__user_set_avatar(void *arg, int64_t user_id, const char *name, char *old);
int pg__avatar_gc(void *arg, const char *name);
int pg__password_set(void *arg, struct store_req *req);
int pg__avatar_get(void *arg, struct store_req *req);
int pg__role_of(void *arg, int64_t chat_id, int64_t user_id, enum chat_role *role);
int pg__set_role(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role);
int pg__set_owner(void *arg, int64_t chat_id, int64_t owner_id);
int pg__participant_add(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role,
                        int64_t now);
int pg__participants(void *arg, int64_t chat_id, struct acl_member **out, size_t *n);
int pg__invites_read(struct pg *be, struct store_req *req, enum pg_stmt id, const struct pgp *p,
                     size_t limit, int *more);
int pg__invite_load_locked(void *arg, int64_t id, struct store_invite *inv, int64_t *chat_id,
                           int *archived);
int pg__invite_set_status(void *arg, int64_t id, enum invite_status status, int64_t now);
int pg__slug_taken(void *arg, const char *slug, int *taken);
int pg__chat_msgs(void *arg, struct store_req *req, int64_t lo, int64_t hi, int limit, int *more);
int pg__participant_delete(void *arg, int64_t chat_id, int64_t user_id);
int pg__removal_put(void *arg, int64_t chat_id, int64_t user_id, int64_t by, int64_t now);
int pg__removal_delete(void *arg, int64_t chat_id, int64_t user_id);
int pg__invite_pending_for(void *arg, int64_t chat_id, int64_t to_id, struct store_invite *inv,
                           int *found);
int pg__invite_insert(void *arg, struct store_req *req, int64_t chat_id, int64_t to_id,
                      struct store_invite *inv);
int pg__msg_append_params(const struct store_req *req, struct pgp *p);
int pg__msg_append_take(struct store_req *req, const PGresult *r);
int pg__read_set_params(const struct store_req *req, struct pgp *p);
int pg__read_set_take(struct store_req *req, const PGresult *r);
int pg_exec_batch(void *arg, struct store_req *batch);
int pg__sql(void *arg, const char *text, const struct store_arg *args, int n,
            struct store_res *out);
int pg__msg_search(void *arg, struct store_req *req, const struct search_query *q,
                   int64_t chat_id, int offset, int limit, int *timed_out);

#endif
