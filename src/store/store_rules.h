/* store_rules.h - the rules of every store op, written once for every backend (internal to
 * src/store).
 *
 * What the ops decide (input checks, who may join, update, leave, remove, change a role, accept,
 * decline or revoke; who becomes owner; which slug a chat gets; what the client is told) is the
 * same on SQLite and PostgreSQL; only how a row is read or written differs. So the ops live in
 * store_rules.c, over `struct store_prims`, the row-level primitives each backend provides, and
 * store_rules_exec() is the one dispatch of both. They run on the store thread inside the backend's
 * open transaction and savepoint, like any backend op: a failed op's writes are rolled back by
 * the caller. Every function returns 0 or a PARLEY_E* code; `be` is the backend's state.
 */
#ifndef PARLEY_STORE_RULES_H
#define PARLEY_STORE_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "core/acl.h"
#include "core/invite.h"
#include "core/search_query.h"
#include "store/store.h"

struct store_prims {
  /* Optional (NULL: a single writer, SQLite, needs none): takes the row lock of the chat named
   * `slug` to the end of the transaction; PARLEY_ENOT_FOUND if there is none. */
  int (*chat_lock)(void *be, const char *slug);
  /* Chat `slug` as `user_id` sees it into *c (its previous title freed). */
  int (*chat_load)(void *be, const char *slug, int64_t user_id, struct store_chat *c);
  int (*chat_touch)(void *be, int64_t chat_id, int64_t now); /* last_activity, never back */
  /* Archives the chat and appends its pending invitations to req->out.invites. */
  int (*chat_archive)(void *be, struct store_req *req, int64_t chat_id);
  int (*user_by_id)(void *be, int64_t id, struct store_user *u);
  /* PARLEY_ENOT_FOUND if nobody has that username (`req` is the request it is for). */
  int (*user_by_username)(void *be, struct store_req *req, const char *username,
                          struct store_user *u);
  int (*role_of)(void *be, int64_t chat_id, int64_t user_id, enum chat_role *role);
  int (*set_role)(void *be, int64_t chat_id, int64_t user_id, enum chat_role role);
  int (*set_owner)(void *be, int64_t chat_id, int64_t owner_id);
  int (*participant_add)(void *be, int64_t chat_id, int64_t user_id, enum chat_role role,
                         int64_t now);
  int (*participant_delete)(void *be, int64_t chat_id, int64_t user_id);
  /* Every participant into a heap array *out (caller frees; NULL when *n is 0). */
  int (*participants)(void *be, int64_t chat_id, struct acl_member **out, size_t *n);
  int (*removal_put)(void *be, int64_t chat_id, int64_t user_id, int64_t by, int64_t now);
  int (*removal_delete)(void *be, int64_t chat_id, int64_t user_id);
  /* Invitation `id` into *inv, its chat's id and archived flag into the others. On PostgreSQL it
   * locks the invitation's chat first, then reads the invitation (locks go chat first). */
  int (*invite_load)(void *be, int64_t id, struct store_invite *inv, int64_t *chat_id,
                     int *archived);
  int (*invite_set_status)(void *be, int64_t id, enum invite_status status, int64_t now);
  /* The pending invitation of to_id to chat_id into *inv, if any (*found = 1). */
  int (*invite_pending_for)(void *be, int64_t chat_id, int64_t to_id, struct store_invite *inv,
                            int *found);
  /* Stores a pending invitation from req->in.user_id (times from req->in) and reads it back. */
  int (*invite_insert)(void *be, struct store_req *req, int64_t chat_id, int64_t to_id,
                       struct store_invite *inv);

  /* ---- the rows of the other ops whose rules are here ---- */
  /* in.user (username, `display`), in.pwhash, in.now: the new user's id into *id, or
   * PARLEY_ECONFLICT if the username is taken. */
  int (*user_insert)(void *be, struct store_req *req, const char *display, int64_t *id);
  int (*slug_taken)(void *be, const char *slug, int *taken);
  /* A chat of in.user_id (in.title, is_public, max_participants, now) under `slug`: its id into
   * *chat_id, 0 if the slug is taken (maybe by another node since slug_taken said it was not). */
  int (*chat_insert)(void *be, struct store_req *req, const char *slug, int64_t *chat_id);
  /* Writes the fields in.update_mask names to chat_id. */
  int (*chat_update)(void *be, const struct store_req *req, int64_t chat_id);
  /* 1 in *removed if user_id was removed from chat_id and not invited back since. */
  int (*removed)(void *be, int64_t chat_id, int64_t user_id, int *removed);
  /* The chat of in.slug into out.chat, checked for ACL_CHAT_READ, and its messages with
   * lo < seq < hi, the newest `limit` (1..STORE_LIMIT_MAX), oldest first into out.msgs; *more is
   * set when the range holds older ones. */
  int (*msgs)(void *be, struct store_req *req, int64_t lo, int64_t hi, int limit, int *more);
  /* Users matching `lo` (`len` bytes, ASCII-folded), in.user_id excluded, appended to out.hits
   * (allocated by the caller for `limit` hits) until it holds `limit`; marks for chat `mark_chat`
   * (0: none). words 0: those whose folded username or display name starts with lo, an exact
   * username first, then username prefixes, then display name prefixes. words 1: the others
   * with a word of the display name (after white space or punctuation) starting with lo. */
  int (*users_search)(void *be, struct store_req *req, const char *lo, size_t len,
                      int64_t mark_chat, int limit, int words);
  /* MSG_SEARCH's rows: the messages matching `q` (borrowed; rendered in the backend's own
   * syntax by core/search_query.h) in the chats in.user_id is a participant of now (only chat
   * `chat_id` when it is not 0), best ranked first, results [offset, offset + limit) into
   * out.found, and out.has_more when one more exists. A query that runs over
   * STORE_MSG_SEARCH_BUDGET_MS is stopped: PARLEY_EUNAVAILABLE with *timed_out = 1. */
  int (*msg_search)(void *be, struct store_req *req, const struct search_query *q,
                    int64_t chat_id, int offset, int limit, int *timed_out);
  /* Records `word` (borrowed, NUL-terminated) as a word start of user_id's display name. */
  int (*user_word_insert)(void *be, int64_t user_id, const char *word);
  /* Pending invitations due at in.now, the oldest `limit` into out.invites, has_more. */
  int (*invites_due)(void *be, struct store_req *req, int limit);
  /* Deletes at most `limit` sessions whose expires_at <= now; the count into *n. */
  int (*sessions_expire)(void *be, int64_t now, int limit, int64_t *n);

  /* ---- the ops that are SQL alone, executed whole: op[STORE_X] (NULL: refused) ---- */
  int (*op[STORE_OP__COUNT])(void *be, struct store_req *req);
};

/* Writes the sentence that explains a failure to the client into req->out.errmsg and returns
 * `err`: `return store_fail(req, PARLEY_E..., "...")`. */
int store_fail(struct store_req *req, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies `n` bytes of UTF-8 text at `src` (borrowed; NULL when n is 0) into `dst` (cap bytes,
 * cap > 0), cut before the first character that does not fit, and NUL-terminates it. */
void store_copy_text(char *dst, size_t cap, const char *src, size_t n);
/* The chat of in.slug into out.chat as in.user_id sees it: PARLEY_EBAD_REQUEST for a malformed
 * slug, PARLEY_ENOT_FOUND for none or an archived one (nobody is in it, nobody can enter it again).
 * With `lock` (every op that changes the chat or decides on its current state), p->chat_lock
 * first. store_chat_access() then checks `op` for the requesting user. */
int store_chat_find(const struct store_prims *p, void *be, struct store_req *req, int lock);
int store_chat_access(const struct store_prims *p, void *be, struct store_req *req, enum acl_op op,
                      int lock);
/* 1 if `c` (borrowed) has no free seat: its maxParticipants, or CHAT_PARTICIPANTS_CEILING
 * when it has none or a larger one. Every path that adds a participant checks it. */
int store_chat_at_cap(const struct store_chat *c);
/* PARLEY_ECHAT_FULL with the sentence that says the cap. */
int store_chat_full(struct store_req *req, const struct store_chat *c);
/* out.member_ids from a participant array (borrowed). */
int store_set_member_ids(struct store_req *req, const struct acl_member *m, size_t n);
/* out.member_ids: the participants of chat_id as they are now. */
int store_member_ids(const struct store_prims *p, void *be, struct store_req *req, int64_t chat_id);

/* Settles the pending invitation of `to_id` to `chat_id`, if any (there is at most one), with
 * `action`: INVITE_ACCEPT when they joined without it, INVITE_REVOKE when they were removed (one
 * past its time becomes expired instead). The settled invitation is appended to out.invites, to
 * be announced. */
int store_settle_invite(const struct store_prims *p, void *be, struct store_req *req,
                        int64_t chat_id, int64_t to_id, enum invite_action action);

/* Executes one request as store.h describes its op: the rules here, the rows through `p`.
 * What a backend's exec() calls. */
int store_rules_exec(const struct store_prims *p, void *be, struct store_req *req);

/* The ops, as store.h describes them. */
int store_rules_chat_leave(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_chat_remove(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_chat_set_role(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_invite_create(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_invite_accept(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_invite_decline(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_invite_revoke(const struct store_prims *p, void *be, struct store_req *req);

#endif
