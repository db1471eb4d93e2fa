/* buf.c - the capped growable buffer declared in buf.h. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

void buf_init(struct buf *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
}

void buf_dispose(struct buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static int buf__reserve(struct buf *b, size_t extra) {
  size_t need = b->len + extra + 1; /* room for the NUL */
  size_t cap;
  char *p;

  if (b->len + extra > b->max)
    return PARLEY_ETOO_LARGE;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  p = realloc(b->data, cap);
  if (p == NULL)
    return PARLEY_EINTERNAL;
  b->data = p;
  b->cap = cap;
  return 0;
}

int buf_append(struct buf *b, const void *p, size_t n) {
  int err = buf__reserve(b, n);
  if (err)
    return err;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  int n, err;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return PARLEY_EINTERNAL;
  err = buf__reserve(b, (size_t)n);
  if (err)
    return err;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

