/* store_sqlite_int.h - what the files of the SQLite backend share (private to store_sqlite*.c).
 *
 * store_sqlite.c opens the connection and implements the method table; store_sqlite_rows.c the
 * row primitives and the SQL-only ops that store_rules.c dispatches to; store_sqlite_ckpt.c the
 * checkpointer. All of them run on the store thread (the checkpointer on its own).
 */
#ifndef PARLEY_STORE_SQLITE_INT_H
#define PARLEY_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdatomic.h>

#include "store/store.h"
#include "store/store_rules.h"
#include "store/store_sql.h"

#define SQ_BUSY_TIMEOUT_MS 5000 /* how long a write waits for another process' lock */

/* A read marker that only moves forward. */
#define SQ_READ_UPSERT_SQL                                                                         \
  "INSERT INTO read_markers(chat_id, user_id, seq, updated_at)"                                    \
  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(chat_id, user_id) DO UPDATE SET"                           \
  " seq = max(seq, excluded.seq), updated_at = excluded.updated_at"

/* X(name, sql). Prepared at open, in this order. */
#define SQ_STATEMENTS(X)                                                                           \
  X(BEGIN, "BEGIN IMMEDIATE")                                                                      \
  X(COMMIT, "COMMIT")                                                                              \
  X(ROLLBACK, "ROLLBACK")                                                                          \
  X(SAVEPOINT, "SAVEPOINT req")                                                                    \
  X(RELEASE, "RELEASE req")                                                                        \
  X(ROLLBACK_TO, "ROLLBACK TO req")                                                                \
  X(USER_INSERT, "INSERT INTO users(username, display_name, pwhash, created_at)"                   \
                 " VALUES (?1, ?2, ?3, ?4) RETURNING id")                                          \
  X(USER_BY_NAME, "SELECT id, username, display_name, created_at, pwhash, bot FROM users"               \
                  " WHERE username = ?1")                                                          \
  X(USER_BY_ID, "SELECT id, username, display_name, created_at, avatar, bot FROM users WHERE id = ?1")  \
  X(SESSION_INSERT, "INSERT INTO sessions(token_hash, user_id, created_at, expires_at)"            \
                    " VALUES (?1, ?2, ?3, ?4)")                                                    \
  X(SESSION_GET, "SELECT s.expires_at, u.id, u.username, u.display_name, u.created_at, u.avatar, u.bot"   \
                 " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1")      \
  X(SESSION_DELETE, "DELETE FROM sessions WHERE token_hash = ?1")                                  \
  X(SESSION_SWEEP, "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "    \
                   "WHERE expires_at <= ?1 LIMIT ?2)")                                             \
  X(CHAT_BY_SLUG, "SELECT " STORE_SQL_CHAT_COLS " FROM chats c LEFT JOIN participants p"           \
                  " ON p.chat_id = c.id AND p.user_id = ?2 WHERE c.slug = ?1")                     \
  X(SLUG_TAKEN, "SELECT 1 FROM chats WHERE slug = ?1")                                             \
  X(CHAT_INSERT, "INSERT INTO chats(slug, title, is_public, max_participants, owner_id,"           \
                 " created_at, last_activity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)")                \
  X(PARTICIPANT_INSERT, "INSERT INTO participants(chat_id, user_id, role, joined_at)"              \
                        " VALUES (?1, ?2, ?3, ?4)")                                                \
  X(CHAT_TOUCH, "UPDATE chats SET last_activity = max(last_activity, ?2) WHERE id = ?1")           \
  /* msg.send's seq ?3: a text entry, so also the chat's newest text (migration 17). The caller    \
   * read last_seq in this transaction; the guard makes a stale read change nothing. */            \
  X(CHAT_NEXT_SEQ, "UPDATE chats SET last_seq = ?3, last_text_seq = ?3,"                           \
                   " last_activity = max(last_activity, ?2) WHERE id = ?1 AND last_seq = ?3 - 1")  \
  /* A text entry with its running tally (migrations 15 and 17). */                                \
  X(MSG_INSERT, "INSERT INTO messages(chat_id, seq, author_id, body, client_msg_id, created_at,"   \
                " tally) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "                                         \
                STORE_SQL_TALLY_NEXT("?1", "?2", "'text'") ")")                                    \
  X(MSG_BY_CLIENT_ID,                                                                              \
    "SELECT " STORE_SQL_MSG_COLS " FROM messages m JOIN users u ON u.id = m.author_id"             \
    " WHERE m.chat_id = ?1 AND m.author_id = ?2 AND m.client_msg_id = ?3")                         \
  X(MSG_RANGE, "SELECT " STORE_SQL_MSG_COLS " FROM messages m JOIN users u ON u.id = m.author_id"  \
               " WHERE m.chat_id = ?1 AND m.seq > ?2 AND m.seq < ?3"                               \
               " ORDER BY m.seq DESC LIMIT ?4")                                                    \
  X(CHAT_LIST, "SELECT " STORE_SQL_CHAT_COLS ", coalesce(r.seq, 0), p.notify, " STORE_SQL_MSG_COLS \
               " FROM participants p JOIN chats c ON c.id = p.chat_id"                             \
               " LEFT JOIN read_markers r ON r.chat_id = p.chat_id AND r.user_id = p.user_id"      \
               " LEFT JOIN messages m ON m.chat_id = c.id AND m.seq = c.last_seq"                  \
               " LEFT JOIN users u ON u.id = m.author_id"                                          \
               " WHERE p.user_id = ?1 ORDER BY c.last_activity DESC, c.id DESC")                   \
  X(READ_UPSERT, SQ_READ_UPSERT_SQL " RETURNING seq")                                              \
  /* The author's own marker on msg.send, which needs no row back. */                              \
  X(READ_OWN, SQ_READ_UPSERT_SQL)                                                                  \
  /* ---- membership (issue 3) ---- */                                                             \
  X(USER_BY_USERNAME, "SELECT id, username, display_name, created_at, avatar, bot FROM users"                   \
                      " WHERE username = ?1")                                                      \
  X(PARTICIPANT_ROLE, "SELECT role FROM participants WHERE chat_id = ?1 AND user_id = ?2")         \
  X(PARTICIPANTS, "SELECT user_id, role, joined_at FROM participants WHERE chat_id = ?1")          \
  X(MEMBERS, "SELECT u.id, u.username, u.display_name, u.created_at, p.role, p.joined_at,"         \
             " coalesce(u.last_seen, 0), u.avatar, u.bot FROM participants p"                             \
             " JOIN users u ON u.id = p.user_id WHERE p.chat_id = ?1"                              \
             " ORDER BY p.joined_at, p.user_id")                                                   \
  X(PARTICIPANT_DELETE, "DELETE FROM participants WHERE chat_id = ?1 AND user_id = ?2")            \
  X(PARTICIPANT_SET_ROLE, "UPDATE participants SET role = ?3 WHERE chat_id = ?1 AND user_id = ?2") \
  X(CHAT_SET_OWNER, "UPDATE chats SET owner_id = ?2 WHERE id = ?1")                                \
  X(CHAT_ARCHIVE, "UPDATE chats SET archived = 1 WHERE id = ?1")                                   \
  /* A NULL parameter leaves its column as it is: one statement serves every update mask. */       \
  X(CHAT_UPDATE, "UPDATE chats SET title = coalesce(?2, title),"                                   \
                 " is_public = coalesce(?3, is_public),"                                           \
                 " max_participants = coalesce(?4, max_participants),"                             \
                 " invite_policy = coalesce(?5, invite_policy) WHERE id = ?1")                     \
  /* Prefix ranges lower(x) >= ?1 AND lower(x) < ?2 use the lower() indexes of migration 2 (one    \
   * range scan per index, OR-ed); a LIKE would scan the table. ?4 is the chat whose marks are     \
   * asked for, 0 for none (no chat has id 0). */                                                  \
  X(USERS_SEARCH, "SELECT u.id, u.username, u.display_name, u.created_at,"                         \
                  " EXISTS (SELECT 1 FROM participants p WHERE p.chat_id = ?4"                     \
                  "   AND p.user_id = u.id),"                                                      \
                  " EXISTS (SELECT 1 FROM invitations i WHERE i.chat_id = ?4 AND i.to_id = u.id"   \
                  "   AND i.status = 0 AND i.expires_at > ?5),"                                    \
                  " coalesce(u.last_seen, 0), u.avatar, u.bot FROM users u WHERE u.id <> ?3 AND"          \
                  " ((lower(u.username) >= ?1 AND lower(u.username) < ?2) OR"                      \
                  "  (lower(u.display_name) >= ?1 AND lower(u.display_name) < ?2))"                \
                  " ORDER BY lower(u.username) = ?1 DESC,"                                         \
                  "  (lower(u.username) >= ?1 AND lower(u.username) < ?2) DESC, u.username"        \
                  " LIMIT ?6")                                                                     \
  /* The word starts of users.search: user_words' range [?1, ?2), prefix hits excluded             \
   * (USERS_SEARCH returned them), each user once. */                                              \
  X(USERS_SEARCH_WORDS,                                                                            \
    "SELECT u.id, u.username, u.display_name, u.created_at,"                                       \
    " EXISTS (SELECT 1 FROM participants p WHERE p.chat_id = ?4"                                   \
    "   AND p.user_id = u.id),"                                                                    \
    " EXISTS (SELECT 1 FROM invitations i WHERE i.chat_id = ?4"                                    \
    "   AND i.to_id = u.id AND i.status = 0 AND i.expires_at > ?5),"                               \
    " coalesce(u.last_seen, 0), u.avatar, u.bot FROM users u WHERE u.id IN"                               \
    "  (SELECT w.user_id FROM user_words w WHERE w.word >= ?1 AND w.word < ?2)"                    \
    " AND u.id <> ?3"                                                                              \
    " AND NOT (lower(u.username) >= ?1 AND lower(u.username) < ?2)"                                \
    " AND NOT (lower(u.display_name) >= ?1 AND lower(u.display_name) < ?2)"                        \
    " ORDER BY u.username LIMIT ?6")                                                               \
  X(USER_WORD_INSERT, "INSERT OR IGNORE INTO user_words(word, user_id) VALUES (?1, ?2)")           \
  /* ---- invitations (issue 3); status is enum invite_status ---- */                              \
  X(INV_BY_ID, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.id = ?1")                 \
  X(INV_PENDING_FOR, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM                               \
                     " WHERE i.chat_id = ?1 AND i.to_id = ?2 AND i.status = 0")                    \
  X(INV_PENDING_OF_CHAT, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM                           \
                         " WHERE i.chat_id = ?1 AND i.status = 0 ORDER BY i.id")                   \
  X(INV_INSERT, "INSERT INTO invitations(chat_id, from_id, to_id, status, created_at,"             \
                " expires_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?4)")                     \
  X(INV_SET_STATUS, "UPDATE invitations SET status = ?2, updated_at = ?3"                          \
                    " WHERE id = ?1 AND status = 0")                                               \
  X(INV_INCOMING,                                                                                  \
    "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.to_id = ?1 AND i.status = 0"         \
    " AND i.expires_at > ?2 ORDER BY i.created_at DESC, i.id DESC LIMIT ?3")                       \
  /* Incoming (to the caller), then outgoing: pending invitations of the chats the caller manages  \
   * (owner, admin) or that the caller sent while still a participant. */                          \
  X(INV_LIST, "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.id IN ("                   \
              "  SELECT id FROM invitations WHERE to_id = ?1 AND status = 0 AND expires_at > ?2"   \
              "  UNION ALL"                                                                        \
              "  SELECT j.id FROM participants p JOIN invitations j"                               \
              "    ON j.chat_id = p.chat_id AND j.status = 0"                                      \
              "  WHERE p.user_id = ?1 AND j.expires_at > ?2"                                       \
              "    AND (p.role IN ('owner', 'admin') OR j.from_id = ?1))"                          \
              " ORDER BY i.to_id = ?1 DESC, i.created_at DESC, i.id DESC LIMIT ?3")                \
  X(INV_DUE,                                                                                       \
    "SELECT " STORE_SQL_INV_COLS STORE_SQL_INV_FROM " WHERE i.status = 0 AND i.expires_at <= ?1"   \
    " ORDER BY i.expires_at, i.id LIMIT ?2")                                                       \
  X(REMOVAL_INSERT, "INSERT OR REPLACE INTO removals(chat_id, user_id, removed_by, removed_at)"    \
                    " VALUES (?1, ?2, ?3, ?4)")                                                    \
  X(REMOVAL_GET, "SELECT 1 FROM removals WHERE chat_id = ?1 AND user_id = ?2")                     \
  X(REMOVAL_DELETE, "DELETE FROM removals WHERE chat_id = ?1 AND user_id = ?2")                    \
  /* Everyone who shares a live chat with ?1: participants_by_user finds ?1's chats, the           \
   * participants primary key their members. */                                                    \
  X(AUDIENCE, "SELECT DISTINCT p2.user_id FROM participants p1"                                    \
              " JOIN chats c ON c.id = p1.chat_id AND c.archived = 0"                              \
              " JOIN participants p2 ON p2.chat_id = p1.chat_id"                                   \
              " WHERE p1.user_id = ?1 AND p2.user_id != ?1")                                       \
  X(USER_SEEN, "UPDATE users SET last_seen = max(coalesce(last_seen, 0), ?2) WHERE id = ?1")     \
  /* msg.search (store_sqlite_search.c). FTS5 hands out matches in key order (chat, seq) without \
   * ranking them; bm25 (`rank`) is computed only for the rows a query outputs, so each statement \
   * ranks a bounded candidate set: a user's chats (one more than the most worth searching one by  \
   * one), one chat's newest ?5 matches (its key range ?2..?3), or for a user in many chats the     \
   * first ?3 matches of the user's chats from the newest chat down, each set's best ?4 keys with  \
   * their rank; then each result of the merged page with its snippet. */                         \
  X(SEARCH_CHATS, "SELECT chat_id FROM participants WHERE user_id = ?1 LIMIT ?2")                  \
  X(SEARCH_KEYS, "SELECT k, r FROM (SELECT rowid AS k, rank AS r FROM messages_search"             \
                 " WHERE messages_search MATCH ?1 AND rowid BETWEEN ?2 AND ?3"                     \
                 " ORDER BY rowid DESC LIMIT ?5) ORDER BY r, k DESC LIMIT ?4")                     \
  X(SEARCH_WIDE_KEYS, "SELECT k, r FROM (SELECT rowid AS k, rank AS r FROM messages_search"        \
                      " WHERE messages_search MATCH ?1"                                            \
                      " AND (rowid >> 32) IN (SELECT chat_id FROM participants WHERE user_id = ?2)" \
                      " ORDER BY rowid DESC LIMIT ?3) ORDER BY r, k DESC LIMIT ?4")                \
  X(SEARCH_HIT, "SELECT " STORE_SQL_MSG_COLS ", c.slug, c.title,"                                  \
                " snippet(messages_search, 0, char(2), char(3), '\xe2\x80\xa6', 24)"              \
                " FROM messages_search JOIN messages m ON m.chat_id = (?2 >> 32)"                  \
                "  AND m.seq = (?2 & 4294967295)"                                                  \
                " JOIN users u ON u.id = m.author_id JOIN chats c ON c.id = m.chat_id"             \
                " WHERE messages_search MATCH ?1 AND messages_search.rowid = ?2")                          \
  /* CROSS JOIN: search_pending outside. Left to the planner (no statistics), it scanned every  \
   * text message and probed the list: 15-30 ms per flush, growing with the table. ?1: the         \
   * first ?1 entries in key order (-1: all); the DELETE takes the same ones, in the same          \
   * transaction. */                                                                               \
  X(SEARCH_FLUSH, "INSERT INTO messages_search(rowid, body) SELECT " STORE_SQL_SEARCH_KEY("m.")    \
                  ", " STORE_SQL_SEARCH_BODY("m.body") " FROM (" SQ_PENDING_FIRST ") p"            \
                  " CROSS JOIN messages m ON m.chat_id = p.chat_id AND m.seq = p.seq"              \
                  " WHERE m.kind = 'text' AND m.stream_state IS NOT 'streaming'")                  \
  X(SEARCH_PENDING_CLEAR, "DELETE FROM search_pending WHERE (chat_id, seq) IN (" SQ_PENDING_FIRST  \
                          ")")                                                                     \
  SQ_LIVE_STATEMENTS(X)

/* Issue 18 (store_sqlite_live.c). READERS: ?2 = 0 for every participant. */
#define SQ_LIVE_STATEMENTS(X)                                                                      \
  X(READERS, "SELECT p.user_id, min(1000, max(0, "                                             \
             STORE_SQL_UNREAD_UPTO("p.chat_id", "coalesce(r.seq, 0)", "?1", "?4")              \
             ")), (SELECT count(*) FROM (SELECT 1 FROM message_mentions mm"                      \
             "  WHERE mm.chat_id = p.chat_id AND mm.user_id = p.user_id"                         \
             "  AND mm.seq > coalesce(r.seq, 0) AND mm.seq <= ?4 LIMIT 1000) x)"                 \
             " FROM participants p"                                                              \
             " LEFT JOIN read_markers r ON r.chat_id = p.chat_id AND r.user_id = p.user_id"        \
             " WHERE p.chat_id = ?1 AND (?2 = 0 OR p.user_id = ?2) AND (?3 IS NULL"               \
             "  OR p.user_id IN (SELECT value FROM json_each('[' || ?3 || ']')))")                 \
  X(NOTIFY_SET, "UPDATE participants SET notify = ?3 WHERE chat_id = ?1 AND user_id = ?2")         \
  X(NOTIFY_OF, "SELECT notify FROM participants WHERE chat_id = ?1 AND user_id = ?2")              \
  X(BROWSE, "SELECT " STORE_SQL_CHAT_COLS " FROM chats c LEFT JOIN participants p"                 \
            " ON p.chat_id = c.id AND p.user_id = ?1"                                              \
            " WHERE c.is_public = 1 AND c.archived = 0 AND (?2 = 0 OR c.last_activity < ?2"        \
            "  OR (c.last_activity = ?2 AND c.id < (SELECT id FROM chats"                          \
            "   WHERE slug = ?5 AND is_public = 1)))"                                              \
            " AND (?3 IS NULL OR lower(c.title) LIKE ?3 || '%' ESCAPE '\\'"                        \
            "  OR lower(c.title) LIKE '% ' || ?3 || '%' ESCAPE '\\')"                              \
            " ORDER BY c.last_activity DESC, c.id DESC LIMIT ?4")                                  \
  X(USER_SET_DISPLAY, "UPDATE users SET display_name = ?2 WHERE id = ?1")                          \
  X(USER_WORDS_DELETE, "DELETE FROM user_words WHERE user_id = ?1")                                \
  X(PASSWORD_SET, "UPDATE users SET pwhash = ?2 WHERE id = ?1")                                    \
  X(SESSIONS_END, "DELETE FROM sessions WHERE user_id = ?1 AND token_hash <> ?2"                   \
                  " RETURNING token_hash")                                                         \
  X(AVATAR_PUT, "INSERT OR IGNORE INTO avatars(name, data, created_at) VALUES (?1, ?2, ?3)")       \
  X(AVATAR_OF, "SELECT coalesce(avatar, '') FROM users WHERE id = ?1")                             \
  X(USER_SET_AVATAR, "UPDATE users SET avatar = ?2 WHERE id = ?1")                                 \
  X(AVATAR_GC, "DELETE FROM avatars WHERE name = ?1"                                               \
               " AND NOT EXISTS (SELECT 1 FROM users WHERE avatar = ?1)")                          \
  X(AVATAR_GET, "SELECT data FROM avatars WHERE name = ?1")

enum sq_stmt {
#define SQ__ENUM(name, sql) SQ_##name,
  SQ_STATEMENTS(SQ__ENUM)
#undef SQ__ENUM
      SQ__COUNT
};

#define SQ_CACHE_MAX 64 /* generic statements (store_prims.sql) kept prepared, by text address */
struct sq {
  sqlite3 *db;
  sqlite3_stmt *st[SQ__COUNT];
  struct {
    const char *text;
    sqlite3_stmt *st;
  } cache[SQ_CACHE_MAX];
  int n_cache;
  struct sq_ckpt *ckpt; /* NULL for an in-memory database */
  uint64_t search_flushed_ns; /* last sq__search_flush() (clock_mono_ns) */
  int search_dirty;           /* search_pending may hold entries (a commit since the flush) */
  int search_more;            /* the last flush took a whole SQ_SEARCH_FLUSH_ROWS: more wait */
  int search_merge;           /* FTS5 segments may wait for a merge (a flush wrote one since) */
  /* The flushes and merge steps, for /metrics (written here, read by store_get_stats). */
  _Atomic uint64_t search_flushes, search_flush_ns, search_flush_max_ns;
  _Atomic uint64_t search_merges, search_merge_ns;
};

/* The SQL of each statement, for error messages (store_sqlite.c). */
extern const char *const sq_sql[SQ__COUNT];
/* The primitives of store_rules.c (store_sqlite_rows.c). */
extern const struct store_prims sq_prims;

/* store_prims.sql (store_sqlite_ops.c). */
int sq__sql(void *arg, const char *text, const struct store_arg *args, int n,
            struct store_res *out);

/* Maps an SQLite result code to the error table (store_sqlite.c). */
int sq__err(struct sq *be, int rc, const char *what);
/* Steps statement `id` once and resets it: for statements that return no row. */
int sq__run(struct sq *be, enum sq_stmt id);

/* A fixed-size input array is valid only if it holds its NUL. */
#define SQ_TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))

/* The rows of store_sqlite_rows.c that store_sqlite_ops.c uses too. */
int sq__dup(char **dst, sqlite3_stmt *st, int col);
int sq__dup_str(char **dst, const char *s);
void sq__read_user(sqlite3_stmt *st, int col, struct store_user *u);
int sq__read_chat(sqlite3_stmt *st, struct store_chat *c);
int sq__read_msg(sqlite3_stmt *st, int col, struct store_msg *m);
int sq__chat_load(void *arg, const char *slug, int64_t user_id, struct store_chat *c);
int sq__chat_touch(void *arg, int64_t chat_id, int64_t now);
int sq__user_by_username(void *arg, struct store_req *req, const char *username,
                         struct store_user *u);
int sq__user_by_id(void *arg, int64_t id, struct store_user *u);
int sq__role_of(void *arg, int64_t chat_id, int64_t user_id, enum chat_role *role);
int sq__set_role(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role);
int sq__set_owner(void *arg, int64_t chat_id, int64_t owner_id);
int sq__participant_add(void *arg, int64_t chat_id, int64_t user_id, enum chat_role role,
                        int64_t now);
int sq__participants(void *arg, int64_t chat_id, struct acl_member **out, size_t *n);
int sq__invites_read(struct sq *be, struct store_req *req, enum sq_stmt id, size_t limit,
                     int *more);
int sq__invite_load(void *arg, int64_t id, struct store_invite *inv, int64_t *chat_id,
                    int *archived);
int sq__invite_set_status(void *arg, int64_t id, enum invite_status status, int64_t now);
int sq__slug_taken(void *arg, const char *slug, int *taken);
int sq__msgs_range(struct sq *be, struct store_req *req, int64_t chat_id, int64_t lo, int64_t hi,
                   int limit, int *more);
int sq__participant_delete(void *arg, int64_t chat_id, int64_t user_id);
int sq__removal_put(void *arg, int64_t chat_id, int64_t user_id, int64_t by, int64_t now);
int sq__removal_delete(void *arg, int64_t chat_id, int64_t user_id);
int sq__invite_pending_for(void *arg, int64_t chat_id, int64_t to_id, struct store_invite *inv,
                           int *found);
int sq__invite_insert(void *arg, struct store_req *req, int64_t chat_id, int64_t to_id,
                      struct store_invite *inv);
/* Issue 18 (store_sqlite_live.c): the primitives and ops of store_rules_live.c, and the user's
 * avatar column at `col` of a row. */
void sq__read_avatar(sqlite3_stmt *st, int col, struct store_user *u);
int sq__chat_readers(void *arg, struct store_req *req, int64_t chat_id, int64_t user_id,
                     const char *only, int64_t upto);
int sq__notify_set(void *arg, int64_t chat_id, int64_t user_id, int level);
int sq__notify_of(void *arg, int64_t chat_id, int64_t user_id, int *level);
int sq__chats_browse(void *arg, struct store_req *req, const char *lo, size_t len, int64_t before,
                     int limit);
int sq__user_set_display(void *arg, int64_t user_id, const char *display);
int sq__user_words_delete(void *arg, int64_t user_id);
int sq__avatar_put(void *arg, const char *name, const unsigned char *data, size_t len,
                   int64_t now);
int sq__user_set_avatar(void *arg, int64_t user_id, const char *name, char *old);
int sq__avatar_gc(void *arg, const char *name);
int sq__password_set(void *arg, struct store_req *req);
int sq__avatar_get(void *arg, struct store_req *req);
/* Indexes the first `rows` entries of search_pending (key order; -1: every one) for msg.search
 * and removes them, inside the open transaction, under a savepoint of its own: on failure
 * nothing changes and the entries stay pending (store_sqlite_search.c). Sets be->search_more
 * when it took `rows` of them. Returns 0 or an error of the table. */
int sq__search_flush(struct sq *be, int rows);
/* FTS5 writes one segment per flush, not per commit (store_sqlite.c: sq_idle, sq_commit). */
#define SQ_SEARCH_FLUSH_MS 200       /* pending entries indexed when the store is idle */
#define SQ_SEARCH_FLUSH_LATE_MS 1000 /* ... or by a commit, when it never is */
/* Most entries one flush outside msg.search indexes: every request that comes during a flush
 * waits for it. 640 at a time (200 ms of 3,200 sends/s) took 2.8 ms at the median and up to
 * 25 ms as the index grew; what is left goes in the next flushes, requests first. */
#define SQ_SEARCH_FLUSH_ROWS 128
/* One step of merging FTS5's segments (migration 19): about 16 pages written. That took
 * 0.5-6 ms at 3,200 sends/s; the steps follow each other while the store stays idle. */
#define SQ_SEARCH_MERGE_SQL "INSERT INTO messages_search(messages_search, rank) VALUES ('merge', 16)"
/* Runs one merge step inside the open transaction. Returns 1 if it merged something (another
 * step may have more to do), 0 if there was nothing to merge, or -1 on an error of the table;
 * be->search_merge stays 1 only when it returns 1. */
int sq__search_merge(struct sq *be);
#define SQ_PENDING_FIRST "SELECT chat_id, seq FROM search_pending ORDER BY chat_id, seq LIMIT ?1"

int sq__msg_search(void *arg, struct store_req *req, const struct search_query *q,
                   int64_t chat_id, int offset, int limit, int *timed_out);

#endif
