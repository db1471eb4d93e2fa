/* store_sql.h - SQL text both backends share (internal to src/store).
 *
 * The column lists that the backends' row readers (sq__read_chat, pg__read_chat, ...) take
 * apart by position, and the joins they come from: written once, so that the two readers and
 * the statements of both backends cannot drift apart. Statements themselves stay in each
 * backend, with their own placeholders and dialect.
 */
#ifndef PARLEY_STORE_SQL_H
#define PARLEY_STORE_SQL_H

/* Columns of a chat row (c) plus the caller's role (p.role). */
#define STORE_SQL_CHAT_COLS                                                                        \
  "c.id, c.slug, c.title, c.is_public, c.max_participants, c.owner_id, c.created_at,"              \
  " c.last_activity, c.last_seq, c.participant_count, p.role, c.invite_policy, c.archived,"        \
  " c.member_gen"
#define STORE_SQL_CHAT_NCOLS 14
/* Columns of an invitation (i) with its chat (c), inviter (f) and invitee (t): 16 columns.
 * STORE_SQL_INV_FROM is the join they come from. */
#define STORE_SQL_INV_COLS                                                                         \
  "i.id, i.status, i.created_at, i.expires_at, i.chat_id, c.slug, c.title, c.archived,"            \
  " f.id, f.username, f.display_name, f.created_at, t.id, t.username, t.display_name,"             \
  " t.created_at"
#define STORE_SQL_INV_FROM                                                                         \
  " FROM invitations i JOIN chats c ON c.id = i.chat_id JOIN users f ON f.id = i.from_id"          \
  " JOIN users t ON t.id = i.to_id"
/* Columns of a message (m) with its author (u): 9 columns. */
#define STORE_SQL_MSG_COLS                                                                         \
  "m.seq, m.chat_id, m.body, m.client_msg_id, m.created_at, u.id, u.username, u.display_name,"     \
  " u.created_at"

/* users.search's word separators: white space and common punctuation (names hold no control
 * characters, see core/text.h), ASCII so that folding and cutting agree in both dialects. The C
 * list for store_rules.c, and STORE_SQL_SPACED(x), the SQL expression x with each of them replaced
 * by a space, for the migration that fills user_words; the two lists must stay the same. */
#define STORE_WORD_SEPS " -_.,'()[]/&+\":;"
#define STORE_SQL_SPACED(x)                                                                        \
  "replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace("       \
  "replace(replace(replace(replace(" x ", '-', ' '), '_', ' '), '.', ' '), ',', ' '), '''', ' ')," \
  " '(', ' '), ')', ' '), '[', ' '), ']', ' '), '/', ' '), '&', ' '), '+', ' '), '\"', ' '),"      \
  " ':', ' '), ';', ' ')"

/* msg.search (migration 8). A message's key in SQLite's FTS5 index, which wants one integer per
 * row where messages has (chat_id, seq): seq stays far below 2^32 (a chat would need 4 billion
 * messages), chat ids below 2^31. */
#define STORE_SQL_SEARCH_KEY(t) "((" t "chat_id << 32) | " t "seq)"
/* The text that is indexed, in both dialects: the body without U+0002 and U+0003, the marks
 * that snippets put around matches, so a body cannot fake a highlight. SQLite's FTS5 'delete'
 * must be given exactly what was indexed, so every trigger uses this expression. */
#define STORE_SQL_SEARCH_BODY(b) "replace(replace(" b ", char(2), ''), char(3), '')"
/* PostgreSQL's document of a message: the expression of the GIN index messages_search. Queries
 * must spell it exactly so (the planner matches index expressions by their text); never change
 * it without a migration that rebuilds the index. 'simple' neither stems nor drops stop words, so
 * names and every language are found as written (folded to lower case). */
#define STORE_SQL_PG_SEARCH_DOC(b)                                                                 \
  "to_tsvector('simple'::regconfig, translate(" b ", E'\\x02\\x03', ''))"

/* The running tally (migrations 13 and 17) of a new entry at seq s of kind k in chat c (SQL
 * expressions): the number of text entries of the chat up to and including it, so one more than
 * the entry before it for a text entry and the same for any other kind. Every entry carries one,
 * which makes the tally at any seq a probe of the primary key: seq is gap-free and entries are
 * never removed, so the entry before s is the row at s - 1. Both dialects; msg.send's INSERT,
 * the rules' entry INSERT and the insert triggers all use it, so the paths that write an entry
 * cannot disagree on its tally. */
#define STORE_SQL_TALLY_NEXT(c, s, k)                                                              \
  "coalesce((SELECT t.tally FROM messages t WHERE t.chat_id = " c " AND t.seq < " s                \
  " ORDER BY t.seq DESC LIMIT 1), 0) + CASE WHEN " k " = 'text' THEN 1 ELSE 0 END"
/* The tally of chat c as of its newest entry that satisfies `cond` (" AND t.seq <= x", or ""
 * for the newest of all): the number of text entries up to there. */
#define STORE_SQL_TALLY_AT(c, cond)                                                                \
  "coalesce((SELECT t.tally FROM messages t WHERE t.chat_id = " c cond                             \
  " ORDER BY t.seq DESC LIMIT 1), 0)"

/* Unread text in chat c for a participant with read marker r (SQL expressions): the text
 * entries after r. Two probes of the primary key however long the backlog. A participant's own
 * messages are never among them: every path that writes a text entry moves its author's marker
 * to it in the same transaction (msg.send, stream.start), markers never move back, and migration
 * 17 moved older markers past their owners' messages. `lc` is c again, or a parameter holding
 * the same chat id: then the chat's newest tally is an uncorrelated subquery, read once per
 * statement instead of once per participant. */
#define STORE_SQL_UNREAD(c, r, lc)                                                                 \
  "(" STORE_SQL_TALLY_AT(lc, "") " - " STORE_SQL_TALLY_AT(c, " AND t.seq <= " r) ")"
/* The same counting only entries up to seq `hi` (an expression): counts as of a chat row read
 * before, which on PostgreSQL (READ COMMITTED) is an earlier snapshot than this statement's. */
#define STORE_SQL_UNREAD_UPTO(c, r, lc, hi)                                                        \
  "(" STORE_SQL_TALLY_AT(lc, " AND t.seq <= " hi) " - "                                            \
  STORE_SQL_TALLY_AT(c, " AND t.seq <= " r) ")"

#endif
