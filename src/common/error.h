/* error.h - the one error table of Parley.
 *
 * Every fallible function returns 0 on success or a negative PARLEY_E* code from this table
 * (the shape of libuv's UV_ERRNO_MAP). Each code has a stable wire name that the protocol sends
 * to clients as error.code, and an HTTP status used by the REST endpoints.
 */
#ifndef PARLEY_COMMON_ERROR_H
#define PARLEY_COMMON_ERROR_H

/* X(NAME, wire name, HTTP status, default message) */
#define PARLEY_ERRNO_MAP(X)                                                                       \
  X(BAD_REQUEST, "bad_request", 400, "malformed request")                                         \
  X(UNAUTHORIZED, "unauthorized", 401, "authentication required")                                 \
  X(FORBIDDEN, "forbidden", 403, "not allowed")                                                   \
  X(NOT_FOUND, "not_found", 404, "no such object")                                                \
  X(CONFLICT, "conflict", 409, "conflicts with existing state")                                   \
  X(CHAT_FULL, "chat_full", 409, "the chat has reached its participant cap")                     \
  X(EXPIRED, "expired", 410, "expired")                                                           \
  X(RATE_LIMITED, "rate_limited", 429, "too many requests")                                       \
  X(TOO_LARGE, "too_large", 413, "too large")                                                     \
  X(UNAVAILABLE, "unavailable", 503, "temporarily unavailable")                                   \
  X(INTERNAL, "internal", 500, "internal error")

enum parley_errno {
  PARLEY_OK = 0,
#define PARLEY__ERR_ENUM(name, wire, http, msg) PARLEY_E##name,
  PARLEY__ERR_FIRST = -100,
  PARLEY_ERRNO_MAP(PARLEY__ERR_ENUM)
#undef PARLEY__ERR_ENUM
  PARLEY__ERR_END
};

/* Stable wire name ("forbidden", ...) of err; "internal" for anything not in the table.
 * Returns a static string. */
const char *parley_err_name(int err);

/* Human default message of err. Returns a static string. */
const char *parley_strerror(int err);

/* HTTP status matching err (500 for unknown codes). */
int parley_err_http_status(int err);

#endif
