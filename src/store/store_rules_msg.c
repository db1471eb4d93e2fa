/* store_rules_msg.c - the message model of issue 17, for every backend (see store_rules.h).
 *
 * Every change to a chat is an entry in its sequence: edits, deletions, reactions and notices
 * take the next seq like a message, so a client that resumes from a seq sees them in order and
 * ends where a live client is. What a text message looks like now (its edited body, deleted
 * flag, reactions, the message it replies to, whom it mentions) is kept folded in its own row and
 * in two tables (reactions, message_mentions), and read with it.
 *
 * The statements are written once, in the SQL both dialects share, with $1..$n parameters, and
 * run through the backends' generic statement primitive (store_prims.sql): these ops are rare
 * next to sends, so a statement prepared by text on SQLite and an unnamed one on PostgreSQL is
 * cheap enough, and the rules stay in one place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/error.h"
#include "store/store_rules.h"
#include "store/store_sql.h"

#define MSG__COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MSG__NULL STORE_S(NULL)

/* ---- generic results ---- */


const char *store_res_s(const struct store_res *r, int row, int col) {
  if (row < 0 || row >= r->rows || col < 0 || col >= r->cols)
    return NULL;
  return r->v[row * r->cols + col];
}

int64_t store_res_i(const struct store_res *r, int row, int col) {
  const char *s = store_res_s(r, row, col);
  return s ? strtoll(s, NULL, 10) : 0;
}

static struct store_arg msg__opt(int64_t x) {
  return x ? STORE_I(x) : MSG__NULL;
}

static const char *const msg__kinds[] = {"text", "edit", "delete", "reaction", "notice",
                                         "stream.end"};

static enum store_msg_kind msg__kind(const char *s) {
  for (int i = 0; s && i < MSG__COUNT(msg__kinds); i++)
    if (strcmp(s, msg__kinds[i]) == 0)
      return (enum store_msg_kind)i;
  return STORE_KIND_TEXT;
}

static void msg__user(const struct store_res *r, int row, int col, struct store_user *u) {
  const char *s;
  memset(u, 0, sizeof *u);
  if (store_res_s(r, row, col) == NULL)
    return;
  u->id = store_res_i(r, row, col);
  s = store_res_s(r, row, col + 1);
  store_copy_text(u->username, sizeof u->username, s, s ? strlen(s) : 0);
  s = store_res_s(r, row, col + 2);
  store_copy_text(u->display_name, sizeof u->display_name, s, s ? strlen(s) : 0);
  u->created_at = store_res_i(r, row, col + 3);
}

static int msg__dup(char **dst, const char *s) {
  *dst = strdup(s ? s : "");
  return *dst ? 0 : PARLEY_EUNAVAILABLE;
}

/* ---- reading entries with their folded state ---- */

#define MSG_COL_BOTS 28 /* u.bot, s.bot, ru.bot: the last columns of MSG_SQL_LOAD */
#define MSG_SQL_LOAD                                                                               \
  "SELECT m.seq, m.chat_id, m.body, m.client_msg_id, m.created_at,"                                \
  " u.id, u.username, u.display_name, u.created_at,"                                               \
  " m.kind, m.ref, m.detail, m.flag, m.action,"                                                    \
  " s.id, s.username, s.display_name, s.created_at,"                                               \
  " m.edited_at, m.deleted, r.seq, substr(r.body, 1, 100),"                                        \
  " ru.id, ru.username, ru.display_name, ru.created_at, m.stream_state, m.stream_len,"           \
  " u.bot, s.bot, ru.bot" /* issue 19: MSG_COL_BOTS */                                            \
  " FROM messages m JOIN users u ON u.id = m.author_id"                                            \
  " LEFT JOIN users s ON s.id = m.subject_id"                                                      \
  " LEFT JOIN messages r ON r.chat_id = m.chat_id AND r.seq = m.reply_to"                          \
  " LEFT JOIN users ru ON ru.id = r.author_id"                                                     \
  " WHERE m.chat_id = $1 AND m.seq >= $2 AND m.seq <= $3 ORDER BY m.seq"

static const char MSG_SQL_RANGE[] = MSG_SQL_LOAD;
static const char MSG_SQL_REACTIONS[] =
    "SELECT seq, emoji, count(*), max(CASE WHEN user_id = $4 THEN 1 ELSE 0 END), min(at)"
    " FROM reactions WHERE chat_id = $1 AND seq >= $2 AND seq <= $3"
    " GROUP BY seq, emoji ORDER BY seq, min(at), emoji";
static const char MSG_SQL_MENTIONS[] =
    "SELECT seq, user_id FROM message_mentions WHERE chat_id = $1 AND seq >= $2 AND seq <= $3"
    " ORDER BY seq, user_id";

static int msg__from_row(const struct store_res *r, int row, struct store_msg *m) {
  const char *s;
  int err;
  store_msg_dispose(m);
  memset(m, 0, sizeof *m);
  m->seq = store_res_i(r, row, 0);
  m->chat_id = store_res_i(r, row, 1);
  err = msg__dup(&m->body, store_res_s(r, row, 2));
  if (err)
    return err;
  s = store_res_s(r, row, 3);
  store_copy_text(m->client_msg_id, sizeof m->client_msg_id, s, s ? strlen(s) : 0);
  m->created_at = store_res_i(r, row, 4);
  msg__user(r, row, 5, &m->author);
  m->author.bot = store_res_i(r, row, MSG_COL_BOTS) != 0;
  m->kind = msg__kind(store_res_s(r, row, 9));
  m->ref = store_res_i(r, row, 10);
  s = store_res_s(r, row, 11);
  if (m->kind == STORE_KIND_REACTION)
    store_copy_text(m->emoji, sizeof m->emoji, s, s ? strlen(s) : 0);
  else if (s && (m->detail = strdup(s)) == NULL)
    return PARLEY_EUNAVAILABLE;
  m->on = store_res_i(r, row, 12) != 0;
  s = store_res_s(r, row, 13);
  store_copy_text(m->action, sizeof m->action, s, s ? strlen(s) : 0);
  msg__user(r, row, 14, &m->subject);
  m->subject.bot = store_res_i(r, row, MSG_COL_BOTS + 1) != 0;
  m->edited_at = store_res_i(r, row, 18);
  m->deleted = store_res_i(r, row, 19) != 0;
  m->reply_seq = store_res_i(r, row, 20);
  if (m->reply_seq) {
    err = msg__dup(&m->reply_preview, store_res_s(r, row, 21));
    if (err)
      return err;
    msg__user(r, row, 22, &m->reply_author);
    m->reply_author.bot = store_res_i(r, row, MSG_COL_BOTS + 2) != 0;
  }
  m->stream_state = stream_state_parse(store_res_s(r, row, 26));
  m->stream_len = store_res_i(r, row, 27);
  return 0;
}

static const char MSG_SQL_CHUNKS[] =
    "SELECT delta FROM stream_chunks WHERE chat_id = $1 AND seq = $2 ORDER BY off";

int store_rules_stream_body(const struct store_prims *p, void *be, int64_t chat_id, int64_t seq,
                            char **body) {
  struct store_arg a[] = {STORE_I(chat_id), STORE_I(seq)};
  struct store_res r = {0};
  size_t len = 0;
  char *out;
  int err = p->sql(be, MSG_SQL_CHUNKS, a, 2, &r);
  if (err)
    return err;
  for (int i = 0; i < r.rows; i++)
    len += strlen(store_res_s(&r, i, 0) ? store_res_s(&r, i, 0) : "");
  out = malloc(len + 1);
  if (out == NULL) {
    store_res_free(&r);
    return PARLEY_EUNAVAILABLE;
  }
  len = 0;
  for (int i = 0; i < r.rows; i++) {
    const char *d = store_res_s(&r, i, 0);
    size_t n = d ? strlen(d) : 0;
    memcpy(out + len, d ? d : "", n);
    len += n;
  }
  out[len] = '\0';
  store_res_free(&r);
  free(*body);
  *body = out;
  return 0;
}

/* The entries lo <= seq <= hi of chat_id with their folded state as `viewer` sees it, into a new
 * array *out (*n of them; the caller disposes and frees them). */
static int msg__load(const struct store_prims *p, void *be, int64_t chat_id, int64_t lo,
                     int64_t hi, int64_t viewer, struct store_msg **out, size_t *n) {
  struct store_arg a[] = {STORE_I(chat_id), STORE_I(lo), STORE_I(hi), STORE_I(viewer)};
  struct store_res r = {0}, rr = {0}, mr = {0};
  struct store_msg *msgs = NULL;
  size_t k = 0;
  int err;

  *out = NULL;
  *n = 0;
  err = p->sql(be, MSG_SQL_RANGE, a, 3, &r);
  if (err == 0 && r.rows > 0)
    err = p->sql(be, MSG_SQL_REACTIONS, a, 4, &rr);
  if (err == 0 && r.rows > 0)
    err = p->sql(be, MSG_SQL_MENTIONS, a, 3, &mr);
  if (err || r.rows == 0)
    goto cleanup;
  msgs = calloc((size_t)r.rows, sizeof *msgs);
  if (msgs == NULL) {
    err = PARLEY_EUNAVAILABLE;
    goto cleanup;
  }
  for (int i = 0; err == 0 && i < r.rows; i++)
    err = msg__from_row(&r, i, &msgs[i]);
  /* An open stream's text is in its chunks until it ends. */
  for (int i = 0; err == 0 && i < r.rows; i++)
    if (msgs[i].kind == STORE_KIND_TEXT && msgs[i].stream_state == STREAM_STREAMING &&
        !msgs[i].deleted)
      err = store_rules_stream_body(p, be, chat_id, msgs[i].seq, &msgs[i].body);
  /* Reactions and mentions come in seq order, like the entries: one walk attaches them. */
  for (int i = 0; err == 0 && i < rr.rows; i++) {
    int64_t seq = store_res_i(&rr, i, 0);
    struct store_reaction *grown, *x;
    const char *emoji = store_res_s(&rr, i, 1);
    while (k < (size_t)r.rows && msgs[k].seq < seq)
      k++;
    if (k == (size_t)r.rows || msgs[k].seq != seq)
      continue;
    grown = realloc(msgs[k].reactions, (msgs[k].n_reactions + 1) * sizeof *grown);
    if (grown == NULL) {
      err = PARLEY_EUNAVAILABLE;
      break;
    }
    msgs[k].reactions = grown;
    x = &grown[msgs[k].n_reactions++];
    memset(x, 0, sizeof *x);
    store_copy_text(x->emoji, sizeof x->emoji, emoji, emoji ? strlen(emoji) : 0);
    x->count = store_res_i(&rr, i, 2);
    x->me = store_res_i(&rr, i, 3) != 0;
  }
  k = 0;
  for (int i = 0; err == 0 && i < mr.rows; i++) {
    int64_t seq = store_res_i(&mr, i, 0);
    int64_t *grown;
    while (k < (size_t)r.rows && msgs[k].seq < seq)
      k++;
    if (k == (size_t)r.rows || msgs[k].seq != seq)
      continue;
    grown = realloc(msgs[k].mentions, (msgs[k].n_mentions + 1) * sizeof *grown);
    if (grown == NULL) {
      err = PARLEY_EUNAVAILABLE;
      break;
    }
    msgs[k].mentions = grown;
    grown[msgs[k].n_mentions++] = store_res_i(&mr, i, 1);
  }
  if (err) {
    for (int i = 0; i < r.rows; i++)
      store_msg_dispose(&msgs[i]);
    free(msgs);
    goto cleanup;
  }
  *out = msgs;
  *n = (size_t)r.rows;
cleanup:
  store_res_free(&r);
  store_res_free(&rr);
  store_res_free(&mr);
  return err;
}

/* Entry `seq` of chat_id into *m (disposed first). */
int store_rules_msg_load_one(const struct store_prims *p, void *be, int64_t chat_id, int64_t seq,
                         int64_t viewer, struct store_msg *m) {
  struct store_msg *msgs = NULL;
  size_t n = 0;
  int err = msg__load(p, be, chat_id, seq, seq, viewer, &msgs, &n);
  if (err)
    return err;
  if (n != 1) {
    for (size_t i = 0; i < n; i++)
      store_msg_dispose(&msgs[i]);
    free(msgs);
    return PARLEY_ENOT_FOUND;
  }
  store_msg_dispose(m);
  *m = msgs[0];
  free(msgs);
  return 0;
}

/* Replaces the messages a backend read (out.msgs, a seq range) by the same range read with their
 * folded state and every field of their kind. */
static int msg__fold_range(const struct store_prims *p, void *be, struct store_req *req) {
  struct store_msg *msgs = NULL;
  size_t n = 0;
  int err;
  if (req->out.n_msgs == 0)
    return 0;
  err = msg__load(p, be, req->out.chat.id, req->out.msgs[0].seq,
                  req->out.msgs[req->out.n_msgs - 1].seq, req->in.user_id, &msgs, &n);
  if (err)
    return err;
  for (size_t i = 0; i < req->out.n_msgs; i++)
    store_msg_dispose(&req->out.msgs[i]);
  free(req->out.msgs);
  req->out.msgs = msgs;
  req->out.n_msgs = n;
  return 0;
}

/* ---- appending an entry ---- */

/* The next seq, which is the chat's newest text when the entry is one (migration 17). */
static const char MSG_SQL_NEXT_SEQ[] =
    "UPDATE chats SET last_seq = last_seq + 1, last_text_seq = CASE WHEN $2 = 'text'"
    " THEN last_seq + 1 ELSE last_text_seq END WHERE id = $1 RETURNING last_seq";
static const char MSG_SQL_INSERT[] =
    "INSERT INTO messages(chat_id, seq, author_id, body, created_at, kind, ref, detail, flag,"
    " action, subject_id, stream_state, stream_len, stream_at, client_msg_id, reply_to, tally)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
    STORE_SQL_TALLY_NEXT("$1", "$2", "$6") ")";

/* Appends entry `e` by in.user_id to chat_id under the next seq (the chat is locked by the
 * caller on PostgreSQL) and reads it back into *m. */
int store_rules_entry_append(const struct store_prims *p, void *be, struct store_req *req,
                             int64_t chat_id, const struct store_entry *e, struct store_msg *m) {
  struct store_arg a1[] = {STORE_I(chat_id), STORE_S(msg__kinds[e->kind])};
  struct store_res r = {0};
  int64_t seq;
  int err = p->sql(be, MSG_SQL_NEXT_SEQ, a1, 2, &r);
  if (err)
    return err;
  seq = store_res_i(&r, 0, 0);
  store_res_free(&r);
  if (seq <= 0)
    return PARLEY_ENOT_FOUND;
  {
    struct store_arg a[] = {STORE_I(chat_id),
                            STORE_I(seq),
                            STORE_I(req->in.user_id),
                            STORE_S(e->body ? e->body : ""),
                            STORE_I(req->in.now),
                            STORE_S(msg__kinds[e->kind]),
                            msg__opt(e->ref),
                            STORE_S(e->detail),
                            e->kind == STORE_KIND_REACTION ? STORE_I(e->flag) : MSG__NULL,
                            STORE_S(e->action),
                            msg__opt(e->subject),
                            STORE_S(stream_state_name(e->stream_state)),
                            e->stream_state ? STORE_I(e->stream_len) : MSG__NULL,
                            e->stream_state == STREAM_STREAMING ? STORE_I(req->in.now) : MSG__NULL,
                            STORE_S(e->client_msg_id && e->client_msg_id[0] ? e->client_msg_id
                                                                            : NULL),
                            msg__opt(e->reply_to)};
    err = p->sql(be, MSG_SQL_INSERT, a, MSG__COUNT(a), NULL);
  }
  if (err == 0)
    err = store_rules_msg_load_one(p, be, chat_id, seq, req->in.user_id, m);
  if (err == 0)
    req->out.chat.last_seq = seq;
  return err;
}

int store_rules_notice(const struct store_prims *p, void *be, struct store_req *req,
                       int64_t chat_id, const char *action, int64_t subject, const char *detail) {
  struct store_entry e = {STORE_KIND_NOTICE, "", 0, detail, 0, action, subject, STREAM_NONE, 0, NULL, 0};
  return store_rules_entry_append(p, be, req, chat_id, &e, &req->out.notice);
}

/* ---- DMs ---- */

static const char MSG_SQL_DM_PEER[] =
    "SELECT c.kind, u.id, u.username, u.display_name, u.created_at, u.bot FROM chats c"
    " LEFT JOIN participants p ON p.chat_id = c.id AND p.user_id <> $2 AND c.kind = 'dm'"
    " LEFT JOIN users u ON u.id = p.user_id WHERE c.id = $1";

int store_rules_chat_dm(const struct store_prims *p, void *be, struct store_req *req,
                        struct store_chat *c) {
  struct store_arg a[] = {STORE_I(c->id), STORE_I(req->in.user_id)};
  struct store_res r = {0};
  int err = p->sql(be, MSG_SQL_DM_PEER, a, 2, &r);
  if (err)
    return err;
  c->is_dm = r.rows > 0 && store_res_s(&r, 0, 0) && strcmp(store_res_s(&r, 0, 0), "dm") == 0;
  memset(&c->peer, 0, sizeof c->peer);
  if (c->is_dm) {
    msg__user(&r, 0, 1, &c->peer);
    c->peer.bot = store_res_i(&r, 0, 5) != 0;
  }
  store_res_free(&r);
  return 0;
}

int store_rules_not_dm(const struct store_prims *p, void *be, struct store_req *req,
                       int64_t chat_id, const char *what) {
  static const char sql[] = "SELECT kind FROM chats WHERE id = $1";
  struct store_arg a[] = {STORE_I(chat_id)};
  struct store_res r = {0};
  int dm;
  int err = p->sql(be, sql, a, 1, &r);
  if (err)
    return err;
  dm = r.rows > 0 && store_res_s(&r, 0, 0) && strcmp(store_res_s(&r, 0, 0), "dm") == 0;
  store_res_free(&r);
  if (dm)
    return store_fail(req, PARLEY_EFORBIDDEN, "%s: this is a direct message between two people",
                      what);
  return 0;
}

static int msg__dm_open(const struct store_prims *p, void *be, struct store_req *req) {
  static const char find[] = "SELECT slug FROM chats WHERE dm_key = $1";
  static const char insert[] =
      "INSERT INTO chats(slug, title, is_public, max_participants, owner_id, created_at,"
      " last_activity, kind, dm_key) VALUES ($1, 'Direct message', 0, 2, $2, $3, $3, 'dm', $4)"
      " ON CONFLICT DO NOTHING RETURNING id";
  struct store_user peer = {0};
  struct store_res r = {0};
  char key[48], slug[STORE_SLUG_MAX + 1];
  int64_t lo, hi, chat_id = 0;
  int err;

  if (strnlen(req->in.target, sizeof req->in.target) == sizeof req->in.target ||
      req->in.target[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  err = p->user_by_username(be, req, req->in.target, &peer);
  if (err == 0 && peer.bot)
    err = store_rules_bot_deleted(p, be, peer.id); /* a deleted bot is nobody (issue 19) */
  if (err == PARLEY_ENOT_FOUND)
    return store_fail(req, err, "there is no user named %s", req->in.target);
  if (err)
    return err;
  if (peer.id == req->in.user_id)
    return store_fail(req, PARLEY_EBAD_REQUEST, "a direct message needs someone else");
  lo = peer.id < req->in.user_id ? peer.id : req->in.user_id;
  hi = peer.id < req->in.user_id ? req->in.user_id : peer.id;
  snprintf(key, sizeof key, "%lld:%lld", (long long)lo, (long long)hi);
  /* Found, or made here; one made by another node meanwhile is found on the second look (the
   * UNIQUE index on dm_key makes our insert wait for it and then do nothing). */
  for (int attempt = 0; attempt < 3 && chat_id == 0; attempt++) {
    struct store_arg fa[] = {STORE_S(key)};
    err = p->sql(be, find, fa, 1, &r);
    if (err)
      return err;
    if (r.rows > 0) {
      const char *s = store_res_s(&r, 0, 0);
      store_copy_text(req->in.slug, sizeof req->in.slug, s, s ? strlen(s) : 0);
      store_res_free(&r);
      break;
    }
    store_res_free(&r);
    if (attempt == 0) {
      snprintf(slug, sizeof slug, "dm-%lld-%lld", (long long)lo, (long long)hi);
    } else {
      unsigned char rnd[4] = {0};
      if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return PARLEY_EUNAVAILABLE;
      snprintf(slug, sizeof slug, "dm-%lld-%lld-%02x%02x%02x%02x", (long long)lo, (long long)hi,
               rnd[0], rnd[1], rnd[2], rnd[3]);
    }
    {
      struct store_arg ia[] = {STORE_S(slug), STORE_I(req->in.user_id), STORE_I(req->in.now),
                               STORE_S(key)};
      err = p->sql(be, insert, ia, 4, &r);
    }
    if (err)
      return err;
    chat_id = r.rows > 0 ? store_res_i(&r, 0, 0) : 0;
    store_res_free(&r);
    if (chat_id) {
      err = p->participant_add(be, chat_id, lo, CHAT_ROLE_MEMBER, req->in.now);
      if (err == 0)
        err = p->participant_add(be, chat_id, hi, CHAT_ROLE_MEMBER, req->in.now);
      if (err)
        return err;
      snprintf(req->in.slug, sizeof req->in.slug, "%s", slug);
      req->out.joined = 1;
    }
  }
  if (req->in.slug[0] == '\0')
    return PARLEY_EUNAVAILABLE;
  err = store_chat_find(p, be, req, 0);
  if (err == 0 && req->out.chat.my_role == CHAT_ROLE_NONE)
    err = PARLEY_ENOT_FOUND; /* cannot happen: nobody leaves a DM */
  if (err == 0)
    err = store_rules_chat_dm(p, be, req, &req->out.chat);
  if (err == 0)
    err = store_member_ids(p, be, req, req->out.chat.id);
  return err;
}

/* ---- edit, delete, react ---- */

static const char MSG_SQL_TARGET[] =
    "SELECT author_id, kind, deleted, stream_state FROM messages WHERE chat_id = $1 AND seq = $2";

/* The text message in.seq of the chat (locked, the caller a participant): its author into
 * *author; PARLEY_ENOT_FOUND if it is missing, deleted or not a text message. */
static int msg__target(const struct store_prims *p, void *be, struct store_req *req,
                       int64_t *author) {
  struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq)};
  struct store_res r = {0};
  int err;
  if (req->in.seq <= 0)
    return store_fail(req, PARLEY_ENOT_FOUND, "there is no message %lld in this chat",
                      (long long)req->in.seq);
  err = store_chat_access(p, be, req, ACL_MSG_SEND, 1);
  if (err)
    return err;
  a[0] = STORE_I(req->out.chat.id);
  err = p->sql(be, MSG_SQL_TARGET, a, 2, &r);
  if (err)
    return err;
  if (r.rows == 0 || msg__kind(store_res_s(&r, 0, 1)) != STORE_KIND_TEXT) {
    store_res_free(&r);
    return store_fail(req, PARLEY_ENOT_FOUND, "there is no message %lld in this chat",
                      (long long)req->in.seq);
  }
  if (store_res_i(&r, 0, 2) != 0) {
    store_res_free(&r);
    return store_fail(req, PARLEY_ENOT_FOUND, "message %lld was deleted",
                      (long long)req->in.seq);
  }
  *author = store_res_i(&r, 0, 0);
  if (req->op == STORE_MSG_EDIT &&
      stream_state_parse(store_res_s(&r, 0, 3)) == STREAM_STREAMING) {
    store_res_free(&r);
    return store_fail(req, PARLEY_ECONFLICT, "message %lld is still streaming",
                      (long long)req->in.seq);
  }
  store_res_free(&r);
  return 0;
}

static int msg__mentions(const struct store_prims *p, void *be, struct store_req *req,
                         int64_t chat_id, int64_t seq);

/* Mentions follow the edited body: the message's mentions are resolved again from in.body, and
 * the users it mentions now but did not before go into out.member_ids (those an edit drops are
 * simply no longer mentioned: nobody is told). With any, out.msgs[0] is the edited message. */
static int msg__remention(const struct store_prims *p, void *be, struct store_req *req) {
  static const char who[] = "SELECT user_id FROM message_mentions WHERE chat_id = $1 AND seq = $2";
  static const char drop[] = "DELETE FROM message_mentions WHERE chat_id = $1 AND seq = $2";
  struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq)};
  struct store_res before = {0}, now = {0};
  int err = p->sql(be, who, a, 2, &before);
  if (err == 0 && before.rows == 0 && strchr(req->in.body, '@') == NULL)
    goto done; /* no mention before or after */
  if (err == 0)
    err = p->sql(be, drop, a, 2, NULL);
  if (err == 0 && strchr(req->in.body, '@') != NULL)
    err = msg__mentions(p, be, req, req->out.chat.id, req->in.seq);
  if (err == 0)
    err = p->sql(be, who, a, 2, &now);
  if (err == 0 && now.rows > 0) {
    req->out.member_ids = calloc((size_t)now.rows, sizeof *req->out.member_ids);
    if (req->out.member_ids == NULL)
      err = PARLEY_EUNAVAILABLE;
  }
  for (int i = 0; err == 0 && i < now.rows; i++) {
    int64_t id = store_res_i(&now, i, 0);
    int k = 0;
    while (k < before.rows && store_res_i(&before, k, 0) != id)
      k++;
    if (k == before.rows)
      req->out.member_ids[req->out.n_member_ids++] = id;
  }
  if (err == 0 && req->out.n_member_ids > 0) {
    req->out.msgs = calloc(1, sizeof *req->out.msgs);
    if (req->out.msgs == NULL)
      err = PARLEY_EUNAVAILABLE;
    else
      req->out.n_msgs = 1;
    if (err == 0)
      err = store_rules_msg_load_one(p, be, req->out.chat.id, req->in.seq, req->in.user_id, &req->out.msgs[0]);
  }
done:
  store_res_free(&before);
  store_res_free(&now);
  return err;
}

static int msg__edit(const struct store_prims *p, void *be, struct store_req *req) {
  static const char update[] =
      "UPDATE messages SET body = $3, edited_at = $4 WHERE chat_id = $1 AND seq = $2";
  struct store_entry e = {STORE_KIND_EDIT, req->in.body, req->in.seq, NULL, 0, NULL, 0, STREAM_NONE, 0, NULL, 0};
  int64_t author = 0;
  int err;
  if (req->in.body == NULL || req->in.body[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  err = msg__target(p, be, req, &author);
  if (err)
    return err;
  if (author != req->in.user_id)
    return store_fail(req, PARLEY_EFORBIDDEN, "only its author can edit a message");
  {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq),
                            STORE_S(req->in.body), STORE_I(req->in.now)};
    err = p->sql(be, update, a, 4, NULL);
  }
  if (err == 0)
    err = msg__remention(p, be, req);
  if (err)
    return err;
  return store_rules_entry_append(p, be, req, req->out.chat.id, &e, &req->out.msg);
}

static int msg__delete(const struct store_prims *p, void *be, struct store_req *req) {
  /* The body is erased, not hidden: the message's and its edits' (which hold earlier bodies). */
  static const char erase[] =
      "UPDATE messages SET body = '', deleted = 1 WHERE chat_id = $1 AND seq = $2";
  static const char erase_edits[] =
      "UPDATE messages SET body = '' WHERE chat_id = $1 AND ref = $2 AND kind = 'edit'";
  static const char unreact[] = "DELETE FROM reactions WHERE chat_id = $1 AND seq = $2";
  static const char unmention[] = "DELETE FROM message_mentions WHERE chat_id = $1 AND seq = $2";
  /* An open stream's chunks go too, and it is over (no end entry: it was deleted). */
  static const char unchunk[] = "DELETE FROM stream_chunks WHERE chat_id = $1 AND seq = $2";
  static const char unstream[] =
      "UPDATE messages SET stream_state = 'interrupted', stream_at = NULL"
      " WHERE chat_id = $1 AND seq = $2 AND stream_state = 'streaming'";
  struct store_entry e = {STORE_KIND_DELETE, "", req->in.seq, NULL, 0, NULL, 0, STREAM_NONE, 0, NULL, 0};
  int64_t author = 0;
  int err = msg__target(p, be, req, &author);
  if (err)
    return err;
  if (author != req->in.user_id && req->out.chat.my_role != CHAT_ROLE_OWNER &&
      req->out.chat.my_role != CHAT_ROLE_ADMIN)
    return store_fail(req, PARLEY_EFORBIDDEN,
                      "only its author, the owner and admins can delete a message");
  {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq)};
    err = p->sql(be, erase, a, 2, NULL);
    if (err == 0)
      err = p->sql(be, erase_edits, a, 2, NULL);
    if (err == 0)
      err = p->sql(be, unreact, a, 2, NULL);
    if (err == 0)
      err = p->sql(be, unmention, a, 2, NULL);
    if (err == 0)
      err = p->sql(be, unchunk, a, 2, NULL);
    if (err == 0)
      err = p->sql(be, unstream, a, 2, NULL);
  }
  if (err)
    return err;
  return store_rules_entry_append(p, be, req, req->out.chat.id, &e, &req->out.msg);
}

/* One emoji, roughly: 1..STORE_EMOJI_MAX bytes, at least one character outside ASCII (every
 * emoji has one, but for the keycaps' leading digit or '#'), no white space or control. */
static int msg__emoji_ok(const char *s) {
  size_t n;
  int wide = 0;
  if (s == NULL)
    return 0;
  n = strlen(s);
  if (n == 0 || n > STORE_EMOJI_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c == 0x7f)
      return 0;
    if (c >= 0x80)
      wide = 1;
  }
  return wide;
}

static int msg__react(const struct store_prims *p, void *be, struct store_req *req) {
  static const char has[] = "SELECT count(*) FROM reactions"
                            " WHERE chat_id = $1 AND seq = $2 AND user_id = $3 AND emoji = $4";
  static const char distinct[] = "SELECT count(DISTINCT emoji),"
                                 " sum(CASE WHEN emoji = $3 THEN 1 ELSE 0 END)"
                                 " FROM reactions WHERE chat_id = $1 AND seq = $2";
  static const char add[] =
      "INSERT INTO reactions(chat_id, seq, user_id, emoji, at) VALUES ($1, $2, $3, $4, $5)";
  static const char del[] =
      "DELETE FROM reactions WHERE chat_id = $1 AND seq = $2 AND user_id = $3 AND emoji = $4";
  const char *emoji = req->in.query;
  struct store_entry e = {STORE_KIND_REACTION, "", req->in.seq, emoji, req->in.on != 0, NULL, 0, STREAM_NONE, 0, NULL, 0};
  struct store_res r = {0};
  int64_t author = 0;
  int present;
  int err;

  if (!msg__emoji_ok(emoji))
    return store_fail(req, PARLEY_EBAD_REQUEST, "emoji: must be one emoji of at most %d bytes",
                      STORE_EMOJI_MAX);
  err = msg__target(p, be, req, &author);
  if (err)
    return err;
  {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq),
                            STORE_I(req->in.user_id), STORE_S(emoji)};
    err = p->sql(be, has, a, 4, &r);
  }
  if (err)
    return err;
  present = store_res_i(&r, 0, 0) > 0;
  store_res_free(&r);
  if (present == (req->in.on != 0))
    return 0; /* nothing changes: no entry, out.msg.seq stays 0 */
  if (req->in.on) {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq), STORE_S(emoji)};
    err = p->sql(be, distinct, a, 3, &r);
    if (err)
      return err;
    if (store_res_i(&r, 0, 0) >= STORE_REACTIONS_MAX && store_res_i(&r, 0, 1) == 0) {
      store_res_free(&r);
      return store_fail(req, PARLEY_ECONFLICT, "a message holds at most %d different emoji",
                        STORE_REACTIONS_MAX);
    }
    store_res_free(&r);
  }
  err = store_rules_entry_append(p, be, req, req->out.chat.id, &e, &req->out.msg);
  if (err)
    return err;
  {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq),
                            STORE_I(req->in.user_id), STORE_S(emoji),
                            STORE_I(req->out.msg.seq)};
    err = p->sql(be, req->in.on ? add : del, a, req->in.on ? 5 : 4, NULL);
  }
  return err;
}

/* ---- sends: replies and mentions ---- */

/* The usernames after '@' in body (a username is [a-z0-9_] here, what signup allows, ASCII
 * case-folded), resolved to participants of chat_id and stored as mentions of message seq. */
static int msg__mentions(const struct store_prims *p, void *be, struct store_req *req,
                         int64_t chat_id, int64_t seq) {
  static const char who[] =
      "SELECT u.id FROM users u JOIN participants p ON p.user_id = u.id AND p.chat_id = $1"
      " WHERE u.username = $2";
  static const char add[] = "INSERT INTO message_mentions(chat_id, seq, user_id)"
                            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
  const char *s = req->in.body;
  int found = 0;
  for (const char *at = strchr(s, '@'); at && found < STORE_MENTIONS_MAX;
       at = strchr(at + 1, '@')) {
    char name[STORE_USERNAME_MAX + 1];
    size_t n = 0;
    struct store_res r = {0};
    int err;
    if (at > s && (((unsigned char)at[-1] >= 'a' && (unsigned char)at[-1] <= 'z') ||
                   ((unsigned char)at[-1] >= 'A' && (unsigned char)at[-1] <= 'Z') ||
                   ((unsigned char)at[-1] >= '0' && (unsigned char)at[-1] <= '9')))
      continue; /* an e-mail address, not a mention */
    while (n < STORE_USERNAME_MAX) {
      char c = at[1 + n];
      if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
        break;
      name[n++] = c;
    }
    name[n] = '\0';
    if (n == 0)
      continue;
    {
      struct store_arg a[] = {STORE_I(chat_id), STORE_S(name)};
      err = p->sql(be, who, a, 2, &r);
    }
    if (err)
      return err;
    if (r.rows > 0) {
      struct store_arg a[] = {STORE_I(chat_id), STORE_I(seq), STORE_I(store_res_i(&r, 0, 0))};
      err = p->sql(be, add, a, 3, NULL);
      found++;
    }
    store_res_free(&r);
    if (err)
      return err;
  }
  return 0;
}

/* After the backend stored a send: its reply_to (a text message before it; a deleted one is
 * still a valid target, its preview is "") and its mentions, then the message is read back with
 * them. A duplicate is read back as stored. */
static int msg__send_extras(const struct store_prims *p, void *be, struct store_req *req) {
  static const char reply[] =
      "UPDATE messages SET reply_to = $3 WHERE chat_id = $1 AND seq = $2"
      " AND EXISTS (SELECT 1 FROM messages r WHERE r.chat_id = $1 AND r.seq = $3"
      " AND r.kind = 'text') RETURNING seq";
  struct store_msg *m = &req->out.msg;
  int err;
  if (req->out.duplicate)
    return store_rules_msg_load_one(p, be, req->out.chat.id, m->seq, req->in.user_id, m);
  if (req->in.reply_to <= 0 && strchr(req->in.body, '@') == NULL)
    return 0; /* a plain message: as the backend stored it (kind text, nothing folded yet) */
  if (req->in.reply_to > 0) {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(m->seq), STORE_I(req->in.reply_to)};
    struct store_res r = {0};
    if (req->in.reply_to >= m->seq)
      return store_fail(req, PARLEY_ENOT_FOUND, "replyTo: there is no message %lld before this one",
                        (long long)req->in.reply_to);
    err = p->sql(be, reply, a, 3, &r);
    if (err)
      return err;
    if (r.rows == 0) {
      store_res_free(&r);
      return store_fail(req, PARLEY_ENOT_FOUND, "replyTo: there is no message %lld in this chat",
                        (long long)req->in.reply_to);
    }
    store_res_free(&r);
  }
  if (strchr(req->in.body, '@') != NULL) {
    err = msg__mentions(p, be, req, req->out.chat.id, m->seq);
    if (err)
      return err;
  }
  return store_rules_msg_load_one(p, be, req->out.chat.id, m->seq, req->in.user_id, m);
}

/* ---- chat list: the newest text message, unread text and unread mentions ---- */

static int msg__chat_list(const struct store_prims *p, void *be, struct store_req *req) {
  static const char counts[] =
      "SELECT p.chat_id,"
      " (SELECT c.last_text_seq FROM chats c WHERE c.id = p.chat_id),"
      " " STORE_SQL_UNREAD("p.chat_id", "coalesce(r.seq, 0)", "p.chat_id") ","
      " (SELECT count(*) FROM message_mentions mm WHERE mm.chat_id = p.chat_id"
      "   AND mm.user_id = $1 AND mm.seq > coalesce(r.seq, 0))"
      " FROM participants p"
      " LEFT JOIN read_markers r ON r.chat_id = p.chat_id AND r.user_id = p.user_id"
      " WHERE p.user_id = $1";
  struct store_arg a[] = {STORE_I(req->in.user_id)};
  struct store_res r = {0};
  int err = p->op[STORE_CHAT_LIST](be, req);
  if (err)
    return err;
  err = p->sql(be, counts, a, 1, &r);
  if (err)
    return err;
  for (size_t i = 0; err == 0 && i < req->out.n_chats; i++) {
    struct store_chat *c = &req->out.chats[i];
    int row = -1;
    int64_t last_text;
    for (int k = 0; k < r.rows; k++)
      if (store_res_i(&r, k, 0) == c->id) {
        row = k;
        break;
      }
    if (row < 0)
      continue;
    last_text = store_res_i(&r, row, 1);
    /* Never below 0, even when rows written outside the server (a restore, a shell) broke the
     * tallies' order (fuzz_store found one). */
    req->out.unread[i] = store_res_i(&r, row, 2) < 0 ? 0 : store_res_i(&r, row, 2);
    c->mentions = store_res_i(&r, row, 3);
    if (last_text > 0) {
      err = store_rules_msg_load_one(p, be, c->id, last_text, req->in.user_id, &req->out.last_msgs[i]);
    } else { /* only notices so far: no lastMessage */
      store_msg_dispose(&req->out.last_msgs[i]);
      memset(&req->out.last_msgs[i], 0, sizeof req->out.last_msgs[i]);
    }
    if (err == 0)
      err = store_rules_chat_dm(p, be, req, c);
  }
  store_res_free(&r);
  return err;
}

/* ---- the dispatch ---- */

int store_rules_msg_exec(const struct store_prims *p, void *be, struct store_req *req) {
  int err;
  switch (req->op) {
  case STORE_MSG_EDIT:
    return msg__edit(p, be, req);
  case STORE_MSG_DELETE:
    return msg__delete(p, be, req);
  case STORE_REACT:
    return msg__react(p, be, req);
  case STORE_DM_OPEN:
    return msg__dm_open(p, be, req);
  case STORE_CHAT_LIST:
    return msg__chat_list(p, be, req);
  case STORE_MSG_APPEND:
    err = p->op[STORE_MSG_APPEND](be, req);
    return err ? err : msg__send_extras(p, be, req);
  case STORE_MSG_HISTORY:
  case STORE_MSG_SINCE:
    return 1; /* the caller reads, then store_rules_msg_fold() */
  default:
    return 1;
  }
}

int store_rules_msg_fold(const struct store_prims *p, void *be, struct store_req *req) {
  return msg__fold_range(p, be, req);
}
