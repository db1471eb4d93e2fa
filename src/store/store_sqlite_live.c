/* store_sqlite_live.c - the SQLite rows of issue 18: read markers of a chat's participants (the
 * live chat list), notification levels, the public directory, display names, passwords and
 * avatars. store_rules_live.c holds the rules; the statements are SQ_LIVE_STATEMENTS.
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/store_sqlite_int.h"

void sq__read_avatar(sqlite3_stmt *st, int col, struct store_user *u) {
  const unsigned char *t = sqlite3_column_text(st, col);
  store_copy_text(u->avatar, sizeof u->avatar, (const char *)t,
                  t ? (size_t)sqlite3_column_bytes(st, col) : 0);
  u->bot = sqlite3_column_int(st, col + 1) != 0; /* users.bot follows avatar in every query */
}

int sq__chat_readers(void *arg, struct store_req *req, int64_t chat_id, int64_t user_id,
                     const char *only, int64_t upto) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_READERS];
  size_t cap = 0;
  int err = 0;
  int rc;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  if (only)
    sqlite3_bind_text(st, 3, only, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 3);
  sqlite3_bind_int64(st, 4, upto);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (req->out.n_member_ids == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      int64_t *ids = realloc(req->out.member_ids, ncap * sizeof *ids);
      int64_t *reads = ids ? realloc(req->out.member_reads, ncap * sizeof *reads) : NULL;
      int64_t *ments = NULL;
      if (ids)
        req->out.member_ids = ids;
      if (reads)
        req->out.member_reads = reads;
      if (reads)
        ments = realloc(req->out.member_mentions, ncap * sizeof *ments);
      if (ments == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.member_mentions = ments;
      cap = ncap;
    }
    req->out.member_ids[req->out.n_member_ids] = sqlite3_column_int64(st, 0);
    /* Never below 0, even when rows written outside the server broke the tallies' order. */
    req->out.member_reads[req->out.n_member_ids] =
        sqlite3_column_int64(st, 1) < 0 ? 0 : sqlite3_column_int64(st, 1);
    req->out.member_mentions[req->out.n_member_ids++] = sqlite3_column_int64(st, 2);
  }
  if (rc != SQLITE_DONE)
    err = sq__err(be, rc, "chat readers");
cleanup:
  sqlite3_reset(st);
  return err;
}

int sq__notify_set(void *arg, int64_t chat_id, int64_t user_id, int level) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_NOTIFY_SET];
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  sqlite3_bind_int(st, 3, level);
  return sq__run(be, SQ_NOTIFY_SET);
}

int sq__notify_of(void *arg, int64_t chat_id, int64_t user_id, int *level) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_NOTIFY_OF];
  int rc;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  rc = sqlite3_step(st);
  *level = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq__err(be, rc, "notify level");
}

int sq__chats_browse(void *arg, struct store_req *req, const char *lo, size_t len, int64_t before,
                     int limit) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_BROWSE];
  int err = 0;
  int rc;
  req->out.chats = calloc((size_t)limit + 1, sizeof *req->out.chats);
  if (req->out.chats == NULL)
    return PARLEY_EUNAVAILABLE;
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_int64(st, 2, before);
  if (lo)
    sqlite3_bind_text(st, 3, lo, (int)len, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 3);
  sqlite3_bind_int(st, 4, limit + 1);
  if (req->in.slug[0]) /* the last chat of the previous page: ties of before after it */
    sqlite3_bind_text(st, 5, req->in.slug, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 5);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && req->out.n_chats <= (size_t)limit) {
    err = sq__read_chat(st, &req->out.chats[req->out.n_chats++]);
    if (err)
      break;
  }
  if (err == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
    err = sq__err(be, rc, "browse chats");
  sqlite3_reset(st);
  return err;
}

int sq__user_set_display(void *arg, int64_t user_id, const char *display) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_SET_DISPLAY];
  sqlite3_bind_int64(st, 1, user_id);
  sqlite3_bind_text(st, 2, display, -1, SQLITE_STATIC);
  return sq__run(be, SQ_USER_SET_DISPLAY);
}

int sq__user_words_delete(void *arg, int64_t user_id) {
  struct sq *be = arg;
  sqlite3_bind_int64(be->st[SQ_USER_WORDS_DELETE], 1, user_id);
  return sq__run(be, SQ_USER_WORDS_DELETE);
}

int sq__avatar_put(void *arg, const char *name, const unsigned char *data, size_t len,
                   int64_t now) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_AVATAR_PUT];
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, data, (int)len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now);
  return sq__run(be, SQ_AVATAR_PUT);
}

int sq__user_set_avatar(void *arg, int64_t user_id, const char *name, char *old) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_AVATAR_OF];
  int rc;
  sqlite3_bind_int64(st, 1, user_id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    store_copy_text(old, STORE_AVATAR_NAME_MAX + 1, (const char *)t,
                    t ? (size_t)sqlite3_column_bytes(st, 0) : 0);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW)
    return rc == SQLITE_DONE ? PARLEY_ENOT_FOUND : sq__err(be, rc, "avatar of");
  st = be->st[SQ_USER_SET_AVATAR];
  sqlite3_bind_int64(st, 1, user_id);
  if (name)
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 2);
  return sq__run(be, SQ_USER_SET_AVATAR);
}

int sq__avatar_gc(void *arg, const char *name) {
  struct sq *be = arg;
  sqlite3_bind_text(be->st[SQ_AVATAR_GC], 1, name, -1, SQLITE_STATIC);
  return sq__run(be, SQ_AVATAR_GC);
}

/* The new hash, and every other session of the user ends (their hashes come back so that app/
 * closes their sockets). */
int sq__password_set(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_PASSWORD_SET];
  size_t cap = 0;
  int err, rc;
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_text(st, 2, req->in.pwhash, -1, SQLITE_STATIC);
  err = sq__run(be, SQ_PASSWORD_SET);
  if (err)
    return err;
  st = be->st[SQ_SESSIONS_END];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_blob(st, 2, req->in.token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 0) != STORE_TOKEN_HASH_LEN)
      continue;
    if (req->out.n_hashes == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      void *h = realloc(req->out.hashes, ncap * sizeof *req->out.hashes);
      if (h == NULL) {
        err = PARLEY_EUNAVAILABLE;
        break;
      }
      req->out.hashes = h;
      cap = ncap;
    }
    memcpy(req->out.hashes[req->out.n_hashes++], sqlite3_column_blob(st, 0),
           STORE_TOKEN_HASH_LEN);
  }
  if (err == 0 && rc != SQLITE_DONE)
    err = sq__err(be, rc, "end sessions");
  sqlite3_reset(st);
  return err;
}

int sq__avatar_get(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_AVATAR_GET];
  int err = 0;
  int rc;
  sqlite3_bind_text(st, 1, req->in.query, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    req->out.data = malloc(n ? n : 1);
    if (req->out.data == NULL)
      err = PARLEY_EUNAVAILABLE;
    else if (n)
      memcpy(req->out.data, sqlite3_column_blob(st, 0), n);
    req->out.data_len = n;
  } else {
    err = rc == SQLITE_DONE ? PARLEY_ENOT_FOUND : sq__err(be, rc, "avatar");
  }
  sqlite3_reset(st);
  return err;
}
