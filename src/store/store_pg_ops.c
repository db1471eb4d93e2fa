/* store_pg_ops.c - the PostgreSQL backend's ops that are SQL alone (sessions, chat list, sends,
 * read markers, members, invitation lists, presence) and the rows of the other rules' ops, with the
 * table of primitives store_rules_exec() dispatches through (see store_rules.h).
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libpq-fe.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "core/acl.h"
#include "core/invite.h"
#include "store/migrations.h"
#include "store/store_pg_int.h"

/* ---- operations ---- */

static int pg__user_insert(void *arg, struct store_req *req, const char *display, int64_t *id) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, req->in.user.username);
  pgp_text(&p, display);
  pgp_text(&p, req->in.pwhash);
  pgp_i64(&p, req->in.now);
  err = pg__q(be, PG_USER_INSERT, &p, &r);
  if (err == 0 && PQntuples(r) != 1)
    err = PARLEY_ECONFLICT; /* ON CONFLICT DO NOTHING: the name is taken (maybe by another node) */
  if (err == 0)
    *id = pg__i64(r, 0, 0);
  PQclear(r);
  return err;
}
static int pg__user_word_insert(void *arg, int64_t user_id, const char *word) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_text(&p, word);
  pgp_i64(&p, user_id);
  return pg__run(be, PG_USER_WORD_INSERT, &p);
}
static int pg_user_by_name(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, req->in.user.username);
  err = pg__q(be, PG_USER_BY_NAME, &p, &r);
  if (err == 0) {
    if (PQntuples(r) == 1) {
      pg__read_user(r, 0, 0, &req->out.user);
      err = pg__dup(&req->out.pwhash, r, 0, 4);
      req->out.user.bot = pg__i64(r, 0, 5) != 0;
    } else {
      err = PARLEY_ENOT_FOUND;
    }
  }
  PQclear(r);
  return err;
}

static int pg_session_create(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_bytes(&p, req->in.token_hash, STORE_TOKEN_HASH_LEN);
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, req->in.expires_at);
  return pg__run(be, PG_SESSION_INSERT, &p);
}

static int pg_session_get(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_bytes(&p, req->in.token_hash, STORE_TOKEN_HASH_LEN);
  err = pg__q(be, PG_SESSION_GET, &p, &r);
  if (err == 0) {
    if (PQntuples(r) == 1 && pg__i64(r, 0, 0) > req->in.now) {
      req->out.expires_at = pg__i64(r, 0, 0);
      pg__read_user(r, 0, 1, &req->out.user);
      pg__read_avatar(r, 0, 5, &req->out.user);
    } else {
      err = PARLEY_EUNAUTHORIZED; /* unknown, or expired (left for a sweep: a lookup is a read) */
    }
  }
  PQclear(r);
  return err;
}

static int pg_session_delete(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_bytes(&p, req->in.token_hash, STORE_TOKEN_HASH_LEN);
  return pg__run(be, PG_SESSION_DELETE, &p);
}

/* Inserts the chat under `slug`. *chat_id is 0 if the slug was taken meanwhile (another node). */
static int pg__chat_insert(void *arg, struct store_req *req, const char *slug, int64_t *chat_id) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_text(&p, slug);
  pgp_text(&p, req->in.title);
  pgp_i64(&p, req->in.is_public != 0);
  pgp_i64(&p, req->in.max_participants);
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, req->in.now);
  err = pg__q(be, PG_CHAT_INSERT, &p, &r); /* an unknown owner fails the foreign key */
  *chat_id = err == 0 && PQntuples(r) == 1 ? pg__i64(r, 0, 0) : 0;
  PQclear(r);
  return err;
}

static int pg_chat_list(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0}, q = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;

  pgp_i64(&p, req->in.user_id);
  err = pg__q(be, PG_CHAT_LIST, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  if (rows > 0) {
    req->out.chats = calloc(rows, sizeof *req->out.chats);
    req->out.last_msgs = calloc(rows, sizeof *req->out.last_msgs);
    req->out.unread = calloc(rows, sizeof *req->out.unread);
    if (req->out.chats == NULL || req->out.last_msgs == NULL || req->out.unread == NULL) {
      PQclear(r);
      return PARLEY_EUNAVAILABLE; /* store.c frees whichever arrays were allocated */
    }
  }
  for (size_t i = 0; i < rows; i++) {
    int64_t marker;
    req->out.n_chats = i + 1;
    err = pg__read_chat(r, (int)i, &req->out.chats[i]);
    if (err)
      break;
    marker = pg__i64(r, (int)i, STORE_SQL_CHAT_NCOLS);
    /* seq is gap-free and messages are never deleted: unread is a subtraction. */
    req->out.unread[i] =
        req->out.chats[i].last_seq > marker ? req->out.chats[i].last_seq - marker : 0;
    req->out.chats[i].notify = (enum store_notify)pg__int(r, (int)i, STORE_SQL_CHAT_NCOLS + 1);
    err = pg__read_msg(r, (int)i, STORE_SQL_CHAT_NCOLS + 2, &req->out.last_msgs[i]);
    if (err)
      break;
  }
  PQclear(r);
  if (err)
    return err;
  pgp_i64(&q, req->in.user_id);
  pgp_i64(&q, req->in.now);
  pgp_i64(&q, STORE_LIMIT_MAX);
  return pg__invites_read(be, req, PG_INV_INCOMING, &q, STORE_LIMIT_MAX, NULL);
}

static int pg__removed(void *arg, int64_t chat_id, int64_t user_id, int *removed) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  int err;
  pgp_i64(&p, chat_id);
  pgp_i64(&p, user_id);
  err = pg__q(be, PG_REMOVAL_GET, &p, &r);
  if (err == 0)
    *removed = PQntuples(r) > 0;
  PQclear(r);
  return err;
}
/* The parameters of MSG_APPEND for `req` into *p (borrowing req's strings), or
 * PARLEY_EBAD_REQUEST. One statement (migration 4's parley_msg_append): lock the chat, then, for
 * a participant, find the clientMsgId's original or allocate the seq under the lock, insert, and
 * move the sender's read marker. */
int pg__msg_append_params(const struct store_req *req, struct pgp *p) {
  int has_client_id;
  if (req->in.body == NULL || req->in.body[0] == '\0' || !PG_TERMINATED(req->in.client_msg_id) ||
      !PG_TERMINATED(req->in.slug) || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  has_client_id = req->in.client_msg_id[0] != '\0';
  memset(p, 0, sizeof *p);
  pgp_text(p, req->in.slug);
  pgp_i64(p, req->in.user_id);
  pgp_text(p, req->in.body);
  pgp_text(p, has_client_id ? req->in.client_msg_id : NULL);
  pgp_i64(p, req->in.now);
  return 0;
}

/* Fills req's outputs from MSG_APPEND's result `r` (borrowed). The function writes only when
 * acl_check() allows, so a refusal here has nothing to undo (the savepoint would anyway). */
int pg__msg_append_take(struct store_req *req, const PGresult *r) {
  int err = pg__chat_take(req, r, ACL_MSG_SEND);
  if (err == 0 && PQgetisnull(r, 0, STORE_SQL_CHAT_NCOLS))
    err = PARLEY_ENOT_FOUND; /* no message: cannot happen for a participant (as before: no row) */
  if (err == 0)
    err = pg__read_msg(r, 0, STORE_SQL_CHAT_NCOLS, &req->out.msg);
  if (err == 0)
    req->out.duplicate = strcmp(PQgetvalue(r, 0, STORE_SQL_CHAT_NCOLS + 9), "t") == 0;
  return err;
}

static int pg_msg_append(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p;
  PGresult *r = NULL;
  int err = pg__msg_append_params(req, &p);
  if (err == 0)
    err = pg__q(be, PG_MSG_APPEND, &p, &r);
  if (err == 0)
    err = pg__msg_append_take(req, r);
  PQclear(r);
  return err;
}

/* As pg__msg_append_params() for READ_SET (migration 4's parley_read_set): locked like a send, so
 * read markers and sends of one chat always lock in the same order; the marker never passes
 * chats.last_seq. */
int pg__read_set_params(const struct store_req *req, struct pgp *p) {
  if (req->in.seq < 0 || !PG_TERMINATED(req->in.slug) || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  memset(p, 0, sizeof *p);
  pgp_text(p, req->in.slug);
  pgp_i64(p, req->in.user_id);
  pgp_i64(p, req->in.seq);
  pgp_i64(p, req->in.now);
  return 0;
}

int pg__read_set_take(struct store_req *req, const PGresult *r) {
  int err = pg__chat_take(req, r, ACL_CHAT_READ);
  if (err == 0 && PQgetisnull(r, 0, STORE_SQL_CHAT_NCOLS))
    err = PARLEY_EINTERNAL; /* the function and acl_check() disagree on who may read */
  if (err == 0)
    req->out.read_seq = pg__i64(r, 0, STORE_SQL_CHAT_NCOLS);
  return err;
}

static int pg_read_set(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p;
  PGresult *r = NULL;
  int err = pg__read_set_params(req, &p);
  if (err == 0)
    err = pg__q(be, PG_READ_SET, &p, &r);
  if (err == 0)
    err = pg__read_set_take(req, r);
  PQclear(r);
  return err;
}

/* ---- membership ---- */

static int pg_chat_members(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  size_t rows;
  int err = store_chat_access(&pg_prims, be, req, ACL_CHAT_VIEW, 0);
  if (err)
    return err;
  pgp_i64(&p, req->out.chat.id);
  err = pg__q(be, PG_MEMBERS, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  if (rows > 0) {
    req->out.members = calloc(rows, sizeof *req->out.members);
    if (req->out.members == NULL) {
      PQclear(r);
      return PARLEY_EUNAVAILABLE;
    }
  }
  for (size_t i = 0; i < rows; i++) {
    struct store_member *m = &req->out.members[i];
    pg__read_user(r, (int)i, 0, &m->user);
    m->role = chat_role_parse(pg__str(r, (int)i, 4));
    m->joined_at = pg__i64(r, (int)i, 5);
    m->user.last_seen = pg__i64(r, (int)i, 6);
    pg__read_avatar(r, (int)i, 7, &m->user);
  }
  req->out.n_members = rows;
  PQclear(r);
  return 0;
}

static int pg__chat_update(void *arg, const struct store_req *req, int64_t chat_id) {
  struct pg *be = arg;
  const unsigned mask = req->in.update_mask;
  struct pgp p = {0};
  char pub[4], cap[16], pol[4];
  snprintf(pub, sizeof pub, "%d", req->in.is_public != 0);
  snprintf(cap, sizeof cap, "%d", req->in.max_participants);
  snprintf(pol, sizeof pol, "%d", (int)req->in.invite_policy);
  pgp_i64(&p, chat_id);
  pgp_text(&p, (mask & STORE_UPD_TITLE) ? req->in.title : NULL);
  pgp_text(&p, (mask & STORE_UPD_PUBLIC) ? pub : NULL);
  pgp_text(&p, (mask & STORE_UPD_CAP) ? cap : NULL);
  pgp_text(&p, (mask & STORE_UPD_POLICY) ? pol : NULL);
  return pg__run(be, PG_CHAT_UPDATE, &p);
}
static int pg__chat_archive(void *arg, struct store_req *req, int64_t chat_id) {
  struct pg *be = arg;
  struct pgp p = {0};
  int err;
  pgp_i64(&p, chat_id);
  err = pg__run(be, PG_CHAT_ARCHIVE, &p);
  if (err)
    return err;
  return pg__invites_read(be, req, PG_INV_PENDING_OF_CHAT, &p, SIZE_MAX, NULL);
}

/* [lo, hi) holds every string that starts with lo. SQLite's hi (last byte + 1) is not always
 * valid UTF-8, which PostgreSQL refuses in a text parameter: then hi is lo followed by the
 * highest code point, U+10FFFF (only names continuing with that noncharacter are missed). */
static int pg__users_search(void *arg, struct store_req *req, const char *lo, size_t len,
                            int64_t mark_chat, int limit, int words) {
  struct pg *be = arg;
  char hi[STORE_DISPLAY_NAME_MAX + 5]; /* lo and 4 more bytes */
  struct pgp p = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;

  memcpy(hi, lo, len + 1);
  if ((unsigned char)lo[len - 1] < 0x7f)
    hi[len - 1] = (char)(lo[len - 1] + 1);
  else
    memcpy(hi + len, "\xf4\x8f\xbf\xbf", 5);
  pgp_text(&p, lo);
  pgp_text(&p, hi);
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, mark_chat);
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, limit - (int64_t)req->out.n_hits);
  err = pg__q(be, words ? PG_USERS_SEARCH_WORDS : PG_USERS_SEARCH, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  for (size_t i = 0; i < rows && req->out.n_hits < (size_t)limit; i++) {
    struct store_user_hit *h = &req->out.hits[req->out.n_hits++];
    pg__read_user(r, (int)i, 0, &h->user);
    h->participant = pg__int(r, (int)i, 4) != 0;
    h->invited = pg__int(r, (int)i, 5) != 0;
    h->user.last_seen = pg__i64(r, (int)i, 6);
    pg__read_avatar(r, (int)i, 7, &h->user);
  }
  PQclear(r);
  return 0;
}
/* ---- invitations ---- */

static int pg_invite_list(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, STORE_LIMIT_MAX);
  return pg__invites_read(be, req, PG_INV_LIST, &p, STORE_LIMIT_MAX, NULL);
}

static int pg__invites_due(void *arg, struct store_req *req, int limit) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, req->in.now);
  pgp_i64(&p, (int64_t)limit + 1); /* one more tells whether more are due */
  return pg__invites_read(be, req, PG_INV_DUE, &p, (size_t)limit, &req->out.has_more);
}
/* ---- presence ---- */

static int pg_presence_audience(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  PGresult *r = NULL;
  size_t rows;
  int err;
  pgp_i64(&p, req->in.user_id);
  err = pg__q(be, PG_AUDIENCE, &p, &r);
  if (err)
    return err;
  rows = (size_t)PQntuples(r);
  if (rows > 0) {
    req->out.member_ids = malloc(rows * sizeof *req->out.member_ids);
    if (req->out.member_ids == NULL) {
      PQclear(r);
      return PARLEY_EUNAVAILABLE;
    }
  }
  for (size_t i = 0; i < rows; i++)
    req->out.member_ids[i] = pg__i64(r, (int)i, 0);
  req->out.n_member_ids = rows;
  PQclear(r);
  return 0;
}

static int pg_user_seen(void *arg, struct store_req *req) {
  struct pg *be = arg;
  struct pgp p = {0};
  pgp_i64(&p, req->in.user_id);
  pgp_i64(&p, req->in.last_seen);
  return pg__run(be, PG_USER_SEEN, &p);
}

static int pg_sessions_expire(void *arg, int64_t now, int limit, int64_t *n) {
  struct pg *be = arg;
  struct pgp p = {0};
  long changes = 0;
  int err;
  pgp_i64(&p, now);
  pgp_i64(&p, limit);
  err = pg__run_n(be, PG_SESSION_SWEEP, &p, &changes);
  if (err == 0)
    *n = changes;
  return err;
}

/* store_prims.sql: the text with its parameters (numbers formatted, types inferred by the
 * server), one round trip with any pending transaction control. */
int pg__sql(void *arg, const char *text, const struct store_arg *args, int n,
            struct store_res *out) {
  struct pg *be = arg;
  struct pgp p = {0};
  struct pg_call call = {0, &p, text};
  PGresult *r = NULL;
  int err;
  if (out)
    memset(out, 0, sizeof *out);
  if (n > PG_MAX_PARAMS)
    return PARLEY_EINTERNAL;
  for (int k = 0; k < n; k++) {
    if (args[k].is_text)
      pgp_text(&p, args[k].s);
    else
      pgp_i64(&p, args[k].i);
  }
  err = pg__exchange(be, &call, 1, &r);
  if (err == 0 && out && PQntuples(r) > 0) {
    int rows = PQntuples(r), cols = PQnfields(r);
    out->v = calloc((size_t)rows * (size_t)cols, sizeof *out->v);
    if (out->v == NULL)
      err = PARLEY_EUNAVAILABLE;
    for (int i = 0; err == 0 && i < rows; i++)
      for (int c = 0; err == 0 && c < cols; c++)
        if (!PQgetisnull(r, i, c) &&
            (out->v[i * cols + c] = strdup(PQgetvalue(r, i, c))) == NULL)
          err = PARLEY_EUNAVAILABLE;
    out->rows = rows;
    out->cols = cols;
    if (err)
      store_res_free(out);
  }
  PQclear(r);
  return err;
}

const struct store_prims pg_prims = {
    .sql = pg__sql,
    .chat_lock = pg__chat_lock,
    .chat_load = pg__chat_load,
    .chat_touch = pg__chat_touch,
    .chat_archive = pg__chat_archive,
    .user_by_id = pg__user_by_id,
    .user_by_username = pg__user_by_username,
    .role_of = pg__role_of,
    .set_role = pg__set_role,
    .set_owner = pg__set_owner,
    .participant_add = pg__participant_add,
    .participant_delete = pg__participant_delete,
    .participants = pg__participants,
    .removal_put = pg__removal_put,
    .removal_delete = pg__removal_delete,
    .invite_load = pg__invite_load_locked,
    .invite_set_status = pg__invite_set_status,
    .invite_pending_for = pg__invite_pending_for,
    .invite_insert = pg__invite_insert,
    .user_insert = pg__user_insert,
    .slug_taken = pg__slug_taken,
    .chat_insert = pg__chat_insert,
    .chat_update = pg__chat_update,
    .removed = pg__removed,
    .msgs = pg__chat_msgs,
    .users_search = pg__users_search,
    .msg_search = pg__msg_search,
    .user_word_insert = pg__user_word_insert,
    .invites_due = pg__invites_due,
    .sessions_expire = pg_sessions_expire,
    .chat_readers = pg__chat_readers,
    .notify_set = pg__notify_set,
    .notify_of = pg__notify_of,
    .chats_browse = pg__chats_browse,
    .user_set_display = pg__user_set_display,
    .user_words_delete = pg__user_words_delete,
    .avatar_put = pg__avatar_put,
    .user_set_avatar = pg__user_set_avatar,
    .avatar_gc = pg__avatar_gc,
    .op =
        {
            [STORE_USER_BY_NAME] = pg_user_by_name,
            [STORE_SESSION_CREATE] = pg_session_create,
            [STORE_SESSION_GET] = pg_session_get,
            [STORE_SESSION_DELETE] = pg_session_delete,
            [STORE_CHAT_LIST] = pg_chat_list,
            [STORE_MSG_APPEND] = pg_msg_append,
            [STORE_READ_SET] = pg_read_set,
            [STORE_CHAT_MEMBERS] = pg_chat_members,
            [STORE_INVITE_LIST] = pg_invite_list,
            [STORE_PRESENCE_AUDIENCE] = pg_presence_audience,
            [STORE_USER_SEEN] = pg_user_seen,
            [STORE_PASSWORD_SET] = pg__password_set,
            [STORE_AVATAR_GET] = pg__avatar_get,
        },
};
