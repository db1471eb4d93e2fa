/* store_rules_stream.c - streamed messages (issue 19), for every backend, over the generic
 * statement primitive like store_rules_msg.c.
 *
 * A stream is a text message whose row carries stream_state (streaming until its end),
 * stream_len (its body's bytes) and stream_at (the time of its last append). An append extends
 * the body in the row, inside the batch's transaction: the group commit makes it durable before
 * the caller's callback runs, so the append is acknowledged, and its delta fanned out, only once
 * it is stored. Its end is an entry of the sequence (kind stream.end, ref = the stream's seq)
 * with the final body and state, so a client that resumes by seq sees the end in order.
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/store_rules.h"

#define STREAM__TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))

static const char STREAM_SQL_ROW[] =
    "SELECT author_id, kind, stream_state, stream_len, deleted FROM messages"
    " WHERE chat_id = $1 AND seq = $2";
static const char STREAM_SQL_BODY[] = "SELECT body FROM messages WHERE chat_id = $1 AND seq = $2";

struct stream__row {
  int64_t author;
  enum stream_state state;
  int64_t len;
};

/* Stream in.seq of the chat in out.chat into *row: PARLEY_ENOT_FOUND if no streamed message has
 * that seq. A deleted stream counts as ended. */
static int stream__row(const struct store_prims *p, void *be, struct store_req *req,
                       struct stream__row *row) {
  struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq)};
  struct store_res r = {0};
  const char *kind;
  int err = p->sql(be, STREAM_SQL_ROW, a, 2, &r);
  if (err)
    return err;
  kind = store_res_s(&r, 0, 1);
  if (r.rows == 0 || kind == NULL || strcmp(kind, "text") != 0 ||
      stream_state_parse(store_res_s(&r, 0, 2)) == STREAM_NONE) {
    store_res_free(&r);
    return store_fail(req, PARLEY_ENOT_FOUND, "there is no stream %lld in this chat",
                      (long long)req->in.seq);
  }
  row->author = store_res_i(&r, 0, 0);
  row->state = stream_state_parse(store_res_s(&r, 0, 2));
  row->len = store_res_i(&r, 0, 3);
  if (store_res_i(&r, 0, 4) != 0)
    row->state = STREAM_DONE; /* deleted: nothing more is appended to it */
  store_res_free(&r);
  return 0;
}

static int stream__start(const struct store_prims *p, void *be, struct store_req *req) {
  static const char by_client_id[] =
      "SELECT seq FROM messages WHERE chat_id = $1 AND author_id = $2 AND client_msg_id = $3";
  static const char open_count[] =
      "SELECT count(*) FROM messages WHERE chat_id = $1 AND stream_state = 'streaming'";
  static const char reply_ok[] =
      "SELECT 1 FROM messages WHERE chat_id = $1 AND seq = $2 AND kind = 'text'";
  static const char read_up[] =
      "INSERT INTO read_markers(chat_id, user_id, seq, updated_at) VALUES ($1, $2, $3, $4)"
      " ON CONFLICT (chat_id, user_id) DO UPDATE SET seq = excluded.seq,"
      " updated_at = excluded.updated_at WHERE read_markers.seq < excluded.seq";
  struct store_entry e = {0};
  struct store_res r = {0};
  int64_t chat_id;
  int err;

  if (!STREAM__TERMINATED(req->in.client_msg_id))
    return PARLEY_EBAD_REQUEST;
  err = store_chat_access(p, be, req, ACL_MSG_SEND, 1);
  if (err)
    return err;
  chat_id = req->out.chat.id;
  if (req->in.client_msg_id[0] != '\0') {
    /* A retry of a start that committed: answer with the stream as it is now. */
    struct store_arg a[] = {STORE_I(chat_id), STORE_I(req->in.user_id),
                            STORE_S(req->in.client_msg_id)};
    err = p->sql(be, by_client_id, a, 3, &r);
    if (err)
      return err;
    if (r.rows > 0) {
      int64_t seq = store_res_i(&r, 0, 0);
      store_res_free(&r);
      req->out.duplicate = 1;
      return store_rules_msg_load_one(p, be, chat_id, seq, req->in.user_id, &req->out.msg);
    }
    store_res_free(&r);
  }
  {
    struct store_arg a[] = {STORE_I(chat_id)};
    err = p->sql(be, open_count, a, 1, &r);
    if (err)
      return err;
    if (store_res_i(&r, 0, 0) >= STORE_STREAMS_OPEN_MAX) {
      store_res_free(&r);
      return store_fail(req, PARLEY_ECONFLICT, "a chat holds at most %d open streams",
                        STORE_STREAMS_OPEN_MAX);
    }
    store_res_free(&r);
  }
  if (req->in.reply_to > 0) {
    struct store_arg a[] = {STORE_I(chat_id), STORE_I(req->in.reply_to)};
    err = p->sql(be, reply_ok, a, 2, &r);
    if (err)
      return err;
    if (r.rows == 0) {
      store_res_free(&r);
      return store_fail(req, PARLEY_ENOT_FOUND, "replyTo: there is no message %lld in this chat",
                        (long long)req->in.reply_to);
    }
    store_res_free(&r);
  }
  e.kind = STORE_KIND_TEXT;
  e.body = "";
  e.stream_state = STREAM_STREAMING;
  e.stream_len = 0;
  e.client_msg_id = req->in.client_msg_id;
  e.reply_to = req->in.reply_to > 0 ? req->in.reply_to : 0;
  err = store_rules_entry_append(p, be, req, chat_id, &e, &req->out.msg);
  if (err)
    return err;
  err = p->chat_touch(be, chat_id, req->in.now);
  if (err == 0) { /* one's own messages are never unread */
    struct store_arg a[] = {STORE_I(chat_id), STORE_I(req->in.user_id),
                            STORE_I(req->out.msg.seq), STORE_I(req->in.now)};
    err = p->sql(be, read_up, a, 4, NULL);
  }
  return err;
}

static int stream__append(const struct store_prims *p, void *be, struct store_req *req) {
  static const char extend[] =
      "UPDATE messages SET body = body || $3, stream_len = stream_len + $4, stream_at = $5"
      " WHERE chat_id = $1 AND seq = $2";
  struct stream__row row;
  struct store_res body = {0};
  const char *delta = req->in.body;
  size_t dlen = delta ? strlen(delta) : 0;
  enum stream_verdict v;
  int err;

  if (dlen == 0 || dlen > STREAM_DELTA_MAX || req->in.offset < 0)
    return PARLEY_EBAD_REQUEST;
  err = store_chat_access(p, be, req, ACL_MSG_SEND, 1);
  if (err == 0)
    err = stream__row(p, be, req, &row);
  if (err)
    return err;
  if (row.author != req->in.user_id)
    return store_fail(req, PARLEY_EFORBIDDEN, "only its author appends to a stream");
  req->out.stream_len = row.len;
  if (row.state == STREAM_STREAMING && req->in.offset < row.len) {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq)};
    err = p->sql(be, STREAM_SQL_BODY, a, 2, &body);
    if (err)
      return err;
  }
  {
    const char *stored = store_res_s(&body, 0, 0);
    /* The stored length is stream_len; a body shorter than it (cannot happen) never matches. */
    if (stored && (int64_t)strlen(stored) < row.len)
      stored = NULL;
    v = stream_append_check(row.state, stored, row.len, req->in.offset, delta, dlen,
                            STREAM_BODY_MAX);
  }
  store_res_free(&body);
  switch (v) {
  case STREAM_RETRY:
    return 0; /* appended = 0: the reply tells the length, nobody is told again */
  case STREAM_TOO_LARGE:
    return store_fail(req, PARLEY_ETOO_LARGE, "a streamed message holds at most %d bytes",
                      STREAM_BODY_MAX);
  case STREAM_CONFLICT:
    if (row.state != STREAM_STREAMING)
      return store_fail(req, PARLEY_ECONFLICT, "the stream has ended");
    return store_fail(req, PARLEY_ECONFLICT, "offset: the stream holds %lld bytes",
                      (long long)row.len);
  case STREAM_APPEND:
    break;
  }
  {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq), STORE_S(delta),
                            STORE_I((int64_t)dlen), STORE_I(req->in.now)};
    err = p->sql(be, extend, a, 5, NULL);
  }
  if (err)
    return err;
  req->out.stream_len = row.len + (int64_t)dlen;
  req->out.appended = 1;
  return 0;
}

static int stream__end(const struct store_prims *p, void *be, struct store_req *req) {
  static const char finish[] =
      "UPDATE messages SET stream_state = $3, stream_at = NULL WHERE chat_id = $1 AND seq = $2";
  static const char last_append[] =
      "SELECT stream_at FROM messages WHERE chat_id = $1 AND seq = $2";
  struct store_entry e = {0};
  struct store_res body = {0};
  struct stream__row row;
  enum stream_state state = (enum stream_state)req->in.state;
  int sweep = state == STREAM_INTERRUPTED;
  int err;

  if (state != STREAM_DONE && state != STREAM_ERROR && state != STREAM_INTERRUPTED)
    return store_fail(req, PARLEY_EBAD_REQUEST, "state: must be done or error");
  /* The sweep ends a stream for its author, who may have left the chat since. */
  err = sweep ? store_chat_find(p, be, req, 1) : store_chat_access(p, be, req, ACL_MSG_SEND, 1);
  if (err == 0)
    err = stream__row(p, be, req, &row);
  if (err)
    return err;
  if (row.author != req->in.user_id)
    return store_fail(req, PARLEY_EFORBIDDEN, "only its author ends a stream");
  if (row.state != STREAM_STREAMING)
    return store_fail(req, PARLEY_ECONFLICT, "the stream has ended");
  {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq)};
    if (sweep) { /* an append since the sweep looked keeps it open */
      err = p->sql(be, last_append, a, 2, &body);
      if (err == 0 && store_res_i(&body, 0, 0) > req->in.since)
        err = store_fail(req, PARLEY_ECONFLICT, "the stream is active again");
      store_res_free(&body);
      if (err)
        return err;
    }
    err = p->sql(be, STREAM_SQL_BODY, a, 2, &body);
    if (err)
      return err;
  }
  {
    struct store_arg a[] = {STORE_I(req->out.chat.id), STORE_I(req->in.seq),
                            STORE_S(stream_state_name(state))};
    err = p->sql(be, finish, a, 3, NULL);
  }
  if (err == 0) {
    e.kind = STORE_KIND_STREAM_END;
    e.body = store_res_s(&body, 0, 0);
    e.ref = req->in.seq;
    e.stream_state = state;
    e.stream_len = row.len;
    err = store_rules_entry_append(p, be, req, req->out.chat.id, &e, &req->out.msg);
  }
  store_res_free(&body);
  if (err == 0)
    err = p->chat_touch(be, req->out.chat.id, req->in.now);
  return err;
}

/* The streams idle since in.since, oldest first, each with its chat's slug and its author's
 * last_seen (the sweep decides with them). */
static int stream__due(const struct store_prims *p, void *be, struct store_req *req) {
  static const char due[] =
      "SELECT c.slug, m.seq, m.author_id, u.last_seen, m.stream_len, m.stream_at"
      " FROM messages m JOIN chats c ON c.id = m.chat_id JOIN users u ON u.id = m.author_id"
      " WHERE m.stream_state = 'streaming' AND m.stream_at <= $1"
      " ORDER BY m.stream_at LIMIT $2";
  struct store_arg a[] = {STORE_I(req->in.since), STORE_I(req->in.limit)};
  struct store_res r = {0};
  int err;
  if (req->in.limit < 1 || req->in.limit > STORE_LIMIT_MAX)
    return PARLEY_EBAD_REQUEST;
  err = p->sql(be, due, a, 2, &r);
  if (err)
    return err;
  if (r.rows > 0 && (req->out.found = calloc((size_t)r.rows, sizeof *req->out.found)) == NULL)
    err = PARLEY_EUNAVAILABLE;
  for (int i = 0; err == 0 && i < r.rows; i++) {
    struct store_msg_hit *h = &req->out.found[i];
    const char *slug = store_res_s(&r, i, 0);
    store_copy_text(h->slug, sizeof h->slug, slug, slug ? strlen(slug) : 0);
    h->msg.seq = store_res_i(&r, i, 1);
    h->msg.author.id = store_res_i(&r, i, 2);
    h->msg.author.last_seen = store_res_i(&r, i, 3);
    h->msg.stream_len = store_res_i(&r, i, 4);
    h->msg.created_at = store_res_i(&r, i, 5); /* here: the last append */
    h->msg.stream_state = STREAM_STREAMING;
    req->out.n_found++;
  }
  store_res_free(&r);
  return err;
}

int store_rules_stream_exec(const struct store_prims *p, void *be, struct store_req *req) {
  switch (req->op) {
  case STORE_STREAM_START:
    return stream__start(p, be, req);
  case STORE_STREAM_APPEND:
    return stream__append(p, be, req);
  case STORE_STREAM_END:
    return stream__end(p, be, req);
  case STORE_STREAM_DUE:
    return stream__due(p, be, req);
  default:
    return 1;
  }
}

int store_rules_stream_reads(const struct store_prims *p, void *be, struct store_req *req) {
  static const char open_streams[] =
      "SELECT seq FROM messages WHERE chat_id = $1 AND stream_state = 'streaming' ORDER BY seq";
  size_t bytes = 0, keep = 0;
  struct store_res r = {0};
  int err;

  /* Bodies within the budget, newest first: the oldest beyond it are left for the next page. */
  for (size_t i = req->out.n_msgs; i > 0; i--) {
    const struct store_msg *m = &req->out.msgs[i - 1];
    size_t n = m->body ? strlen(m->body) : 0;
    if (keep > 0 && bytes + n > STORE_REPLY_BODIES_MAX)
      break;
    bytes += n;
    keep++;
  }
  if (keep < req->out.n_msgs) {
    size_t drop = req->out.n_msgs - keep;
    for (size_t i = 0; i < drop; i++)
      store_msg_dispose(&req->out.msgs[i]);
    memmove(req->out.msgs, req->out.msgs + drop, keep * sizeof *req->out.msgs);
    req->out.n_msgs = keep;
    if (req->op == STORE_MSG_HISTORY)
      req->out.has_more = 1;
    else
      req->out.reset = 1;
  }
  if (req->op != STORE_MSG_SINCE || !req->in.with_streams)
    return 0;
  {
    struct store_arg a[] = {STORE_I(req->out.chat.id)};
    err = p->sql(be, open_streams, a, 1, &r);
  }
  if (err)
    return err;
  if (r.rows > 0 && (req->out.streams = calloc((size_t)r.rows, sizeof *req->out.streams)) == NULL)
    err = PARLEY_EUNAVAILABLE;
  for (int i = 0; err == 0 && i < r.rows; i++) {
    err = store_rules_msg_load_one(p, be, req->out.chat.id, store_res_i(&r, i, 0),
                                   req->in.user_id, &req->out.streams[i]);
    if (err == 0)
      req->out.n_streams++;
  }
  store_res_free(&r);
  return err;
}
