/* store_rules_base.c - the steps every op's rules share (see store_rules.h): the sentence for
 * the client, text copies, finding a chat and checking access to it, the participant ids an op
 * returns, result rows, users' search words, the deleted-bot check. A file of its own below
 * store_rules.c and the other store_rules_*.c files, which all use them (so they never call
 * each other in a circle: scripts/callgraph-check.py).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "core/text.h"
#include "store/store_rules.h"
#include "store/store_sql.h"

int store_fail(struct store_req *req, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(req->out.errmsg, sizeof req->out.errmsg, fmt, ap);
  va_end(ap);
  return err;
}

void store_copy_text(char *dst, size_t cap, const char *src, size_t n) {
  /* The schema counts characters, these arrays bytes: a row written by hand (a restore, a
   * migration) may not fit. Cut before the character that does not fit, never inside it, so
   * what we return stays UTF-8 (found by tests/fuzz/fuzz_store). */
  n = text_utf8_fit(src, n, cap - 1);
  if (n)
    memcpy(dst, src, n);
  dst[n] = '\0';
}

int store_chat_find(const struct store_prims *p, void *be, struct store_req *req, int lock) {
  int err;
  if (strnlen(req->in.slug, sizeof req->in.slug) == sizeof req->in.slug || req->in.slug[0] == '\0')
    return PARLEY_EBAD_REQUEST;
  if (lock && p->chat_lock) {
    err = p->chat_lock(be, req->in.slug);
    if (err)
      return err;
  }
  err = p->chat_load(be, req->in.slug, req->in.user_id, &req->out.chat);
  if (err)
    return err;
  return req->out.chat.archived ? PARLEY_ENOT_FOUND : 0;
}

int store_chat_access(const struct store_prims *p, void *be, struct store_req *req, enum acl_op op,
                      int lock) {
  int err = store_chat_find(p, be, req, lock);
  if (err)
    return err;
  return acl_check(op, req->out.chat.my_role, req->out.chat.is_public);
}

int store_set_member_ids(struct store_req *req, const struct acl_member *m, size_t n) {
  int64_t *ids = NULL;
  free(req->out.member_ids);
  req->out.member_ids = NULL;
  req->out.n_member_ids = 0;
  if (n == 0)
    return 0;
  ids = malloc(n * sizeof *ids);
  if (ids == NULL)
    return PARLEY_EUNAVAILABLE;
  for (size_t i = 0; i < n; i++)
    ids[i] = m[i].user_id;
  req->out.member_ids = ids;
  req->out.n_member_ids = n;
  return 0;
}

int store_member_ids(const struct store_prims *p, void *be, struct store_req *req,
                     int64_t chat_id) {
  struct acl_member *m = NULL;
  size_t n = 0;
  int err = p->participants(be, chat_id, &m, &n);
  if (err == 0)
    err = store_set_member_ids(req, m, n);
  free(m);
  return err;
}

/* ---- shared by every rules file: results, users' search words, deleted bots ---- */

void store_res_free(struct store_res *r) {
  if (r == NULL)
    return;
  for (int i = 0; r->v && i < r->rows * r->cols; i++)
    free(r->v[i]);
  free(r->v);
  memset(r, 0, sizeof *r);
}

/* Folds s as SQLite's lower() does (ASCII only), n bytes into out (n + 1 bytes). */
void store_fold_ascii(const char *s, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  }
  out[n] = '\0';
}

/* users.search's word starts of a new user's display name: every folded suffix that begins after
 * a separator (STORE_WORD_SEPS) with a character that is not one. The first word is not stored:
 * the lower(display_name) index already finds it. Migration 7 cuts names the same way. */
int store_user_words(const struct store_prims *p, void *be, int64_t id, const char *display) {
  char lo[STORE_DISPLAY_NAME_MAX + 1];
  size_t len = strlen(display);
  int err;

  if (len > STORE_DISPLAY_NAME_MAX)
    return PARLEY_EBAD_REQUEST;
  store_fold_ascii(display, len, lo);
  for (size_t i = 1; i < len; i++) {
    if (strchr(STORE_WORD_SEPS, lo[i - 1]) != NULL && strchr(STORE_WORD_SEPS, lo[i]) == NULL) {
      err = p->user_word_insert(be, id, lo + i);
      if (err)
        return err;
    }
  }
  return 0;
}


int store_rules_bot_deleted(const struct store_prims *p, void *be, int64_t id) {
  static const char sql[] = "SELECT 1 FROM bots WHERE user_id = $1 AND deleted = 1";
  struct store_arg a[] = {STORE_I(id)};
  struct store_res r = {0};
  int err = p->sql(be, sql, a, 1, &r);
  if (err == 0 && r.rows > 0)
    err = PARLEY_ENOT_FOUND;
  store_res_free(&r);
  return err;
}
