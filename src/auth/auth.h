/* auth.h - accounts and sessions: credential rules, password hashing, session tokens.
 *
 * Passwords are hashed with argon2id (libsodium crypto_pwhash, t=2, 19 MiB) on libuv's thread
 * pool, never on the loop thread. Session tokens are 32 random bytes, given to the client once
 * (cookie and JSON body) and stored only as their BLAKE2b-256 hash, so a leaked database holds
 * no usable session.
 */
#ifndef PARLEY_AUTH_AUTH_H
#define PARLEY_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/store.h"

#define AUTH_TOKEN_LEN 43 /* base64url of 32 bytes, without padding */
#define AUTH_COOKIE_NAME "parley_session"
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 256

/* Checks a username (3-32 of [a-z0-9_.-] after folding A-Z to lower case) and writes the
 * folded form to out (STORE_USERNAME_MAX + 1 bytes). Returns 0 or PARLEY_EBAD_REQUEST. */
int auth_username_normalize(const char *in, char *out);

/* Checks a display name (borrowed) by core/text.h's name rules: 1-64 code points, a visible
 * one among them, no control or bidi control characters. Returns 0 or PARLEY_EBAD_REQUEST. */
int auth_display_name_valid(const char *s);

/* Makes a new random token (AUTH_TOKEN_LEN + 1 bytes, NUL-terminated) and its hash. */
void auth_token_new(char *token, uint8_t hash[STORE_TOKEN_HASH_LEN]);

/* Hashes a token given by a client (borrowed). */
void auth_token_hash(const char *token, uint8_t hash[STORE_TOKEN_HASH_LEN]);

/* Finds the session token in a Cookie header (borrowed) and copies it to out
 * (AUTH_TOKEN_LEN + 1 bytes). Returns 0 or PARLEY_EUNAUTHORIZED when there is none. */
int auth_cookie_token(const char *cookie, char *out);

/* Same for "Authorization: Bearer <token>". */
int auth_bearer_token(const char *authorization, char *out);

struct auth_work;
typedef void (*auth_cb)(struct auth_work *w);

struct auth_work {
  uv_work_t req;
  char *password;  /* owned; wiped and freed when done */
  char *hash;      /* hash_async: the result (owned); verify_async: the stored hash (owned) */
  int status;      /* 0, PARLEY_EUNAUTHORIZED (verify mismatch) or PARLEY_EINTERNAL */
  auth_cb cb;
  void *data;
};

/* Hashes `password` (copied) off the loop thread; cb gets w->hash. Returns 0 or PARLEY_E*; on
 * failure cb is never called. The callback owns w and frees it with auth_work_free(). */
int auth_hash_async(uv_loop_t *loop, const char *password, auth_cb cb, void *data);

/* Verifies `password` against `hash` (both copied); hash NULL verifies against a dummy hash so
 * that an unknown username takes as long as a wrong password. w->status tells the result. */
int auth_verify_async(uv_loop_t *loop, const char *hash, const char *password, auth_cb cb,
                      void *data);

void auth_work_free(struct auth_work *w);

/* One-time set-up (sodium_init and the dummy hash). Returns 0 or PARLEY_EINTERNAL. */
int auth_init(void);

#endif
