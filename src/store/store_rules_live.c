/* store_rules_live.c - the rules of the store ops of issue 18 (the live chat list, chat.notify,
 * the public directory, the profile), for every backend, over the primitives of
 * struct store_prims like store_rules.c. Kept apart so that neither file grows past a screenful
 * of ops; the backends' exec() asks here before store_rules_exec().
 */
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "store/store_rules.h"

#define LIVE_TERMINATED(arr) (strnlen((arr), sizeof(arr)) < sizeof(arr))
#define LIVE_BROWSE_QUERY_MAX 64 /* bytes of chat.browse's q (proto's limit) */

/* The activity of a chat: who is in it and how far each has read, so that app/ can tell every
 * participant their unread count with one query per message, not one per participant. For a
 * reader (in.user_id), also the newest message: the chat list shows it. */
static int live_chat_activity(const struct store_prims *p, void *be, struct store_req *req) {
  int64_t last;
  int more = 0;
  int err = store_chat_find(p, be, req, 0);
  if (err)
    return err;
  /* is_dm (the chat load leaves it unset): every entry of a DM is `mentioned` for the peer. */
  err = store_rules_chat_dm(p, be, req, &req->out.chat);
  if (err == 0)
    err = p->chat_readers(be, req, req->out.chat.id, req->in.user_id, req->in.reader_ids,
                          req->out.chat.last_seq);
  if (err || req->in.user_id == 0 || req->out.n_member_ids == 0 || req->out.chat.last_seq == 0)
    return err;
  last = req->out.chat.last_seq;
  err = p->msgs(be, req, last - 1, last + 1, 1, &more);
  if (err == 0 && req->out.n_msgs == 1) {
    req->out.msg = req->out.msgs[0]; /* moved: the array no longer owns its body */
    req->out.n_msgs = 0;
  }
  return err;
}

static int live_notify_set(const struct store_prims *p, void *be, struct store_req *req) {
  int err;
  if (req->in.level < STORE_NOTIFY_ALL || req->in.level > STORE_NOTIFY_NONE)
    return PARLEY_EBAD_REQUEST;
  err = store_chat_find(p, be, req, 0);
  if (err)
    return err;
  if (req->out.chat.my_role == CHAT_ROLE_NONE)
    return store_fail(req, PARLEY_EFORBIDDEN, "only participants choose their notifications");
  err = p->notify_set(be, req->out.chat.id, req->in.user_id, req->in.level);
  if (err == 0)
    req->out.chat.notify = (enum store_notify)req->in.level;
  return err;
}

static int member_id_cmp(const void *x, const void *y) {
  const struct store_member *a = x, *b = y;
  return a->user.id < b->user.id ? -1 : a->user.id > b->user.id;
}

/* chat.members' page (in.limit > 0): the participants with an id above in.since, by id, at most
 * in.limit of them; out.has_more when more follow. Sorted here, on the store thread, so the
 * loop only encodes the page. */
static void live_members_page(struct store_req *req) {
  struct store_member *m = req->out.members;
  size_t n = req->out.n_members, first = 0, keep;
  if (n > 1)
    qsort(m, n, sizeof *m, member_id_cmp);
  while (first < n && m[first].user.id <= req->in.since)
    first++;
  keep = n - first;
  req->out.has_more = keep > (size_t)req->in.limit;
  if (req->out.has_more)
    keep = (size_t)req->in.limit;
  memmove(m, m + first, keep * sizeof *m);
  req->out.n_members = keep;
}

/* The compact answer (in.compact): ids, lastSeen and usernames in three flat arrays. */
static int live_members_compact(struct store_req *req) {
  size_t n = req->out.n_members;
  const size_t w = STORE_USERNAME_MAX + 1;
  int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
  int64_t *seen = malloc((n ? n : 1) * sizeof *seen);
  unsigned char *names = malloc((n ? n : 1) * w);
  if (ids == NULL || seen == NULL || names == NULL) {
    free(ids);
    free(seen);
    free(names);
    return PARLEY_EUNAVAILABLE;
  }
  for (size_t i = 0; i < n; i++) {
    const struct store_user *u = &req->out.members[i].user;
    ids[i] = u->id;
    seen[i] = u->last_seen;
    memcpy(names + i * w, u->username, w);
  }
  free(req->out.members);
  req->out.members = NULL;
  req->out.n_members = 0;
  req->out.member_ids = ids;
  req->out.member_reads = seen;
  req->out.n_member_ids = n;
  req->out.data = names;
  req->out.data_len = n * w;
  return 0;
}

/* chat.get's participants (or chat.members' page), and the caller's own notification level if
 * they are one. */
static int live_chat_members(const struct store_prims *p, void *be, struct store_req *req) {
  int level = 0;
  int err = p->op[STORE_CHAT_MEMBERS](be, req);
  if (err == 0 && req->in.limit > 0)
    live_members_page(req);
  if (err == 0 && req->in.compact)
    err = live_members_compact(req);
  if (err == 0 && req->out.chat.my_role != CHAT_ROLE_NONE)
    err = p->notify_of(be, req->out.chat.id, req->in.user_id, &level);
  req->out.chat.notify = (enum store_notify)level;
  /* The same DM fields as store_rules_exec's CHAT_MEMBERS (this op replaces it there). */
  return err ? err : store_rules_chat_dm(p, be, req, &req->out.chat);
}

/* Folds ASCII as SQLite's lower() does and escapes LIKE's wildcards with '\', so a title word
 * start is a plain prefix match in both dialects. `out` holds 2 * len + 1 bytes. */
static void live_like_prefix(const char *q, size_t len, char *out, size_t *olen) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)q[i];
    if (ch == '%' || ch == '_' || ch == '\\')
      out[o++] = '\\';
    out[o++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  }
  out[o] = '\0';
  *olen = o;
}

static int live_chat_browse(const struct store_prims *p, void *be, struct store_req *req) {
  char lo[2 * LIVE_BROWSE_QUERY_MAX + 1];
  size_t len = 0;
  int limit = req->in.limit;
  int err;

  if (limit < 1 || limit > STORE_BROWSE_MAX || req->in.before < 0)
    return PARLEY_EBAD_REQUEST;
  if (req->in.query) {
    size_t qlen = strlen(req->in.query);
    if (qlen == 0 || qlen > LIVE_BROWSE_QUERY_MAX)
      return PARLEY_EBAD_REQUEST;
    live_like_prefix(req->in.query, qlen, lo, &len);
  }
  err = p->chats_browse(be, req, req->in.query ? lo : NULL, len, req->in.before, limit);
  if (err == 0 && req->out.n_chats > (size_t)limit) {
    req->out.has_more = 1;
    while (req->out.n_chats > (size_t)limit)
      free(req->out.chats[--req->out.n_chats].title);
  }
  return err;
}

/* The user after a profile change, and everyone who shows their name or picture. */
static int live_user_after(const struct store_prims *p, void *be, struct store_req *req) {
  int err = p->user_by_id(be, req->in.user_id, &req->out.user);
  if (err == 0)
    err = p->op[STORE_PRESENCE_AUDIENCE](be, req);
  return err;
}

static int live_user_update(const struct store_prims *p, void *be, struct store_req *req) {
  const char *display = req->in.user.display_name;
  int err;
  if (!LIVE_TERMINATED(req->in.user.display_name) || display[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  err = p->user_set_display(be, req->in.user_id, display);
  /* users.search finds people by the words of their current name only. */
  if (err == 0)
    err = p->user_words_delete(be, req->in.user_id);
  if (err == 0)
    err = store_user_words(p, be, req->in.user_id, display);
  if (err == 0)
    err = live_user_after(p, be, req);
  return err;
}

static int live_avatar_name_ok(const char *name) {
  size_t n = strnlen(name, STORE_AVATAR_NAME_MAX + 1);
  if (n == 0 || n > STORE_AVATAR_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
          name[i] == '.'))
      return 0;
  return 1;
}

static int live_avatar_set(const struct store_prims *p, void *be, struct store_req *req) {
  char old[STORE_AVATAR_NAME_MAX + 1] = "";
  const char *name = req->in.query;
  int err = 0;
  if (name && (!live_avatar_name_ok(name) || req->in.data == NULL || req->in.data_len == 0))
    return PARLEY_EBAD_REQUEST;
  if (name)
    err = p->avatar_put(be, name, req->in.data, req->in.data_len, req->in.now);
  if (err == 0)
    err = p->user_set_avatar(be, req->in.user_id, name, old);
  /* Avatars are stored by content, so two users may share one: it goes with its last user. */
  if (err == 0 && old[0] && (name == NULL || strcmp(old, name) != 0))
    err = p->avatar_gc(be, old);
  if (err == 0)
    err = live_user_after(p, be, req);
  return err;
}

int store_rules_live_exec(const struct store_prims *p, void *be, struct store_req *req, int *err) {
  switch (req->op) {
  case STORE_CHAT_ACTIVITY:
    *err = LIVE_TERMINATED(req->in.slug) ? live_chat_activity(p, be, req) : PARLEY_EBAD_REQUEST;
    return 0;
  case STORE_NOTIFY_SET:
    *err = LIVE_TERMINATED(req->in.slug) ? live_notify_set(p, be, req) : PARLEY_EBAD_REQUEST;
    return 0;
  case STORE_CHAT_MEMBERS:
    *err = live_chat_members(p, be, req);
    return 0;
  case STORE_CHAT_BROWSE:
    *err = live_chat_browse(p, be, req);
    return 0;
  case STORE_USER_UPDATE:
    *err = live_user_update(p, be, req);
    return 0;
  case STORE_PASSWORD_SET:
    *err = req->in.pwhash && req->in.pwhash[0] ? p->op[STORE_PASSWORD_SET](be, req)
                                               : PARLEY_EBAD_REQUEST;
    return 0;
  case STORE_AVATAR_SET:
    *err = live_avatar_set(p, be, req);
    return 0;
  case STORE_AVATAR_GET:
    *err = req->in.query && live_avatar_name_ok(req->in.query) ? p->op[STORE_AVATAR_GET](be, req)
                                                               : PARLEY_ENOT_FOUND;
    return 0;
  default:
    return 1;
  }
}
