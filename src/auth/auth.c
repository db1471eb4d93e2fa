/* auth.c - credential rules, tokens and off-loop password hashing (auth.h). */
#include "auth/auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "core/text.h"

#define AUTH__OPSLIMIT 2
#define AUTH__MEMLIMIT (19u << 20) /* 19 MiB, OWASP's argon2id baseline */

static char auth__dummy_hash[crypto_pwhash_STRBYTES];

int auth_init(void) {
  if (sodium_init() < 0)
    return PARLEY_EINTERNAL;
  if (auth__dummy_hash[0] == '\0' &&
      crypto_pwhash_str(auth__dummy_hash, "parley-dummy-password", 21, AUTH__OPSLIMIT,
                        AUTH__MEMLIMIT) != 0)
    return PARLEY_EINTERNAL;
  return 0;
}

int auth_username_normalize(const char *in, char *out) {
  size_t n = in ? strlen(in) : 0;
  if (n < 3 || n > STORE_USERNAME_MAX)
    return PARLEY_EBAD_REQUEST;
  for (size_t i = 0; i < n; i++) {
    char ch = in[i];
    if (ch >= 'A' && ch <= 'Z')
      ch = (char)(ch - 'A' + 'a');
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
          ch == '-'))
      return PARLEY_EBAD_REQUEST;
    out[i] = ch;
  }
  out[n] = '\0';
  return 0;
}

int auth_display_name_valid(const char *s) {
  return text_check_name(s, s ? strlen(s) : 0, TEXT_DISPLAY_NAME_MAX) == 0 ? 0
                                                                          : PARLEY_EBAD_REQUEST;
}

void auth_token_hash(const char *token, uint8_t hash[STORE_TOKEN_HASH_LEN]) {
  crypto_generichash(hash, STORE_TOKEN_HASH_LEN, (const unsigned char *)token, strlen(token),
                     NULL, 0);
}

void auth_token_new(char *token, uint8_t hash[STORE_TOKEN_HASH_LEN]) {
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  sodium_bin2base64(token, AUTH_TOKEN_LEN + 1, raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  auth_token_hash(token, hash);
}

static int auth__copy_token(const char *p, size_t n, char *out) {
  if (n == 0 || n > AUTH_TOKEN_LEN)
    return PARLEY_EUNAUTHORIZED;
  memcpy(out, p, n);
  out[n] = '\0';
  return 0;
}

int auth_cookie_token(const char *cookie, char *out) {
  static const char name[] = AUTH_COOKIE_NAME "=";
  const char *p = cookie;
  while (p && *p) {
    while (*p == ' ' || *p == ';')
      p++;
    if (strncmp(p, name, sizeof name - 1) == 0) {
      const char *v = p + sizeof name - 1;
      return auth__copy_token(v, strcspn(v, "; "), out);
    }
    p = strchr(p, ';');
  }
  return PARLEY_EUNAUTHORIZED;
}

int auth_bearer_token(const char *authorization, char *out) {
  if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
    return PARLEY_EUNAUTHORIZED;
  return auth__copy_token(authorization + 7, strlen(authorization + 7), out);
}

void auth_work_free(struct auth_work *w) {
  if (w == NULL)
    return;
  if (w->password) {
    sodium_memzero(w->password, strlen(w->password));
    free(w->password);
  }
  free(w->hash);
  free(w);
}

static void auth__hash_work(uv_work_t *req) {
  struct auth_work *w = req->data;
  w->hash = malloc(crypto_pwhash_STRBYTES);
  if (w->hash == NULL || crypto_pwhash_str(w->hash, w->password, strlen(w->password),
                                           AUTH__OPSLIMIT, AUTH__MEMLIMIT) != 0)
    w->status = PARLEY_EINTERNAL;
}

static void auth__verify_work(uv_work_t *req) {
  struct auth_work *w = req->data;
  const char *hash = w->hash ? w->hash : auth__dummy_hash;
  int ok = crypto_pwhash_str_verify(hash, w->password, strlen(w->password)) == 0;
  w->status = ok && w->hash ? 0 : PARLEY_EUNAUTHORIZED;
}

static void auth__done(uv_work_t *req, int status) {
  struct auth_work *w = req->data;
  if (status != 0 && w->status == 0)
    w->status = PARLEY_EINTERNAL;
  w->cb(w);
}

static int auth__submit(uv_loop_t *loop, const char *hash, const char *password, auth_cb cb,
                        void *data, uv_work_cb work) {
  struct auth_work *w = calloc(1, sizeof *w);
  if (w == NULL)
    return PARLEY_EINTERNAL;
  w->password = strdup(password);
  w->hash = hash ? strdup(hash) : NULL;
  w->cb = cb;
  w->data = data;
  w->req.data = w;
  if (w->password == NULL || (hash && w->hash == NULL) ||
      uv_queue_work(loop, &w->req, work, auth__done) != 0) {
    auth_work_free(w);
    return PARLEY_EINTERNAL;
  }
  return 0;
}

int auth_hash_async(uv_loop_t *loop, const char *password, auth_cb cb, void *data) {
  return auth__submit(loop, NULL, password, cb, data, auth__hash_work);
}

int auth_verify_async(uv_loop_t *loop, const char *hash, const char *password, auth_cb cb,
                      void *data) {
  return auth__submit(loop, hash, password, cb, data, auth__verify_work);
}
