/* store_rules_bots.c - the rules of the bot ops of issue 19, for every backend, in the SQL both
 * dialects share (store_prims.sql) plus the backends' own session ops.
 *
 * A bot is a users row with bot = 1 and a bots row (owner, webhook, deleted). Its token is a
 * session like a person's (only the hash is stored, sessions.token_hash), with a far expiry; so
 * rotating it or deleting the bot is "end every session", the same statement that a password
 * change runs (the backend's PASSWORD_SET op, with a password hash that no password verifies).
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/store_rules.h"

#define BOTS_TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))
#define BOTS_NO_PASSWORD "!" /* users.pwhash of a bot: not an argon2 hash, verifies nothing */

/* The bot columns: the bot (0-5), its webhook (6-7), its owner (8-13). */
#define BOTS_COLS                                                                                  \
  "SELECT u.id, u.username, u.display_name, u.created_at, coalesce(u.avatar, ''), u.bot,"          \
  " b.webhook_url, b.webhook_secret,"                                                              \
  " o.id, o.username, o.display_name, o.created_at, coalesce(o.avatar, ''), o.bot"                 \
  " FROM bots b JOIN users u ON u.id = b.user_id JOIN users o ON o.id = b.owner_id"

static void bots__user(const struct store_res *r, int row, int col, struct store_user *u) {
  const char *s;
  memset(u, 0, sizeof *u);
  u->id = store_res_i(r, row, col);
  s = store_res_s(r, row, col + 1);
  store_copy_text(u->username, sizeof u->username, s, s ? strlen(s) : 0);
  s = store_res_s(r, row, col + 2);
  store_copy_text(u->display_name, sizeof u->display_name, s, s ? strlen(s) : 0);
  u->created_at = store_res_i(r, row, col + 3);
  s = store_res_s(r, row, col + 4);
  store_copy_text(u->avatar, sizeof u->avatar, s, s ? strlen(s) : 0);
  u->bot = store_res_i(r, row, col + 5) != 0;
}

/* Appends the rows of r (BOTS_COLS) to out.bots. */
static int bots__take(struct store_req *req, const struct store_res *r) {
  struct store_bot *grown;
  if (r->rows == 0)
    return 0;
  grown = realloc(req->out.bots, (req->out.n_bots + (size_t)r->rows) * sizeof *grown);
  if (grown == NULL)
    return PARLEY_EUNAVAILABLE;
  req->out.bots = grown;
  for (int i = 0; i < r->rows; i++) {
    struct store_bot *b = &grown[req->out.n_bots];
    const char *url = store_res_s(r, i, 6), *secret = store_res_s(r, i, 7);
    memset(b, 0, sizeof *b);
    bots__user(r, i, 0, &b->user);
    bots__user(r, i, 8, &b->owner);
    b->webhook_url = url ? strdup(url) : NULL;
    b->webhook_secret = strdup(secret ? secret : "");
    req->out.n_bots++;
    if ((url && b->webhook_url == NULL) || b->webhook_secret == NULL)
      return PARLEY_EUNAVAILABLE;
  }
  return 0;
}

/* PARLEY_EFORBIDDEN when in.user_id is a bot: bots cannot manage bots. */
static int bots__person(const struct store_prims *p, void *be, struct store_req *req) {
  static const char sql[] = "SELECT bot FROM users WHERE id = $1";
  struct store_arg a[] = {STORE_I(req->in.user_id)};
  struct store_res r = {0};
  int err = p->sql(be, sql, a, 1, &r);
  if (err == 0 && (r.rows != 1 || store_res_i(&r, 0, 0) != 0))
    err = store_fail(req, PARLEY_EFORBIDDEN, "bots cannot manage bots");
  store_res_free(&r);
  return err;
}

/* The caller's bot in.target into out.bots[0] and its id into *id: PARLEY_ENOT_FOUND for none,
 * another person's, or a deleted one (the same answer: nobody learns whose a bot is). */
static int bots__mine(const struct store_prims *p, void *be, struct store_req *req, int64_t *id) {
  static const char sql[] =
      BOTS_COLS " WHERE u.username = $1 AND b.owner_id = $2 AND b.deleted = 0";
  struct store_arg a[] = {STORE_S(req->in.target), STORE_I(req->in.user_id)};
  struct store_res r = {0};
  int err;
  if (!BOTS_TERMINATED(req->in.target))
    return PARLEY_EBAD_REQUEST;
  err = bots__person(p, be, req);
  if (err == 0)
    err = p->sql(be, sql, a, 2, &r);
  if (err == 0 && r.rows != 1)
    err = store_fail(req, PARLEY_ENOT_FOUND, "you have no bot named %s", req->in.target);
  if (err == 0)
    err = bots__take(req, &r);
  store_res_free(&r);
  if (err == 0)
    *id = req->out.bots[0].user.id;
  return err;
}

/* Reloads out.bots[0] (bot id) after a change. */
static int bots__reload(const struct store_prims *p, void *be, struct store_req *req, int64_t id) {
  static const char sql[] = BOTS_COLS " WHERE b.user_id = $1";
  struct store_arg a[] = {STORE_I(id)};
  struct store_res r = {0};
  int err;
  for (size_t i = 0; i < req->out.n_bots; i++) {
    free(req->out.bots[i].webhook_url);
    free(req->out.bots[i].webhook_secret);
  }
  req->out.n_bots = 0;
  err = p->sql(be, sql, a, 1, &r);
  if (err == 0 && r.rows != 1)
    err = PARLEY_EINTERNAL;
  if (err == 0)
    err = bots__take(req, &r);
  store_res_free(&r);
  return err;
}

/* Ends every session of bot `id` (their hashes into out.hashes, for app/ to close the sockets)
 * through the backend's PASSWORD_SET, as the bot, keeping only the session of in.token_hash
 * (which does not exist yet, or is zero: none is kept). */
static int bots__sessions_end(const struct store_prims *p, void *be, struct store_req *req,
                              int64_t id) {
  int64_t owner = req->in.user_id;
  char *pw = req->in.pwhash;
  int err;
  req->in.user_id = id;
  req->in.pwhash = BOTS_NO_PASSWORD;
  err = p->op[STORE_PASSWORD_SET](be, req);
  req->in.user_id = owner;
  req->in.pwhash = pw;
  return err;
}

static int bots__session_start(const struct store_prims *p, void *be, struct store_req *req,
                               int64_t id) {
  int64_t owner = req->in.user_id;
  int err;
  if (req->in.expires_at <= req->in.now)
    return PARLEY_EBAD_REQUEST;
  req->in.user_id = id;
  err = p->op[STORE_SESSION_CREATE](be, req);
  req->in.user_id = owner;
  return err;
}

static int bots_create(const struct store_prims *p, void *be, struct store_req *req) {
  static const char count[] = "SELECT count(*) FROM bots WHERE owner_id = $1 AND deleted = 0";
  static const char mark[] = "UPDATE users SET bot = 1 WHERE id = $1";
  static const char row[] = "INSERT INTO bots(user_id, owner_id, webhook_url, webhook_secret,"
                            " deleted, created_at) VALUES ($1, $2, $3, $4, 0, $5)";
  struct store_arg a[] = {STORE_I(req->in.user_id)};
  struct store_res r = {0};
  const char *display;
  int64_t id = 0;
  int err;

  if (!BOTS_TERMINATED(req->in.user.username) || !BOTS_TERMINATED(req->in.user.display_name) ||
      req->in.user.username[0] == '\0' || req->in.webhook_secret == NULL)
    return PARLEY_EBAD_REQUEST;
  err = bots__person(p, be, req);
  if (err == 0)
    err = p->sql(be, count, a, 1, &r);
  if (err == 0 && store_res_i(&r, 0, 0) >= STORE_BOTS_MAX)
    err = store_fail(req, PARLEY_ECONFLICT, "a person may own at most %d bots", STORE_BOTS_MAX);
  store_res_free(&r);
  if (err)
    return err;
  free(req->in.pwhash);
  if ((req->in.pwhash = strdup(BOTS_NO_PASSWORD)) == NULL)
    return PARLEY_EUNAVAILABLE;
  display = req->in.user.display_name[0] ? req->in.user.display_name : req->in.user.username;
  err = p->user_insert(be, req, display, &id);
  if (err == PARLEY_ECONFLICT)
    return store_fail(req, err, "that username is taken");
  if (err == 0)
    err = store_user_words(p, be, id, display);
  if (err == 0) {
    struct store_arg m[] = {STORE_I(id)};
    err = p->sql(be, mark, m, 1, NULL);
  }
  if (err == 0) {
    struct store_arg b[] = {STORE_I(id), STORE_I(req->in.user_id), STORE_S(req->in.webhook_url),
                            STORE_S(req->in.webhook_secret), STORE_I(req->in.now)};
    err = p->sql(be, row, b, 5, NULL);
  }
  if (err == 0)
    err = bots__session_start(p, be, req, id);
  return err ? err : bots__reload(p, be, req, id);
}

static int bots_list(const struct store_prims *p, void *be, struct store_req *req) {
  static const char sql[] =
      BOTS_COLS " WHERE b.owner_id = $1 AND b.deleted = 0 ORDER BY b.created_at, b.user_id";
  struct store_arg a[] = {STORE_I(req->in.user_id)};
  struct store_res r = {0};
  int err = bots__person(p, be, req);
  if (err == 0)
    err = p->sql(be, sql, a, 1, &r);
  if (err == 0)
    err = bots__take(req, &r);
  store_res_free(&r);
  return err;
}

static int bots_token(const struct store_prims *p, void *be, struct store_req *req) {
  int64_t id = 0;
  int err = bots__mine(p, be, req, &id);
  if (err == 0)
    err = bots__sessions_end(p, be, req, id);
  if (err == 0)
    err = bots__session_start(p, be, req, id);
  return err;
}

static int bots_update(const struct store_prims *p, void *be, struct store_req *req) {
  static const char hook[] = "UPDATE bots SET webhook_url = $2 WHERE user_id = $1";
  int64_t id = 0;
  int err = bots__mine(p, be, req, &id);
  if (err == 0 && (req->in.update_mask & STORE_UPD_BOT_HOOK)) {
    struct store_arg a[] = {STORE_I(id), STORE_S(req->in.webhook_url)};
    err = p->sql(be, hook, a, 2, NULL);
  }
  if (err == 0 && (req->in.update_mask & STORE_UPD_BOT_NAME)) {
    /* A new name is USER_UPDATE's for the bot: search words, and who must be told. */
    int64_t owner = req->in.user_id;
    req->op = STORE_USER_UPDATE;
    req->in.user_id = id;
    if (store_rules_live_exec(p, be, req, &err) != 0)
      err = PARLEY_EINTERNAL;
    req->op = STORE_BOT_UPDATE;
    req->in.user_id = owner;
  }
  return err ? err : bots__reload(p, be, req, id);
}

static int bots_secret(const struct store_prims *p, void *be, struct store_req *req) {
  static const char sql[] = "UPDATE bots SET webhook_secret = $2 WHERE user_id = $1";
  int64_t id = 0;
  int err;
  if (req->in.webhook_secret == NULL)
    return PARLEY_EBAD_REQUEST;
  err = bots__mine(p, be, req, &id);
  if (err == 0) {
    struct store_arg a[] = {STORE_I(id), STORE_S(req->in.webhook_secret)};
    err = p->sql(be, sql, a, 2, NULL);
  }
  return err ? err : bots__reload(p, be, req, id);
}

static int bots_delete(const struct store_prims *p, void *be, struct store_req *req) {
  static const char gone[] = "UPDATE bots SET deleted = 1, webhook_url = NULL WHERE user_id = $1";
  static const char chats[] = "SELECT c.slug FROM participants p JOIN chats c ON c.id = p.chat_id"
                              " WHERE p.user_id = $1 AND c.archived = 0 ORDER BY c.id";
  struct store_res r = {0};
  int64_t id = 0;
  int err = bots__mine(p, be, req, &id);
  if (err)
    return err;
  memset(req->in.token_hash, 0, sizeof req->in.token_hash);
  err = bots__sessions_end(p, be, req, id);
  if (err == 0) {
    struct store_arg a[] = {STORE_I(id)};
    err = p->sql(be, gone, a, 1, NULL);
    if (err == 0)
      err = p->sql(be, chats, a, 1, &r);
  }
  if (err == 0 && r.rows > 0) {
    req->out.chats = calloc((size_t)r.rows, sizeof *req->out.chats);
    if (req->out.chats == NULL)
      err = PARLEY_EUNAVAILABLE;
    for (int i = 0; err == 0 && i < r.rows; i++) {
      const char *s = store_res_s(&r, i, 0);
      store_copy_text(req->out.chats[i].slug, sizeof req->out.chats[i].slug, s, s ? strlen(s) : 0);
      req->out.n_chats++;
    }
  }
  store_res_free(&r);
  return err;
}

static int bots_hooks(const struct store_prims *p, void *be, struct store_req *req) {
  static const char sql[] =
      BOTS_COLS " WHERE b.deleted = 0 AND b.webhook_url IS NOT NULL AND b.user_id <> $3"
                " AND (b.user_id IN (SELECT mm.user_id FROM message_mentions mm"
                "                    WHERE mm.chat_id = $1 AND mm.seq = $2)"
                "   OR EXISTS (SELECT 1 FROM chats c JOIN participants p ON p.chat_id = c.id"
                "              WHERE c.id = $1 AND c.kind = 'dm' AND p.user_id = b.user_id))"
                /* Only a participant now: one removed since the message learns nothing more of it. */
      " AND EXISTS (SELECT 1 FROM participants pp WHERE pp.chat_id = $1 AND pp.user_id = b.user_id)"
      " ORDER BY b.user_id";
  struct store_res r = {0};
  int err;
  if (!BOTS_TERMINATED(req->in.slug))
    return PARLEY_EBAD_REQUEST;
  err = store_chat_find(p, be, req, 0);
  if (err == 0)
    err = store_rules_chat_dm(p, be, req, &req->out.chat);
  if (err == 0) {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq),
                            STORE_I(req->in.user_id)};
    err = p->sql(be, sql, a, 3, &r);
  }
  if (err == 0)
    err = bots__take(req, &r);
  store_res_free(&r);
  return err;
}


int store_rules_bots_exec(const struct store_prims *p, void *be, struct store_req *req, int *err) {
  switch (req->op) {
  case STORE_BOT_CREATE:
    *err = bots_create(p, be, req);
    return 0;
  case STORE_BOT_LIST:
    *err = bots_list(p, be, req);
    return 0;
  case STORE_BOT_TOKEN:
    *err = bots_token(p, be, req);
    return 0;
  case STORE_BOT_UPDATE:
    *err = bots_update(p, be, req);
    return 0;
  case STORE_BOT_SECRET:
    *err = bots_secret(p, be, req);
    return 0;
  case STORE_BOT_DELETE:
    *err = bots_delete(p, be, req);
    return 0;
  case STORE_BOT_HOOKS:
    *err = bots_hooks(p, be, req);
    return 0;
  default:
    return 1;
  }
}
