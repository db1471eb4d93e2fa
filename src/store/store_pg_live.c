/* store_pg_live.c - the PostgreSQL rows of issue 18, as store_sqlite_live.c for SQLite: read
 * markers of a chat's participants (the live chat list), notification levels, the public
 * directory, display names, passwords and avatars. The rules are store_rules_live.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/store_pg_int.h"

void pg__read_avatar(const PGresult *r, int row, int col, struct store_user *u) {
  store_copy_text(u->avatar, sizeof u->avatar, PQgetvalue(r, row, col),
                  PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col));
  u->bot = pg__i64(r, row, col + 1) != 0; /* users.bot follows avatar in every query */
}

int pg__chat_readers(void *arg, struct store_req *req, int64_t chat_id, int64_t user_id,
                     const char *only, int64_t upto) {
  struct pgp p = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  pgp_text(&p, only);
  pgp_i64(&p, upto);
  err = pg__q(arg, PG_READERS, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  if (rows > 0) {
    req->out.member_ids = malloc(rows * sizeof *req->out.member_ids);
    req->out.member_reads = malloc(rows * sizeof *req->out.member_reads);
    req->out.member_mentions = malloc(rows * sizeof *req->out.member_mentions);
    if (req->out.member_ids == NULL || req->out.member_reads == NULL ||
        req->out.member_mentions == NULL) {
      PQclear(r);
      return PARLEY_EUNAVAILABLE; /* store.c frees whichever was allocated */
    }
  }
  for (size_t i = 0; i < rows; i++) {
    req->out.member_ids[i] = pg__i64(r, (int)i, 0);
    req->out.member_reads[i] = pg__i64(r, (int)i, 1) < 0 ? 0 : pg__i64(r, (int)i, 1); /* see sq */
    req->out.member_mentions[i] = pg__i64(r, (int)i, 2);
  }
  req->out.n_member_ids = rows;
  PQclear(r);
  return 0;
}

int pg__notify_set(void *arg, int64_t chat_id, int64_t user_id, int level) {
  struct pgp p = {0};
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  pgp_i64(&p, level);
  return pg__run(arg, PG_NOTIFY_SET, &p);
}

int pg__notify_of(void *arg, int64_t chat_id, int64_t user_id, int *level) {
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  err = pg__q(arg, PG_NOTIFY_OF, &p, &r);
  *level = err == 0 && PQntuples(r) == 1 ? pg__int(r, 0, 0) : 0;
  PQclear(r);
  return err;
}

int pg__chats_browse(void *arg, struct store_req *req, const char *lo, size_t len, int64_t before,
                     int limit) {
  struct pgp p = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;
  (void)len; /* lo is NUL-terminated */
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, before);
  pgp_text(&p, lo);
  pgp_i64(&p, limit + 1);
  pgp_text(&p, req->in.slug[0] ? req->in.slug : NULL); /* the previous page's last chat */
  err = pg__q(arg, PG_BROWSE, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  req->out.chats = calloc(rows ? rows : 1, sizeof *req->out.chats);
  if (req->out.chats == NULL) {
    PQclear(r);
    return PARLEY_EUNAVAILABLE;
  }
  for (size_t i = 0; i < rows && err == 0; i++) {
    req->out.n_chats = i + 1;
    err = pg__read_chat(r, (int)i, &req->out.chats[i]);
  }
  PQclear(r);
  return err;
}

int pg__user_set_display(void *arg, int64_t user_id, const char *display) {
  struct pgp p = {0};
  pgp_i64(&p, user_id);
  pgp_text(&p, display);
  return pg__run(arg, PG_USER_SET_DISPLAY, &p);
}

int pg__user_words_delete(void *arg, int64_t user_id) {
  struct pgp p = {0};
  pgp_i64(&p, user_id);
  return pg__run(arg, PG_USER_WORDS_DELETE, &p);
}

int pg__avatar_put(void *arg, const char *name, const unsigned char *data, size_t len,
                   int64_t now) {
  struct pgp p = {0};
  pgp_text(&p, name);
  pgp_bytes(&p, data, (int)len);
  pgp_i64(&p, now);
  return pg__run(arg, PG_AVATAR_PUT, &p);
}

int pg__user_set_avatar(void *arg, int64_t user_id, const char *name, char *old) {
  struct pgp p = {0}, q = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, user_id);
  err = pg__q(arg, PG_AVATAR_OF, &p, &r);
  if (err == 0 && PQntuples(r) != 1)
    err = PARLEY_ENOT_FOUND;
  if (err == 0)
    store_copy_text(old, STORE_AVATAR_NAME_MAX + 1, PQgetvalue(r, 0, 0),
                    (size_t)PQgetlength(r, 0, 0));
  PQclear(r);
  if (err)
    return err;
  pgp_i64(&q, user_id);
  pgp_text(&q, name);
  return pg__run(arg, PG_USER_SET_AVATAR, &q);
}

int pg__avatar_gc(void *arg, const char *name) {
  struct pgp p = {0};
  pgp_text(&p, name);
  return pg__run(arg, PG_AVATAR_GC, &p);
}

static int pg__hex_nibble(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int pg__password_set(void *arg, struct store_req *req) {
  struct pgp p = {0}, q = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;
  pgp_i64(&p, req->in.user_id);
  pgp_text(&p, req->in.pwhash);
  err = pg__run(arg, PG_PASSWORD_SET, &p);
  if (err)
    return err;
  pgp_i64(&q, req->in.user_id);
  pgp_bytes(&q, req->in.token_hash, STORE_TOKEN_HASH_LEN);
  err = pg__q(arg, PG_SESSIONS_END, &q, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  if (rows > 0 && (req->out.hashes = malloc(rows * sizeof *req->out.hashes)) == NULL) {
    PQclear(r);
    return PARLEY_EUNAVAILABLE;
  }
  for (size_t i = 0; i < rows; i++) {
    const char *hex = PQgetvalue(r, (int)i, 0);
    int ok = PQgetlength(r, (int)i, 0) == 2 * STORE_TOKEN_HASH_LEN;
    for (size_t k = 0; ok && k < STORE_TOKEN_HASH_LEN; k++) {
      int hi = pg__hex_nibble(hex[2 * k]), lo = pg__hex_nibble(hex[2 * k + 1]);
      ok = hi >= 0 && lo >= 0;
      req->out.hashes[req->out.n_hashes][k] = (uint8_t)(hi << 4 | (lo & 15));
    }
    if (ok)
      req->out.n_hashes++;
  }
  PQclear(r);
  return 0;
}

int pg__avatar_get(void *arg, struct store_req *req) {
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, req->in.query);
  err = pg__q(arg, PG_AVATAR_GET, &p, &r);
  if (err == 0 && PQntuples(r) != 1)
    err = PARLEY_ENOT_FOUND;
  if (err == 0) {
    size_t n = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 0), &n);
    if (b == NULL || (req->out.data = malloc(n ? n : 1)) == NULL)
      err = PARLEY_EUNAVAILABLE;
    else {
      memcpy(req->out.data, b, n);
      req->out.data_len = n;
    }
    PQfreemem(b);
  }
  PQclear(r);
  return err;
}
