/* buf.h - a growable byte buffer with a hard cap.
 *
 * Used for HTTP bodies and response assembly. Every buffer has a cap (bounded everything): an
 * append that would pass it fails with PARLEY_ETOO_LARGE and leaves the buffer unchanged.
 */
#ifndef PARLEY_COMMON_BUF_H
#define PARLEY_COMMON_BUF_H

#include <stddef.h>

struct buf {
  char *data; /* owned; NUL-terminated when len > 0 */
  size_t len;
  size_t cap; /* bytes allocated */
  size_t max; /* hard cap on len */
};

/* Initializes an empty buffer on caller memory that may grow to `max` bytes. */
void buf_init(struct buf *b, size_t max);

/* Frees the data; the buffer is empty and reusable afterwards. */
void buf_dispose(struct buf *b);

/* Appends n bytes (borrowed). Returns 0, PARLEY_ETOO_LARGE past the cap, or PARLEY_EINTERNAL
 * when out of memory. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Appends printf-formatted text. Same returns as buf_append. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
