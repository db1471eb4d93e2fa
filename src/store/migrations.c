/* migrations.c - the schema of Parley as one ordered list of migrations, each with its SQLite and
 * its PostgreSQL text, and the code that applies them to either backend with the same
 * bookkeeping (a schema_version table: version, description, applied_at).
 *
 * Migration 1 holds what the first protocol needed: users, sessions, chats, participants (with role
 * and joined_at), messages and read markers. Migration 2 (issue 3) adds invitations, the chat
 * columns invite_policy and archived, users.last_seen and the user search indexes, as plain `ALTER
 * TABLE ... ADD COLUMN` / `CREATE` steps that never rewrite messages. Migration 3 adds removals.
 * Migration 4 adds two PostgreSQL functions, msg.send and the read marker in one round trip each
 * (SQLite's text is empty). Migration 5 adds chats.member_gen, the membership generation every
 * message carries (issue 8), and 6 returns it from the read marker function. Migration 7 adds
 * user_words, the word starts of display names that users.search looks up. Migration 8 adds the
 * full-text indexes of msg.search (FTS5 with its triggers; a GIN index). The two dialects
 * differ in types (BIGINT identities, BYTEA, SMALLINT flags), in the trigger syntax and in
 * collation; the tables, columns, constraints and index names are the same, so store_sqlite.c and
 * store_pg.c run the same queries in their own dialect.
 *
 * Times are Unix milliseconds in integer columns. Every query the backends run has an index; the
 * comments next to each SQLite index name the query it serves (the PostgreSQL ones mirror them).
 */
#include "store/migrations.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "store/store_sql.h"

/* The running tallies of migration 13 (text entries only; own_tally among the author's), as
 * migrations 13 and 15 wrote them: kept here as they were, because a new database still runs
 * every migration in order. Migration 17 replaced them by STORE_SQL_TALLY_NEXT. */
#define SQ_TALLY13_NEXT(c, s)                                                                      \
  "coalesce((SELECT t.tally FROM messages t WHERE t.chat_id = " c " AND t.kind = 'text'"           \
  " AND t.seq < " s " ORDER BY t.seq DESC LIMIT 1), 0) + 1"
#define SQ_OWN_TALLY13_NEXT(c, a, s)                                                               \
  "coalesce((SELECT o.own_tally FROM messages o WHERE o.chat_id = " c " AND o.author_id = " a      \
  " AND o.kind = 'text' AND o.seq < " s " ORDER BY o.seq DESC LIMIT 1), 0) + 1"
/* The running tallies of text entry NEW (migration 13), set after its INSERT: the body of the
 * messages_tally trigger in migrations 13 and 15. */
#define SQ_TALLY_UPDATE                                                                            \
  "  UPDATE messages SET tally = " SQ_TALLY13_NEXT("NEW.chat_id", "NEW.seq") ", own_tally = "      \
  SQ_OWN_TALLY13_NEXT("NEW.chat_id", "NEW.author_id", "NEW.seq")                                   \
  "  WHERE chat_id = NEW.chat_id AND seq = NEW.seq;"
/* The tally of entry NEW of any kind (migration 17), set after its INSERT when the INSERT left
 * it NULL (rows written outside the server). */
#define SQ_TALLY17_UPDATE                                                                          \
  "  UPDATE messages SET tally = " STORE_SQL_TALLY_NEXT("NEW.chat_id", "NEW.seq", "NEW.kind")      \
  "  WHERE chat_id = NEW.chat_id AND seq = NEW.seq;"

/* PostgreSQL's msg.send in one round trip (migration 4), as migration 5 wrote it (`create` is
 * "CREATE FUNCTION", the rest empty) and migration 18 replaced it: `set_text` adds to the
 * chat's UPDATE, tally_col and tally_val to the message's INSERT. A user's own messages are
 * never unread: the INSERT into read_markers moves the author's marker to the message. */
#define SQ_PG_MSG_APPEND(create, set_text, tally_col, tally_val)                                   \
  create " parley_msg_append(p_slug text, p_user bigint, p_body text, p_cmid text,"                \
  "  p_now bigint,"                                                                                \
  "  OUT o_id bigint, OUT o_slug text, OUT o_title text, OUT o_is_public smallint,"                \
  "  OUT o_max_participants integer, OUT o_owner_id bigint, OUT o_created_at bigint,"              \
  "  OUT o_last_activity bigint, OUT o_last_seq bigint, OUT o_participant_count integer,"          \
  "  OUT o_role text, OUT o_invite_policy smallint, OUT o_archived smallint,"                      \
  "  OUT o_member_gen bigint,"                                                                     \
  "  OUT o_seq bigint, OUT o_chat_id bigint, OUT o_body text, OUT o_client_msg_id text,"           \
  "  OUT o_msg_created_at bigint, OUT o_author_id bigint, OUT o_username text,"                    \
  "  OUT o_display_name text, OUT o_author_created_at bigint, OUT o_duplicate boolean)"            \
  " LANGUAGE plpgsql VOLATILE AS $$"                                                               \
  " BEGIN"                                                                                         \
  "  o_duplicate := false;"                                                                        \
  "  SELECT c.id INTO o_id FROM chats c WHERE c.slug = p_slug FOR NO KEY UPDATE;"                  \
  "  IF NOT FOUND THEN RETURN; END IF;"                                                            \
  "  SELECT c.slug, c.title, c.is_public, c.max_participants, c.owner_id, c.created_at,"           \
  "   c.last_activity, c.last_seq, c.participant_count, p.role, c.invite_policy, c.archived,"      \
  "   c.member_gen, u.id, u.username, u.display_name, u.created_at"                                \
  "   INTO o_slug, o_title, o_is_public, o_max_participants, o_owner_id, o_created_at,"            \
  "   o_last_activity, o_last_seq, o_participant_count, o_role, o_invite_policy, o_archived,"      \
  "   o_member_gen, o_author_id, o_username, o_display_name, o_author_created_at"                  \
  "   FROM chats c LEFT JOIN participants p ON p.chat_id = c.id AND p.user_id = p_user"            \
  "   LEFT JOIN users u ON u.id = p.user_id WHERE c.id = o_id;"                                    \
  "  IF o_role IS NULL OR o_archived <> 0 THEN RETURN; END IF;"                                    \
  "  IF p_cmid IS NOT NULL THEN"                                                                   \
  "   SELECT m.seq, m.body, m.created_at INTO o_seq, o_body, o_msg_created_at FROM messages m"     \
  "    WHERE m.chat_id = o_id AND m.author_id = p_user AND m.client_msg_id = p_cmid;"              \
  "   IF FOUND THEN"                                                                               \
  "    o_duplicate := true; o_chat_id := o_id; o_client_msg_id := p_cmid;"                         \
  "    RETURN;"                                                                                    \
  "   END IF;"                                                                                     \
  "  END IF;"                                                                                      \
  "  UPDATE chats c SET last_seq = c.last_seq + 1," set_text                                       \
  "   last_activity = GREATEST(c.last_activity, p_now) WHERE c.id = o_id"                          \
  "   RETURNING c.last_seq, c.last_activity INTO o_seq, o_last_activity;"                          \
  "  INSERT INTO messages(chat_id, seq, author_id, body, client_msg_id, created_at" tally_col ")"  \
  "   VALUES (o_id, o_seq, p_user, p_body, p_cmid, p_now" tally_val ");"                           \
  "  INSERT INTO read_markers AS r(chat_id, user_id, seq, updated_at)"                             \
  "   VALUES (o_id, p_user, o_seq, p_now) ON CONFLICT (chat_id, user_id) DO UPDATE"                \
  "   SET seq = GREATEST(r.seq, excluded.seq), updated_at = excluded.updated_at;"                  \
  "  o_last_seq := o_seq; o_chat_id := o_id; o_body := p_body; o_client_msg_id := p_cmid;"         \
  "  o_msg_created_at := p_now;"                                                                   \
  " END $$;"

/* Migration 17: every entry's tally, counted over the chat's entries in order; and every
 * author's read marker moved to their newest text in each chat, where it is not already past
 * it. Both dialects. */
#define SQ_TALLY17_ALL                                                                             \
  "SELECT chat_id AS c, seq AS s, sum(CASE WHEN kind = 'text' THEN 1 ELSE 0 END)"                  \
  " OVER (PARTITION BY chat_id ORDER BY seq) AS t FROM messages"
#define SQ_MARKERS17                                                                               \
  "INSERT INTO read_markers AS r(chat_id, user_id, seq, updated_at)"                               \
  " SELECT chat_id, author_id, max(seq), max(created_at) FROM messages WHERE kind = 'text'"        \
  " GROUP BY chat_id, author_id ON CONFLICT (chat_id, user_id) DO UPDATE"                          \
  " SET seq = excluded.seq WHERE excluded.seq > r.seq;"

/* Whether text entry OLD is still waiting in search_pending (migration 14), so not in FTS5. */
#define SQ_PENDING_OLD "SELECT 1 FROM search_pending WHERE chat_id = OLD.chat_id AND seq = OLD.seq"

const struct store__migration store__migrations[] = {
    {1, "users, sessions, chats, participants, messages, read markers",
     /* Usernames are compared byte for byte: the auth layer case-folds before it asks, so the
      * UNIQUE index is the one that decides a signup race. */
     "CREATE TABLE users ("
     "  id INTEGER PRIMARY KEY,"
     "  username TEXT NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 32),"
     "  display_name TEXT NOT NULL,"
     "  pwhash TEXT NOT NULL,"
     "  created_at INTEGER NOT NULL"
     ");"
     /* Only a hash of the token is stored, so a leaked database does not hand out sessions. The
      * hash is the primary key: session lookup is the hottest read of the HTTP side. */
     "CREATE TABLE sessions ("
     "  token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL"
     ") WITHOUT ROWID;"
     /* Cascading deletes of a user's sessions (and a future 'log out everywhere'). */
     "CREATE INDEX sessions_by_user ON sessions(user_id);"
     /* last_seq is the per-chat sequence counter: appending a message increments it in the same
      * transaction as the insert, which is what makes seq gap-free. participant_count is kept by
      * the triggers below so that the cap check and chat.list never count rows. */
     "CREATE TABLE chats ("
     "  id INTEGER PRIMARY KEY,"
     "  slug TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 64),"
     "  title TEXT NOT NULL,"
     "  is_public INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),"
     "  max_participants INTEGER NOT NULL DEFAULT 0 CHECK (max_participants >= 0),"
     "  owner_id INTEGER NOT NULL REFERENCES users(id),"
     "  created_at INTEGER NOT NULL,"
     "  last_activity INTEGER NOT NULL,"
     "  last_seq INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),"
     "  participant_count INTEGER NOT NULL DEFAULT 0"
     ");"
     /* Primary key (chat_id, user_id) answers 'is this user in this chat, with which role'. */
     "CREATE TABLE participants ("
     "  chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),"
     "  joined_at INTEGER NOT NULL,"
     "  PRIMARY KEY (chat_id, user_id)"
     ") WITHOUT ROWID;"
     /* chat.list: the chats of one user. */
     "CREATE INDEX participants_by_user ON participants(user_id, chat_id);"
     "CREATE TRIGGER participants_count_insert AFTER INSERT ON participants BEGIN"
     "  UPDATE chats SET participant_count = participant_count + 1 WHERE id = NEW.chat_id;"
     "END;"
     "CREATE TRIGGER participants_count_delete AFTER DELETE ON participants BEGIN"
     "  UPDATE chats SET participant_count = participant_count - 1 WHERE id = OLD.chat_id;"
     "END;"
     /* Clustered by (chat_id, seq): history pages, resume-since and the last message of a chat
      * are range reads over adjacent rows. Most chat messages are far smaller than a page, which
      * is where WITHOUT ROWID pays off; long bodies simply use overflow pages. client_msg_id is
      * NULL when the client gave none, so the partial UNIQUE index only constrains real ids. */
     "CREATE TABLE messages ("
     "  chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  seq INTEGER NOT NULL CHECK (seq > 0),"
     "  author_id INTEGER NOT NULL REFERENCES users(id),"
     "  body TEXT NOT NULL,"
     "  client_msg_id TEXT CHECK (client_msg_id IS NULL OR length(client_msg_id) BETWEEN 1 AND 64),"
     "  created_at INTEGER NOT NULL,"
     "  PRIMARY KEY (chat_id, seq)"
     ") WITHOUT ROWID;"
     /* Idempotent msg.send: one row per (chat, author, clientMsgId), and the lookup of the
      * original on a retry. */
     "CREATE UNIQUE INDEX messages_by_client_id ON messages(chat_id, author_id, client_msg_id)"
     "  WHERE client_msg_id IS NOT NULL;"
     /* One marker per (chat, user); unread = chats.last_seq - seq because seq is gap-free. */
     "CREATE TABLE read_markers ("
     "  chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  seq INTEGER NOT NULL CHECK (seq >= 0),"
     "  updated_at INTEGER NOT NULL,"
     "  PRIMARY KEY (chat_id, user_id)"
     ") WITHOUT ROWID;",
     /* PostgreSQL: the same tables. Integers that SQLite types loosely are BIGINT here (ids and
      * Unix ms), flags SMALLINT, so both backends read the same values from the same columns.
      * participant_count is kept by one trigger function; its UPDATE takes the chat's row lock,
      * which every membership change holds anyway (store_pg.c locks the chat first). */
     "CREATE TABLE users ("
     "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
     "  username TEXT NOT NULL UNIQUE CHECK (char_length(username) BETWEEN 1 AND 32),"
     "  display_name TEXT NOT NULL,"
     "  pwhash TEXT NOT NULL,"
     "  created_at BIGINT NOT NULL"
     ");"
     "CREATE TABLE sessions ("
     "  token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),"
     "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  created_at BIGINT NOT NULL,"
     "  expires_at BIGINT NOT NULL"
     ");"
     "CREATE INDEX sessions_by_user ON sessions(user_id);"
     "CREATE TABLE chats ("
     "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
     "  slug TEXT NOT NULL UNIQUE CHECK (char_length(slug) BETWEEN 1 AND 64),"
     "  title TEXT NOT NULL,"
     "  is_public SMALLINT NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),"
     "  max_participants INTEGER NOT NULL DEFAULT 0 CHECK (max_participants >= 0),"
     "  owner_id BIGINT NOT NULL REFERENCES users(id),"
     "  created_at BIGINT NOT NULL,"
     "  last_activity BIGINT NOT NULL,"
     "  last_seq BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0),"
     "  participant_count INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE TABLE participants ("
     "  chat_id BIGINT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),"
     "  joined_at BIGINT NOT NULL,"
     "  PRIMARY KEY (chat_id, user_id)"
     ");"
     "CREATE INDEX participants_by_user ON participants(user_id, chat_id);"
     "CREATE FUNCTION participants_count() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     "  IF TG_OP = 'INSERT' THEN"
     "   UPDATE chats SET participant_count = participant_count + 1 WHERE id = NEW.chat_id;"
     "  ELSE"
     "   UPDATE chats SET participant_count = participant_count - 1 WHERE id = OLD.chat_id;"
     "  END IF;"
     "  RETURN NULL;"
     " END $$;"
     "CREATE TRIGGER participants_count AFTER INSERT OR DELETE ON participants"
     "  FOR EACH ROW EXECUTE FUNCTION participants_count();"
     "CREATE TABLE messages ("
     "  chat_id BIGINT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  seq BIGINT NOT NULL CHECK (seq > 0),"
     "  author_id BIGINT NOT NULL REFERENCES users(id),"
     "  body TEXT NOT NULL,"
     "  client_msg_id TEXT"
     "    CHECK (client_msg_id IS NULL OR char_length(client_msg_id) BETWEEN 1 AND 64),"
     "  created_at BIGINT NOT NULL,"
     "  PRIMARY KEY (chat_id, seq)"
     ");"
     "CREATE UNIQUE INDEX messages_by_client_id ON messages(chat_id, author_id, client_msg_id)"
     "  WHERE client_msg_id IS NOT NULL;"
     "CREATE TABLE read_markers ("
     "  chat_id BIGINT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  seq BIGINT NOT NULL CHECK (seq >= 0),"
     "  updated_at BIGINT NOT NULL,"
     "  PRIMARY KEY (chat_id, user_id)"
     ");"},
    {2, "invitations, chat invite policy and archiving, users.last_seen, user search indexes",
     /* status is the enum invite_status of core/invite.h (0 pending ... 4 expired): a small
      * integer keeps the partial indexes below short and their WHERE clauses exact. A row is
      * never deleted, so both sides can always be told what became of an invitation. */
     "CREATE TABLE invitations ("
     "  id INTEGER PRIMARY KEY,"
     "  chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  from_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  to_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  status INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 4),"
     "  created_at INTEGER NOT NULL,"
     "  expires_at INTEGER NOT NULL CHECK (expires_at > created_at),"
     "  updated_at INTEGER NOT NULL"
     ");"
     /* One pending invitation per (chat, invitee): a second invite.create finds this one, and
      * the index is what decides if two inviters race. Settled rows are history and may repeat. */
     "CREATE UNIQUE INDEX invitations_pending_one ON invitations(chat_id, to_id)"
     "  WHERE status = 0;"
     /* chat.list and invite.list: the pending invitations of one invitee. */
     "CREATE INDEX invitations_by_invitee ON invitations(to_id, status);"
     /* invite.list (outgoing, per managed chat), the revocation when a chat is archived, and the
      * cascade from chats. */
     "CREATE INDEX invitations_by_chat ON invitations(chat_id, status);"
     /* The expiry sweep: only pending rows are in it, so it stays as small as the backlog. */
     "CREATE INDEX invitations_expiry ON invitations(expires_at) WHERE status = 0;"
     /* 1 = INVITE_POLICY_ADMINS, the default of acl.h; archived is set when the last
      * participant leaves (the chat and its messages are kept, nobody can enter it again). */
     "ALTER TABLE chats ADD COLUMN invite_policy INTEGER NOT NULL DEFAULT 1"
     "  CHECK (invite_policy IN (0, 1, 2));"
     "ALTER TABLE chats ADD COLUMN archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1));"
     /* Unix ms of the user's last connection ending (presence); NULL = never seen. */
     "ALTER TABLE users ADD COLUMN last_seen INTEGER;"
     /* users.search: prefix ranges over lower(...) (SQLite's lower() folds ASCII only, and the
      * backend folds the query the same way). Usernames are stored lower case by auth/, but the
      * store does not rely on it. */
     "CREATE INDEX users_by_lower_username ON users(lower(username));"
     "CREATE INDEX users_by_lower_display_name ON users(lower(display_name));",
     /* PostgreSQL: search compares bytes and folds ASCII only, as SQLite does, so the indexed
      * expressions are in the "C" collation whatever the database's locale. */
     "CREATE TABLE invitations ("
     "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
     "  chat_id BIGINT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  from_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  to_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  status SMALLINT NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 4),"
     "  created_at BIGINT NOT NULL,"
     "  expires_at BIGINT NOT NULL CHECK (expires_at > created_at),"
     "  updated_at BIGINT NOT NULL"
     ");"
     "CREATE UNIQUE INDEX invitations_pending_one ON invitations(chat_id, to_id)"
     "  WHERE status = 0;"
     "CREATE INDEX invitations_by_invitee ON invitations(to_id, status);"
     "CREATE INDEX invitations_by_chat ON invitations(chat_id, status);"
     "CREATE INDEX invitations_expiry ON invitations(expires_at) WHERE status = 0;"
     "ALTER TABLE chats ADD COLUMN invite_policy SMALLINT NOT NULL DEFAULT 1"
     "  CHECK (invite_policy IN (0, 1, 2));"
     "ALTER TABLE chats ADD COLUMN archived SMALLINT NOT NULL DEFAULT 0"
     "  CHECK (archived IN (0, 1));"
     "ALTER TABLE users ADD COLUMN last_seen BIGINT;"
     "CREATE INDEX users_by_lower_username ON users(lower(username COLLATE \"C\"));"
     "CREATE INDEX users_by_lower_display_name ON users(lower(display_name COLLATE \"C\"));"},
    {3, "removals: a removed user cannot rejoin a public chat by themselves",
     /* Kept until an invitation to the same chat is accepted: removal is a decision of the
      * chat's managers, and only they can undo it, by inviting the user again. The primary key
      * answers chat.join's question, "was this user removed from this chat". */
     "CREATE TABLE removals ("
     "  chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  removed_by INTEGER REFERENCES users(id) ON DELETE SET NULL,"
     "  removed_at INTEGER NOT NULL,"
     "  PRIMARY KEY (chat_id, user_id)"
     ") WITHOUT ROWID;",
     "CREATE TABLE removals ("
     "  chat_id BIGINT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  removed_by BIGINT REFERENCES users(id) ON DELETE SET NULL,"
     "  removed_at BIGINT NOT NULL,"
     "  PRIMARY KEY (chat_id, user_id)"
     ");"},
    {4, "PostgreSQL: msg.send and read markers as one server-side function each",
     /* SQLite runs in the process: a statement costs no round trip, so there is nothing to do.
      * The entry keeps the version numbers of both dialects in step. */
     "",
     /* One round trip per send instead of seven (issue 8). Both functions do what store_pg.c did
      * statement by statement: lock the chat's row (a statement of its own; a VOLATILE function
      * takes a fresh snapshot for each later statement, so what other nodes committed before the
      * lock was granted is seen), read the caller's role, and change anything only for a
      * participant of a chat that is not archived, which is exactly when acl_check() allows
      * ACL_MSG_SEND and ACL_CHAT_READ. The caller still runs acl_check() on the returned row.
      * One row back, in the order of store_pg.c's PG_CHAT_COLS (the chat after the change; all
      * NULL when there is no such chat), then for parley_msg_append the message with its author
      * as PG_MSG_COLS (NULL when nothing was stored) and whether it was a duplicate, for
      * parley_read_set the marker's seq. The values are those just read or written: no
      * statement reads them back. */
     "CREATE FUNCTION parley_msg_append(p_slug text, p_user bigint, p_body text, p_cmid text,"
     "  p_now bigint,"
     "  OUT o_id bigint, OUT o_slug text, OUT o_title text, OUT o_is_public smallint,"
     "  OUT o_max_participants integer, OUT o_owner_id bigint, OUT o_created_at bigint,"
     "  OUT o_last_activity bigint, OUT o_last_seq bigint, OUT o_participant_count integer,"
     "  OUT o_role text, OUT o_invite_policy smallint, OUT o_archived smallint,"
     "  OUT o_seq bigint, OUT o_chat_id bigint, OUT o_body text, OUT o_client_msg_id text,"
     "  OUT o_msg_created_at bigint, OUT o_author_id bigint, OUT o_username text,"
     "  OUT o_display_name text, OUT o_author_created_at bigint, OUT o_duplicate boolean)"
     " LANGUAGE plpgsql VOLATILE AS $$"
     " BEGIN"
     "  o_duplicate := false;"
     "  SELECT c.id INTO o_id FROM chats c WHERE c.slug = p_slug FOR NO KEY UPDATE;"
     "  IF NOT FOUND THEN RETURN; END IF;"
     "  SELECT c.slug, c.title, c.is_public, c.max_participants, c.owner_id, c.created_at,"
     "   c.last_activity, c.last_seq, c.participant_count, p.role, c.invite_policy, c.archived,"
     "   u.id, u.username, u.display_name, u.created_at"
     "   INTO o_slug, o_title, o_is_public, o_max_participants, o_owner_id, o_created_at,"
     "   o_last_activity, o_last_seq, o_participant_count, o_role, o_invite_policy, o_archived,"
     "   o_author_id, o_username, o_display_name, o_author_created_at"
     "   FROM chats c LEFT JOIN participants p ON p.chat_id = c.id AND p.user_id = p_user"
     "   LEFT JOIN users u ON u.id = p.user_id WHERE c.id = o_id;"
     "  IF o_role IS NULL OR o_archived <> 0 THEN RETURN; END IF;"
     "  IF p_cmid IS NOT NULL THEN"
     "   SELECT m.seq, m.body, m.created_at INTO o_seq, o_body, o_msg_created_at FROM messages m"
     "    WHERE m.chat_id = o_id AND m.author_id = p_user AND m.client_msg_id = p_cmid;"
     "   IF FOUND THEN"
     "    o_duplicate := true; o_chat_id := o_id; o_client_msg_id := p_cmid;"
     "    RETURN;"
     "   END IF;"
     "  END IF;"
     "  UPDATE chats c SET last_seq = c.last_seq + 1,"
     "   last_activity = GREATEST(c.last_activity, p_now) WHERE c.id = o_id"
     "   RETURNING c.last_seq, c.last_activity INTO o_seq, o_last_activity;"
     "  INSERT INTO messages(chat_id, seq, author_id, body, client_msg_id, created_at)"
     "   VALUES (o_id, o_seq, p_user, p_body, p_cmid, p_now);"
     /* A user's own messages are never unread. */
     "  INSERT INTO read_markers AS r(chat_id, user_id, seq, updated_at)"
     "   VALUES (o_id, p_user, o_seq, p_now) ON CONFLICT (chat_id, user_id) DO UPDATE"
     "   SET seq = GREATEST(r.seq, excluded.seq), updated_at = excluded.updated_at;"
     "  o_last_seq := o_seq; o_chat_id := o_id; o_body := p_body; o_client_msg_id := p_cmid;"
     "  o_msg_created_at := p_now;"
     " END $$;"
     "CREATE FUNCTION parley_read_set(p_slug text, p_user bigint, p_seq bigint, p_now bigint,"
     "  OUT o_id bigint, OUT o_slug text, OUT o_title text, OUT o_is_public smallint,"
     "  OUT o_max_participants integer, OUT o_owner_id bigint, OUT o_created_at bigint,"
     "  OUT o_last_activity bigint, OUT o_last_seq bigint, OUT o_participant_count integer,"
     "  OUT o_role text, OUT o_invite_policy smallint, OUT o_archived smallint,"
     "  OUT o_read_seq bigint)"
     " LANGUAGE plpgsql VOLATILE AS $$"
     " BEGIN"
     /* Locked like a send, so read markers and sends of one chat always lock in one order. */
     "  SELECT c.id INTO o_id FROM chats c WHERE c.slug = p_slug FOR NO KEY UPDATE;"
     "  IF NOT FOUND THEN RETURN; END IF;"
     "  SELECT c.slug, c.title, c.is_public, c.max_participants, c.owner_id, c.created_at,"
     "   c.last_activity, c.last_seq, c.participant_count, p.role, c.invite_policy, c.archived"
     "   INTO o_slug, o_title, o_is_public, o_max_participants, o_owner_id, o_created_at,"
     "   o_last_activity, o_last_seq, o_participant_count, o_role, o_invite_policy, o_archived"
     "   FROM chats c LEFT JOIN participants p ON p.chat_id = c.id AND p.user_id = p_user"
     "   WHERE c.id = o_id;"
     "  IF o_role IS NULL OR o_archived <> 0 THEN RETURN; END IF;"
     "  INSERT INTO read_markers AS r(chat_id, user_id, seq, updated_at)"
     "   VALUES (o_id, p_user, LEAST(p_seq, o_last_seq), p_now)"
     "   ON CONFLICT (chat_id, user_id) DO UPDATE"
     "   SET seq = GREATEST(r.seq, excluded.seq), updated_at = excluded.updated_at"
     "   RETURNING r.seq INTO o_read_seq;"
     " END $$;"},
    {5, "chats.member_gen: bumped whenever someone leaves or is removed",
     /* Every message carries the member_gen its append read under the chat's lock (store_msg
      * via store_chat). A node that sees a generation newer than the one it last checked a
      * subscription against asks the store again before it delivers (app_ws.c): a removal is
      * enforced even by a node that never heard of it over the bus (issue 8). Joining does not
      * bump it: nobody loses access by it. */
     "ALTER TABLE chats ADD COLUMN member_gen INTEGER NOT NULL DEFAULT 0;"
     "DROP TRIGGER participants_count_delete;"
     "CREATE TRIGGER participants_count_delete AFTER DELETE ON participants BEGIN"
     "  UPDATE chats SET participant_count = participant_count - 1, member_gen = member_gen + 1"
     "  WHERE id = OLD.chat_id;"
     "END;",
     /* The functions of migration 4 return member_gen after archived, as PG_CHAT_COLS now
      * lists it; otherwise they are unchanged. */
     "ALTER TABLE chats ADD COLUMN member_gen BIGINT NOT NULL DEFAULT 0;"
     "CREATE OR REPLACE FUNCTION participants_count() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     "  IF TG_OP = 'INSERT' THEN"
     "   UPDATE chats SET participant_count = participant_count + 1 WHERE id = NEW.chat_id;"
     "  ELSE"
     "   UPDATE chats SET participant_count = participant_count - 1,"
     "    member_gen = member_gen + 1 WHERE id = OLD.chat_id;"
     "  END IF;"
     "  RETURN NULL;"
     " END $$;"
     "DROP FUNCTION parley_msg_append(text, bigint, text, text, bigint);"
     SQ_PG_MSG_APPEND("CREATE FUNCTION", "", "", "")},
    {6, "PostgreSQL: parley_read_set returns member_gen too",
     "", /* SQLite: nothing (see migration 4) */
     /* A migration of its own only because one string literal must stay under 4095 bytes. */
     "DROP FUNCTION parley_read_set(text, bigint, bigint, bigint);"
     "CREATE FUNCTION parley_read_set(p_slug text, p_user bigint, p_seq bigint, p_now bigint,"
     "  OUT o_id bigint, OUT o_slug text, OUT o_title text, OUT o_is_public smallint,"
     "  OUT o_max_participants integer, OUT o_owner_id bigint, OUT o_created_at bigint,"
     "  OUT o_last_activity bigint, OUT o_last_seq bigint, OUT o_participant_count integer,"
     "  OUT o_role text, OUT o_invite_policy smallint, OUT o_archived smallint,"
     "  OUT o_member_gen bigint,"
     "  OUT o_read_seq bigint)"
     " LANGUAGE plpgsql VOLATILE AS $$"
     " BEGIN"
     /* Locked like a send, so read markers and sends of one chat always lock in one order. */
     "  SELECT c.id INTO o_id FROM chats c WHERE c.slug = p_slug FOR NO KEY UPDATE;"
     "  IF NOT FOUND THEN RETURN; END IF;"
     "  SELECT c.slug, c.title, c.is_public, c.max_participants, c.owner_id, c.created_at,"
     "   c.last_activity, c.last_seq, c.participant_count, p.role, c.invite_policy, c.archived,"
     "   c.member_gen"
     "   INTO o_slug, o_title, o_is_public, o_max_participants, o_owner_id, o_created_at,"
     "   o_last_activity, o_last_seq, o_participant_count, o_role, o_invite_policy, o_archived,"
     "   o_member_gen"
     "   FROM chats c LEFT JOIN participants p ON p.chat_id = c.id AND p.user_id = p_user"
     "   WHERE c.id = o_id;"
     "  IF o_role IS NULL OR o_archived <> 0 THEN RETURN; END IF;"
     "  INSERT INTO read_markers AS r(chat_id, user_id, seq, updated_at)"
     "   VALUES (o_id, p_user, LEAST(p_seq, o_last_seq), p_now)"
     "   ON CONFLICT (chat_id, user_id) DO UPDATE"
     "   SET seq = GREATEST(r.seq, excluded.seq), updated_at = excluded.updated_at"
     "   RETURNING r.seq INTO o_read_seq;"
     " END $$;"},
    {7, "users.search word starts: user_words",
     /* Each folded suffix of a display name that starts a word after the first (after a
      * separator, STORE_SQL_WORD_SEPS), so that "okaf" finds "Ben Okafor" by a range scan of the
      * primary key, as the lower() indexes serve prefixes. Written with the user
      * (store_rules.c); the recursive query fills it for users of earlier versions, cutting at
      * the same separators (they are ASCII, one character each, so positions in the name and in
      * its spaced copy agree). */
     "CREATE TABLE user_words ("
     "  word TEXT NOT NULL,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  PRIMARY KEY (word, user_id)"
     ") WITHOUT ROWID;"
     "CREATE INDEX user_words_by_user ON user_words(user_id);"
     "WITH RECURSIVE s(id, name, spaced, pos) AS ("
     "  SELECT id, lower(display_name), " STORE_SQL_SPACED("lower(display_name)") ", 0 FROM users"
     "  UNION ALL SELECT id, name, spaced, pos + instr(substr(spaced, pos + 1), ' ') FROM s"
     "  WHERE instr(substr(spaced, pos + 1), ' ') > 0)"
     " INSERT OR IGNORE INTO user_words(word, user_id) SELECT substr(name, pos + 1), id FROM s"
     " WHERE pos > 0 AND substr(spaced, pos + 1, 1) NOT IN ('', ' ');",
     "CREATE TABLE user_words ("
     "  word TEXT COLLATE \"C\" NOT NULL,"
     "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  PRIMARY KEY (word, user_id)"
     ");"
     "CREATE INDEX user_words_by_user ON user_words(user_id);"
     "INSERT INTO user_words(word, user_id)"
     " WITH RECURSIVE s(id, name, spaced, pos) AS ("
     "  SELECT id, lower(display_name COLLATE \"C\"),"
     "   " STORE_SQL_SPACED("lower(display_name COLLATE \"C\")") ", 0 FROM users"
     "  UNION ALL SELECT id, name, spaced, pos + strpos(substr(spaced, pos + 1), ' ') FROM s"
     "  WHERE strpos(substr(spaced, pos + 1), ' ') > 0)"
     " SELECT substr(name, pos + 1), id FROM s"
     " WHERE pos > 0 AND substr(spaced, pos + 1, 1) NOT IN ('', ' ')"
     " ON CONFLICT DO NOTHING;"},
    {8, "message model: entry kinds, folded state, reactions, mentions, DMs (issue 17)",
     /* Every change is an entry of the chat's sequence (kind, ref); a text message's current
      * state is kept in its own row (body, edited_at, deleted), so that any index over
      * messages(body) WHERE kind = 'text' follows edits and deletions by triggers. detail is a
      * reaction's emoji or a notice's title or role; flag a reaction's on; action and
      * subject_id a notice's. Plain ADD COLUMNs with defaults: no message is rewritten. */
     "ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';"
     "ALTER TABLE messages ADD COLUMN ref INTEGER;"
     "ALTER TABLE messages ADD COLUMN reply_to INTEGER;"
     "ALTER TABLE messages ADD COLUMN edited_at INTEGER;"
     "ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE messages ADD COLUMN detail TEXT;"
     "ALTER TABLE messages ADD COLUMN flag INTEGER;"
     "ALTER TABLE messages ADD COLUMN action TEXT;"
     "ALTER TABLE messages ADD COLUMN subject_id INTEGER;"
     /* chat.list's newest text message and unread count, and erasing a message's edits. */
     "CREATE INDEX messages_by_kind ON messages(chat_id, kind, seq);"
     "CREATE INDEX messages_by_ref ON messages(chat_id, ref) WHERE ref IS NOT NULL;"
     "CREATE TABLE message_mentions ("
     "  chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  seq INTEGER NOT NULL,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  PRIMARY KEY (chat_id, seq, user_id)"
     ") WITHOUT ROWID;"
     /* chat.list's unread mentions of a user per chat. */
     "CREATE INDEX message_mentions_by_user ON message_mentions(user_id, chat_id, seq);"
     /* The current reactions; `at` is the seq of the entry that added one (first-reaction
      * order). */
     "CREATE TABLE reactions ("
     "  chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  seq INTEGER NOT NULL,"
     "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  emoji TEXT NOT NULL,"
     "  at INTEGER NOT NULL,"
     "  PRIMARY KEY (chat_id, seq, emoji, user_id)"
     ") WITHOUT ROWID;"
     /* A DM is one chat per pair: dm_key is "<lower id>:<higher id>". */
     "ALTER TABLE chats ADD COLUMN kind TEXT NOT NULL DEFAULT 'group';"
     "ALTER TABLE chats ADD COLUMN dm_key TEXT;"
     "CREATE UNIQUE INDEX chats_by_dm_key ON chats(dm_key) WHERE dm_key IS NOT NULL;",
     "ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';"
     "ALTER TABLE messages ADD COLUMN ref BIGINT;"
     "ALTER TABLE messages ADD COLUMN reply_to BIGINT;"
     "ALTER TABLE messages ADD COLUMN edited_at BIGINT;"
     "ALTER TABLE messages ADD COLUMN deleted SMALLINT NOT NULL DEFAULT 0;"
     "ALTER TABLE messages ADD COLUMN detail TEXT;"
     "ALTER TABLE messages ADD COLUMN flag SMALLINT;"
     "ALTER TABLE messages ADD COLUMN action TEXT;"
     "ALTER TABLE messages ADD COLUMN subject_id BIGINT;"
     "CREATE INDEX messages_by_kind ON messages(chat_id, kind, seq);"
     "CREATE INDEX messages_by_ref ON messages(chat_id, ref) WHERE ref IS NOT NULL;"
     "CREATE TABLE message_mentions ("
     "  chat_id BIGINT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  seq BIGINT NOT NULL,"
     "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  PRIMARY KEY (chat_id, seq, user_id));"
     "CREATE INDEX message_mentions_by_user ON message_mentions(user_id, chat_id, seq);"
     "CREATE TABLE reactions ("
     "  chat_id BIGINT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  seq BIGINT NOT NULL,"
     "  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  emoji TEXT NOT NULL,"
     "  at BIGINT NOT NULL,"
     "  PRIMARY KEY (chat_id, seq, emoji, user_id));"
     "ALTER TABLE chats ADD COLUMN kind TEXT NOT NULL DEFAULT 'group';"
     "ALTER TABLE chats ADD COLUMN dm_key TEXT;"
     "CREATE UNIQUE INDEX chats_by_dm_key ON chats(dm_key) WHERE dm_key IS NOT NULL;"},
    {9, "issue 18: participants.notify, users.avatar, avatars, the public directory index",
     /* notify: enum store_notify, 0 = the default of the chat's kind. avatars: images by content
      * hash ("<sha256 hex>.<ext>"), shared by every user who has the same one. chats_public:
      * chat.browse, newest activity first. users_by_avatar: the unreferenced-avatar check. */
     "ALTER TABLE participants ADD COLUMN notify INTEGER NOT NULL DEFAULT 0"
     " CHECK (notify BETWEEN 0 AND 3);"
     "ALTER TABLE users ADD COLUMN avatar TEXT;"
     "CREATE INDEX users_by_avatar ON users(avatar) WHERE avatar IS NOT NULL;"
     "CREATE TABLE avatars ("
     "  name TEXT PRIMARY KEY,"
     "  data BLOB NOT NULL,"
     "  created_at INTEGER NOT NULL"
     ") WITHOUT ROWID;"
     "CREATE INDEX chats_public ON chats(last_activity, id) WHERE is_public = 1 AND archived = 0;",
     "ALTER TABLE participants ADD COLUMN notify SMALLINT NOT NULL DEFAULT 0"
     " CHECK (notify BETWEEN 0 AND 3);"
     "ALTER TABLE users ADD COLUMN avatar TEXT;"
     "CREATE INDEX users_by_avatar ON users(avatar) WHERE avatar IS NOT NULL;"
     "CREATE TABLE avatars ("
     "  name TEXT PRIMARY KEY,"
     "  data BYTEA NOT NULL,"
     "  created_at BIGINT NOT NULL"
     ");"
     "CREATE INDEX chats_public ON chats(last_activity, id) WHERE is_public = 1 AND archived = 0;"},
    {10, "msg.search: full-text indexes of message bodies (text entries)",
     /* FTS5 over messages as external content: the index holds only the tokens, the text stays
      * in messages. FTS5 keys rows by one integer and messages has (chat_id, seq), hence the
      * key STORE_SQL_SEARCH_KEY, the view that gives every message under it, and the index on
      * the key, through which snippet() reads the few bodies it shows. The triggers keep the
      * index in step with inserts, edits (the body updated in place) and deletes; 'rebuild'
      * indexes the messages already there. unicode61 folds case and diacritics. */
     "CREATE INDEX messages_by_search_key ON messages(" STORE_SQL_SEARCH_KEY("") ");"
     "CREATE VIEW messages_search_src AS SELECT " STORE_SQL_SEARCH_KEY("") " AS id, "
     STORE_SQL_SEARCH_BODY("body") " AS body FROM messages WHERE kind = 'text';"
     "CREATE VIRTUAL TABLE messages_search USING fts5(body, content='messages_search_src',"
     " content_rowid='id', tokenize='unicode61 remove_diacritics 2');"
     "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages WHEN NEW.kind = 'text' BEGIN"
     "  INSERT INTO messages_search(rowid, body) VALUES (" STORE_SQL_SEARCH_KEY("NEW.") ", "
     STORE_SQL_SEARCH_BODY("NEW.body") ");"
     "END;"
     "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages WHEN OLD.kind = 'text' BEGIN"
     "  INSERT INTO messages_search(messages_search, rowid, body) VALUES ('delete', "
     STORE_SQL_SEARCH_KEY("OLD.") ", " STORE_SQL_SEARCH_BODY("OLD.body") ");"
     "END;"
     "CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages WHEN OLD.kind = 'text'"
     " BEGIN"
     "  INSERT INTO messages_search(messages_search, rowid, body) VALUES ('delete', "
     STORE_SQL_SEARCH_KEY("OLD.") ", " STORE_SQL_SEARCH_BODY("OLD.body") ");"
     "  INSERT INTO messages_search(rowid, body) VALUES (" STORE_SQL_SEARCH_KEY("NEW.") ", "
     STORE_SQL_SEARCH_BODY("NEW.body") ");"
     "END;"
     "INSERT INTO messages_search(messages_search) VALUES ('rebuild');",
     /* PostgreSQL: a GIN index on the document expression; PostgreSQL keeps it in step with
      * every insert, update and delete itself, and building it indexes what is there. */
     "CREATE INDEX messages_search ON messages USING gin (" STORE_SQL_PG_SEARCH_DOC("body")
     ") WHERE kind = 'text';"},
    {11, "streamed messages: stream state and length, appended chunks, the open streams (issue 19)",
     /* A streamed text message keeps its state (NULL: not a stream; streaming, done, error,
      * interrupted), its body's length in bytes (SQLite's length() counts characters) and the
      * time of its last append (the idle sweep's clock). Its stream.end entry carries the final
      * state and length too. While it streams, each append is a row of stream_chunks (by byte
      * offset), so an append writes its own bytes, not the whole body again; the end writes the
      * body into the message once and drops the chunks. The FTS index leaves a message out
      * while it streams: the triggers index it when its stream ends, and the view that
      * 'rebuild' reads agrees. */
     "CREATE TABLE stream_chunks ("
     "  chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  seq INTEGER NOT NULL,"
     "  off INTEGER NOT NULL,"
     "  delta TEXT NOT NULL,"
     "  PRIMARY KEY (chat_id, seq, off)"
     ") WITHOUT ROWID;"
     "ALTER TABLE messages ADD COLUMN stream_state TEXT;"
     "ALTER TABLE messages ADD COLUMN stream_len INTEGER;"
     "ALTER TABLE messages ADD COLUMN stream_at INTEGER;"
     "CREATE INDEX messages_streaming ON messages(chat_id, seq) WHERE stream_state = 'streaming';"
     "CREATE INDEX messages_stream_idle ON messages(stream_at) WHERE stream_state = 'streaming';"
     "DROP TRIGGER messages_search_insert;"
     "DROP TRIGGER messages_search_delete;"
     "DROP TRIGGER messages_search_update;"
     "DROP VIEW messages_search_src;"
     "CREATE VIEW messages_search_src AS SELECT " STORE_SQL_SEARCH_KEY("") " AS id, "
     STORE_SQL_SEARCH_BODY("body") " AS body FROM messages WHERE kind = 'text'"
     " AND stream_state IS NOT 'streaming';"
     "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages WHEN NEW.kind = 'text'"
     " AND NEW.stream_state IS NOT 'streaming' BEGIN"
     "  INSERT INTO messages_search(rowid, body) VALUES (" STORE_SQL_SEARCH_KEY("NEW.") ", "
     STORE_SQL_SEARCH_BODY("NEW.body") ");"
     "END;"
     "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages WHEN OLD.kind = 'text'"
     " AND OLD.stream_state IS NOT 'streaming' BEGIN"
     "  INSERT INTO messages_search(messages_search, rowid, body) VALUES ('delete', "
     STORE_SQL_SEARCH_KEY("OLD.") ", " STORE_SQL_SEARCH_BODY("OLD.body") ");"
     "END;"
     "CREATE TRIGGER messages_search_update AFTER UPDATE OF body, stream_state ON messages"
     " WHEN OLD.kind = 'text' BEGIN"
     "  INSERT INTO messages_search(messages_search, rowid, body) SELECT 'delete', "
     STORE_SQL_SEARCH_KEY("OLD.") ", " STORE_SQL_SEARCH_BODY("OLD.body")
     " WHERE OLD.stream_state IS NOT 'streaming';"
     "  INSERT INTO messages_search(rowid, body) SELECT " STORE_SQL_SEARCH_KEY("NEW.") ", "
     STORE_SQL_SEARCH_BODY("NEW.body") " WHERE NEW.stream_state IS NOT 'streaming';"
     "END;",
     "ALTER TABLE messages ADD COLUMN stream_state TEXT;"
     "CREATE TABLE stream_chunks ("
     "  chat_id BIGINT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,"
     "  seq BIGINT NOT NULL,"
     "  off BIGINT NOT NULL,"
     "  delta TEXT NOT NULL,"
     "  PRIMARY KEY (chat_id, seq, off));"
     "ALTER TABLE messages ADD COLUMN stream_len BIGINT;"
     "ALTER TABLE messages ADD COLUMN stream_at BIGINT;"
     "CREATE INDEX messages_streaming ON messages(chat_id, seq) WHERE stream_state = 'streaming';"
     "CREATE INDEX messages_stream_idle ON messages(stream_at) WHERE stream_state = 'streaming';"
     /* The same for the GIN index: an append would compute the whole body's document again. */
     "DROP INDEX messages_search;"
     "CREATE INDEX messages_search ON messages USING gin (" STORE_SQL_PG_SEARCH_DOC("body")
     ") WHERE kind = 'text' AND stream_state IS DISTINCT FROM 'streaming';"},
    {12, "issue 19: bot accounts (users.bot, bots: owner, webhook url and secret)",
     /* users.bot marks an account that never logs in with a password; bots holds what only a
      * bot has. A deleted bot keeps its users row (its username stays taken) with deleted = 1
      * and no sessions. The webhook secret is kept as issued: it signs deliveries (HMAC), so it
      * cannot be hashed like a token. */
     "ALTER TABLE users ADD COLUMN bot INTEGER NOT NULL DEFAULT 0;"
     "CREATE TABLE bots ("
     "  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
     "  owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  webhook_url TEXT,"
     "  webhook_secret TEXT NOT NULL,"
     "  deleted INTEGER NOT NULL DEFAULT 0,"
     "  created_at INTEGER NOT NULL"
     ");"
     "CREATE INDEX bots_by_owner ON bots(owner_id, deleted);",
     "ALTER TABLE users ADD COLUMN bot SMALLINT NOT NULL DEFAULT 0;"
     "CREATE TABLE bots ("
     "  user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
     "  owner_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
     "  webhook_url TEXT,"
     "  webhook_secret TEXT NOT NULL,"
     "  deleted SMALLINT NOT NULL DEFAULT 0,"
     "  created_at BIGINT NOT NULL"
     ");"
     "CREATE INDEX bots_by_owner ON bots(owner_id, deleted);"},
    {13, "issue 15: running tallies of text entries, so unread counts cost no scan of the backlog",
     /* A text entry's tally is the number of text entries of its chat up to and including it,
      * own_tally the number of them by its author; NULL on other kinds. Unread text of a user
      * with read marker r is then (tally of the newest text) - (tally of the newest text at or
      * below r) - (their own texts above r, by own_tally): a few index probes however long the
      * backlog (chat.activity runs it for every participant on every message). Text entries are
      * never removed or change kind (a delete marks the row), so tallies never go stale. Filled
      * on insert by a trigger (every insert path: msg.send, replies, streams), and here for
      * existing rows. The probes are covering index searches; kind is a column of both indexes
      * (not only their condition) because SQLite's planner, without statistics, otherwise walks
      * the primary key backwards over the whole chat looking for a text entry of the author. */
     "ALTER TABLE messages ADD COLUMN tally INTEGER;"
     "ALTER TABLE messages ADD COLUMN own_tally INTEGER;"
     "UPDATE messages SET tally = w.t, own_tally = w.o FROM (SELECT chat_id AS c, seq AS s,"
     " row_number() OVER (PARTITION BY chat_id ORDER BY seq) AS t,"
     " row_number() OVER (PARTITION BY chat_id, author_id ORDER BY seq) AS o"
     " FROM messages WHERE kind = 'text') w WHERE messages.chat_id = w.c AND messages.seq = w.s;"
     "CREATE INDEX messages_by_author ON messages(chat_id, author_id, kind, seq, own_tally)"
     " WHERE kind = 'text';"
     "CREATE INDEX messages_tally ON messages(chat_id, kind, seq, tally) WHERE kind = 'text';"
     "CREATE TRIGGER messages_tally AFTER INSERT ON messages WHEN NEW.kind = 'text' BEGIN"
     SQ_TALLY_UPDATE
     "END;",
     "ALTER TABLE messages ADD COLUMN tally BIGINT;"
     "ALTER TABLE messages ADD COLUMN own_tally BIGINT;"
     "UPDATE messages SET tally = w.t, own_tally = w.o FROM (SELECT chat_id AS c, seq AS s,"
     " row_number() OVER (PARTITION BY chat_id ORDER BY seq) AS t,"
     " row_number() OVER (PARTITION BY chat_id, author_id ORDER BY seq) AS o"
     " FROM messages WHERE kind = 'text') w WHERE messages.chat_id = w.c AND messages.seq = w.s;"
     "CREATE INDEX messages_by_author ON messages(chat_id, author_id, kind, seq, own_tally)"
     " WHERE kind = 'text';"
     "CREATE INDEX messages_tally ON messages(chat_id, kind, seq, tally) WHERE kind = 'text';"
     /* The chat's row is locked by every insert path before it takes the next seq, so the
      * newest text below NEW.seq is settled. */
     "CREATE FUNCTION parley_msg_tally() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     "  NEW.tally := " SQ_TALLY13_NEXT("NEW.chat_id", "NEW.seq") ";"
     "  NEW.own_tally := " SQ_OWN_TALLY13_NEXT("NEW.chat_id", "NEW.author_id", "NEW.seq") ";"
     "  RETURN NEW;"
     " END $$;"
     "CREATE TRIGGER messages_tally BEFORE INSERT ON messages FOR EACH ROW"
     " WHEN (NEW.kind = 'text') EXECUTE PROCEDURE parley_msg_tally();"},
    {14, "issue 15: msg.search indexes new messages in batches (search_pending)",
     /* FTS5 writes a new segment for every transaction that adds to it: at 2,000 sends/s, a
      * thousand commits a second, that was a third of the store thread's CPU and of the WAL's
      * bytes per message. A new or edited text entry now only puts its (chat_id, seq) in
      * search_pending (not its search key: that is ambiguous past a seq of 2^32, which only rows
      * written outside the server have, and the index must still agree with what the triggers
      * delete; fuzz_store found it). The store indexes everything pending in one statement
      * (sq__search_flush) every
      * SQ_SEARCH_FLUSH_MS and before every msg.search, in the same transaction as the search,
      * so a search still finds every message committed before it. FTS5's 'delete' must be
      * given exactly what was indexed, so an entry still pending is never deleted from the
      * index: it leaves search_pending instead (a delete), or stays there and is indexed with
      * its new body (an edit). 'rebuild' indexes every message, pending ones included: empty
      * search_pending after one. */
     "CREATE TABLE search_pending (chat_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
     " PRIMARY KEY (chat_id, seq)) WITHOUT ROWID;"
     "DROP TRIGGER messages_search_insert;"
     "DROP TRIGGER messages_search_delete;"
     "DROP TRIGGER messages_search_update;"
     "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages WHEN NEW.kind = 'text'"
     " AND NEW.stream_state IS NOT 'streaming' BEGIN"
     "  INSERT OR IGNORE INTO search_pending(chat_id, seq) VALUES (NEW.chat_id, NEW.seq);"
     "END;"
     "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages WHEN OLD.kind = 'text'"
     " AND OLD.stream_state IS NOT 'streaming' BEGIN"
     "  INSERT INTO messages_search(messages_search, rowid, body) SELECT 'delete', "
     STORE_SQL_SEARCH_KEY("OLD.") ", " STORE_SQL_SEARCH_BODY("OLD.body")
     " WHERE NOT EXISTS (" SQ_PENDING_OLD ");"
     "  DELETE FROM search_pending WHERE chat_id = OLD.chat_id AND seq = OLD.seq;"
     "END;"
     "CREATE TRIGGER messages_search_update AFTER UPDATE OF body, stream_state ON messages"
     " WHEN OLD.kind = 'text' BEGIN"
     "  INSERT INTO messages_search(messages_search, rowid, body) SELECT 'delete', "
     STORE_SQL_SEARCH_KEY("OLD.") ", " STORE_SQL_SEARCH_BODY("OLD.body")
     " WHERE OLD.stream_state IS NOT 'streaming' AND NOT EXISTS (" SQ_PENDING_OLD ");"
     "  INSERT OR IGNORE INTO search_pending(chat_id, seq) SELECT NEW.chat_id, NEW.seq"
     " WHERE NEW.stream_state IS NOT 'streaming';"
     "END;",
     /* PostgreSQL's GIN index is maintained by the database server; nothing changes. */
     "SELECT 1"},
    {15, "issue 15: msg.send writes a text entry's running tallies in its INSERT",
     /* The trigger of migration 13 sets them with an UPDATE after the INSERT: the row written
      * twice, and its entries in messages_tally and messages_by_author removed and added again,
      * on every send. msg.send's INSERT (SQ_MSG_INSERT) now computes both with the same
      * subqueries; the trigger stays for every other insert path (replies, streams, notices)
      * and for rows written outside the server, and runs only when the INSERT left them NULL. */
     "DROP TRIGGER messages_tally;"
     "CREATE TRIGGER messages_tally AFTER INSERT ON messages WHEN NEW.kind = 'text'"
     " AND NEW.tally IS NULL BEGIN"
     SQ_TALLY_UPDATE
     "END;",
     /* PostgreSQL's trigger of migration 13 runs BEFORE INSERT and sets NEW: no second write. */
     "SELECT 1"},
    {16, "issue 15: one index fewer to write per text message (messages_by_kind)",
     /* Every query it served asks for text entries only (the newest text of a chat, the
      * running tallies), and messages_tally (chat_id, kind, seq, tally) WHERE kind = 'text'
      * answers each of them as well, covering. Every index is a B-tree page more to write, and
      * a WAL frame more, per send. */
     "DROP INDEX messages_by_kind;",
     "DROP INDEX messages_by_kind;"},
    {17, "issue 15: a tally on every entry, read by the primary key; chats.last_text_seq",
     /* Two index pages fewer to write per text message (messages_tally, messages_by_author),
      * out of about eight. Every entry now carries the tally of migration 13 (the number of
      * text entries up to and including it; other kinds repeat the one before them), so the
      * tally at a read marker is the row at the marker, found by the primary key
      * (STORE_SQL_TALLY_AT). own_tally is gone: a participant's own texts are never above
      * their marker, because msg.send and stream.start move the author's marker to the entry
      * in the same transaction; SQ_MARKERS17 does the same for rows written outside the
      * server. chat.list's newest text message, which the tally index found, is
      * chats.last_text_seq, kept by every path that takes a seq (CHAT_NEXT_SEQ,
      * MSG_SQL_NEXT_SEQ, and on PostgreSQL parley_msg_append: migration 18). */
     "ALTER TABLE chats ADD COLUMN last_text_seq INTEGER NOT NULL DEFAULT 0;"
     "UPDATE chats SET last_text_seq = coalesce((SELECT max(m.seq) FROM messages m"
     " WHERE m.chat_id = chats.id AND m.kind = 'text'), 0);"
     "UPDATE messages SET tally = w.t FROM (" SQ_TALLY17_ALL ") w"
     " WHERE messages.chat_id = w.c AND messages.seq = w.s AND messages.tally IS NOT w.t;"
     SQ_MARKERS17
     "DROP TRIGGER messages_tally;"
     "DROP INDEX messages_by_author;"
     "DROP INDEX messages_tally;"
     "ALTER TABLE messages DROP COLUMN own_tally;"
     "CREATE TRIGGER messages_tally AFTER INSERT ON messages WHEN NEW.tally IS NULL BEGIN"
     SQ_TALLY17_UPDATE
     "END;",
     "ALTER TABLE chats ADD COLUMN last_text_seq BIGINT NOT NULL DEFAULT 0;"
     "UPDATE chats c SET last_text_seq = m.s FROM (SELECT chat_id, max(seq) AS s FROM messages"
     " WHERE kind = 'text' GROUP BY chat_id) m WHERE m.chat_id = c.id;"
     "UPDATE messages SET tally = w.t FROM (" SQ_TALLY17_ALL ") w"
     " WHERE messages.chat_id = w.c AND messages.seq = w.s AND messages.tally IS DISTINCT FROM w.t;"
     SQ_MARKERS17
     "DROP TRIGGER messages_tally ON messages;"
     "DROP INDEX messages_by_author;"
     "DROP INDEX messages_tally;"
     "ALTER TABLE messages DROP COLUMN own_tally;"
     "CREATE OR REPLACE FUNCTION parley_msg_tally() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     "  NEW.tally := " STORE_SQL_TALLY_NEXT("NEW.chat_id", "NEW.seq", "NEW.kind") ";"
     "  RETURN NEW;"
     " END $$;"
     "CREATE TRIGGER messages_tally BEFORE INSERT ON messages FOR EACH ROW"
     " WHEN (NEW.tally IS NULL) EXECUTE PROCEDURE parley_msg_tally();"},
    {18, "issue 15: PostgreSQL's msg.send keeps chats.last_text_seq and writes the tally itself",
     "SELECT 1", /* SQLite: CHAT_NEXT_SEQ and MSG_INSERT (store_sqlite_int.h) */
     /* A migration of its own only because one string literal must stay under 4095 bytes. The
      * tally in the INSERT spares the row trigger. */
     SQ_PG_MSG_APPEND("CREATE OR REPLACE FUNCTION", " last_text_seq = c.last_seq + 1,",
                      ", tally", ", " STORE_SQL_TALLY_NEXT("o_id", "o_seq", "'text'"))},
    {19, "issue 15: msg.search's index merges its segments when the store is idle, in small steps",
     /* FTS5's automatic merges run inside whichever flush crosses their threshold, and grow with
      * the index's levels: every ~10 s at 3,200 sends/s a flush took 10-30 ms while every send
      * waited (bench/RESULTS.md). The store now merges in steps of 16 pages when it
      * has nothing else to do (sq__search_merge); FTS5's crisis merge (16 segments on a level)
      * still bounds the index under a load that never leaves it idle. A setting of the index,
      * kept in messages_search_config. */
     "INSERT INTO messages_search(messages_search, rank) VALUES ('automerge', 0);",
     /* PostgreSQL's GIN index is maintained by the database server; nothing changes. */
     "SELECT 1"},
};

const size_t store__migrations_count =
    sizeof(store__migrations) / sizeof(store__migrations[0]);

/* Maps the SQLite result of a schema step: a database we cannot write is an operational problem
 * (retry later), anything else means the schema and this binary disagree. */
static int migrate__err(sqlite3 *db, int rc, const char *what) {
  int primary = rc & 0xff;
  log_error("store: migration: %s: %s", what, sqlite3_errmsg(db));
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL ||
      primary == SQLITE_IOERR || primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN ||
      primary == SQLITE_NOMEM)
    return PARLEY_EUNAVAILABLE;
  return PARLEY_EINTERNAL;
}

static int migrate__current(sqlite3 *db, int *version) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st,
                              NULL);
  int err = 0;
  if (rc != SQLITE_OK) {
    err = migrate__err(db, rc, "read schema_version");
    goto cleanup;
  }
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    err = migrate__err(db, rc, "read schema_version");
    goto cleanup;
  }
  *version = sqlite3_column_int(st, 0);
cleanup:
  sqlite3_finalize(st);
  return err;
}

static int migrate__record(sqlite3 *db, const struct store__migration *m, long long now_ms) {
  sqlite3_stmt *st = NULL;
  int err = 0;
  int rc = sqlite3_prepare_v2(
      db, "INSERT INTO schema_version(version, description, applied_at) VALUES (?, ?, ?)", -1, &st,
      NULL);
  if (rc != SQLITE_OK) {
    err = migrate__err(db, rc, "record version");
    goto cleanup;
  }
  sqlite3_bind_int(st, 1, m->version);
  sqlite3_bind_text(st, 2, m->description, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now_ms);
  rc = sqlite3_step(st);
  if (rc != SQLITE_DONE)
    err = migrate__err(db, rc, "record version");
cleanup:
  sqlite3_finalize(st);
  return err;
}

int store__sqlite_migrate(sqlite3 *db, long long now_ms, int *version) {
  int err = 0;
  int current = 0;
  int in_tx = 0;
  char what[96];
  const int newest = store__migrations[store__migrations_count - 1].version;
  int rc;

  /* IMMEDIATE takes the write lock first, so two processes opening the same fresh file cannot
   * both decide to apply migration 1. */
  rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    err = migrate__err(db, rc, "begin");
    goto cleanup;
  }
  in_tx = 1;
  rc = sqlite3_exec(db,
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    "  version INTEGER PRIMARY KEY,"
                    "  description TEXT NOT NULL,"
                    "  applied_at INTEGER NOT NULL)",
                    NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    err = migrate__err(db, rc, "create schema_version");
    goto cleanup;
  }
  err = migrate__current(db, &current);
  if (err)
    goto cleanup;
  if (current > newest) {
    /* An older binary must not write into a schema it does not know. */
    log_error("store: database schema version %d is newer than this binary (%d)", current, newest);
    err = PARLEY_EINTERNAL;
    goto cleanup;
  }
  for (size_t i = 0; i < store__migrations_count; i++) {
    const struct store__migration *m = &store__migrations[i];
    assert(i == 0 || m->version == store__migrations[i - 1].version + 1);
    if (m->version <= current)
      continue;
    rc = sqlite3_exec(db, m->sqlite, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      snprintf(what, sizeof what, "apply %d (%s)", m->version, m->description);
      err = migrate__err(db, rc, what);
      goto cleanup;
    }
    err = migrate__record(db, m, now_ms);
    if (err)
      goto cleanup;
    log_info("store: applied schema migration %d: %s", m->version, m->description);
    current = m->version;
  }
  rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    err = migrate__err(db, rc, "commit");
    goto cleanup;
  }
  in_tx = 0;
  if (version)
    *version = current;
cleanup:
  if (in_tx && !sqlite3_get_autocommit(db))
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return err;
}


/* ---- PostgreSQL ---- */

/* Every node takes this transaction-scoped advisory lock before it looks at schema_version, so
 * several nodes starting at once against a fresh database apply each migration exactly once (the
 * others wait, then find the schema current). The key is arbitrary but fixed: "parley" in ASCII. */
#define PG_MIGRATE_LOCK "SELECT pg_advisory_xact_lock(7074913136601465)"

/* Maps a failed libpq result: a lost connection or a server that refuses work for now is an
 * operational problem (retry later), anything else means the schema and this binary disagree. */
static int pg_migrate__err(PGconn *conn, PGresult *res, const char *what) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  log_error("store: migration: %s: %s", what,
            res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  if (PQstatus(conn) != CONNECTION_OK || state == NULL || strncmp(state, "08", 2) == 0 ||
      strncmp(state, "53", 2) == 0 || strncmp(state, "57", 2) == 0 ||
      strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
      strcmp(state, "55P03") == 0 || strcmp(state, "25006") == 0)
    return PARLEY_EUNAVAILABLE;
  return PARLEY_EINTERNAL;
}

/* Runs `sql` (one or more statements, no parameters); returns 0 or a mapped error. */
static int pg_migrate__exec(PGconn *conn, const char *sql, const char *what) {
  PGresult *res = PQexec(conn, sql);
  int ok = res && (PQresultStatus(res) == PGRES_COMMAND_OK ||
                   PQresultStatus(res) == PGRES_TUPLES_OK);
  int err = ok ? 0 : pg_migrate__err(conn, res, what);
  PQclear(res);
  return err;
}

int store__pg_migrate(PGconn *conn, long long now_ms, int *version) {
  const int newest = store__migrations[store__migrations_count - 1].version;
  PGresult *res = NULL;
  char what[96];
  int current = 0;
  int in_tx = 0;
  int err;

  err = pg_migrate__exec(conn, "BEGIN", "begin");
  if (err)
    goto cleanup;
  in_tx = 1;
  err = pg_migrate__exec(conn, PG_MIGRATE_LOCK, "advisory lock");
  if (err)
    goto cleanup;
  err = pg_migrate__exec(conn,
                         "CREATE TABLE IF NOT EXISTS schema_version ("
                         "  version INTEGER PRIMARY KEY,"
                         "  description TEXT NOT NULL,"
                         "  applied_at BIGINT NOT NULL)",
                         "create schema_version");
  if (err)
    goto cleanup;
  res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_version");
  if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
    err = pg_migrate__err(conn, res, "read schema_version");
    goto cleanup;
  }
  current = atoi(PQgetvalue(res, 0, 0));
  PQclear(res);
  res = NULL;
  if (current > newest) {
    log_error("store: database schema version %d is newer than this binary (%d)", current, newest);
    err = PARLEY_EINTERNAL;
    goto cleanup;
  }
  for (size_t i = 0; i < store__migrations_count; i++) {
    const struct store__migration *m = &store__migrations[i];
    char v[16], at[24];
    const char *params[3];
    assert(i == 0 || m->version == store__migrations[i - 1].version + 1);
    if (m->version <= current)
      continue;
    snprintf(what, sizeof what, "apply %d (%s)", m->version, m->description);
    err = pg_migrate__exec(conn, m->postgres, what);
    if (err)
      goto cleanup;
    snprintf(v, sizeof v, "%d", m->version);
    snprintf(at, sizeof at, "%lld", now_ms);
    params[0] = v;
    params[1] = m->description;
    params[2] = at;
    res = PQexecParams(conn,
                       "INSERT INTO schema_version(version, description, applied_at)"
                       " VALUES ($1, $2, $3)",
                       3, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
      err = pg_migrate__err(conn, res, "record version");
      goto cleanup;
    }
    PQclear(res);
    res = NULL;
    log_info("store: applied schema migration %d: %s", m->version, m->description);
    current = m->version;
  }
  err = pg_migrate__exec(conn, "COMMIT", "commit");
  in_tx = 0;
  if (err)
    goto cleanup;
  if (version)
    *version = current;
cleanup:
  PQclear(res);
  if (in_tx && PQtransactionStatus(conn) != PQTRANS_IDLE)
    PQclear(PQexec(conn, "ROLLBACK"));
  return err;
}
