/* stream.h - the rules of a streamed message (issue 19), pure: its states, whether an append at
 * an offset extends the body, repeats what is stored or conflicts, and when an idle stream is
 * ended by the server. The store applies the append rule inside its transaction; the app's
 * sweep (ops_stream.c) applies the idle rule with its clock.
 */
#ifndef PARLEY_CORE_STREAM_H
#define PARLEY_CORE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define STREAM_BODY_MAX 262144  /* bytes of a streamed message's whole body */
#define STREAM_DELTA_MAX 16384  /* bytes of one append */
#define STREAM_IDLE_MS_DEFAULT 30000

enum stream_state {
  STREAM_NONE = 0,      /* not a streamed message */
  STREAM_STREAMING,
  STREAM_DONE,
  STREAM_ERROR,
  STREAM_INTERRUPTED
};

/* Wire name ("streaming", "done", ...) of a state; NULL for STREAM_NONE. Static string. */
const char *stream_state_name(enum stream_state s);
/* The state named `s` (borrowed; NULL allowed), STREAM_NONE if none is. */
enum stream_state stream_state_parse(const char *s);

enum stream_verdict {
  STREAM_APPEND,   /* offset == length: the delta extends the body */
  STREAM_RETRY,    /* the delta is already stored at that offset: answer the length, no event */
  STREAM_CONFLICT, /* a wrong offset, different bytes, or the stream has ended */
  STREAM_TOO_LARGE /* the body would pass `max` bytes */
};

/* What an append of `delta` (dlen bytes, borrowed) at `offset` does to a stream in state `st`
 * whose body is `stored` (len bytes, borrowed; only read when offset < len, may be NULL
 * otherwise). */
enum stream_verdict stream_append_check(enum stream_state st, const char *stored, int64_t len,
                                        int64_t offset, const char *delta, size_t dlen,
                                        int64_t max);

/* 1 if a stream whose last append was at `last_append` (Unix ms) is to be ended as interrupted
 * at `now`: its author has no connected socket (author_online 0) and neither an append nor the
 * author's last moment online (`author_last_seen`, 0: unknown) is within idle_ms. Else 0. */
int stream_idle_due(int64_t now, int64_t last_append, int author_online, int64_t author_last_seen,
                    int64_t idle_ms);

#endif
