/* store_rules.h - the rules of every store op, written once for every backend (internal to
 * src/store).
 *
 * What the ops decide (input checks, who may join, update, leave, remove, change a role, accept,
 * decline or revoke; who becomes owner; which slug a chat gets; what the client is told) is the
 * same on SQLite and PostgreSQL; only how a row is read or written differs. So the ops live in
 * store_rules.c, over `struct store_prims`, the row-level primitives each backend provides, and
 * store_rules_exec() is the one dispatch of both. They run on the store thread inside the backend's
 * open transaction, like any backend op: a failed op's writes are rolled back by the caller
 * (store.c: a savepoint, or the batch run again with savepoints). Every function returns 0 or a
 * PARLEY_E* code; `be` is the backend's state.
 */
#ifndef PARLEY_STORE_RULES_H
#define PARLEY_STORE_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "core/acl.h"
#include "core/invite.h"
#include "core/search_query.h"
#include "store/store.h"

/* A parameter of a generic statement (store_prims.sql): an integer, or text when is_text (s
 * borrowed until the statement ran; NULL is SQL NULL). */
struct store_arg {
  int is_text;
  int64_t i;
  const char *s;
};
#define STORE_I(x) ((struct store_arg){0, (x), NULL})
#define STORE_S(x) ((struct store_arg){1, 0, (x)})
/* The rows of a generic statement, every cell as text (NULL for SQL NULL), row-major. */
struct store_res {
  int rows, cols;
  char **v;
};
void store_res_free(struct store_res *r);
/* Cell (row, col) as text (NULL for SQL NULL), or as an integer (0 for NULL). */
const char *store_res_s(const struct store_res *r, int row, int col);
int64_t store_res_i(const struct store_res *r, int row, int col);

struct store_prims {
  /* Runs one statement, `text` (a string literal: backends may cache it by address) with
   * parameters $1..$n in both dialects, inside the open transaction. `out` (may be NULL) gets
   * the rows (the caller frees them with store_res_free). The message model's statements
   * (store_rules_msg.c) are written once in the SQL both dialects share, through this. */
  int (*sql)(void *be, const char *text, const struct store_arg *args, int n,
             struct store_res *out);

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

  /* ---- issue 18 (store_rules_live.c) ---- */
  /* The participants of chat_id (user_id 0: all; else that one if a participant) into
   * out.member_ids with their read markers into out.member_reads. */
  /* only: NULL for every participant (or user_id's row), else "id,id,..." to read only those;
   * counts of the entries up to seq upto (the chat row's last_seq read before: on PostgreSQL
   * a later statement may see newer entries) */
  int (*chat_readers)(void *be, struct store_req *req, int64_t chat_id, int64_t user_id,
                      const char *only, int64_t upto);
  int (*notify_set)(void *be, int64_t chat_id, int64_t user_id, int level);
  int (*notify_of)(void *be, int64_t chat_id, int64_t user_id, int *level);
  /* Public, unarchived chats as in.user_id sees them, title word starts `lo` (folded, `len`
   * bytes; NULL: all), last_activity < before (0: any), the newest limit + 1 into out.chats. */
  int (*chats_browse)(void *be, struct store_req *req, const char *lo, size_t len, int64_t before,
                      int limit);
  int (*user_set_display)(void *be, int64_t user_id, const char *display);
  int (*user_words_delete)(void *be, int64_t user_id);
  /* Stores an avatar under `name` unless one is there (same name: same bytes). */
  int (*avatar_put)(void *be, const char *name, const unsigned char *data, size_t len,
                    int64_t now);
  /* Sets users.avatar (NULL: none); the previous value into old (cap STORE_AVATAR_NAME_MAX + 1). */
  int (*user_set_avatar)(void *be, int64_t user_id, const char *name, char *old);
  int (*avatar_gc)(void *be, const char *name); /* deletes it if no user has it */

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

/* The message model (store_rules_msg.c): the ops of issue 17, and the hooks the other ops call.
 * store_rules_msg_exec() returns 1 when `req` is not one of its ops. */
int store_rules_msg_exec(const struct store_prims *p, void *be, struct store_req *req);
/* Replaces out.msgs (a seq range a backend read) by the same entries with their folded state. */
int store_rules_msg_fold(const struct store_prims *p, void *be, struct store_req *req);
/* An entry to append to a chat's sequence (every pointer borrowed; NULL: none). */
struct store_entry {
  enum store_msg_kind kind;
  const char *body;
  int64_t ref;
  const char *detail;
  int flag;
  const char *action;
  int64_t subject;
  enum stream_state stream_state; /* issue 19: a streamed message (streaming) or its end */
  int64_t stream_len;
  const char *client_msg_id;
  int64_t reply_to;
};
/* Appends entry `e` by in.user_id to chat_id under the next seq (the chat locked by the caller)
 * and reads it back into *m (disposed first); out.chat.last_seq follows. */
int store_rules_entry_append(const struct store_prims *p, void *be, struct store_req *req,
                             int64_t chat_id, const struct store_entry *e, struct store_msg *m);
/* Entry `seq` of chat_id, folded as `viewer` sees it, into *m (disposed first);
 * PARLEY_ENOT_FOUND if there is none. */
int store_rules_msg_load_one(const struct store_prims *p, void *be, int64_t chat_id, int64_t seq,
                             int64_t viewer, struct store_msg *m);
/* The text so far of open stream `seq` of chat_id (its chunks, in offset order) into *body
 * (a new string; the previous one freed). */
int store_rules_stream_body(const struct store_prims *p, void *be, int64_t chat_id, int64_t seq,
                            char **body);
/* The streamed messages' ops (store_rules_stream.c); 1 if req->op is none of them. */
int store_rules_stream_exec(const struct store_prims *p, void *be, struct store_req *req);
/* After MSG_HISTORY / MSG_SINCE read and folded out.msgs: keeps their bodies within
 * STORE_REPLY_BODIES_MAX (the oldest go; has_more / reset says so), and for MSG_SINCE with
 * in.with_streams reads the chat's open streams into out.streams. */
int store_rules_stream_reads(const struct store_prims *p, void *be, struct store_req *req);

/* Appends a notice entry (action, about `subject`, by in.user_id, `detail` may be NULL) to chat
 * chat_id and returns it in out.notice. */
int store_rules_notice(const struct store_prims *p, void *be, struct store_req *req,
                       int64_t chat_id, const char *action, int64_t subject, const char *detail);
/* Fills the DM fields of out.chat (is_dm, peer) for in.user_id. */
int store_rules_chat_dm(const struct store_prims *p, void *be, struct store_req *req,
                        struct store_chat *c);
/* PARLEY_EFORBIDDEN with the sentence that says `what` is not possible in a direct message, if
 * chat_id is one; else 0. */
int store_rules_not_dm(const struct store_prims *p, void *be, struct store_req *req,
                       int64_t chat_id, const char *what);
/* users.search's word starts of user id's display name (store_rules_base.c). */
int store_user_words(const struct store_prims *p, void *be, int64_t id, const char *display);
/* Folds s as SQLite's lower() does (ASCII only): n bytes of s into out, which holds n + 1. */
void store_fold_ascii(const char *s, size_t n, char *out);
/* The issue 18 ops (store_rules_live.c); 1 if req->op is none of them. */
int store_rules_live_exec(const struct store_prims *p, void *be, struct store_req *req, int *err);

/* PARLEY_ENOT_FOUND if user `id` is a deleted bot (its username stays taken but nobody can
 * invite, DM or name it), else 0 (store_rules_base.c). */
int store_rules_bot_deleted(const struct store_prims *p, void *be, int64_t id);
/* The bot ops of issue 19 (store_rules_bots.c); 1 if req->op is none of them. */
int store_rules_bots_exec(const struct store_prims *p, void *be, struct store_req *req, int *err);

/* The ops, as store.h describes them. */
int store_rules_chat_leave(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_chat_remove(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_chat_set_role(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_invite_create(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_invite_accept(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_invite_decline(const struct store_prims *p, void *be, struct store_req *req);
int store_rules_invite_revoke(const struct store_prims *p, void *be, struct store_req *req);

#endif
