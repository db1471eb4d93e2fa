/* fuzz_store.c - libFuzzer target: the store's row decoding (issue 6).
 *
 * One SQLite file per process, opened through store_sqlite_ops on the calling thread (open,
 * begin, exec, commit: what the store thread does). Two users (alice, bob) and a chat are made
 * through the ops once. Each input then writes rows directly with the sqlite3 C API on a second
 * connection: extra users with odd names, a second chat with odd slug/title/counters, messages
 * with arbitrary body and clientMsgId bytes (invalid UTF-8, NULs, blobs) and extreme seq and
 * times, invitations with any status and expiry, a read marker. Every value stays inside the
 * schema (types, NOT NULL, CHECKs): these are rows a buggy writer, a restore or an operator's
 * shell could leave. The read ops (CHAT_LIST, INVITE_LIST, MSG_HISTORY, MSG_SINCE,
 * CHAT_MEMBERS) then run and every result goes through proto's encoders and json_dumps.
 * Finally the rows are deleted again, so the database stays small and iterations stay fast.
 *
 * Checks beyond the sanitizers: if every string written this iteration was valid, NUL-free
 * UTF-8, each string the store returns must be valid UTF-8 and each encoder must give JSON.
 * When the fuzzer wrote invalid UTF-8 itself, a NULL from json_pack is only counted (the store
 * passes stored bytes through unchanged; see the report printed at exit with FUZZ_STORE_STATS=1).
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>
#include <unistr.h>

#include "common/error.h"
#include "common/log.h"
#include "proto/proto.h"
#include "store/store.h"

/* ---- input reader ---- */

struct rd {
  const uint8_t *p;
  size_t n;
};

static uint8_t rd_u8(struct rd *r) {
  if (r->n == 0)
    return 0;
  r->n--;
  return *r->p++;
}

static uint64_t rd_raw(struct rd *r, size_t k) {
  uint64_t v = 0;
  for (size_t i = 0; i < k; i++)
    v = (v << 8) | rd_u8(r);
  return v;
}

/* An int64 biased to edge values. */
static int64_t rd_i64(struct rd *r) {
  static const int64_t edge[] = {0,
                                 1,
                                 -1,
                                 2,
                                 INT64_MAX,
                                 INT64_MIN,
                                 INT64_MAX - 1,
                                 INT64_MIN + 1,
                                 INT32_MAX,
                                 (int64_t)INT32_MAX + 1,
                                 INT32_MIN,
                                 (int64_t)UINT32_MAX,
                                 (int64_t)UINT32_MAX + 1,
                                 INT64_C(1) << 53,
                                 (INT64_C(1) << 53) + 1,
                                 INT64_C(1700000000000)};
  uint8_t sel = rd_u8(r);
  switch (sel & 3) {
  case 0:
    return edge[(sel >> 2) % (sizeof edge / sizeof edge[0])];
  case 1:
    return (int64_t)(sel >> 2);
  case 2:
    return (int64_t)(int16_t)rd_raw(r, 2);
  default:
    return (int64_t)rd_raw(r, 8);
  }
}

static int64_t rd_pos(struct rd *r) { /* > 0 */
  int64_t v = rd_i64(r);
  if (v == INT64_MIN)
    return INT64_MAX;
  if (v < 0)
    v = -v;
  return v ? v : 1;
}

/* A byte string: length (1 byte, or 2 when `big`) then that many bytes (fewer at the end). */
static size_t rd_bytes(struct rd *r, int big, const uint8_t **out) {
  size_t len = big ? (size_t)rd_raw(r, 2) % 8193 : rd_u8(r);
  if (len > r->n)
    len = r->n;
  *out = r->p;
  r->p += len;
  r->n -= len;
  return len;
}

/* ---- fixture ---- */

static void *be;           /* store_sqlite_ops state */
static sqlite3 *aux;       /* the second connection the corrupt rows come from */
static char dbdir[64], dbpath[96];
static int64_t alice_id, bob_id, fixture_chat;
static const char fixture_slug[] = "fixture";

static int dirty;          /* this iteration wrote a string that is not NUL-free UTF-8 */
static unsigned long n_null_json, n_bad_utf8_out, n_iter;

static void stats_at_exit(void) {
  if (getenv("FUZZ_STORE_STATS"))
    fprintf(stderr,
            "fuzz_store: %lu iterations; json_pack NULL on corrupt rows: %lu; invalid UTF-8 strings "
            "returned by the store: %lu\n",
            n_iter, n_null_json, n_bad_utf8_out);
}

static void cleanup_at_exit(void) {
  if (aux)
    sqlite3_close(aux);
  if (be)
    store_sqlite_ops.close(be);
  char p[128];
  static const char *const sfx[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
    unlink(p);
  }
  rmdir(dbdir);
}

static int run(struct store_req *req) {
  int err = store_sqlite_ops.begin(be);
  assert(err == 0);
  err = store_sqlite_ops.savepoint(be);
  assert(err == 0);
  req->status = store_sqlite_ops.exec(be, req);
  err = store_sqlite_ops.release(be, req->status != 0);
  assert(err == 0);
  err = store_sqlite_ops.commit(be);
  assert(err == 0);
  return req->status;
}

static int64_t make_user(const char *name) {
  struct store_req *r = store_req_new(STORE_USER_CREATE);
  snprintf(r->in.user.username, sizeof r->in.user.username, "%s", name);
  r->in.pwhash = strdup("x");
  r->in.now = 1000;
  int rc = run(r);
  assert(rc == 0);
  int64_t id = r->out.user.id;
  store_req_free(r);
  return id;
}

static void aux_exec(const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(aux, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "fuzz_store: %s: %s\n", sql, msg ? msg : "?");
    abort();
  }
}

static void setup(void) {
  log_set_level(LOG_ERROR);
  snprintf(dbdir, sizeof dbdir, "/tmp/parley-fuzz-store-XXXXXX");
  if (mkdtemp(dbdir) == NULL)
    abort();
  snprintf(dbpath, sizeof dbpath, "%s/db.sqlite", dbdir);
  if (store_sqlite_ops.open(&be, dbpath, STORE_DURABILITY_NORMAL) != 0)
    abort();
  atexit(cleanup_at_exit);
  atexit(stats_at_exit);
  alice_id = make_user("alice");
  bob_id = make_user("bob");

  struct store_req *r = store_req_new(STORE_CHAT_CREATE);
  r->in.user_id = alice_id;
  r->in.title = strdup("Fixture");
  snprintf(r->in.slug, sizeof r->in.slug, "%s", fixture_slug);
  r->in.now = 2000;
  int rc = run(r);
  assert(rc == 0);
  fixture_chat = r->out.chat.id;
  store_req_free(r);
  r = store_req_new(STORE_CHAT_JOIN);
  r->in.user_id = bob_id;
  snprintf(r->in.slug, sizeof r->in.slug, "%s", fixture_slug);
  r->in.now = 3000;
  /* The fixture is private: bob gets in by an invitation written below when the input wants. */
  (void)run(r);
  store_req_free(r);

  if (sqlite3_open_v2(dbpath, &aux, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    abort();
  sqlite3_busy_timeout(aux, 5000);
  /* Only the rows this target writes are deleted later, explicitly: no cascades wanted. */
  aux_exec("PRAGMA foreign_keys = OFF");
}

/* ---- writing the rows ---- */

static sqlite3_stmt *prep(const char *sql) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(aux, sql, -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "fuzz_store: prepare %s: %s\n", sql, sqlite3_errmsg(aux));
    abort();
  }
  return st;
}

static void note_text(const uint8_t *s, size_t n) {
  if (memchr(s, 0, n) != NULL || u8_check(s, n) != NULL)
    dirty = 1;
}

/* Binds bytes as TEXT, or as a BLOB when `blob` (a TEXT column keeps a blob as it is). */
static void bind_bytes(sqlite3_stmt *st, int i, const uint8_t *s, size_t n, int blob) {
  note_text(s, n);
  if (blob)
    sqlite3_bind_blob(st, i, s, (int)n, SQLITE_TRANSIENT);
  else
    sqlite3_bind_text(st, i, (const char *)s, (int)n, SQLITE_TRANSIENT);
}

/* Steps once; a constraint failure (the schema refused the row) is fine, anything else is not. */
static int step(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW)
    return 1;
  if ((rc & 0xff) == SQLITE_CONSTRAINT)
    return 0;
  fprintf(stderr, "fuzz_store: write: %s\n", sqlite3_errmsg(aux));
  abort();
}

#define MAX_USERS 4
struct world {
  int64_t users[2 + MAX_USERS];
  size_t n_users;
  int64_t chat;         /* the fuzzed chat, 0 if its row was refused */
  char slug[STORE_SLUG_MAX + 1];
  int slug_usable;      /* the slug fits in.slug and has no NUL */
  int64_t now, before, since;
  int limit;
  size_t viewer;        /* index in users of the second viewer */
};

static void write_rows(struct rd *r, struct world *w) {
  const uint8_t *s;
  size_t n;
  uint8_t flags = rd_u8(r);
  sqlite3_stmt *st;

  w->users[0] = alice_id;
  w->users[1] = bob_id;
  w->n_users = 2;

  aux_exec("BEGIN IMMEDIATE");

  /* Users with odd names. */
  st = prep("INSERT INTO users(username, display_name, pwhash, created_at)"
            " VALUES (?1, ?2, 'x', ?3)");
  for (size_t k = rd_u8(r) % (MAX_USERS + 1); k > 0; k--) {
    uint8_t f = rd_u8(r);
    n = rd_bytes(r, 0, &s);
    bind_bytes(st, 1, s, n, f & 1);
    n = rd_bytes(r, 0, &s);
    bind_bytes(st, 2, s, n, f & 2);
    sqlite3_bind_int64(st, 3, rd_i64(r));
    if (step(st))
      w->users[w->n_users++] = sqlite3_last_insert_rowid(aux);
  }
  sqlite3_finalize(st);

  /* A second chat with odd columns. */
  st = prep("INSERT INTO chats(slug, title, is_public, max_participants, owner_id, created_at,"
            " last_activity, last_seq, invite_policy, archived) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
            " ?7, ?8, ?9, ?10)");
  {
    uint8_t f = rd_u8(r);
    n = rd_bytes(r, 0, &s);
    bind_bytes(st, 1, s, n, f & 1);
    w->slug_usable = n >= 1 && n <= STORE_SLUG_MAX && memchr(s, 0, n) == NULL && !(f & 1);
    if (w->slug_usable) {
      memcpy(w->slug, s, n);
      w->slug[n] = '\0';
    }
    n = rd_bytes(r, 1, &s);
    bind_bytes(st, 2, s, n, f & 2);
    sqlite3_bind_int(st, 3, (f >> 2) & 1);
    int64_t cap = rd_i64(r);
    sqlite3_bind_int64(st, 4, cap < 0 ? -(cap + 1) : cap);
    sqlite3_bind_int64(st, 5, w->users[rd_u8(r) % w->n_users]);
    sqlite3_bind_int64(st, 6, rd_i64(r));
    sqlite3_bind_int64(st, 7, rd_i64(r));
    int64_t ls = rd_i64(r);
    sqlite3_bind_int64(st, 8, ls < 0 ? -(ls + 1) : ls);
    sqlite3_bind_int(st, 9, (f >> 3) % 3);
    sqlite3_bind_int(st, 10, (f >> 5) & 1);
    w->chat = step(st) ? sqlite3_last_insert_rowid(aux) : 0;
  }
  sqlite3_finalize(st);

  /* Participants of the second chat (alice always, so that CHAT_LIST shows it). */
  static const char *const roles[] = {"owner", "admin", "member"};
  if (w->chat) {
    st = prep("INSERT OR IGNORE INTO participants(chat_id, user_id, role, joined_at)"
              " VALUES (?1, ?2, ?3, ?4)");
    for (size_t i = 0; i < w->n_users; i++) {
      uint8_t f = rd_u8(r);
      if (i > 0 && (f & 4))
        continue;
      sqlite3_bind_int64(st, 1, w->chat);
      sqlite3_bind_int64(st, 2, w->users[i]);
      sqlite3_bind_text(st, 3, roles[f % 3], -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 4, rd_i64(r));
      step(st);
    }
    sqlite3_finalize(st);
    if (flags & 1) { /* the trigger-kept counter, overwritten with anything */
      st = prep("UPDATE chats SET participant_count = ?2 WHERE id = ?1");
      sqlite3_bind_int64(st, 1, w->chat);
      sqlite3_bind_int64(st, 2, rd_i64(r));
      step(st);
      sqlite3_finalize(st);
    }
  }
  if (flags & 2) { /* bob into the fixture chat, so that his views have something */
    st = prep("INSERT OR IGNORE INTO participants(chat_id, user_id, role, joined_at)"
              " VALUES (?1, ?2, 'member', ?3)");
    sqlite3_bind_int64(st, 1, fixture_chat);
    sqlite3_bind_int64(st, 2, bob_id);
    sqlite3_bind_int64(st, 3, rd_i64(r));
    step(st);
    sqlite3_finalize(st);
  }

  /* Messages, in the fixture chat or the second one. */
  st = prep("INSERT OR IGNORE INTO messages(chat_id, seq, author_id, body, client_msg_id,"
            " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  for (size_t k = rd_u8(r) % 9; k > 0; k--) {
    uint8_t f = rd_u8(r);
    int64_t chat = (f & 1) && w->chat ? w->chat : fixture_chat;
    sqlite3_bind_int64(st, 1, chat);
    sqlite3_bind_int64(st, 2, (f & 2) ? (int64_t)(k) : rd_pos(r));
    sqlite3_bind_int64(st, 3, w->users[rd_u8(r) % w->n_users]);
    n = rd_bytes(r, 1, &s);
    bind_bytes(st, 4, s, n, f & 4);
    if (f & 8) {
      n = rd_bytes(r, 0, &s);
      bind_bytes(st, 5, s, n, f & 16);
    } /* else NULL: no clientMsgId */
    sqlite3_bind_int64(st, 6, rd_i64(r));
    step(st);
  }
  sqlite3_finalize(st);
  /* last_seq of the fixture: the newest message, or anything (CHAT_LIST joins on it). */
  st = prep("UPDATE chats SET last_seq = CASE WHEN ?2 THEN ?3 ELSE"
            " (SELECT coalesce(max(seq), 0) FROM messages WHERE chat_id = ?1) END WHERE id = ?1");
  sqlite3_bind_int64(st, 1, fixture_chat);
  sqlite3_bind_int(st, 2, (flags >> 2) & 1);
  {
    int64_t ls = rd_i64(r);
    sqlite3_bind_int64(st, 3, ls < 0 ? -(ls + 1) : ls);
  }
  step(st);
  sqlite3_finalize(st);

  /* Read markers of alice and bob. */
  st = prep("INSERT OR REPLACE INTO read_markers(chat_id, user_id, seq, updated_at)"
            " VALUES (?1, ?2, ?3, 0)");
  for (int k = 0; k < 2; k++) {
    int64_t seq = rd_i64(r);
    sqlite3_bind_int64(st, 1, (rd_u8(r) & 1) && w->chat ? w->chat : fixture_chat);
    sqlite3_bind_int64(st, 2, k ? bob_id : alice_id);
    sqlite3_bind_int64(st, 3, seq < 0 ? -(seq + 1) : seq);
    step(st);
  }
  sqlite3_finalize(st);

  /* Invitations with any status and expiry. */
  st = prep("INSERT OR IGNORE INTO invitations(chat_id, from_id, to_id, status, created_at,"
            " expires_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)");
  for (size_t k = rd_u8(r) % 6; k > 0; k--) {
    uint8_t f = rd_u8(r);
    int64_t created = rd_i64(r), delta = rd_pos(r);
    int64_t expires = created > INT64_MAX - delta ? INT64_MAX : created + delta;
    if (created == INT64_MAX)
      created--;
    sqlite3_bind_int64(st, 1, (f & 1) && w->chat ? w->chat : fixture_chat);
    sqlite3_bind_int64(st, 2, w->users[rd_u8(r) % w->n_users]);
    sqlite3_bind_int64(st, 3, w->users[rd_u8(r) % w->n_users]);
    sqlite3_bind_int(st, 4, (f >> 1) % 5);
    sqlite3_bind_int64(st, 5, created);
    sqlite3_bind_int64(st, 6, expires);
    step(st);
  }
  sqlite3_finalize(st);

  aux_exec("COMMIT");

  w->now = rd_i64(r);
  w->before = rd_i64(r);
  if (w->before < 0)
    w->before = 0;
  w->since = rd_i64(r);
  if (w->since < 0)
    w->since = 0;
  w->limit = 1 + (int)(rd_raw(r, 2) % STORE_LIMIT_MAX);
  w->viewer = rd_u8(r) % w->n_users;
}

static void delete_rows(void) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "BEGIN IMMEDIATE;"
           "DELETE FROM messages; DELETE FROM invitations; DELETE FROM read_markers;"
           "DELETE FROM participants WHERE NOT (chat_id = %lld AND user_id = %lld);"
           "DELETE FROM chats WHERE id <> %lld;"
           "DELETE FROM users WHERE id NOT IN (%lld, %lld);"
           "UPDATE chats SET last_seq = 0, participant_count = 1 WHERE id = %lld;"
           "COMMIT",
           (long long)fixture_chat, (long long)alice_id, (long long)fixture_chat,
           (long long)alice_id, (long long)bob_id, (long long)fixture_chat);
  aux_exec(sql);
}

/* ---- reading and encoding ---- */

static void check_out_str(const char *s) {
  if (s == NULL)
    return;
  if (u8_check((const uint8_t *)s, strlen(s)) != NULL) {
    n_bad_utf8_out++;
    if (!dirty) {
      /* Every stored string was valid UTF-8: the store itself broke one. */
      fprintf(stderr, "fuzz_store: the store returned invalid UTF-8 from valid rows: \"%s\"\n", s);
#ifndef FUZZ_SKIP_KNOWN
      abort();
#endif
    }
  }
}

static void check_user(const struct store_user *u) {
  check_out_str(u->username);
  check_out_str(u->display_name);
}

static void check_msg(const struct store_msg *m) {
  check_user(&m->author);
  check_out_str(m->body);
  check_out_str(m->client_msg_id);
}

static void check_chat(const struct store_chat *c) {
  check_out_str(c->slug);
  check_out_str(c->title);
}

static void check_invite(const struct store_invite *inv) {
  check_out_str(inv->chat_slug);
  check_out_str(inv->chat_title);
  check_user(&inv->from);
  check_user(&inv->to);
}

/* Dumps and frees `o`; a NULL on rows the fuzzer kept valid is a failure. */
static void emit(json_t *o, const char *what) {
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  if (s == NULL) {
    n_null_json++;
    if (!dirty) {
      fprintf(stderr, "fuzz_store: %s: no JSON from valid rows\n", what);
#ifndef FUZZ_SKIP_KNOWN
      abort();
#endif
    }
  }
  free(s);
  json_decref(o);
}

static void read_chat_list(int64_t user, int64_t now) {
  struct store_req *r = store_req_new(STORE_CHAT_LIST);
  r->in.user_id = user;
  r->in.now = now;
  if (run(r) == 0) {
    for (size_t i = 0; i < r->out.n_chats; i++) {
      check_chat(&r->out.chats[i]);
      emit(proto_chat_json(&r->out.chats[i]), "chat.list chat");
      if (r->out.last_msgs[i].seq != 0) {
        check_msg(&r->out.last_msgs[i]);
        emit(proto_msg_json(&r->out.last_msgs[i], r->out.chats[i].slug), "chat.list lastMsg");
      }
      assert(r->out.unread[i] >= 0);
    }
    for (size_t i = 0; i < r->out.n_invites; i++) {
      check_invite(&r->out.invites[i]);
      emit(proto_invite_json(&r->out.invites[i]), "chat.list invite");
    }
  }
  store_req_free(r);
}

static void read_invite_list(int64_t user, int64_t now) {
  struct store_req *r = store_req_new(STORE_INVITE_LIST);
  r->in.user_id = user;
  r->in.now = now;
  if (run(r) == 0) {
    assert(r->out.n_invites <= STORE_LIMIT_MAX);
    for (size_t i = 0; i < r->out.n_invites; i++) {
      check_invite(&r->out.invites[i]);
      emit(proto_invite_json(&r->out.invites[i]), "invite.list");
    }
  }
  store_req_free(r);
}

static void read_msgs(enum store_op op, int64_t user, const char *slug, const struct world *w) {
  struct store_req *r = store_req_new(op);
  r->in.user_id = user;
  snprintf(r->in.slug, sizeof r->in.slug, "%s", slug);
  r->in.now = w->now;
  r->in.before = w->before;
  r->in.since = w->since;
  r->in.limit = w->limit;
  if (run(r) == 0) {
    assert(r->out.n_msgs <= (size_t)w->limit);
    check_chat(&r->out.chat);
    emit(proto_chat_json(&r->out.chat), "msg chat");
    for (size_t i = 0; i < r->out.n_msgs; i++) {
      if (i > 0)
        assert(r->out.msgs[i - 1].seq < r->out.msgs[i].seq); /* oldest first */
      check_msg(&r->out.msgs[i]);
      emit(proto_msg_json(&r->out.msgs[i], r->out.chat.slug), "msg");
    }
  }
  store_req_free(r);
}

static void read_members(int64_t user, const char *slug) {
  struct store_req *r = store_req_new(STORE_CHAT_MEMBERS);
  r->in.user_id = user;
  snprintf(r->in.slug, sizeof r->in.slug, "%s", slug);
  if (run(r) == 0) {
    check_chat(&r->out.chat);
    for (size_t i = 0; i < r->out.n_members; i++) {
      check_user(&r->out.members[i].user);
      emit(proto_member_json(&r->out.members[i]), "member");
    }
  }
  store_req_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  struct rd r = {data, size};
  struct world w;

  if (!ready) {
    setup();
    ready = 1;
  }
  n_iter++;
  memset(&w, 0, sizeof w);
  dirty = 0;
  write_rows(&r, &w);

  int64_t viewers[2] = {alice_id, w.users[w.viewer]};
  for (int v = 0; v < 2; v++) {
    if (v == 1 && viewers[1] == alice_id)
      break;
    read_chat_list(viewers[v], w.now);
    read_invite_list(viewers[v], w.now);
    for (int c = 0; c < 2; c++) {
      const char *slug = c == 0 ? fixture_slug : w.slug;
      if (c == 1 && !(w.chat && w.slug_usable))
        break;
      read_msgs(STORE_MSG_HISTORY, viewers[v], slug, &w);
      read_msgs(STORE_MSG_SINCE, viewers[v], slug, &w);
      read_members(viewers[v], slug);
    }
  }

  delete_rows();
  return 0;
}
