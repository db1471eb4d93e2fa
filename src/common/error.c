/* error.c - names, messages and HTTP statuses for the PARLEY_E* table in error.h. */
#include "common/error.h"

#define PARLEY__IN_TABLE(e) ((e) > PARLEY__ERR_FIRST && (e) < PARLEY__ERR_END)

const char *parley_err_name(int err) {
  switch (err) {
#define X(name, wire, http, msg) \
  case PARLEY_E##name:           \
    return wire;
    PARLEY_ERRNO_MAP(X)
#undef X
  default:
    return "internal";
  }
}

const char *parley_strerror(int err) {
  if (err == 0)
    return "ok";
  switch (err) {
#define X(name, wire, http, msg) \
  case PARLEY_E##name:           \
    return msg;
    PARLEY_ERRNO_MAP(X)
#undef X
  default:
    return "internal error";
  }
}

int parley_err_http_status(int err) {
  if (!PARLEY__IN_TABLE(err))
    return 500;
  switch (err) {
#define X(name, wire, http, msg) \
  case PARLEY_E##name:           \
    return http;
    PARLEY_ERRNO_MAP(X)
#undef X
  default:
    return 500;
  }
}
