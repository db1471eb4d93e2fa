/* stream.c - the pure rules of streamed messages (stream.h). */
#include "core/stream.h"

#include <string.h>

static const char *const names[] = {NULL, "streaming", "done", "error", "interrupted"};

const char *stream_state_name(enum stream_state s) {
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : NULL;
}

enum stream_state stream_state_parse(const char *s) {
  for (size_t i = 1; s && i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i]) == 0)
      return (enum stream_state)i;
  return STREAM_NONE;
}

enum stream_verdict stream_append_check(enum stream_state st, const char *stored, int64_t len,
                                        int64_t offset, const char *delta, size_t dlen,
                                        int64_t max) {
  if (st != STREAM_STREAMING || offset < 0 || dlen == 0)
    return STREAM_CONFLICT;
  if (offset == len)
    return len + (int64_t)dlen > max ? STREAM_TOO_LARGE : STREAM_APPEND;
  /* A retry of an append that was stored (its reply lost): the same bytes at the same place. */
  if (offset < len && offset + (int64_t)dlen <= len && stored != NULL &&
      memcmp(stored + offset, delta, dlen) == 0)
    return STREAM_RETRY;
  return STREAM_CONFLICT;
}

int stream_idle_due(int64_t now, int64_t last_append, int author_online, int64_t author_last_seen,
                    int64_t idle_ms) {
  int64_t last = last_append > author_last_seen ? last_append : author_last_seen;
  if (author_online)
    return 0;
  return now - last >= idle_ms;
}
