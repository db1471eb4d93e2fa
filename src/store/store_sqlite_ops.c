/* store_sqlite_ops.c - the SQLite backend's ops that are SQL alone (sessions, chat list, sends,
 * read markers, members, invitation lists, presence) and the rows of the other rules' ops, with
 * the table of primitives store_rules_exec() dispatches through (see store_rules.h).
 *
 * Every statement was prepared at open (store_sqlite.c); each function binds, steps, reads and
 * resets. The checks that must be atomic with a change run inside the caller's transaction: the
 * store thread is the only writer, so what it reads stays as it is until it commits.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "core/acl.h"
#include "core/invite.h"
#include "store/store_sqlite_int.h"

/* ---- generic statements (store_prims.sql) ---- */

/* The statement for `text`, prepared once and kept (texts are string literals, so the address
 * names them); past SQ_CACHE_MAX, prepared for this call only (*temp). */
static int sq__stmt_for(struct sq *be, const char *text, sqlite3_stmt **st, int *temp) {
  int rc;
  *temp = 0;
  for (int i = 0; i < be->n_cache; i++)
    if (be->cache[i].text == text) {
      *st = be->cache[i].st;
      return 0;
    }
  rc = sqlite3_prepare_v3(be->db, text, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
  if (rc != SQLITE_OK)
    return sq__err(be, rc, text);
  if (be->n_cache < SQ_CACHE_MAX) {
    be->cache[be->n_cache].text = text;
    be->cache[be->n_cache++].st = *st;
  } else {
    *temp = 1;
  }
  return 0;
}

int sq__sql(void *arg, const char *text, const struct store_arg *args, int n,
            struct store_res *out) {
  struct sq *be = arg;
  sqlite3_stmt *st;
  int temp, rc, err, cap = 0;
  if (out)
    memset(out, 0, sizeof *out);
  err = sq__stmt_for(be, text, &st, &temp);
  if (err)
    return err;
  for (int k = 0; k < n; k++) {
    char name[16];
    int idx;
    snprintf(name, sizeof name, "$%d", k + 1);
    idx = sqlite3_bind_parameter_index(st, name);
    if (idx == 0)
      continue; /* a parameter the text does not use */
    if (!args[k].is_text)
      sqlite3_bind_int64(st, idx, args[k].i);
    else if (args[k].s)
      sqlite3_bind_text(st, idx, args[k].s, -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, idx);
  }
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int cols = sqlite3_column_count(st);
    if (out == NULL)
      continue;
    if (out->rows == cap) {
      int ncap = cap ? cap * 2 : 8;
      char **v = realloc(out->v, (size_t)ncap * (size_t)cols * sizeof *v);
      if (v == NULL) {
        err = PARLEY_EUNAVAILABLE;
        break;
      }
      out->v = v;
      cap = ncap;
    }
    out->cols = cols;
    for (int c = 0; c < cols; c++) {
      const char *t = (const char *)sqlite3_column_text(st, c);
      char **cell = &out->v[out->rows * cols + c];
      *cell = NULL;
      if (t && (*cell = strdup(t)) == NULL)
        err = PARLEY_EUNAVAILABLE;
    }
    out->rows++;
    if (err)
      break;
  }
  if (err == 0 && rc != SQLITE_DONE)
    err = sq__err(be, rc, text);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (temp)
    sqlite3_finalize(st);
  if (err && out)
    store_res_free(out);
  return err;
}

/* ---- operations ---- */

static int sq__user_insert(void *arg, struct store_req *req, const char *display, int64_t *id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_INSERT];
  int rc;
  sqlite3_bind_text(st, 1, req->in.user.username, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, display, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, req->in.pwhash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, req->in.now);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    *id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : sq__err(be, rc, "insert user"); /* taken: a UNIQUE conflict */
}
static int sq__user_word_insert(void *arg, int64_t user_id, const char *word) {
  struct sq *be = arg;
  sqlite3_bind_text(be->st[SQ_USER_WORD_INSERT], 1, word, -1, SQLITE_STATIC);
  sqlite3_bind_int64(be->st[SQ_USER_WORD_INSERT], 2, user_id);
  return sq__run(be, SQ_USER_WORD_INSERT);
}
static int sq_user_by_name(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_BY_NAME];
  int err = 0;
  int rc;
  sqlite3_bind_text(st, 1, req->in.user.username, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    sq__read_user(st, 0, &req->out.user);
    err = sq__dup(&req->out.pwhash, st, 4);
    req->out.user.bot = sqlite3_column_int(st, 5) != 0;
  } else if (rc == SQLITE_DONE) {
    err = PARLEY_ENOT_FOUND;
  } else {
    err = sq__err(be, rc, "user by name");
  }
  sqlite3_reset(st);
  return err;
}

static int sq_session_create(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_SESSION_INSERT];
  sqlite3_bind_blob(st, 1, req->in.token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, req->in.now);
  sqlite3_bind_int64(st, 4, req->in.expires_at);
  return sq__run(be, SQ_SESSION_INSERT);
}

static int sq_session_get(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_SESSION_GET];
  int err = 0;
  int rc;
  sqlite3_bind_blob(st, 1, req->in.token_hash, STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    int64_t expires_at = sqlite3_column_int64(st, 0);
    /* Expired sessions stay until a sweep deletes them; this keeps a lookup read-only. */
    if (expires_at <= req->in.now) {
      err = PARLEY_EUNAUTHORIZED;
    } else {
      req->out.expires_at = expires_at;
      sq__read_user(st, 1, &req->out.user);
      sq__read_avatar(st, 5, &req->out.user);
    }
  } else if (rc == SQLITE_DONE) {
    err = PARLEY_EUNAUTHORIZED;
  } else {
    err = sq__err(be, rc, "session lookup");
  }
  sqlite3_reset(st);
  return err;
}

static int sq_session_delete(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_bind_blob(be->st[SQ_SESSION_DELETE], 1, req->in.token_hash, STORE_TOKEN_HASH_LEN,
                    SQLITE_STATIC);
  return sq__run(be, SQ_SESSION_DELETE);
}

static int sq__chat_insert(void *arg, struct store_req *req, const char *slug, int64_t *chat_id) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_INSERT];
  int rc;
  sqlite3_bind_text(st, 1, slug, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, req->in.title, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, req->in.is_public != 0);
  sqlite3_bind_int(st, 4, req->in.max_participants);
  sqlite3_bind_int64(st, 5, req->in.user_id);
  sqlite3_bind_int64(st, 6, req->in.now);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  *chat_id = rc == SQLITE_DONE ? sqlite3_last_insert_rowid(be->db) : 0;
  if (rc == SQLITE_CONSTRAINT_UNIQUE)
    return 0;                                                    /* the slug is taken */
  return rc == SQLITE_DONE ? 0 : sq__err(be, rc, "insert chat"); /* an unknown owner: the FK */
}
static int sq_chat_list(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_CHAT_LIST];
  size_t cap = 0;
  int err = 0;
  int rc;

  sqlite3_bind_int64(st, 1, req->in.user_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    size_t i = req->out.n_chats;
    int64_t marker;
    if (i == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      struct store_chat *chats = realloc(req->out.chats, ncap * sizeof *chats);
      struct store_msg *last;
      int64_t *unread;
      if (chats == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.chats = chats;
      last = realloc(req->out.last_msgs, ncap * sizeof *last);
      if (last == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.last_msgs = last;
      unread = realloc(req->out.unread, ncap * sizeof *unread);
      if (unread == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.unread = unread;
      cap = ncap;
    }
    memset(&req->out.chats[i], 0, sizeof req->out.chats[i]);
    memset(&req->out.last_msgs[i], 0, sizeof req->out.last_msgs[i]);
    req->out.unread[i] = 0;
    req->out.n_chats = i + 1; /* counted before filling so that a failure frees what was read */
    err = sq__read_chat(st, &req->out.chats[i]);
    if (err)
      goto cleanup;
    marker = sqlite3_column_int64(st, STORE_SQL_CHAT_NCOLS);
    /* seq is gap-free and messages are never deleted, so the count after the marker is a
     * subtraction, not a scan of every unread row. */
    req->out.unread[i] =
        req->out.chats[i].last_seq > marker ? req->out.chats[i].last_seq - marker : 0;
    req->out.chats[i].notify = (enum store_notify)sqlite3_column_int(st, STORE_SQL_CHAT_NCOLS + 1);
    err = sq__read_msg(st, STORE_SQL_CHAT_NCOLS + 2, &req->out.last_msgs[i]);
    if (err)
      goto cleanup;
  }
  if (rc != SQLITE_DONE)
    err = sq__err(be, rc, "list chats");
cleanup:
  sqlite3_reset(st);
  if (err)
    return err;
  /* The invitations waiting for the user, so a client needs one round trip to draw its list. */
  st = be->st[SQ_INV_INCOMING];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_int64(st, 2, req->in.now);
  sqlite3_bind_int(st, 3, STORE_LIMIT_MAX);
  return sq__invites_read(be, req, SQ_INV_INCOMING, STORE_LIMIT_MAX, NULL);
}

static int sq__removed(void *arg, int64_t chat_id, int64_t user_id, int *removed) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_REMOVAL_GET];
  int rc;
  sqlite3_bind_int64(st, 1, chat_id);
  sqlite3_bind_int64(st, 2, user_id);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  *removed = rc == SQLITE_ROW;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq__err(be, rc, "removal lookup");
}
static int sq_msg_append(void *arg, struct store_req *req) {
  struct sq *be = arg;
  struct store_chat *c = &req->out.chat;
  struct store_msg *m = &req->out.msg;
  sqlite3_stmt *st;
  int has_client_id;
  int64_t seq = 0;
  int err, rc;

  if (req->in.body == NULL || req->in.body[0] == '\0' || !SQ_TERMINATED(req->in.client_msg_id))
    return PARLEY_EBAD_REQUEST;
  err = store_chat_access(&sq_prims, be, req, ACL_MSG_SEND, 0);
  if (err)
    return err;
  has_client_id = req->in.client_msg_id[0] != '\0';

  if (has_client_id) {
    /* A retry of a send that already committed: answer with the original, store nothing. */
    st = be->st[SQ_MSG_BY_CLIENT_ID];
    sqlite3_bind_int64(st, 1, c->id);
    sqlite3_bind_int64(st, 2, req->in.user_id);
    sqlite3_bind_text(st, 3, req->in.client_msg_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      err = sq__read_msg(st, 0, m);
      req->out.duplicate = 1;
    } else if (rc != SQLITE_DONE) {
      err = sq__err(be, rc, "client id lookup");
    }
    sqlite3_reset(st);
    if (err || req->out.duplicate)
      return err;
  }

  /* The author as stored, for the reply and the fan-out. */
  st = be->st[SQ_USER_BY_ID];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    sq__read_user(st, 0, &m->author);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW)
    return rc == SQLITE_DONE ? PARLEY_ENOT_FOUND : sq__err(be, rc, "author lookup");

  /* The access check read the chat's row in this transaction, and this connection is the only
   * writer, so the next seq is known here. Naming it saves a RETURNING clause, which SQLite
   * serves through a temporary table opened and closed per statement (issue 15). */
  seq = c->last_seq + 1;
  st = be->st[SQ_CHAT_NEXT_SEQ];
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, req->in.now);
  sqlite3_bind_int64(st, 3, seq);
  err = sq__run(be, SQ_CHAT_NEXT_SEQ);
  if (err)
    return err;
  if (sqlite3_changes(be->db) != 1) {
    log_error("store: sqlite: chat %lld moved past seq %lld within a transaction", (long long)c->id,
              (long long)c->last_seq);
    return PARLEY_EINTERNAL;
  }
  if (req->in.now > c->last_activity)
    c->last_activity = req->in.now;

  st = be->st[SQ_MSG_INSERT];
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, seq);
  sqlite3_bind_int64(st, 3, req->in.user_id);
  sqlite3_bind_text(st, 4, req->in.body, -1, SQLITE_STATIC);
  if (has_client_id)
    sqlite3_bind_text(st, 5, req->in.client_msg_id, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 5);
  sqlite3_bind_int64(st, 6, req->in.now);
  err = sq__run(be, SQ_MSG_INSERT);
  if (err)
    return err;
  /* A user's own messages are never unread: the author has read up to what they wrote. */
  st = be->st[SQ_READ_OWN];
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, seq);
  sqlite3_bind_int64(st, 4, req->in.now);
  err = sq__run(be, SQ_READ_OWN);
  if (err)
    return err;

  err = sq__dup_str(&m->body, req->in.body);
  if (err)
    return err;
  m->seq = seq;
  m->chat_id = c->id;
  memcpy(m->client_msg_id, req->in.client_msg_id, sizeof m->client_msg_id);
  m->created_at = req->in.now;
  c->last_seq = seq;
  return 0;
}

static int sq__msgs(void *arg, struct store_req *req, int64_t lo, int64_t hi, int limit,
                    int *more) {
  struct sq *be = arg;
  int err = store_chat_access(&sq_prims, be, req, ACL_CHAT_READ, 0);
  if (err)
    return err;
  return sq__msgs_range(be, req, req->out.chat.id, lo, hi, limit, more);
}
static int sq_read_set(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_READ_UPSERT];
  int64_t seq;
  int err, rc;
  if (req->in.seq < 0)
    return PARLEY_EBAD_REQUEST;
  err = store_chat_access(&sq_prims, be, req, ACL_CHAT_READ, 0);
  if (err)
    return err;
  /* Nobody can have read past the newest message; clamping keeps unread counts non-negative. */
  seq = req->in.seq < req->out.chat.last_seq ? req->in.seq : req->out.chat.last_seq;
  sqlite3_bind_int64(st, 1, req->out.chat.id);
  sqlite3_bind_int64(st, 2, req->in.user_id);
  sqlite3_bind_int64(st, 3, seq);
  sqlite3_bind_int64(st, 4, req->in.now);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    req->out.read_seq = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : sq__err(be, rc, "set read marker");
}

/* ---- membership (issue 3) ---- */

static int sq_chat_members(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_MEMBERS];
  size_t cap = 0;
  int err = store_chat_access(&sq_prims, be, req, ACL_CHAT_VIEW, 0);
  int rc;
  if (err)
    return err;
  sqlite3_bind_int64(st, 1, req->out.chat.id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct store_member *m;
    if (req->out.n_members == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      m = realloc(req->out.members, ncap * sizeof *m);
      if (m == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      req->out.members = m;
      cap = ncap;
    }
    m = &req->out.members[req->out.n_members++];
    memset(m, 0, sizeof *m);
    sq__read_user(st, 0, &m->user);
    m->role = chat_role_parse((const char *)sqlite3_column_text(st, 4));
    m->joined_at = sqlite3_column_int64(st, 5);
    m->user.last_seen = sqlite3_column_int64(st, 6);
    sq__read_avatar(st, 7, &m->user);
  }
  if (rc != SQLITE_DONE)
    err = sq__err(be, rc, "chat members");
cleanup:
  sqlite3_reset(st);
  return err;
}

static int sq__chat_update(void *arg, const struct store_req *req, int64_t chat_id) {
  struct sq *be = arg;
  const unsigned mask = req->in.update_mask;
  sqlite3_stmt *st = be->st[SQ_CHAT_UPDATE];
  sqlite3_bind_int64(st, 1, chat_id);
  if (mask & STORE_UPD_TITLE)
    sqlite3_bind_text(st, 2, req->in.title, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 2);
  if (mask & STORE_UPD_PUBLIC)
    sqlite3_bind_int(st, 3, req->in.is_public != 0);
  else
    sqlite3_bind_null(st, 3);
  if (mask & STORE_UPD_CAP)
    sqlite3_bind_int(st, 4, req->in.max_participants);
  else
    sqlite3_bind_null(st, 4);
  if (mask & STORE_UPD_POLICY)
    sqlite3_bind_int(st, 5, (int)req->in.invite_policy);
  else
    sqlite3_bind_null(st, 5);
  return sq__run(be, SQ_CHAT_UPDATE);
}
/* Archives a chat nobody is in any more and revokes its pending invitations, which are returned in
 * out.invites so that their invitees can be told. */
static int sq__chat_archive(void *arg, struct store_req *req, int64_t chat_id) {
  struct sq *be = arg;
  int err;
  sqlite3_bind_int64(be->st[SQ_CHAT_ARCHIVE], 1, chat_id);
  err = sq__run(be, SQ_CHAT_ARCHIVE);
  if (err)
    return err;
  sqlite3_bind_int64(be->st[SQ_INV_PENDING_OF_CHAT], 1, chat_id);
  return sq__invites_read(be, req, SQ_INV_PENDING_OF_CHAT, SIZE_MAX, NULL);
}

/* The range [lo, hi) is every string that starts with lo: hi is lo with its last byte one higher.
 * No wildcard exists in a range, so '%' and '_' in a query are plain characters. */
static int sq__users_search(void *arg, struct store_req *req, const char *lo, size_t len,
                            int64_t mark_chat, int limit, int words) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[words ? SQ_USERS_SEARCH_WORDS : SQ_USERS_SEARCH];
  char hi[STORE_DISPLAY_NAME_MAX + 1];
  int err = 0;
  int rc;

  memcpy(hi, lo, len + 1);
  hi[len - 1] = (char)((unsigned char)hi[len - 1] + 1);
  sqlite3_bind_text(st, 1, lo, (int)len, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, hi, (int)len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, req->in.user_id);
  sqlite3_bind_int64(st, 4, mark_chat);
  sqlite3_bind_int64(st, 5, req->in.now);
  sqlite3_bind_int(st, 6, limit - (int)req->out.n_hits);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && req->out.n_hits < (size_t)limit) {
    struct store_user_hit *h = &req->out.hits[req->out.n_hits++];
    sq__read_user(st, 0, &h->user);
    h->participant = sqlite3_column_int(st, 4) != 0;
    h->invited = sqlite3_column_int(st, 5) != 0;
    h->user.last_seen = sqlite3_column_int64(st, 6);
    sq__read_avatar(st, 7, &h->user);
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    err = sq__err(be, rc, "search users");
  sqlite3_reset(st);
  return err;
}
/* ---- invitations (issue 3) ---- */

static int sq_invite_list(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_INV_LIST];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_int64(st, 2, req->in.now);
  sqlite3_bind_int(st, 3, STORE_LIMIT_MAX);
  return sq__invites_read(be, req, SQ_INV_LIST, STORE_LIMIT_MAX, NULL);
}

static int sq__invites_due(void *arg, struct store_req *req, int limit) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_INV_DUE];
  sqlite3_bind_int64(st, 1, req->in.now);
  sqlite3_bind_int(st, 2, limit + 1); /* one more tells whether more are due */
  return sq__invites_read(be, req, SQ_INV_DUE, (size_t)limit, &req->out.has_more);
}
static int sq_presence_audience(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_AUDIENCE];
  int64_t *ids = NULL;
  size_t n = 0, cap = 0;
  int rc, err = 0;

  sqlite3_bind_int64(st, 1, req->in.user_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      int64_t *nids = realloc(ids, ncap * sizeof *nids);
      if (nids == NULL) {
        err = PARLEY_EUNAVAILABLE;
        goto cleanup;
      }
      ids = nids;
      cap = ncap;
    }
    ids[n++] = sqlite3_column_int64(st, 0);
  }
  if (rc != SQLITE_DONE) {
    err = sq__err(be, rc, "presence audience");
    goto cleanup;
  }
  req->out.member_ids = ids;
  req->out.n_member_ids = n;
  ids = NULL;
cleanup:
  sqlite3_reset(st);
  free(ids);
  return err;
}

static int sq_user_seen(void *arg, struct store_req *req) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_USER_SEEN];
  sqlite3_bind_int64(st, 1, req->in.user_id);
  sqlite3_bind_int64(st, 2, req->in.last_seen);
  return sq__run(be, SQ_USER_SEEN);
}

static int sq_sessions_expire(void *arg, int64_t now, int limit, int64_t *n) {
  struct sq *be = arg;
  sqlite3_stmt *st = be->st[SQ_SESSION_SWEEP];
  int err;
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int(st, 2, limit);
  err = sq__run(be, SQ_SESSION_SWEEP);
  if (err == 0)
    *n = sqlite3_changes(be->db);
  return err;
}

const struct store_prims sq_prims = {
    .sql = sq__sql,
    .chat_load = sq__chat_load,
    .chat_touch = sq__chat_touch,
    .chat_archive = sq__chat_archive,
    .user_by_id = sq__user_by_id,
    .user_by_username = sq__user_by_username,
    .role_of = sq__role_of,
    .set_role = sq__set_role,
    .set_owner = sq__set_owner,
    .participant_add = sq__participant_add,
    .participant_delete = sq__participant_delete,
    .participants = sq__participants,
    .removal_put = sq__removal_put,
    .removal_delete = sq__removal_delete,
    .invite_load = sq__invite_load,
    .invite_set_status = sq__invite_set_status,
    .invite_pending_for = sq__invite_pending_for,
    .invite_insert = sq__invite_insert,
    .user_insert = sq__user_insert,
    .slug_taken = sq__slug_taken,
    .chat_insert = sq__chat_insert,
    .chat_update = sq__chat_update,
    .removed = sq__removed,
    .msgs = sq__msgs,
    .users_search = sq__users_search,
    .msg_search = sq__msg_search,
    .user_word_insert = sq__user_word_insert,
    .invites_due = sq__invites_due,
    .sessions_expire = sq_sessions_expire,
    .chat_readers = sq__chat_readers,
    .notify_set = sq__notify_set,
    .notify_of = sq__notify_of,
    .chats_browse = sq__chats_browse,
    .user_set_display = sq__user_set_display,
    .user_words_delete = sq__user_words_delete,
    .avatar_put = sq__avatar_put,
    .user_set_avatar = sq__user_set_avatar,
    .avatar_gc = sq__avatar_gc,
    .op =
        {
            [STORE_USER_BY_NAME] = sq_user_by_name,
            [STORE_SESSION_CREATE] = sq_session_create,
            [STORE_SESSION_GET] = sq_session_get,
            [STORE_SESSION_DELETE] = sq_session_delete,
            [STORE_CHAT_LIST] = sq_chat_list,
            [STORE_MSG_APPEND] = sq_msg_append,
            [STORE_READ_SET] = sq_read_set,
            [STORE_CHAT_MEMBERS] = sq_chat_members,
            [STORE_INVITE_LIST] = sq_invite_list,
            [STORE_PRESENCE_AUDIENCE] = sq_presence_audience,
            [STORE_USER_SEEN] = sq_user_seen,
            [STORE_PASSWORD_SET] = sq__password_set,
            [STORE_AVATAR_GET] = sq__avatar_get,
        },
};
