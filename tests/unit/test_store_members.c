/* test_store_members.c - membership and invitations in the store (issue 3), through the real
 * asynchronous API on a temporary SQLite file: chat.update, leave with succession and archiving,
 * remove and setRole matrices, user search, the invitation life cycle with its sweep, and what
 * these change in chat.list. Every time is a fixed fake `now` (NOW plus an offset), so expiry
 * and ordering are exact.
 *
 * On a temporary SQLite file, or on a fresh PostgreSQL schema when PARLEY_TEST_PG is set
 * (store_fixture.h); `make unit` runs it both ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "common/error.h"
#include "common/log.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store_fixture.h"

#define NOW INT64_C(1700000000000)
#define DAY INT64_C(86400000)

static int fx_setup_closed(void **state) {
  *state = fx_new("parley-members");
  return *state ? 0 : -1;
}

static int fx_setup(void **state) {
  struct fx *f;
  if (fx_setup_closed(state) != 0)
    return -1;
  f = *state;
  return store_open(&f->s, &f->loop, f->path, STORE_DURABILITY_NORMAL, 0);
}

static int fx_teardown(void **state) { return fx_free(*state); }

/* Runs one SQL query on a second connection and returns its first column (committed state: the
 * store's connection is idle between requests). */
static int64_t db_int(struct fx *f, const char *sql) {
  return fx_sql_int(f, sql);
}

/* ---- request builders ---- */

static struct store_req *new_req(enum store_op op, int64_t user_id, const char *slug) {
  struct store_req *r = store_req_new(op);
  assert_non_null(r);
  r->in.now = NOW;
  r->in.user_id = user_id;
  if (slug)
    snprintf(r->in.slug, sizeof r->in.slug, "%s", slug);
  return r;
}

static void set_target(struct store_req *r, const char *username) {
  snprintf(r->in.target, sizeof r->in.target, "%s", username);
}

static int64_t mk_user2(struct fx *f, const char *name, const char *display) {
  struct store_req *r = new_req(STORE_USER_CREATE, 0, NULL);
  int64_t id;
  snprintf(r->in.user.username, sizeof r->in.user.username, "%s", name);
  if (display)
    snprintf(r->in.user.display_name, sizeof r->in.user.display_name, "%s", display);
  r->in.pwhash = strdup("$argon2id$v=19$fake");
  assert_int_equal(run(f, r), 0);
  id = r->out.user.id;
  assert_true(id > 0);
  store_req_free(r);
  return id;
}

static int64_t mk_user(struct fx *f, const char *name) {
  return mk_user2(f, name, NULL);
}

static void mk_chat(struct fx *f, int64_t owner, const char *slug, int is_public, int max) {
  struct store_req *r = new_req(STORE_CHAT_CREATE, owner, slug);
  r->in.title = strdup(slug);
  r->in.is_public = is_public;
  r->in.max_participants = max;
  assert_int_equal(run(f, r), 0);
  assert_string_equal(r->out.chat.slug, slug);
  assert_int_equal(r->out.chat.invite_policy, INVITE_POLICY_ADMINS); /* the default */
  assert_int_equal(r->out.chat.archived, 0);
  store_req_free(r);
}

static int join_at(struct fx *f, int64_t user, const char *slug, int64_t now) {
  struct store_req *r = new_req(STORE_CHAT_JOIN, user, slug);
  int rc;
  r->in.now = now;
  rc = run(f, r);
  store_req_free(r);
  return rc;
}

static int join(struct fx *f, int64_t user, const char *slug) {
  return join_at(f, user, slug, NOW);
}

static int set_role(struct fx *f, int64_t actor, const char *slug, const char *target,
                    enum chat_role role) {
  struct store_req *r = new_req(STORE_CHAT_SET_ROLE, actor, slug);
  int rc;
  set_target(r, target);
  r->in.role = role;
  rc = run(f, r);
  store_req_free(r);
  return rc;
}

static int remove_user(struct fx *f, int64_t actor, const char *slug, const char *target) {
  struct store_req *r = new_req(STORE_CHAT_REMOVE, actor, slug);
  int rc;
  set_target(r, target);
  rc = run(f, r);
  store_req_free(r);
  return rc;
}

static int append(struct fx *f, int64_t user, const char *slug, const char *body) {
  struct store_req *r = new_req(STORE_MSG_APPEND, user, slug);
  int rc;
  r->in.body = strdup(body);
  rc = run(f, r);
  store_req_free(r);
  return rc;
}

/* The role of `user` in `slug` as the store reports it to that user (NONE if not in it). */
static enum chat_role role_in(struct fx *f, int64_t user, const char *slug) {
  struct store_req *r = new_req(STORE_CHAT_GET, user, slug);
  enum chat_role role = CHAT_ROLE_NONE;
  if (run(f, r) == 0)
    role = r->out.chat.my_role;
  store_req_free(r);
  return role;
}

static struct store_req *chat_get(struct fx *f, int64_t user, const char *slug) {
  struct store_req *r = new_req(STORE_CHAT_GET, user, slug);
  run(f, r);
  return r;
}

/* Creates an invitation; returns the finished request (caller frees). */
static struct store_req *invite_req(struct fx *f, int64_t from, const char *slug, const char *to,
                                    int64_t now, int64_t ttl_ms) {
  struct store_req *r = new_req(STORE_INVITE_CREATE, from, slug);
  set_target(r, to);
  r->in.now = now;
  r->in.expires_at = now + ttl_ms;
  run(f, r);
  return r;
}

/* Creates an invitation that must succeed as new; returns its id. */
static int64_t invite(struct fx *f, int64_t from, const char *slug, const char *to, int64_t now,
                      int64_t ttl_ms) {
  struct store_req *r = invite_req(f, from, slug, to, now, ttl_ms);
  int64_t id;
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.created, 1);
  assert_int_equal(r->out.invite.status, INVITE_PENDING);
  id = r->out.invite.id;
  assert_true(id > 0);
  store_req_free(r);
  return id;
}

static int invite_act(struct fx *f, enum store_op op, int64_t user, int64_t id, int64_t now) {
  struct store_req *r = new_req(op, user, NULL);
  int rc;
  r->in.invite_id = id;
  r->in.now = now;
  rc = run(f, r);
  store_req_free(r);
  return rc;
}

static int64_t invite_status_of(struct fx *f, int64_t id) {
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT status FROM invitations WHERE id = %lld", (long long)id);
  return db_int(f, sql);
}

static int has_id(const int64_t *ids, size_t n, int64_t id) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] == id)
      return 1;
  return 0;
}

/* ---- schema ---- */

static struct store_req *search(struct fx *f, int64_t user, const char *q, const char *slug,
                                int limit, int64_t now);
static void assert_hits(const struct store_req *r, const char *want);

/* A database created by a binary that knew only migration 1 is brought to version 2 with its data
 * intact and the new columns at their defaults. */
static void test_migration_2_upgrades_a_v1_database(void **state) {
  struct fx *f = *state;
  struct store_req *r;
  char *v1 = NULL;
  const char *schema = "CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
                       " description TEXT NOT NULL, applied_at BIGINT NOT NULL);"
                       "INSERT INTO schema_version VALUES (1, 'v1', 0);";
  const char *m1 = f->pg ? store__migrations[0].postgres : store__migrations[0].sqlite;

  v1 = malloc(strlen(schema) + strlen(m1) + 1);
  assert_non_null(v1);
  strcpy(v1, schema);
  strcat(v1, m1);
  assert_int_equal(fx_sql_exec(f, v1), 0);
  free(v1);
  assert_int_equal(fx_sql_exec(f, "INSERT INTO users VALUES (1, 'ana', 'Ana', 'h', 5);"
                                  "INSERT INTO users VALUES (2, 'ben', 'Ben  O''Kafor-SMITH (jr.)',"
                                  " 'h', 5);"
                                  "INSERT INTO chats(id, slug, title, owner_id, created_at,"
                                  " last_activity) VALUES (1, 'old', 'Old', 1, 5, 5);"
                                  "INSERT INTO participants VALUES (1, 1, 'owner', 5);"),
                   0);

  assert_int_equal(store_open(&f->s, &f->loop, f->path, STORE_DURABILITY_NORMAL, 0), 0);
  /* Every later migration runs too. */
  assert_int_equal(db_int(f, "SELECT max(version) FROM schema_version"),
                   (int)store__migrations_count);
  r = chat_get(f, 1, "old");
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.chat.invite_policy, INVITE_POLICY_ADMINS);
  assert_int_equal(r->out.chat.archived, 0);
  assert_int_equal(r->out.chat.participant_count, 1);
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_OWNER);
  store_req_free(r);
  assert_int_equal(db_int(f, "SELECT count(*) FROM users WHERE last_seen IS NULL"), 2);
  /* Migration 7 cut the names of earlier users into word starts as signup now does. */
  r = search(f, 1, "SMI", NULL, 0, NOW);
  assert_hits(r, "ben");
  store_req_free(r);
  if (f->pg) /* the rows above gave their ids explicitly: the identity has not moved */
    assert_int_equal(fx_sql_exec(f, "SELECT setval(pg_get_serial_sequence('users', 'id'), 2)"), 0);
  mk_user2(f, "ben2", "Ben  O'Kafor-SMITH (jr.)");
  assert_int_equal(db_int(f, "SELECT count(*) FROM user_words WHERE user_id = 2"), 4);
  assert_int_equal(db_int(f, "SELECT count(*) FROM user_words a JOIN user_words b"
                             " ON b.word = a.word AND b.user_id <> 2 WHERE a.user_id = 2"),
                   4);
  assert_int_equal(fx_index_count(f, "'invitations_pending_one', 'invitations_by_invitee',"
                                     " 'invitations_by_chat', 'invitations_expiry',"
                                     " 'users_by_lower_username', 'users_by_lower_display_name'"),
                   6);
}

/* Unread text of each participant of chat 1 (chat.activity's readers), ana's then ben's. */
static void readers_of(struct fx *f, int64_t *ana_unread, int64_t *ben_unread) {
  struct store_req *r = new_req(STORE_CHAT_ACTIVITY, 0, "old");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_member_ids, 2);
  for (size_t i = 0; i < r->out.n_member_ids; i++)
    *(r->out.member_ids[i] == 1 ? ana_unread : ben_unread) = r->out.member_reads[i];
  store_req_free(r);
}

/* Entry `seq` of chat 1 has tally `tally`, the chat's newest text is `last_text`, and ana and
 * ben have `ana` and `ben` unread. */
static void expect_counts(struct fx *f, int seq, int64_t tally, int64_t last_text, int64_t ana,
                          int64_t ben) {
  char sql[96];
  int64_t a = -1, b = -1;
  snprintf(sql, sizeof sql, "SELECT tally FROM messages WHERE chat_id = 1 AND seq = %d", seq);
  assert_int_equal(db_int(f, sql), tally);
  assert_int_equal(db_int(f, "SELECT last_text_seq FROM chats WHERE id = 1"), last_text);
  readers_of(f, &a, &b);
  assert_int_equal(a, ana);
  assert_int_equal(b, ben);
}

/* A database of migration 12 with messages gets the running tallies (migrations 13 and 17) on
 * every entry, markers past their owners' texts, chats.last_text_seq, and unread counts that
 * agree with counting; new entries of every path take the next tally. */
static void test_migration_13_tallies_existing_messages(void **state) {
  struct fx *f = *state;
  struct store_req *r;
  size_t len = 1;
  char *sql;
  for (int i = 0; i < 12; i++)
    len += strlen(f->pg ? store__migrations[i].postgres : store__migrations[i].sqlite) + 128;
  sql = calloc(1, len + 256);
  assert_non_null(sql);
  strcpy(sql, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
              " description TEXT NOT NULL, applied_at BIGINT NOT NULL);");
  for (int i = 0; i < 12; i++) {
    char row[96];
    assert_int_equal(store__migrations[i].version, i + 1);
    strcat(sql, f->pg ? store__migrations[i].postgres : store__migrations[i].sqlite);
    snprintf(row, sizeof row, ";INSERT INTO schema_version VALUES (%d, 'v', 0);", i + 1);
    strcat(sql, row);
  }
  assert_int_equal(fx_sql_exec(f, sql), 0);
  free(sql);
  /* 1 text by ana, 2 a notice, 3 text by ben, 4 text by ana, 5 text by ben; ben read up to 3,
   * ana has no marker: both have texts above their markers, which the server never writes
   * (a send moves the sender's marker) and migration 17 mends. */
  assert_int_equal(fx_sql_exec(f, "INSERT INTO users(id, username, display_name, pwhash,"
                                  " created_at) VALUES (1, 'ana', 'Ana', 'h', 5), (2, 'ben', 'Ben',"
                                  " 'h', 5);"
                                  "INSERT INTO chats(id, slug, title, owner_id, created_at,"
                                  " last_activity, last_seq) VALUES (1, 'old', 'Old', 1, 5, 5, 5);"
                                  "INSERT INTO participants(chat_id, user_id, role, joined_at)"
                                  " VALUES (1, 1, 'owner', 5), (1, 2, 'member', 5);"
                                  "INSERT INTO messages(chat_id, seq, author_id, body, created_at,"
                                  " kind) VALUES (1, 1, 1, 'a', 5, 'text'), (1, 2, 1, '', 5,"
                                  " 'notice'), (1, 3, 2, 'b', 5, 'text'), (1, 4, 1, 'c', 5, 'text'),"
                                  " (1, 5, 2, 'd', 5, 'text');"
                                  "INSERT INTO read_markers VALUES (1, 2, 3, 5);"),
                   0);

  assert_int_equal(store_open(&f->s, &f->loop, f->path, STORE_DURABILITY_NORMAL, 0), 0);
  assert_int_equal(db_int(f, "SELECT max(version) FROM schema_version"),
                   (int)store__migrations_count);
  /* Tallies 1, 1 (the notice repeats the text before it), 2, 3, 4. */
  assert_int_equal(db_int(f, "SELECT sum(tally * seq) FROM messages"), 1 + 2 + 6 + 12 + 20);
  assert_int_equal(db_int(f, "SELECT count(*) FROM messages WHERE tally IS NULL"), 0);
  assert_int_equal(db_int(f, "SELECT sum(seq * user_id) FROM read_markers"), 4 + 10);
  /* ana has 5, by ben: her marker is at 4, her own; ben's is at 5, his own. */
  expect_counts(f, 5, 4, 5, 1, 0);

  /* A new message takes the next tally, from msg.send's INSERT. */
  r = new_req(STORE_MSG_APPEND, 1, "old");
  r->in.body = strdup("e");
  r->in.now = NOW;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.msg.seq, 6);
  store_req_free(r);
  expect_counts(f, 6, 5, 6, 0, 1); /* her send moved her marker; ben has 6 */

  /* An entry of another kind (ben's reaction, through the rules' entry INSERT) repeats the tally
   * before it and is not the newest text; his marker stays where it was. */
  r = new_req(STORE_REACT, 2, "old");
  r->in.seq = 6;
  r->in.query = strdup("\xf0\x9f\x91\x8d");
  r->in.on = 1;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.msg.seq, 7);
  store_req_free(r);
  expect_counts(f, 7, 5, 6, 0, 1);

  /* An entry the chat row does not show yet, as on PostgreSQL one committed between the read of
   * the chat row and the count's own statement, written without a tally (the insert trigger
   * gives it one): the counts stop at the row's last_seq, which is the seq the chat.activity
   * event carries. */
  assert_int_equal(fx_sql_exec(f, "INSERT INTO messages(chat_id, seq, author_id, body, created_at,"
                                  " kind) VALUES (1, 8, 1, '@ben', 5, 'text');"
                                  "INSERT INTO message_mentions(chat_id, seq, user_id)"
                                  " VALUES (1, 8, 2);"),
                   0);
  assert_int_equal(db_int(f, "SELECT last_seq FROM chats WHERE id = 1"), 7);
  assert_int_equal(db_int(f, "SELECT tally FROM messages WHERE seq = 8"), 6);
  r = new_req(STORE_CHAT_ACTIVITY, 0, "old");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.chat.last_seq, 7);
  for (size_t i = 0; i < r->out.n_member_ids; i++) {
    if (r->out.member_ids[i] == 2) {
      assert_int_equal(r->out.member_reads[i], 1);    /* not 8 */
      assert_int_equal(r->out.member_mentions[i], 0); /* nor its mention */
    }
  }
  store_req_free(r);
}

/* The partial UNIQUE index allows one pending invitation per (chat, invitee), any number of
 * settled ones. */
static void test_one_pending_invitation_per_invitee(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob");
  char sql[256];
  mk_chat(f, ana, "team", 0, 0);
  invite(f, ana, "team", "bob", NOW, DAY);

  snprintf(sql, sizeof sql,
           "INSERT INTO invitations(chat_id, from_id, to_id, status, created_at, expires_at,"
           " updated_at) VALUES (1, %lld, %lld, %%d, 1, 2, 1)",
           (long long)ana, (long long)bob);
  {
    char one[300];
    snprintf(one, sizeof one, sql, 0);
    assert_int_equal(fx_sql_exec(f, one), 1); /* a constraint violation */
    snprintf(one, sizeof one, sql, 2);
    assert_int_equal(fx_sql_exec(f, one), 0);
    assert_int_equal(fx_sql_exec(f, one), 0);
  }
}

/* ---- chat.update ---- */

static void test_chat_update(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy"),
          dan = mk_user(f, "dan"), eve = mk_user(f, "eve"), out = mk_user(f, "out");
  struct store_req *r;

  mk_chat(f, ana, "room", 1, 0);
  assert_int_equal(join_at(f, bob, "room", NOW + 1), 0);
  assert_int_equal(join_at(f, cy, "room", NOW + 2), 0);
  assert_int_equal(join_at(f, dan, "room", NOW + 3), 0);
  assert_int_equal(join_at(f, eve, "room", NOW + 4), 0);
  assert_int_equal(set_role(f, ana, "room", "bob", CHAT_ROLE_ADMIN), 0);

  /* The owner changes everything at once. */
  r = new_req(STORE_CHAT_UPDATE, ana, "room");
  r->in.now = NOW + 100;
  r->in.update_mask = STORE_UPD_TITLE | STORE_UPD_PUBLIC | STORE_UPD_CAP | STORE_UPD_POLICY;
  r->in.title = strdup("Room 2");
  r->in.is_public = 0;
  r->in.max_participants = 5; /* equal to the count: allowed */
  r->in.invite_policy = INVITE_POLICY_MEMBERS;
  assert_int_equal(run(f, r), 0);
  assert_string_equal(r->out.chat.title, "Room 2");
  assert_int_equal(r->out.chat.is_public, 0);
  assert_int_equal(r->out.chat.max_participants, 5);
  assert_int_equal(r->out.chat.invite_policy, INVITE_POLICY_MEMBERS);
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_OWNER);
  assert_int_equal(r->out.chat.last_activity, NOW + 4); /* settings are not activity */
  assert_int_equal(r->out.n_member_ids, 5);
  assert_true(has_id(r->out.member_ids, 5, eve));
  assert_string_equal(r->out.errmsg, "");
  store_req_free(r);

  /* An admin changes one field; the others stay. */
  r = new_req(STORE_CHAT_UPDATE, bob, "room");
  r->in.update_mask = STORE_UPD_CAP;
  r->in.max_participants = 0; /* removes the cap */
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.chat.max_participants, 0);
  assert_string_equal(r->out.chat.title, "Room 2");
  assert_int_equal(r->out.chat.invite_policy, INVITE_POLICY_MEMBERS);
  assert_int_equal(r->out.chat.is_public, 0);
  store_req_free(r);

  /* A member may not (forbidden); to an outsider the chat, private now, does not exist. */
  r = new_req(STORE_CHAT_UPDATE, cy, "room");
  r->in.update_mask = STORE_UPD_TITLE;
  r->in.title = strdup("mine");
  assert_int_equal(run(f, r), PARLEY_EFORBIDDEN);
  store_req_free(r);
  r = new_req(STORE_CHAT_UPDATE, out, "room");
  r->in.update_mask = STORE_UPD_PUBLIC;
  r->in.is_public = 1;
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  store_req_free(r);

  /* A cap below the count is a conflict that says why, and changes nothing (not even the other
   * fields of the same request). */
  r = new_req(STORE_CHAT_UPDATE, ana, "room");
  r->in.update_mask = STORE_UPD_CAP | STORE_UPD_TITLE;
  r->in.max_participants = 3;
  r->in.title = strdup("never");
  assert_int_equal(run(f, r), PARLEY_ECONFLICT);
  assert_string_equal(r->out.errmsg,
                      "maxParticipants (3) is below the current participant count (5)");
  assert_null(r->out.chat.title); /* the other outputs are zeroed */
  assert_null(r->out.member_ids);
  store_req_free(r);
  r = chat_get(f, ana, "room");
  assert_string_equal(r->out.chat.title, "Room 2");
  assert_int_equal(r->out.chat.max_participants, 0);
  store_req_free(r);

  /* Malformed updates. */
  {
    struct {
      unsigned mask;
      const char *title;
      int cap;
      int policy;
    } bad[] = {
        {0, NULL, 0, 1},                /* nothing to change */
        {16, NULL, 0, 1},               /* unknown bit */
        {STORE_UPD_TITLE, NULL, 0, 1},  /* no title */
        {STORE_UPD_TITLE, "", 0, 1},    /* empty title */
        {STORE_UPD_CAP, NULL, -1, 1},   /* negative cap */
        {STORE_UPD_POLICY, NULL, 0, 7}, /* no such policy */
        {STORE_UPD_POLICY, NULL, 0, -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      r = new_req(STORE_CHAT_UPDATE, ana, "room");
      r->in.update_mask = bad[i].mask;
      r->in.title = bad[i].title ? strdup(bad[i].title) : NULL;
      r->in.max_participants = bad[i].cap;
      r->in.invite_policy = (enum invite_policy)bad[i].policy;
      if (run(f, r) != PARLEY_EBAD_REQUEST)
        fail_msg("bad update %zu: got %d", i, r->status);
      store_req_free(r);
    }
  }
  r = new_req(STORE_CHAT_UPDATE, ana, "nope");
  r->in.update_mask = STORE_UPD_PUBLIC;
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  store_req_free(r);
}

/* ---- join, members ---- */

static void test_join_members_and_cap(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy");
  struct store_req *r;

  mk_chat(f, ana, "pair", 1, 2);
  r = new_req(STORE_CHAT_JOIN, bob, "pair");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.joined, 1);
  assert_int_equal(r->out.n_member_ids, 2);
  assert_true(has_id(r->out.member_ids, 2, ana) && has_id(r->out.member_ids, 2, bob));
  assert_int_equal(r->out.chat.invite_policy, INVITE_POLICY_ADMINS);
  store_req_free(r);
  /* Joining again still tells who is in. */
  r = new_req(STORE_CHAT_JOIN, bob, "pair");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.joined, 0);
  assert_int_equal(r->out.n_member_ids, 2);
  store_req_free(r);

  r = new_req(STORE_CHAT_JOIN, cy, "pair");
  assert_int_equal(run(f, r), PARLEY_ECHAT_FULL);
  assert_string_equal(r->out.errmsg, "the chat is full: maxParticipants is 2");
  assert_null(r->out.member_ids);
  store_req_free(r);

  /* Participants, oldest first, with roles; visible to an outsider of a public chat only. */
  assert_int_equal(set_role(f, ana, "pair", "bob", CHAT_ROLE_ADMIN), 0);
  r = new_req(STORE_CHAT_MEMBERS, cy, "pair");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_NONE);
  assert_int_equal(r->out.n_members, 2);
  assert_string_equal(r->out.members[0].user.username, "ana");
  assert_int_equal(r->out.members[0].role, CHAT_ROLE_OWNER);
  assert_int_equal(r->out.members[0].joined_at, NOW);
  assert_string_equal(r->out.members[1].user.username, "bob");
  assert_int_equal(r->out.members[1].role, CHAT_ROLE_ADMIN);
  store_req_free(r);
  mk_chat(f, ana, "secret", 0, 0);
  r = new_req(STORE_CHAT_JOIN, cy, "secret");
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  assert_string_equal(r->out.errmsg, "");
  store_req_free(r);
  r = new_req(STORE_CHAT_MEMBERS, cy, "secret");
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  assert_null(r->out.members);
  store_req_free(r);
}

/* ---- leave ---- */

static void test_leave_passes_ownership(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy"),
          dan = mk_user(f, "dan"), eve = mk_user(f, "eve");
  struct store_req *r;

  /* bob is the oldest member, cy the oldest admin, dan a newer admin, eve a newer member. */
  mk_chat(f, ana, "crew", 1, 0);
  assert_int_equal(join_at(f, bob, "crew", NOW + 1), 0);
  assert_int_equal(join_at(f, cy, "crew", NOW + 2), 0);
  assert_int_equal(join_at(f, dan, "crew", NOW + 3), 0);
  assert_int_equal(join_at(f, eve, "crew", NOW + 4), 0);
  assert_int_equal(set_role(f, ana, "crew", "dan", CHAT_ROLE_ADMIN), 0);
  assert_int_equal(set_role(f, ana, "crew", "cy", CHAT_ROLE_ADMIN), 0);

  /* The owner leaves: the longest-standing admin (cy) wins over the older member (bob). */
  r = new_req(STORE_CHAT_LEAVE, ana, "crew");
  r->in.now = NOW + 50;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.new_owner.id, cy);
  assert_string_equal(r->out.new_owner.username, "cy");
  assert_int_equal(r->out.archived, 0);
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_NONE);
  assert_int_equal(r->out.chat.participant_count, 4);
  assert_int_equal(r->out.chat.owner_id, cy);
  assert_int_equal(r->out.chat.last_activity, NOW + 50);
  assert_int_equal(r->out.n_member_ids, 4);
  assert_false(has_id(r->out.member_ids, 4, ana));
  store_req_free(r);
  assert_int_equal(role_in(f, cy, "crew"), CHAT_ROLE_OWNER);
  assert_int_equal(role_in(f, dan, "crew"), CHAT_ROLE_ADMIN);
  assert_int_equal(role_in(f, ana, "crew"), CHAT_ROLE_NONE);
  assert_int_equal(db_int(f, "SELECT count(*) FROM participants WHERE role = 'owner'"), 1);

  /* A member leaving moves nobody. */
  r = new_req(STORE_CHAT_LEAVE, eve, "crew");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.new_owner.id, 0);
  store_req_free(r);
  /* The next owner leaves: the remaining admin (dan, newer than bob) takes over. */
  r = new_req(STORE_CHAT_LEAVE, cy, "crew");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.new_owner.id, dan);
  store_req_free(r);
  /* No admin left: the longest-standing member. */
  r = new_req(STORE_CHAT_LEAVE, dan, "crew");
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.new_owner.id, bob);
  assert_int_equal(r->out.chat.owner_id, bob);
  store_req_free(r);
  assert_int_equal(role_in(f, bob, "crew"), CHAT_ROLE_OWNER);

  /* Leaving what one is not in is refused; so is leaving an unknown chat. */
  r = new_req(STORE_CHAT_LEAVE, ana, "crew");
  assert_int_equal(run(f, r), PARLEY_EFORBIDDEN);
  store_req_free(r);
  r = new_req(STORE_CHAT_LEAVE, ana, "nope");
  assert_int_equal(run(f, r), PARLEY_ENOT_FOUND);
  store_req_free(r);
}

static void test_last_leave_archives(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob");
  int64_t inv;
  struct store_req *r;

  mk_chat(f, ana, "solo", 1, 0);
  assert_int_equal(append(f, ana, "solo", "hello"), 0);
  inv = invite(f, ana, "solo", "bob", NOW, DAY);

  r = new_req(STORE_CHAT_LEAVE, ana, "solo");
  r->in.now = NOW + 10;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.archived, 1);
  assert_int_equal(r->out.chat.archived, 1);
  assert_int_equal(r->out.chat.participant_count, 0);
  assert_int_equal(r->out.n_member_ids, 0);
  assert_int_equal(r->out.new_owner.id, 0);
  /* Its pending invitations are revoked, and returned so their invitees can be told. */
  assert_int_equal(r->out.n_invites, 1);
  assert_int_equal(r->out.invites[0].id, inv);
  assert_int_equal(r->out.invites[0].status, INVITE_REVOKED);
  assert_string_equal(r->out.invites[0].to.username, "bob");
  store_req_free(r);
  assert_int_equal(invite_status_of(f, inv), INVITE_REVOKED);

  /* The data is kept ... */
  assert_int_equal(db_int(f, "SELECT archived FROM chats WHERE slug = 'solo'"), 1);
  assert_int_equal(db_int(f, "SELECT count(*) FROM messages"), 1);
  /* ... but the chat is gone for every op that names it. */
  r = chat_get(f, ana, "solo");
  assert_int_equal(r->status, PARLEY_ENOT_FOUND);
  store_req_free(r);
  assert_int_equal(join(f, bob, "solo"), PARLEY_ENOT_FOUND);
  r = invite_req(f, ana, "solo", "bob", NOW + 20, DAY);
  assert_int_equal(r->status, PARLEY_ENOT_FOUND);
  store_req_free(r);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, inv, NOW + 20), PARLEY_ENOT_FOUND);
  r = new_req(STORE_CHAT_LIST, ana, NULL);
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_chats, 0);
  store_req_free(r);
  /* The slug stays taken. */
  r = new_req(STORE_CHAT_CREATE, bob, "solo");
  r->in.title = strdup("Solo again");
  assert_int_equal(run(f, r), PARLEY_ECONFLICT);
  store_req_free(r);
}

/* ---- remove ---- */

/* Every actor role x target role cell of chat.remove, each on a fresh chat. */
static void test_remove_matrix(void **state) {
  struct fx *f = *state;
  /* The chat of each case: own (owner), adm1 and adm2 (admins), mem1 and mem2 (members). */
  const char *names[] = {"own", "adm1", "adm2", "mem1", "mem2", "outsider"};
  int64_t ids[6];
  static const struct {
    int actor, target, want;
    const char *errmsg; /* NULL: not checked */
  } cases[] = {
      {0, 1, 0, NULL}, /* owner removes an admin */
      {0, 3, 0, NULL}, /* owner removes a member */
      {1, 3, 0, NULL}, /* admin removes a member */
      {1, 2, PARLEY_EFORBIDDEN, "admins can remove members only"},
      {1, 0, PARLEY_EFORBIDDEN, "the owner cannot be removed"},
      {3, 4, PARLEY_EFORBIDDEN, "only the owner and admins can remove participants"},
      {3, 1, PARLEY_EFORBIDDEN, NULL},
      {3, 0, PARLEY_EFORBIDDEN, NULL},
      {5, 3, PARLEY_EFORBIDDEN, NULL}, /* an outsider */
      {0, 0, PARLEY_EBAD_REQUEST, "to leave a chat, use chat.leave"},
      {1, 1, PARLEY_EBAD_REQUEST, "to leave a chat, use chat.leave"},
      {3, 3, PARLEY_EBAD_REQUEST, NULL},
      {0, 5, PARLEY_ENOT_FOUND, "outsider is not a participant of this chat"},
  };

  for (int i = 0; i < 6; i++)
    ids[i] = mk_user(f, names[i]);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char slug[16];
    struct store_req *r;
    int64_t actor = ids[cases[c].actor], target = ids[cases[c].target];
    snprintf(slug, sizeof slug, "case-%zu", c);
    mk_chat(f, ids[0], slug, 1, 0);
    for (int i = 1; i <= 4; i++)
      assert_int_equal(join_at(f, ids[i], slug, NOW + i), 0);
    assert_int_equal(set_role(f, ids[0], slug, "adm1", CHAT_ROLE_ADMIN), 0);
    assert_int_equal(set_role(f, ids[0], slug, "adm2", CHAT_ROLE_ADMIN), 0);

    r = new_req(STORE_CHAT_REMOVE, actor, slug);
    r->in.now = NOW + 100;
    set_target(r, names[cases[c].target]);
    if (run(f, r) != cases[c].want)
      fail_msg("case %zu (%s removes %s): got %d want %d", c, names[cases[c].actor],
               names[cases[c].target], r->status, cases[c].want);
    if (cases[c].errmsg)
      assert_string_equal(r->out.errmsg, cases[c].errmsg);
    if (cases[c].want == 0) {
      assert_int_equal(r->out.user.id, target);
      assert_int_equal(r->out.chat.participant_count, 4);
      assert_int_equal(r->out.chat.last_activity, NOW + 100);
      assert_int_equal(r->out.n_member_ids, 4);
      assert_false(has_id(r->out.member_ids, 4, target));
      assert_true(has_id(r->out.member_ids, 4, actor));
      assert_int_equal(role_in(f, target, slug), CHAT_ROLE_NONE);
    } else {
      assert_int_equal(r->out.user.id, 0);
      assert_null(r->out.member_ids);
      if (cases[c].target != 5)
        assert_int_not_equal(role_in(f, target, slug), CHAT_ROLE_NONE);
    }
    store_req_free(r);
  }
  /* Unknown user, unknown chat. */
  assert_int_equal(remove_user(f, ids[0], "case-0", "ghost"), PARLEY_ENOT_FOUND);
  assert_int_equal(remove_user(f, ids[0], "no-chat", "mem1"), PARLEY_ENOT_FOUND);

  /* A removed member of a private chat can do nothing in it any more. */
  mk_chat(f, ids[0], "private", 0, 0);
  invite(f, ids[0], "private", "mem1", NOW, DAY);
  {
    struct store_req *r = new_req(STORE_INVITE_LIST, ids[3], NULL);
    assert_int_equal(run(f, r), 0);
    assert_int_equal(r->out.n_invites, 1);
    assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, ids[3], r->out.invites[0].id, NOW), 0);
    store_req_free(r);
  }
  assert_int_equal(append(f, ids[3], "private", "hi"), 0);
  assert_int_equal(remove_user(f, ids[0], "private", "mem1"), 0);
  assert_int_equal(append(f, ids[3], "private", "still here?"), PARLEY_ENOT_FOUND);
  assert_int_equal(join(f, ids[3], "private"), PARLEY_ENOT_FOUND);
}

/* ---- setRole ---- */

static void test_set_role(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy");
  struct store_req *r;
  mk_user(f, "out");

  mk_chat(f, ana, "club", 1, 0);
  assert_int_equal(join_at(f, bob, "club", NOW + 1), 0);
  assert_int_equal(join_at(f, cy, "club", NOW + 2), 0);

  r = new_req(STORE_CHAT_SET_ROLE, ana, "club");
  set_target(r, "bob");
  r->in.role = CHAT_ROLE_ADMIN;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.user.id, bob);
  assert_int_equal(r->out.role, CHAT_ROLE_ADMIN);
  assert_int_equal(r->out.new_owner.id, 0);
  assert_int_equal(r->out.n_member_ids, 3);
  store_req_free(r);
  assert_int_equal(role_in(f, bob, "club"), CHAT_ROLE_ADMIN);

  /* Only the owner changes roles: an admin cannot, even downwards; a member cannot. */
  assert_int_equal(set_role(f, bob, "club", "cy", CHAT_ROLE_ADMIN), PARLEY_EFORBIDDEN);
  assert_int_equal(set_role(f, cy, "club", "bob", CHAT_ROLE_MEMBER), PARLEY_EFORBIDDEN);
  assert_int_equal(set_role(f, cy, "club", "cy", CHAT_ROLE_ADMIN), PARLEY_EFORBIDDEN);
  assert_int_equal(role_in(f, cy, "club"), CHAT_ROLE_MEMBER);
  /* The owner cannot demote themselves, nor address people who are not in the chat. */
  assert_int_equal(set_role(f, ana, "club", "ana", CHAT_ROLE_MEMBER), PARLEY_EFORBIDDEN);
  assert_int_equal(set_role(f, ana, "club", "out", CHAT_ROLE_ADMIN), PARLEY_ENOT_FOUND);
  assert_int_equal(set_role(f, ana, "club", "ghost", CHAT_ROLE_ADMIN), PARLEY_ENOT_FOUND);
  assert_int_equal(set_role(f, ana, "club", "cy", CHAT_ROLE_NONE), PARLEY_EBAD_REQUEST);
  assert_int_equal(set_role(f, ana, "club", "cy", (enum chat_role)9), PARLEY_EBAD_REQUEST);
  /* Demotion. */
  assert_int_equal(set_role(f, ana, "club", "bob", CHAT_ROLE_MEMBER), 0);
  assert_int_equal(role_in(f, bob, "club"), CHAT_ROLE_MEMBER);

  /* Ownership transfer: cy becomes owner, ana an admin, chats.owner_id follows. */
  r = new_req(STORE_CHAT_SET_ROLE, ana, "club");
  set_target(r, "cy");
  r->in.role = CHAT_ROLE_OWNER;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.new_owner.id, cy);
  assert_int_equal(r->out.role, CHAT_ROLE_OWNER);
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_ADMIN);
  assert_int_equal(r->out.chat.owner_id, cy);
  store_req_free(r);
  assert_int_equal(role_in(f, cy, "club"), CHAT_ROLE_OWNER);
  assert_int_equal(role_in(f, ana, "club"), CHAT_ROLE_ADMIN);
  assert_int_equal(db_int(f, "SELECT count(*) FROM participants WHERE role = 'owner'"), 1);
  /* The old owner has lost the power; the new one has it. */
  assert_int_equal(set_role(f, ana, "club", "bob", CHAT_ROLE_ADMIN), PARLEY_EFORBIDDEN);
  assert_int_equal(remove_user(f, ana, "club", "cy"), PARLEY_EFORBIDDEN);
  assert_int_equal(set_role(f, cy, "club", "ana", CHAT_ROLE_MEMBER), 0);
}

/* ---- users.search ---- */

static struct store_req *search(struct fx *f, int64_t user, const char *q, const char *slug,
                                int limit, int64_t now) {
  struct store_req *r = new_req(STORE_USERS_SEARCH, user, slug);
  r->in.query = q ? strdup(q) : NULL;
  r->in.limit = limit;
  r->in.now = now;
  run(f, r);
  return r;
}

/* Asserts the hits are exactly the comma-separated usernames, in order. */
static void assert_hits(const struct store_req *r, const char *want) {
  char got[512] = "";
  assert_int_equal(r->status, 0);
  for (size_t i = 0; i < r->out.n_hits; i++) {
    if (i)
      strcat(got, ",");
    strcat(got, r->out.hits[i].user.username);
  }
  assert_string_equal(got, want);
}

static void test_users_search(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user2(f, "ana", "Ana Lima");
  int64_t carl = mk_user2(f, "carl", "carl");
  struct store_req *r;

  mk_user2(f, "anabel", "Bel");
  mk_user2(f, "bob", "Analytic Bob");
  mk_user2(f, "a_b", "Under Score");
  mk_user2(f, "axb", "Axb");
  mk_user2(f, "pct", "100% Sure");
  mk_user2(f, "zed", "Zed ANA");   /* ANA starts a word, not the name */
  mk_user2(f, "zoe", "Zoe Banana"); /* ana inside a word: never found */

  /* Prefix, any case, on username or display name: the exact username, then username prefixes,
   * then display name prefixes, then word starts. */
  r = search(f, carl, "ANA", NULL, 0, NOW);
  assert_hits(r, "ana,anabel,bob,zed");
  assert_int_equal(r->out.hits[0].participant, 0);
  store_req_free(r);
  r = search(f, carl, "under", NULL, 0, NOW);
  assert_hits(r, "a_b");
  store_req_free(r);
  /* The caller is never in their own results. */
  r = search(f, ana, "ana", NULL, 0, NOW);
  assert_hits(r, "anabel,bob,zed");
  store_req_free(r);
  /* '_' and '%' are characters, not wildcards. */
  r = search(f, carl, "a_", NULL, 0, NOW);
  assert_hits(r, "a_b");
  store_req_free(r);
  r = search(f, carl, "100%", NULL, 0, NOW);
  assert_hits(r, "pct");
  store_req_free(r);
  r = search(f, carl, "%", NULL, 0, NOW);
  assert_hits(r, "");
  store_req_free(r);
  r = search(f, carl, "1000", NULL, 0, NOW);
  assert_hits(r, "");
  store_req_free(r);
  /* Bad queries. */
  r = search(f, carl, "", NULL, 0, NOW);
  assert_int_equal(r->status, PARLEY_EBAD_REQUEST);
  store_req_free(r);
  r = search(f, carl, NULL, NULL, 0, NOW);
  assert_int_equal(r->status, PARLEY_EBAD_REQUEST);
  store_req_free(r);

  /* Limits: at most STORE_SEARCH_MAX, fewer when asked. */
  for (int i = 1; i <= 25; i++) {
    char name[16];
    snprintf(name, sizeof name, "user%02d", i);
    mk_user(f, name);
  }
  r = search(f, carl, "User", NULL, 0, NOW);
  assert_int_equal(r->out.n_hits, STORE_SEARCH_MAX);
  assert_string_equal(r->out.hits[0].user.username, "user01");
  assert_string_equal(r->out.hits[19].user.username, "user20");
  store_req_free(r);
  r = search(f, carl, "user", NULL, 500, NOW);
  assert_int_equal(r->out.n_hits, STORE_SEARCH_MAX);
  store_req_free(r);
  r = search(f, carl, "user", NULL, 3, NOW);
  assert_hits(r, "user01,user02,user03");
  store_req_free(r);
}

/* "Okaf" finds "Ben Okafor": a word of the display name may start the match too, after white
 * space or punctuation; those hits come after the prefix ones and only fill what is left. */
static void test_users_search_words(void **state) {
  struct fx *f = *state;
  int64_t me = mk_user(f, "me");
  struct store_req *r;

  mk_user2(f, "ben", "Ben Okafor");
  mk_user2(f, "amy", "Amy-okafor");
  mk_user2(f, "jo", "Jo (OKAFINA)");
  mk_user2(f, "dora", "Okafor Dora");
  mk_user2(f, "okafo", "Zz");
  mk_user2(f, "okaf", "Qq");
  mk_user2(f, "xo", "Xokafor");     /* inside a word */
  mk_user2(f, "pc", "50%okafor");   /* '%' is no separator */
  mk_user2(f, "us", "Under_Score"); /* '_' is one */

  r = search(f, me, "Okaf", NULL, 0, NOW);
  assert_hits(r, "okaf,okafo,dora,amy,ben,jo");
  store_req_free(r);
  r = search(f, me, "okaf", NULL, 4, NOW);
  assert_hits(r, "okaf,okafo,dora,amy");
  store_req_free(r);
  r = search(f, me, "okaf", NULL, 2, NOW);
  assert_hits(r, "okaf,okafo");
  store_req_free(r);
  r = search(f, me, "okafor d", NULL, 0, NOW);
  assert_hits(r, "dora");
  store_req_free(r);
  r = search(f, me, "score", NULL, 0, NOW);
  assert_hits(r, "us");
  store_req_free(r);
  /* Wildcards stay characters in word starts too. */
  r = search(f, me, "%", NULL, 0, NOW);
  assert_hits(r, "");
  store_req_free(r);
  r = search(f, me, "_", NULL, 0, NOW);
  assert_hits(r, "");
  store_req_free(r);
}

static void test_users_search_marks(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), carl = mk_user(f, "carl");
  struct store_req *r;
  mk_user(f, "bea");
  mk_user(f, "ben");
  mk_user(f, "bix");

  mk_chat(f, ana, "team", 0, 0);
  assert_int_equal(
      invite_act(f, STORE_INVITE_ACCEPT, bob, invite(f, ana, "team", "bob", NOW, DAY), NOW),
      0);                                   /* bob is in */
  invite(f, ana, "team", "bea", NOW, DAY);  /* bea is invited */
  invite(f, ana, "team", "bix", NOW, 1000); /* bix was invited, but it has expired */

  r = search(f, ana, "b", "team", 0, NOW + 2000);
  assert_hits(r, "bea,ben,bix,bob");
  assert_int_equal(r->out.hits[0].invited, 1);
  assert_int_equal(r->out.hits[0].participant, 0);
  assert_int_equal(r->out.hits[1].invited, 0);
  assert_int_equal(r->out.hits[1].participant, 0);
  assert_int_equal(r->out.hits[2].invited, 0); /* expired is not invited */
  assert_int_equal(r->out.hits[3].participant, 1);
  assert_int_equal(r->out.hits[3].invited, 0); /* accepted */
  assert_null(r->out.chat.title);              /* the chat is not an output of search */
  store_req_free(r);

  /* No marks for someone outside the chat, nor for an unknown chat (which is no error). */
  r = search(f, carl, "b", "team", 0, NOW + 2000);
  assert_hits(r, "bea,ben,bix,bob");
  for (size_t i = 0; i < r->out.n_hits; i++)
    assert_int_equal(r->out.hits[i].participant + r->out.hits[i].invited, 0);
  store_req_free(r);
  r = search(f, ana, "b", "no-such-chat", 0, NOW);
  assert_hits(r, "bea,ben,bix,bob");
  assert_int_equal(r->out.hits[3].participant, 0);
  store_req_free(r);
}

/* ---- invitations ---- */

static void test_invite_create_rules(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy"),
          out = mk_user(f, "out");
  int64_t id;
  struct store_req *r;
  mk_user(f, "dan");
  mk_user(f, "eve");

  mk_chat(f, ana, "team", 0, 0);
  mk_chat(f, ana, "open", 1, 0);
  assert_int_equal(join(f, out, "open"), 0);
  id = invite(f, ana, "team", "bob", NOW, DAY);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, id, NOW), 0);
  id = invite(f, ana, "team", "cy", NOW, DAY);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, cy, id, NOW), 0);
  assert_int_equal(set_role(f, ana, "team", "bob", CHAT_ROLE_ADMIN), 0);

  /* What the owner gets back. */
  r = invite_req(f, ana, "team", "dan", NOW + 5, 7 * DAY);
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.created, 1);
  id = r->out.invite.id;
  assert_string_equal(r->out.invite.chat_slug, "team");
  assert_string_equal(r->out.invite.chat_title, "team");
  assert_string_equal(r->out.invite.from.username, "ana");
  assert_string_equal(r->out.invite.to.username, "dan");
  assert_int_equal(r->out.invite.status, INVITE_PENDING);
  assert_int_equal(r->out.invite.created_at, NOW + 5);
  assert_int_equal(r->out.invite.expires_at, NOW + 5 + 7 * DAY);
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_OWNER);
  store_req_free(r);

  /* Inviting again while it is pending returns it, unchanged (and creates nothing). */
  r = invite_req(f, bob, "team", "dan", NOW + 9, DAY);
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.created, 0);
  assert_int_equal(r->out.invite.id, id);
  assert_string_equal(r->out.invite.from.username, "ana");
  assert_int_equal(r->out.invite.expires_at, NOW + 5 + 7 * DAY);
  store_req_free(r);
  assert_int_equal(db_int(f, "SELECT count(*) FROM invitations"), 3);

  /* A participant (or oneself) is a conflict; an unknown user not found. */
  r = invite_req(f, ana, "team", "cy", NOW, DAY);
  assert_int_equal(r->status, PARLEY_ECONFLICT);
  assert_string_equal(r->out.errmsg, "cy is already a participant of this chat");
  assert_int_equal(r->out.invite.id, 0);
  store_req_free(r);
  r = invite_req(f, ana, "team", "ana", NOW, DAY);
  assert_int_equal(r->status, PARLEY_ECONFLICT);
  store_req_free(r);
  r = invite_req(f, ana, "team", "ghost", NOW, DAY);
  assert_int_equal(r->status, PARLEY_ENOT_FOUND);
  assert_string_equal(r->out.errmsg, "there is no user named ghost");
  store_req_free(r);
  r = invite_req(f, ana, "nope", "eve", NOW, DAY);
  assert_int_equal(r->status, PARLEY_ENOT_FOUND);
  store_req_free(r);
  r = invite_req(f, ana, "team", "eve", NOW, 0); /* expires_at must be after now */
  assert_int_equal(r->status, PARLEY_EBAD_REQUEST);
  store_req_free(r);

  /* The policy: admins (default) lets the admin in, not the member, nor an outsider. */
  r = invite_req(f, cy, "team", "eve", NOW, DAY);
  assert_int_equal(r->status, PARLEY_EFORBIDDEN);
  assert_string_equal(r->out.errmsg, "only the owner and admins can invite to this chat");
  store_req_free(r);
  r = invite_req(f, out, "team", "eve", NOW, DAY);
  assert_int_equal(r->status, PARLEY_ENOT_FOUND);
  store_req_free(r);
  r = invite_req(f, out, "open", "eve", NOW, DAY); /* a plain member of a public chat */
  assert_int_equal(r->status, PARLEY_EFORBIDDEN);
  store_req_free(r);
  invite(f, bob, "team", "eve", NOW, DAY);

  /* owner: only the owner. members: everyone in the chat. */
  r = new_req(STORE_CHAT_UPDATE, ana, "team");
  r->in.update_mask = STORE_UPD_POLICY;
  r->in.invite_policy = INVITE_POLICY_OWNER;
  assert_int_equal(run(f, r), 0);
  store_req_free(r);
  r = invite_req(f, bob, "team", "out", NOW, DAY);
  assert_int_equal(r->status, PARLEY_EFORBIDDEN);
  assert_string_equal(r->out.errmsg, "only the owner can invite to this chat");
  store_req_free(r);
  r = new_req(STORE_CHAT_UPDATE, ana, "team");
  r->in.update_mask = STORE_UPD_POLICY;
  r->in.invite_policy = INVITE_POLICY_MEMBERS;
  assert_int_equal(run(f, r), 0);
  store_req_free(r);
  invite(f, cy, "team", "out", NOW, DAY);
}

static void test_invite_accept(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy");
  int64_t id;
  struct store_req *r;

  mk_chat(f, ana, "team", 0, 0);
  id = invite(f, ana, "team", "bob", NOW, DAY);

  /* Someone else's invitation, or an id that does not exist, is not found. */
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, cy, id, NOW + 1), PARLEY_ENOT_FOUND);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, ana, id, NOW + 1), PARLEY_ENOT_FOUND);
  assert_int_equal(invite_act(f, STORE_INVITE_DECLINE, cy, id, NOW + 1), PARLEY_ENOT_FOUND);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, id + 100, NOW + 1), PARLEY_ENOT_FOUND);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, 0, NOW + 1), PARLEY_ENOT_FOUND);
  assert_int_equal(invite_status_of(f, id), INVITE_PENDING);

  r = new_req(STORE_INVITE_ACCEPT, bob, NULL);
  r->in.invite_id = id;
  r->in.now = NOW + 10;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.joined, 1);
  assert_int_equal(r->out.invite.status, INVITE_ACCEPTED);
  assert_int_equal(r->out.invite.id, id);
  assert_string_equal(r->out.chat.slug, "team");
  assert_int_equal(r->out.chat.my_role, CHAT_ROLE_MEMBER);
  assert_int_equal(r->out.chat.participant_count, 2);
  assert_int_equal(r->out.chat.last_activity, NOW + 10); /* a join is activity */
  assert_int_equal(r->out.n_member_ids, 2);
  assert_true(has_id(r->out.member_ids, 2, bob));
  store_req_free(r);
  assert_int_equal(invite_status_of(f, id), INVITE_ACCEPTED);

  /* Settled: every further move is a conflict that names the state. */
  r = new_req(STORE_INVITE_ACCEPT, bob, NULL);
  r->in.invite_id = id;
  assert_int_equal(run(f, r), PARLEY_ECONFLICT);
  assert_string_equal(r->out.errmsg, "the invitation is already accepted");
  store_req_free(r);
  assert_int_equal(invite_act(f, STORE_INVITE_DECLINE, bob, id, NOW), PARLEY_ECONFLICT);
  assert_int_equal(invite_act(f, STORE_INVITE_REVOKE, ana, id, NOW), PARLEY_ECONFLICT);

  /* Expired at accept time: refused, nobody joins. It stays pending for the sweep to settle and
   * announce. */
  id = invite(f, ana, "team", "cy", NOW, 1000);
  r = new_req(STORE_INVITE_ACCEPT, cy, NULL);
  r->in.invite_id = id;
  r->in.now = NOW + 1000;
  assert_int_equal(run(f, r), PARLEY_EEXPIRED);
  assert_int_equal(r->out.joined, 0);
  assert_null(r->out.chat.title);
  store_req_free(r);
  assert_int_equal(role_in(f, cy, "team"), CHAT_ROLE_NONE);
  assert_int_equal(invite_status_of(f, id), INVITE_PENDING);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, cy, id, NOW + 999), 0); /* in time */
}

/* A chat with no cap of its own, or a larger one, still holds at most
 * CHAT_PARTICIPANTS_CEILING people, on every path that adds one (issue 15). */
static void test_participants_ceiling(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy");
  int64_t dee = mk_user(f, "dee"), chat_id, id_dee;
  char sql[512];
  struct store_req *r;

  mk_chat(f, ana, "open", 1, 0); /* public, no cap of its own */
  chat_id = fx_sql_int(f, "SELECT id FROM chats WHERE slug = 'open'");
  /* Seats filled in SQL: the owner plus CEILING - 2 others leaves one free. */
  snprintf(sql, sizeof sql,
           "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
           "INSERT INTO users (username, display_name, pwhash, created_at) "
           "SELECT 'zz' || i, 'Filler', 'x', 0 FROM n",
           CHAT_PARTICIPANTS_CEILING - 2);
  assert_int_equal(fx_sql_exec(f, sql), 0);
  snprintf(sql, sizeof sql,
           "INSERT INTO participants (chat_id, user_id, role, joined_at) "
           "SELECT %lld, id, 'member', 0 FROM users WHERE username LIKE 'zz%%'",
           (long long)chat_id);
  assert_int_equal(fx_sql_exec(f, sql), 0);
  assert_int_equal(fx_sql_int(f, "SELECT participant_count FROM chats WHERE slug = 'open'"),
                   CHAT_PARTICIPANTS_CEILING - 1);

  assert_int_equal(join(f, bob, "open"), 0); /* the last seat */
  r = new_req(STORE_CHAT_JOIN, cy, "open");
  assert_int_equal(run(f, r), PARLEY_ECHAT_FULL);
  assert_string_equal(r->out.errmsg, "the chat is full: a chat holds at most 10000 people");
  store_req_free(r);
  assert_int_equal(role_in(f, cy, "open"), CHAT_ROLE_NONE);

  /* An invitation does not pass the ceiling either, and stays pending for a seat. */
  id_dee = invite(f, ana, "open", "dee", NOW, DAY);
  r = new_req(STORE_INVITE_ACCEPT, dee, NULL);
  r->in.invite_id = id_dee;
  assert_int_equal(run(f, r), PARLEY_ECHAT_FULL);
  store_req_free(r);
  assert_int_equal(invite_status_of(f, id_dee), INVITE_PENDING);

  /* A cap above the ceiling is refused by the protocol; were one stored, the ceiling holds. */
  snprintf(sql, sizeof sql, "UPDATE chats SET max_participants = %d WHERE id = %lld",
           CHAT_PARTICIPANTS_CEILING + 5, (long long)chat_id);
  assert_int_equal(fx_sql_exec(f, sql), 0);
  r = new_req(STORE_CHAT_JOIN, cy, "open");
  assert_int_equal(run(f, r), PARLEY_ECHAT_FULL);
  store_req_free(r);
  assert_int_equal(fx_sql_int(f, "SELECT participant_count FROM chats WHERE slug = 'open'"),
                   CHAT_PARTICIPANTS_CEILING);
}

static void test_invite_accept_at_cap(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy");
  int64_t id_bob, id_cy;
  struct store_req *r;

  /* Two invitations to a chat with one free seat: the cap is checked at accept time. */
  mk_chat(f, ana, "duo", 1, 2);
  id_bob = invite(f, ana, "duo", "bob", NOW, DAY);
  id_cy = invite(f, ana, "duo", "cy", NOW, DAY);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, id_bob, NOW), 0);
  r = new_req(STORE_INVITE_ACCEPT, cy, NULL);
  r->in.invite_id = id_cy;
  assert_int_equal(run(f, r), PARLEY_ECHAT_FULL);
  assert_string_equal(r->out.errmsg, "the chat is full: maxParticipants is 2");
  assert_int_equal(r->out.invite.id, 0);
  store_req_free(r);
  assert_int_equal(invite_status_of(f, id_cy), INVITE_PENDING);
  assert_int_equal(role_in(f, cy, "duo"), CHAT_ROLE_NONE);

  /* Once a seat frees, the same invitation works. */
  r = new_req(STORE_CHAT_LEAVE, bob, "duo");
  assert_int_equal(run(f, r), 0);
  store_req_free(r);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, cy, id_cy, NOW), 0);
  assert_int_equal(role_in(f, cy, "duo"), CHAT_ROLE_MEMBER);

  /* Joining publicly in the meantime settles the invitation (issue 14.5): accepting it then is
   * a conflict, as for one accepted twice, and changes nothing. */
  id_bob = invite(f, ana, "duo", "bob", NOW, DAY);
  r = new_req(STORE_CHAT_UPDATE, ana, "duo");
  r->in.update_mask = STORE_UPD_CAP;
  r->in.max_participants = 3;
  assert_int_equal(run(f, r), 0);
  store_req_free(r);
  assert_int_equal(join(f, bob, "duo"), 0);
  assert_int_equal(invite_status_of(f, id_bob), INVITE_ACCEPTED);
  r = new_req(STORE_INVITE_ACCEPT, bob, NULL);
  r->in.invite_id = id_bob;
  assert_int_equal(run(f, r), PARLEY_ECONFLICT);
  assert_string_equal(r->out.errmsg, "the invitation is already accepted");
  store_req_free(r);
  r = chat_get(f, bob, "duo");
  assert_int_equal(r->out.chat.participant_count, 3);
  store_req_free(r);
}

static void test_invite_decline_and_revoke(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy"),
          dan = mk_user(f, "dan"), eve = mk_user(f, "eve"), out = mk_user(f, "out");
  int64_t id;
  struct store_req *r;

  /* ana owns, bob is an admin, cy and dan are members; members may invite. */
  mk_chat(f, ana, "team", 1, 0);
  assert_int_equal(join(f, bob, "team"), 0);
  assert_int_equal(join(f, cy, "team"), 0);
  assert_int_equal(join(f, dan, "team"), 0);
  assert_int_equal(set_role(f, ana, "team", "bob", CHAT_ROLE_ADMIN), 0);
  r = new_req(STORE_CHAT_UPDATE, ana, "team");
  r->in.update_mask = STORE_UPD_POLICY;
  r->in.invite_policy = INVITE_POLICY_MEMBERS;
  assert_int_equal(run(f, r), 0);
  store_req_free(r);

  /* Decline. */
  id = invite(f, cy, "team", "eve", NOW, DAY);
  r = new_req(STORE_INVITE_DECLINE, eve, NULL);
  r->in.invite_id = id;
  r->in.now = NOW + 1;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.invite.status, INVITE_DECLINED);
  assert_string_equal(r->out.invite.from.username, "cy");
  store_req_free(r);
  assert_int_equal(invite_status_of(f, id), INVITE_DECLINED);
  assert_int_equal(invite_act(f, STORE_INVITE_DECLINE, eve, id, NOW), PARLEY_ECONFLICT);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, eve, id, NOW), PARLEY_ECONFLICT);
  assert_int_equal(role_in(f, eve, "team"), CHAT_ROLE_NONE);

  /* Revoke: who may. Each case revokes a fresh invitation from cy to eve. */
  {
    static const struct {
      const char *who;
      int want;
    } cases[] = {
        {"dan", PARLEY_EFORBIDDEN}, /* another member, not the inviter */
        {"eve", PARLEY_EFORBIDDEN}, /* the invitee declines, never revokes */
        {"out", PARLEY_ENOT_FOUND}, /* no tie to the chat: learns nothing */
        {"cy", 0},                  /* the inviter */
        {"bob", 0},                 /* an admin */
        {"ana", 0},                 /* the owner */
    };
    int64_t who_id[] = {dan, eve, out, cy, bob, ana};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      int64_t inv = invite(f, cy, "team", "eve", NOW, DAY);
      r = new_req(STORE_INVITE_REVOKE, who_id[i], NULL);
      r->in.invite_id = inv;
      if (run(f, r) != cases[i].want)
        fail_msg("revoke by %s: got %d want %d", cases[i].who, r->status, cases[i].want);
      if (cases[i].want == 0) {
        assert_int_equal(r->out.invite.status, INVITE_REVOKED);
        assert_int_equal(invite_status_of(f, inv), INVITE_REVOKED);
        /* Revoked is final. */
        assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, eve, inv, NOW), PARLEY_ECONFLICT);
        assert_int_equal(invite_act(f, STORE_INVITE_REVOKE, ana, inv, NOW), PARLEY_ECONFLICT);
      } else {
        assert_int_equal(invite_status_of(f, inv), INVITE_PENDING);
        assert_int_equal(invite_act(f, STORE_INVITE_REVOKE, ana, inv, NOW), 0);
      }
      store_req_free(r);
    }
  }

  /* An inviter who left can no longer revoke (an admin still can). */
  id = invite(f, dan, "team", "eve", NOW, DAY);
  r = new_req(STORE_CHAT_LEAVE, dan, "team");
  assert_int_equal(run(f, r), 0);
  store_req_free(r);
  assert_int_equal(invite_act(f, STORE_INVITE_REVOKE, dan, id, NOW), PARLEY_EFORBIDDEN);
  assert_int_equal(invite_act(f, STORE_INVITE_REVOKE, bob, id, NOW), 0);
  assert_int_equal(invite_act(f, STORE_INVITE_REVOKE, bob, id + 1000, NOW), PARLEY_ENOT_FOUND);
}

static void test_reinvite_after_decline_and_expiry(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob");
  int64_t first, second, third;
  struct store_req *r;

  mk_chat(f, ana, "team", 0, 0);
  first = invite(f, ana, "team", "bob", NOW, DAY);
  assert_int_equal(invite_act(f, STORE_INVITE_DECLINE, bob, first, NOW + 1), 0);
  second = invite(f, ana, "team", "bob", NOW + 2, 1000); /* a declined one can be re-issued */
  assert_true(second != first);

  /* Past its expiry (not yet swept): re-inviting settles it as expired and issues a new one. */
  r = invite_req(f, ana, "team", "bob", NOW + 2 + 1000, DAY);
  assert_int_equal(r->status, 0);
  assert_int_equal(r->out.created, 1);
  third = r->out.invite.id;
  assert_true(third != second);
  assert_int_equal(r->out.invite.expires_at, NOW + 2 + 1000 + DAY);
  store_req_free(r);
  assert_int_equal(invite_status_of(f, first), INVITE_DECLINED);
  assert_int_equal(invite_status_of(f, second), INVITE_EXPIRED);
  assert_int_equal(invite_status_of(f, third), INVITE_PENDING);
  /* The expired one says so, even after the sweep marked it. */
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, second, NOW + 3000), PARLEY_EEXPIRED);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, third, NOW + 3000), 0);
}

static void test_invite_sweep(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), b4;
  int64_t due1, due2, later, declined;
  struct store_req *r;
  mk_user(f, "b1");
  mk_user(f, "b2");
  mk_user(f, "b3");
  b4 = mk_user(f, "b4");

  mk_chat(f, ana, "team", 0, 0);
  due2 = invite(f, ana, "team", "b1", NOW, 2000);
  due1 = invite(f, ana, "team", "b2", NOW, 1000);
  later = invite(f, ana, "team", "b3", NOW, 3000);
  declined = invite(f, ana, "team", "b4", NOW, 500);
  assert_int_equal(invite_act(f, STORE_INVITE_DECLINE, b4, declined, NOW + 1), 0);

  /* Nothing is due before its time. */
  r = new_req(STORE_INVITE_SWEEP, 0, NULL);
  r->in.now = NOW + 999;
  r->in.limit = 10;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 0);
  store_req_free(r);

  /* At NOW+2000 the two due pending ones (oldest due first), not the declined, not the later.
   * A limit of 1 takes one and says there is more. */
  r = new_req(STORE_INVITE_SWEEP, 0, NULL);
  r->in.now = NOW + 2000;
  r->in.limit = 1;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 1);
  assert_int_equal(r->out.has_more, 1);
  assert_int_equal(r->out.invites[0].id, due1);
  assert_int_equal(r->out.invites[0].status, INVITE_EXPIRED);
  assert_string_equal(r->out.invites[0].to.username, "b2");
  assert_string_equal(r->out.invites[0].from.username, "ana");
  assert_string_equal(r->out.invites[0].chat_slug, "team");
  store_req_free(r);
  r = new_req(STORE_INVITE_SWEEP, 0, NULL);
  r->in.now = NOW + 2000;
  r->in.limit = 10;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 1);
  assert_int_equal(r->out.has_more, 0);
  assert_int_equal(r->out.invites[0].id, due2);
  store_req_free(r);
  assert_int_equal(invite_status_of(f, due1), INVITE_EXPIRED);
  assert_int_equal(invite_status_of(f, due2), INVITE_EXPIRED);
  assert_int_equal(invite_status_of(f, later), INVITE_PENDING);
  assert_int_equal(invite_status_of(f, declined), INVITE_DECLINED);

  /* Swept twice is swept once. */
  r = new_req(STORE_INVITE_SWEEP, 0, NULL);
  r->in.now = NOW + 2000;
  r->in.limit = 10;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 0);
  store_req_free(r);
  r = new_req(STORE_INVITE_SWEEP, 0, NULL);
  r->in.limit = 0;
  assert_int_equal(run(f, r), PARLEY_EBAD_REQUEST);
  store_req_free(r);
}

static void test_invite_list(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy"),
          dan = mk_user(f, "dan");
  struct store_req *r;
  mk_user(f, "eve");
  mk_user(f, "fay");

  /* team: ana owns, bob admin, cy member; members may invite. */
  mk_chat(f, ana, "team", 1, 0);
  assert_int_equal(join(f, bob, "team"), 0);
  assert_int_equal(join(f, cy, "team"), 0);
  assert_int_equal(set_role(f, ana, "team", "bob", CHAT_ROLE_ADMIN), 0);
  r = new_req(STORE_CHAT_UPDATE, ana, "team");
  r->in.update_mask = STORE_UPD_POLICY;
  r->in.invite_policy = INVITE_POLICY_MEMBERS;
  assert_int_equal(run(f, r), 0);
  store_req_free(r);
  /* dan's own chat invites cy: cy's incoming. */
  mk_chat(f, dan, "side", 0, 0);
  invite(f, dan, "side", "cy", NOW + 1, DAY);
  invite(f, ana, "team", "eve", NOW + 2, DAY);
  invite(f, cy, "team", "fay", NOW + 3, DAY);
  invite(f, ana, "team", "dan", NOW + 4, 100); /* expires at NOW+104 */

  /* The owner and the admin see every pending one of the chat. */
  r = new_req(STORE_INVITE_LIST, bob, NULL);
  r->in.now = NOW + 200;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 2); /* fay, eve: newest first; dan's has expired */
  assert_string_equal(r->out.invites[0].to.username, "fay");
  assert_string_equal(r->out.invites[1].to.username, "eve");
  store_req_free(r);
  /* A member sees the ones they sent, and their incoming ones first. */
  r = new_req(STORE_INVITE_LIST, cy, NULL);
  r->in.now = NOW + 200;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 2);
  assert_int_equal(r->out.invites[0].to.id, cy);
  assert_string_equal(r->out.invites[0].chat_slug, "side");
  assert_string_equal(r->out.invites[1].to.username, "fay");
  store_req_free(r);
  /* dan: the expired one is gone from his incoming list; he manages side. */
  r = new_req(STORE_INVITE_LIST, dan, NULL);
  r->in.now = NOW + 200;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 1);
  assert_string_equal(r->out.invites[0].chat_slug, "side");
  assert_int_equal(r->out.invites[0].from.id, dan);
  store_req_free(r);
  r = new_req(STORE_INVITE_LIST, dan, NULL);
  r->in.now = NOW + 50; /* before it expired, it is there, first */
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 2);
  assert_int_equal(r->out.invites[0].to.id, dan);
  store_req_free(r);
}

/* Issue 14.5: a stale invitation undid a removal. Joining settles the joiner's pending
 * invitation (accepted), removal revokes one, and only an invitation made after the removal lets
 * the removed user back in. */
static void test_stale_invitation_cannot_undo_removal(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy");
  int64_t old, fresh;
  struct store_req *r;

  mk_chat(f, ana, "pub", 1, 0);
  old = invite(f, ana, "pub", "bob", NOW + 1, DAY);
  /* bob joins by himself: the invitation is settled, and the join says so. */
  r = new_req(STORE_CHAT_JOIN, bob, "pub");
  r->in.now = NOW + 2;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.joined, 1);
  assert_int_equal(r->out.n_invites, 1);
  assert_int_equal(r->out.invites[0].id, old);
  assert_int_equal(r->out.invites[0].status, INVITE_ACCEPTED);
  assert_int_equal(r->out.invites[0].from.id, ana);
  assert_int_equal(r->out.invites[0].to.id, bob);
  store_req_free(r);
  assert_int_equal(invite_status_of(f, old), INVITE_ACCEPTED);
  /* Neither side lists it any more. */
  r = new_req(STORE_INVITE_LIST, bob, NULL);
  r->in.now = NOW + 3;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 0);
  store_req_free(r);
  r = new_req(STORE_INVITE_LIST, ana, NULL);
  r->in.now = NOW + 3;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 0);
  store_req_free(r);

  assert_int_equal(remove_user(f, ana, "pub", "bob"), 0);
  /* The old invitation no longer lets him in; neither does a join. */
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, old, NOW + 4), PARLEY_ECONFLICT);
  assert_int_equal(join(f, bob, "pub"), PARLEY_EFORBIDDEN);
  assert_int_equal(role_in(f, bob, "pub"), CHAT_ROLE_NONE);
  /* One made after the removal does. */
  fresh = invite(f, ana, "pub", "bob", NOW + 5, DAY);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, fresh, NOW + 6), 0);
  assert_int_equal(role_in(f, bob, "pub"), CHAT_ROLE_MEMBER);

  /* A pending invitation of a participant (left by an older version, which did not settle it
   * on join) is revoked by the removal, and returned to be announced. */
  assert_int_equal(join(f, cy, "pub"), 0);
  assert_int_equal(fx_sql_exec(f, "INSERT INTO invitations(chat_id, from_id, to_id, status,"
                                  " created_at, expires_at, updated_at) SELECT id, owner_id, "
                                  "(SELECT id FROM users WHERE username = 'cy'), 0, 1, "
                                  "9000000000000, 1 FROM chats WHERE slug = 'pub'"),
                   0);
  r = new_req(STORE_CHAT_REMOVE, ana, "pub");
  set_target(r, "cy");
  r->in.now = NOW + 7;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 1);
  assert_int_equal(r->out.invites[0].status, INVITE_REVOKED);
  assert_int_equal(r->out.invites[0].to.id, cy);
  old = r->out.invites[0].id;
  store_req_free(r);
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, cy, old, NOW + 8), PARLEY_ECONFLICT);
  assert_int_equal(role_in(f, cy, "pub"), CHAT_ROLE_NONE);

  /* A removal with nothing pending settles nothing. */
  r = new_req(STORE_CHAT_REMOVE, ana, "pub");
  set_target(r, "bob");
  r->in.now = NOW + 9;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 0);
  store_req_free(r);
}

/* ---- chat.list ---- */

static void test_chat_list_invitations(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cy = mk_user(f, "cy");
  int64_t keep, gone;
  struct store_req *r;

  mk_chat(f, ana, "alpha", 0, 0);
  mk_chat(f, cy, "beta", 0, 0);
  mk_chat(f, cy, "gamma", 0, 0);
  mk_chat(f, cy, "delta", 0, 0);
  keep = invite(f, ana, "alpha", "bob", NOW + 1, DAY);
  invite(f, cy, "beta", "bob", NOW + 2, 100); /* expired by the time of the list */
  gone = invite(f, cy, "gamma", "bob", NOW + 3, DAY);
  assert_int_equal(invite_act(f, STORE_INVITE_DECLINE, bob, gone, NOW + 4), 0);
  invite(f, cy, "delta", "ana", NOW + 5, DAY); /* someone else's */

  r = new_req(STORE_CHAT_LIST, bob, NULL);
  r->in.now = NOW + 1000;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_chats, 0);
  assert_int_equal(r->out.n_invites, 1);
  assert_int_equal(r->out.invites[0].id, keep);
  assert_string_equal(r->out.invites[0].chat_slug, "alpha");
  assert_string_equal(r->out.invites[0].chat_title, "alpha");
  assert_string_equal(r->out.invites[0].from.username, "ana");
  assert_string_equal(r->out.invites[0].to.username, "bob");
  assert_int_equal(r->out.invites[0].status, INVITE_PENDING);
  store_req_free(r);

  /* Accepted, it leaves the invitations and the chat joins the list, with its policy. */
  assert_int_equal(invite_act(f, STORE_INVITE_ACCEPT, bob, keep, NOW + 1000), 0);
  r = new_req(STORE_CHAT_LIST, bob, NULL);
  r->in.now = NOW + 1000;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.n_invites, 0);
  assert_int_equal(r->out.n_chats, 1);
  assert_string_equal(r->out.chats[0].slug, "alpha");
  assert_int_equal(r->out.chats[0].invite_policy, INVITE_POLICY_ADMINS);
  assert_int_equal(r->out.chats[0].archived, 0);
  store_req_free(r);
}

static void test_own_messages_are_never_unread(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob");
  struct store_req *r;

  mk_chat(f, ana, "room", 1, 0);
  assert_int_equal(join(f, bob, "room"), 0);
  assert_int_equal(append(f, ana, "room", "one"), 0);
  assert_int_equal(append(f, ana, "room", "two"), 0);

  r = new_req(STORE_CHAT_LIST, ana, NULL);
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.unread[0], 0);
  store_req_free(r);
  r = new_req(STORE_CHAT_LIST, bob, NULL);
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.unread[0], 2);
  store_req_free(r);

  /* bob answers: he has read everything up to his own message; ana has one unread. */
  assert_int_equal(append(f, bob, "room", "three"), 0);
  r = new_req(STORE_CHAT_LIST, bob, NULL);
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.unread[0], 0);
  store_req_free(r);
  r = new_req(STORE_CHAT_LIST, ana, NULL);
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.unread[0], 1);
  store_req_free(r);
}

/* The gen a send, a read marker and a catch-up read return (MSG_APPEND, READ_SET, MSG_SINCE). */
static int64_t gen_via(struct fx *f, enum store_op op, int64_t user, const char *slug) {
  struct store_req *r = new_req(op, user, slug);
  int64_t gen;
  if (op == STORE_MSG_APPEND)
    r->in.body = strdup("x");
  r->in.limit = 10;
  r->in.seq = 1;
  assert_int_equal(run(f, r), 0);
  gen = r->out.chat.member_gen;
  store_req_free(r);
  return gen;
}

/* chats.member_gen moves on every leave and removal, never on a join or a role change, and every
 * op that reads the chat returns it: what app/ compares to decide whether a subscription's access
 * must be checked again (migration 5). */
static void test_member_gen(void **state) {
  struct fx *f = *state;
  int64_t ana = mk_user(f, "ana"), bob = mk_user(f, "bob"), cat = mk_user(f, "cat");
  struct store_req *r;

  mk_chat(f, ana, "gen", 1, 0);
  assert_int_equal(gen_via(f, STORE_MSG_APPEND, ana, "gen"), 0);
  assert_int_equal(join(f, bob, "gen"), 0);
  assert_int_equal(join(f, cat, "gen"), 0);
  assert_int_equal(set_role(f, ana, "gen", "bob", CHAT_ROLE_ADMIN), 0);
  assert_int_equal(gen_via(f, STORE_MSG_APPEND, bob, "gen"), 0);

  assert_int_equal(remove_user(f, bob, "gen", "cat"), 0);
  assert_int_equal(gen_via(f, STORE_MSG_APPEND, ana, "gen"), 1);
  assert_int_equal(gen_via(f, STORE_READ_SET, bob, "gen"), 1);
  assert_int_equal(gen_via(f, STORE_MSG_SINCE, bob, "gen"), 1);

  r = new_req(STORE_CHAT_LEAVE, bob, "gen");
  r->in.now = NOW;
  assert_int_equal(run(f, r), 0);
  assert_int_equal(r->out.chat.member_gen, 2); /* the chat after the leave */
  store_req_free(r);
  r = new_req(STORE_CHAT_REMOVE, ana, "gen");
  set_target(r, "nobody");
  assert_int_not_equal(run(f, r), 0); /* a refused removal changes nothing */
  store_req_free(r);
  assert_int_equal(join(f, cat, "gen"), PARLEY_EFORBIDDEN); /* removed: not by themselves */
  assert_int_equal(gen_via(f, STORE_MSG_APPEND, ana, "gen"), 2);
  assert_int_equal(db_int(f, "SELECT member_gen FROM chats WHERE slug = 'gen'"), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_migration_2_upgrades_a_v1_database, fx_setup_closed,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_migration_13_tallies_existing_messages,
                                      fx_setup_closed, fx_teardown),
      cmocka_unit_test_setup_teardown(test_one_pending_invitation_per_invitee, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_chat_update, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_join_members_and_cap, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_leave_passes_ownership, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_last_leave_archives, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_remove_matrix, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_set_role, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_users_search, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_users_search_words, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_users_search_marks, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_invite_create_rules, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_invite_accept, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_invite_accept_at_cap, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_participants_ceiling, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_invite_decline_and_revoke, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_reinvite_after_decline_and_expiry, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_invite_sweep, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_invite_list, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_stale_invitation_cannot_undo_removal, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_chat_list_invitations, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_own_messages_are_never_unread, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_member_gen, fx_setup, fx_teardown),
  };
  log_set_level(LOG_ERROR);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
